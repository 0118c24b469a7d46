use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::{MappingDoc, PriorityDoc, RuleDoc};

fn rule(body: Value) -> RuleDoc {
    RuleDoc::from_json(body.to_string().as_bytes()).unwrap()
}

fn three_team_rules() -> ConfigDocument {
    with_rules(json!([
        {"id": "a", "key": "team", "priority": 5, "set": "a"},
        {"id": "o", "key": "owner", "priority": 7, "set": "o"},
        {"id": "b", "key": "team", "priority": 6, "set": "b"},
        {"id": "c", "key": "team", "priority": 1, "set": "c"},
    ]))
}

fn priorities(d: &ConfigDocument) -> Vec<(&str, u32)> {
    d.rules.iter().map(|r| (r.id.as_str(), r.priority)).collect()
}

#[test]
fn upsert_replaces_by_id_or_appends() {
    let d = three_team_rules();
    let d = d.upsert_rule(rule(json!({"id": "b", "key": "team", "priority": 6, "set": "bee"}))).unwrap();
    assert_eq!(d.rules[2].set.as_deref(), Some("bee"));
    let d = d.upsert_rule(rule(json!({"id": "n", "key": "team", "priority": 9, "set": "n"}))).unwrap();
    assert_eq!(d.rules.last().unwrap().id, "n");
    assert_eq!(d.rules.len(), 5);
}

#[test]
fn upsert_reports_errors_relative_to_the_rule() {
    let d = three_team_rules();
    let errors = d.upsert_rule(rule(json!({"id": "b", "key": "team", "priority": 6, "when": {"field": "name", "regex": "("}}))).unwrap_err();
    assert_eq!(brief(errors), [("when.regex".to_owned(), "regex"), (String::new(), "required")]);
    // A rule that closes a cycle with another one: the other's error keeps its document path.
    let d = d.upsert_rule(rule(json!({"id": "x", "key": "owner", "priority": 1, "when": {"field": "tag.team", "exists": true}, "set": "x"}))).unwrap();
    let errors = d.upsert_rule(rule(json!({"id": "a", "key": "team", "priority": 5, "when": {"field": "tag.owner", "exists": true}, "set": "a"}))).unwrap_err();
    assert_eq!(brief(errors), [("rules[4].when.field".to_owned(), "cycle"), ("when.field".into(), "cycle")]);
}

#[test]
fn remove_and_enable_need_an_existing_rule() {
    let d = three_team_rules();
    let removed = d.remove_rule("o").unwrap();
    assert_eq!(removed.rules.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["a", "b", "c"]);
    assert_eq!(brief(d.remove_rule("zz").unwrap_err()), [("id".to_owned(), "not_found")]);
    let off = d.set_enabled("b", false).unwrap();
    assert!(!off.rules[2].enabled);
    assert!(off.set_enabled("b", true).unwrap() == d);
    assert_eq!(brief(d.set_enabled("zz", true).unwrap_err()), [("id".to_owned(), "not_found")]);
}

#[test]
fn reorder_rewrites_the_keys_priorities_in_the_given_order() {
    let d = three_team_rules();
    let ids = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let r = d.reorder("team", &ids(&["b", "c", "a"])).unwrap();
    assert_eq!(priorities(&r), [("a", 30), ("o", 7), ("b", 10), ("c", 20)], "other keys untouched, document order kept");
    let config = r.compile(1).unwrap();
    let (_, order) = config.rules.plan().find(|(k, _)| *k == "team").unwrap();
    assert_eq!(order.map(|r| r.id.as_str()).collect::<Vec<_>>(), ["b", "c", "a"]);

    assert_eq!(brief(d.reorder("team", &ids(&["b", "a"])).unwrap_err()), [("order".to_owned(), "mismatch")]);
    assert_eq!(
        brief(d.reorder("team", &ids(&["b", "a", "c", "o", "zz", "a"])).unwrap_err()),
        [("order[3]".to_owned(), "not_found"), ("order[4]".into(), "not_found"), ("order[5]".into(), "duplicate")]
    );
    assert_eq!(brief(d.reorder("nothing", &[]).unwrap_err()), [("key".to_owned(), "not_found")]);
}

#[test]
fn add_mapping_merges_into_a_key_or_creates_one() {
    let d = ConfigDocument::initial();
    let mapping = |body: Value| MappingDoc::from_json(body.to_string().as_bytes()).unwrap();
    let merged = d
        .add_mapping(mapping(json!({"key": "environment", "aliases": ["Env", "deployment"], "value_aliases": {"PRODUCTION-1": "production"}})))
        .unwrap();
    let env = &merged.schema.keys[0];
    assert_eq!(env.aliases, ["env", "environment-name", "stage", "tier", "deployment"], "Env is env in normalized form");
    assert_eq!(env.value_aliases["PRODUCTION-1"], "production");
    assert_eq!(env.priority, PriorityDoc::Critical);
    let schema = merged.compile(1).unwrap().schema;
    assert_eq!(schema.lookup("Deployment").unwrap().key, "environment");

    let created = d.add_mapping(mapping(json!({"key": "region-owner", "priority": "low", "aliases": ["ro"]}))).unwrap();
    assert_eq!(created.schema.keys.last().unwrap().key, "region-owner");
    let e = d.add_mapping(mapping(json!({"key": "region-owner"}))).unwrap_err();
    assert_eq!(brief(e), [("priority".to_owned(), "required")]);

    // The result must compile: an alias another key owns is refused.
    let e = d.add_mapping(mapping(json!({"key": "team", "aliases": ["env"]}))).unwrap_err();
    assert_eq!(brief(e), [("schema.keys[4].aliases[2]".to_owned(), "duplicate")]);
    // Narrowing allowed values is checked against the values already in use.
    let with_rule = d.upsert_rule(rule(json!({"id": "r", "key": "environment", "priority": 1, "set": "sandbox"}))).unwrap();
    let e = with_rule.add_mapping(mapping(json!({"key": "environment", "allowed_values": ["production", "staging"]}))).unwrap_err();
    assert!(brief(e).contains(&("rules[0].set".to_owned(), "allowed_values")));
}

#[test]
fn set_defaults_replaces_and_validates() {
    let d = ConfigDocument::initial();
    let d = d.set_defaults(BTreeMap::from([("cost-center".into(), "unallocated".into())])).unwrap();
    let d = d.set_defaults(BTreeMap::from([("owner".into(), "nobody".into())])).unwrap();
    assert_eq!(d.defaults, BTreeMap::from([("owner".into(), "nobody".into())]));
    let e = d.set_defaults(BTreeMap::from([("environment".into(), "Prod".into())])).unwrap_err();
    assert_eq!(brief(e), [("defaults.environment".to_owned(), "allowed_values")]);
}
