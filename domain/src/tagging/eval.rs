//! Rules compiled for evaluation: what [`RuleSet::new`](super::RuleSet::new) prepares once so that
//! deriving a resource's tags does little work per resource — with exactly the rules' meaning.
//!
//! - The tag keys rules read are numbered (slots): a resource's values sit in an array, not a map.
//! - `ignore_case` operands are lower-cased once; values are lower-cased, usually without allocating.
//! - In `all` and `any`, cheap tests run before costly ones (regexes): tests have no effects, so
//!   the order a conjunction or disjunction is evaluated in cannot change its result.
//! - A regex whose pattern contains a plain literal (`^web-(batch|etl)`, `(^|-)prod`) cannot match a
//!   text that lacks it; which of a field's literals its text has is found out once per resource,
//!   in one pass over the text for all of them.
//! - A run of consecutive rules of one key that can each hold only for resources found under some
//!   index entries — a chain of `equals`/`in`, of `starts_with` (by first character), or of `any` of
//!   those — is a few hash lookups; a run whose rules all require one same test evaluates it once.
//!   Both only skip rules that cannot match; the others are evaluated in plan order, fully
//!   (enablement, effective dates, condition, action), so "the first rule that matches and yields
//!   a value wins" holds as written.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use aho_corasick::AhoCorasick;
use chrono::{DateTime, Utc};
use regex::{CaptureLocations, Regex};

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
    /// Per field read by regexes with literals, all of its literals (see [`Slots::scan_literals`]).
    scans: Vec<LiteralScan>,
    /// By literal id: its scan.
    scan_of: Vec<usize>,
}

/// The literals regexes on one field require, found together: the 40 regex rules of a long tail
/// cost one pass over a resource's name instead of 40 substring searches.
#[derive(Debug, Clone)]
struct LiteralScan {
    /// ASCII case-insensitive, as the literals are lower case and texts are compared lower-cased.
    finder: AhoCorasick,
    /// By pattern index: the literal's id.
    ids: Vec<usize>,
}

impl Slots {
    /// Prepares the scans once every literal is numbered (after compiling a rule set).
    fn scan_literals(&mut self) {
        let mut by_src: BTreeMap<Src, Vec<(&str, usize)>> = BTreeMap::new();
        for ((src, literal), id) in &self.literals {
            by_src.entry(*src).or_default().push((literal, *id));
        }
        self.scans.clear();
        self.scan_of = vec![usize::MAX; self.literals.len()];
        for mut group in by_src.into_values() {
            group.sort_by_key(|(_, id)| *id);
            let built = AhoCorasick::builder().ascii_case_insensitive(true).build(group.iter().map(|(l, _)| l));
            // A scan that cannot be built leaves its literals to one search each.
            if let Ok(finder) = built {
                for (_, id) in &group {
                    self.scan_of[*id] = self.scans.len();
                }
                self.scans.push(LiteralScan { finder, ids: group.into_iter().map(|(_, id)| id).collect() });
            }
        }
    }

    fn scan(&self, literal: usize) -> Option<&LiteralScan> {
        self.scans.get(*self.scan_of.get(literal)?)
    }

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
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
    pub native: TagValues<'a>,
    /// What a rule reading a virtual tag sees: people's value, else the value derived so far.
    pub virtual_tags: TagValues<'a>,
    pub literals: LiteralMemo<'a>,
}

/// Tag values by slot: inline for the handful of keys rules usually read, so that reading a
/// resource allocates nothing.
#[derive(Debug, Clone)]
pub(crate) struct TagValues<'a> {
    inline: [Option<&'a str>; INLINE_SLOTS],
    /// All of them, instead, when there are more.
    heap: Vec<Option<&'a str>>,
}

const INLINE_SLOTS: usize = 16;

impl<'a> TagValues<'a> {
    pub(crate) fn new(slots: &Slots) -> Self {
        let len = slots.keys.len();
        Self { inline: [None; INLINE_SLOTS], heap: if len > INLINE_SLOTS { vec![None; len] } else { Vec::new() } }
    }

    pub(crate) fn get(&self, slot: usize) -> Option<&'a str> {
        if self.heap.is_empty() {
            self.inline[slot]
        } else {
            self.heap[slot]
        }
    }

    pub(crate) fn set(&mut self, slot: usize, value: Option<&'a str>) {
        if self.heap.is_empty() {
            self.inline[slot] = value;
        } else {
            self.heap[slot] = value;
        }
    }
}

/// Per literal a regex requires: whether the resource's text may contain it, once known. The
/// first 64 in bits, so that reading a resource allocates nothing.
#[derive(Debug, Clone)]
pub(crate) struct LiteralMemo<'a> {
    known: Cell<u64>,
    may: Cell<u64>,
    more: Vec<Cell<Option<bool>>>,
    slots: &'a Slots,
}

impl<'a> LiteralMemo<'a> {
    pub(crate) fn new(slots: &'a Slots) -> Self {
        Self { known: Cell::new(0), may: Cell::new(0), more: vec![Cell::new(None); slots.literals.len().saturating_sub(64)], slots }
    }

    fn get(&self, id: usize) -> Option<bool> {
        match id.checked_sub(64) {
            None => (self.known.get() >> id & 1 == 1).then(|| self.may.get() >> id & 1 == 1),
            Some(more) => self.more[more].get(),
        }
    }

    fn set(&self, id: usize, may: bool) {
        match id.checked_sub(64) {
            None => {
                self.known.set(self.known.get() | 1 << id);
                self.may.set(self.may.get() | u64::from(may) << id);
            }
            Some(more) => self.more[more].set(Some(may)),
        }
    }
}

impl<'a> Reading<'a> {
    fn of_facts(facts: &Facts<'a>, slots: &'a Slots) -> Self {
        let by_slot = |map: &'a BTreeMap<String, String>| {
            let mut values = TagValues::new(slots);
            for (slot, key) in slots.keys().iter().enumerate() {
                values.set(slot, map.get(key).map(String::as_str));
            }
            values
        };
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
        if let Some(known) = self.literals.get(id) {
            return known;
        }
        // Beyond ASCII, ignoring case has its own equivalences (`k` matches the Kelvin sign).
        let text = self.text(src).filter(|t| t.is_ascii());
        if let (Some(text), Some(scan)) = (&text, self.literals.slots.scan(id)) {
            for other in &scan.ids {
                self.literals.set(*other, false);
            }
            for found in scan.finder.find_overlapping_iter(text.as_ref()) {
                self.literals.set(scan.ids[found.pattern().as_usize()], true);
            }
            return self.literals.get(id).unwrap_or(true);
        }
        let may = text.is_none_or(|t| with_lowercase(&t, |t| t.contains(literal)));
        self.literals.set(id, may);
        may
    }

    fn text(&self, src: Src) -> Option<Cow<'a, str>> {
        let text = match src {
            Src::Name => self.name,
            Src::Provider => self.provider,
            Src::Account => self.account,
            Src::Region => self.region,
            Src::ResourceType => self.resource_type,
            Src::Native(slot) => self.native.get(slot)?,
            Src::Virtual(slot) => self.virtual_tags.get(slot)?,
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

    /// The index entries under which a text passing this test is found, if it can be indexed: its
    /// values for `equals` and `in`, a non-empty prefix (by its first character) for `starts_with`.
    fn index_keys(&self) -> Option<(Lookup, &[String])> {
        match self {
            Self::Equals(s) => Some((Lookup::Exact, std::slice::from_ref(s))),
            Self::In(list) => Some((Lookup::Exact, list)),
            Self::StartsWith(p) if !p.is_empty() => Some((Lookup::FirstChar, std::slice::from_ref(p))),
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

    /// The index entries one of which a resource passing this test is found under.
    fn alternatives(&self) -> Option<Vec<(Dim, &str)>> {
        let Op::Text { op, fold } = &self.op else { return None };
        let (lookup, keys) = op.index_keys()?;
        let dim = Dim { src: self.src, fold: *fold, lookup };
        Some(keys.iter().map(|k| (dim, k.as_str())).collect())
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

    /// Ways to tell, from indexes, that the condition cannot hold: each is a list of index entries
    /// one of which a resource must be found under for the condition to hold.
    fn filters(&self) -> Vec<Vec<(Dim, &str)>> {
        match self {
            Self::Test(t) => t.alternatives().into_iter().collect(),
            // Any one member's filter is the conjunction's.
            Self::All(cs) => cs.iter().flat_map(Self::filters).collect(),
            // A disjunction holds only where one of its members may: all of theirs together.
            Self::Any(cs) => {
                let each: Option<Vec<Vec<(Dim, &str)>>> = cs.iter().map(|c| c.filters().into_iter().next()).collect();
                each.map(|e| e.concat()).into_iter().collect()
            }
            Self::Always | Self::Not(_) => Vec::new(),
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

/// A rule's condition and action, compiled; the rest is read from the rule itself.
#[derive(Debug, Clone)]
struct CompiledRule {
    condition: Cond,
    action: Act,
    required: Vec<Test>,
}

#[derive(Debug, Clone)]
enum Act {
    Set,
    /// The capture group's index (by name, once), if the regex has it; `memo` names the rule for
    /// [`capture`].
    Capture { group: Option<usize>, memo: Option<(u64, usize)> },
    Lookup(Src, FxMap<String, String>),
}

impl CompiledRule {
    fn new(rule: &Rule, slots: &mut Slots) -> Self {
        let condition = Cond::new(&rule.condition, slots);
        let action = match &rule.action {
            Action::Set(_) => Act::Set,
            Action::NameCapture { pattern, group } => {
                Act::Capture { group: pattern.capture_names().position(|n| n == Some(group.as_str())), memo: None }
            }
            Action::Lookup { field, table } => Act::Lookup(Src::new(field, slots), table.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
        };
        let mut required = Vec::new();
        condition.required(&mut required);
        let required = required.into_iter().cloned().collect();
        Self { condition, action, required }
    }

    /// The value `rule` (the one this was compiled from) gives the resource, if it applies.
    fn value<'x>(&'x self, rule: &'x Rule, r: &Reading<'x>, at: DateTime<Utc>) -> Option<&'x str> {
        if !rule.in_effect(at) || !self.condition.holds(r) {
            return None;
        }
        match (&self.action, &rule.action) {
            (Act::Set, Action::Set(v)) => Some(v),
            (Act::Capture { group, memo }, Action::NameCapture { pattern, .. }) => capture(pattern, (*group)?, *memo, r.name),
            (Act::Lookup(src, table), _) => r.text(*src).and_then(|v| table.get(v.as_ref())).map(String::as_str),
            _ => unreachable!("compiled from this rule"),
        }
    }

    fn requires(&self, test: &Test) -> bool {
        self.required.iter().any(|t| t.same_as(test))
    }

    /// The filter of this rule's condition that looks only at `dims`, if it has one.
    fn filter_within(&self, dims: &[Dim]) -> Option<Vec<(Dim, &str)>> {
        self.condition.filters().into_iter().find(|f| f.iter().all(|(d, _)| dims.contains(d)))
    }
}

/// How a key's rules are tried.
#[derive(Debug, Clone)]
enum Step {
    /// Rule by rule.
    Each(Vec<usize>),
    /// Rules found through indexes: only those the resource is found under are tried, in order.
    Index(Index),
    /// Rules all requiring `test`: tried rule by rule when it holds.
    Guard { test: Test, rules: Vec<usize> },
}

impl Step {
    /// Offers the rules that may match to `try_rule` in order, until it says stop (true).
    fn offer(&self, r: &Reading<'_>, try_rule: &mut impl FnMut(usize) -> bool) -> bool {
        match self {
            Self::Each(rules) => rules.iter().any(|i| try_rule(*i)),
            Self::Index(index) => index.offer(r, try_rule),
            Self::Guard { test, rules } => test.holds(r) && rules.iter().any(|i| try_rule(*i)),
        }
    }
}

/// Indexes a run of rules with at most this many lookups; a run needing more is split.
const MAX_DIMS: usize = 3;

/// What an index looks up: a field (in lower case when `fold`), whole or by its first character.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Dim {
    src: Src,
    fold: bool,
    lookup: Lookup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Lookup {
    /// By the whole value: `equals`, `in`.
    Exact,
    /// By the first character: `starts_with` a non-empty prefix.
    FirstChar,
}

impl Lookup {
    /// The entry `text` is found under.
    fn key(self, text: &str) -> &str {
        match self {
            Self::Exact => text,
            Self::FirstChar => first_char(text),
        }
    }
}

/// A run of rules, and per dimension the rules (by position in the run, ascending) a resource
/// may match when found under an entry.
#[derive(Debug, Clone)]
struct Index {
    rules: Vec<usize>,
    dims: Vec<(Dim, FxMap<String, Vec<u32>>)>,
}

impl Index {
    fn new(rules: Vec<usize>, filters: &[Vec<(Dim, &str)>]) -> Self {
        let mut dims: Vec<(Dim, FxMap<String, Vec<u32>>)> = Vec::new();
        for (position, filter) in filters.iter().enumerate() {
            for (dim, key) in filter {
                let at = dims.iter().position(|(d, _)| d == dim).unwrap_or_else(|| {
                    dims.push((*dim, FxMap::default()));
                    dims.len() - 1
                });
                let key = dim.lookup.key(key);
                let positions = dims[at].1.entry(key.to_owned()).or_default();
                if positions.last() != Some(&(position as u32)) {
                    positions.push(position as u32);
                }
            }
        }
        Self { rules, dims }
    }

    /// How many sets of rules the index tells apart.
    fn entries(&self) -> usize {
        self.dims.iter().map(|(_, m)| m.len()).sum()
    }

    fn offer(&self, r: &Reading<'_>, try_rule: &mut impl FnMut(usize) -> bool) -> bool {
        let mut lists: [&[u32]; MAX_DIMS] = [&[]; MAX_DIMS];
        for (list, (dim, entries)) in lists.iter_mut().zip(&self.dims) {
            *list = candidates(r, dim, entries);
        }
        // The union of the lists, in order, each rule once.
        let lists = &mut lists[..self.dims.len()];
        loop {
            let Some(next) = lists.iter().filter_map(|l| l.first()).min().copied() else { return false };
            for list in lists.iter_mut() {
                if list.first() == Some(&next) {
                    *list = &list[1..];
                }
            }
            if try_rule(self.rules[next as usize]) {
                return true;
            }
        }
    }
}

/// A text starting with a prefix starts with the prefix's first character.
fn first_char(s: &str) -> &str {
    s.chars().next().map_or("", |c| &s[..c.len_utf8()])
}

/// The rules (by position) listed under the resource's entry in one dimension.
fn candidates<'i>(r: &Reading<'_>, dim: &Dim, entries: &'i FxMap<String, Vec<u32>>) -> &'i [u32] {
    let Some(text) = r.text(dim.src) else { return &[] };
    let find = |text: &str| {
        let key = dim.lookup.key(text);
        entries.get(key).map_or(&[][..], Vec::as_slice)
    };
    if dim.fold {
        with_lowercase(&text, find)
    } else {
        find(&text)
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
        slots.scan_literals();
        let id = NEXT_PROGRAM.fetch_add(1, Ordering::Relaxed);
        let mut compiled = compiled;
        for (i, rule) in compiled.iter_mut().enumerate() {
            if let Act::Capture { memo, .. } = &mut rule.action {
                *memo = Some((id, i));
            }
        }
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

/// Tells programs apart for [`capture`]; a clone, whose regexes are clones, keeps its number.
static NEXT_PROGRAM: AtomicU64 = AtomicU64::new(0);

/// Capture slots kept per thread and capturing rule (program, rule index); beyond, it starts over.
const MEMO_CAPTURES: usize = 256;

thread_local! {
    /// A capture needs slots for its groups: allocated once per thread and rule, not per resource
    /// (and without sharing a reference count across threads, as each fresh set of slots would).
    static CAPTURES: RefCell<FxMap<(u64, usize), CaptureLocations>> = RefCell::new(FxMap::default());
}

/// The text of `group` in the first match of `pattern` in `name`.
fn capture<'h>(pattern: &Regex, group: usize, memo: Option<(u64, usize)>, name: &'h str) -> Option<&'h str> {
    let direct = || pattern.captures(name)?.get(group).map(|m| m.as_str());
    let Some(memo) = memo else { return direct() };
    CAPTURES.with(|slots| {
        let Ok(mut slots) = slots.try_borrow_mut() else { return direct() };
        if slots.len() >= MEMO_CAPTURES && !slots.contains_key(&memo) {
            slots.clear();
        }
        let locations = slots.entry(memo).or_insert_with(|| pattern.capture_locations());
        pattern.captures_read(locations, name)?;
        locations.get(group).map(|(start, end)| &name[start..end])
    })
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
    let first = &rules[order[0]];
    for filter in first.condition.filters() {
        let mut dims: Vec<Dim> = Vec::new();
        for (dim, _) in &filter {
            if !dims.contains(dim) {
                dims.push(*dim);
            }
        }
        if dims.len() > MAX_DIMS {
            continue;
        }
        let filters: Vec<_> = order.iter().map_while(|i| rules[*i].filter_within(&dims)).collect();
        let index = Index::new(order[..filters.len()].to_vec(), &filters);
        consider((filters.len(), 1 + index.entries()), Step::Index(index));
    }
    for test in &first.required {
        let len = order.iter().take_while(|i| rules[**i].requires(test)).count();
        consider((len, 0), Step::Guard { test: test.clone(), rules: order[..len].to_vec() });
    }
    best.map(|((len, _), step)| (len, step))
}

/// [`Condition::holds`] for the public [`Facts`] view: compiled for the one call.
pub(crate) fn condition_holds(condition: &Condition, facts: &Facts<'_>) -> bool {
    let mut slots = Slots::default();
    let compiled = Cond::new(condition, &mut slots);
    slots.scan_literals();
    compiled.holds(&Reading::of_facts(facts, &slots))
}

/// [`Rule::evaluate`] for the public [`Facts`] view: compiled for the one call.
pub(crate) fn rule_value(rule: &Rule, facts: &Facts<'_>, at: DateTime<Utc>) -> Option<String> {
    let mut slots = Slots::default();
    let compiled = CompiledRule::new(rule, &mut slots);
    slots.scan_literals();
    let reading = Reading::of_facts(facts, &slots);
    compiled.value(rule, &reading, at).map(str::to_owned)
}

/// A literal (in lower case) every match of `pattern` contains, whatever the regex's flags — only
/// the pattern is visible, not how it was built (case, multi-line, verbose…). Without a top-level
/// `|`, the pattern is a sequence every match matches in order, so a run of plain characters
/// (letters, digits, `-`, `_`) outside groups and classes and not under a repetition is in every
/// match, up to case. Whitespace and `#` (verbose-mode syntax) and anything unclear give none.
fn required_literal(pattern: &str) -> Option<String> {
    if pattern.contains('#') || pattern.contains(char::is_whitespace) {
        return None;
    }
    let mut literal = Literal::default();
    let mut depth = 0usize;
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        if depth == 0 && (c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            literal.run.push(c);
            continue;
        }
        literal.end_run(c);
        match c {
            '\\' => skip_escape(&mut chars)?,
            '[' => skip_class(&mut chars)?,
            '(' => depth += 1,
            ')' => depth = depth.checked_sub(1)?,
            '|' if depth == 0 => return None,
            // A counted repetition's bounds are not text: `x{10}` requires no "10".
            '{' => while chars.next_if(|c| *c != '}').is_some() {},
            _ => {}
        }
    }
    literal.end_run('$');
    literal.longest.map(|l| l.to_ascii_lowercase())
}

#[derive(Default)]
struct Literal {
    run: String,
    longest: Option<String>,
}

impl Literal {
    /// The run ends at `next`; a repetition there applies to its last character only.
    fn end_run(&mut self, next: char) {
        if matches!(next, '?' | '*' | '+' | '{') {
            self.run.pop();
        }
        if self.longest.as_ref().is_none_or(|l| self.run.len() > l.len()) && !self.run.is_empty() {
            self.longest = Some(std::mem::take(&mut self.run));
        }
        self.run.clear();
    }
}

/// Skips an escape after its `\`: an escaped character, or a letter with what may follow it
/// (`\pL`, `\x41`, `\u{…}`, octal digits) — conservatively, every letter, digit and brace.
fn skip_escape(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<()> {
    if chars.next()?.is_ascii_alphanumeric() {
        while chars.next_if(|c| c.is_ascii_alphanumeric() || matches!(c, '{' | '}' | ':' | '=' | '!' | '^')).is_some() {}
    }
    Some(())
}

/// Skips a class after its `[`; nested classes are not followed (none).
fn skip_class(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<()> {
    chars.next_if_eq(&'^');
    chars.next_if_eq(&']');
    loop {
        match chars.next()? {
            ']' => return Some(()),
            '[' => return None,
            '\\' => {
                chars.next()?;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::required_literal;

    #[test]
    fn required_literals_are_what_every_match_contains() {
        let cases = [
            ("^web-(batch|etl|report)-12", Some("web-")),
            ("^Pay_Ments", Some("pay_ments")),
            ("web", Some("web")),
            ("(^|[-_])prod([-_0-9]|$)", Some("prod")),
            ("(?m)^web", Some("web")),
            ("^webs?", Some("web")),
            ("^ab{0,2}", Some("a")),
            ("^x{10}", None),
            ("^[a-z]{12}$", None),
            ("(ab){3}", None),
            ("^web-[0-9]{3}", Some("web-")),
            ("^abc{2,}de", Some("ab")),
            ("^a\\|b", Some("a")),
            ("\\(abc\\)", Some("abc")),
            ("[(]abc", Some("abc")),
            ("^[a-z]+-", Some("-")),
            ("^ärger", Some("rger")),
            ("\\x41bc-d", Some("-d")),
            ("\\pLabc", None),
            ("\\p{Greek}x", None),
            ("^web|api", None),
            ("^w*", None),
            ("^web #comment", None),
            ("^we b", None),
            ("^(web)", None),
            ("[[:alpha:]]web", None),
        ];
        for (pattern, literal) in cases {
            assert_eq!(required_literal(pattern).as_deref(), literal, "{pattern}");
        }
    }
}
