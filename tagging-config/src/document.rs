//! The document's types: a public, versioned format (`format_version: 1`). JSON and YAML carry the
//! same shapes; a rule's JSON body is exactly its YAML form.
//!
//! Alternatives (`set` | `set_from_name` | `lookup`, a test's one operator, `all` | `any` | `not`)
//! are optional fields rather than Rust enums on purpose: serde stops at the first problem and an
//! untagged enum only says "did not match any variant", while compiling checks the choices
//! itself, names the exact path, and reports every mistake of a document at once.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vtag_domain::tagging::{CanonicalKey, Priority, TagSchema};

/// The only format this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// A tenant's whole tagging configuration: tag schema, mappings, rules and per-key defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigDocument {
    #[serde(default = "format_version")]
    pub format_version: u32,
    pub schema: SchemaDoc,
    /// Per key: the value when no rule matches and no native tag supplies one.
    #[serde(default)]
    pub defaults: BTreeMap<String, String>,
    #[serde(default)]
    pub rules: Vec<RuleDoc>,
}

fn format_version() -> u32 {
    FORMAT_VERSION
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaDoc {
    #[serde(default)]
    pub keys: Vec<KeyDoc>,
}

/// One canonical key of the schema and the spellings that map to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyDoc {
    pub key: String,
    pub priority: PriorityDoc,
    /// Empty: any value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_values: Vec<String>,
    /// Other spellings of the key, compared in normalized form (`env`, `Environment_Name`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Spelling → canonical value (`PRD: production`); spellings compare case-insensitively.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub value_aliases: BTreeMap<String, String>,
    /// Compare and store values in lower case. Absent: true when `allowed_values` is non-empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lowercase: Option<bool>,
}

impl KeyDoc {
    pub fn lowercase_values(&self) -> bool {
        self.lowercase.unwrap_or(!self.allowed_values.is_empty())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriorityDoc {
    Critical,
    High,
    Medium,
    Low,
}

impl From<PriorityDoc> for Priority {
    fn from(p: PriorityDoc) -> Self {
        match p {
            PriorityDoc::Critical => Priority::Critical,
            PriorityDoc::High => Priority::High,
            PriorityDoc::Medium => Priority::Medium,
            PriorityDoc::Low => Priority::Low,
        }
    }
}

impl From<Priority> for PriorityDoc {
    fn from(p: Priority) -> Self {
        match p {
            Priority::Critical => PriorityDoc::Critical,
            Priority::High => PriorityDoc::High,
            Priority::Medium => PriorityDoc::Medium,
            Priority::Low => PriorityDoc::Low,
        }
    }
}

impl SchemaDoc {
    /// The document form of a compiled schema; compiling it gives back an equal schema.
    pub fn from_schema(schema: &TagSchema) -> Self {
        Self { keys: schema.keys().iter().map(KeyDoc::from_key).collect() }
    }
}

impl KeyDoc {
    fn from_key(k: &CanonicalKey) -> Self {
        let doc = Self {
            key: k.key.clone(),
            priority: k.priority.into(),
            allowed_values: k.allowed_values.clone(),
            aliases: k.key_aliases.clone(),
            // Stored spellings are already in compared form, which compiles to themselves.
            value_aliases: k.value_aliases.clone(),
            lowercase: None,
        };
        // Written out only where it differs from what an absent `lowercase` means.
        let lowercase = (doc.lowercase_values() != k.lowercase_values).then_some(k.lowercase_values);
        Self { lowercase, ..doc }
    }
}

/// One business rule: when `when` holds, the `key` tag takes the value of exactly one of `set`,
/// `set_from_name` or `lookup`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDoc {
    pub id: String,
    pub key: String,
    /// Lower runs first, among the rules of the same key.
    pub priority: u32,
    #[serde(default = "enabled")]
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Absent: always.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<ConditionDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_from_name: Option<NameCaptureDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookup: Option<LookupDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "rfc3339")]
    pub effective_from: Option<DateTime<Utc>>,
    /// Exclusive.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "rfc3339")]
    pub effective_to: Option<DateTime<Utc>>,
}

fn enabled() -> bool {
    true
}

/// A test (`field` and exactly one operator, optionally `ignore_case`) or a combination (exactly
/// one of `all`, `any`, `not`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionDoc {
    /// `name`, `provider`, `account`, `region`, `resource_type`, `monthly_cost`, `native.<key>`,
    /// `tag.<key>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<String>,
    #[serde(default, rename = "in", skip_serializing_if = "Option::is_none")]
    pub in_: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contains: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_with: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_with: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// Only `true`: absence is `{not: {field: …, exists: true}}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exists: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gt: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gte: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lt: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lte: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_case: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all: Option<Vec<ConditionDoc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub any: Option<Vec<ConditionDoc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not: Option<Box<ConditionDoc>>,
}

/// The value is a named capture group of a regex over the resource name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameCaptureDoc {
    pub regex: String,
    pub group: String,
}

/// The value is looked up by a field's value (account → owner); no entry, no value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LookupDoc {
    pub field: String,
    pub table: BTreeMap<String, String>,
}

/// A mapping to merge into the schema (`POST /api/v1/tag-mappings`): aliases and value aliases are
/// added to the key, `priority` and `allowed_values` replace the key's when given. A key not in
/// the schema yet is created, and then needs a priority.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingDoc {
    pub key: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub value_aliases: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<PriorityDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_values: Option<Vec<String>>,
}

impl ConfigDocument {
    /// What a tenant starts with: the seed taxonomy, no rules, no defaults.
    pub fn initial() -> Self {
        Self {
            format_version: FORMAT_VERSION,
            schema: SchemaDoc::from_schema(&TagSchema::seed_default()),
            defaults: BTreeMap::new(),
            rules: Vec::new(),
        }
    }
}

/// Timestamps as RFC 3339 text, with a message that says so when one is not.
mod rfc3339 {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        let Some(text) = Option::<String>::deserialize(d)? else { return Ok(None) };
        DateTime::parse_from_rfc3339(&text).map(|t| Some(t.with_timezone(&Utc))).map_err(|e| {
            serde::de::Error::custom(format!("invalid RFC 3339 timestamp '{text}' (e.g. 2026-01-01T00:00:00Z): {e}"))
        })
    }
}
