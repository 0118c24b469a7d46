//! What a compliance policy says, checked: the seed's four policy types over the virtual tag
//! layer, with severity, grace period, escalation and scope. Policies never touch a cloud
//! resource; they only judge the tags vtag shows for it.

use std::fmt;
use std::sync::Arc;

use regex::Regex;

use crate::values::Provider;

/// How urgent a violation is (seed: critical — immediate; high — 24 h; medium — a week; low — best
/// effort). Ordered from the most to the least severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Critical,
    High,
    Medium,
    Low,
}

impl Severity {
    pub const ALL: [Severity; 4] = [Severity::Critical, Severity::High, Severity::Medium, Severity::Low];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::High => "high",
            Self::Medium => "medium",
            Self::Low => "low",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str().eq_ignore_ascii_case(raw.trim()))
    }

    /// A violation's weight in a resource's compliance score: a missed critical policy costs more
    /// than a missed low one.
    pub fn weight(self) -> u32 {
        match self {
            Self::Critical => 8,
            Self::High => 4,
            Self::Medium => 2,
            Self::Low => 1,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which resources a policy judges. Empty lists do not narrow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    pub providers: Vec<Provider>,
    pub accounts: Vec<String>,
    /// Exact types (`ec2:instance`) or a type family ending in `*` (`ec2:*`).
    pub resource_types: Vec<String>,
}

impl Scope {
    pub fn covers(&self, provider: Provider, account: &str, resource_type: &str) -> bool {
        let typed = |pattern: &String| match pattern.strip_suffix('*') {
            Some(prefix) => resource_type.starts_with(prefix),
            None => pattern == resource_type,
        };
        (self.providers.is_empty() || self.providers.contains(&provider))
            && (self.accounts.is_empty() || self.accounts.iter().any(|a| a == account))
            && (self.resource_types.is_empty() || self.resource_types.iter().any(typed))
    }
}

/// Who is told when a violation stays open, and after how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escalation {
    /// An address or a routing target (`finance-team@company.com`).
    pub to: Arc<str>,
    /// Hours after the violation became due (its grace period over) that it escalates.
    pub after_hours: u32,
}

/// A condition on a resource's virtual tags (the seed's `if_condition`).
#[derive(Debug, Clone)]
pub enum TagCondition {
    Equals { key: String, value: String, ignore_case: bool },
    NotEquals { key: String, value: String, ignore_case: bool },
    In { key: String, values: Vec<String>, ignore_case: bool },
    Exists { key: String },
    Missing { key: String },
    Matches { key: String, pattern: Regex },
    All(Vec<TagCondition>),
    Any(Vec<TagCondition>),
}

/// How a required tag's value must look (the seed's `validation`).
#[derive(Debug, Clone)]
pub enum ValueRule {
    Regex(Regex),
    Email,
    OneOf { allowed: Vec<String>, case_sensitive: bool },
    /// A `YYYY-MM-DD` date, at most `max_age_days` in the past, or strictly in the future.
    Date { max_age_days: Option<u32>, must_be_future: bool },
}

#[derive(Debug, Clone)]
pub struct Validation {
    pub rule: ValueRule,
    /// What the policy's author wants people to read when the value is wrong.
    pub message: Option<String>,
}

/// A tag the policy requires, and optionally how its value must look.
#[derive(Debug, Clone)]
pub struct Requirement {
    pub key: Arc<str>,
    pub validation: Option<Validation>,
    /// What a violation for its absence says, and what fixes it: the same for every resource, so
    /// written once and shared by every violation opened for it.
    pub(super) missing: (Arc<str>, Arc<str>),
}

impl Requirement {
    pub fn new(key: &str, validation: Option<Validation>) -> Self {
        let missing = (format!("{key} is required").into(), format!("set the {key} tag").into());
        Self { key: key.into(), validation, missing }
    }

    pub fn present(key: impl AsRef<str>) -> Self {
        Self::new(key.as_ref(), None)
    }
}

/// What a policy checks (the seed's `policy_type`).
#[derive(Debug, Clone)]
pub enum Check {
    /// Every resource in scope (matching `when`, if given) carries these tags.
    RequiredTags { when: Option<TagCondition>, require: Vec<Requirement> },
    /// Where the key is present, its value is one of `allowed`. A missing key is not this policy's
    /// concern (a required-tags policy says whether it must be there).
    ValueValidation { key: Arc<str>, allowed: Vec<String>, case_sensitive: bool },
    /// If the condition holds, these tags are required.
    ConditionalRequirement { when: TagCondition, require: Vec<Requirement> },
    /// A resource whose monthly cost (30-day run rate, see P3) is above the amount requires these
    /// tags. Costs in another currency are not converted: the policy does not apply to them.
    CostThreshold { above_cents: i64, currency: String, require: Vec<Requirement> },
}

impl Check {
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::RequiredTags { .. } => "required_tags",
            Self::ValueValidation { .. } => "value_validation",
            Self::ConditionalRequirement { .. } => "conditional_requirement",
            Self::CostThreshold { .. } => "cost_threshold",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Policy {
    /// Shared with every finding, violation and judgement that names it.
    pub id: Arc<str>,
    pub name: String,
    pub description: String,
    pub enabled: bool,
    pub severity: Severity,
    /// A new violation stays pending (shown, not alerted) this long.
    pub grace_period_hours: u32,
    pub escalation: Option<Escalation>,
    pub scope: Scope,
    pub check: Check,
}
