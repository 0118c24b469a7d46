//! Document → the domain's policies, every error of the document reported at once with its path.

use std::collections::BTreeSet;

use regex::Regex;
use serde_json::Value;
use vtag_documents::errors::join;
use vtag_documents::{DocError, Errors};
use vtag_domain::compliance::{Check, Escalation, Policy, Requirement, Scope, Severity, TagCondition, Validation, ValueRule};
use vtag_domain::{Provider, TagKey};

use crate::document::{PoliciesDocument, PolicyDoc, RulesDoc, ValidationDoc, FORMAT_VERSION};

/// A year: longer grace periods and escalation delays are typing mistakes.
const MAX_HOURS: u32 = 8_760;

impl PoliciesDocument {
    pub fn compile(&self) -> Result<Vec<Policy>, Vec<DocError>> {
        let mut errors = Errors::default();
        if self.format_version != FORMAT_VERSION {
            errors.push("format_version", "version", format!("this build reads format_version {FORMAT_VERSION}"));
        }
        let mut ids = BTreeSet::new();
        let mut policies = Vec::new();
        for (i, p) in self.policies.iter().enumerate() {
            let path = format!("policies[{i}]");
            if !ids.insert(p.policy_id.as_str()) {
                errors.push(join(&path, "policy_id"), "duplicate", format!("policy id '{}' is used by more than one policy", p.policy_id));
            }
            if let Some(policy) = p.compile_at(&path, &mut errors) {
                policies.push(policy);
            }
        }
        if errors.is_empty() {
            Ok(policies)
        } else {
            Err(errors.into_vec())
        }
    }
}

impl PolicyDoc {
    /// One policy on its own (paths relative to it: `rules.then_require[1].validation.pattern`).
    pub fn compile(&self) -> Result<Policy, Vec<DocError>> {
        let mut errors = Errors::default();
        match self.compile_at("", &mut errors) {
            Some(p) if errors.is_empty() => Ok(p),
            _ => Err(errors.into_vec()),
        }
    }

    fn compile_at(&self, path: &str, errors: &mut Errors) -> Option<Policy> {
        let before = errors.len();
        let id = self.policy_id.trim();
        if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            errors.push(join(path, "policy_id"), "charset", "a policy id is 1 to 64 letters, digits, '-', '_' or '.'");
        }
        if self.policy_name.trim().is_empty() || self.policy_name.chars().count() > 200 {
            errors.push(join(path, "policy_name"), "max_length", "a policy name is 1 to 200 characters");
        }
        let rules_path = join(path, "rules");
        let r = &self.rules;
        let severity = match &r.severity {
            None => Severity::Medium,
            Some(s) => Severity::parse(s).unwrap_or_else(|| {
                errors.push(join(&rules_path, "severity"), "one_of", format!("'{s}' is not one of critical, high, medium, low"));
                Severity::Medium
            }),
        };
        let grace_period_hours = r.grace_period_hours.unwrap_or(0);
        if grace_period_hours > MAX_HOURS {
            errors.push(join(&rules_path, "grace_period_hours"), "range", format!("at most {MAX_HOURS} hours (a year)"));
        }
        let escalation = r.escalation.as_ref().map(|e| {
            let at = join(&rules_path, "escalation");
            if e.to.trim().is_empty() {
                errors.push(join(&at, "to"), "required", "say whom to escalate to (an address or a routing target)");
            }
            if e.after_hours > MAX_HOURS {
                errors.push(join(&at, "after_hours"), "range", format!("at most {MAX_HOURS} hours (a year)"));
            }
            Escalation { to: e.to.trim().into(), after_hours: e.after_hours }
        });
        let scope = self.scope.as_ref().map(|s| scope(s, &join(path, "scope"), errors)).unwrap_or_default();
        let check = check(&self.policy_type, r, &join(path, "policy_type"), &rules_path, errors);
        (errors.len() == before).then(|| Policy {
            id: id.into(),
            name: self.policy_name.trim().to_owned(),
            description: self.description.clone(),
            enabled: self.enabled,
            severity,
            grace_period_hours,
            escalation,
            scope,
            check: check.expect("no errors, so the check compiled"),
        })
    }
}

fn scope(s: &crate::document::ScopeDoc, path: &str, errors: &mut Errors) -> Scope {
    let providers = s
        .providers
        .iter()
        .enumerate()
        .filter_map(|(i, p)| errors.check(format!("{path}.providers[{i}]"), Provider::parse(p)))
        .collect();
    Scope { providers, accounts: s.accounts.clone(), resource_types: s.resource_types.clone() }
}

/// Which fields each policy type reads: any other one set is a mistake worth reporting.
fn used_fields(policy_type: &str) -> &'static [&'static str] {
    match policy_type {
        "required_tags" => &["condition", "required_tags", "validation"],
        "value_validation" => &["tag_key", "allowed_values", "case_sensitive"],
        "conditional_requirement" => &["if_condition", "then_require"],
        "cost_threshold" => &["cost_threshold", "threshold", "period", "required_tags", "validation"],
        _ => &[],
    }
}

fn check(policy_type: &str, r: &RulesDoc, type_path: &str, path: &str, errors: &mut Errors) -> Option<Check> {
    const TYPES: [&str; 4] = ["required_tags", "value_validation", "conditional_requirement", "cost_threshold"];
    if !TYPES.contains(&policy_type) {
        errors.push(type_path, "one_of", format!("'{policy_type}' is not one of {}", TYPES.join(", ")));
        return None;
    }
    let set: [(&str, bool); 11] = [
        ("condition", r.condition.is_some()),
        ("required_tags", r.required_tags.is_some()),
        ("validation", r.validation.is_some()),
        ("tag_key", r.tag_key.is_some()),
        ("allowed_values", r.allowed_values.is_some()),
        ("case_sensitive", r.case_sensitive.is_some()),
        ("if_condition", r.if_condition.is_some()),
        ("then_require", r.then_require.is_some()),
        ("cost_threshold", r.cost_threshold.is_some()),
        ("threshold", r.threshold.is_some()),
        ("period", r.period.is_some()),
    ];
    for (field, present) in set {
        if present && !used_fields(policy_type).contains(&field) {
            errors.push(join(path, field), "unknown_field", format!("{field} does not apply to a {policy_type} policy"));
        }
    }
    match policy_type {
        "required_tags" => {
            let when = r.condition.as_ref().and_then(|c| condition(c, &join(path, "condition"), errors));
            let require = required(r, path, errors)?;
            Some(Check::RequiredTags { when, require })
        }
        "value_validation" => {
            let key = match &r.tag_key {
                Some(k) => tag_key(k, &join(path, "tag_key"), errors)?,
                None => return missing(errors, path, "tag_key", "the tag whose values are checked"),
            };
            let allowed = match &r.allowed_values {
                Some(v) if !v.is_empty() => v.clone(),
                _ => return missing(errors, path, "allowed_values", "the values the tag may take"),
            };
            Some(Check::ValueValidation { key: key.into(), allowed, case_sensitive: r.case_sensitive.unwrap_or(false) })
        }
        "conditional_requirement" => {
            let when = match &r.if_condition {
                Some(c) => condition(c, &join(path, "if_condition"), errors),
                None => return missing(errors, path, "if_condition", "when the tags are required"),
            };
            let require = match &r.then_require {
                // Every item checked (not stopping at the first bad one): all mistakes at once.
                Some(items) if !items.is_empty() => items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| requirement(item, &format!("{path}.then_require[{i}]"), errors))
                    .collect::<Vec<_>>()
                    .into_iter()
                    .collect::<Option<Vec<_>>>(),
                _ => return missing(errors, path, "then_require", "the tags required when the condition holds"),
            };
            Some(Check::ConditionalRequirement { when: when?, require: require? })
        }
        _ => {
            let (amount, currency, period, at) = match (&r.cost_threshold, &r.threshold) {
                (Some(t), None) => (t.amount.as_f64().unwrap_or(f64::NAN), t.currency.clone(), t.period.clone(), join(path, "cost_threshold.amount")),
                (None, Some(amount)) => (amount.as_f64().unwrap_or(f64::NAN), None, r.period.clone(), join(path, "threshold")),
                (Some(_), Some(_)) => {
                    errors.push(join(path, "threshold"), "one_of", "give cost_threshold or threshold, not both");
                    return None;
                }
                (None, None) => return missing(errors, path, "cost_threshold", "the monthly cost above which the tags are required"),
            };
            if !amount.is_finite() || !(0.0..1e13).contains(&amount) {
                errors.push(at, "range", "a threshold is a non-negative amount below 10,000,000,000,000");
            }
            if let Some(p) = period.filter(|p| !p.eq_ignore_ascii_case("monthly")) {
                errors.push(join(path, "period"), "one_of", format!("'{p}' is not a supported period: monthly (the 30-day run rate)"));
            }
            let currency = currency.unwrap_or_else(|| "USD".to_owned());
            if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
                errors.push(join(path, "cost_threshold.currency"), "currency", format!("'{currency}' is not an ISO 4217 currency code"));
            }
            let require = required(r, path, errors)?;
            Some(Check::CostThreshold { above_cents: (amount * 100.0).round() as i64, currency, require })
        }
    }
}

fn missing<T>(errors: &mut Errors, path: &str, field: &str, what: &str) -> Option<T> {
    errors.push(join(path, field), "required", format!("{field} is required: {what}"));
    None
}

/// `required_tags` with their `validation` entries.
fn required(r: &RulesDoc, path: &str, errors: &mut Errors) -> Option<Vec<Requirement>> {
    let Some(keys) = r.required_tags.as_ref().filter(|k| !k.is_empty()) else {
        return missing(errors, path, "required_tags", "the tags the policy requires");
    };
    let mut require = Vec::new();
    let mut ok = true;
    for (i, k) in keys.iter().enumerate() {
        match tag_key(k, &format!("{path}.required_tags[{i}]"), errors) {
            Some(key) => require.push(Requirement::present(key)),
            None => ok = false,
        }
    }
    for (key, v) in r.validation.iter().flatten() {
        let at = format!("{path}.validation.{key}");
        match require.iter_mut().find(|q| *q.key == **key) {
            Some(q) => q.validation = validation(v, &at, errors).or_else(|| {
                ok = false;
                None
            }),
            None => {
                errors.push(at, "not_found", format!("'{key}' is validated but not in required_tags"));
                ok = false;
            }
        }
    }
    ok.then_some(require)
}

/// A `then_require` item: a tag name, or `{tag_key, validation}`.
fn requirement(item: &Value, path: &str, errors: &mut Errors) -> Option<Requirement> {
    match item {
        Value::String(k) => tag_key(k, path, errors).map(Requirement::present),
        Value::Object(fields) => {
            for name in fields.keys().filter(|n| !["tag_key", "validation"].contains(&n.as_str())) {
                errors.push(join(path, name), "unknown_field", format!("unknown field `{name}`, expected `tag_key` or `validation`"));
            }
            let key = match fields.get("tag_key") {
                Some(Value::String(k)) => tag_key(k, &join(path, "tag_key"), errors),
                _ => return missing(errors, path, "tag_key", "the tag required"),
            };
            let validation = match fields.get("validation") {
                None => None,
                Some(v) => match serde_json::from_value::<ValidationDoc>(v.clone()) {
                    Ok(doc) => Some(validation(&doc, &join(path, "validation"), errors)?),
                    Err(e) => {
                        errors.push(join(path, "validation"), "type", e.to_string());
                        return None;
                    }
                },
            };
            Some(Requirement::new(&key?, validation))
        }
        _ => {
            errors.push(path, "type", "a required tag is a name or {tag_key, validation}");
            None
        }
    }
}

fn validation(v: &ValidationDoc, path: &str, errors: &mut Errors) -> Option<Validation> {
    let rule = match v.kind.as_str() {
        "regex" => {
            let Some(pattern) = &v.pattern else { return missing(errors, path, "pattern", "the regular expression values must match") };
            match Regex::new(pattern) {
                Ok(re) => ValueRule::Regex(re),
                Err(e) => {
                    errors.push(join(path, "pattern"), "regex", format!("not a valid regular expression: {e}"));
                    return None;
                }
            }
        }
        "email" => ValueRule::Email,
        "enum" => match &v.allowed_values {
            Some(a) if !a.is_empty() => ValueRule::OneOf { allowed: a.clone(), case_sensitive: v.case_sensitive.unwrap_or(true) },
            _ => return missing(errors, path, "allowed_values", "the values allowed"),
        },
        "date" => {
            if let Some(f) = v.format.as_deref().filter(|f| *f != "YYYY-MM-DD") {
                errors.push(join(path, "format"), "one_of", format!("'{f}' is not a supported date format: YYYY-MM-DD"));
            }
            ValueRule::Date { max_age_days: v.max_age_days, must_be_future: v.must_be_future.unwrap_or(false) }
        }
        other => {
            errors.push(join(path, "type"), "one_of", format!("'{other}' is not one of regex, email, enum, date"));
            return None;
        }
    };
    Some(Validation { rule, message: v.message.clone() })
}

fn tag_key(raw: &str, path: &str, errors: &mut Errors) -> Option<String> {
    errors.check(path, TagKey::parse(raw.trim())).map(|k| k.as_str().to_owned())
}

/// A condition on tags: the seed's text (`tags.environment == 'production'`, joined with `and`)
/// or an object (`{field, operator, value}`, `{all: [...]}`, `{any: [...]}`).
fn condition(c: &Value, path: &str, errors: &mut Errors) -> Option<TagCondition> {
    match c {
        Value::String(text) => text_condition(text, path, errors),
        Value::Object(fields) => {
            for (name, combine) in [("all", TagCondition::All as fn(Vec<TagCondition>) -> TagCondition), ("any", TagCondition::Any)] {
                if let Some(list) = fields.get(name) {
                    let Value::Array(items) = list else {
                        errors.push(join(path, name), "type", format!("{name} is a list of conditions"));
                        return None;
                    };
                    let parts: Vec<Option<_>> =
                        items.iter().enumerate().map(|(i, item)| condition(item, &format!("{path}.{name}[{i}]"), errors)).collect();
                    return parts.into_iter().collect::<Option<Vec<_>>>().map(combine);
                }
            }
            object_condition(fields, path, errors)
        }
        _ => {
            errors.push(path, "type", "a condition is text (tags.environment == 'production') or an object {field, operator, value}");
            None
        }
    }
}

fn object_condition(fields: &serde_json::Map<String, Value>, path: &str, errors: &mut Errors) -> Option<TagCondition> {
    for name in fields.keys().filter(|n| !["field", "operator", "value", "values", "case_sensitive"].contains(&n.as_str())) {
        errors.push(join(path, name), "unknown_field", format!("unknown field `{name}`, expected field, operator, value, values, case_sensitive, all or any"));
    }
    let key = match fields.get("field") {
        Some(Value::String(f)) => tag_field(f, &join(path, "field"), errors)?,
        _ => return missing(errors, path, "field", "the tag looked at, as tags.<key>"),
    };
    let ignore_case = !matches!(fields.get("case_sensitive"), Some(Value::Bool(true)));
    let text = |name: &str, errors: &mut Errors| match fields.get(name) {
        Some(Value::String(v)) => Some(v.clone()),
        _ => missing(errors, path, name, "the value compared with (text)"),
    };
    let operator = match fields.get("operator") {
        Some(Value::String(o)) => o.as_str(),
        _ => return missing(errors, path, "operator", "one of equals, not_equals, in, exists, not_exists, matches"),
    };
    Some(match operator {
        "equals" => TagCondition::Equals { key, value: text("value", errors)?, ignore_case },
        "not_equals" => TagCondition::NotEquals { key, value: text("value", errors)?, ignore_case },
        "in" => match fields.get("values") {
            Some(Value::Array(vs)) if vs.iter().all(Value::is_string) && !vs.is_empty() => {
                TagCondition::In { key, values: vs.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(), ignore_case }
            }
            _ => return missing(errors, path, "values", "the values compared with (a list of text)"),
        },
        "exists" => TagCondition::Exists { key },
        "not_exists" => TagCondition::Missing { key },
        "matches" => match Regex::new(&text("value", errors)?) {
            Ok(pattern) => TagCondition::Matches { key, pattern },
            Err(e) => {
                errors.push(join(path, "value"), "regex", format!("not a valid regular expression: {e}"));
                return None;
            }
        },
        other => {
            errors.push(join(path, "operator"), "one_of", format!("'{other}' is not one of equals, not_equals, in, exists, not_exists, matches"));
            return None;
        }
    })
}

/// `tags.<key>` → the key.
fn tag_field(field: &str, path: &str, errors: &mut Errors) -> Option<String> {
    match field.trim().strip_prefix("tags.") {
        Some(k) => tag_key(k, path, errors),
        None => {
            errors.push(path, "field", format!("'{field}' is not a tag field: write tags.<key> (policies look at virtual tags)"));
            None
        }
    }
}

/// `tags.a == 'x' and tags.b != "y"`: comparisons of a tag with a quoted value.
fn text_condition(text: &str, path: &str, errors: &mut Errors) -> Option<TagCondition> {
    let mut parts = Vec::new();
    for clause in text.split(" and ").flat_map(|c| c.split("&&")) {
        let clause = clause.trim();
        let Some((field, op, value)) = ["==", "!="].iter().find_map(|op| clause.split_once(op).map(|(f, v)| (f, *op, v))) else {
            errors.push(path, "condition", format!("'{clause}' is not a comparison: write tags.<key> == 'value' or tags.<key> != 'value'"));
            return None;
        };
        let value = value.trim();
        let unquoted = value
            .strip_prefix('\'')
            .and_then(|v| v.strip_suffix('\''))
            .or_else(|| value.strip_prefix('"').and_then(|v| v.strip_suffix('"')));
        let Some(value) = unquoted else {
            errors.push(path, "condition", format!("{value} must be quoted: '{}'", value.trim_matches(['\'', '"'])));
            return None;
        };
        let key = tag_field(field, path, errors)?;
        let value = value.to_owned();
        parts.push(if op == "==" {
            TagCondition::Equals { key, value, ignore_case: true }
        } else {
            TagCondition::NotEquals { key, value, ignore_case: true }
        });
    }
    if parts.len() == 1 {
        parts.pop()
    } else {
        Some(TagCondition::All(parts))
    }
}
