//! The tag schema: which keys the organisation uses, how important each is, which values are
//! allowed, and the aliases under which clouds and teams spell them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use super::fx::FxMap;
use super::normalize::{key_form, value_form, ValueMapping};

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
///
/// Everything normalization asks per native tag is answered here from tables built once in
/// [`TagSchema::new`]: the schema never changes after (its keys are only lent out, immutably).
#[derive(Debug, Clone)]
pub struct TagSchema {
    /// Tells schemas apart for what normalization remembers per thread (see `normalize`); a clone,
    /// which answers alike, keeps it.
    id: u64,
    keys: Vec<CanonicalKey>,
    /// Every spelling's key form → the index of its key in `keys`.
    by_form: FxMap<String, usize>,
    /// Per key, the key form of its canonical spelling.
    forms: Vec<String>,
    /// Per key, lower-case value → the value it stands for.
    values: Vec<FxMap<String, KnownValue>>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// Schemas are equal by their keys: everything else is built from them.
impl PartialEq for TagSchema {
    fn eq(&self, other: &Self) -> bool {
        self.keys == other.keys
    }
}

/// A value a key maps a spelling to, and how: through a value alias, or an allowed value's case.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct KnownValue {
    pub value: String,
    /// The mapping when the spelling differs from `value`.
    pub mapping: ValueMapping,
}

impl TagSchema {
    pub fn new(keys: Vec<CanonicalKey>) -> Self {
        let forms: Vec<String> = keys.iter().map(|k| key_form(&k.key)).collect();
        let mut by_form = FxMap::default();
        for (i, form) in forms.iter().enumerate() {
            // The canonical spelling wins over an alias that happens to normalize the same way.
            by_form.insert(form.clone(), i);
        }
        for (i, k) in keys.iter().enumerate() {
            for alias in &k.key_aliases {
                by_form.entry(key_form(alias)).or_insert(i);
            }
        }
        let values = keys.iter().map(known_values).collect();
        Self { id: NEXT_ID.fetch_add(1, Ordering::Relaxed), keys, by_form, forms, values }
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    pub fn keys(&self) -> &[CanonicalKey] {
        &self.keys
    }

    /// The canonical key a native key (in any spelling) stands for.
    pub fn lookup(&self, native_key: &str) -> Option<&CanonicalKey> {
        self.lookup_form(&key_form(native_key)).map(|i| &self.keys[i])
    }

    /// The index in [`TagSchema::keys`] of the key a key form stands for.
    pub(crate) fn lookup_form(&self, form: &str) -> Option<usize> {
        self.by_form.get(form).copied()
    }

    /// The key form of the canonical spelling of `keys()[index]`.
    pub(crate) fn canonical_form(&self, index: usize) -> &str {
        &self.forms[index]
    }

    /// What a value of `keys()[index]`, in lower case, stands for, if the key names it.
    pub(crate) fn known_value(&self, index: usize, lower: &str) -> Option<&KnownValue> {
        self.values[index].get(lower)
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

/// A key's value spellings, by lower case: value aliases first (they are looked up first), then the
/// first allowed value of each lower case.
fn known_values(key: &CanonicalKey) -> FxMap<String, KnownValue> {
    let mut known: FxMap<String, KnownValue> = key
        .value_aliases
        .iter()
        .map(|(spelling, value)| (spelling.clone(), KnownValue { value: value.clone(), mapping: ValueMapping::Alias }))
        .collect();
    for value in &key.allowed_values {
        known.entry(value.to_lowercase()).or_insert_with(|| KnownValue { value: value.clone(), mapping: ValueMapping::Case });
    }
    known
}
