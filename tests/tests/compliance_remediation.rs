//! The seed's remediation flow through the APIs: list the non-compliant resources with suggested
//! values (from the policy and from peers), apply the accepted ones in one request, the evaluator
//! re-judges on those tag events, and the violations resolve.

use std::time::Duration;

use serde_json::{json, Value};
use vtag_service::auth::Role;
use vtag_tests::harness::{eventually, TestEnv};
use vtag_tests::http::{observe_batch, Api};

fn violation<'a>(page: &'a Value, resource: &str, key: &str) -> &'a Value {
    let r = page["resources"].as_array().unwrap().iter().find(|r| r["resource_id"] == resource).unwrap_or_else(|| panic!("{resource} listed: {page}"));
    r["violations"].as_array().unwrap().iter().find(|v| v["tag_key"] == key).unwrap_or_else(|| panic!("{key} on {resource}: {r}"))
}

fn first(v: &Value) -> (String, String) {
    let s = &v["suggestions"][0];
    (s["value"].as_str().unwrap_or_default().to_owned(), s["source"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn non_compliant_resources_get_suggestions_applied_in_bulk_and_resolve() {
    let env = TestEnv::new().await;
    let commands = env.start_command_api().await;
    let _projector = env.start_projector();
    let queries = env.start_query_api().await;
    let admin = Api::new(commands.url(""), Some(env.token("acme", "gov@acme.test", Role::Admin)));
    let editor = Api::new(commands.url(""), Some(env.token("acme", "ed@acme.test", Role::Editor)));
    let intruder = Api::new(commands.url(""), Some(env.token("globex", "ed@globex.test", Role::Editor)));
    let read = Api::new(queries.url(""), Some(env.token("acme", "viewer@acme.test", Role::Viewer)));

    let production = json!({"policy_id": "prod", "policy_name": "Production standard", "policy_type": "conditional_requirement",
        "rules": {"if_condition": "tags.environment == 'production'", "severity": "critical",
                  "then_require": [
                      {"tag_key": "cost-center", "validation": {"type": "regex", "pattern": "^[A-Z]{3}-[0-9]{3}$"}},
                      {"tag_key": "backup", "validation": {"type": "enum", "allowed_values": ["daily", "weekly"], "case_sensitive": true}}]}});
    assert_eq!(admin.post("/api/v1/policies", &production).await.status, 201);
    let observed = admin.post("/api/v1/resources/observe", &observe_batch(0, 6)).await;
    let ids: Vec<String> = observed.body["results"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect();
    let tag = |id: &str, key: &str, value: &str| json!({"resource_id": id, "key": key, "value": value});
    let mut items = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        items.push(tag(id, "environment", "production"));
        items.push(tag(id, "team", "payments"));
        if i < 4 {
            items.push(tag(id, "cost-center", "PAY-001"));
            items.push(tag(id, "backup", "daily"));
        }
    }
    // Resource 4: no cost center, a backup in the wrong case; resource 5: a malformed cost center.
    items.push(tag(&ids[4], "backup", "Daily"));
    items.push(tag(&ids[5], "cost-center", "pay-1"));
    let setup = editor.post("/api/v1/compliance/remediations", &json!({"items": items})).await;
    assert_eq!(setup.status, 200, "{:?}", setup.body);
    let evaluator = env.start_compliance(Duration::from_millis(200));

    let page = eventually(Duration::from_secs(60), "the two non-compliant resources", || async {
        let r = read.get("/api/v1/compliance/remediations").await;
        (r.status == 200 && r.body["resources"].as_array().is_some_and(|a| a.len() == 2)).then_some(r.body)
    })
    .await;
    // The policy knows 'Daily' means 'daily'; peers (same account, same team) carry PAY-001.
    let backup = violation(&page, &ids[4], "backup");
    assert_eq!((backup["current_value"].as_str(), first(backup)), (Some("Daily"), ("daily".into(), "policy".into())), "{backup}");
    assert!(backup["suggestions"][0]["confidence"].as_f64().unwrap() >= 0.95);
    let missing = violation(&page, &ids[4], "cost-center");
    assert_eq!((missing["current_value"].clone(), first(missing)), (Value::Null, ("PAY-001".into(), "peers".into())), "{missing}");
    let reasoning = missing["suggestions"][0]["reasoning"].as_str().unwrap();
    assert!(reasoning.contains("4 of 5 resources with account 123456789012") && reasoning.contains("team=payments"), "{reasoning}");
    let malformed = violation(&page, &ids[5], "cost-center");
    assert_eq!((malformed["current_value"].as_str(), first(malformed).0.as_str()), (Some("pay-1"), "PAY-001"));
    assert!(malformed["suggestions"].as_array().unwrap().iter().all(|s| s["value"] != "pay-1"), "the broken value is never suggested");
    assert_eq!(first(violation(&page, &ids[5], "backup")).0, "daily", "what every peer has");
    // Filters and bad parameters.
    assert_eq!(read.get("/api/v1/compliance/remediations?severity=low").await.body["resources"], json!([]));
    let bad = read.get("/api/v1/compliance/remediations?severity=urgent").await;
    assert_eq!((bad.status.as_u16(), bad.body["errors"][0]["field"].as_str()), (422, Some("severity")));

    // A bad item refuses the whole request; nothing is applied.
    let refused = editor
        .post("/api/v1/compliance/remediations", &json!({"items": [tag(&ids[4], "cost-center", "PAY-001"), tag(&ids[5], "Cost Center!", "PAY-001")]}))
        .await;
    assert_eq!(refused.status, 422, "{:?}", refused.body);
    assert_eq!(refused.body["errors"][0]["field"], "items[1].key", "{:?}", refused.body);
    // Another tenant cannot touch acme's resources, even knowing their ids.
    let foreign = intruder.post("/api/v1/compliance/remediations", &json!({"items": [tag(&ids[4], "cost-center", "EVL-666")]})).await;
    assert_eq!(foreign.body["results"][0]["status"], 404, "{:?}", foreign.body);

    // Accept the first suggestion of every violation.
    let accepted: Vec<Value> = page["resources"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["violations"].as_array().unwrap().iter().map(move |v| tag(r["resource_id"].as_str().unwrap(), v["tag_key"].as_str().unwrap(), &first(v).0)))
        .collect();
    assert_eq!(accepted.len(), 4);
    let applied = editor.post("/api/v1/compliance/remediations", &json!({"items": accepted})).await;
    assert_eq!(applied.status, 200, "{:?}", applied.body);
    assert!(applied.body["results"].as_array().unwrap().iter().all(|r| r["changed"] == true), "{:?}", applied.body);
    let token = applied.body["consistency_token"].as_str().unwrap();
    let tags = read.get_consistent(&format!("/api/v1/resources/{}/virtual-tags", ids[4]), token).await;
    let source = tags.body["virtual_tags"].as_array().unwrap().iter().find(|t| t["key"] == "cost-center").unwrap()["source"].clone();
    assert_eq!(source, "user_confirmed", "an accepted suggestion is a person's confirmation");

    // The evaluator re-judges on those events: resolved, nothing left to remediate.
    let status = eventually(Duration::from_secs(60), "the violations to resolve", || async {
        let r = read.get("/api/v1/compliance/status").await;
        (r.body["compliant"] == 6 && r.body["resources_judged"] == 6).then_some(r.body)
    })
    .await;
    assert_eq!(status["compliance_rate"], 100.0);
    assert_eq!(read.get("/api/v1/compliance/remediations").await.body["resources"], json!([]));
    let resolved = read.get(&format!("/api/v1/compliance/violations?resource_id={}&stage=resolved", ids[4])).await;
    assert_eq!(resolved.body["violations"].as_array().unwrap().len(), 2, "{:?}", resolved.body);
    assert!(resolved.body["violations"].as_array().unwrap().iter().all(|v| v["resolution"] == "fixed"));
    evaluator.stop().await;
}
