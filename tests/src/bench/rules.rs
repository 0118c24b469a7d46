//! A realistic rule set of a given size for a generated inventory, the way a FinOps team grows one:
//! account lookups, naming conventions (contains, prefixes, regexes), resource types, native-tag
//! tests, and rules reading other virtual tags (team → cost-center → business-unit), plus defaults.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};
use vtag_inventory::{GeneratedResource, Generator};
use vtag_tagging_config::ConfigDocument;

/// A configuration document with exactly `count` rules, learnt from a sample of the inventory.
pub fn rule_document(generator: &Generator, sample: &[GeneratedResource], count: usize) -> Value {
    let mut apps: BTreeMap<String, String> = BTreeMap::new(); // app (name prefix) → team
    let mut team_cc: BTreeMap<String, String> = BTreeMap::new();
    let mut cc_bu: BTreeMap<String, String> = BTreeMap::new();
    let mut types: BTreeSet<String> = BTreeSet::new();
    for r in sample {
        let prefix: String = r.observed.name.chars().take_while(|c| c.is_ascii_lowercase()).collect();
        if let (Some(team), false) = (r.truth.get("team"), prefix.is_empty()) {
            apps.entry(prefix).or_insert_with(|| team.clone());
        }
        if let (Some(t), Some(cc)) = (r.truth.get("team"), r.truth.get("cost-center")) {
            team_cc.insert(t.clone(), cc.clone());
        }
        if let (Some(cc), Some(bu)) = (r.truth.get("cost-center"), r.truth.get("business-unit")) {
            cc_bu.insert(cc.clone(), bu.clone());
        }
        types.insert(r.observed.resource_type.to_owned());
    }
    let owners: BTreeMap<&str, &str> = generator.accounts().iter().map(|a| (a.id(), a.owner())).collect();

    // Each family is what one kind of rule looks like; a rule set of `count` rules takes from every
    // family in turn (and keeps a fifth for the long tail), so a small rule set is not all lookups
    // and prefixes while the chains and regexes that cost the most are left out.
    let core = vec![
        json!({"id": "owner-by-account", "key": "owner", "priority": 10, "lookup": {"field": "account", "table": owners}}),
        json!({"id": "app-from-name", "key": "application", "priority": 900, "set_from_name": {"regex": "^(?P<app>[a-z]+)-", "group": "app"}}),
        json!({"id": "sensitive-stores", "key": "data-classification", "priority": 10,
            "when": {"field": "resource_type", "in": ["rds", "sql-database", "cloud-sql", "dynamodb", "bigquery-dataset"]}, "set": "sensitive"}),
    ];
    let mut environments = Vec::new();
    for (i, (env, short)) in [("production", "prod"), ("staging", "stg"), ("development", "dev"), ("sandbox", "sbx"), ("test", "test")].iter().enumerate() {
        environments.push(json!({"id": format!("env-{short}-infix"), "key": "environment", "priority": 10 + i,
            "when": {"field": "name", "contains": format!("-{short}-")}, "set": env}));
        environments.push(json!({"id": format!("env-{short}-regex"), "key": "environment", "priority": 20 + i,
            "when": {"field": "name", "regex": format!("(^|[-_]){short}([-_0-9]|$)")}, "set": env}));
        environments.push(json!({"id": format!("env-{short}-native"), "key": "environment", "priority": 30 + i,
            "when": {"field": "native.environment", "equals": env}, "set": env}));
    }
    let mut by_type = Vec::new();
    for (i, t) in types.iter().enumerate() {
        by_type.push(json!({"id": format!("backup-{t}"), "key": "backup", "priority": 10 + i,
            "when": {"all": [{"field": "resource_type", "equals": t}, {"field": "tag.environment", "equals": "production"}]}, "set": "daily"}));
        by_type.push(json!({"id": format!("autostop-{t}"), "key": "auto-stop", "priority": 10 + i,
            "when": {"all": [{"field": "resource_type", "equals": t}, {"not": {"field": "tag.environment", "in": ["production", "staging"]}}]}, "set": "nightly"}));
    }
    let mut by_app = Vec::new();
    for (i, (app, team)) in apps.iter().enumerate() {
        by_app.push(json!({"id": format!("team-{app}"), "key": "team", "priority": 10 + i,
            "when": {"field": "name", "starts_with": format!("{app}-")}, "set": team}));
        by_app.push(json!({"id": format!("project-{app}"), "key": "project", "priority": 10 + i,
            "when": {"any": [{"field": "name", "starts_with": format!("{app}-")}, {"field": "native.application", "equals": app}]}, "set": app}));
    }
    let cost_centers: Vec<Value> = team_cc.iter().enumerate().map(|(i, (team, cc))| json!({"id": format!("cc-{team}"), "key": "cost-center", "priority": 10 + i,
        "when": {"field": "tag.team", "equals": team}, "set": cc})).collect();
    let business_units: Vec<Value> = cc_bu.iter().enumerate().map(|(i, (cc, bu))| json!({"id": format!("bu-{cc}"), "key": "business-unit", "priority": 10 + i,
        "when": {"field": "tag.cost-center", "equals": cc}, "set": bu})).collect();

    let mut families: Vec<std::vec::IntoIter<Value>> = [core, environments, by_type, by_app, cost_centers, business_units]
        .into_iter()
        .map(Vec::into_iter)
        .collect();
    let before_tail = count - count / 5;
    let mut rules: Vec<Value> = Vec::with_capacity(count);
    while rules.len() < before_tail {
        let taken = families.iter_mut().filter_map(Iterator::next).take(before_tail - rules.len()).collect::<Vec<_>>();
        if taken.is_empty() {
            break;
        }
        rules.extend(taken);
    }
    // The long tail every rule set has: narrow naming rules with regexes, mostly never matching.
    let mut n = 0;
    while rules.len() < count {
        let app = apps.keys().nth(n % apps.len().max(1)).cloned().unwrap_or_else(|| "svc".into());
        rules.push(json!({"id": format!("tail-{n}"), "key": "compliance", "priority": 100 + n,
            "when": {"all": [{"field": "name", "regex": format!("^{app}-(batch|etl|report)-{n}")}, {"field": "region", "starts_with": "eu"}]},
            "set": "gdpr"}));
        n += 1;
    }
    let mut doc = serde_json::to_value(ConfigDocument::initial()).expect("document");
    doc["rules"] = Value::Array(rules);
    doc["defaults"] = json!({"cost-center": "unallocated", "owner": "unassigned"});
    doc
}
