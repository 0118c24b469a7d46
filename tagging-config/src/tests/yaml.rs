//! YAML: every error carries the line (and column) of the node it is about.

use super::*;

/// A GitOps file with its line numbers in mind: the bad regex is on line 17.
const BAD_REGEX_ON_LINE_17: &str = r#"format_version: 1
schema:
  keys:
    - key: team
      priority: high
      lowercase: true
defaults:
  team: unassigned
rules:
  - id: platform-by-name
    key: team
    priority: 10
    when:
      all:
        - field: provider
          equals: aws
        - {field: name, regex: "^(platform|infra"}
    set: platform
  - id: payments
    key: team
    priority: 20
    when: {field: native.cost-center, gt: 100}
    set: Payments
"#;

#[test]
fn compile_errors_are_located_on_their_line() {
    let errors = ConfigDocument::compile_yaml(BAD_REGEX_ON_LINE_17, 1).unwrap_err();
    assert_eq!(
        located(errors.clone()),
        [
            ("rules[0].when.all[1].regex".to_owned(), "regex", Some(17)),
            ("rules[1].set".into(), "lowercase", Some(23)),
        ]
    );
    assert_eq!(errors[0].column, Some(32), "the column of the regex value");
    assert_eq!(errors[0].message, "invalid regex '^(platform|infra': unclosed group");
    // Reading alone checks the shape, which is fine here.
    assert_eq!(ConfigDocument::from_yaml(BAD_REGEX_ON_LINE_17).unwrap().rules.len(), 2);
}

#[test]
fn reading_errors_are_located_on_their_line() {
    let unknown = BAD_REGEX_ON_LINE_17.replace("    priority: 20", "    prio: 20");
    let e = ConfigDocument::from_yaml(&unknown).unwrap_err();
    assert_eq!(located(e.clone()), [("rules[1].prio".to_owned(), "unknown_field", Some(21))]);
    assert_eq!(e[0].column, Some(5), "the key, not its value");

    let wrong_type = BAD_REGEX_ON_LINE_17.replace("gt: 100", "gt: lots");
    assert_eq!(located(ConfigDocument::from_yaml(&wrong_type).unwrap_err()), [("rules[1].when.gt".to_owned(), "type", Some(22))]);

    let missing = BAD_REGEX_ON_LINE_17.replace("    key: team\n    priority: 20", "    priority: 20");
    assert_eq!(located(ConfigDocument::from_yaml(&missing).unwrap_err()), [("rules[1]".to_owned(), "required", Some(19))]);

    let syntax = BAD_REGEX_ON_LINE_17.replace("    set: platform", "    set: [platform");
    let e = ConfigDocument::from_yaml(&syntax).unwrap_err();
    assert_eq!(e[0].rule, "yaml");
    assert!(e[0].line.is_some_and(|l| l >= 18), "{e:?}");

    let duplicate = BAD_REGEX_ON_LINE_17.replace("    set: Payments", "    set: payments\n    set: finance");
    assert_eq!(located(ConfigDocument::from_yaml(&duplicate).unwrap_err()), [("rules[1].set".to_owned(), "duplicate", Some(24))]);
}

#[test]
fn cycles_are_located_at_each_reading_rule() {
    let text = "schema: {keys: []}\nrules:\n  - id: a\n    key: a\n    priority: 1\n    when: {field: tag.b, exists: true}\n    set: x\n  - id: b\n    key: b\n    priority: 1\n    lookup:\n      field: tag.a\n      table: {x: y}\n";
    let errors = ConfigDocument::compile_yaml(text, 1).unwrap_err();
    assert_eq!(located(errors), [("rules[0].when.field".to_owned(), "cycle", Some(6)), ("rules[1].lookup.field".into(), "cycle", Some(12))]);
}

#[test]
fn scalars_follow_the_yaml_1_2_core_schema() {
    let text = |table: &str| format!("schema: {{keys: []}}\nrules:\n  - {{id: r, key: owner, priority: 1, lookup: {{field: account, table: {table}}}}}\n");
    // Keys are text as written (leading zeros kept); yes/on stay text; quoted and !!str numbers are text.
    let d = ConfigDocument::from_yaml(&text("{012345678901: a, yes: b, on: c, '7': d, x: !!str 0012}")).unwrap();
    let table = &d.rules[0].lookup.as_ref().unwrap().table;
    assert_eq!(table.keys().collect::<Vec<_>>(), ["012345678901", "7", "on", "x", "yes"]);
    assert_eq!(table["x"], "0012");
    // A bare number is a number, refused where text is expected.
    let e = ConfigDocument::from_yaml(&text("{a: 0012}")).unwrap_err();
    assert_eq!((e[0].path.as_str(), e[0].rule, e[0].line), ("rules[0].lookup.table.a", "type", Some(3)));
    let d = ConfigDocument::from_yaml("schema: {keys: []}\nrules:\n  - {id: r, key: k, priority: 0x10, enabled: False, set: x, when: {field: monthly_cost, gt: 1.5e2}}\n").unwrap();
    assert_eq!((d.rules[0].priority, d.rules[0].enabled, d.rules[0].when.as_ref().unwrap().gt), (16, false, Some(150.0)));
    let e = ConfigDocument::from_yaml("schema: {keys: []}\nrules:\n  - {id: r, key: k, priority: 1, enabled: yes, set: x}\n").unwrap_err();
    assert_eq!((e[0].path.as_str(), e[0].rule), ("rules[0].enabled", "type"));
}

#[test]
fn anchors_and_aliases_are_expanded() {
    let text = "schema: {keys: []}\nrules:\n  - id: a\n    key: team\n    priority: 1\n    when: &eu {field: region, starts_with: eu-}\n    set: x\n  - id: b\n    key: owner\n    priority: 1\n    when: *eu\n    set: y\n";
    let d = ConfigDocument::from_yaml(text).unwrap();
    assert_eq!(d.rules[0].when, d.rules[1].when);
}

#[test]
fn documents_that_are_not_one_configuration_are_refused() {
    assert_eq!(located(ConfigDocument::from_yaml("").unwrap_err()), [(String::new(), "required", None)]);
    assert_eq!(located(ConfigDocument::from_yaml("# nothing\n").unwrap_err()), [(String::new(), "required", None)]);
    let two = "schema: {keys: []}\n---\nschema: {keys: []}\n";
    assert_eq!(located(ConfigDocument::from_yaml(two).unwrap_err()), [(String::new(), "yaml", Some(2))]);
    assert_eq!(ConfigDocument::from_yaml("- a\n- b\n").unwrap_err()[0].rule, "type");
    assert_eq!(ConfigDocument::from_yaml("schema: !custom {keys: []}\n").unwrap_err()[0].rule, "yaml");
    let complex_key = "schema: {keys: []}\ndefaults: {[a]: b}\n";
    assert_eq!(located(ConfigDocument::from_yaml(complex_key).unwrap_err()), [(String::new(), "yaml", Some(2))]);
}

#[test]
fn nesting_and_alias_expansion_are_bounded() {
    let deep = format!("schema: {{keys: []}}\ndefaults: {}{}\n", "[".repeat(100), "]".repeat(100));
    let e = ConfigDocument::from_yaml(&deep).unwrap_err();
    assert!(e[0].message.contains("nesting deeper than"), "{e:?}");

    // Each level doubles: 2^30 nodes if expanded naively.
    let mut laughs = String::from("a0: &a0 [x, x]\n");
    for i in 1..30 {
        laughs.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}]\n", p = i - 1));
    }
    let e = ConfigDocument::from_yaml(&laughs).unwrap_err();
    assert!(e[0].message.contains("more than"), "{e:?}");
}
