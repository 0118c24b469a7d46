//! Names and layouts of read models that several binaries must agree on (the projectors write
//! them; the query API, the tests and the benchmarks read them).

use std::collections::HashMap;

use serde_json::Value;

/// The alias searches read: `vtag.` → `vtag.resources` (OpenSearch index names are lower case).
/// The projector's generations are `{alias}-{millis}` behind it.
pub fn search_alias(topic_prefix: &str) -> String {
    format!("{}resources", topic_prefix.to_lowercase())
}

/// Whether `index` is a generation of `alias` (`{alias}-{millis}`, not its checkpoints index).
pub fn is_search_generation(alias: &str, index: &str) -> bool {
    index.strip_prefix(alias).and_then(|rest| rest.strip_prefix('-')).is_some_and(|millis| !millis.is_empty() && millis.bytes().all(|b| b.is_ascii_digit()))
}

/// The index holding a search generation's checkpoints: one document per topic, id = the topic,
/// `{"topic": …, "offsets": {"<partition>": <next offset>, …}}`.
pub fn search_checkpoints_index(generation: &str) -> String {
    format!("{generation}-checkpoints")
}

/// The generation an `_alias` answer (`{"<index>": {"aliases": …}, …}`) serves: the newest, should
/// a race have left the alias on two (names end in creation millis).
pub fn served_generation(aliases: &Value) -> Option<String> {
    aliases.as_object().and_then(|m| m.keys().max().cloned())
}

/// Next offset per partition from a checkpoints document as `GET …/_doc/{topic}` answers it (empty
/// when there is none yet).
pub fn checkpoint_offsets(doc: &Value) -> HashMap<i32, i64> {
    let offsets = doc.pointer("/_source/offsets").and_then(Value::as_object);
    offsets.into_iter().flatten().filter_map(|(p, o)| Some((p.parse().ok()?, o.as_i64()?))).collect()
}

/// Where the graph server is: `VTAG_BOLT_URL` (`host:port`), `VTAG_BOLT_USER`,
/// `VTAG_BOLT_PASSWORD`, `VTAG_BOLT_DATABASE`; the graph projector and the query API read the same.
#[derive(Debug, Clone)]
pub struct BoltSettings {
    pub url: String,
    pub user: String,
    pub password: String,
    pub database: String,
}

impl BoltSettings {
    pub const DEFAULT_URL: &'static str = "127.0.0.1:17687";

    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Self {
        Self {
            url: var("VTAG_BOLT_URL").unwrap_or_else(|| Self::DEFAULT_URL.to_owned()),
            user: var("VTAG_BOLT_USER").unwrap_or_else(|| "root".to_owned()),
            password: var("VTAG_BOLT_PASSWORD").unwrap_or_default(),
            database: var("VTAG_BOLT_DATABASE").unwrap_or_else(|| "graph".to_owned()),
        }
    }
}

/// The graph's model node (`(:GraphModel {uid})`), whose `serving` property names the generation
/// queries read: `vtag.` → `vtag.graph`. Generations are `{model}-{millis}`; every node of one
/// carries `gen` and a uid that starts with it, so generations (and tests' prefixes) never meet.
pub fn graph_model(topic_prefix: &str) -> String {
    format!("{topic_prefix}graph")
}

/// Whether `generation` is one of `model`'s (`{model}-{millis}`).
pub fn is_graph_generation(model: &str, generation: &str) -> bool {
    is_search_generation(model, generation)
}

/// The generation the graph's model node names (`$model`: [`graph_model`]), as `serving`.
pub const GRAPH_SERVING: &str = "MATCH (m:GraphModel {uid: $model}) RETURN m.serving AS serving";

/// A generation's checkpoint of one topic (`$uid`: [`graph_checkpoint_uid`]), as `offsets`: JSON,
/// next offset by partition, the layout [`checkpoint_offsets`] reads for search.
pub const GRAPH_CHECKPOINT: &str = "MATCH (c:Checkpoint {uid: $uid}) RETURN c.offsets AS offsets";

/// The uid of `generation`'s checkpoint node for `topic` (no tenant: `-`).
pub fn graph_checkpoint_uid(generation: &str, topic: &str) -> String {
    graph_uid(generation, "-", &["checkpoint", topic])
}

/// A graph node's uid: its generation, tenant and name parts joined by `|`, which neither tenants
/// nor tag keys may contain (a tag value, which may, only ever comes last).
pub fn graph_uid(generation: &str, tenant: &str, parts: &[&str]) -> String {
    let mut uid = format!("{generation}|{tenant}");
    for part in parts {
        uid.push('|');
        uid.push_str(part);
    }
    uid
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn generations_and_checkpoints_read_as_written() {
        assert_eq!(search_alias("T1."), "t1.resources");
        assert!(is_search_generation("t1.resources", "t1.resources-1795436532928"));
        assert!(!is_search_generation("t1.resources", &search_checkpoints_index("t1.resources-1795436532928")));
        assert!(!is_search_generation("t1.resources", "t1.resources-raw-0"));
        let aliases = json!({ "t1.resources-1795436532928": {}, "t1.resources-1795436599999": {} });
        assert_eq!(served_generation(&aliases).as_deref(), Some("t1.resources-1795436599999"));
        assert_eq!(served_generation(&json!({})), None);
        let doc = json!({ "_source": { "topic": "x", "offsets": { "0": 12, "3": 7 } } });
        assert_eq!(checkpoint_offsets(&doc), HashMap::from([(0, 12), (3, 7)]));
        assert!(checkpoint_offsets(&json!({ "found": false })).is_empty());
    }

    #[test]
    fn graph_names_keep_generations_and_tenants_apart() {
        assert_eq!(graph_model("t1."), "t1.graph");
        assert!(is_graph_generation("t1.graph", "t1.graph-1795436532928"));
        assert!(!is_graph_generation("t1.graph", "t2.graph-1795436532928"));
        assert_eq!(graph_uid("t1.graph-1", "acme", &["tag", "env", "prod"]), "t1.graph-1|acme|tag|env|prod");
        assert_ne!(graph_uid("g", "acme", &["team", "x"]), graph_uid("g", "acme", &["project", "x"]));
    }
}
