//! Where a derived tag value came from, as the projector records it on `virtual_tags` and on every
//! `tag_audit` row: one shape for both tables, so the current tags, the as-of tags, the audit trail
//! and explain all read and print it the same way.

use serde::Serialize;

/// All fields are NULL for values set by people or models: provenance exists only for derived ones.
/// Nulls are left out of JSON, so a manual tag reads exactly as it did before derivation existed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Provenance {
    /// `native`, `rule` or `default`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
    /// The configuration version the value was derived under.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_set_version: Option<i64>,
    /// The one native tag a `native` value was normalized from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub native_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub native_value: Option<String>,
    /// `canonical` or `alias`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_mapping: Option<String>,
    /// `kept`, `alias` or `case`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_mapping: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_without_provenance_prints_nothing() {
        assert_eq!(serde_json::to_value(Provenance::default()).unwrap(), serde_json::json!({}));
        let p = Provenance { origin: Some("rule".into()), rule_set_version: Some(3), ..Default::default() };
        assert_eq!(serde_json::to_value(p).unwrap(), serde_json::json!({"origin": "rule", "rule_set_version": 3}));
    }
}
