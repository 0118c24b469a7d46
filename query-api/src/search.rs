//! `GET /api/v1/search`: the dashboard's resource list over the search read model (OpenSearch):
//! full text on names, exact filters (provider, account, region, type, compliance status, tags,
//! missing tags), facets for every filter, pages by `search_after`. Only virtual tags are in the
//! index; every query is confined to the caller's tenant.
//!
//! While the index is being built (first start, a rebuild after the search server lost its data)
//! there is nothing consistent to show: the answer is 503, never a half-built list.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use opensearch::http::headers::{HeaderMap, HeaderValue, CONTENT_TYPE};
use opensearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use opensearch::http::{Method, StatusCode, Url};
use opensearch::OpenSearch;
use serde::Serialize;
use serde_json::{json, Value};
use vtag_domain::{Provider, TagKey};
use vtag_service::{read_models, Caller, Problem, Role};

use crate::cursor;
use crate::rest::unreadable_query;
use crate::state::AppState;

const DEFAULT_SIZE: usize = 50;
const MAX_SIZE: usize = 500;
/// Buckets per facet (tag values: per key).
const FACET_SIZE: usize = 25;

/// The search read model's client: the server and the alias searches read.
#[derive(Clone)]
pub struct SearchModel {
    client: OpenSearch,
    alias: String,
}

impl SearchModel {
    pub fn connect(url: &str, topic_prefix: &str) -> anyhow::Result<Self> {
        let url = Url::parse(url).map_err(|e| anyhow::anyhow!("VTAG_OPENSEARCH_URL {url:?}: {e}"))?;
        let transport = TransportBuilder::new(SingleNodeConnectionPool::new(url)).timeout(Duration::from_secs(10)).build()?;
        Ok(Self { client: OpenSearch::new(transport), alias: read_models::search_alias(topic_prefix) })
    }

    async fn get(&self, path: &str) -> Result<(StatusCode, Value), String> {
        let response = self
            .client
            .send(Method::Get, path, HeaderMap::new(), None::<&()>, None::<String>, None)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status_code();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    /// The serving generation's checkpoints (next offset per partition) of each of `topics`;
    /// `None` while no generation serves (being built).
    pub async fn checkpoints(&self, topics: &[String]) -> Result<Option<HashMap<String, HashMap<i32, i64>>>, String> {
        let (status, aliases) = self.get(&format!("/_alias/{}", self.alias)).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(format!("{status}: {aliases}"));
        }
        let Some(generation) = read_models::served_generation(&aliases) else { return Ok(None) };
        let mut out = HashMap::new();
        for topic in topics {
            let (status, doc) = self.get(&format!("/{}/_doc/{topic}", read_models::search_checkpoints_index(&generation))).await?;
            if !status.is_success() && doc.get("found") != Some(&json!(false)) {
                return Err(format!("{status}: {doc}"));
            }
            out.insert(topic.clone(), read_models::checkpoint_offsets(&doc));
        }
        Ok(Some(out))
    }

    async fn search(&self, body: &Value) -> Result<Value, Problem> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let path = format!("/{}/_search", self.alias);
        let response = self
            .client
            .send(Method::Post, &path, headers, None::<&()>, Some(body.to_string()), None)
            .await
            .map_err(|e| Problem::unavailable(format!("the search server is unreachable: {e}")))?;
        let status = response.status_code();
        let value: Value = response.json().await.map_err(|e| Problem::unavailable(format!("the search server answered badly: {e}")))?;
        match status {
            // A partial answer (a shard failed or timed out) is no answer.
            s if s.is_success() && value.pointer("/_shards/failed").and_then(Value::as_u64).unwrap_or(0) == 0 && value["timed_out"] != json!(true) => {
                Ok(value)
            }
            s if s.is_success() => Err(Problem::unavailable("the search server answered for part of the index only; retry shortly")),
            StatusCode::NOT_FOUND => Err(Problem::unavailable("the search index is being built from the event log; retry shortly")),
            StatusCode::TOO_MANY_REQUESTS | StatusCode::REQUEST_TIMEOUT => Err(Problem::unavailable("the search server is busy; retry shortly")),
            s if s.is_server_error() => Err(Problem::unavailable(format!("the search server failed ({s}); retry shortly"))),
            s => {
                tracing::error!(status = %s, answer = %value, "search failed");
                Err(Problem::internal(format!("the search server refused the query ({s})")))
            }
        }
    }
}

/// The query, checked.
#[derive(Debug, Default, PartialEq)]
pub struct SearchQuery {
    pub text: Option<String>,
    pub provider: Option<String>,
    pub account: Option<String>,
    pub region: Option<String>,
    pub resource_type: Option<String>,
    pub compliance: Option<String>,
    /// key, and a value unless any value will do.
    pub tags: Vec<(String, Option<String>)>,
    pub missing: Vec<String>,
    pub size: usize,
    pub after: Option<Value>,
}

const COMPLIANCE: [&str; 3] = ["compliant", "non_compliant", "not_evaluated"];

impl SearchQuery {
    /// From the query string's pairs (`tag` and `missing` repeat); an unknown parameter is an
    /// error rather than a filter silently ignored.
    pub fn parse(pairs: &[(String, String)]) -> Result<Self, Problem> {
        let mut q = SearchQuery { size: DEFAULT_SIZE, ..Self::default() };
        let once = |slot: &mut Option<String>, field: &str, value: &str| {
            if slot.replace(value.to_owned()).is_some() {
                return Err(Problem::invalid_field(field, "once", "may be given once"));
            }
            Ok(())
        };
        for (name, value) in pairs {
            match name.as_str() {
                "q" => once(&mut q.text, "q", value)?,
                "provider" => {
                    let p = Provider::parse(value).map_err(|e| Problem::invalid_field("provider", e.rule, e.message))?;
                    once(&mut q.provider, "provider", p.as_str())?
                }
                "account" => once(&mut q.account, "account", value)?,
                "region" => once(&mut q.region, "region", value)?,
                "type" => once(&mut q.resource_type, "type", value)?,
                "compliance" => {
                    if !COMPLIANCE.contains(&value.as_str()) {
                        return Err(Problem::invalid_field("compliance", "one_of", format!("must be one of {}", COMPLIANCE.join(", "))));
                    }
                    once(&mut q.compliance, "compliance", value)?
                }
                "tag" => {
                    let (key, v) = match value.split_once(':') {
                        Some((k, v)) => (k, Some(v.to_owned())),
                        None => (value.as_str(), None),
                    };
                    let key = TagKey::parse(key).map_err(|e| Problem::invalid_field("tag", e.rule, format!("key:value or key; {}", e.message)))?;
                    q.tags.push((key.as_str().to_owned(), v));
                }
                "missing" => {
                    let key = TagKey::parse(value).map_err(|e| Problem::invalid_field("missing", e.rule, e.message))?;
                    q.missing.push(key.as_str().to_owned());
                }
                "size" => {
                    q.size = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_SIZE).contains(n))
                        .ok_or_else(|| Problem::invalid_field("size", "range", format!("must be 1 to {MAX_SIZE}")))?
                }
                "after" => {
                    let (name, id) = cursor::decode(value)?;
                    q.after = Some(json!([name, id]));
                }
                other => return Err(Problem::invalid_field(other, "unknown", "not a search parameter (q, provider, account, region, type, compliance, tag, missing, size, after)")),
            }
        }
        Ok(q)
    }

    /// The OpenSearch request: the tenant's described resources, filtered, sorted by name then id.
    pub fn body(&self, tenant: &str) -> Value {
        let mut filter = vec![json!({ "term": { "tenant": tenant } }), json!({ "range": { "version": { "gte": 1 } } })];
        let exact = [
            ("provider", &self.provider),
            ("account", &self.account),
            ("region", &self.region),
            ("resource_type", &self.resource_type),
            ("compliance_status", &self.compliance),
        ];
        for (field, value) in exact {
            if let Some(v) = value {
                filter.push(json!({ "term": { field: v } }));
            }
        }
        for (key, value) in &self.tags {
            let mut on_tag = vec![json!({ "term": { "tags.key": key } })];
            if let Some(v) = value {
                on_tag.push(json!({ "term": { "tags.value": v } }));
            }
            filter.push(json!({ "nested": { "path": "tags", "query": { "bool": { "filter": on_tag } } } }));
        }
        let must_not: Vec<Value> =
            self.missing.iter().map(|key| json!({ "nested": { "path": "tags", "query": { "term": { "tags.key": key } } } })).collect();
        let mut boolean = json!({ "filter": filter, "must_not": must_not });
        if let Some(text) = &self.text {
            boolean["must"] = json!([{ "match": { "resource_name": { "query": text, "operator": "and" } } }]);
        }
        let terms = |field: &str| json!({ "terms": { "field": field, "size": FACET_SIZE } });
        let mut body = json!({
            "size": self.size,
            "track_total_hits": true,
            "query": { "bool": boolean },
            "sort": [{ "name_sort": "asc" }, { "resource_id": "asc" }],
            "aggs": {
                "provider": terms("provider"),
                "account": terms("account"),
                "region": terms("region"),
                "resource_type": terms("resource_type"),
                "compliance_status": terms("compliance_status"),
                "tags": {
                    "nested": { "path": "tags" },
                    "aggs": { "keys": { "terms": { "field": "tags.key", "size": 100 }, "aggs": { "values": terms("tags.value") } } }
                }
            }
        });
        if let Some(after) = &self.after {
            body["search_after"] = after.clone();
        }
        body
    }
}

#[derive(Debug, Serialize)]
pub struct SearchBody {
    /// Resources matching (all pages).
    pub total: u64,
    pub resources: Vec<Value>,
    /// The `after` of the next page; absent on the last.
    pub next: Option<String>,
    pub facets: Facets,
}

#[derive(Debug, Serialize, Default)]
pub struct Facets {
    pub provider: Vec<Bucket>,
    pub account: Vec<Bucket>,
    pub region: Vec<Bucket>,
    pub resource_type: Vec<Bucket>,
    pub compliance_status: Vec<Bucket>,
    /// Per tag key: how many matching resources carry it, and its commonest values.
    pub tags: Vec<TagFacet>,
}

#[derive(Debug, Serialize)]
pub struct Bucket {
    pub value: String,
    pub count: u64,
}

#[derive(Debug, Serialize)]
pub struct TagFacet {
    pub key: String,
    pub count: u64,
    pub values: Vec<Bucket>,
}

pub async fn search(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<SearchBody>, Problem> {
    caller.require(Role::Viewer)?;
    let Query(pairs) = params.map_err(unreadable_query)?;
    let query = SearchQuery::parse(&pairs)?;
    let answer = state.search.search(&query.body(caller.tenant.as_str())).await?;
    Ok(Json(read_answer(&answer, query.size)))
}

fn read_answer(answer: &Value, size: usize) -> SearchBody {
    let hits = answer.pointer("/hits/hits").and_then(Value::as_array).cloned().unwrap_or_default();
    let next = (hits.len() == size)
        .then(|| hits.last().and_then(|h| h.get("sort")).and_then(|s| Some(cursor::encode(s.get(0)?.as_str()?, s.get(1)?.as_str()?))))
        .flatten();
    let resources = hits.into_iter().filter_map(|mut h| h.get_mut("_source").map(Value::take)).map(shown).collect();
    let buckets = |v: Option<&Value>| -> Vec<Bucket> {
        v.and_then(|v| v.get("buckets")).and_then(Value::as_array).into_iter().flatten().filter_map(bucket).collect()
    };
    let aggs = answer.get("aggregations");
    let agg = |name: &str| aggs.and_then(|a| a.get(name));
    let tags = agg("tags")
        .and_then(|t| t.pointer("/keys/buckets"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|b| {
            let Bucket { value, count } = bucket(b)?;
            Some(TagFacet { key: value, count, values: buckets(b.get("values")) })
        })
        .collect();
    SearchBody {
        total: answer.pointer("/hits/total/value").and_then(Value::as_u64).unwrap_or(0),
        resources,
        next,
        facets: Facets {
            provider: buckets(agg("provider")),
            account: buckets(agg("account")),
            region: buckets(agg("region")),
            resource_type: buckets(agg("resource_type")),
            compliance_status: buckets(agg("compliance_status")),
            tags,
        },
    }
}

fn bucket(b: &Value) -> Option<Bucket> {
    let value = match b.get("key")? {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    Some(Bucket { value, count: b.get("doc_count")?.as_u64()? })
}

/// A document as the API shows it: the index's sort helper and tenant left out.
fn shown(mut doc: Value) -> Value {
    if let Some(map) = doc.as_object_mut() {
        map.remove("name_sort");
        map.remove("tenant");
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cursor::B64;
    use base64::Engine;

    fn pairs(raw: &[(&str, &str)]) -> Vec<(String, String)> {
        raw.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn parses_filters_repeated_tags_and_a_cursor() {
        let cursor = B64.encode(r#"["web","r-1"]"#);
        let q = SearchQuery::parse(&pairs(&[
            ("q", "payments api"),
            ("provider", "aws"),
            ("tag", "team:payments"),
            ("tag", "env"),
            ("missing", "owner"),
            ("size", "10"),
            ("after", &cursor),
        ]))
        .unwrap();
        assert_eq!(q.tags, vec![("team".to_owned(), Some("payments".to_owned())), ("env".to_owned(), None)]);
        assert_eq!(q.missing, ["owner"]);
        let body = q.body("acme");
        assert_eq!(body["search_after"], json!(["web", "r-1"]));
        assert_eq!(body["query"]["bool"]["filter"][0], json!({ "term": { "tenant": "acme" } }), "the tenant is always filtered");
        assert_eq!(body["query"]["bool"]["must_not"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn bad_parameters_name_the_field_and_the_rule() {
        let field_of = |raw: &[(&str, &str)]| {
            let p = SearchQuery::parse(&pairs(raw)).unwrap_err();
            let body = serde_json::to_value(&p).unwrap();
            (body["errors"][0]["field"].as_str().unwrap().to_owned(), body["errors"][0]["rule"].as_str().unwrap().to_owned())
        };
        assert_eq!(field_of(&[("provider", "oracle")]).0, "provider");
        assert_eq!(field_of(&[("size", "0")]), ("size".into(), "range".into()));
        assert_eq!(field_of(&[("compliance", "maybe")]), ("compliance".into(), "one_of".into()));
        assert_eq!(field_of(&[("after", "nonsense")]), ("after".into(), "cursor".into()));
        assert_eq!(field_of(&[("tenant", "other")]), ("tenant".into(), "unknown".into()));
        assert_eq!(field_of(&[("q", "a"), ("q", "b")]), ("q".into(), "once".into()));
    }

    #[test]
    fn the_next_cursor_is_given_only_after_a_full_page() {
        let answer = json!({
            "hits": { "total": { "value": 3 }, "hits": [
                { "_source": { "resource_id": "a", "tenant": "acme", "name_sort": "a" }, "sort": ["a", "a"] },
                { "_source": { "resource_id": "b", "tenant": "acme", "name_sort": "b" }, "sort": ["b", "b"] }
            ] },
            "aggregations": { "provider": { "buckets": [{ "key": "aws", "doc_count": 3 }] },
                "tags": { "doc_count": 4, "keys": { "buckets": [{ "key": "team", "doc_count": 2, "values": { "buckets": [{ "key": "x", "doc_count": 2 }] } }] } } }
        });
        let page = read_answer(&answer, 2);
        assert_eq!(page.total, 3);
        assert_eq!(B64.decode(page.next.unwrap()).unwrap(), br#"["b","b"]"#);
        assert!(page.resources[0].get("tenant").is_none());
        assert_eq!(page.facets.provider[0].count, 3);
        assert_eq!(page.facets.tags[0].values[0].value, "x");
        assert!(read_answer(&answer, 3).next.is_none());
    }
}
