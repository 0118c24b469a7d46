//! What is wrong with a document, said so that a person can fix it: where (a path such as
//! `rules[3].when.all[1].regex`, and in YAML the line and column), which rule was broken (a stable
//! machine name), and a precise message. The command API turns each into one entry of a 422
//! problem+json `errors` list.
//!
//! Rule names: `json`, `yaml` (syntax), `unknown_field`, `type`, `required`, `one_of`, `duplicate`,
//! `regex`, `operator` (an operator that does not fit its field), `allowed_values`, `lowercase`,
//! `range`, `version`, `cycle`, `not_found`, `mismatch`, `alias`, and the domain's value rules
//! (`charset`, `max_length`, `trimmed`).

use std::fmt;

use vtag_domain::ValidationError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocError {
    /// Where in the document: `schema.keys[0].key`, `rules[3].when.all[1].regex`, `defaults.owner`.
    /// Empty for the document as a whole.
    pub path: String,
    pub rule: &'static str,
    pub message: String,
    /// 1-based, when the document came as text whose positions are known.
    pub line: Option<usize>,
    /// 1-based, in characters.
    pub column: Option<usize>,
}

impl DocError {
    pub fn new(path: impl Into<String>, rule: &'static str, message: impl Into<String>) -> Self {
        Self { path: path.into(), rule, message: message.into(), line: None, column: None }
    }

    pub fn from_validation(path: impl Into<String>, e: ValidationError) -> Self {
        Self::new(path, e.rule, e.message)
    }
}

impl fmt::Display for DocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)?;
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, " (line {l}, column {c})"),
            (Some(l), None) => write!(f, " (line {l})"),
            _ => Ok(()),
        }
    }
}

impl std::error::Error for DocError {}

/// A serde error (already carrying its path) as a [`DocError`]. serde has no error kinds, only
/// messages with stable prefixes, so the rule is read off the message.
pub fn from_serde(path: String, message: String) -> DocError {
    let rule = if message.starts_with("unknown field") {
        "unknown_field"
    } else if message.starts_with("missing field") {
        "required"
    } else if message.starts_with("unknown variant") {
        "one_of"
    } else {
        "type"
    };
    // A bare number in YAML is a number, and an account id like 012345678901 would silently lose
    // its leading zero if we took numbers for text: so we refuse, and say how to fix it.
    let message = if message.starts_with("invalid type: integer") && message.ends_with("expected a string") {
        format!("{message} (quote numbers meant as text, e.g. '012345678901')")
    } else {
        message
    };
    // serde_path_to_error's root path is "."; ours is empty.
    let path = if path == "." { String::new() } else { path };
    DocError::new(path, rule, message)
}

/// The path of `field` inside `parent` (`rules[2]` + `when` → `rules[2].when`).
pub fn join(parent: &str, field: &str) -> String {
    if parent.is_empty() {
        field.to_owned()
    } else {
        format!("{parent}.{field}")
    }
}

/// Collects every error of a document instead of stopping at the first.
#[derive(Debug, Default)]
pub struct Errors(Vec<DocError>);

impl Errors {
    pub fn push(&mut self, path: impl Into<String>, rule: &'static str, message: impl Into<String>) {
        self.0.push(DocError::new(path, rule, message));
    }

    pub fn add(&mut self, e: DocError) {
        self.0.push(e);
    }

    /// `value` when it is valid, or records the error at `path`.
    pub fn check<T>(&mut self, path: impl Into<String>, value: Result<T, ValidationError>) -> Option<T> {
        value.map_err(|e| self.0.push(DocError::from_validation(path, e))).ok()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn into_vec(self) -> Vec<DocError> {
        self.0
    }
}
