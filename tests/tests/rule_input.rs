//! Bad tagging configuration is refused precisely — the field path, the rule, the YAML line — and
//! nothing is published: the configuration topic stays empty and the version stays where it was.
//! Derived tags cannot be removed or applied by hand.

use reqwest::Method;
use serde_json::{json, Value};
use vtag_service::auth::Role;
use vtag_tests::harness::TestEnv;
use vtag_tests::http::{Api, Reply};
use vtag_tests::log::records_in;

fn assert_refused(reply: &Reply, status: u16, field: &str, rule: &str) -> Value {
    assert_eq!(reply.status.as_u16(), status, "{:?}", reply.body);
    assert_eq!(reply.content_type, "application/problem+json");
    let errors = reply.body["errors"].as_array().expect("errors listed");
    errors
        .iter()
        .find(|e| e["field"] == field && e["rule"] == rule)
        .unwrap_or_else(|| panic!("no error at {field} ({rule}) in {errors:?}"))
        .clone()
}

fn rule(id: &str, key: &str, when: Value) -> Value {
    json!({"id": id, "key": key, "priority": 10, "when": when, "set": "x"})
}

/// A YAML document whose line 10 holds an invalid regex.
const BAD_YAML: &str = "format_version: 1
schema:
  keys: []
rules:
  - id: team-by-name
    key: team
    priority: 10
    when:
      field: name
      regex: \"^(payments|billing\"
    set: payments
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rules_are_refused_precisely_and_nothing_is_published() {
    let env = TestEnv::new().await;
    let commands = env.start_command_api().await;
    let admin = Api::new(commands.url(""), Some(env.token("acme", "fin@acme.test", Role::Admin)));
    let config_topic = vtag_eventlog::EventTopics::new(env.prefix.clone(), env.partitions).tagging_config();

    // invalid regex
    let r = admin.post("/api/v1/rules", &rule("r1", "team", json!({"field": "name", "regex": "a(b"}))).await;
    let e = assert_refused(&r, 422, "when.regex", "regex");
    assert!(e["message"].as_str().unwrap().contains("a(b"), "{e}");

    // unknown field in a condition, unknown condition field, unknown operator
    let r = admin.post("/api/v1/rules", &rule("r1", "team", json!({"field": "name", "contians": "x"}))).await;
    assert_eq!(r.status, 422, "{:?}", r.body);
    assert!(r.body.to_string().contains("contians"), "{:?}", r.body);
    let r = admin.post("/api/v1/rules", &rule("r1", "team", json!({"field": "colour", "equals": "x"}))).await;
    assert_refused(&r, 422, "when.field", "unknown_field");

    // a cycle through lookups: a reads tag.b, b reads tag.a
    let mut doc = serde_json::to_value(vtag_tagging_config::ConfigDocument::initial()).unwrap();
    doc["rules"] = json!([
        {"id": "a-from-b", "key": "team", "priority": 1, "lookup": {"field": "tag.project", "table": {"x": "y"}}},
        {"id": "b-from-a", "key": "project", "priority": 1, "lookup": {"field": "tag.team", "table": {"y": "x"}}}
    ]);
    let r = admin.send(Method::PUT, "/api/v1/tagging-config", Some(&doc), &[]).await;
    let e = assert_refused(&r, 422, "rules[0].lookup.field", "cycle");
    assert!(e["message"].as_str().unwrap().contains("cycle"), "{e}");

    // YAML import: the error names the line
    let reply = reqwest::Client::new()
        .put(commands.url("/api/v1/tagging-config"))
        .bearer_auth(env.token("acme", "fin@acme.test", Role::Admin))
        .header("content-type", "application/yaml")
        .body(BAD_YAML)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 422);
    let body: Value = reply.json().await.unwrap();
    let e = body["errors"].as_array().unwrap().iter().find(|e| e["rule"] == "regex").cloned().expect("a regex error");
    assert_eq!((e["field"].as_str(), e["line"].as_u64()), (Some("rules[0].when.regex"), Some(10)), "{body}");

    // removing or reordering what is not there
    let r = admin.send(Method::DELETE, "/api/v1/rules/nope", None, &[]).await;
    assert_refused(&r, 422, "id", "not_found");

    // only admins change the configuration
    let editor = Api::new(commands.url(""), Some(env.editor()));
    let r = editor.post("/api/v1/rules", &rule("r1", "team", json!({"field": "name", "contains": "pay"}))).await;
    assert_eq!(r.status, 403, "{:?}", r.body);

    // Nothing reached the log.
    assert_eq!(records_in(&env.stack.brokers, &config_topic, 1), 0);

    // A valid rule publishes version 1; a stale If-Match is refused without publishing.
    let ok = admin.post("/api/v1/rules", &json!({"id": "pay", "key": "team", "priority": 10,
        "when": {"field": "name", "contains": "pay"}, "set": "payments"})).await;
    assert_eq!(ok.status, 202, "{:?}", ok.body);
    assert_eq!(ok.body["version"], 1);
    let stale = admin.send(Method::POST, "/api/v1/rules/pay/disable", None, &[("if-match", "0")]).await;
    assert_eq!(stale.status, 409, "{:?}", stale.body);
    assert_eq!(stale.body["current_version"], 1);
    assert_eq!(records_in(&env.stack.brokers, &config_topic, 1), 1);

    // Derived tags follow their rule: not removable, not applicable by hand.
    let observed = admin
        .post("/api/v1/resources/observe", &json!({"resources": [{"provider": "aws", "resource_id": "arn:aws:lambda:us-east-1:1:function:payments-api",
            "account_id": "1", "region": "us-east-1", "resource_type": "lambda", "name": "payments-api"}]}))
        .await;
    assert_eq!(observed.status, 200, "{:?}", observed.body);
    let id = observed.body["results"][0]["id"].as_str().unwrap().to_owned();
    let r = admin.send(Method::DELETE, &format!("/api/v1/virtual-tags/{id}:team"), None, &[]).await;
    assert_eq!(r.status, 409, "{:?}", r.body);
    assert_eq!(r.body["source"], "rule_based");
    let r = admin.post("/api/v1/virtual-tags/apply", &json!({"resource_id": id, "key": "owner", "value": "x", "source": "rule_based"})).await;
    assert_refused(&r, 422, "source", "one_of");
    // A manual value overrides the rule, and removing it brings the rule's value back.
    let r = admin.post("/api/v1/virtual-tags/apply", &json!({"resource_id": id, "key": "team", "value": "billing"})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = admin.send(Method::DELETE, &format!("/api/v1/virtual-tags/{id}:team"), None, &[]).await;
    assert_eq!(r.status, 200, "{:?}", r.body);

    commands.stop().await;
}
