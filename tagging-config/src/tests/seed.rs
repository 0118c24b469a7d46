use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use serde_json::json;
use vtag_domain::tagging::{derive, DerivedTag, Origin, ResourceFacts, TagSchema, TaggingConfig};

use super::*;
use crate::{RuleDoc, SchemaDoc};

fn facts(name: &str, account: &str, kind: &str, native: &[(&str, &str)]) -> ResourceFacts {
    ResourceFacts {
        provider: "aws".into(),
        account: account.into(),
        region: "us-east-1".into(),
        resource_type: kind.into(),
        name: name.into(),
        native_tags: native.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        monthly_cost: Some(620.0),
    }
}

fn run(config: &TaggingConfig, f: &ResourceFacts) -> BTreeMap<String, DerivedTag> {
    derive(config, f, &BTreeMap::new(), Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap())
}

fn by_rule(id: &str) -> Origin {
    Origin::Rule { rule_id: id.into() }
}

#[test]
fn the_initial_document_compiles_to_the_seed_schema() {
    let config = ConfigDocument::initial().compile(0).unwrap();
    assert_eq!(config.schema, TagSchema::seed_default());
    assert!(config.rules.rules().is_empty() && config.rules.defaults().is_empty());
    assert_eq!(SchemaDoc::from_schema(&config.schema), ConfigDocument::initial().schema);
}

#[test]
fn the_seed_rules_compile_and_derive() {
    let bodies = [
        json!({"id": "prod-by-name", "key": "environment", "priority": 10, "when": {"field": "name", "contains": "prod"}, "set": "production"}),
        json!({"id": "owner-by-account", "key": "owner", "priority": 10, "lookup": {"field": "account", "table": {"1234567890": "DevOps"}}}),
        json!({"id": "rds-is-sensitive", "key": "data-classification", "priority": 10, "when": {"field": "resource_type", "equals": "rds"}, "set": "sensitive"}),
    ];
    let mut doc = ConfigDocument::initial().set_defaults(BTreeMap::from([("cost-center".into(), "unallocated".into())])).unwrap();
    for body in bodies {
        doc = doc.upsert_rule(RuleDoc::from_json(body.to_string().as_bytes()).unwrap()).unwrap();
    }
    let config = doc.compile(7).unwrap();
    assert_eq!(config.version, 7);
    assert_eq!(config.rules.version(), 7);

    let d = run(&config, &facts("web-server-prod-001", "1234567890", "rds", &[]));
    assert_eq!(d["environment"], DerivedTag { value: "production".into(), origin: by_rule("prod-by-name") });
    assert_eq!(d["owner"], DerivedTag { value: "DevOps".into(), origin: by_rule("owner-by-account") });
    assert_eq!(d["data-classification"], DerivedTag { value: "sensitive".into(), origin: by_rule("rds-is-sensitive") });
    assert_eq!(d["cost-center"], DerivedTag { value: "unallocated".into(), origin: Origin::Default });

    // Native tags go through the compiled schema; rules that do not match leave them be.
    let d = run(&config, &facts("batch-02", "999", "ec2", &[("Env", "PRD"), ("CostCenter", "ENG")]));
    assert_eq!(d["environment"].value, "production");
    assert!(matches!(d["environment"].origin, Origin::Native { .. }));
    assert_eq!(d["cost-center"].value, "engineering");
    assert!(!d.contains_key("owner") && !d.contains_key("data-classification"));
}

#[test]
fn the_owner_rule_as_equals_and_set() {
    let doc = with_rules(json!([
        {"id": "owner", "key": "owner", "priority": 10, "when": {"field": "account", "equals": "1234567890"}, "set": "DevOps"}
    ]));
    let config = doc.compile(1).unwrap();
    assert_eq!(run(&config, &facts("x", "1234567890", "ec2", &[]))["owner"].value, "DevOps");
    assert!(!run(&config, &facts("x", "1234567891", "ec2", &[])).contains_key("owner"));
}

#[test]
fn the_example_compiles_and_every_part_takes_effect() {
    let (doc, config) = ConfigDocument::compile_yaml(EXAMPLE, 3).unwrap();
    assert_eq!(doc.rules.len(), 3);
    let d = run(&config, &facts("payments-prod", "1234567890", "ec2", &[("stage", "LIVE")]));
    assert_eq!(d["environment"].value, "production");
    assert_eq!(d["owner"].value, "DevOps");
    assert_eq!(d["application"].value, "payments");
    assert_eq!(d["cost-center"].origin, Origin::Default);
    // effective_from: before 2026 the rule does not apply, and the native tag (an alias) does.
    let early = derive(&config, &facts("web-prod", "1", "ec2", &[("env", "prd")]), &BTreeMap::new(), Utc.with_ymd_and_hms(2025, 6, 1, 0, 0, 0).unwrap());
    assert!(matches!(early["environment"].origin, Origin::Native { .. }));
}

#[test]
fn conditions_compile_to_what_they_say() {
    let doc = with_rules(json!([
        {"id": "big-payments", "key": "team", "priority": 1,
         "when": {"all": [
             {"field": "native.Team", "in": ["payments", "billing"]},
             {"any": [{"field": "monthly_cost", "gte": 500}, {"field": "region", "regex": "^EU-", "ignore_case": true}]},
             {"not": {"field": "tag.env", "exists": true}}
         ]},
         "set": "finance"},
        {"id": "by-env", "key": "backup", "priority": 1, "when": {"field": "tag.environment", "equals": "production"}, "set": "daily"}
    ]));
    let config = doc.compile(1).unwrap();
    let mut f = facts("x", "1", "ec2", &[("team", "Payments")]);
    f.region = "eu-west-1".into();
    assert_eq!(run(&config, &f)["team"].value, "finance");
    f.monthly_cost = Some(10.0);
    f.region = "us-east-1".into();
    assert_eq!(run(&config, &f)["team"].value, "payments", "neither costly nor in the EU: the native tag stays");
    // tag.env reads environment: a resource with an environment is excluded, and backup follows it.
    let f = facts("x", "1", "ec2", &[("team", "billing"), ("env", "prod")]);
    let d = run(&config, &f);
    assert_eq!(d["team"].value, "billing");
    assert_eq!(d["backup"].value, "daily");
}
