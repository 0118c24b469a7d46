//! Retroactive re-derivation at scale, on the real services (child processes): publish a rule set,
//! observe N generated resources (derived under it as they arrive), then edit ONE rule and time how
//! long from the edit's request until the change is in the Postgres read model (every partition's
//! progress marker folded). Raw baselines for the same
//! number of records are measured in the same run: produce them to the broker, COPY them into
//! Postgres.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::StreamExt;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;
use vtag_inventory::GeneratedResource;
use vtag_service::auth::Role;

use crate::bench::procfs;
use crate::bench::services::{free_port, wait_healthy, ChildService};
use crate::bench::thousands;
use crate::harness::TestEnv;

const TENANT: &str = "bench";
const BATCH: usize = 1_000;
const IN_FLIGHT: usize = 4;

pub async fn run(resources: &[GeneratedResource], doc: &Value, timeout: Duration) -> anyhow::Result<Value> {
    let env = TestEnv::new().await;
    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    eprintln!("[bench] retroactive: starting vtag-command-api ({base}) and vtag-projector");
    let mut commands = ChildService::spawn(&env, "command-api", "vtag-command-api", &[("VTAG_COMMAND_API_LISTEN", format!("127.0.0.1:{port}"))])?;
    wait_healthy(&mut commands, &base, Duration::from_secs(120)).await?;
    let projector = ChildService::spawn(&env, "projector", "vtag-projector", &[("VTAG_PROJECTOR_BATCH", String::new())])?;
    let mut db = PgConnection::connect(&env.database_url).await?;
    wait_migrated(&mut db, Duration::from_secs(120)).await?;
    let client = reqwest::Client::new();
    let admin = env.token(TENANT, "finops@bench.test", Role::Admin);

    // 1. The rule set first, so the estate is derived under it as it is observed (the steady state a
    //    rule edit meets in production).
    let (published, first) = publish(&client, &base, &admin, reqwest::Method::PUT, "/api/v1/tagging-config", doc).await?;
    wait_job(&mut db, &first, timeout).await?;
    eprintln!("[bench] rule set v{} published", published["version"]);

    // 2. The estate.
    let ingest = observe_all(&client, &base, &admin, resources).await?;
    let in_read_model = ingest + wait_read_model(&mut db, resources.len() as i64, timeout).await?;
    eprintln!("[bench] observed in {:.0}s, in the read model after {:.0}s", ingest.as_secs_f64(), in_read_model.as_secs_f64());

    // 3. One rule edited: one account's owner changes hands.
    let mut rule = doc["rules"].as_array().and_then(|r| r.iter().find(|r| r["id"] == "owner-by-account")).cloned().context("owner rule")?;
    let table = rule["lookup"]["table"].as_object_mut().context("owner table")?;
    let account = table.keys().next().cloned().context("an account")?;
    table.insert(account.clone(), json!("new-owner@bench.test"));
    let edit_started = Instant::now();
    let (_, edit) = publish(&client, &base, &admin, reqwest::Method::PUT, "/api/v1/rules/owner-by-account", &rule).await?;
    let changed = wait_job(&mut db, &edit, timeout).await?;
    let edit_time = edit_started.elapsed();
    eprintln!("[bench] rule edit: {changed} resources changed, in the read model after {:.1}s", edit_time.as_secs_f64());
    let rss = procfs::rss_kib(commands.pid).map(|(hwm, _)| hwm as f64 / 1024.0);

    // 4. Raw baselines for the same number of records, same run.
    let n = changed.max(1) as usize;
    let produce = raw_produce(&env, n).await?;
    let copy = raw_copy(&mut db, n).await?;

    commands.stop(Duration::from_secs(10)).await.ok();
    projector.stop(Duration::from_secs(10)).await.ok();
    Ok(json!({
        "resources": resources.len(),
        "ingest_s": ingest.as_secs_f64(),
        "observed_in_read_model_s": in_read_model.as_secs_f64(),
        "edit_s": edit_time.as_secs_f64(),
        "edit_changed": changed,
        "edit_target_s": 120.0,
        "raw_produce_same_count_s": produce.as_secs_f64(),
        "raw_copy_same_count_s": copy.as_secs_f64(),
        "command_api_peak_rss_mb": rss,
    }))
}

pub fn summary(r: &Value) -> Vec<String> {
    let f = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
    vec![
        format!("observe {} resources over HTTP      {:>8.1} s", thousands(f("resources")), f("ingest_s")),
        format!("  … all derived, in the read model    {:>8.1} s", f("observed_in_read_model_s")),
        format!("EDIT ONE RULE → in the read model     {:>8.1} s, {} resources changed (target ≤ {:.0} s: {})",
            f("edit_s"), thousands(f("edit_changed")), f("edit_target_s"), if f("edit_s") <= f("edit_target_s") { "met" } else { "MISSED" }),
        format!("  raw produce of as many records      {:>8.2} s", f("raw_produce_same_count_s")),
        format!("  raw COPY of as many rows            {:>8.2} s", f("raw_copy_same_count_s")),
        format!("command API peak RSS                  {:>8.0} MB", f("command_api_peak_rss_mb")),
    ]
}

/// Observes `resources` over HTTP, 1,000 per request and 4 requests in flight, as collectors would;
/// answers how long it took until the last answer.
pub(crate) async fn observe_all(client: &reqwest::Client, base: &str, admin: &str, resources: &[GeneratedResource]) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let bodies: Vec<Vec<u8>> = resources
        .chunks(BATCH)
        .map(|c| serde_json::to_vec(&json!({"resources": c.iter().map(|r| &r.observed).collect::<Vec<_>>()})).expect("json"))
        .collect();
    eprintln!("[bench] observing {} resources ({} requests, {IN_FLIGHT} in flight)", resources.len(), bodies.len());
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(bodies)
        .enumerate()
        .map(|(i, body)| async move {
            // Retried under the same Idempotency-Key, as a collector would: nothing is recorded twice.
            let resp = retrying_503(|| {
                client
                    .post(format!("{base}/api/v1/resources/observe"))
                    .bearer_auth(admin)
                    .header("content-type", "application/json")
                    .header("idempotency-key", format!("bench-observe-{i}"))
                    .body(body.clone())
            })
            .await
            .context("observe")?;
            match resp.status().as_u16() {
                200 => Ok(()),
                other => bail!("observe answered {other}"),
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    results.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    Ok(started.elapsed())
}

/// Sends until the answer is not 503 (a partition lease moving, the log briefly away), a second
/// apart: the API says a 503 may be retried with the same Idempotency-Key.
pub(crate) async fn retrying_503(request: impl Fn() -> reqwest::RequestBuilder) -> anyhow::Result<reqwest::Response> {
    const ATTEMPTS: u32 = 30;
    for _ in 0..ATTEMPTS {
        let resp = request().send().await?;
        if resp.status() != reqwest::StatusCode::SERVICE_UNAVAILABLE {
            return Ok(resp);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    bail!("still 503 after {ATTEMPTS} attempts")
}

/// Publishes a configuration change and returns the answer and its job id.
pub(crate) async fn publish(client: &reqwest::Client, base: &str, token: &str, method: reqwest::Method, path: &str, body: &Value) -> anyhow::Result<(Value, Uuid)> {
    let key = Uuid::new_v4().to_string();
    let resp = retrying_503(|| client.request(method.clone(), format!("{base}{path}")).bearer_auth(token).header("idempotency-key", &key).json(body))
        .await
        .with_context(|| format!("publishing {path}"))?;
    let status = resp.status();
    let v: Value = resp.json().await?;
    if status != reqwest::StatusCode::ACCEPTED {
        bail!("publishing {path} answered {status}: {v}");
    }
    let job = v["job_id"].as_str().and_then(|j| Uuid::parse_str(j).ok()).context("job id")?;
    Ok((v, job))
}

/// Waits until every partition reported the job done; returns how many resources it changed.
pub(crate) async fn wait_job(db: &mut PgConnection, job: &Uuid, timeout: Duration) -> anyhow::Result<i64> {
    let started = Instant::now();
    loop {
        let row: Option<(i64, i32, i64)> = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE done), max(partitions), sum(changed)::int8 FROM rederivation_progress WHERE job_id = $1 HAVING count(*) > 0",
        )
        .bind(job)
        .fetch_optional(&mut *db)
        .await?;
        if let Some((done, partitions, changed)) = row {
            if done == i64::from(partitions) {
                return Ok(changed);
            }
        }
        if started.elapsed() > timeout {
            bail!("job {job} not done after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The projector creates the read model (migrations) when it starts.
pub(crate) async fn wait_migrated(db: &mut PgConnection, timeout: Duration) -> anyhow::Result<()> {
    wait_for_table(db, "rederivation_progress", timeout).await
}

/// Waits until the projector's migrations have created `table`.
pub(crate) async fn wait_for_table(db: &mut PgConnection, table: &str, timeout: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let ready: Option<String> =
            sqlx::query_scalar("SELECT to_regclass($1)::text").bind(table).fetch_one(&mut *db).await?;
        if ready.is_some() {
            return Ok(());
        }
        if started.elapsed() > timeout {
            bail!("the projector did not create the read model within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub(crate) async fn wait_read_model(db: &mut PgConnection, resources: i64, timeout: Duration) -> anyhow::Result<Duration> {
    let started = Instant::now();
    loop {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM resources").fetch_one(&mut *db).await?;
        if n >= resources {
            return Ok(started.elapsed());
        }
        if started.elapsed() > timeout {
            bail!("only {n} of {resources} resources in the read model after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// `n` records of a derivation event's size, with the services' producer settings, to a scratch
/// topic shaped like the event topic (same partition count; brokers need topics created first).
pub(crate) async fn raw_produce(env: &TestEnv, n: usize) -> anyhow::Result<Duration> {
    let scratch = vtag_eventlog::EventTopics::new(format!("{}raw.", env.prefix), env.partitions);
    scratch.ensure_created(&env.stack.brokers).await?;
    let topic = scratch.resource_events();
    let producer: FutureProducer = vtag_eventlog::kafka::producer_config(&env.stack.brokers).create()?;
    let payload = vec![b'x'; 420];
    let started = Instant::now();
    let mut pending = std::collections::VecDeque::new();
    for i in 0..n {
        let key = i.to_string();
        loop {
            match producer.send_result(FutureRecord::to(&topic).key(&key).payload(&payload)) {
                Ok(delivery) => {
                    pending.push_back(delivery);
                    break;
                }
                // The local queue is full: wait for the oldest deliveries, then retry.
                Err((_, _)) => {
                    for _ in 0..1_000 {
                        match pending.pop_front() {
                            Some(d) => delivered(d.await)?,
                            None => break,
                        }
                    }
                }
            }
        }
    }
    while let Some(d) = pending.pop_front() {
        delivered(d.await)?;
    }
    Ok(started.elapsed())
}

fn delivered(r: Result<rdkafka::producer::future_producer::OwnedDeliveryResult, futures::channel::oneshot::Canceled>) -> anyhow::Result<()> {
    match r {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((e, _))) => Err(e.into()),
        Err(_) => bail!("delivery cancelled"),
    }
}

/// `n` derived tag rows by COPY into a temporary copy of `virtual_tags` (no WAL, no index, no
/// upsert, no audit rows): a lower bound for writing what the edit changed.
async fn raw_copy(db: &mut PgConnection, n: usize) -> anyhow::Result<Duration> {
    sqlx::query("CREATE TEMP TABLE raw_tags (LIKE virtual_tags INCLUDING DEFAULTS)").execute(&mut *db).await?;
    let now = chrono::Utc::now().to_rfc3339();
    let mut csv = String::with_capacity(n * 200);
    for i in 0..n {
        let id = Uuid::new_v4();
        csv.push_str(&format!(
            "bench,{id},owner,new-owner@bench.test,rule_based,1,a,a,{now},{now},{i},{id},rule,owner-by-account,2,,,,\n"
        ));
    }
    let started = Instant::now();
    let mut copy = db
        .copy_in_raw(
            "COPY raw_tags (tenant, resource_id, tag_key, tag_value, source, confidence, created_by, updated_by, created_at,
             updated_at, version, event_id, origin, rule_id, rule_set_version, native_key, native_value, key_mapping, value_mapping)
             FROM STDIN WITH (FORMAT csv)",
        )
        .await?;
    copy.send(csv.as_bytes()).await?;
    copy.finish().await?;
    Ok(started.elapsed())
}
