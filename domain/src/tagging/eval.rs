//! Rules compiled for evaluation: what [`RuleSet::new`](super::RuleSet::new) prepares once so that
//! deriving a resource's tags does little work per resource — with exactly the rules' meaning.
//!
//! - The tag keys rules read are numbered (slots): a resource's values sit in a slice, not a map.
//! - `ignore_case` operands are lower-cased once; values are lower-cased without allocating.
//! - In `all` and `any`, cheap tests run before costly ones (regexes): tests have no effects, so
//!   the order a conjunction or disjunction is evaluated in cannot change its result.
//! - A regex anchored on a literal (`^web-(batch|etl)`) cannot match a text that lacks the literal;
//!   whether it has it is looked up once per resource and literal, not once per regex.
//! - A run of consecutive rules of one key that each require one field to equal one of their
//!   values (a chain of `equals`) is one hash lookup; a run whose rules all require one same test
//!   evaluates it once. Both only skip rules that cannot match; the others are evaluated in plan
//!   order, fully (enablement, effective dates, condition, action), so "the first rule that matches
//!   and yields a value wins" holds as written.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use regex::Regex;

use super::derive::RuleHit;
use super::fx::FxMap;
use super::normalize::with_lowercase;
use super::rules::{Action, Condition, Facts, Field, Operator, Rule};

/// Shorter runs are evaluated rule by rule: a lookup or a shared test saves nothing on them.
const MIN_RUN: usize = 4;

/// The tag keys rules read (as native or virtual tags), and the literals regexes require, numbered.
#[derive(Debug, Clone, Default)]
pub(crate) struct Slots {
    by_key: FxMap<String, usize>,
    keys: Vec<String>,
    literals: FxMap<(Src, String), usize>,
}

impl Slots {
    fn literal(&mut self, src: Src, literal: String) -> usize {
        let next = self.literals.len();
        *self.literals.entry((src, literal)).or_insert(next)
    }

    fn intern(&mut self, key: &str) -> usize {
        if let Some(slot) = self.by_key.get(key) {
            return *slot;
        }
        self.keys.push(key.to_owned());
        self.by_key.insert(key.to_owned(), self.keys.len() - 1);
        self.keys.len() - 1
    }

    pub(crate) fn get(&self, key: &str) -> Option<usize> {
        self.by_key.get(key).copied()
    }

    pub(crate) fn keys(&self) -> &[String] {
        &self.keys
    }
}

/// Where a test reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Src {
    Name,
    Provider,
    Account,
    Region,
    ResourceType,
    MonthlyCost,
    Native(usize),
    Virtual(usize),
}

impl Src {
    fn new(field: &Field, slots: &mut Slots) -> Self {
        match field {
            Field::Name => Self::Name,
            Field::Provider => Self::Provider,
            Field::Account => Self::Account,
            Field::Region => Self::Region,
            Field::ResourceType => Self::ResourceType,
            Field::MonthlyCost => Self::MonthlyCost,
            Field::NativeTag(k) => Self::Native(slots.intern(k)),
            Field::VirtualTag(k) => Self::Virtual(slots.intern(k)),
        }
    }
}

/// What rules may read of one resource; tags by slot.
#[derive(Debug, Clone)]
pub(crate) struct Reading<'a> {
    pub name: &'a str,
    pub provider: &'a str,
    pub account: &'a str,
    pub region: &'a str,
    pub resource_type: &'a str,
    pub monthly_cost: Option<f64>,
    /// Native tags after normalization.
    pub native: Vec<Option<&'a str>>,
    /// What a rule reading a virtual tag sees: people's value, else the value derived so far.
    pub virtual_tags: Vec<Option<&'a str>>,
    pub literals: LiteralMemo,
}

/// Per literal a regex requires: whether the resource's text may contain it, once known.
#[derive(Debug, Clone)]
pub(crate) struct LiteralMemo(Vec<Cell<Option<bool>>>);

impl LiteralMemo {
    pub(crate) fn new(slots: &Slots) -> Self {
        Self(vec![Cell::new(None); slots.literals.len()])
    }
}

impl<'a> Reading<'a> {
    fn of_facts(facts: &Facts<'a>, slots: &Slots) -> Self {
        let by_slot = |map: &'a BTreeMap<String, String>| slots.keys().iter().map(|k| map.get(k).map(String::as_str)).collect();
        Reading {
            name: facts.name,
            provider: facts.provider,
            account: facts.account,
            region: facts.region,
            resource_type: facts.resource_type,
            monthly_cost: facts.monthly_cost,
            native: by_slot(facts.native),
            virtual_tags: by_slot(facts.virtual_tags),
            literals: LiteralMemo::new(slots),
        }
    }

    /// False when `src` cannot hold a match of a regex requiring `literal` (see [`required_literal`]).
    fn may_contain(&self, id: usize, src: Src, literal: &str) -> bool {
        if let Some(known) = self.literals.0[id].get() {
            return known;
        }
        // Beyond ASCII, ignoring case has its own equivalences (`k` matches the Kelvin sign).
        let may = self.text(src).is_none_or(|t| !t.is_ascii() || with_lowercase(&t, |t| t.contains(literal)));
        self.literals.0[id].set(Some(may));
        may
    }

    fn text(&self, src: Src) -> Option<Cow<'a, str>> {
        let text = match src {
            Src::Name => self.name,
            Src::Provider => self.provider,
            Src::Account => self.account,
            Src::Region => self.region,
            Src::ResourceType => self.resource_type,
            Src::Native(slot) => self.native[slot]?,
            Src::Virtual(slot) => self.virtual_tags[slot]?,
            Src::MonthlyCost => return self.monthly_cost.map(|c| Cow::Owned(c.to_string())),
        };
        Some(Cow::Borrowed(text))
    }

    fn number(&self, src: Src) -> Option<f64> {
        match src {
            Src::MonthlyCost => self.monthly_cost,
            other => self.text(other).and_then(|t| t.trim().parse().ok()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Comparison {
    Greater,
    GreaterOrEqual,
    Less,
    LessOrEqual,
}

impl Comparison {
    fn holds(self, value: f64, bound: f64) -> bool {
        match self {
            Self::Greater => value > bound,
            Self::GreaterOrEqual => value >= bound,
            Self::Less => value < bound,
            Self::LessOrEqual => value <= bound,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum TextOp {
    Equals(String),
    In(Vec<String>),
    Contains(String),
    StartsWith(String),
    EndsWith(String),
}

impl TextOp {
    fn holds(&self, value: &str) -> bool {
        match self {
            Self::Equals(s) => value == s,
            Self::In(list) => list.iter().any(|s| value == s),
            Self::Contains(s) => value.contains(s.as_str()),
            Self::StartsWith(s) => value.starts_with(s.as_str()),
            Self::EndsWith(s) => value.ends_with(s.as_str()),
        }
    }

    fn cost(&self) -> u32 {
        match self {
            Self::Equals(_) | Self::StartsWith(_) | Self::EndsWith(_) => 2,
            Self::In(list) => 1 + list.len() as u32,
            Self::Contains(_) => 4,
        }
    }

    /// The values one of which the tested text must be, for an `equals` or an `in`.
    fn required_values(&self) -> Option<&[String]> {
        match self {
            Self::Equals(s) => Some(std::slice::from_ref(s)),
            Self::In(list) => Some(list),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Exists,
    Compare(Comparison, f64),
    /// As in the rule: whether it ignores case is the regex's own business. With the literal every
    /// match contains (in lower case), numbered in [`Slots`].
    Matches { regex: Regex, literal: Option<(usize, String)> },
    /// With `fold`, operands are in lower case already and the text is lower-cased to compare.
    Text { op: TextOp, fold: bool },
}

#[derive(Debug, Clone)]
struct Test {
    src: Src,
    op: Op,
}

impl Test {
    fn new(field: &Field, operator: &Operator, ignore_case: bool, slots: &mut Slots) -> Self {
        let operand = |s: &String| if ignore_case { s.to_lowercase() } else { s.clone() };
        let text = |op| Op::Text { op, fold: ignore_case };
        let op = match operator {
            Operator::Equals(s) => text(TextOp::Equals(operand(s))),
            Operator::In(list) => text(TextOp::In(list.iter().map(operand).collect())),
            Operator::Contains(s) => text(TextOp::Contains(operand(s))),
            Operator::StartsWith(s) => text(TextOp::StartsWith(operand(s))),
            Operator::EndsWith(s) => text(TextOp::EndsWith(operand(s))),
            Operator::Matches(regex) => Op::Matches { regex: regex.clone(), literal: None },
            Operator::Exists => Op::Exists,
            Operator::GreaterThan(n) => Op::Compare(Comparison::Greater, *n),
            Operator::GreaterOrEqual(n) => Op::Compare(Comparison::GreaterOrEqual, *n),
            Operator::LessThan(n) => Op::Compare(Comparison::Less, *n),
            Operator::LessOrEqual(n) => Op::Compare(Comparison::LessOrEqual, *n),
        };
        let src = Src::new(field, slots);
        let op = match op {
            // Not on virtual tags: their values change while a resource is derived, memos would not.
            Op::Matches { regex, .. } if !matches!(src, Src::Virtual(_)) => {
                let literal = required_literal(regex.as_str()).map(|l| (slots.literal(src, l.clone()), l));
                Op::Matches { regex, literal }
            }
            other => other,
        };
        Self { src, op }
    }

    fn holds(&self, r: &Reading<'_>) -> bool {
        match &self.op {
            Op::Exists if self.src == Src::MonthlyCost => r.monthly_cost.is_some(),
            Op::Exists => r.text(self.src).is_some(),
            Op::Compare(comparison, bound) => r.number(self.src).is_some_and(|v| comparison.holds(v, *bound)),
            Op::Matches { regex, literal } => {
                literal.as_ref().is_none_or(|(id, l)| r.may_contain(*id, self.src, l)) && r.text(self.src).is_some_and(|v| regex.is_match(&v))
            }
            Op::Text { op, fold: false } => r.text(self.src).is_some_and(|v| op.holds(&v)),
            Op::Text { op, fold: true } => r.text(self.src).is_some_and(|v| with_lowercase(&v, |v| op.holds(v))),
        }
    }

    /// A rough relative cost, to try cheap tests first.
    fn cost(&self) -> u32 {
        let read = if self.src == Src::MonthlyCost { 4 } else { 0 };
        read + match &self.op {
            Op::Exists => 1,
            Op::Compare(..) => 4,
            Op::Text { op, fold } => op.cost() + if *fold { 4 } else { 0 },
            Op::Matches { literal: Some(_), .. } => 8,
            Op::Matches { literal: None, .. } => 32,
        }
    }

    /// The same test, so one evaluation answers for both. Regexes are never the same: their
    /// flags are not visible, only their patterns.
    fn same_as(&self, other: &Test) -> bool {
        self.src == other.src
            && match (&self.op, &other.op) {
                (Op::Exists, Op::Exists) => true,
                (Op::Compare(a, x), Op::Compare(b, y)) => a == b && x.to_bits() == y.to_bits(),
                (Op::Text { op: a, fold: f }, Op::Text { op: b, fold: g }) => a == b && f == g,
                _ => false,
            }
    }

    /// For an `equals` or `in`: the field, whether it is compared in lower case, and the values.
    fn required_values(&self) -> Option<(Src, bool, &[String])> {
        match &self.op {
            Op::Text { op, fold } => op.required_values().map(|values| (self.src, *fold, values)),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
enum Cond {
    Always,
    Test(Test),
    All(Vec<Cond>),
    Any(Vec<Cond>),
    Not(Box<Cond>),
}

impl Cond {
    fn new(condition: &Condition, slots: &mut Slots) -> Self {
        match condition {
            Condition::Always => Self::Always,
            Condition::Test { field, operator, ignore_case } => Self::Test(Test::new(field, operator, *ignore_case, slots)),
            Condition::All(cs) => Self::All(cheapest_first(cs, slots)),
            Condition::Any(cs) => Self::Any(cheapest_first(cs, slots)),
            Condition::Not(c) => Self::Not(Box::new(Self::new(c, slots))),
        }
    }

    fn holds(&self, r: &Reading<'_>) -> bool {
        match self {
            Self::Always => true,
            Self::Test(t) => t.holds(r),
            Self::All(cs) => cs.iter().all(|c| c.holds(r)),
            Self::Any(cs) => cs.iter().any(|c| c.holds(r)),
            Self::Not(c) => !c.holds(r),
        }
    }

    fn cost(&self) -> u32 {
        match self {
            Self::Always => 0,
            Self::Test(t) => t.cost(),
            Self::All(cs) | Self::Any(cs) => cs.iter().map(Self::cost).sum(),
            Self::Not(c) => c.cost(),
        }
    }

    /// Tests that must hold for the condition to hold.
    fn required<'c>(&'c self, out: &mut Vec<&'c Test>) {
        match self {
            Self::Test(t) => out.push(t),
            Self::All(cs) => cs.iter().for_each(|c| c.required(out)),
            Self::Always | Self::Any(_) | Self::Not(_) => {}
        }
    }
}

fn cheapest_first(conditions: &[Condition], slots: &mut Slots) -> Vec<Cond> {
    let mut compiled: Vec<Cond> = conditions.iter().map(|c| Cond::new(c, slots)).collect();
    compiled.sort_by_key(Cond::cost); // stable: equal costs keep the rule's order
    compiled
}

/// A rule's condition and lookup table, compiled; the rest is read from the rule itself.
#[derive(Debug, Clone)]
struct CompiledRule {
    condition: Cond,
    lookup: Option<(Src, FxMap<String, String>)>,
    required: Vec<Test>,
}

impl CompiledRule {
    fn new(rule: &Rule, slots: &mut Slots) -> Self {
        let condition = Cond::new(&rule.condition, slots);
        let lookup = match &rule.action {
            Action::Lookup { field, table } => {
                Some((Src::new(field, slots), table.iter().map(|(k, v)| (k.clone(), v.clone())).collect()))
            }
            Action::Set(_) | Action::NameCapture { .. } => None,
        };
        let mut required = Vec::new();
        condition.required(&mut required);
        let required = required.into_iter().cloned().collect();
        Self { condition, lookup, required }
    }

    /// The value `rule` (the one this was compiled from) gives the resource, if it applies.
    fn value<'x>(&'x self, rule: &'x Rule, r: &Reading<'x>, at: DateTime<Utc>) -> Option<&'x str> {
        if !rule.in_effect(at) || !self.condition.holds(r) {
            return None;
        }
        match &rule.action {
            Action::Set(v) => Some(v),
            Action::NameCapture { pattern, group } => pattern.captures(r.name).and_then(|c| c.name(group)).map(|m| m.as_str()),
            Action::Lookup { .. } => {
                let (src, table) = self.lookup.as_ref()?;
                r.text(*src).and_then(|v| table.get(v.as_ref())).map(String::as_str)
            }
        }
    }

    fn requires(&self, test: &Test) -> bool {
        self.required.iter().any(|t| t.same_as(test))
    }

    /// The values one of which `src` must have for this rule to match.
    fn required_values(&self, src: Src, fold: bool) -> Option<&[String]> {
        self.required.iter().filter_map(Test::required_values).find(|(s, f, _)| *s == src && *f == fold).map(|(_, _, v)| v)
    }
}

/// How a key's rules are tried.
#[derive(Debug, Clone)]
enum Step {
    /// Rule by rule.
    Each(Vec<usize>),
    /// Rules each requiring `src` (in lower case when `fold`) to be one of their values: only the
    /// rules listing the resource's value are tried, in plan order.
    Index { src: Src, fold: bool, by_value: FxMap<String, Vec<usize>> },
    /// Rules all requiring `test`: tried rule by rule when it holds.
    Guard { test: Test, rules: Vec<usize> },
}

impl Step {
    /// Offers the rules that may match to `try_rule` in order, until it says stop (true).
    fn offer(&self, r: &Reading<'_>, try_rule: &mut impl FnMut(usize) -> bool) -> bool {
        match self {
            Self::Each(rules) => rules.iter().any(|i| try_rule(*i)),
            Self::Index { src, fold, by_value } => {
                let Some(value) = r.text(*src) else { return false };
                let candidates = if *fold { with_lowercase(&value, |v| by_value.get(v)) } else { by_value.get(value.as_ref()) };
                candidates.is_some_and(|rules| rules.iter().any(|i| try_rule(*i)))
            }
            Self::Guard { test, rules } => test.holds(r) && rules.iter().any(|i| try_rule(*i)),
        }
    }
}

/// One key of the plan, compiled.
#[derive(Debug, Clone)]
pub(crate) struct KeyPlan {
    pub key: String,
    /// The key's slot, when rules read it as a virtual tag.
    pub slot: Option<usize>,
    pub default: Option<String>,
    steps: Vec<Step>,
}

/// A rule set, compiled.
#[derive(Debug, Clone, Default)]
pub(crate) struct Program {
    /// By rule index, as the rule set's rules.
    rules: Vec<CompiledRule>,
    keys: Vec<KeyPlan>,
    slots: Slots,
}

impl Program {
    pub(crate) fn new(rules: &[Rule], plan: &[(String, Vec<usize>)], defaults: &BTreeMap<String, String>) -> Self {
        let mut slots = Slots::default();
        let compiled: Vec<CompiledRule> = rules.iter().map(|r| CompiledRule::new(r, &mut slots)).collect();
        let keys = plan
            .iter()
            .map(|(key, order)| KeyPlan {
                key: key.clone(),
                slot: slots.get(key),
                default: defaults.get(key).cloned(),
                steps: steps(order, &compiled),
            })
            .collect();
        Self { rules: compiled, keys, slots }
    }

    /// The keys in evaluation order.
    pub(crate) fn keys(&self) -> &[KeyPlan] {
        &self.keys
    }

    pub(crate) fn slots(&self) -> &Slots {
        &self.slots
    }

    /// The first rule of `key` that gives the resource a value, with the value; with `hits`, every
    /// rule that does is noted, in plan order. `rules` are the rule set's, this was compiled from.
    pub(crate) fn decide<'x>(
        &'x self,
        rules: &'x [Rule],
        key: &'x KeyPlan,
        r: &Reading<'x>,
        at: DateTime<Utc>,
        mut hits: Option<&mut Vec<RuleHit>>,
    ) -> Option<(&'x str, &'x Rule)> {
        let mut winner = None;
        let mut try_rule = |i: usize| {
            let Some(value) = self.rules[i].value(&rules[i], r, at) else { return false };
            let Some(hits) = hits.as_deref_mut() else {
                winner = Some((value, &rules[i]));
                return true;
            };
            hits.push(RuleHit { rule_id: rules[i].id.clone(), won: winner.is_none() });
            winner.get_or_insert((value, &rules[i]));
            false
        };
        for step in &key.steps {
            if step.offer(r, &mut try_rule) {
                break;
            }
        }
        winner
    }
}

/// Splits a key's rules (in plan order) into steps: the longest run that can be indexed or guarded
/// at each point, else one rule at a time.
fn steps(order: &[usize], rules: &[CompiledRule]) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut at = 0;
    while at < order.len() {
        if let Some((len, step)) = best_run(&order[at..], rules) {
            steps.push(step);
            at += len;
            continue;
        }
        match steps.last_mut() {
            Some(Step::Each(each)) => each.push(order[at]),
            _ => steps.push(Step::Each(vec![order[at]])),
        }
        at += 1;
    }
    steps
}

/// The best run starting at `order[0]`, if one is long enough: the longest; an index before a guard
/// and, among indexes, the one telling more rules apart.
fn best_run(order: &[usize], rules: &[CompiledRule]) -> Option<(usize, Step)> {
    let mut best: Option<((usize, usize), Step)> = None;
    let mut consider = |score: (usize, usize), step: Step| {
        if score.0 >= MIN_RUN && best.as_ref().is_none_or(|(s, _)| score > *s) {
            best = Some((score, step));
        }
    };
    for test in &rules[order[0]].required {
        if let Some((src, fold, _)) = test.required_values() {
            let len = order.iter().take_while(|i| rules[**i].required_values(src, fold).is_some()).count();
            let by_value = index(&order[..len], rules, src, fold);
            consider((len, 1 + by_value.len()), Step::Index { src, fold, by_value });
        }
        let len = order.iter().take_while(|i| rules[**i].requires(test)).count();
        consider((len, 0), Step::Guard { test: test.clone(), rules: order[..len].to_vec() });
    }
    best.map(|((len, _), step)| (len, step))
}

fn index(run: &[usize], rules: &[CompiledRule], src: Src, fold: bool) -> FxMap<String, Vec<usize>> {
    let mut by_value: FxMap<String, Vec<usize>> = FxMap::default();
    for &i in run {
        for value in rules[i].required_values(src, fold).into_iter().flatten() {
            let candidates = by_value.entry(value.clone()).or_default();
            if candidates.last() != Some(&i) {
                candidates.push(i);
            }
        }
    }
    by_value
}

/// [`Condition::holds`] for the public [`Facts`] view: compiled for the one call.
pub(crate) fn condition_holds(condition: &Condition, facts: &Facts<'_>) -> bool {
    let mut slots = Slots::default();
    let compiled = Cond::new(condition, &mut slots);
    compiled.holds(&Reading::of_facts(facts, &slots))
}

/// [`Rule::evaluate`] for the public [`Facts`] view: compiled for the one call.
pub(crate) fn rule_value(rule: &Rule, facts: &Facts<'_>, at: DateTime<Utc>) -> Option<String> {
    let mut slots = Slots::default();
    let compiled = CompiledRule::new(rule, &mut slots);
    let reading = Reading::of_facts(facts, &slots);
    compiled.value(rule, &reading, at).map(str::to_owned)
}

/// A literal (in lower case) every match of `pattern` contains, whatever the regex's flags — which
/// are not visible, only the pattern is: for `^` then letters, digits, `-` or `_`, those. A match
/// starts at the start of the text or, multi-line, of a line (after any terminator byte), where the
/// literal must follow, up to case. Patterns with anything that could change that (a top-level `|`,
/// a class, whitespace or `#` that verbose mode reads differently) have none.
fn required_literal(pattern: &str) -> Option<String> {
    let rest = pattern.strip_prefix('^')?;
    if pattern.contains(['[', ']', '#']) || pattern.contains(char::is_whitespace) || has_top_level_alternation(pattern) {
        return None;
    }
    let mut literal: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
    if rest[literal.len()..].starts_with(['?', '*', '+', '{']) {
        literal.pop(); // the last one is optional or repeated
    }
    (!literal.is_empty()).then(|| literal.to_ascii_lowercase())
}

fn has_top_level_alternation(pattern: &str) -> bool {
    let mut depth = 0i32;
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '(' => depth += 1,
            ')' => depth -= 1,
            '|' if depth <= 0 => return true,
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::required_literal;

    #[test]
    fn required_literals_are_what_every_match_contains() {
        assert_eq!(required_literal("^web-(batch|etl|report)-12").as_deref(), Some("web-"));
        assert_eq!(required_literal("^Pay_Ments").as_deref(), Some("pay_ments"));
        assert_eq!(required_literal("^webs?").as_deref(), Some("web"), "an optional last letter is not required");
        assert_eq!(required_literal("^ab{0,2}").as_deref(), Some("a"));
        assert_eq!(required_literal("^a\\|b").as_deref(), Some("a"), "an escaped bar is no alternation");
        for none in ["web", "^web|api", "(^|-)prod", "^[a-z]+-", "^ärger", "^w*", "^web #comment", "^we b", "(?m)^web", "^(web)"] {
            assert_eq!(required_literal(none), None, "{none}");
        }
    }
}
