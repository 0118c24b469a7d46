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

use super::eval::{self, Program};

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

/// A validated, ordered set of rules: the tenant's business logic for deriving tags.
///
/// Built only through [`RuleSet::new`], which refuses what could never evaluate sensibly
/// (duplicate rule ids, a key derived from itself through other keys) and fixes the order in which
/// keys are derived: a rule that looks at another virtual tag runs after the rules that derive it.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    version: u64,
    rules: Vec<Rule>,
    /// Per key: the value when no rule matches and no native tag supplies one.
    defaults: BTreeMap<String, String>,
    /// Keys with rules or defaults, dependencies first; each with its rules in evaluation order.
    plan: Vec<(String, Vec<usize>)>,
    /// The plan compiled for derivation (see `eval`): built here, once, as the rules never change.
    program: Program,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RuleSetError {
    #[error("rule id '{0}' is used by more than one rule")]
    DuplicateRuleId(String),
    #[error("rule ids must be non-empty")]
    EmptyRuleId,
    #[error("keys derive from each other in a cycle: {}", .0.join(" → "))]
    Cycle(Vec<String>),
}

impl RuleSet {
    pub fn new(version: u64, rules: Vec<Rule>, defaults: BTreeMap<String, String>) -> Result<Self, RuleSetError> {
        let mut ids = std::collections::BTreeSet::new();
        for r in &rules {
            if r.id.is_empty() {
                return Err(RuleSetError::EmptyRuleId);
            }
            if !ids.insert(r.id.as_str()) {
                return Err(RuleSetError::DuplicateRuleId(r.id.clone()));
            }
        }
        let plan = plan(&rules, &defaults)?;
        let program = Program::new(&rules, &plan, &defaults);
        Ok(Self { version, rules, defaults, plan, program })
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn defaults(&self) -> &BTreeMap<String, String> {
        &self.defaults
    }

    /// The keys this rule set derives, in evaluation order (dependencies first), each with its
    /// rules in the order they are tried.
    pub fn plan(&self) -> impl Iterator<Item = (&str, impl Iterator<Item = &Rule> + '_)> + '_ {
        self.plan.iter().map(|(k, idx)| (k.as_str(), idx.iter().map(|i| &self.rules[*i])))
    }

    pub(crate) fn program(&self) -> &Program {
        &self.program
    }

    /// The first rule of `key` that applies, with its value.
    pub fn first_match<'r>(&'r self, rules: impl Iterator<Item = &'r Rule>, facts: &Facts<'_>, at: DateTime<Utc>) -> Option<(String, &'r Rule)> {
        rules.into_iter().find_map(|r| r.evaluate(facts, at).map(|v| (v, r)))
    }
}

/// Orders keys so that every key comes after the keys its rules read (as virtual tags); a cycle
/// makes the set unusable and is refused with the keys involved.
fn plan(rules: &[Rule], defaults: &BTreeMap<String, String>) -> Result<Vec<(String, Vec<usize>)>, RuleSetError> {
    let mut by_key: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, r) in rules.iter().enumerate() {
        by_key.entry(r.key.as_str()).or_default().push(i);
    }
    for k in defaults.keys() {
        by_key.entry(k.as_str()).or_default();
    }
    for idx in by_key.values_mut() {
        idx.sort_by(|a, b| rules[*a].priority.cmp(&rules[*b].priority).then_with(|| rules[*a].id.cmp(&rules[*b].id)));
    }
    let depends_on = |key: &str| -> Vec<&str> {
        let mut deps = Vec::new();
        for i in &by_key[key] {
            rules[*i].virtual_tags_read(&mut deps);
        }
        // Keys no rule derives (native or people's tags only) impose no order; a key reading itself is a
        // cycle of one.
        deps.retain(|d| by_key.contains_key(d));
        deps.sort_unstable();
        deps.dedup();
        deps
    };
    // Depth-first topological sort; `visiting` holds the current path to report a cycle.
    let mut order: Vec<(String, Vec<usize>)> = Vec::with_capacity(by_key.len());
    let mut done = std::collections::BTreeSet::new();
    fn visit<'a>(
        key: &'a str,
        depends_on: &dyn Fn(&str) -> Vec<&'a str>,
        path: &mut Vec<&'a str>,
        done: &mut std::collections::BTreeSet<&'a str>,
        out: &mut Vec<&'a str>,
    ) -> Result<(), RuleSetError> {
        if done.contains(key) {
            return Ok(());
        }
        if let Some(start) = path.iter().position(|k| *k == key) {
            let mut cycle: Vec<String> = path[start..].iter().map(|k| (*k).to_owned()).collect();
            cycle.push(key.to_owned());
            return Err(RuleSetError::Cycle(cycle));
        }
        path.push(key);
        for d in depends_on(key) {
            visit(d, depends_on, path, done, out)?;
        }
        path.pop();
        done.insert(key);
        out.push(key);
        Ok(())
    }
    let mut keys_in_order = Vec::new();
    for key in by_key.keys() {
        visit(key, &depends_on, &mut Vec::new(), &mut done, &mut keys_in_order)?;
    }
    for k in keys_in_order {
        order.push((k.to_owned(), by_key[k].clone()));
    }
    Ok(order)
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

impl Condition {
    pub fn holds(&self, facts: &Facts<'_>) -> bool {
        eval::condition_holds(self, facts)
    }
}

impl Condition {
    fn virtual_tags_read<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Condition::Always => {}
            Condition::Test { field, .. } => field.virtual_tag_read(out),
            Condition::All(cs) | Condition::Any(cs) => cs.iter().for_each(|c| c.virtual_tags_read(out)),
            Condition::Not(c) => c.virtual_tags_read(out),
        }
    }
}

impl Field {
    fn virtual_tag_read<'a>(&'a self, out: &mut Vec<&'a str>) {
        if let Field::VirtualTag(k) = self {
            out.push(k);
        }
    }
}

impl Rule {
    /// The virtual tags this rule reads, in its condition or its lookup.
    fn virtual_tags_read<'a>(&'a self, out: &mut Vec<&'a str>) {
        self.condition.virtual_tags_read(out);
        if let Action::Lookup { field, .. } = &self.action {
            field.virtual_tag_read(out);
        }
    }

    pub(crate) fn in_effect(&self, at: DateTime<Utc>) -> bool {
        self.enabled && self.effective_from.is_none_or(|f| at >= f) && self.effective_to.is_none_or(|t| at < t)
    }

    /// The value this rule gives the resource, if it applies.
    pub fn evaluate(&self, facts: &Facts<'_>, at: DateTime<Utc>) -> Option<String> {
        eval::rule_value(self, facts, at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tagging::{derive, DerivedTag, Origin, ResourceFacts, TagSchema, TaggingConfig};
    use chrono::TimeZone;

    fn rule(id: &str, key: &str, priority: u32, condition: Condition, action: Action) -> Rule {
        Rule { id: id.into(), key: key.into(), priority, enabled: true, condition, action, effective_from: None, effective_to: None }
    }

    fn test(field: Field, operator: Operator) -> Condition {
        Condition::Test { field, operator, ignore_case: false }
    }

    fn seed_rules() -> Vec<Rule> {
        vec![
            rule("r-prod", "environment", 10, test(Field::Name, Operator::Contains("prod".into())), Action::Set("production".into())),
            rule("r-owner", "owner", 10, test(Field::Account, Operator::Equals("1234567890".into())), Action::Set("DevOps".into())),
            rule("r-rds", "data-classification", 10, test(Field::ResourceType, Operator::Equals("rds".into())), Action::Set("sensitive".into())),
        ]
    }

    fn config(rules: Vec<Rule>, defaults: &[(&str, &str)]) -> TaggingConfig {
        let defaults = defaults.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        TaggingConfig { version: 7, schema: TagSchema::new(Vec::new()), rules: RuleSet::new(7, rules, defaults).unwrap() }
    }

    fn facts(name: &str, account: &str, kind: &str, native: &[(&str, &str)]) -> ResourceFacts {
        ResourceFacts {
            provider: "aws".into(),
            account: account.into(),
            region: "us-east-1".into(),
            resource_type: kind.into(),
            name: name.into(),
            native_tags: native.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            monthly_cost: Some(620.0),
        }
    }

    fn run(c: &TaggingConfig, f: &ResourceFacts) -> BTreeMap<String, DerivedTag> {
        derive(c, f, &BTreeMap::new(), Utc::now())
    }

    fn rule_of(d: &BTreeMap<String, DerivedTag>, key: &str) -> Option<String> {
        match &d.get(key)?.origin {
            Origin::Rule { rule_id } => Some(rule_id.clone()),
            _ => None,
        }
    }

    #[test]
    fn the_seed_rules() {
        let c = config(seed_rules(), &[("cost-center", "unallocated")]);
        let d = run(&c, &facts("web-server-prod-001", "1234567890", "rds", &[]));
        assert_eq!(d["environment"].value, "production");
        assert_eq!(rule_of(&d, "environment").as_deref(), Some("r-prod"));
        assert_eq!(d["owner"].value, "DevOps");
        assert_eq!(d["data-classification"].value, "sensitive");
        assert_eq!(d["cost-center"], DerivedTag { value: "unallocated".into(), origin: Origin::Default });
        let d = run(&c, &facts("batch-dev-02", "999", "ec2", &[]));
        assert!(!d.contains_key("environment") && !d.contains_key("owner"));
    }

    #[test]
    fn first_matching_rule_by_priority_wins() {
        let mut rules = seed_rules();
        rules.push(rule("r-web", "environment", 5, test(Field::Name, Operator::StartsWith("web-".into())), Action::Set("staging".into())));
        let f = facts("web-server-prod-001", "1", "ec2", &[]);
        assert_eq!(rule_of(&run(&config(rules.clone(), &[]), &f), "environment").as_deref(), Some("r-web"));
        rules.last_mut().unwrap().priority = 50;
        assert_eq!(run(&config(rules, &[]), &f)["environment"].value, "production");
    }

    #[test]
    fn captures_lookups_and_boolean_logic() {
        let rules = vec![
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
        ];
        let c = config(rules, &[]);
        let d = run(&c, &facts("payments-api-stg", "111", "ecs", &[("team", "payments")]));
        assert_eq!(d["application"].value, "payments");
        assert_eq!(d["owner"].value, "finance@acme.test");
        assert_eq!(d["review"].value, "required");
        // No table entry, no capture: those rules do not apply.
        let d = run(&c, &facts("worker", "222", "ecs", &[("team", "payments")]));
        assert!(!d.contains_key("application") && !d.contains_key("owner"));
    }

    #[test]
    fn disabled_and_out_of_window_rules_do_not_fire() {
        let mut rules = seed_rules();
        let jan = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let feb = Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap();
        rules[0].effective_from = Some(jan);
        rules[0].effective_to = Some(feb);
        let f = facts("web-prod", "1", "ec2", &[]);
        let c = config(rules.clone(), &[]);
        assert!(derive(&c, &f, &BTreeMap::new(), jan).contains_key("environment"));
        assert!(!derive(&c, &f, &BTreeMap::new(), feb).contains_key("environment"), "effective_to is exclusive");
        rules[0].enabled = false;
        assert!(!derive(&config(rules, &[]), &f, &BTreeMap::new(), jan).contains_key("environment"));
    }

    #[test]
    fn case_insensitive_tests() {
        let native = BTreeMap::new();
        let f = facts("web-Prod-1", "1", "ec2", &[]);
        let view = Facts {
            name: &f.name,
            provider: "aws",
            account: "1",
            region: "r",
            resource_type: "ec2",
            native: &native,
            virtual_tags: &native,
            monthly_cost: None,
        };
        let c = Condition::Test { field: Field::Name, operator: Operator::Contains("PROD".into()), ignore_case: true };
        assert!(c.holds(&view));
        let c = Condition::Test { field: Field::Name, operator: Operator::Contains("PROD".into()), ignore_case: false };
        assert!(!c.holds(&view));
    }

    #[test]
    fn keys_are_derived_after_the_keys_their_rules_read() {
        // team reads cost-center (a virtual tag derived by another rule): cost-center goes first even
        // though it sorts after team alphabetically... and "a" reads "z".
        let rules = vec![
            rule("team-by-cc", "a-team", 1, test(Field::VirtualTag("z-cost-center".into()), Operator::Equals("eng".into())), Action::Set("platform".into())),
            rule("cc-by-account", "z-cost-center", 1, test(Field::Account, Operator::Equals("1".into())), Action::Set("eng".into())),
        ];
        let d = run(&config(rules, &[]), &facts("x", "1", "ec2", &[]));
        assert_eq!(d["a-team"].value, "platform");
    }

    #[test]
    fn people_values_are_what_other_rules_read() {
        let rules = vec![rule("t", "team", 1, test(Field::VirtualTag("cost-center".into()), Operator::Equals("sales".into())), Action::Set("field".into()))];
        let people = BTreeMap::from([("cost-center".to_owned(), "sales".to_owned())]);
        let d = derive(&config(rules, &[]), &facts("x", "1", "ec2", &[]), &people, Utc::now());
        assert_eq!(d["team"].value, "field");
    }

    #[test]
    fn cycles_and_duplicate_ids_are_refused() {
        let a_reads_b = rule("a", "a", 1, test(Field::VirtualTag("b".into()), Operator::Exists), Action::Set("1".into()));
        let b_reads_a = rule(
            "b",
            "b",
            1,
            Condition::Always,
            Action::Lookup { field: Field::VirtualTag("a".into()), table: BTreeMap::new() },
        );
        let err = RuleSet::new(1, vec![a_reads_b.clone(), b_reads_a], BTreeMap::new()).unwrap_err();
        assert_eq!(err, RuleSetError::Cycle(vec!["a".into(), "b".into(), "a".into()]));
        let self_ref = rule("s", "s", 1, test(Field::VirtualTag("s".into()), Operator::Exists), Action::Set("1".into()));
        assert!(matches!(RuleSet::new(1, vec![self_ref], BTreeMap::new()), Err(RuleSetError::Cycle(_))));
        let dup = RuleSet::new(1, vec![a_reads_b.clone(), a_reads_b], BTreeMap::new()).unwrap_err();
        assert_eq!(dup, RuleSetError::DuplicateRuleId("a".into()));
    }
}
