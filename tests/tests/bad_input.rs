//! Bad input gets a 4xx problem+json naming the field and the rule, and nothing reaches the log.

use serde_json::json;
use vtag_service::auth::Role;
use vtag_tests::harness::TestEnv;
use vtag_tests::http::{observe_batch, Api, Reply};
use vtag_tests::log::records_in;

fn assert_problem(reply: &Reply, status: u16, field: Option<&str>, rule: Option<&str>) {
    assert_eq!(reply.status.as_u16(), status, "{:?}", reply.body);
    assert_eq!(reply.content_type, "application/problem+json");
    assert_eq!(reply.body["status"], status);
    assert!(reply.body["title"].is_string());
    if let Some(field) = field {
        let errors = reply.body["errors"].as_array().expect("errors listed");
        assert!(errors.iter().any(|e| e["field"] == field && rule.is_none_or(|r| e["rule"] == r)), "{errors:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_precisely_and_record_nothing() {
    let env = TestEnv::new().await;
    let commands = env.start_command_api().await;
    let api = Api::new(commands.url(""), Some(env.editor()));
    let seeded = api.post("/api/v1/resources/observe", &observe_batch(0, 1)).await;
    let resource = seeded.body["results"][0]["id"].as_str().unwrap().to_owned();
    let before = records_in(&env.stack.brokers, &env.topic(), env.partitions);

    // malformed JSON
    let r = api.raw(reqwest::Method::POST, "/api/v1/resources/observe", "{\"resources\": [").await;
    assert_problem(&r, 400, None, None);

    // unknown provider, in the middle of an otherwise valid batch: the whole batch is refused
    let mut batch = observe_batch(100, 3);
    batch["resources"][1]["provider"] = json!("oracle");
    let r = api.post("/api/v1/resources/observe", &batch).await;
    assert_problem(&r, 422, Some("resources[1].provider"), Some("one_of"));

    // wrong type, named with its path
    let mut batch = observe_batch(200, 2);
    batch["resources"][1]["native_tags"] = json!({"env": 3});
    let r = api.post("/api/v1/resources/observe", &batch).await;
    assert_problem(&r, 422, Some("resources[1].native_tags.env"), None);

    // over-long key
    let long_key = "k".repeat(129);
    let r = api.post("/api/v1/virtual-tags/apply", &json!({"resource_id": resource, "key": long_key, "value": "x"})).await;
    assert_problem(&r, 422, Some("key"), Some("max_length"));

    // empty value
    let r = api.post("/api/v1/virtual-tags/apply", &json!({"resource_id": resource, "key": "team", "value": ""})).await;
    assert_problem(&r, 422, Some("value"), Some("required"));

    // several problems at once are all reported
    let r = api
        .post("/api/v1/virtual-tags/apply", &json!({"resource_id": "not-a-uuid", "key": "bad key", "value": " x", "confidence": 2}))
        .await;
    assert_problem(&r, 422, Some("resource_id"), Some("uuid"));
    for field in ["key", "value", "confidence"] {
        assert!(r.body["errors"].as_array().unwrap().iter().any(|e| e["field"] == field), "{field}: {:?}", r.body);
    }

    // unknown field (a typo must not be silently ignored)
    let r = api.post("/api/v1/virtual-tags/apply", &json!({"resource_id": resource, "key": "team", "value": "x", "vaule": 1})).await;
    assert_problem(&r, 422, None, None);

    // bad tag id in the path
    let r = api.send(reqwest::Method::PUT, "/api/v1/virtual-tags/nonsense", Some(&json!({"value": "x"})), &[]).await;
    assert_problem(&r, 422, Some("id"), None);

    // unknown resource
    let r = api
        .post("/api/v1/virtual-tags/apply", &json!({"resource_id": uuid::Uuid::new_v4().to_string(), "key": "team", "value": "x"}))
        .await;
    assert_problem(&r, 404, None, None);

    // no token, and a viewer token on a write
    let anonymous = Api::new(commands.url(""), None);
    assert_problem(&anonymous.post("/api/v1/resources/observe", &observe_batch(0, 1)).await, 401, None, None);
    let viewer = Api::new(commands.url(""), Some(env.token("acme", "v@acme.test", Role::Viewer)));
    assert_problem(&viewer.post("/api/v1/resources/observe", &observe_batch(0, 1)).await, 403, None, None);

    assert_eq!(records_in(&env.stack.brokers, &env.topic(), env.partitions), before, "nothing may reach the log");
    commands.stop().await;
}
