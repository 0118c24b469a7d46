//! The document's types: the seed's policy objects (`policy_id`, `policy_type`, `rules` with
//! `severity`, `grace_period_hours`, `escalation` inside) in a list, plus an optional `scope`.
//!
//! The seed writes conditions both as text (`tags.environment == 'production'`) and as objects
//! (`{field, operator, value}`), and required tags both as names and as `{tag_key, validation}`:
//! those fields are kept as JSON values and read by `compile`, which names the exact path of
//! whatever is wrong (an untagged serde enum would only say "did not match any variant").

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The only format this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoliciesDocument {
    #[serde(default = "format_version")]
    pub format_version: u32,
    #[serde(default)]
    pub policies: Vec<PolicyDoc>,
}

fn format_version() -> u32 {
    FORMAT_VERSION
}

impl Default for PoliciesDocument {
    /// No policies yet (a tenant's version 0).
    fn default() -> Self {
        Self { format_version: FORMAT_VERSION, policies: Vec::new() }
    }
}

fn enabled() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDoc {
    pub policy_id: String,
    pub policy_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// `required_tags`, `value_validation`, `conditional_requirement` or `cost_threshold`.
    pub policy_type: String,
    #[serde(default = "enabled")]
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<ScopeDoc>,
    pub rules: RulesDoc,
}

/// Which resources the policy judges; absent lists do not narrow.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeDoc {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<String>,
    /// Exact (`ec2:instance`) or a family (`ec2:*`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_types: Vec<String>,
}

/// Every field any policy type uses; `compile` checks that each policy uses its own.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesDoc {
    /// required_tags: only resources where this holds (text or object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Value>,
    /// required_tags, cost_threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_tags: Option<Vec<String>>,
    /// required_tags, cost_threshold: how some required tags' values must look, by key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<BTreeMap<String, ValidationDoc>>,
    /// value_validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_values: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_sensitive: Option<bool>,
    /// conditional_requirement (text or object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub if_condition: Option<Value>,
    /// conditional_requirement: names, or `{tag_key, validation}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub then_require: Option<Vec<Value>>,
    /// cost_threshold (Appendix C form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_threshold: Option<ThresholdDoc>,
    /// cost_threshold (short form: an amount in USD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<serde_json::Number>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<String>,
    /// critical, high, medium (default) or low.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period_hours: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation: Option<EscalationDoc>,
    /// Kept as written; vtag never changes cloud resources, and applies suggested virtual tags only
    /// through the remediation flow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_remediate: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdDoc {
    /// Kept as written (`500` stays `500` in the export).
    pub amount: serde_json::Number,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationDoc {
    pub to: String,
    pub after_hours: u32,
}

/// How a value must look: `regex` (pattern), `email`, `enum` (allowed_values), `date`
/// (format YYYY-MM-DD, max_age_days, must_be_future).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidationDoc {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_values: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_sensitive: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub must_be_future: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
