//! observe → apply → read back through the query API (REST and GraphQL) → audit trail.

use serde_json::json;
use vtag_service::auth::Role;
use vtag_tests::harness::TestEnv;
use vtag_tests::http::{observe_batch, Api};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_applied_tag_is_read_back_with_source_version_and_audit() {
    let env = TestEnv::new().await;
    let commands = env.start_command_api().await;
    let projector = env.start_projector();
    let queries = env.start_query_api().await;
    let write = Api::new(commands.url(""), Some(env.editor()));
    let read = Api::new(queries.url(""), Some(env.token("acme", "viewer@acme.test", Role::Viewer)));

    let observed = write.post("/api/v1/resources/observe", &observe_batch(0, 1)).await;
    assert_eq!(observed.status, 200, "{:?}", observed.body);
    let resource = observed.body["results"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(observed.body["results"][0]["version"], 1);
    assert_eq!(observed.body["results"][0]["changed"], true);

    let applied = write
        .post(
            "/api/v1/virtual-tags/apply",
            &json!({"resource_id": resource, "key": "environment", "value": "production", "source": "manual", "expected_version": 1}),
        )
        .await;
    assert_eq!(applied.status, 200, "{:?}", applied.body);
    assert_eq!(applied.body["version"], 2);
    assert_eq!(applied.body["id"], format!("{resource}:environment"));
    let token = applied.body["consistency_token"].as_str().unwrap().to_owned();

    // Read-your-writes: with the token, the read waits for the projector instead of racing it.
    let tags = read.get_consistent(&format!("/api/v1/resources/{resource}/virtual-tags"), &token).await;
    assert_eq!(tags.status, 200, "{:?}", tags.body);
    assert_eq!(tags.body["resource_id"], "arn:aws:ec2:us-east-1:123456789012:instance/i-00000000");
    assert_eq!(tags.body["resource_name"], "web-server-prod-000");
    assert_eq!(tags.body["provider"], "aws");
    assert_eq!(tags.body["version"], 2);
    let vt = &tags.body["virtual_tags"];
    assert_eq!(vt.as_array().unwrap().len(), 1);
    assert_eq!(vt[0]["key"], "environment");
    assert_eq!(vt[0]["value"], "production");
    assert_eq!(vt[0]["source"], "manual");
    assert_eq!(vt[0]["confidence"], 1.0);
    assert_eq!(vt[0]["version"], 2);
    assert!(vt[0]["created_at"].as_str().unwrap().ends_with('Z'));
    // Native tags never leave the write side.
    let text = tags.body.to_string();
    assert!(!text.contains("PROD") && !text.contains("Platform") && !text.contains("native"), "{text}");

    // The same resource by its cloud id.
    let by_arn = read
        .get_consistent(
            "/api/v1/resources/arn%3Aaws%3Aec2%3Aus-east-1%3A123456789012%3Ainstance%2Fi-00000000/virtual-tags",
            &token,
        )
        .await;
    assert_eq!(by_arn.status, 200, "{:?}", by_arn.body);
    assert_eq!(by_arn.body["id"], resource);

    let audit = read.get_consistent(&format!("/api/v1/audit-trail?resource_id={resource}&order=asc"), &token).await;
    assert_eq!(audit.status, 200, "{:?}", audit.body);
    let items = audit.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{items:?}");
    assert_eq!(items[0]["action"], "ResourceObserved");
    assert_eq!(items[0]["aggregate_version"], 1);
    assert_eq!(items[1]["action"], "VirtualTagApplied");
    assert_eq!(items[1]["tag_key"], "environment");
    assert_eq!(items[1]["new_value"], "production");
    for item in items {
        assert_eq!(item["performed_by"], "alice@acme.test");
        assert!(item["recorded_at"].as_str().is_some() && item["occurred_at"].as_str().is_some());
    }

    let gql = read
        .send(
            reqwest::Method::POST,
            "/graphql",
            Some(&json!({"query": format!("{{ resource(id: \"{resource}\") {{ name provider virtualTags {{ key value source confidence }} }} }}")})),
            &[],
        )
        .await;
    assert_eq!(gql.status, 200, "{:?}", gql.body);
    assert_eq!(gql.body["data"]["resource"]["virtualTags"][0]["source"], "MANUAL", "{:?}", gql.body);
    assert_eq!(gql.body["data"]["resource"]["virtualTags"][0]["value"], "production");

    // Another tenant sees nothing of acme's.
    let other = Api::new(queries.url(""), Some(env.token("globex", "eve@globex.test", Role::Admin)));
    let hidden = other.get(&format!("/api/v1/resources/{resource}/virtual-tags")).await;
    assert_eq!(hidden.status, 404);
    let hidden_audit = other.get(&format!("/api/v1/audit-trail?resource_id={resource}")).await;
    assert_eq!(hidden_audit.body["items"].as_array().map(Vec::len), Some(0), "{:?}", hidden_audit.body);

    // And nobody without a token sees anything.
    let anonymous = Api::new(queries.url(""), None).get(&format!("/api/v1/resources/{resource}/virtual-tags")).await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(anonymous.content_type, "application/problem+json");

    // Removing the tag is recorded and read back.
    let removed = write
        .send(reqwest::Method::DELETE, &format!("/api/v1/virtual-tags/{resource}:environment?expected_version=2"), None, &[])
        .await;
    assert_eq!(removed.status, 200, "{:?}", removed.body);
    assert_eq!(removed.body["version"], 3);
    let after = read
        .get_consistent(&format!("/api/v1/resources/{resource}/virtual-tags"), removed.body["consistency_token"].as_str().unwrap())
        .await;
    assert_eq!(after.body["virtual_tags"].as_array().unwrap().len(), 0);

    queries.stop().await;
    projector.stop().await;
    commands.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_observing_an_unchanged_resource_records_nothing_and_retries_are_idempotent() {
    let env = TestEnv::new().await;
    let commands = env.start_command_api().await;
    let write = Api::new(commands.url(""), Some(env.editor()));
    let before = vtag_tests::log::records_in(&env.stack.brokers, &env.topic(), env.partitions);

    let first = write.post("/api/v1/resources/observe", &observe_batch(0, 10)).await;
    assert_eq!(first.status, 200);
    let again = write.post("/api/v1/resources/observe", &observe_batch(0, 10)).await;
    assert_eq!(again.status, 200);
    assert!(again.body["results"].as_array().unwrap().iter().all(|r| r["changed"] == false && r["version"] == 1));
    assert_eq!(vtag_tests::log::records_in(&env.stack.brokers, &env.topic(), env.partitions) - before, 10);

    // A retried apply with the same Idempotency-Key gets the original answer, not a 409.
    let resource = first.body["results"][0]["id"].as_str().unwrap();
    let body = json!({"resource_id": resource, "key": "team", "value": "payments", "expected_version": 1});
    let headers = [("idempotency-key", "apply-team-1")];
    let one = write.send(reqwest::Method::POST, "/api/v1/virtual-tags/apply", Some(&body), &headers).await;
    let two = write.send(reqwest::Method::POST, "/api/v1/virtual-tags/apply", Some(&body), &headers).await;
    assert_eq!(one.status, 200);
    assert_eq!(two.status, 200, "{:?}", two.body);
    assert_eq!(one.body["version"], two.body["version"]);
    assert_eq!(vtag_tests::log::records_in(&env.stack.brokers, &env.topic(), env.partitions) - before, 11);
    commands.stop().await;
}
