//! The search index over the OpenSearch REST API (`opensearch` crate): generations of the
//! resource index behind one alias, documents read with `_mget` and written with `_bulk` under
//! external versioning, and each generation's checkpoints in an index of its own.
//!
//! A generation is `{alias}-{millis}`; the alias points at the one searches read. A rebuild fills
//! a new generation while the alias still points at the old one, then moves the alias in one
//! `_aliases` call, so a search sees either the old or the new model, never half of one.

use std::collections::HashMap;
use std::time::Duration;

use opensearch::http::headers::{HeaderMap, HeaderValue, CONTENT_TYPE};
use opensearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use opensearch::http::{Method, StatusCode, Url};
use opensearch::OpenSearch;
use serde_json::{json, Value};

use vtag_service::read_models;

use super::doc::ResourceDoc;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The server is unreachable or answered 5xx: worth retrying.
    #[error("search server unavailable: {0}")]
    Unavailable(String),
    /// The index or alias is gone (an in-memory server restarted empty): rebuild.
    #[error("search index lost: {0}")]
    Lost(String),
    #[error("search server refused the request: {0}")]
    Refused(String),
}

/// The mapping of a generation (the seed's, with `value` a keyword so tags filter and facet
/// exactly; full text is on names).
pub fn mapping() -> Value {
    let keyword = || json!({ "type": "keyword" });
    json!({
        "settings": { "number_of_shards": 1, "number_of_replicas": 0 },
        "mappings": {
            "dynamic": "strict",
            "properties": {
                "tenant": keyword(),
                "resource_id": keyword(),
                "version": { "type": "long" },
                "resource_name": { "type": "text" },
                "name_sort": keyword(),
                "provider": keyword(),
                "cloud_id": keyword(),
                "account": keyword(),
                "region": keyword(),
                "resource_type": keyword(),
                "tags": {
                    "type": "nested",
                    "properties": {
                        "key": keyword(),
                        "value": keyword(),
                        "source": keyword(),
                        "confidence": { "type": "float" }
                    }
                },
                "monthly_cost_cents": { "type": "long" },
                "currency": keyword(),
                "compliance_status": keyword(),
                "compliance_score": { "type": "float" },
                "violated_policies": keyword(),
                "compliance_version": { "type": "long" },
                "last_updated": { "type": "date" }
            }
        }
    })
}

#[derive(Clone)]
pub struct SearchIndex {
    client: OpenSearch,
    alias: String,
}

impl SearchIndex {
    pub fn connect(url: &str, alias: &str) -> anyhow::Result<Self> {
        let url = Url::parse(url).map_err(|e| anyhow::anyhow!("VTAG_OPENSEARCH_URL {url:?}: {e}"))?;
        let transport = TransportBuilder::new(SingleNodeConnectionPool::new(url)).timeout(Duration::from_secs(60)).build()?;
        Ok(Self { client: OpenSearch::new(transport), alias: alias.to_owned() })
    }

    pub fn alias(&self) -> &str {
        &self.alias
    }

    pub fn client(&self) -> &OpenSearch {
        &self.client
    }

    /// One REST call; the body is JSON, or NDJSON lines for `_bulk`.
    pub async fn call(&self, method: Method, path: &str, body: Option<String>) -> Result<(StatusCode, Value), IndexError> {
        let mut headers = HeaderMap::new();
        let ndjson = path.ends_with("/_bulk");
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(if ndjson { "application/x-ndjson" } else { "application/json" }));
        let response = self
            .client
            .send(method, path, headers, None::<&()>, body, None)
            .await
            .map_err(|e| IndexError::Unavailable(e.to_string()))?;
        let status = response.status_code();
        let text = response.text().await.map_err(|e| IndexError::Unavailable(e.to_string()))?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        // 408 and 429 (a circuit breaker, a full queue) pass like a 5xx: wait and retry.
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::REQUEST_TIMEOUT {
            return Err(IndexError::Unavailable(format!("{status}: {value}")));
        }
        Ok((status, value))
    }

    /// The generation the alias points at; `None` when there is no alias (never built, or lost).
    /// Should a race have left it on two, the newest (names end in creation millis) is the one.
    pub async fn serving(&self) -> Result<Option<String>, IndexError> {
        Ok(self.aliased().await?.into_iter().max())
    }

    /// Every generation of the alias on the server (served or not), oldest first.
    pub async fn generations(&self) -> Result<Vec<String>, IndexError> {
        let (status, body) = self.call(Method::Get, &format!("/_cat/indices/{}-*?format=json", self.alias), None).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(Vec::new());
        }
        if !status.is_success() {
            return Err(IndexError::Refused(format!("{status}: {body}")));
        }
        let mut names: Vec<String> = body
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["index"].as_str())
            .filter(|name| read_models::is_search_generation(&self.alias, name))
            .map(str::to_owned)
            .collect();
        names.sort();
        Ok(names)
    }

    /// Every index the alias points at.
    async fn aliased(&self) -> Result<Vec<String>, IndexError> {
        let (status, body) = self.call(Method::Get, &format!("/_alias/{}", self.alias), None).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(Vec::new());
        }
        if !status.is_success() {
            return Err(IndexError::Refused(format!("{status}: {body}")));
        }
        Ok(body.as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default())
    }

    pub async fn exists(&self, index: &str) -> Result<bool, IndexError> {
        let (status, _) = self.call(Method::Get, &format!("/{index}/_count"), None).await?;
        Ok(status.is_success())
    }

    /// A new, empty generation (and its checkpoints index), not yet behind the alias.
    pub async fn create_generation(&self) -> Result<String, IndexError> {
        let index = format!("{}-{}", self.alias, chrono::Utc::now().timestamp_millis());
        self.create(&index, mapping()).await?;
        let checkpoints = json!({ "mappings": { "dynamic": false, "properties": { "topic": { "type": "keyword" } } } });
        self.create(&read_models::search_checkpoints_index(&index), checkpoints).await?;
        Ok(index)
    }

    async fn create(&self, index: &str, body: Value) -> Result<(), IndexError> {
        let (status, body) = self.call(Method::Put, &format!("/{index}"), Some(body.to_string())).await?;
        if !status.is_success() {
            return Err(IndexError::Refused(format!("creating {index}: {status}: {body}")));
        }
        Ok(())
    }

    /// Makes `index` searchable as written, then points the alias at it — and away from whatever
    /// it pointed at — in one `_aliases` call (atomic for searches).
    pub async fn swap_to(&self, index: &str) -> Result<(), IndexError> {
        let (status, body) = self.call(Method::Post, &format!("/{index}/_refresh"), None).await?;
        if !status.is_success() {
            return Err(IndexError::Lost(format!("refreshing {index}: {status}: {body}")));
        }
        let mut actions: Vec<Value> =
            self.aliased().await?.iter().filter(|old| *old != index).map(|old| json!({ "remove": { "index": old, "alias": self.alias } })).collect();
        actions.push(json!({ "add": { "index": index, "alias": self.alias } }));
        let (status, body) = self.call(Method::Post, "/_aliases", Some(json!({ "actions": actions }).to_string())).await?;
        if !status.is_success() {
            return Err(IndexError::Refused(format!("moving alias {}: {status}: {body}", self.alias)));
        }
        Ok(())
    }

    /// Deletes a generation no longer served (after a swap).
    pub async fn drop_generation(&self, index: &str) -> Result<(), IndexError> {
        for name in [index.to_owned(), read_models::search_checkpoints_index(index)] {
            self.call(Method::Delete, &format!("/{name}"), None).await?;
        }
        Ok(())
    }

    /// Next offset per partition of `topic` folded into `index` (empty: from the start).
    pub async fn checkpoints(&self, index: &str, topic: &str) -> Result<HashMap<i32, i64>, IndexError> {
        let (status, body) = self.call(Method::Get, &format!("/{}/_doc/{topic}", read_models::search_checkpoints_index(index)), None).await?;
        if status == StatusCode::NOT_FOUND {
            return match body.get("found") {
                Some(Value::Bool(false)) => Ok(HashMap::new()),
                _ => Err(IndexError::Lost(format!("{index}: {body}"))),
            };
        }
        if !status.is_success() {
            return Err(IndexError::Refused(format!("{status}: {body}")));
        }
        Ok(read_models::checkpoint_offsets(&body))
    }

    pub async fn save_checkpoints(&self, index: &str, topic: &str, checkpoints: &HashMap<i32, i64>) -> Result<(), IndexError> {
        let offsets: serde_json::Map<String, Value> = checkpoints.iter().map(|(p, o)| (p.to_string(), json!(o))).collect();
        let body = json!({ "topic": topic, "offsets": offsets });
        let (status, body) = self.call(Method::Put, &format!("/{}/_doc/{topic}", read_models::search_checkpoints_index(index)), Some(body.to_string())).await?;
        match status {
            s if s.is_success() => Ok(()),
            StatusCode::NOT_FOUND => Err(IndexError::Lost(format!("{index}: {body}"))),
            s => Err(IndexError::Refused(format!("{s}: {body}"))),
        }
    }

    /// The documents of `ids` that `index` holds.
    pub async fn fetch(&self, index: &str, ids: &[String]) -> Result<HashMap<String, ResourceDoc>, IndexError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let (status, body) = self.call(Method::Post, &format!("/{index}/_mget"), Some(json!({ "ids": ids }).to_string())).await?;
        match status {
            s if s.is_success() => {}
            StatusCode::NOT_FOUND => return Err(IndexError::Lost(format!("{index}: {body}"))),
            s => return Err(IndexError::Refused(format!("{s}: {body}"))),
        }
        let mut found = HashMap::new();
        for d in body.get("docs").and_then(Value::as_array).into_iter().flatten() {
            if d.get("found") == Some(&Value::Bool(true)) {
                let source = d.get("_source").cloned().unwrap_or_default();
                let doc: ResourceDoc =
                    serde_json::from_value(source).map_err(|e| IndexError::Refused(format!("a document the projector did not write: {e}")))?;
                found.insert(doc.resource_id.clone(), doc);
            }
        }
        Ok(found)
    }

    /// Writes `docs` in one `_bulk`, each at its resource version (`external_gte`: a judgement
    /// rewrites a document at the same resource version; an older one never overwrites a newer).
    /// Conflicts mean a newer document is already there and are not errors.
    pub async fn write(&self, index: &str, docs: &[&ResourceDoc]) -> Result<(), IndexError> {
        if docs.is_empty() {
            return Ok(());
        }
        let mut body = String::with_capacity(docs.len() * 512);
        for doc in docs {
            let action = json!({ "index": { "_index": index, "_id": doc.resource_id, "version": doc.version, "version_type": "external_gte" } });
            body.push_str(&action.to_string());
            body.push('\n');
            body.push_str(&serde_json::to_string(doc).expect("a document serializes"));
            body.push('\n');
        }
        let (status, response) = self.call(Method::Post, "/_bulk", Some(body)).await?;
        if !status.is_success() {
            return Err(IndexError::Refused(format!("{status}: {response}")));
        }
        if response.get("errors") == Some(&Value::Bool(true)) {
            for item in response.get("items").and_then(Value::as_array).into_iter().flatten() {
                let result = item.get("index").unwrap_or(item);
                let code = result.get("status").and_then(Value::as_u64).unwrap_or(0);
                match code {
                    200..=299 | 409 => {}
                    404 => return Err(IndexError::Lost(format!("{index}: {result}"))),
                    429 | 500.. => return Err(IndexError::Unavailable(result.to_string())),
                    _ => return Err(IndexError::Refused(result.to_string())),
                }
            }
        }
        Ok(())
    }
}
