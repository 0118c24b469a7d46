//! Changes behind the command API's CRUD endpoints. Each returns a new document that compiles, or
//! the errors: a configuration is only ever replaced by a valid one, whichever endpoint changed it.

use std::collections::BTreeMap;

use vtag_domain::tagging::key_form;

use crate::document::{ConfigDocument, KeyDoc, MappingDoc, RuleDoc};
use crate::errors::DocError;

/// Gap between rewritten priorities, leaving room to slot a rule in later without renumbering.
const PRIORITY_STEP: u32 = 10;

impl ConfigDocument {
    /// Replaces the rule with the same id, or appends it. Errors inside the rule have paths
    /// relative to it (`when.regex`), as for a rule body read with [`RuleDoc::from_json`].
    pub fn upsert_rule(&self, rule: RuleDoc) -> Result<Self, Vec<DocError>> {
        let mut doc = self.clone();
        let index = match doc.rules.iter().position(|r| r.id == rule.id) {
            Some(i) => {
                doc.rules[i] = rule;
                i
            }
            None => {
                doc.rules.push(rule);
                doc.rules.len() - 1
            }
        };
        let prefix = format!("rules[{index}]");
        doc.checked().map_err(|errors| errors.into_iter().map(|e| relative_to(e, &prefix)).collect())
    }

    pub fn remove_rule(&self, id: &str) -> Result<Self, Vec<DocError>> {
        let mut doc = self.clone();
        let i = doc.rule_index(id)?;
        doc.rules.remove(i);
        doc.checked()
    }

    pub fn set_enabled(&self, id: &str, enabled: bool) -> Result<Self, Vec<DocError>> {
        let mut doc = self.clone();
        let i = doc.rule_index(id)?;
        doc.rules[i].enabled = enabled;
        doc.checked()
    }

    /// Gives the rules of `key` the order of `ids` (priorities 10, 20, 30, …). `ids` must list
    /// each rule of that key exactly once: a partial order would leave the others' places to chance.
    /// Error paths name the fields of the reorder request body, `{key, order}`.
    pub fn reorder(&self, key: &str, ids: &[String]) -> Result<Self, Vec<DocError>> {
        let of_key: Vec<&str> = self.rules.iter().filter(|r| r.key == key).map(|r| r.id.as_str()).collect();
        if of_key.is_empty() {
            return Err(vec![DocError::new("key", "not_found", format!("no rule sets the key '{key}'"))]);
        }
        let mut errors = Vec::new();
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, id) in ids.iter().enumerate() {
            let path = format!("order[{i}]");
            if let Some(first) = seen.insert(id, i) {
                errors.push(DocError::new(path, "duplicate", format!("rule '{id}' is listed twice (first at order[{first}])")));
            } else if !of_key.contains(&id.as_str()) {
                let message = match self.rules.iter().find(|r| r.id == *id) {
                    Some(r) => format!("rule '{id}' sets '{}', not '{key}'", r.key),
                    None => format!("no rule with id '{id}'"),
                };
                errors.push(DocError::new(path, "not_found", message));
            }
        }
        let missing: Vec<&str> = of_key.iter().copied().filter(|id| !seen.contains_key(id)).collect();
        if !missing.is_empty() {
            let message = format!("the order must list every rule of '{key}'; missing {}", missing.join(", "));
            errors.push(DocError::new("order", "mismatch", message));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut doc = self.clone();
        for r in doc.rules.iter_mut().filter(|r| r.key == key) {
            let place = u32::try_from(seen[r.id.as_str()] + 1).unwrap_or(u32::MAX);
            r.priority = place.saturating_mul(PRIORITY_STEP);
        }
        doc.checked()
    }

    /// Merges a mapping into the schema key of the same name, or adds the key.
    pub fn add_mapping(&self, mapping: MappingDoc) -> Result<Self, Vec<DocError>> {
        let mut doc = self.clone();
        let MappingDoc { key, aliases, value_aliases, priority, allowed_values } = mapping;
        match doc.schema.keys.iter_mut().find(|k| k.key == key) {
            Some(existing) => {
                // Spellings compare in normalized form: `Env` adds nothing where `env` is known.
                for alias in aliases {
                    let form = key_form(&alias);
                    if form != key_form(&existing.key) && !existing.aliases.iter().any(|a| key_form(a) == form) {
                        existing.aliases.push(alias);
                    }
                }
                existing.value_aliases.extend(value_aliases);
                existing.priority = priority.unwrap_or(existing.priority);
                if let Some(allowed) = allowed_values {
                    existing.allowed_values = allowed;
                }
            }
            None => {
                let Some(priority) = priority else {
                    let message = format!("'{key}' is not in the schema yet: a new key needs a priority (critical, high, medium or low)");
                    return Err(vec![DocError::new("priority", "required", message)]);
                };
                let allowed_values = allowed_values.unwrap_or_default();
                doc.schema.keys.push(KeyDoc { key, priority, allowed_values, aliases, value_aliases, lowercase: None });
            }
        }
        doc.checked()
    }

    /// Replaces the per-key defaults.
    pub fn set_defaults(&self, defaults: BTreeMap<String, String>) -> Result<Self, Vec<DocError>> {
        Self { defaults, ..self.clone() }.checked()
    }

    fn rule_index(&self, id: &str) -> Result<usize, Vec<DocError>> {
        self.rules
            .iter()
            .position(|r| r.id == id)
            .ok_or_else(|| vec![DocError::new("id", "not_found", format!("no rule with id '{id}'"))])
    }

    fn checked(self) -> Result<Self, Vec<DocError>> {
        // The version only labels the compiled result, which is thrown away here.
        self.compile(0).map(|_| self)
    }
}

/// `rules[3].when.regex` → `when.regex` when `prefix` is `rules[3]`; other paths stay as they are.
fn relative_to(mut e: DocError, prefix: &str) -> DocError {
    if e.path == prefix {
        e.path.clear();
    } else if let Some(rest) = e.path.strip_prefix(prefix).and_then(|p| p.strip_prefix('.')) {
        e.path = rest.to_owned();
    }
    e
}
