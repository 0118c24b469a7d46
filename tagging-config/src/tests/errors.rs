//! Every kind of error, at its exact path.

use serde_json::json;

use super::*;
use crate::RuleDoc;

fn read_errors(body: Value) -> Vec<(String, &'static str)> {
    brief(ConfigDocument::from_json(body.to_string().as_bytes()).expect_err("the document should not read"))
}

fn one(rule: Value) -> (String, &'static str, String) {
    let mut errors = rule_errors(rule);
    assert_eq!(errors.len(), 1, "{errors:?}");
    let e = errors.remove(0);
    (e.path, e.rule, e.message)
}

fn set_rule(when: Value) -> Value {
    json!({"id": "r", "key": "team", "priority": 1, "when": when, "set": "x"})
}

#[test]
fn shape_errors_carry_the_path() {
    let base = |rule: Value| json!({"schema": {"keys": []}, "rules": [rule]});
    assert_eq!(
        read_errors(base(set_rule(json!({"field": "name", "containz": "prod"})))),
        [("rules[0].when.containz".to_owned(), "unknown_field")]
    );
    assert_eq!(read_errors(base(set_rule(json!({"field": "monthly_cost", "gt": "100"})))), [("rules[0].when.gt".to_owned(), "type")]);
    assert_eq!(read_errors(base(set_rule(json!({"field": "name", "in": "prod"})))), [("rules[0].when.in".to_owned(), "type")]);
    assert_eq!(read_errors(base(json!({"id": "r", "priority": 1, "set": "x"}))), [("rules[0]".to_owned(), "required")]);
    assert_eq!(read_errors(json!({"rules": []})), [(String::new(), "required")]);
    assert_eq!(
        read_errors(json!({"schema": {"keys": [{"key": "k", "priority": "urgent"}]}})),
        [("schema.keys[0].priority".to_owned(), "one_of")]
    );
    assert_eq!(
        read_errors(base(json!({"id": "r", "key": "k", "priority": 1, "set": "x", "effective_from": "2026-13-01T00:00:00Z"}))),
        [("rules[0].effective_from".to_owned(), "type")]
    );
}

#[test]
fn json_errors_have_positions_and_readable_messages() {
    let e = ConfigDocument::from_json(b"{\"schema\": {\"keys\": []},\n \"rules\": [}").unwrap_err();
    assert_eq!((e[0].rule, e[0].line, e[0].message.as_str()), ("json", Some(2), "expected value"));
    let e = ConfigDocument::from_json(br#"{"schema": {"keys": []}} trailing"#).unwrap_err();
    assert_eq!(e[0].rule, "json");
    let e = RuleDoc::from_json(br#"{"id": "r", "key": "k", "priority": 1, "when": {"field": "name", "equals": 5}}"#).unwrap_err();
    assert_eq!((e[0].path.as_str(), e[0].rule), ("when.equals", "type"));
    assert!(e[0].message.contains("quote numbers meant as text"), "{}", e[0].message);
}

#[test]
fn an_invalid_regex_says_why_in_one_line() {
    let (path, rule, message) = one(set_rule(json!({"field": "name", "regex": "a(b"})));
    assert_eq!((path.as_str(), rule, message.as_str()), ("rules[0].when.regex", "regex", "invalid regex 'a(b': unclosed group"));
    let (path, rule, _) = one(set_rule(json!({"all": [{"field": "name", "exists": true}, {"field": "name", "regex": "("}]})));
    assert_eq!((path.as_str(), rule), ("rules[0].when.all[1].regex", "regex"));
    let e = DocError { line: Some(17), column: Some(14), ..rule_errors(set_rule(json!({"field": "name", "regex": "a(b"}))).remove(0) };
    assert_eq!(e.to_string(), "rules[0].when.regex: invalid regex 'a(b': unclosed group (line 17, column 14)");
}

#[test]
fn capture_groups_must_be_named_groups_of_the_regex() {
    let rule = |regex: &str, group: &str| {
        json!({"id": "r", "key": "application", "priority": 1, "set_from_name": {"regex": regex, "group": group}})
    };
    let (path, r, message) = one(rule("^(?P<app>[a-z]+)-", "ap"));
    assert_eq!((path.as_str(), r), ("rules[0].set_from_name.group", "regex"));
    assert!(message.contains("its named groups are app"), "{message}");
    assert_eq!(one(rule("^([a-z]+)-", "1")).0, "rules[0].set_from_name.group");
    assert_eq!(one(rule("^(?P<app", "app")).0, "rules[0].set_from_name.regex");
}

#[test]
fn tests_name_known_fields_and_exactly_one_fitting_operator() {
    let cases = [
        (json!({"field": "nmae", "equals": "x"}), "rules[0].when.field", "unknown_field"),
        (json!({"field": "native.", "exists": true}), "rules[0].when.field", "required"),
        (json!({"field": "tag.bad key", "exists": true}), "rules[0].when.field", "charset"),
        (json!({"field": "name", "contains": "a", "equals": "b"}), "rules[0].when", "one_of"),
        (json!({"field": "name"}), "rules[0].when", "required"),
        (json!({"equals": "b"}), "rules[0].when", "required"),
        (json!({}), "rules[0].when", "required"),
        (json!({"field": "name", "in": []}), "rules[0].when.in", "required"),
        (json!({"field": "name", "gt": 5}), "rules[0].when.gt", "operator"),
        (json!({"field": "account", "lte": 5}), "rules[0].when.lte", "operator"),
        (json!({"field": "monthly_cost", "contains": "5"}), "rules[0].when.contains", "operator"),
        (json!({"field": "monthly_cost", "gt": 5, "ignore_case": true}), "rules[0].when.ignore_case", "operator"),
        (json!({"field": "name", "exists": false}), "rules[0].when.exists", "one_of"),
        (json!({"all": []}), "rules[0].when.all", "required"),
        (json!({"all": [{"field": "name", "exists": true}], "any": [{"field": "name", "exists": true}]}), "rules[0].when", "one_of"),
        (json!({"field": "name", "exists": true, "not": {"field": "name", "exists": true}}), "rules[0].when", "one_of"),
        (json!({"not": {"field": "name", "exists": true}, "ignore_case": true}), "rules[0].when", "one_of"),
        (json!({"not": {"any": [{"field": "region", "startz": "x"}]}}), "", ""),
    ];
    for (when, path, rule) in cases {
        if rule.is_empty() {
            // Unknown keys are refused while reading, before compiling.
            let body = json!({"schema": {"keys": []}, "rules": [set_rule(when)]});
            assert_eq!(read_errors(body), [("rules[0].when.not.any[0].startz".to_owned(), "unknown_field")]);
            continue;
        }
        let (p, r, message) = one(set_rule(when.clone()));
        assert_eq!((p.as_str(), r), (path, rule), "{when}: {message}");
    }
    // Numeric operators do apply to tags, which may hold numbers.
    with_rules(json!([set_rule(json!({"field": "native.cpu", "gte": 4}))])).compile(1).unwrap();
}

#[test]
fn a_rule_has_exactly_one_action() {
    let (path, rule, _) = one(json!({"id": "r", "key": "team", "priority": 1}));
    assert_eq!((path.as_str(), rule), ("rules[0]", "required"));
    let (path, rule, message) = one(json!({"id": "r", "key": "team", "priority": 1, "set": "a",
        "lookup": {"field": "account", "table": {"1": "a"}}}));
    assert_eq!((path.as_str(), rule), ("rules[0]", "one_of"));
    assert_eq!(message, "a rule takes exactly one of set, set_from_name, lookup; found set and lookup");
    let lookup = |field: &str, table: Value| json!({"id": "r", "key": "owner", "priority": 1, "lookup": {"field": field, "table": table}});
    assert_eq!(one(lookup("account", json!({}))).0, "rules[0].lookup.table");
    assert_eq!(one(lookup("monthly_cost", json!({"1": "a"}))).0, "rules[0].lookup.field");
    assert_eq!(one(lookup("account", json!({"1": " a"}))).0, "rules[0].lookup.table.1");
}

#[test]
fn keys_values_and_ids_are_validated() {
    assert_eq!(one(json!({"id": "r", "key": "bad key", "priority": 1, "set": "x"})).1, "charset");
    assert_eq!(one(json!({"id": "", "key": "team", "priority": 1, "set": "x"})).0, "rules[0].id");
    assert_eq!(one(json!({"id": "a/b", "key": "team", "priority": 1, "set": "x"})).1, "charset");
    assert_eq!(one(json!({"id": "r", "key": "team", "priority": 1, "set": " x"})), ("rules[0].set".into(), "trimmed", "tag value must not start or end with whitespace".into()));
    // The schema's spelling rules: a rule must set the canonical key, with an allowed value, in its case.
    assert_eq!(one(json!({"id": "r", "key": "env", "priority": 1, "set": "production"})).1, "alias");
    let (path, rule, message) = one(json!({"id": "r", "key": "environment", "priority": 1, "set": "prod"}));
    assert_eq!((path.as_str(), rule), ("rules[0].set", "allowed_values"));
    assert!(message.contains("did you mean 'production'?"), "{message}");
    assert_eq!(one(json!({"id": "r", "key": "team", "priority": 1, "set": "Platform"})).1, "lowercase");
    assert_eq!(
        one(json!({"id": "r", "key": "team", "priority": 1, "set": "x", "effective_from": "2026-02-01T00:00:00Z", "effective_to": "2026-01-01T00:00:00Z"})).0,
        "rules[0].effective_to"
    );

    let mut d = ConfigDocument::initial();
    d.defaults = [("bad key", "x"), ("environment", "nowhere"), ("owner", "")].into_iter().map(|(k, v)| (k.into(), v.into())).collect();
    assert_eq!(
        compile_errors(&d),
        [("defaults.bad key".to_owned(), "charset"), ("defaults.environment".into(), "allowed_values"), ("defaults.owner".into(), "required")]
    );
}

#[test]
fn schema_errors() {
    let d = doc(json!({"schema": {"keys": [
        {"key": "environment", "priority": "critical", "allowed_values": ["production", "Production", "Test", "staging"], "aliases": ["env", "--"],
         "value_aliases": {"prod": "production", "PROD": "staging", "live": "live"}},
        {"key": "Environment", "priority": "low"},
        {"key": "stage", "priority": "low", "aliases": ["ENV"]},
        {"key": "bad key", "priority": "low"}
    ]}}));
    assert_eq!(
        compile_errors(&d),
        [
            ("schema.keys[1].key".to_owned(), "duplicate"),
            ("schema.keys[3].key".into(), "charset"),
            ("schema.keys[0].aliases[1]".into(), "required"),
            ("schema.keys[0].allowed_values[1]".into(), "duplicate"),
            ("schema.keys[0].allowed_values[2]".into(), "lowercase"),
            ("schema.keys[0].value_aliases.live".into(), "allowed_values"),
            ("schema.keys[0].value_aliases.prod".into(), "duplicate"),
            ("schema.keys[2].aliases[0]".into(), "duplicate"),
        ]
    );
    let d = ConfigDocument { format_version: 2, ..ConfigDocument::initial() };
    assert_eq!(compile_errors(&d), [("format_version".to_owned(), "version")]);
}

#[test]
fn duplicate_ids() {
    let rule = json!({"id": "r", "key": "team", "priority": 1, "set": "x"});
    let errors = compile_errors(&with_rules(json!([rule, {"id": "s", "key": "team", "priority": 2, "set": "y"}, rule])));
    assert_eq!(errors, [("rules[2].id".to_owned(), "duplicate")]);
}

#[test]
fn a_cycle_is_reported_where_each_rule_reads_the_next_key() {
    let d = with_rules(json!([
        {"id": "a-reads-b", "key": "a", "priority": 1, "when": {"field": "tag.b", "exists": true}, "set": "1"},
        {"id": "b-reads-a", "key": "b", "priority": 1, "lookup": {"field": "tag.a", "table": {"1": "2"}}},
    ]));
    let errors = d.compile(1).unwrap_err();
    assert_eq!(brief(errors.clone()), [("rules[0].when.field".to_owned(), "cycle"), ("rules[1].lookup.field".into(), "cycle")]);
    assert_eq!(errors[0].message, "rule 'a-reads-b' of a reads tag.b, and keys derive from each other in a cycle: a → b → a");
    // A key reading itself is a cycle of one.
    let d = with_rules(json!([{"id": "s", "key": "s", "priority": 1, "when": {"not": {"field": "tag.s", "exists": true}}, "set": "1"}]));
    assert_eq!(compile_errors(&d), [("rules[0].when.not.field".to_owned(), "cycle")]);
}

#[test]
fn every_error_of_a_document_is_reported_at_once() {
    let d = with_rules(json!([
        {"id": "r1", "key": "team", "priority": 1, "when": {"field": "name", "regex": "a(b"}, "set": "Platform"},
        {"id": "r2", "key": "bad key", "priority": 1, "when": {"all": [{"field": "nmae", "equals": "x"}, {"field": "region", "in": []}]}},
        {"id": "a", "key": "a", "priority": 1, "when": {"field": "tag.b", "exists": true}, "set": "1"},
        {"id": "b", "key": "b", "priority": 1, "when": {"field": "tag.a", "exists": true}, "set": "1"},
        {"id": "r1", "key": "owner", "priority": 1, "set": "x"},
    ]));
    assert_eq!(
        compile_errors(&d),
        [
            ("rules[0].when.regex".to_owned(), "regex"),
            ("rules[0].set".into(), "lowercase"),
            ("rules[1].key".into(), "charset"),
            ("rules[1].when.all[0].field".into(), "unknown_field"),
            ("rules[1].when.all[1].in".into(), "required"),
            ("rules[1]".into(), "required"),
            ("rules[4].id".into(), "duplicate"),
            ("rules[2].when.field".into(), "cycle"),
            ("rules[3].when.field".into(), "cycle"),
        ]
    );
}
