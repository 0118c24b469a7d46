//! Document → the domain's [`TaggingConfig`]: every choice the document's shape leaves open is
//! checked here, with the path of the offending node, and every error of the document is reported
//! at once (an import that fails one error at a time is a slow way to fix a file).
//!
//! Beyond what the domain would refuse, values are checked against the schema they live in: a rule
//! setting `environment: prod` when the schema allows only `production` would derive a tag that
//! normalization itself would never produce.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

use regex::{Regex, RegexBuilder};
use vtag_domain::tagging::{
    key_form, value_form, Action, CanonicalKey, Condition, Field, Operator, Rule, RuleSet, RuleSetError, TagSchema,
    TaggingConfig,
};
use vtag_domain::{TagKey, TagValue};

use crate::document::{ConditionDoc, ConfigDocument, KeyDoc, RuleDoc, SchemaDoc, FORMAT_VERSION};
use crate::errors::{join, DocError, Errors};

/// Compiled regexes live in every service holding the configuration; a pathological pattern
/// must not cost megabytes each.
const REGEX_SIZE_LIMIT: usize = 1 << 20;
const MAX_RULE_ID_LEN: usize = 128;

impl ConfigDocument {
    /// Compiles the document as configuration `version`, or returns every error found.
    pub fn compile(&self, version: u64) -> Result<TaggingConfig, Vec<DocError>> {
        let mut errors = Errors::default();
        if self.format_version != FORMAT_VERSION {
            errors.push(
                "format_version",
                "version",
                format!("format_version {} is not supported: this build reads format_version {FORMAT_VERSION}", self.format_version),
            );
        }
        let schema = compile_schema(&self.schema, &mut errors);
        let mut c = Compiler { schema, docs: self.schema.keys.iter().map(|k| (k.key.as_str(), k)).collect(), errors };
        let defaults = c.defaults(&self.defaults);
        let rules = c.rules(&self.rules);
        let Compiler { schema, mut errors, .. } = c;
        let (rules, reads): (Vec<Rule>, Vec<Vec<Read>>) = rules.into_iter().unzip();
        let rules = match RuleSet::new(version, rules, defaults) {
            Ok(rules) => Some(rules),
            Err(RuleSetError::Cycle(keys)) => {
                cycle_errors(&keys, &reads, &mut errors);
                None
            }
            // Ids are checked (and duplicates left out) above, so the domain has nothing to add.
            Err(e @ (RuleSetError::DuplicateRuleId(_) | RuleSetError::EmptyRuleId)) => {
                errors.push("rules", "duplicate", e.to_string());
                None
            }
        };
        match rules {
            Some(rules) if errors.is_empty() => Ok(TaggingConfig { version, schema, rules }),
            _ => Err(errors.into_vec()),
        }
    }
}

/// A virtual tag a rule reads, and where in the document it reads it: cycles are reported there.
#[derive(Debug)]
struct Read {
    key: String,
    path: String,
    rule_id: String,
    rule_key: String,
}

fn compile_schema(doc: &SchemaDoc, errors: &mut Errors) -> TagSchema {
    // Every spelling (canonical key or alias, in normalized form) → the key entry claiming it.
    let mut spellings: BTreeMap<String, usize> = BTreeMap::new();
    for (i, k) in doc.keys.iter().enumerate() {
        let path = format!("schema.keys[{i}].key");
        if errors.check(&path, TagKey::parse(&k.key)).is_none() {
            continue;
        }
        match spellings.entry(key_form(&k.key)) {
            Entry::Occupied(first) => {
                let j = *first.get();
                let message = format!("key '{}' is already defined by schema.keys[{j}] ('{}', the same in normalized form)", k.key, doc.keys[j].key);
                errors.push(path, "duplicate", message);
            }
            Entry::Vacant(slot) => {
                slot.insert(i);
            }
        }
    }
    let mut keys = Vec::new();
    for (i, k) in doc.keys.iter().enumerate() {
        let path = format!("schema.keys[{i}]");
        let before = errors.len();
        for (j, alias) in k.aliases.iter().enumerate() {
            let form = key_form(alias);
            let at = format!("{path}.aliases[{j}]");
            if form.is_empty() {
                errors.push(at, "required", format!("alias '{alias}' has no letters or digits"));
                continue;
            }
            match spellings.get(&form) {
                Some(owner) if *owner != i => errors.push(
                    at,
                    "duplicate",
                    format!("alias '{alias}' is already a spelling of '{}' (schema.keys[{owner}])", doc.keys[*owner].key),
                ),
                _ => {
                    spellings.insert(form, i);
                }
            }
        }
        let mut allowed: BTreeMap<String, &str> = BTreeMap::new();
        for (j, v) in k.allowed_values.iter().enumerate() {
            let at = format!("{path}.allowed_values[{j}]");
            if errors.check(&at, TagValue::parse(v)).is_none() {
                continue;
            }
            if let Some(first) = allowed.insert(v.to_lowercase(), v) {
                errors.push(at, "duplicate", format!("'{v}' is already allowed (as '{first}'; values compare case-insensitively)"));
            } else if k.lowercase_values() && *v != v.to_lowercase() {
                errors.push(at, "lowercase", format!("values of '{}' are lower case: write '{}'", k.key, v.to_lowercase()));
            }
        }
        let mut value_aliases: BTreeMap<String, String> = BTreeMap::new();
        for (spelling, canonical) in &k.value_aliases {
            let at = join(&format!("{path}.value_aliases"), spelling);
            let form = value_form(spelling).to_lowercase();
            if form.is_empty() {
                errors.push(at, "required", "a value alias needs a spelling");
                continue;
            }
            if errors.check(&at, TagValue::parse(canonical)).is_none() {
                continue;
            }
            if let Some((rule, message)) = misfit(k, canonical) {
                errors.push(at, rule, message);
                continue;
            }
            match value_aliases.insert(form, canonical.clone()) {
                Some(other) if other != *canonical => errors.push(
                    at,
                    "duplicate",
                    format!("'{spelling}' maps to '{canonical}', but another spelling of it maps to '{other}' (spellings compare case-insensitively)"),
                ),
                _ => {}
            }
        }
        if errors.len() == before && spellings.get(&key_form(&k.key)) == Some(&i) {
            keys.push(CanonicalKey {
                key: k.key.clone(),
                priority: k.priority.into(),
                allowed_values: k.allowed_values.clone(),
                key_aliases: k.aliases.clone(),
                value_aliases,
                lowercase_values: k.lowercase_values(),
            });
        }
    }
    TagSchema::new(keys)
}

/// Why `value` cannot be a value of the schema key `k`, if it cannot.
fn misfit(k: &KeyDoc, value: &str) -> Option<(&'static str, String)> {
    if !k.allowed_values.is_empty() && !k.allowed_values.iter().any(|a| a == value) {
        let hint = k
            .allowed_values
            .iter()
            .find(|a| a.eq_ignore_ascii_case(value))
            .or_else(|| k.value_aliases.iter().find(|(s, _)| s.eq_ignore_ascii_case(value)).map(|(_, c)| c))
            .map(|a| format!(" (did you mean '{a}'?)"))
            .unwrap_or_default();
        let message = format!("'{value}' is not an allowed value of '{}': allowed are {}{hint}", k.key, k.allowed_values.join(", "));
        return Some(("allowed_values", message));
    }
    if k.lowercase_values() && value != value.to_lowercase() {
        return Some(("lowercase", format!("values of '{}' are lower case: write '{}'", k.key, value.to_lowercase())));
    }
    None
}

/// What kind of value a field holds, for the operators that make sense on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Number,
    /// Tags hold text that may be a number (`cpu: "4"`): both kinds of operator apply.
    Either,
}

const FIELDS: &str = "name, provider, account, region, resource_type, monthly_cost, native.<key> or tag.<key>";
const TEXT_OPERATORS: [&str; 6] = ["equals", "in", "contains", "starts_with", "ends_with", "regex"];

struct Compiler<'d> {
    schema: TagSchema,
    /// Schema keys as written, for checking the values rules and defaults give them.
    docs: BTreeMap<&'d str, &'d KeyDoc>,
    errors: Errors,
}

impl Compiler<'_> {
    /// A key a rule or default sets: valid, and the canonical spelling when the schema knows it
    /// (a rule setting `env` would create a second, stray tag beside `environment`).
    fn target_key(&mut self, path: &str, key: &str) -> bool {
        if self.errors.check(path, TagKey::parse(key)).is_none() {
            return false;
        }
        match self.schema.lookup(key) {
            Some(canonical) if canonical.key != key => {
                let message = format!("'{key}' is a spelling of the schema key '{}': rules and defaults set canonical keys", canonical.key);
                self.errors.push(path, "alias", message);
                false
            }
            _ => true,
        }
    }

    /// A value set for `key`: valid, and fitting the schema key's allowed values and case.
    fn value(&mut self, path: &str, key: &str, value: &str) -> bool {
        if self.errors.check(path, TagValue::parse(value)).is_none() {
            return false;
        }
        match self.docs.get(key).and_then(|k| misfit(k, value)) {
            Some((rule, message)) => {
                self.errors.push(path, rule, message);
                false
            }
            None => true,
        }
    }

    fn defaults(&mut self, defaults: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (key, value) in defaults {
            let path = join("defaults", key);
            if self.target_key(&path, key) && self.value(&path, key, value) {
                out.insert(key.clone(), value.clone());
            }
        }
        out
    }

    /// The rules that compile, each with the virtual tags it reads. A duplicate id is reported and
    /// left out, so the rest can still be checked for cycles.
    fn rules(&mut self, rules: &[RuleDoc]) -> Vec<(Rule, Vec<Read>)> {
        let mut ids: BTreeMap<&str, usize> = BTreeMap::new();
        let mut out = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            let path = format!("rules[{i}]");
            let compiled = self.rule(r, &path);
            if let Some(first) = ids.get(r.id.as_str()) {
                self.errors.push(join(&path, "id"), "duplicate", format!("rule id '{}' is already used by rules[{first}]", r.id));
                continue;
            }
            ids.insert(&r.id, i);
            out.extend(compiled);
        }
        out
    }

    fn rule(&mut self, r: &RuleDoc, path: &str) -> Option<(Rule, Vec<Read>)> {
        let id_ok = self.rule_id(&join(path, "id"), &r.id);
        let key_ok = self.target_key(&join(path, "key"), &r.key);
        let mut reads = Vec::new();
        let condition = match &r.when {
            Some(c) => self.condition(c, &join(path, "when"), &mut reads),
            None => Some(Condition::Always),
        };
        let action = self.action(r, path, key_ok, &mut reads);
        if let (Some(from), Some(to)) = (r.effective_from, r.effective_to) {
            if from >= to {
                self.errors.push(join(path, "effective_to"), "range", format!("effective_to ({to}) must be after effective_from ({from})"));
                return None;
            }
        }
        let (condition, action) = (condition?, action?);
        if !(id_ok && key_ok) {
            return None;
        }
        let reads = reads
            .into_iter()
            .map(|(key, path)| Read { key, path, rule_id: r.id.clone(), rule_key: r.key.clone() })
            .collect();
        let rule = Rule {
            id: r.id.clone(),
            key: r.key.clone(),
            priority: r.priority,
            enabled: r.enabled,
            condition,
            action,
            effective_from: r.effective_from,
            effective_to: r.effective_to,
        };
        Some((rule, reads))
    }

    /// Ids name rules in URLs and in every derived tag's provenance: kept short and plain.
    fn rule_id(&mut self, path: &str, id: &str) -> bool {
        let problem = if id.is_empty() {
            Some(("required", "rule id must not be empty".to_owned()))
        } else if id.chars().count() > MAX_RULE_ID_LEN {
            Some(("max_length", format!("rule id must be at most {MAX_RULE_ID_LEN} characters")))
        } else if !id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            Some(("charset", format!("rule id '{id}' may contain only ASCII letters, digits, '-', '_' and '.'")))
        } else {
            None
        };
        problem.map(|(rule, message)| self.errors.push(path, rule, message)).is_none()
    }

    fn action(&mut self, r: &RuleDoc, path: &str, key_ok: bool, reads: &mut Vec<(String, String)>) -> Option<Action> {
        let chosen: Vec<&str> = [("set", r.set.is_some()), ("set_from_name", r.set_from_name.is_some()), ("lookup", r.lookup.is_some())]
            .into_iter()
            .filter_map(|(name, present)| present.then_some(name))
            .collect();
        if chosen.len() != 1 {
            let (rule, message) = if chosen.is_empty() {
                ("required", "a rule needs one of set, set_from_name, lookup".to_owned())
            } else {
                ("one_of", format!("a rule takes exactly one of set, set_from_name, lookup; found {}", chosen.join(" and ")))
            };
            self.errors.push(path, rule, message);
            return None;
        }
        if let Some(value) = &r.set {
            let at = join(path, "set");
            let ok = if key_ok { self.value(&at, &r.key, value) } else { self.errors.check(&at, TagValue::parse(value)).is_some() };
            return ok.then(|| Action::Set(value.clone()));
        }
        if let Some(capture) = &r.set_from_name {
            let at = join(path, "set_from_name");
            let pattern = self.regex(&join(&at, "regex"), &capture.regex, false)?;
            if !pattern.capture_names().flatten().any(|n| n == capture.group) {
                let named: Vec<&str> = pattern.capture_names().flatten().collect();
                let known = if named.is_empty() {
                    "it has no named groups: write (?P<name>…)".to_owned()
                } else {
                    format!("its named groups are {}", named.join(", "))
                };
                self.errors.push(join(&at, "group"), "regex", format!("capture group '{}' is not in the regex; {known}", capture.group));
                return None;
            }
            return Some(Action::NameCapture { pattern, group: capture.group.clone() });
        }
        let lookup = r.lookup.as_ref().expect("one action was chosen");
        let at = join(path, "lookup");
        let field = self.field(&join(&at, "field"), &lookup.field, reads);
        if let Some((_, Kind::Number)) = field {
            self.errors.push(join(&at, "field"), "operator", format!("a lookup needs a text field; {} is a number", lookup.field));
            return None;
        }
        if lookup.table.is_empty() {
            self.errors.push(join(&at, "table"), "required", "a lookup table needs at least one entry");
            return None;
        }
        let mut table_ok = true;
        for (from, to) in &lookup.table {
            let entry = join(&join(&at, "table"), from);
            table_ok &= if key_ok { self.value(&entry, &r.key, to) } else { self.errors.check(&entry, TagValue::parse(to)).is_some() };
        }
        let (field, _) = field?;
        table_ok.then(|| Action::Lookup { field, table: lookup.table.clone() })
    }

    fn regex(&mut self, path: &str, pattern: &str, ignore_case: bool) -> Option<Regex> {
        match RegexBuilder::new(pattern).case_insensitive(ignore_case).size_limit(REGEX_SIZE_LIMIT).build() {
            Ok(re) => Some(re),
            Err(e) => {
                self.errors.push(path, "regex", format!("invalid regex '{pattern}': {}", regex_reason(&e)));
                None
            }
        }
    }

    /// A field name; the virtual tags it reads are noted with `path` for cycle reports.
    fn field(&mut self, path: &str, raw: &str, reads: &mut Vec<(String, String)>) -> Option<(Field, Kind)> {
        let field = match raw {
            "name" => (Field::Name, Kind::Text),
            "provider" => (Field::Provider, Kind::Text),
            "account" => (Field::Account, Kind::Text),
            "region" => (Field::Region, Kind::Text),
            "resource_type" => (Field::ResourceType, Kind::Text),
            "monthly_cost" => (Field::MonthlyCost, Kind::Number),
            _ => {
                if let Some(key) = raw.strip_prefix("native.") {
                    // Rules see native tags after normalization: by canonical key, else in normalized form.
                    let key = self.schema.lookup(key).map_or_else(|| key_form(key), |k| k.key.clone());
                    if key.is_empty() {
                        self.errors.push(path, "required", format!("'{raw}' names no tag key: write native.<key>"));
                        return None;
                    }
                    (Field::NativeTag(key), Kind::Either)
                } else if let Some(key) = raw.strip_prefix("tag.") {
                    self.errors.check(path, TagKey::parse(key))?;
                    // Virtual tags carry canonical keys: tag.env reads environment.
                    let key = self.schema.lookup(key).map_or_else(|| key.to_owned(), |k| k.key.clone());
                    reads.push((key.clone(), path.to_owned()));
                    (Field::VirtualTag(key), Kind::Either)
                } else {
                    self.errors.push(path, "unknown_field", format!("unknown field '{raw}': expected {FIELDS}"));
                    return None;
                }
            }
        };
        Some(field)
    }

    fn condition(&mut self, c: &ConditionDoc, path: &str, reads: &mut Vec<(String, String)>) -> Option<Condition> {
        let combinations: Vec<&str> = [("all", c.all.is_some()), ("any", c.any.is_some()), ("not", c.not.is_some())]
            .into_iter()
            .filter_map(|(name, present)| present.then_some(name))
            .collect();
        let operators = operators(c);
        let test_parts: Vec<&str> = c.field.as_ref().map(|_| "field").into_iter().chain(operators.iter().copied()).collect();
        match (combinations.as_slice(), test_parts.is_empty()) {
            ([], true) => {
                let message = if c.ignore_case.is_some() { "ignore_case needs a test: a field and an operator" } else {
                    "a condition needs a field and an operator, or one of all, any, not"
                };
                self.errors.push(path, "required", message);
                None
            }
            ([], false) => self.test(c, path, &operators, reads),
            ([one], true) if c.ignore_case.is_none() => self.combination(c, one, path, reads),
            (found, true) if found.len() > 1 => {
                self.errors.push(path, "one_of", format!("a condition takes exactly one of all, any, not; found {}", found.join(" and ")));
                None
            }
            (found, _) => {
                let test = if test_parts.is_empty() { vec!["ignore_case"] } else { test_parts };
                let message = format!(
                    "a condition is either a test (field and operator) or a combination (all, any, not); found {} with {}",
                    test.join(" and "),
                    found.join(" and ")
                );
                self.errors.push(path, "one_of", message);
                None
            }
        }
    }

    fn combination(&mut self, c: &ConditionDoc, which: &str, path: &str, reads: &mut Vec<(String, String)>) -> Option<Condition> {
        let at = join(path, which);
        if let Some(inner) = &c.not {
            return Some(Condition::Not(Box::new(self.condition(inner, &at, reads)?)));
        }
        let list = c.all.as_ref().or(c.any.as_ref()).expect("all or any is present");
        if list.is_empty() {
            self.errors.push(&at, "required", format!("{which} needs at least one condition"));
            return None;
        }
        // Compile every member before giving up, so each one's errors are reported.
        let members: Vec<Option<Condition>> =
            list.iter().enumerate().map(|(i, m)| self.condition(m, &format!("{at}[{i}]"), reads)).collect();
        let members: Vec<Condition> = members.into_iter().collect::<Option<_>>()?;
        Some(if which == "all" { Condition::All(members) } else { Condition::Any(members) })
    }

    fn test(&mut self, c: &ConditionDoc, path: &str, operators: &[&'static str], reads: &mut Vec<(String, String)>) -> Option<Condition> {
        let Some(raw_field) = &c.field else {
            self.errors.push(path, "required", format!("a test needs a field: {FIELDS}"));
            return None;
        };
        let field = self.field(&join(path, "field"), raw_field, reads);
        let op = match operators {
            [op] => *op,
            [] => {
                let message = "a test needs an operator: one of equals, in, contains, starts_with, ends_with, regex, exists, gt, gte, lt, lte";
                self.errors.push(path, "required", message);
                return None;
            }
            several => {
                self.errors.push(path, "one_of", format!("a test takes exactly one operator; found {}", several.join(" and ")));
                return None;
            }
        };
        let at = join(path, op);
        let (field, kind) = field?;
        let text = TEXT_OPERATORS.contains(&op);
        let numeric = !text && op != "exists";
        if text && kind == Kind::Number {
            self.errors.push(at, "operator", format!("{raw_field} is a number: compare it with gt, gte, lt, lte (or test exists), not {op}"));
            return None;
        }
        if numeric && kind == Kind::Text {
            let message = format!("{op} compares numbers and {raw_field} is text; numeric operators apply to monthly_cost, native.<key> and tag.<key>");
            self.errors.push(at, "operator", message);
            return None;
        }
        let ignore_case = c.ignore_case.unwrap_or(false);
        if c.ignore_case.is_some() && !text {
            self.errors.push(join(path, "ignore_case"), "operator", format!("ignore_case applies to text operators only, not {op}"));
            return None;
        }
        let operator = match op {
            "equals" => Operator::Equals(c.equals.clone()?),
            "in" => {
                let list = c.in_.clone()?;
                if list.is_empty() {
                    self.errors.push(at, "required", "in needs at least one value");
                    return None;
                }
                Operator::In(list)
            }
            "contains" => Operator::Contains(c.contains.clone()?),
            "starts_with" => Operator::StartsWith(c.starts_with.clone()?),
            "ends_with" => Operator::EndsWith(c.ends_with.clone()?),
            "regex" => Operator::Matches(self.regex(&at, c.regex.as_deref()?, ignore_case)?),
            "exists" => {
                if c.exists != Some(true) {
                    self.errors.push(at, "one_of", "exists takes only true; test absence with {not: {field: …, exists: true}}");
                    return None;
                }
                Operator::Exists
            }
            "gt" => Operator::GreaterThan(c.gt?),
            "gte" => Operator::GreaterOrEqual(c.gte?),
            "lt" => Operator::LessThan(c.lt?),
            _ => Operator::LessOrEqual(c.lte?),
        };
        Some(Condition::Test { field, operator, ignore_case })
    }
}

/// The operators present in a condition, in the format's order.
fn operators(c: &ConditionDoc) -> Vec<&'static str> {
    [
        ("equals", c.equals.is_some()),
        ("in", c.in_.is_some()),
        ("contains", c.contains.is_some()),
        ("starts_with", c.starts_with.is_some()),
        ("ends_with", c.ends_with.is_some()),
        ("regex", c.regex.is_some()),
        ("exists", c.exists.is_some()),
        ("gt", c.gt.is_some()),
        ("gte", c.gte.is_some()),
        ("lt", c.lt.is_some()),
        ("lte", c.lte.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, present)| present.then_some(name))
    .collect()
}

/// The regex crate's own explanation without its multi-line caret drawing, which does not fit
/// in one error entry ("unclosed group").
fn regex_reason(e: &regex::Error) -> String {
    match e {
        regex::Error::Syntax(text) => {
            text.lines().rev().find_map(|l| l.strip_prefix("error: ")).unwrap_or(text).trim().to_owned()
        }
        regex::Error::CompiledTooBig(_) => "the compiled pattern is too large".to_owned(),
        other => other.to_string(),
    }
}

/// One error per step of a cycle, each at the place where a rule reads the next key.
fn cycle_errors(keys: &[String], reads: &[Vec<Read>], errors: &mut Errors) {
    let cycle = keys.join(" → ");
    for step in keys.windows(2) {
        let (from, to) = (&step[0], &step[1]);
        let read = reads.iter().flatten().find(|r| r.rule_key == *from && r.key == *to);
        let (path, message) = match read {
            Some(r) => (
                r.path.clone(),
                format!("rule '{}' of {from} reads tag.{to}, and keys derive from each other in a cycle: {cycle}", r.rule_id),
            ),
            None => ("rules".to_owned(), format!("keys derive from each other in a cycle: {cycle}")),
        };
        errors.add(DocError::new(path, "cycle", message));
    }
}
