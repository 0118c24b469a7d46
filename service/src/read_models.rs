//! Names of read models that several binaries must agree on (the projector writes them, the query
//! API reads them).

/// The alias searches read: `vtag.` → `vtag.resources` (OpenSearch index names are lower case).
/// The projector's generations are `{alias}-{millis}` behind it.
pub fn search_alias(topic_prefix: &str) -> String {
    format!("{}resources", topic_prefix.to_lowercase())
}
