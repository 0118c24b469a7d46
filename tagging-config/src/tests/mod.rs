//! Shared helpers: documents are written as JSON values or YAML text, the way people write them.

mod edit;
mod errors;
mod round_trip;
mod seed;
mod yaml;

use serde_json::{json, Value};

use crate::{ConfigDocument, DocError};

/// The format's example, as in the crate's documentation.
const EXAMPLE: &str = r#"format_version: 1
schema:
  keys:
    - key: environment
      priority: critical
      allowed_values: [production, staging, development, sandbox, test]
      aliases: [env, environment-name, stage, tier]
      value_aliases: {prod: production, PRD: production, live: production}
      lowercase: true
defaults: {cost-center: unallocated}
rules:
  - id: prod-by-name
    key: environment
    priority: 10
    enabled: true
    description: "Names containing prod are production"
    when: {field: name, contains: prod}
    set: production
    effective_from: 2026-01-01T00:00:00Z
    effective_to: null
  - id: owner-by-account
    key: owner
    priority: 10
    lookup: {field: account, table: {"1234567890": DevOps}}
  - id: app-from-name
    key: application
    priority: 20
    set_from_name: {regex: "^(?P<app>[a-z]+)-", group: app}
"#;

/// A document with the seed schema and these rules (and defaults, when given).
fn with_rules(rules: Value) -> ConfigDocument {
    let mut doc = serde_json::to_value(ConfigDocument::initial()).unwrap();
    doc["rules"] = rules;
    serde_json::from_value(doc).unwrap()
}

fn doc(value: Value) -> ConfigDocument {
    match ConfigDocument::from_json(value.to_string().as_bytes()) {
        Ok(d) => d,
        Err(e) => panic!("the document should read: {e:?}"),
    }
}

/// (path, rule) of every error compiling `doc`.
fn compile_errors(doc: &ConfigDocument) -> Vec<(String, &'static str)> {
    brief(doc.compile(1).expect_err("the document should not compile"))
}

fn brief(errors: Vec<DocError>) -> Vec<(String, &'static str)> {
    errors.into_iter().map(|e| (e.path, e.rule)).collect()
}

/// The one rule `rule`, in a document with the seed schema; its compile errors.
fn rule_errors(rule: Value) -> Vec<DocError> {
    with_rules(json!([rule])).compile(1).expect_err("the rule should not compile")
}

/// Where YAML errors are: (path, rule, line).
fn located(errors: Vec<DocError>) -> Vec<(String, &'static str, Option<usize>)> {
    errors.into_iter().map(|e| (e.path, e.rule, e.line)).collect()
}
