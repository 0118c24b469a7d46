//! Rebuilding the Postgres read model (`vtag replay --read-model postgres`, ADR 0010) against the
//! real stack: the rebuild folds the log into a shadow schema and swaps it with `public` while the
//! query API and plain SQL sessions keep reading (none fails, none sees a half-built model, and the
//! new model equals the one it replaced, table by table); writes that land before, during and after
//! the swap all reach the served model exactly once; what an interrupted rebuild left is dropped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sqlx::PgPool;
use vtag_service::Role;
use vtag_tests::harness::{eventually, TestEnv};
use vtag_tests::http::{observe_batch, Api};

const RESOURCES: usize = 1_500;

/// Every table of the read model a test here fills: rows and a digest of their contents.
async fn read_model(pool: &PgPool) -> Vec<(&'static str, i64, String)> {
    let tables = [
        ("resources", "t.*"),
        ("virtual_tags", "t.*"),
        ("tag_audit", "t.*"),
        ("tagging_configs", "t.*"),
        ("compliance_policies", "t.*"),
        ("projector_checkpoints", "t.projector, t.topic, t.partition, t.next_offset"),
    ];
    let mut digests = Vec::new();
    for (table, columns) in tables {
        let (rows, digest): (i64, String) = sqlx::query_as(&format!(
            "SELECT count(*), md5(coalesce(string_agg(r, '|' ORDER BY r), '')) FROM (SELECT ({columns})::text AS r FROM {table} t) x"
        ))
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("reading {table}: {e}"));
        digests.push((table, rows, digest));
    }
    digests
}

async fn public_oid(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT oid::int8 FROM pg_namespace WHERE nspname = 'public'").fetch_one(pool).await.unwrap()
}

async fn served_indexes(pool: &PgPool) -> Vec<(String, String)> {
    sqlx::query_as("SELECT indexname::text, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname").fetch_all(pool).await.unwrap()
}

async fn rebuild_schemas(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar("SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'vtag\\_shadow\\_%' OR nspname LIKE 'vtag\\_retired\\_%'")
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn folded(env: &TestEnv, pool: &PgPool) {
    eventually(Duration::from_secs(120), "the projector to fold the whole resource topic", || async {
        let log = vtag_tests::log::records_in(&env.stack.brokers, &env.topic(), env.partitions);
        (vtag_tests::readmodel::folded_of(pool, &env.topic()).await == log).then_some(())
    })
    .await;
}

/// Reads every 20 ms until stopped, through the query API (the last resource's tags) and through a
/// plain SQL session (row counts, with the prepared statements it keeps): every answer must be the
/// whole model, and the checkpoints never go back (a reader that saw a write keeps seeing it).
/// Returns how many rounds it read.
fn watch(api: Api, pool: PgPool, topic: String, last: String, resources: i64, tags: i64, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<usize> {
    tokio::spawn(async move {
        let mut rounds = 0;
        let mut seen = 0;
        while !stop.load(Ordering::Relaxed) {
            let folded = vtag_tests::readmodel::folded_of(&pool, &topic).await;
            assert!(folded >= seen, "the checkpoints went back from {seen} to {folded}");
            seen = folded;
            let r = api.get(&format!("/api/v1/resources/{last}/virtual-tags")).await;
            assert_eq!(r.status, 200, "a query failed during the rebuild: {:?}", r.body);
            assert!(r.body.to_string().contains("payments"), "a query saw part of the read model: {:?}", r.body);
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM resources").fetch_one(&pool).await.expect("SQL during the rebuild");
            assert_eq!(n, resources, "a SQL session saw part of the read model");
            let t: i64 = sqlx::query_scalar("SELECT count(*) FROM virtual_tags WHERE tag_key = 'team'").fetch_one(&pool).await.expect("SQL during the rebuild");
            assert_eq!(t, tags, "a SQL session saw part of the read model");
            rounds += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        rounds
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_swaps_the_read_model_while_queries_and_writes_run() {
    let env = TestEnv::new().await;
    let commands = env.start_command_api().await;
    let queries = env.start_query_api().await;
    let projector = env.start_projector();
    let admin = Api::new(commands.url(""), Some(env.editor()));
    let mut ids = Vec::with_capacity(RESOURCES);
    for from in (0..RESOURCES).step_by(500) {
        let r = admin.post("/api/v1/resources/observe", &observe_batch(from, 500)).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        ids.extend(r.body["results"].as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap().to_owned()));
    }
    for chunk in ids.chunks(1_000) {
        let r = admin.post("/api/v1/virtual-tags/apply", &json!({"resource_ids": chunk, "key": "team", "value": "payments"})).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
    let r = admin.post("/api/v1/virtual-tags/apply", &json!({"resource_ids": ids[..700], "key": "environment", "value": "production"})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let policy = json!({
        "policy_id": "owner-required", "policy_name": "Owner required", "description": "every resource names its owner",
        "policy_type": "required_tags", "enabled": true,
        "rules": {"required_tags": ["owner"], "severity": "high"}
    });
    let governor = Api::new(commands.url(""), Some(env.token("acme", "gov@acme.test", Role::Admin)));
    let r = governor.post("/api/v1/policies", &policy).await;
    assert!(r.status == 200 || r.status == 201, "{:?}", r.body);
    let pool = env.pool().await;
    folded(&env, &pool).await;
    eventually(Duration::from_secs(60), "the policy in the read model", || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM compliance_policies").fetch_one(&pool).await.unwrap();
        (n == 1).then_some(())
    })
    .await;
    let before = read_model(&pool).await;
    let indexes = served_indexes(&pool).await;
    let served = public_oid(&pool).await;
    // What a rebuild killed mid-way would have left.
    sqlx::query("CREATE SCHEMA vtag_shadow_1").execute(&pool).await.unwrap();
    sqlx::query("CREATE TABLE vtag_shadow_1.resources (id int)").execute(&pool).await.unwrap();

    // 1. Nothing is written meanwhile: the rebuilt model equals the one it replaced.
    let read = Api::new(queries.url(""), Some(env.token("acme", "viewer@acme.test", Role::Viewer)));
    let last = ids.last().unwrap().clone();
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch(read.clone(), env.pool().await, env.topic(), last.clone(), RESOURCES as i64, RESOURCES as i64, stop.clone());
    let progress = std::sync::Mutex::new(Vec::new());
    vtag_projectors::postgres::rebuild(env.projector_settings(), &|done, due| progress.lock().unwrap().push((done, due))).await.expect("rebuild");
    assert_ne!(public_oid(&pool).await, served, "a new schema serves");
    assert_eq!(read_model(&pool).await, before, "the rebuilt read model differs from the one it replaced");
    assert_eq!(served_indexes(&pool).await, indexes, "the rebuilt model has every index (the secondary ones are built last)");
    assert_eq!(rebuild_schemas(&pool).await, Vec::<String>::new(), "the shadow was renamed, the retired model and the leftover dropped");
    let progress = progress.into_inner().unwrap();
    let (done, due) = *progress.last().expect("progress was reported");
    assert!(due > 0 && done == due, "progress ends at what was due: {progress:?}");
    stop.store(true, Ordering::Relaxed);
    assert!(watcher.await.expect("no read failed") > 5, "reads ran during the rebuild");

    // 2. Writes go on before, during and after a second swap: each lands once in the served model.
    let writing = Arc::new(AtomicBool::new(true));
    let writer = {
        let (admin, ids, writing) = (admin.clone(), ids.clone(), writing.clone());
        tokio::spawn(async move {
            let mut waves = 0;
            // Two more waves after the rebuild, so some writes surely follow the swap.
            let mut after = 2;
            while after > 0 {
                if !writing.load(Ordering::Relaxed) {
                    after -= 1;
                }
                for chunk in ids.chunks(1_000) {
                    let r = admin.post("/api/v1/virtual-tags/apply", &json!({"resource_ids": chunk, "key": "wave", "value": format!("w{waves}")})).await;
                    assert_eq!(r.status, 200, "{:?}", r.body);
                }
                waves += 1;
            }
            waves
        })
    };
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch(read.clone(), env.pool().await, env.topic(), last.clone(), RESOURCES as i64, RESOURCES as i64, stop.clone());
    let served = public_oid(&pool).await;
    vtag_projectors::postgres::rebuild(env.projector_settings(), &|_, _| {}).await.expect("rebuild under writes");
    writing.store(false, Ordering::Relaxed);
    let waves = writer.await.expect("the writer");
    assert_ne!(public_oid(&pool).await, served);
    folded(&env, &pool).await;
    stop.store(true, Ordering::Relaxed);
    assert!(watcher.await.expect("no read failed") > 5);
    let (resources, latest, audit): (i64, i64, i64) = sqlx::query_as(&format!(
        "SELECT (SELECT count(*) FROM resources),
                (SELECT count(*) FROM virtual_tags WHERE tag_key = 'wave' AND tag_value = 'w{}'),
                (SELECT count(*) FROM tag_audit WHERE tag_key = 'wave')",
        waves - 1
    ))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(resources, RESOURCES as i64);
    assert_eq!(latest, RESOURCES as i64, "every resource carries the last wave");
    assert_eq!(audit, waves as i64 * RESOURCES as i64, "each wave's change is in the history once ({waves} waves)");
    assert!(waves >= 3, "writes ran during the rebuild ({waves} waves)");

    projector.stop().await;
    queries.stop().await;
    commands.stop().await;
}
