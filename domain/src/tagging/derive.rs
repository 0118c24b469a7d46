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

use super::normalize::{normalize, KeyMapping, ValueMapping};
use super::rules::{Facts, RuleSet};
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
    derive_traced(config, facts, people, at, None)
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
    derive_traced(config, facts, people, at, Some(&mut hits));
    hits
}

fn derive_traced(
    config: &TaggingConfig,
    facts: &ResourceFacts,
    people: &BTreeMap<String, String>,
    at: DateTime<Utc>,
    mut hits: Option<&mut Vec<RuleHit>>,
) -> BTreeMap<String, DerivedTag> {
    let normalized = normalize(&config.schema, &facts.native_tags);
    let native: BTreeMap<String, String> = normalized.iter().map(|(k, t)| (k.clone(), t.value.clone())).collect();
    // Only keys of the schema become virtual tags; others stay readable to rules as native tags.
    let mut out: BTreeMap<String, DerivedTag> = normalized
        .into_values()
        .filter(|t| t.key_mapping != KeyMapping::Unknown)
        .map(|t| {
            let origin = Origin::Native {
                native_key: t.native_key,
                native_value: t.native_value,
                key_mapping: t.key_mapping,
                value_mapping: t.value_mapping,
            };
            (t.key, DerivedTag { value: t.value, origin })
        })
        .collect();
    // What rules see as "the virtual tag": people's value, else what is derived so far.
    let mut effective = native.clone();
    effective.extend(people.iter().map(|(k, v)| (k.clone(), v.clone())));

    for (key, rules) in config.rules.plan() {
        let decided = {
            let view = Facts {
                name: &facts.name,
                provider: &facts.provider,
                account: &facts.account,
                region: &facts.region,
                resource_type: &facts.resource_type,
                native: &native,
                virtual_tags: &effective,
                monthly_cost: facts.monthly_cost,
            };
            match hits.as_deref_mut() {
                None => config.rules.first_match(rules, &view, at),
                Some(hits) => {
                    let mut winner = None;
                    for rule in rules {
                        if let Some(value) = rule.evaluate(&view, at) {
                            hits.push(RuleHit { rule_id: rule.id.clone(), won: winner.is_none() });
                            winner.get_or_insert((value, rule));
                        }
                    }
                    winner
                }
            }
        };
        let chosen = match decided {
            Some((value, rule)) => Some(DerivedTag { value, origin: Origin::Rule { rule_id: rule.id.clone() } }),
            None if out.contains_key(key) => None,
            None => config.rules.defaults().get(key).map(|v| DerivedTag { value: v.clone(), origin: Origin::Default }),
        };
        if let Some(tag) = chosen {
            if !people.contains_key(key) {
                effective.insert(key.to_owned(), tag.value.clone());
            }
            out.insert(key.to_owned(), tag);
        }
    }
    out
}
