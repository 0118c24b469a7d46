//! The tagging engine end to end: 1,000 generated resources with messy native tags are observed,
//! rules are published, and every resource's derived tags in the read model must equal what the
//! domain derives locally for the same inputs (with provenance); a reorder is previewed, then
//! published, and the retroactive change — its audit events counted per key and value — must be
//! exactly what the preview predicted. As-of reads and explain answer from the same history.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;
use vtag_inventory::{GeneratedResource, Generator, GeneratorConfig};
use vtag_service::auth::Role;
use vtag_tagging_config::ConfigDocument;
use vtag_tests::derivation::{assert_same, expected, read_model, resource_id, wait_for_job};
use vtag_tests::harness::{eventually, TestEnv};
use vtag_tests::http::Api;

const RESOURCES: usize = 1_000;

fn rules_document(owners: &BTreeMap<String, String>) -> Value {
    let mut doc = serde_json::to_value(ConfigDocument::initial()).unwrap();
    doc["defaults"] = json!({"cost-center": "unallocated"});
    doc["rules"] = json!([
        {"id": "prod-by-name", "key": "environment", "priority": 10,
         "when": {"field": "name", "contains": "prod", "ignore_case": true}, "set": "production"},
        {"id": "prod-dup", "key": "environment", "priority": 15,
         "when": {"field": "name", "contains": "-prod-"}, "set": "production"},
        {"id": "stg-by-name", "key": "environment", "priority": 20,
         "when": {"field": "name", "regex": "(^|[-_])stg([-_]|$)"}, "set": "staging"},
        {"id": "api-is-staging", "key": "environment", "priority": 30,
         "when": {"field": "name", "contains": "-api-"}, "set": "staging"},
        {"id": "owner-by-account", "key": "owner", "priority": 10,
         "lookup": {"field": "account", "table": owners}},
        {"id": "databases-are-sensitive", "key": "data-classification", "priority": 10,
         "when": {"field": "resource_type", "in": ["rds", "sql-database", "cloud-sql"]}, "set": "sensitive"},
        {"id": "app-from-name", "key": "application", "priority": 50,
         "when": {"not": {"field": "native.application", "exists": true}},
         "set_from_name": {"regex": "^(?P<app>[a-z]+)-", "group": "app"}}
    ]);
    doc
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_derive_explain_and_reorder_retroactively_as_previewed() {
    let env = TestEnv::new().await;
    let commands = env.start_command_api().await;
    let projector = env.start_projector();
    let queries = env.start_query_api().await;
    let admin = Api::new(commands.url(""), Some(env.token("acme", "fin@acme.test", Role::Admin)));
    let read = Api::new(queries.url(""), Some(env.token("acme", "viewer@acme.test", Role::Viewer)));
    let pool = env.pool().await;

    let generator = Generator::new(GeneratorConfig::new(7)).unwrap();
    let resources: Vec<GeneratedResource> = generator.resources(RESOURCES).collect();
    let owners: BTreeMap<String, String> = generator.accounts().iter().map(|a| (a.id().to_owned(), a.owner().to_owned())).collect();

    // 1. Observe: native tags alone derive through the seed schema (version 0, no rules).
    let mut token = String::new();
    for chunk in resources.chunks(500) {
        let body = json!({"resources": chunk.iter().map(|r| &r.observed).collect::<Vec<_>>()});
        let r = admin.post("/api/v1/resources/observe", &body).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        token = r.body["consistency_token"].as_str().unwrap().to_owned();
    }
    let initial = serde_json::to_value(ConfigDocument::initial()).unwrap();
    let r = read.get_consistent("/api/v1/audit-trail?limit=1", &token).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_same(&read_model(&pool).await, &expected(&resources, &initial, 0));

    // Re-observing the same inventory derives nothing new.
    let body = json!({"resources": resources[..500].iter().map(|r| &r.observed).collect::<Vec<_>>()});
    let again = admin.post("/api/v1/resources/observe", &body).await;
    assert!(again.body["results"].as_array().unwrap().iter().all(|r| r["changed"] == false), "{:?}", again.body);

    // 2. Publish rules: every resource is re-derived, with rule provenance.
    let doc = rules_document(&owners);
    let published = admin.send(Method::PUT, "/api/v1/tagging-config", Some(&doc), &[]).await;
    assert_eq!(published.status, 202, "{:?}", published.body);
    assert_eq!(published.body["version"], 1);
    let job = published.body["job"].as_str().unwrap().to_owned();
    let progress = wait_for_job(&read, &job).await;
    assert_eq!(progress["total"], RESOURCES as u64, "{progress}");
    let after_publish = chrono::Utc::now();
    let want = expected(&resources, &doc, 1);
    assert_same(&read_model(&pool).await, &want);
    let with_rule = want.values().flat_map(|t| t.values()).filter(|(_, s, r)| s == "rule_based" && r.is_some()).count();
    assert!(with_rule > RESOURCES, "rules must derive plenty of tags: {with_rule}");
    let version: i64 = sqlx::query_scalar("SELECT max(rule_set_version) FROM virtual_tags WHERE tenant = 'acme' AND rule_id IS NOT NULL")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(version, 1);

    // How good is it against the generator's ground truth? (Reported, and held to a floor.)
    let mut score = vtag_inventory::Score::default();
    let actual = read_model(&pool).await;
    for r in &resources {
        let derived = actual.get(&resource_id(r)).map(|t| t.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect()).unwrap_or_default();
        score.add(&r.truth, &derived);
    }
    let env_score = score.key("environment");
    println!("environment: precision {:?} recall {:?}", env_score.precision(), env_score.recall());
    assert!(env_score.precision().unwrap() > 0.9, "{env_score:?}");

    // 3. Preview a reorder: api-is-staging before prod-by-name.
    let order = json!({"key": "environment", "order": ["api-is-staging", "prod-by-name", "prod-dup", "stg-by-name"]});
    let preview = admin.post("/api/v1/rules/preview", &json!({"reorder": order})).await;
    assert_eq!(preview.status, 200, "{:?}", preview.body);
    let report = &preview.body["report"];
    assert_eq!(report["resources_evaluated"], RESOURCES as u64);
    assert_eq!(report["partitions_covered"], report["partitions_total"]);
    assert!(report["shadowed_rules"].as_array().unwrap().contains(&json!("prod-dup")), "{report}");
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let predicted: BTreeMap<(String, Option<String>, Option<String>), u64> = report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| ((c["key"].as_str().unwrap().to_owned(), text(&c["from"]), text(&c["to"])), c["resources"].as_u64().unwrap()))
        .collect();
    assert!(predicted.contains_key(&("environment".into(), Some("production".into()), Some("staging".into()))), "{predicted:?}");
    // Nothing was written by the preview: the configuration topic (the truth) holds the first
    // version only, and so does the read model once it has folded that topic (under load it can
    // lag behind the resource topic the waits above were about).
    let config_topic = vtag_eventlog::EventTopics::new(env.prefix.clone(), env.partitions).tagging_config();
    assert_eq!(vtag_tests::log::records_in(&env.stack.brokers, &config_topic, 1), 1);
    let config_events = eventually(Duration::from_secs(30), "the first configuration in the read model", || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM tagging_configs WHERE tenant = 'acme'").fetch_one(&pool).await.unwrap();
        (n > 0).then_some(n)
    })
    .await;
    assert_eq!(config_events, 1);

    // 4. Publish it: the retroactive change is exactly the prediction.
    let reordered = admin.post("/api/v1/rules/reorder", &order).await;
    assert_eq!(reordered.status, 202, "{:?}", reordered.body);
    assert_eq!(reordered.body["version"], 2);
    let progress = wait_for_job(&read, reordered.body["job"].as_str().unwrap()).await;
    let rows: Vec<(String, Option<String>, Option<String>, i64)> = sqlx::query_as(
        "SELECT tag_key, old_value, new_value, count(*) FROM tag_audit
         WHERE tenant = 'acme' AND action = 'VirtualTagsDerived' AND rule_set_version = 2 GROUP BY 1, 2, 3",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let happened: BTreeMap<(String, Option<String>, Option<String>), u64> = rows.into_iter().map(|(k, o, n, c)| ((k, o, n), c as u64)).collect();
    assert_eq!(happened, predicted, "the publish must do exactly what the preview said");
    let changed_resources: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT resource_id) FROM tag_audit WHERE tenant = 'acme' AND action = 'VirtualTagsDerived' AND rule_set_version = 2",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(changed_resources as u64, report["resources_changing"].as_u64().unwrap());
    assert_eq!(progress["changed"], report["resources_changing"], "{progress}");
    let mut reordered_doc = doc.clone();
    for rule in reordered_doc["rules"].as_array_mut().unwrap() {
        let position = ["api-is-staging", "prod-by-name", "prod-dup", "stg-by-name"].iter().position(|id| rule["id"] == *id);
        if let Some(p) = position {
            rule["priority"] = json!((p as u64 + 1) * 10);
        }
    }
    assert_same(&read_model(&pool).await, &expected(&resources, &reordered_doc, 2));

    // 5. As-of and explain for a resource the reorder moved.
    let moved = resources
        .iter()
        .find(|r| r.observed.name.contains("-api-") && r.observed.name.contains("prod"))
        .expect("the generator names some APIs in production");
    let id = resource_id(moved);
    let now = read.get(&format!("/api/v1/resources/{id}/virtual-tags")).await;
    let env_tag = now.body["virtual_tags"].as_array().unwrap().iter().find(|t| t["key"] == "environment").unwrap().clone();
    assert_eq!((env_tag["value"].as_str(), env_tag["source"].as_str()), (Some("staging"), Some("rule_based")), "{env_tag}");
    let as_of = after_publish.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let then = read.get(&format!("/api/v1/resources/{id}/virtual-tags?as_of={}", urlencode(&as_of))).await;
    assert_eq!(then.status, 200, "{:?}", then.body);
    let env_then = then.body["virtual_tags"].as_array().unwrap().iter().find(|t| t["key"] == "environment").unwrap().clone();
    assert_eq!(env_then["value"], "production", "{env_then}");
    let explain = read.get(&format!("/api/v1/resources/{id}/virtual-tags/environment/explain")).await;
    assert_eq!(explain.status, 200, "{:?}", explain.body);
    let chain = explain.body["chain"].as_array().unwrap();
    let rule_step = chain.iter().find(|s| s["step"] == "rule").expect("a rule step");
    assert_eq!(rule_step["rule_id"], "api-is-staging");
    assert_eq!(rule_step["rule_set_version"], 2);
    assert_eq!(chain.last().unwrap()["actor"], "fin@acme.test");

    // A native-derived tag explains its native tag and mapping.
    let (id, key, native_key): (Uuid, String, String) = sqlx::query_as(
        "SELECT resource_id, tag_key, native_key FROM virtual_tags WHERE tenant = 'acme' AND origin = 'native' AND key_mapping = 'alias' LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .expect("the generator spells some keys by alias");
    let e = read.get(&format!("/api/v1/resources/{id}/virtual-tags/{key}/explain")).await;
    assert_eq!(e.status, 200, "{:?}", e.body);
    let chain = e.body["chain"].as_array().unwrap();
    let steps: Vec<&str> = chain.iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert!(steps.starts_with(&["native_tag", "key_mapping", "value_mapping"]), "{:?}", e.body);
    assert_eq!(chain[0]["native_key"], native_key);
    assert_eq!(chain[1]["kind"], "alias");

    queries.stop().await;
    projector.stop().await;
    commands.stop().await;
}

fn urlencode(s: &str) -> String {
    s.replace(':', "%3A").replace('+', "%2B")
}

/// A new key alias reaches resources observed before it (retroactive through the
/// schema, not only rules); disabling and enabling a rule re-derives both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mappings_and_rule_switches_rederive_what_was_already_observed() {
    let env = TestEnv::new().await;
    let commands = env.start_command_api().await;
    let projector = env.start_projector();
    let queries = env.start_query_api().await;
    let admin = Api::new(commands.url(""), Some(env.token("acme", "fin@acme.test", Role::Admin)));
    let read = Api::new(queries.url(""), Some(env.token("acme", "viewer@acme.test", Role::Viewer)));
    let observed = admin
        .post("/api/v1/resources/observe", &json!({"resources": [{"provider": "azure",
            "resource_id": "/subscriptions/0000/resourceGroups/pay/providers/Microsoft.Compute/virtualMachines/pay-vm-1",
            "account_id": "0000", "region": "westeurope", "resource_type": "vm", "name": "pay-vm-1",
            "native_tags": {"Lifecycle": " Live "}}]}))
        .await;
    assert_eq!(observed.status, 200, "{:?}", observed.body);
    let id = observed.body["results"][0]["id"].as_str().unwrap().to_owned();
    let tags = |body: &Value| -> BTreeMap<String, (String, String)> {
        body["virtual_tags"].as_array().unwrap().iter().map(|t| (t["key"].as_str().unwrap().to_owned(), (t["value"].as_str().unwrap().to_owned(), t["source"].as_str().unwrap().to_owned()))).collect()
    };
    let token = observed.body["consistency_token"].as_str().unwrap().to_owned();
    let before = read.get_consistent(&format!("/api/v1/resources/{id}/virtual-tags"), &token).await;
    assert!(tags(&before.body).is_empty(), "lifecycle is not a schema key yet: {:?}", before.body);

    let mapped = admin.post("/api/v1/tag-mappings", &json!({"key": "environment", "aliases": ["lifecycle"]})).await;
    assert_eq!(mapped.status, 202, "{:?}", mapped.body);
    wait_for_job(&read, mapped.body["job"].as_str().unwrap()).await;
    let schema = read.send(Method::GET, "/api/v1/tag-schema", None, &[("x-config-version", "1")]).await;
    let environment = schema.body["keys"].as_array().unwrap().iter().find(|k| k["key"] == "environment").unwrap().clone();
    assert!(environment["aliases"].as_array().unwrap().contains(&json!("lifecycle")), "{environment}");
    let after = read.get(&format!("/api/v1/resources/{id}/virtual-tags")).await;
    assert_eq!(tags(&after.body)["environment"], ("production".to_owned(), "native".to_owned()), "{:?}", after.body);

    // A rule overrides the native value; disabled, the native value is back; enabled, the rule again.
    let rule = json!({"id": "pay-is-staging", "key": "environment", "priority": 1, "when": {"field": "name", "starts_with": "pay-"}, "set": "staging"});
    let saved = admin.post("/api/v1/rules", &rule).await;
    wait_for_job(&read, saved.body["job"].as_str().unwrap()).await;
    assert_eq!(tags(&read.get(&format!("/api/v1/resources/{id}/virtual-tags")).await.body)["environment"].0, "staging");
    let off = admin.post("/api/v1/rules/pay-is-staging/disable", &json!({})).await;
    assert_eq!(off.status, 202, "{:?}", off.body);
    wait_for_job(&read, off.body["job"].as_str().unwrap()).await;
    assert_eq!(tags(&read.get(&format!("/api/v1/resources/{id}/virtual-tags")).await.body)["environment"], ("production".to_owned(), "native".to_owned()));
    let on = admin.post("/api/v1/rules/pay-is-staging/enable", &json!({})).await;
    wait_for_job(&read, on.body["job"].as_str().unwrap()).await;
    assert_eq!(tags(&read.get(&format!("/api/v1/resources/{id}/virtual-tags")).await.body)["environment"].0, "staging");
    let history = read.get("/api/v1/tagging-config/history").await;
    let kinds: Vec<&str> = history.body["items"].as_array().unwrap().iter().map(|i| i["change_kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["rule_enabled", "rule_disabled", "rule_upserted", "mapping_added"]);

    queries.stop().await;
    projector.stop().await;
    commands.stop().await;
}
