//! Business rules: ordered, explainable, and pure.
//!
//! A rule says "if this condition holds for a resource, its `key` tag takes this value". Rules are
//! evaluated per key in priority order and the first rule that matches *and* yields a value wins —
//! the behaviour FinOps teams know from AWS Cost Categories — with an optional per-key default
//! (e.g. `unallocated`). Every derived value names the rule (or the default) and the rule-set version
//! that produced it, which is what makes "why does this resource carry team=payments?" answerable
//! and a rule change re-derivable.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use regex::Regex;

/// What a condition can look at.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    Name,
    Provider,
    Account,
    Region,
    ResourceType,
    /// A native tag after normalization, by canonical key.
    NativeTag(String),
    /// Another virtual tag (as derived so far or set by people).
    VirtualTag(String),
    MonthlyCost,
}

#[derive(Debug, Clone)]
pub enum Operator {
    Equals(String),
    In(Vec<String>),
    Contains(String),
    StartsWith(String),
    EndsWith(String),
    Matches(Regex),
    Exists,
    GreaterThan(f64),
    GreaterOrEqual(f64),
    LessThan(f64),
    LessOrEqual(f64),
}

#[derive(Debug, Clone)]
pub enum Condition {
    /// Always true: a catch-all rule.
    Always,
    Test { field: Field, operator: Operator, ignore_case: bool },
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
}

/// Where the value comes from when a rule matches.
#[derive(Debug, Clone)]
pub enum Action {
    Set(String),
    /// A capture group of a regex over the resource name (`^(?P<app>[a-z]+)-` → `app`).
    NameCapture { pattern: Regex, group: String },
    /// A lookup table keyed by a field's value (account → owner). No entry: the rule does not apply.
    Lookup { field: Field, table: BTreeMap<String, String> },
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    /// The virtual tag this rule sets.
    pub key: String,
    /// Lower runs first.
    pub priority: u32,
    pub enabled: bool,
    pub condition: Condition,
    pub action: Action,
    pub effective_from: Option<DateTime<Utc>>,
    pub effective_to: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    pub version: u64,
    pub rules: Vec<Rule>,
    /// Per key: the value when no rule matches.
    pub defaults: BTreeMap<String, String>,
}

/// What rules may look at for one resource.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub name: &'a str,
    pub provider: &'a str,
    pub account: &'a str,
    pub region: &'a str,
    pub resource_type: &'a str,
    pub native: &'a BTreeMap<String, String>,
    pub virtual_tags: &'a BTreeMap<String, String>,
    pub monthly_cost: Option<f64>,
}

/// A derived value and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Derived {
    pub value: String,
    /// `None`: the key's default value.
    pub rule_id: Option<String>,
    pub rule_set_version: u64,
}

impl Facts<'_> {
    fn text(&self, field: &Field) -> Option<String> {
        match field {
            Field::Name => Some(self.name.to_owned()),
            Field::Provider => Some(self.provider.to_owned()),
            Field::Account => Some(self.account.to_owned()),
            Field::Region => Some(self.region.to_owned()),
            Field::ResourceType => Some(self.resource_type.to_owned()),
            Field::NativeTag(k) => self.native.get(k).cloned(),
            Field::VirtualTag(k) => self.virtual_tags.get(k).cloned(),
            Field::MonthlyCost => self.monthly_cost.map(|c| c.to_string()),
        }
    }

    fn number(&self, field: &Field) -> Option<f64> {
        match field {
            Field::MonthlyCost => self.monthly_cost,
            other => self.text(other).and_then(|t| t.trim().parse().ok()),
        }
    }
}

impl Condition {
    pub fn holds(&self, facts: &Facts<'_>) -> bool {
        match self {
            Condition::Always => true,
            Condition::All(cs) => cs.iter().all(|c| c.holds(facts)),
            Condition::Any(cs) => cs.iter().any(|c| c.holds(facts)),
            Condition::Not(c) => !c.holds(facts),
            Condition::Test { field, operator, ignore_case } => test(facts, field, operator, *ignore_case),
        }
    }
}

fn test(facts: &Facts<'_>, field: &Field, operator: &Operator, ignore_case: bool) -> bool {
    let fold = |s: &str| if ignore_case { s.to_lowercase() } else { s.to_owned() };
    let number = || facts.number(field);
    match operator {
        Operator::Exists => facts.text(field).is_some(),
        Operator::GreaterThan(n) => number().is_some_and(|v| v > *n),
        Operator::GreaterOrEqual(n) => number().is_some_and(|v| v >= *n),
        Operator::LessThan(n) => number().is_some_and(|v| v < *n),
        Operator::LessOrEqual(n) => number().is_some_and(|v| v <= *n),
        Operator::Matches(re) => facts.text(field).is_some_and(|v| re.is_match(&v)),
        text_op => {
            let Some(value) = facts.text(field).map(|v| fold(&v)) else { return false };
            match text_op {
                Operator::Equals(s) => value == fold(s),
                Operator::In(list) => list.iter().any(|s| value == fold(s)),
                Operator::Contains(s) => value.contains(&fold(s)),
                Operator::StartsWith(s) => value.starts_with(&fold(s)),
                Operator::EndsWith(s) => value.ends_with(&fold(s)),
                _ => unreachable!("handled above"),
            }
        }
    }
}

impl Rule {
    fn in_effect(&self, at: DateTime<Utc>) -> bool {
        self.enabled && self.effective_from.is_none_or(|f| at >= f) && self.effective_to.is_none_or(|t| at < t)
    }

    /// The value this rule gives the resource, if it applies.
    pub fn evaluate(&self, facts: &Facts<'_>, at: DateTime<Utc>) -> Option<String> {
        if !self.in_effect(at) || !self.condition.holds(facts) {
            return None;
        }
        match &self.action {
            Action::Set(v) => Some(v.clone()),
            Action::NameCapture { pattern, group } => {
                pattern.captures(facts.name).and_then(|c| c.name(group)).map(|m| m.as_str().to_owned())
            }
            Action::Lookup { field, table } => facts.text(field).and_then(|v| table.get(&v).cloned()),
        }
    }
}

impl RuleSet {
    /// Rules of each key in evaluation order (priority, then id for a stable tie-break).
    pub fn ordered(&self) -> BTreeMap<&str, Vec<&Rule>> {
        let mut by_key: BTreeMap<&str, Vec<&Rule>> = BTreeMap::new();
        for r in &self.rules {
            by_key.entry(r.key.as_str()).or_default().push(r);
        }
        for rules in by_key.values_mut() {
            rules.sort_by(|a, b| a.priority.cmp(&b.priority).then_with(|| a.id.cmp(&b.id)));
        }
        by_key
    }

    /// Derives every key the rules (or defaults) cover for one resource, as of `at`.
    pub fn derive(&self, facts: &Facts<'_>, at: DateTime<Utc>) -> BTreeMap<String, Derived> {
        let mut out = BTreeMap::new();
        for (key, rules) in self.ordered() {
            if let Some((value, rule)) = rules.iter().find_map(|r| r.evaluate(facts, at).map(|v| (v, r.id.clone()))) {
                out.insert(key.to_owned(), Derived { value, rule_id: Some(rule), rule_set_version: self.version });
            }
        }
        for (key, value) in &self.defaults {
            out.entry(key.clone()).or_insert_with(|| Derived { value: value.clone(), rule_id: None, rule_set_version: self.version });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn rule(id: &str, key: &str, priority: u32, condition: Condition, action: Action) -> Rule {
        Rule { id: id.into(), key: key.into(), priority, enabled: true, condition, action, effective_from: None, effective_to: None }
    }

    fn test(field: Field, operator: Operator) -> Condition {
        Condition::Test { field, operator, ignore_case: false }
    }

    fn seed_rules() -> RuleSet {
        RuleSet {
            version: 7,
            rules: vec![
                rule("r-prod", "environment", 10, test(Field::Name, Operator::Contains("prod".into())), Action::Set("production".into())),
                rule("r-owner", "owner", 10, test(Field::Account, Operator::Equals("1234567890".into())), Action::Set("DevOps".into())),
                rule("r-rds", "data-classification", 10, test(Field::ResourceType, Operator::Equals("rds".into())), Action::Set("sensitive".into())),
            ],
            defaults: BTreeMap::from([("cost-center".to_owned(), "unallocated".to_owned())]),
        }
    }

    fn facts<'a>(name: &'a str, account: &'a str, kind: &'a str, native: &'a BTreeMap<String, String>) -> Facts<'a> {
        Facts { name, provider: "aws", account, region: "us-east-1", resource_type: kind, native, virtual_tags: native, monthly_cost: Some(620.0) }
    }

    #[test]
    fn the_seed_rules() {
        let none = BTreeMap::new();
        let at = Utc::now();
        let d = seed_rules().derive(&facts("web-server-prod-001", "1234567890", "rds", &none), at);
        assert_eq!(d["environment"].value, "production");
        assert_eq!(d["environment"].rule_id.as_deref(), Some("r-prod"));
        assert_eq!(d["environment"].rule_set_version, 7);
        assert_eq!(d["owner"].value, "DevOps");
        assert_eq!(d["data-classification"].value, "sensitive");
        assert_eq!(d["cost-center"], Derived { value: "unallocated".into(), rule_id: None, rule_set_version: 7 });
        let d = seed_rules().derive(&facts("batch-dev-02", "999", "ec2", &none), at);
        assert!(!d.contains_key("environment") && !d.contains_key("owner"));
    }

    #[test]
    fn first_matching_rule_by_priority_wins() {
        let none = BTreeMap::new();
        let mut set = seed_rules();
        set.rules.push(rule("r-web", "environment", 5, test(Field::Name, Operator::StartsWith("web-".into())), Action::Set("staging".into())));
        assert_eq!(set.derive(&facts("web-server-prod-001", "1", "ec2", &none), Utc::now())["environment"].rule_id.as_deref(), Some("r-web"));
        set.rules.last_mut().unwrap().priority = 50;
        assert_eq!(set.derive(&facts("web-server-prod-001", "1", "ec2", &none), Utc::now())["environment"].value, "production");
    }

    #[test]
    fn captures_lookups_and_boolean_logic() {
        let native = BTreeMap::from([("team".to_owned(), "payments".to_owned())]);
        let set = RuleSet {
            version: 1,
            rules: vec![
                rule(
                    "app-from-name",
                    "application",
                    1,
                    Condition::Always,
                    Action::NameCapture { pattern: Regex::new(r"^(?P<app>[a-z]+)-api").unwrap(), group: "app".into() },
                ),
                rule(
                    "owner-by-account",
                    "owner",
                    1,
                    Condition::Not(Box::new(test(Field::Provider, Operator::Equals("gcp".into())))),
                    Action::Lookup { field: Field::Account, table: BTreeMap::from([("111".to_owned(), "finance@acme.test".to_owned())]) },
                ),
                rule(
                    "costly-payments",
                    "review",
                    1,
                    Condition::All(vec![
                        test(Field::NativeTag("team".into()), Operator::In(vec!["payments".into(), "billing".into()])),
                        Condition::Any(vec![test(Field::MonthlyCost, Operator::GreaterThan(500.0)), test(Field::Region, Operator::Exists)]),
                    ]),
                    Action::Set("required".into()),
                ),
            ],
            defaults: BTreeMap::new(),
        };
        let d = set.derive(&facts("payments-api-stg", "111", "ecs", &native), Utc::now());
        assert_eq!(d["application"].value, "payments");
        assert_eq!(d["owner"].value, "finance@acme.test");
        assert_eq!(d["review"].value, "required");
        // No table entry, no capture: those rules do not apply.
        let d = set.derive(&facts("worker", "222", "ecs", &native), Utc::now());
        assert!(!d.contains_key("application") && !d.contains_key("owner"));
    }

    #[test]
    fn disabled_and_out_of_window_rules_do_not_fire() {
        let none = BTreeMap::new();
        let mut set = seed_rules();
        let jan = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let feb = Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap();
        set.rules[0].effective_from = Some(jan);
        set.rules[0].effective_to = Some(feb);
        let f = facts("web-prod", "1", "ec2", &none);
        assert!(set.derive(&f, jan).contains_key("environment"));
        assert!(!set.derive(&f, feb).contains_key("environment"), "effective_to is exclusive");
        set.rules[0].enabled = false;
        assert!(!set.derive(&f, jan).contains_key("environment"));
    }

    #[test]
    fn case_insensitive_tests() {
        let none = BTreeMap::new();
        let c = Condition::Test { field: Field::Name, operator: Operator::Contains("PROD".into()), ignore_case: true };
        assert!(c.holds(&facts("web-Prod-1", "1", "ec2", &none)));
        let c = Condition::Test { field: Field::Name, operator: Operator::Contains("PROD".into()), ignore_case: false };
        assert!(!c.holds(&facts("web-Prod-1", "1", "ec2", &none)));
    }
}
