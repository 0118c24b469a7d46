//! Remediation: values that would fix a violation, ranked, each with its reasoning — what a person
//! reviews before applying them in bulk (the seed's "Compliance Remediation" flow). Suggestions
//! come from the policy itself (an allowed value close to what is there) and from peers (what the
//! resources sharing an account or another tag carry for the key); ML models add theirs later. A
//! value that would still break the policy is never suggested.

use chrono::NaiveDate;

use super::evaluate::broken;
use super::policy::{Check, Policy, ValueRule};

/// Where a suggestion comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SuggestionSource {
    /// An allowed value of the policy.
    Policy,
    /// Resources like this one carry it.
    Peers,
}

impl SuggestionSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Policy => "policy",
            Self::Peers => "peers",
        }
    }
}

/// What resources sharing something with this one carry for the key: `agreeing` of the `seen`
/// resources that share `basis` (`account 123456789012`, `team=payments`) have `value`.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerEvidence {
    pub value: String,
    pub basis: String,
    pub agreeing: u32,
    pub seen: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Suggestion {
    pub value: String,
    /// 0–1; a heuristic, not a calibrated model probability.
    pub confidence: f64,
    pub source: SuggestionSource,
    pub reasoning: String,
}

/// At most this many suggestions per violation: a reviewer reads them all.
pub const MAX_SUGGESTIONS: usize = 5;

/// The rule `policy` puts on `key`'s value: `Some(None)` when any non-empty value will do, `None`
/// when the policy says nothing about the key.
fn rule_for<'p>(policy: &'p Policy, key: &str) -> Option<Option<RuleRef<'p>>> {
    match &policy.check {
        Check::ValueValidation { key: k, allowed, case_sensitive } if **k == *key => Some(Some(RuleRef::Allowed(allowed, *case_sensitive))),
        Check::ValueValidation { .. } => None,
        Check::RequiredTags { require, .. } | Check::ConditionalRequirement { require, .. } | Check::CostThreshold { require, .. } => {
            require.iter().find(|r| *r.key == *key).map(|r| r.validation.as_ref().map(|v| RuleRef::Rule(&v.rule)))
        }
    }
}

enum RuleRef<'p> {
    Allowed(&'p [String], bool),
    Rule(&'p ValueRule),
}

impl RuleRef<'_> {
    fn allowed(&self) -> Option<(&[String], bool)> {
        match self {
            Self::Allowed(values, case_sensitive) => Some((values, *case_sensitive)),
            Self::Rule(ValueRule::OneOf { allowed, case_sensitive }) => Some((allowed, *case_sensitive)),
            Self::Rule(_) => None,
        }
    }
}

/// Whether `value` satisfies what `policy` asks of `key` on `today`.
pub fn satisfies(policy: &Policy, key: &str, value: &str, today: NaiveDate) -> bool {
    if value.trim().is_empty() {
        return false;
    }
    match rule_for(policy, key) {
        None | Some(None) => true,
        Some(Some(RuleRef::Allowed(allowed, case_sensitive))) => {
            broken(&ValueRule::OneOf { allowed: allowed.to_vec(), case_sensitive }, value, today).is_none()
        }
        Some(Some(RuleRef::Rule(rule))) => broken(rule, value, today).is_none(),
    }
}

/// How sure peers make us: the share agreeing, shrunk towards zero when few were seen (2 of 2 is
/// weaker evidence than 40 of 40).
fn peer_confidence(agreeing: u32, seen: u32) -> f64 {
    if seen == 0 {
        return 0.0;
    }
    let share = f64::from(agreeing) / f64::from(seen);
    share * f64::from(seen) / f64::from(seen + 2)
}

/// How close an allowed value is to what the resource carries: differing in case only, one
/// abbreviating the other (`prod` → `production`), or unrelated.
fn closeness(current: &str, allowed: &str) -> Option<(f64, String)> {
    let (c, a) = (current.trim().to_lowercase(), allowed.to_lowercase());
    if c.is_empty() {
        return None;
    }
    if c == a {
        return Some((0.95, format!("'{current}' differs from the allowed '{allowed}' only in case")));
    }
    if a.starts_with(&c) || c.starts_with(&a) {
        return Some((0.7, format!("'{current}' looks like an abbreviation of the allowed '{allowed}'")));
    }
    None
}

/// Ranked suggestions for the violation of `policy` about `key`, whose value is `current` (none
/// when missing), from the policy's allowed values and `peers`.
pub fn suggest(policy: &Policy, key: &str, current: Option<&str>, peers: &[PeerEvidence], today: NaiveDate) -> Vec<Suggestion> {
    let mut found: Vec<Suggestion> = Vec::new();
    if let Some(Some(rule)) = rule_for(policy, key) {
        if let Some((allowed, _)) = rule.allowed() {
            for a in allowed {
                let (confidence, reasoning) = match current.and_then(|c| closeness(c, a)) {
                    Some(close) => close,
                    // Without a resemblance, every allowed value is as likely as the next.
                    None => (0.3 / allowed.len() as f64, format!("one of the values {} allows", policy.id)),
                };
                found.push(Suggestion { value: a.clone(), confidence, source: SuggestionSource::Policy, reasoning });
            }
        }
    }
    for p in peers {
        found.push(Suggestion {
            value: p.value.clone(),
            confidence: peer_confidence(p.agreeing, p.seen),
            source: SuggestionSource::Peers,
            reasoning: format!("{} of {} resources with {} have {key}={}", p.agreeing, p.seen, p.basis, p.value),
        });
    }
    found.retain(|s| Some(s.value.as_str()) != current && satisfies(policy, key, &s.value, today));
    // One entry per value: the strongest reason first, the others appended.
    found.sort_by(|a, b| b.confidence.total_cmp(&a.confidence).then_with(|| a.value.cmp(&b.value)));
    let mut ranked: Vec<Suggestion> = Vec::new();
    for s in found {
        match ranked.iter_mut().find(|r| r.value == s.value) {
            Some(r) => {
                r.reasoning = format!("{}; {}", r.reasoning, s.reasoning);
                r.confidence = (r.confidence + (1.0 - r.confidence) * s.confidence * 0.5).min(0.99);
            }
            None => ranked.push(s),
        }
    }
    ranked.sort_by(|a, b| b.confidence.total_cmp(&a.confidence).then_with(|| a.value.cmp(&b.value)));
    ranked.truncate(MAX_SUGGESTIONS);
    for s in &mut ranked {
        s.confidence = (s.confidence * 100.0).round() / 100.0;
    }
    ranked
}
