//! Inspecting the search read model: whether it has caught up with the log, and a snapshot of
//! every resource's virtual tags comparable with the Postgres read model's.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{json, Value};
use sqlx::PgPool;
use vtag_service::read_models;

use crate::harness::TestEnv;

/// Per resource id: (aggregate version, {(key, value, source)}).
pub type TagSnapshot = BTreeMap<String, (i64, BTreeSet<(String, String, String)>)>;

pub struct SearchServer {
    pub url: String,
    pub alias: String,
    http: reqwest::Client,
}

impl SearchServer {
    pub fn of(env: &TestEnv) -> Self {
        Self::at(&env.stack.opensearch_url, env)
    }

    pub fn at(url: &str, env: &TestEnv) -> Self {
        Self {
            url: url.trim_end_matches('/').to_owned(),
            alias: read_models::search_alias(&env.prefix),
            http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap(),
        }
    }

    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(b) = body {
            req = req.json(&b);
        }
        match req.send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                (status, r.json().await.unwrap_or(Value::Null))
            }
            Err(_) => (0, Value::Null),
        }
    }

    /// The generation the alias points at.
    pub async fn serving(&self) -> Option<String> {
        let (status, body) = self.call(reqwest::Method::GET, &format!("/_alias/{}", self.alias), None).await;
        (status == 200).then(|| read_models::served_generation(&body)).flatten()
    }

    /// Every generation on the server, served or not.
    pub async fn generations(&self) -> Vec<String> {
        let (_, body) = self.call(reqwest::Method::GET, &format!("/_cat/indices/{}-*?format=json", self.alias), None).await;
        let mut names: Vec<String> = body
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["index"].as_str())
            .filter(|n| read_models::is_search_generation(&self.alias, n))
            .map(str::to_owned)
            .collect();
        names.sort();
        names
    }

    /// Next offsets the serving generation recorded for `topic`.
    pub async fn checkpoints(&self, topic: &str) -> BTreeMap<i32, i64> {
        let Some(generation) = self.serving().await else { return BTreeMap::new() };
        let (_, body) = self.call(reqwest::Method::GET, &format!("/{}/_doc/{topic}", read_models::search_checkpoints_index(&generation)), None).await;
        read_models::checkpoint_offsets(&body).into_iter().collect()
    }

    /// Serving, and every partition of the resource and compliance topics folded to its end.
    pub async fn caught_up(&self, env: &TestEnv) -> bool {
        let topics = vtag_eventlog::EventTopics::new(env.prefix.clone(), env.partitions);
        let all_ends = vtag_eventlog::ends_of(&env.stack.brokers, &[topics.resource_events(), topics.compliance_events()]).await.expect("watermarks");
        for (topic, ends) in all_ends {
            let done = self.checkpoints(&topic).await;
            if ends.iter().any(|(p, end)| *end > 0 && done.get(p).copied().unwrap_or(0) < *end) {
                return false;
            }
        }
        self.serving().await.is_some()
    }

    /// Every described resource's documents, read through the alias.
    pub async fn documents(&self) -> Vec<Value> {
        self.call(reqwest::Method::POST, &format!("/{}/_refresh", self.alias), None).await;
        let mut out = Vec::new();
        let mut after: Option<Value> = None;
        loop {
            let mut body = json!({
                "size": 1000,
                "query": { "range": { "version": { "gte": 1 } } },
                "sort": [{ "resource_id": "asc" }]
            });
            if let Some(a) = &after {
                body["search_after"] = a.clone();
            }
            let (status, page) = self.call(reqwest::Method::POST, &format!("/{}/_search", self.alias), Some(body)).await;
            assert_eq!(status, 200, "{page}");
            let hits = page.pointer("/hits/hits").and_then(Value::as_array).cloned().unwrap_or_default();
            if hits.is_empty() {
                return out;
            }
            after = hits.last().and_then(|h| h.get("sort")).cloned();
            out.extend(hits.into_iter().filter_map(|mut h| h.get_mut("_source").map(Value::take)));
        }
    }

    pub async fn tag_snapshot(&self) -> TagSnapshot {
        let mut out = TagSnapshot::new();
        for doc in self.documents().await {
            let id = doc["resource_id"].as_str().unwrap().to_owned();
            let tags = doc["tags"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| (s(&t["key"]), s(&t["value"]), s(&t["source"])))
                .collect();
            let previous = out.insert(id.clone(), (doc["version"].as_i64().unwrap(), tags));
            assert!(previous.is_none(), "resource {id} has two documents");
        }
        out
    }
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

/// The same snapshot from the Postgres read model.
pub async fn postgres_tag_snapshot(pool: &PgPool) -> TagSnapshot {
    let resources: Vec<(uuid::Uuid, i64)> = sqlx::query_as("SELECT id, version FROM resources").fetch_all(pool).await.unwrap();
    let mut out: TagSnapshot = resources.into_iter().map(|(id, v)| (id.to_string(), (v, BTreeSet::new()))).collect();
    let tags: Vec<(uuid::Uuid, String, String, String)> =
        sqlx::query_as("SELECT resource_id, tag_key, tag_value, source FROM virtual_tags").fetch_all(pool).await.unwrap();
    for (id, k, v, src) in tags {
        out.get_mut(&id.to_string()).expect("a tag of a known resource").1.insert((k, v, src));
    }
    out
}
