//! Normalization: native tags, spelled however a cloud or a team spelled them, become canonical tags
//! of the tag schema — and every result says which native tag and which mapping produced it, so
//! "why does this resource carry environment=production?" always has an answer.

use std::collections::BTreeMap;

use super::schema::{CanonicalKey, TagSchema};

/// Prefixes clouds put on keys they define; the rest of the key is what carries meaning.
const PROVIDER_PREFIXES: [&str; 5] = ["aws:", "azure:", "ms:", "gcp:", "goog-"];

/// The normalized form of a key: provider prefix dropped, camelCase split, lower case, and any run
/// of separators (space, `_`, `-`, `.`, `/`, `:`) turned into one `-`. `CostCenter`, `cost_center`
/// and ` Cost Center ` all become `cost-center`.
pub fn key_form(raw: &str) -> String {
    let trimmed = raw.trim();
    let lower_prefix = trimmed.to_ascii_lowercase();
    let unprefixed = PROVIDER_PREFIXES
        .iter()
        .find(|p| lower_prefix.starts_with(*p) && trimmed.len() > p.len())
        .map_or(trimmed, |p| &trimmed[p.len()..]);
    let chars: Vec<char> = unprefixed.chars().collect();
    let mut out = String::with_capacity(unprefixed.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_alphanumeric() {
            let prev = i.checked_sub(1).map(|j| chars[j]);
            let next = chars.get(i + 1);
            // a word boundary inside camelCase ("costCenter") or after an acronym ("APIKey")
            let boundary = c.is_uppercase()
                && prev.is_some_and(|p| p.is_lowercase() || p.is_ascii_digit()
                    || (p.is_uppercase() && next.is_some_and(|n| n.is_lowercase())));
            if boundary && !out.is_empty() && !out.ends_with('-') {
                out.push('-');
            }
            out.extend(c.to_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}

/// The normalized form of a value: trimmed, inner runs of whitespace collapsed to one space.
pub fn value_form(raw: &str) -> String {
    raw.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// How a canonical tag was obtained from a native one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyMapping {
    /// The native key is the canonical key, up to form (`Environment` → `environment`).
    Canonical,
    /// The native key is a declared alias (`env` → `environment`).
    Alias,
    /// The key is not in the schema: kept, normalized in form only.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueMapping {
    /// Kept as reported (trimmed).
    Kept,
    /// A declared value alias (`PROD` → `production`).
    Alias,
    /// Matched an allowed value, or lower-cased for a key compared in lower case.
    Case,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizedTag {
    pub key: String,
    pub value: String,
    pub native_key: String,
    pub native_value: String,
    pub key_mapping: KeyMapping,
    pub value_mapping: ValueMapping,
    /// False when the key restricts its values and this one is not among them.
    pub allowed: bool,
}

/// Normalizes a resource's native tags. Deterministic: when several native keys map to one canonical
/// key (`env` and `Environment` on the same resource), the one spelled like the canonical key wins,
/// then the alphabetically first native key. Empty values carry nothing and are dropped.
pub fn normalize(schema: &TagSchema, native: &BTreeMap<String, String>) -> BTreeMap<String, NormalizedTag> {
    let mut out: BTreeMap<String, (u8, NormalizedTag)> = BTreeMap::new();
    for (native_key, native_value) in native {
        let value = value_form(native_value);
        if value.is_empty() {
            continue;
        }
        let form = key_form(native_key);
        if form.is_empty() {
            continue;
        }
        let tag = match schema.lookup(native_key) {
            Some(canonical) => canonical_tag(canonical, native_key, native_value, &form, value),
            None => NormalizedTag {
                key: form,
                value,
                native_key: native_key.clone(),
                native_value: native_value.clone(),
                key_mapping: KeyMapping::Unknown,
                value_mapping: ValueMapping::Kept,
                allowed: true,
            },
        };
        let rank = u8::from(tag.key_mapping != KeyMapping::Canonical);
        // BTreeMap iteration is alphabetical, so on equal rank the first native key stays.
        match out.get(&tag.key) {
            Some((existing, _)) if *existing <= rank => {}
            _ => {
                out.insert(tag.key.clone(), (rank, tag));
            }
        }
    }
    out.into_iter().map(|(k, (_, t))| (k, t)).collect()
}

fn canonical_tag(canonical: &CanonicalKey, native_key: &str, native_value: &str, form: &str, value: String) -> NormalizedTag {
    let key_mapping = if form == key_form(&canonical.key) { KeyMapping::Canonical } else { KeyMapping::Alias };
    let lower = value.to_lowercase();
    let (value, value_mapping) = if let Some(v) = canonical.value_aliases.get(&lower) {
        let mapping = if *v == value { ValueMapping::Kept } else { ValueMapping::Alias };
        (v.clone(), mapping)
    } else if let Some(v) = canonical.allowed_values.iter().find(|a| a.to_lowercase() == lower) {
        let mapping = if *v == value { ValueMapping::Kept } else { ValueMapping::Case };
        (v.clone(), mapping)
    } else if canonical.lowercase_values && lower != value {
        (lower, ValueMapping::Case)
    } else {
        (value, ValueMapping::Kept)
    };
    let allowed = canonical.allowed_values.is_empty() || canonical.allowed_values.contains(&value);
    NormalizedTag {
        key: canonical.key.clone(),
        value,
        native_key: native_key.to_owned(),
        native_value: native_value.to_owned(),
        key_mapping,
        value_mapping,
        allowed,
    }
}

impl KeyMapping {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Canonical => "canonical",
            Self::Alias => "alias",
            Self::Unknown => "unknown",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Canonical, Self::Alias, Self::Unknown].into_iter().find(|m| m.as_str() == raw)
    }
}

impl ValueMapping {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Kept => "kept",
            Self::Alias => "alias",
            Self::Case => "case",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Kept, Self::Alias, Self::Case].into_iter().find(|m| m.as_str() == raw)
    }
}
