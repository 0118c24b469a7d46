//! Why a tag has its value: the chain from the raw input (a native tag, a rule, a default, a
//! person) to the value recorded, plus the key's recent changes. Built from the provenance the
//! projector keeps on each value, so it explains exactly what was derived, not what today's
//! configuration would derive.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;
use vtag_domain::TenantId;
use vtag_service::Problem;

use crate::config::{self, RuleJson};
use crate::history::{self, Change};
use crate::resources::{Resource, VirtualTag};
use crate::rfc3339;

/// One step of the chain; `step` names it in JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    NativeTag {
        #[serde(skip_serializing_if = "Option::is_none")]
        native_key: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        native_value: Option<String>,
    },
    KeyMapping {
        /// `canonical` or `alias`.
        #[serde(skip_serializing_if = "Option::is_none")]
        kind: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        to: String,
    },
    ValueMapping {
        /// `kept`, `alias` or `case`.
        #[serde(skip_serializing_if = "Option::is_none")]
        kind: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        to: String,
    },
    Rule {
        #[serde(skip_serializing_if = "Option::is_none")]
        rule_id: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        rule_set_version: Option<i64>,
        /// The rule as that configuration version had it; absent when that version is not here.
        #[serde(skip_serializing_if = "Option::is_none")]
        rule: Option<RuleJson>,
    },
    Default {
        #[serde(skip_serializing_if = "Option::is_none")]
        rule_set_version: Option<i64>,
    },
    /// An origin this build does not know (a newer projector): shown as recorded, not hidden.
    Derived {
        origin: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        rule_id: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        rule_set_version: Option<i64>,
    },
    /// Set by a person or a model (no derivation provenance).
    SetBy {
        actor: String,
        source: String,
        #[serde(serialize_with = "rfc3339::serialize")]
        at: DateTime<Utc>,
    },
    Recorded {
        event_id: Uuid,
        actor: String,
        #[serde(serialize_with = "rfc3339::serialize")]
        at: DateTime<Utc>,
        aggregate_version: i64,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    pub resource_id: Uuid,
    pub key: String,
    pub value: String,
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "rfc3339::serialize_opt")]
    pub as_of: Option<DateTime<Utc>>,
    /// From raw input to the recorded value.
    pub chain: Vec<Step>,
    /// The key's latest changes, newest first.
    pub history: Vec<Change>,
}

/// The chain of `tag`; `rule` is the rule's JSON when the value came from one and it was found.
pub fn chain(tag: &VirtualTag, rule: Option<RuleJson>) -> Vec<Step> {
    let p = &tag.provenance;
    let mut steps = match p.origin.as_deref() {
        Some("native") => vec![
            Step::NativeTag { native_key: p.native_key.clone(), native_value: p.native_value.clone() },
            Step::KeyMapping { kind: p.key_mapping.clone(), from: p.native_key.clone(), to: tag.key.clone() },
            Step::ValueMapping { kind: p.value_mapping.clone(), from: p.native_value.clone(), to: tag.value.clone() },
        ],
        Some("rule") => {
            vec![Step::Rule { rule_id: p.rule_id.clone(), rule_set_version: p.rule_set_version, rule }]
        }
        Some("default") => vec![Step::Default { rule_set_version: p.rule_set_version }],
        Some(other) => vec![Step::Derived {
            origin: other.to_owned(),
            rule_id: p.rule_id.clone(),
            rule_set_version: p.rule_set_version,
        }],
        None => vec![Step::SetBy { actor: tag.updated_by.clone(), source: tag.source.clone(), at: tag.updated_at }],
    };
    steps.push(Step::Recorded {
        event_id: tag.event_id,
        actor: tag.updated_by.clone(),
        at: tag.updated_at,
        aggregate_version: tag.version,
    });
    steps
}

/// Explains `key` of `resource` now, or at `as_of`; `None` when the key has no value then.
pub async fn explain(
    pool: &PgPool,
    tenant: &TenantId,
    resource: &Resource,
    key: &str,
    as_of: Option<DateTime<Utc>>,
    history_limit: i64,
) -> Result<Option<Explanation>, Problem> {
    let tag = match as_of {
        None => resource.virtual_tags.iter().find(|t| t.key == key).cloned(),
        Some(at) => history::tags_as_of(pool, tenant, resource.id, at, Some(key)).await?.into_iter().next(),
    };
    let Some(tag) = tag else { return Ok(None) };
    let rule = match (&tag.provenance.origin, &tag.provenance.rule_id, tag.provenance.rule_set_version) {
        (Some(origin), Some(rule_id), Some(version)) if origin == "rule" => {
            config::rule_at(pool, tenant, version, rule_id).await?
        }
        _ => None,
    };
    let history = history::changes(pool, tenant, resource.id, key, as_of, history_limit).await?;
    Ok(Some(Explanation {
        resource_id: resource.id,
        key: tag.key.clone(),
        value: tag.value.clone(),
        source: tag.source.clone(),
        origin: tag.provenance.origin.clone(),
        as_of,
        chain: chain(&tag, rule),
        history,
    }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::provenance::Provenance;

    fn tag(provenance: Provenance, source: &str) -> VirtualTag {
        let at = rfc3339::parse("2025-11-17T10:00:00Z").unwrap();
        VirtualTag {
            key: "environment".into(),
            value: "production".into(),
            source: source.into(),
            confidence: 1.0,
            created_by: "deriver".into(),
            updated_by: "deriver".into(),
            created_at: at,
            updated_at: at,
            version: 3,
            event_id: Uuid::nil(),
            provenance,
        }
    }

    fn steps(t: &VirtualTag, rule: Option<RuleJson>) -> serde_json::Value {
        serde_json::to_value(chain(t, rule)).unwrap()
    }

    fn recorded() -> serde_json::Value {
        json!({"step": "recorded", "event_id": Uuid::nil(), "actor": "deriver", "at": "2025-11-17T10:00:00Z",
               "aggregate_version": 3})
    }

    #[test]
    fn a_native_value_goes_tag_key_mapping_value_mapping() {
        let p = Provenance {
            origin: Some("native".into()),
            rule_set_version: Some(2),
            native_key: Some("Env".into()),
            native_value: Some(" PROD ".into()),
            key_mapping: Some("alias".into()),
            value_mapping: Some("alias".into()),
            ..Default::default()
        };
        assert_eq!(
            steps(&tag(p, "native"), None),
            json!([
                {"step": "native_tag", "native_key": "Env", "native_value": " PROD "},
                {"step": "key_mapping", "kind": "alias", "from": "Env", "to": "environment"},
                {"step": "value_mapping", "kind": "alias", "from": " PROD ", "to": "production"},
                recorded()
            ])
        );
    }

    #[test]
    fn a_rule_value_cites_the_rule_and_people_are_named() {
        let p = Provenance {
            origin: Some("rule".into()),
            rule_id: Some("prod-by-name".into()),
            rule_set_version: Some(4),
            ..Default::default()
        };
        let rule = json!({"id": "prod-by-name", "key": "environment", "priority": 10, "set": "production"});
        assert_eq!(
            steps(&tag(p, "rule_based"), Some(RuleJson::Stored(rule.clone()))),
            json!([{"step": "rule", "rule_id": "prod-by-name", "rule_set_version": 4, "rule": rule}, recorded()])
        );
        let default = Provenance { origin: Some("default".into()), rule_set_version: Some(4), ..Default::default() };
        assert_eq!(steps(&tag(default, "rule_based"), None)[0], json!({"step": "default", "rule_set_version": 4}));
        assert_eq!(
            steps(&tag(Provenance::default(), "manual"), None),
            json!([{"step": "set_by", "actor": "deriver", "source": "manual", "at": "2025-11-17T10:00:00Z"}, recorded()])
        );
    }
}
