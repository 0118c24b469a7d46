//! Judging one resource against a tenant's policies: pure, so the same tags, cost and day always
//! give the same findings (what makes re-evaluation after a policy change, and replay, safe).

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use chrono::NaiveDate;
use regex::Regex;

use super::policy::{Check, Policy, Requirement, TagCondition, ValueRule};
use crate::resource::AppliedTag;
use crate::values::{Provider, TagKey};

/// A resource's effective virtual tags, however they are held.
pub trait TagLookup {
    fn tag(&self, key: &str) -> Option<&str>;
}

impl TagLookup for BTreeMap<String, String> {
    fn tag(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

/// The write model's virtual tags (what the evaluator folds from the resource events).
impl TagLookup for BTreeMap<TagKey, AppliedTag> {
    fn tag(&self, key: &str) -> Option<&str> {
        self.get(key).map(|t| t.value.as_str())
    }
}

/// What a policy looks at: the resource's place and its virtual tags (never the native ones).
#[derive(Clone, Copy)]
pub struct Subject<'a> {
    pub provider: Provider,
    pub account: &'a str,
    pub resource_type: &'a str,
    /// The effective virtual tags, by canonical key.
    pub tags: &'a dyn TagLookup,
    /// Monthly cost in cents and its currency, once a billing import measured it.
    pub monthly_cost: Option<(i64, &'a str)>,
}

/// One way a resource breaks a policy: about one tag key, which is what identifies the violation
/// (policy × resource × key) across evaluations, whatever the message says this time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub policy_id: Arc<str>,
    pub key: Arc<str>,
    pub problem: Problem,
    pub message: Arc<str>,
    /// What would fix it, for people (suggested values come from the rules and models elsewhere).
    pub remediation: Arc<str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// The tag is required and missing (or empty).
    Missing,
    /// The tag is there with a value the policy does not accept.
    Invalid,
}

impl Problem {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Invalid => "invalid",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Missing, Self::Invalid].into_iter().find(|p| p.as_str() == raw)
    }
}

/// Whether the policy judges this resource at all (enabled, in scope, condition or threshold met).
pub fn applies(policy: &Policy, subject: &Subject<'_>) -> bool {
    if !policy.enabled || !policy.scope.covers(subject.provider, subject.account, subject.resource_type) {
        return false;
    }
    match &policy.check {
        Check::RequiredTags { when, .. } => when.as_ref().is_none_or(|c| holds(c, subject.tags)),
        Check::ValueValidation { .. } => true,
        Check::ConditionalRequirement { when, .. } => holds(when, subject.tags),
        Check::CostThreshold { above_cents, currency, .. } => {
            subject.monthly_cost.is_some_and(|(cents, c)| c == currency && cents > *above_cents)
        }
    }
}

/// Every way `subject` breaks `policy` on `today` (dates are judged against it); empty when it
/// complies or the policy does not apply.
pub fn evaluate(policy: &Policy, subject: &Subject<'_>, today: NaiveDate) -> Vec<Finding> {
    let mut found = Vec::new();
    if applies(policy, subject) {
        breaches(policy, subject, today, &mut found);
    }
    found
}

/// The findings of a policy already known to apply, added to `found`.
pub(super) fn breaches(policy: &Policy, subject: &Subject<'_>, today: NaiveDate, found: &mut Vec<Finding>) {
    // The policy's id and the tag key are shared, not copied, into every finding.
    let finding = |key: &Arc<str>, problem: Problem, message: Arc<str>, remediation: Arc<str>| Finding {
        policy_id: Arc::clone(&policy.id),
        key: Arc::clone(key),
        problem,
        message,
        remediation,
    };
    match &policy.check {
        Check::RequiredTags { require, .. } | Check::ConditionalRequirement { require, .. } | Check::CostThreshold { require, .. } => {
            found.extend(require.iter().filter_map(|r| requirement(r, subject.tags, today).map(|(p, m, h)| finding(&r.key, p, m, h))))
        }
        Check::ValueValidation { key, allowed, case_sensitive } => {
            if let Some(value) = subject.tags.tag(key).filter(|v| !one_of(v, allowed, *case_sensitive)) {
                found.push(finding(
                    key,
                    Problem::Invalid,
                    format!("{key} is '{value}'; allowed: {}", allowed.join(", ")).into(),
                    format!("set {key} to one of {}", allowed.join(", ")).into(),
                ));
            }
        }
    }
}

/// A required tag's problem, if any: (problem, message, remediation).
fn requirement(r: &Requirement, tags: &dyn TagLookup, today: NaiveDate) -> Option<(Problem, Arc<str>, Arc<str>)> {
    let key = &r.key;
    let Some(value) = tags.tag(key).filter(|v| !blank(v)) else {
        let (message, remediation) = &r.missing;
        return Some((Problem::Missing, Arc::clone(message), Arc::clone(remediation)));
    };
    let validation = r.validation.as_ref()?;
    let why = broken(&validation.rule, value, today)?;
    let message = match &validation.message {
        Some(m) => format!("{key}: {m} (is '{value}')"),
        None => format!("{key} is '{value}': {why}"),
    };
    Some((Problem::Invalid, message.into(), format!("set {key} to a value that {}", expectation(&validation.rule)).into()))
}

/// Empty or only whitespace (most values start with a letter: decided without trimming).
fn blank(value: &str) -> bool {
    match value.as_bytes().first() {
        Some(b) if b.is_ascii() && !b.is_ascii_whitespace() => false,
        _ => value.trim().is_empty(),
    }
}

/// Why `value` breaks the rule, or None when it satisfies it.
pub(super) fn broken(rule: &ValueRule, value: &str, today: NaiveDate) -> Option<String> {
    match rule {
        ValueRule::Regex(re) => (!re.is_match(value)).then(|| format!("does not match {}", re.as_str())),
        ValueRule::Email => (!EMAIL.is_match(value)).then(|| "is not an email address".to_owned()),
        ValueRule::OneOf { allowed, case_sensitive } => {
            (!one_of(value, allowed, *case_sensitive)).then(|| format!("is not one of {}", allowed.join(", ")))
        }
        ValueRule::Date { max_age_days, must_be_future } => {
            let Ok(date) = NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d") else {
                return Some("is not a date (YYYY-MM-DD)".to_owned());
            };
            if *must_be_future && date <= today {
                return Some(format!("must be after {today}"));
            }
            match max_age_days {
                Some(days) if (today - date).num_days() > i64::from(*days) => Some(format!("is more than {days} days old")),
                _ => None,
            }
        }
    }
}

fn expectation(rule: &ValueRule) -> String {
    match rule {
        ValueRule::Regex(re) => format!("matches {}", re.as_str()),
        ValueRule::Email => "is an email address".to_owned(),
        ValueRule::OneOf { allowed, .. } => format!("is one of {}", allowed.join(", ")),
        ValueRule::Date { max_age_days, must_be_future } => match (max_age_days, must_be_future) {
            (_, true) => "is a future date (YYYY-MM-DD)".to_owned(),
            (Some(days), false) => format!("is a date (YYYY-MM-DD) within the last {days} days"),
            (None, false) => "is a date (YYYY-MM-DD)".to_owned(),
        },
    }
}

fn one_of(value: &str, allowed: &[String], case_sensitive: bool) -> bool {
    allowed.iter().any(|a| if case_sensitive { a == value } else { a.eq_ignore_ascii_case(value) })
}

/// Deliberately plain: one `@`, no spaces, a dot in the domain. Mailbox validity is the mail
/// server's business; the policy only wants something that can be written to.
static EMAIL: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$").expect("valid regex"));

/// Whether a tag condition holds for these tags.
pub fn holds(condition: &TagCondition, tags: &dyn TagLookup) -> bool {
    let eq = |a: &str, b: &str, ignore_case: bool| if ignore_case { a.eq_ignore_ascii_case(b) } else { a == b };
    match condition {
        TagCondition::Equals { key, value, ignore_case } => tags.tag(key).is_some_and(|v| eq(v, value, *ignore_case)),
        TagCondition::NotEquals { key, value, ignore_case } => !tags.tag(key).is_some_and(|v| eq(v, value, *ignore_case)),
        TagCondition::In { key, values, ignore_case } => tags.tag(key).is_some_and(|v| values.iter().any(|x| eq(v, x, *ignore_case))),
        TagCondition::Exists { key } => tags.tag(key).is_some(),
        TagCondition::Missing { key } => tags.tag(key).is_none(),
        TagCondition::Matches { key, pattern } => tags.tag(key).is_some_and(|v| pattern.is_match(v)),
        TagCondition::All(all) => all.iter().all(|c| holds(c, tags)),
        TagCondition::Any(any) => any.iter().any(|c| holds(c, tags)),
    }
}

/// A resource's compliance score, 0–100: the share of the applicable policies' weight (by
/// severity) it satisfies. 100 when no policy applies.
pub fn score(applicable: &[&Policy], violated: &[&Policy]) -> f64 {
    let total: u32 = applicable.iter().map(|p| p.severity.weight()).sum();
    if total == 0 {
        return 100.0;
    }
    let missed: u32 = violated.iter().map(|p| p.severity.weight()).sum();
    100.0 * f64::from(total.saturating_sub(missed)) / f64::from(total)
}
