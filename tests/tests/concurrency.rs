//! Optimistic concurrency: many writers with the same expected version, exactly one wins.

use futures::future::join_all;
use serde_json::json;
use vtag_tests::harness::TestEnv;
use vtag_tests::http::{observe_batch, Api};
use vtag_tests::log::records_in;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_applies_with_one_expected_version_one_wins() {
    let env = TestEnv::new().await;
    let commands = env.start_command_api().await;
    let queries = env.start_query_api().await;
    let projector = env.start_projector();
    let api = Api::new(commands.url(""), Some(env.editor()));
    let observed = api.post("/api/v1/resources/observe", &observe_batch(0, 1)).await;
    let resource = observed.body["results"][0]["id"].as_str().unwrap().to_owned();
    let before = records_in(&env.stack.brokers, &env.topic(), env.partitions);

    let attempts = (0..50).map(|i| {
        let api = api.clone();
        let body = json!({"resource_id": resource, "key": "owner", "value": format!("writer-{i}"), "expected_version": 1});
        async move { api.post("/api/v1/virtual-tags/apply", &body).await }
    });
    let replies = join_all(attempts).await;
    let winners: Vec<_> = replies.iter().filter(|r| r.status == 200).collect();
    let conflicts = replies.iter().filter(|r| r.status == 409).count();
    assert_eq!(winners.len(), 1, "{:?}", replies.iter().map(|r| r.status).collect::<Vec<_>>());
    assert_eq!(conflicts, 49);
    for r in replies.iter().filter(|r| r.status == 409) {
        assert_eq!(r.content_type, "application/problem+json");
        assert_eq!(r.body["current_version"], 2);
    }
    assert_eq!(winners[0].body["version"], 2);
    assert_eq!(records_in(&env.stack.brokers, &env.topic(), env.partitions) - before, 1, "exactly one new event");

    let token = winners[0].body["consistency_token"].as_str().unwrap();
    let read = Api::new(queries.url(""), Some(env.editor()));
    let tags = read.get_consistent(&format!("/api/v1/resources/{resource}/virtual-tags"), token).await;
    assert_eq!(tags.body["version"], 2);
    let audit = read.get_consistent(&format!("/api/v1/audit-trail?resource_id={resource}&action=VirtualTagApplied"), token).await;
    assert_eq!(audit.body["items"].as_array().unwrap().len(), 1, "{:?}", audit.body);

    projector.stop().await;
    queries.stop().await;
    commands.stop().await;
}
