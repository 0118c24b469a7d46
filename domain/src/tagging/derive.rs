//! Derivation: from what a collector saw (facts and native tags) and a tenant's tagging
//! configuration, the virtual tags a resource should carry — each with where it came from.
//!
//! Only the tag schema's keys are promoted from native tags to virtual tags: the virtual layer is
//! the organisation's vocabulary, and stray native keys (`aws:cloudformation:stack-id`, …) stay
//! what they are — inputs rules can read (normalized in form) — and never reach a dashboard.
//!
//! Order per key (highest first): what people set (manual, user-confirmed; decided by the resource
//! aggregate, not here) > the first matching rule > the native tag after normalization > the key's
//! default. Rules are business corrections of what teams typed, so they beat native tags; a default
//! ("unallocated") only fills a gap. Inference will slot in below rules (P6).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::eval::{LiteralMemo, Program, Reading, TagValues};
use super::normalize::{normalize_borrowed, KeyMapping, Normalized, ValueMapping};
use super::rules::RuleSet;
use super::schema::TagSchema;

/// A tenant's whole tagging configuration at one version: every change (schema, mapping, rule,
/// order, enablement) publishes a new version, and derived tags name the version they came from.
#[derive(Debug, Clone)]
pub struct TaggingConfig {
    pub version: u64,
    pub schema: TagSchema,
    pub rules: RuleSet,
}

impl TaggingConfig {
    /// What a tenant starts with before publishing anything: the seed taxonomy, no rules.
    pub fn initial() -> Self {
        Self { version: 0, schema: TagSchema::seed_default(), rules: RuleSet::default() }
    }
}

/// What derivation may look at for one resource.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceFacts {
    pub provider: String,
    pub account: String,
    pub region: String,
    pub resource_type: String,
    pub name: String,
    pub native_tags: BTreeMap<String, String>,
    pub monthly_cost: Option<f64>,
}

/// Why a derived tag has its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A native tag, through the tag schema's key and value mappings.
    Native { native_key: String, native_value: String, key_mapping: KeyMapping, value_mapping: ValueMapping },
    Rule { rule_id: String },
    /// The key's default in the rule set: no rule matched and no native tag supplied a value.
    Default,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DerivedTag {
    pub value: String,
    pub origin: Origin,
}

/// Derives a resource's tags under `config` as of `at`. `people` are the tags people set (manual,
/// user-confirmed): rules reading another virtual tag see those first, as every reader does.
/// Deterministic: same inputs, same output.
pub fn derive(
    config: &TaggingConfig,
    facts: &ResourceFacts,
    people: &BTreeMap<String, String>,
    at: DateTime<Utc>,
) -> BTreeMap<String, DerivedTag> {
    let mut out = BTreeMap::new();
    derive_each(config, facts, people, at, |tag| {
        out.insert(tag.key.to_owned(), DerivedTag { value: tag.value.to_owned(), origin: tag.origin.to_origin() });
    });
    out
}

/// One derived tag, borrowed from the configuration, the facts and `people`: a decision compares
/// it with what the resource carries and copies only what changed.
#[derive(Debug, Clone, Copy)]
pub struct DerivedRef<'a> {
    pub key: &'a str,
    pub value: &'a str,
    pub origin: OriginRef<'a>,
}

/// [`Origin`], borrowed.
#[derive(Debug, Clone, Copy)]
pub enum OriginRef<'a> {
    Native { native_key: &'a str, native_value: &'a str, key_mapping: &'a KeyMapping, value_mapping: &'a ValueMapping },
    Rule { rule_id: &'a str },
    Default,
}

impl OriginRef<'_> {
    pub fn to_origin(&self) -> Origin {
        match *self {
            Self::Native { native_key, native_value, key_mapping, value_mapping } => Origin::Native {
                native_key: native_key.to_owned(),
                native_value: native_value.to_owned(),
                key_mapping: key_mapping.clone(),
                value_mapping: value_mapping.clone(),
            },
            Self::Rule { rule_id } => Origin::Rule { rule_id: rule_id.to_owned() },
            Self::Default => Origin::Default,
        }
    }

    /// The rule that set the value, if one did.
    pub fn rule_id(&self) -> Option<&str> {
        match self {
            Self::Rule { rule_id } => Some(rule_id),
            _ => None,
        }
    }
}

/// [`derive`] without copying: `visit` sees each derived tag once (rules' and defaults' keys in
/// evaluation order, then native tags), borrowed. This is what a decision runs for every resource
/// of a re-derivation, where almost every tag is unchanged.
pub fn derive_each(
    config: &TaggingConfig,
    facts: &ResourceFacts,
    people: &BTreeMap<String, String>,
    at: DateTime<Utc>,
    visit: impl FnMut(DerivedRef<'_>),
) {
    derive_traced(config, facts, people, at, None, visit);
}

/// A rule whose condition held for a resource, and whether it was the one that set the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleHit {
    pub rule_id: String,
    pub won: bool,
}

/// [`derive`], also reporting every rule that matched (not only the winner of each key): a rule
/// that matches resources but never wins is shadowed by the rules before it.
pub fn rule_hits(
    config: &TaggingConfig,
    facts: &ResourceFacts,
    people: &BTreeMap<String, String>,
    at: DateTime<Utc>,
) -> Vec<RuleHit> {
    let mut hits = Vec::new();
    derive_traced(config, facts, people, at, Some(&mut hits), |_| {});
    hits
}

fn derive_traced(
    config: &TaggingConfig,
    facts: &ResourceFacts,
    people: &BTreeMap<String, String>,
    at: DateTime<Utc>,
    mut hits: Option<&mut Vec<RuleHit>>,
    mut visit: impl FnMut(DerivedRef<'_>),
) {
    let program = config.rules.program();
    // Keys outside the schema matter only to rules reading them as native tags.
    let normalized = normalize_borrowed(&config.schema, &facts.native_tags, |form| program.slots().get(form).is_some());
    let mut reading = reading(program, facts, &normalized, people);
    let mut decided: Vec<&str> = Vec::with_capacity(program.keys().len());
    for key in program.keys() {
        let chosen = match program.decide(config.rules.rules(), key, &reading, at, hits.as_deref_mut()) {
            Some((value, rule)) => Some((value, OriginRef::Rule { rule_id: &rule.id })),
            None if promoted(&normalized, &key.key) => None,
            None => key.default.as_deref().map(|v| (v, OriginRef::Default)),
        };
        if let Some((value, origin)) = chosen {
            if let (Some(slot), false) = (key.slot, people.contains_key(&key.key)) {
                reading.virtual_tags.set(slot, Some(value));
            }
            decided.push(&key.key);
            visit(DerivedRef { key: &key.key, value, origin });
        }
    }
    // Native tags of the schema's keys fill what rules and defaults left.
    for tag in normalized.iter().filter(|t| t.key_mapping != KeyMapping::Unknown) {
        if !decided.contains(&tag.key.as_ref()) {
            visit(DerivedRef { key: &tag.key, value: &tag.value, origin: native_origin(tag) });
        }
    }
}

/// What rules read of the resource: its facts, its normalized native tags, and as virtual tags
/// people's values, else the native ones (until rules decide theirs).
fn reading<'a>(
    program: &'a Program,
    facts: &'a ResourceFacts,
    normalized: &'a [Normalized<'a>],
    people: &'a BTreeMap<String, String>,
) -> Reading<'a> {
    let slots = program.slots();
    let mut native = TagValues::new(slots);
    for tag in normalized {
        if let Some(slot) = slots.get(&tag.key) {
            native.set(slot, Some(tag.value.as_ref()));
        }
    }
    let mut virtual_tags = native.clone();
    if !people.is_empty() {
        for (slot, key) in slots.keys().iter().enumerate() {
            if let Some(value) = people.get(key) {
                virtual_tags.set(slot, Some(value));
            }
        }
    }
    Reading {
        name: &facts.name,
        provider: &facts.provider,
        account: &facts.account,
        region: &facts.region,
        resource_type: &facts.resource_type,
        monthly_cost: facts.monthly_cost,
        native,
        virtual_tags,
        literals: LiteralMemo::new(slots),
    }
}

/// Whether a native tag of the schema's `key` becomes a virtual tag (unless a rule decides the key).
fn promoted(normalized: &[Normalized<'_>], key: &str) -> bool {
    normalized.binary_search_by(|t| t.key.as_ref().cmp(key)).is_ok_and(|i| normalized[i].key_mapping != KeyMapping::Unknown)
}

fn native_origin<'a>(t: &'a Normalized<'a>) -> OriginRef<'a> {
    OriginRef::Native {
        native_key: t.native_key,
        native_value: t.native_value,
        key_mapping: &t.key_mapping,
        value_mapping: &t.value_mapping,
    }
}
