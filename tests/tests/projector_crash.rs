//! kill -9 the projector in the middle of a 20k-event stream, restart it: the read model equals one
//! rebuilt from offset 0 — nothing lost, nothing applied twice.

use std::time::Duration;

use serde_json::json;
use vtag_tests::harness::{eventually, TestEnv};
use vtag_tests::http::{observe_batch, Api};
use vtag_tests::log::records_in;
use vtag_tests::readmodel::{folded, snapshot};

const RESOURCES: usize = 10_000;
const BATCH: usize = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projector_killed_mid_stream_resumes_exactly_where_it_was() {
    let env = TestEnv::new().await;
    let commands = env.start_command_api().await;
    let api = Api::new(commands.url(""), Some(env.editor()));
    let pool = env.pool().await;
    let mut projector = env.spawn_projector_process();

    // 10k observations then 10k tag applications: 20k events.
    let producer = tokio::spawn(async move {
        let mut ids = Vec::with_capacity(RESOURCES);
        for from in (0..RESOURCES).step_by(BATCH) {
            let r = api.post("/api/v1/resources/observe", &observe_batch(from, BATCH)).await;
            assert_eq!(r.status, 200, "{:?}", r.body);
            ids.extend(r.body["results"].as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap().to_owned()));
        }
        for chunk in ids.chunks(BATCH) {
            let r = api.post("/api/v1/virtual-tags/apply", &json!({"resource_ids": chunk, "key": "team", "value": "payments"})).await;
            assert_eq!(r.status, 200, "{:?}", r.body);
        }
    });

    let at_kill = eventually(Duration::from_secs(120), "the projector to make progress", || async {
        let n = folded(&pool).await;
        (n >= 2_000).then_some(n)
    })
    .await;
    projector.start_kill().expect("kill -9");
    projector.wait().await.expect("reaped");
    assert!(at_kill < 2 * RESOURCES as i64, "the kill must land mid-stream (folded {at_kill})");

    producer.await.expect("all commands accepted");
    let total = records_in(&env.stack.brokers, &env.topic(), env.partitions);
    assert_eq!(total, 2 * RESOURCES as i64);

    let mut restarted = env.spawn_projector_process();
    eventually(Duration::from_secs(180), "the restarted projector to catch up", || async {
        (folded(&pool).await == total).then_some(())
    })
    .await;
    restarted.start_kill().ok();

    // A second read model, folded from offset 0 by a projector that never crashed.
    let rebuilt_env = vtag_tests::harness::TestEnv::with_stack(env.stack.clone()).await;
    let mut settings = rebuilt_env.projector_settings();
    settings.log.topic_prefix = env.prefix.clone();
    let rebuilt_pool = rebuilt_env.pool().await;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let rebuild = tokio::spawn(vtag_projectors::postgres::run(settings, async move {
        let _ = rx.await;
    }));
    eventually(Duration::from_secs(180), "the rebuild to reach the end of the log", || async {
        (folded(&rebuilt_pool).await == total).then_some(())
    })
    .await;
    let _ = tx.send(());
    rebuild.await.unwrap().unwrap();

    let crashed = snapshot(&pool).await;
    let clean = snapshot(&rebuilt_pool).await;
    assert_eq!(crashed[0].1.len(), RESOURCES, "resources");
    assert_eq!(crashed[1].1.len(), RESOURCES, "virtual tags");
    assert_eq!(crashed[2].1.len(), 2 * RESOURCES, "one audit row per event, no more, no less");
    for ((table, a), (_, b)) in crashed.iter().zip(&clean) {
        assert!(a == b, "{table} differs between the crashed and the rebuilt read model");
    }
    commands.stop().await;
}
