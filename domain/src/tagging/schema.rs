//! The tag schema: which keys the organisation uses, how important each is, which values are
//! allowed, and the aliases under which clouds and teams spell them.

use std::collections::BTreeMap;

use super::normalize::{key_form, value_form};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    Critical,
    High,
    Medium,
    Low,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CanonicalKey {
    pub key: String,
    pub priority: Priority,
    /// Empty: any value. Otherwise values are matched case-insensitively and stored as listed here.
    pub allowed_values: Vec<String>,
    /// Other spellings of the key (compared in normalized form).
    pub key_aliases: Vec<String>,
    /// Other spellings of values → the canonical value (compared in normalized form).
    pub value_aliases: BTreeMap<String, String>,
    /// Values of this key are compared and stored in lower case (teams, environments, …).
    pub lowercase_values: bool,
}

impl CanonicalKey {
    pub fn new(key: &str, priority: Priority) -> Self {
        Self {
            key: key.to_owned(),
            priority,
            allowed_values: Vec::new(),
            key_aliases: Vec::new(),
            value_aliases: BTreeMap::new(),
            lowercase_values: false,
        }
    }

    pub fn allowed(mut self, values: &[&str]) -> Self {
        self.allowed_values = values.iter().map(|v| (*v).to_owned()).collect();
        self.lowercase_values = true;
        self
    }

    pub fn aliases(mut self, keys: &[&str]) -> Self {
        self.key_aliases.extend(keys.iter().map(|k| (*k).to_owned()));
        self
    }

    pub fn value_alias(mut self, canonical: &str, spellings: &[&str]) -> Self {
        for s in spellings {
            self.value_aliases.insert(value_form(s).to_lowercase(), canonical.to_owned());
        }
        self
    }

    pub fn lowercase(mut self) -> Self {
        self.lowercase_values = true;
        self
    }
}

/// The canonical keys of a tenant, looked up by any of their spellings.
#[derive(Debug, Clone, PartialEq)]
pub struct TagSchema {
    keys: Vec<CanonicalKey>,
    by_form: BTreeMap<String, usize>,
}

impl TagSchema {
    pub fn new(keys: Vec<CanonicalKey>) -> Self {
        let mut by_form = BTreeMap::new();
        for (i, k) in keys.iter().enumerate() {
            // The canonical spelling wins over an alias that happens to normalize the same way.
            by_form.insert(key_form(&k.key), i);
        }
        for (i, k) in keys.iter().enumerate() {
            for alias in &k.key_aliases {
                by_form.entry(key_form(alias)).or_insert(i);
            }
        }
        Self { keys, by_form }
    }

    pub fn keys(&self) -> &[CanonicalKey] {
        &self.keys
    }

    /// The canonical key a native key (in any spelling) stands for.
    pub fn lookup(&self, native_key: &str) -> Option<&CanonicalKey> {
        self.by_form.get(&key_form(native_key)).map(|i| &self.keys[*i])
    }

    /// The seed's taxonomy and normalization examples.
    pub fn seed_default() -> Self {
        use Priority::*;
        Self::new(vec![
            CanonicalKey::new("environment", Critical)
                .allowed(&["production", "staging", "development", "sandbox", "test"])
                .aliases(&["env", "environment-name", "stage", "tier"])
                .value_alias("production", &["prod", "prd", "live", "production"])
                .value_alias("staging", &["stg", "stage", "staging"])
                .value_alias("development", &["dev", "develop", "development"])
                .value_alias("sandbox", &["sbx", "sandbox"])
                .value_alias("test", &["tst", "qa", "test"]),
            CanonicalKey::new("cost-center", Critical)
                .aliases(&["costcenter", "cost-centre", "cc", "cost-code"])
                .lowercase()
                .value_alias("engineering", &["eng", "engineering", "eng-001", "r&d"])
                .value_alias("marketing", &["mkt", "marketing"])
                .value_alias("sales", &["sales"]),
            CanonicalKey::new("owner", Critical).aliases(&["owned-by", "contact"]),
            CanonicalKey::new("project", High).aliases(&["project-name", "proj"]).lowercase(),
            CanonicalKey::new("team", High).aliases(&["squad", "team-name"]).lowercase(),
            CanonicalKey::new("application", High).aliases(&["app", "app-name", "service"]).lowercase(),
            CanonicalKey::new("business-unit", Medium).aliases(&["bu", "businessunit"]).lowercase(),
            CanonicalKey::new("data-classification", Medium)
                .aliases(&["classification", "data-class"])
                .allowed(&["public", "internal", "confidential", "restricted", "sensitive"]),
            CanonicalKey::new("backup", Medium).aliases(&["backup-policy"]).lowercase(),
            CanonicalKey::new("auto-stop", Medium).aliases(&["autostop", "auto-shutdown"]).lowercase(),
            CanonicalKey::new("compliance", Medium).aliases(&["compliance-framework"]),
        ])
    }
}
