//! A re-derivation job survives the loss of its process: the command API is stopped right after a
//! rule publish, a new one takes over, finishes the job, and no resource gets the change twice.


use reqwest::Method;
use serde_json::json;
use uuid::Uuid;
use vtag_inventory::{GeneratedResource, Generator, GeneratorConfig};
use vtag_service::auth::Role;
use vtag_tagging_config::ConfigDocument;
use vtag_tests::derivation::{assert_same, expected, read_model, wait_for_job};
use vtag_tests::harness::{eventually, TestEnv};
use vtag_tests::http::Api;

use std::time::Duration;

const RESOURCES: usize = 4_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_job_resumes_and_applies_each_change_once() {
    let env = TestEnv::new().await;
    let projector = env.start_projector();
    let queries = env.start_query_api().await;
    let read = Api::new(queries.url(""), Some(env.token("acme", "viewer@acme.test", Role::Viewer)));
    let pool = env.pool().await;
    let resources: Vec<GeneratedResource> = Generator::new(GeneratorConfig::new(11)).unwrap().resources(RESOURCES).collect();

    // Throttled, so the job is still running when its process goes away.
    let mut slow = env.command_settings();
    slow.rederive_chunk = 100;
    slow.rederive_pause = std::time::Duration::from_millis(50);
    let commands = env.start_command_api_with(slow).await;
    let admin = Api::new(commands.url(""), Some(env.token("acme", "fin@acme.test", Role::Admin)));
    for chunk in resources.chunks(1_000) {
        let body = json!({"resources": chunk.iter().map(|r| &r.observed).collect::<Vec<_>>()});
        assert_eq!(admin.post("/api/v1/resources/observe", &body).await.status, 200);
    }
    let mut doc = serde_json::to_value(ConfigDocument::initial()).unwrap();
    doc["rules"] = json!([
        {"id": "prod", "key": "environment", "priority": 1, "when": {"field": "name", "contains": "prod"}, "set": "production"},
        {"id": "app", "key": "application", "priority": 1, "set_from_name": {"regex": "^(?P<app>[a-z]+)", "group": "app"}}
    ]);
    doc["defaults"] = json!({"cost-center": "unallocated", "team": "unassigned"});
    let published = admin.send(Method::PUT, "/api/v1/tagging-config", Some(&doc), &[]).await;
    assert_eq!(published.status, 202, "{:?}", published.body);
    // The process goes away while its job runs: once some of it is in the read model, not all.
    let (processed, done) = eventually(Duration::from_secs(60), "the job to make some progress", || async {
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT sum(processed)::int8, count(*) FILTER (WHERE done) FROM rederivation_progress WHERE tenant = 'acme' HAVING count(*) > 0",
        )
        .fetch_optional(&pool)
        .await
        .unwrap();
        row.filter(|(p, _)| *p > 0)
    })
    .await;
    commands.stop().await;
    assert!(done < env.partitions as i64 && processed < RESOURCES as i64, "the job finished before the stop ({processed} processed)");

    let commands = env.start_command_api().await;
    let job = wait_for_job(&read, published.body["job"].as_str().unwrap()).await;
    assert_eq!(job["total"], RESOURCES as u64, "{job}");
    assert_same(&read_model(&pool).await, &expected(&resources, &doc, 1));

    let twice: Vec<(Uuid, i64)> = sqlx::query_as(
        "SELECT resource_id, count(DISTINCT event_id) FROM tag_audit
         WHERE tenant = 'acme' AND action = 'VirtualTagsDerived' AND rule_set_version = 1
         GROUP BY resource_id HAVING count(DISTINCT event_id) > 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(twice.is_empty(), "resources re-derived twice for one job: {twice:?}");
    let derived: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT resource_id) FROM tag_audit WHERE tenant = 'acme' AND action = 'VirtualTagsDerived' AND rule_set_version = 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(derived, RESOURCES as i64, "the defaults change every resource exactly once");

    commands.stop().await;
    queries.stop().await;
    projector.stop().await;
}
