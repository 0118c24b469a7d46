//! Single writer per partition across instances: two command APIs split the partitions through the
//! ownership group, never both write one resource, and when one leaves the other takes over with the
//! state rebuilt from the log (including what the leaver wrote).

use std::time::Duration;

use serde_json::json;
use vtag_tests::harness::{eventually, TestEnv};
use vtag_tests::http::{observe_batch, Api};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_split_the_partitions_and_hand_them_over() {
    let env = TestEnv::new().await;
    let a = env.start_command_api().await;
    let api_a = Api::new(a.url(""), Some(env.editor()));
    let observed = api_a.post("/api/v1/resources/observe", &observe_batch(0, 24)).await;
    assert_eq!(observed.status, 200, "alone, the first instance owns every partition: {:?}", observed.body);
    let ids: Vec<String> = observed.body["results"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect();

    let b = env.start_command_api().await;
    let api_b = Api::new(b.url(""), Some(env.editor()));
    let mut written_by_b = Vec::new();
    let mut written_by_a = 0;
    for id in &ids {
        let body = |who: &str| json!({"resource_id": id, "key": "owner", "value": who, "expected_version": 1});
        // While the group settles a partition may briefly belong to nobody: retry until one accepts.
        let winner = eventually(Duration::from_secs(60), "an owner to accept the write", || async {
            let ra = api_a.post("/api/v1/virtual-tags/apply", &body("a")).await;
            if ra.status == 200 {
                return Some("a");
            }
            let rb = api_b.post("/api/v1/virtual-tags/apply", &body("b")).await;
            if rb.status == 200 {
                return Some("b");
            }
            assert!(ra.status == 503 && rb.status == 503, "only 'not owner' may refuse here: {ra:?} {rb:?}");
            None
        })
        .await;
        // Whoever won, the other instance must not accept a second write on the same version.
        let loser = if winner == "a" { &api_b } else { &api_a };
        let again = loser.post("/api/v1/virtual-tags/apply", &body("x")).await;
        assert!(again.status == 503 || again.status == 409, "{again:?}");
        if winner == "b" {
            written_by_b.push(id.clone());
        } else {
            written_by_a += 1;
        }
    }
    assert!(written_by_a > 0 && !written_by_b.is_empty(), "both instances should own partitions ({written_by_a} / {})", written_by_b.len());

    // B leaves: A takes its partitions over and decides from the log, which has B's writes.
    b.stop().await;
    let id = &written_by_b[0];
    let taken_over = eventually(Duration::from_secs(60), "the survivor to take the partition over", || async {
        let r = api_a.post("/api/v1/virtual-tags/apply", &json!({"resource_id": id, "key": "owner", "value": "a", "expected_version": 2})).await;
        (r.status != 503).then_some(r)
    })
    .await;
    assert_eq!(taken_over.status, 200, "{:?}", taken_over.body);
    assert_eq!(taken_over.body["version"], 3);
    let stale = api_a.post("/api/v1/virtual-tags/apply", &json!({"resource_id": written_by_b[1 % written_by_b.len()], "key": "team", "value": "t", "expected_version": 1})).await;
    assert_eq!(stale.status, 409, "{:?}", stale.body);
    a.stop().await;
}
