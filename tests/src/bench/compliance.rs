//! Compliance at scale (P4), on the real services as child processes:
//!
//!  1. judge floor — the pure evaluation (`vtag_domain::compliance::evaluate`) of the 20 policies
//!     over every resource's tags in this process, one thread: what the evaluator cannot beat;
//!  2. sweep — the estate observed over HTTP (derived under the P2 rule set as it arrives), the
//!     evaluator started and ready (a one-resource recheck answered), then 20 policies published at
//!     once: the evaluator judges every resource (one job, progress per partition); measured from
//!     the request to the evaluator's last progress marker (its own clock, in the marker) and to
//!     the read model having folded every decision (the job done in `compliance_job_progress`),
//!     with raw baselines for as many records in the same run (produce to the broker, COPY rows);
//!  3. latency — at idle, one resource at a time: a tag changed to a value a policy refuses, timed
//!     until its `ViolationOpened` is on the compliance-events topic; then fixed, timed until
//!     `ViolationResolved` (p50 / p99).

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;
use vtag_domain::compliance::{evaluate, Change, ComplianceBook, Policy, Subject, TenantPolicies, Transition};
use vtag_domain::resource::ObserveResource;
use vtag_domain::{
    decide, Actor, CloudResourceId, CommandContext, NativeTags, Provider, ResourceCommand, ResourceDescription, ResourceId, ResourceState,
    TenantId,
};
use vtag_tagging_config::ConfigDocument;
use vtag_eventlog::compliance::ComplianceLog;
use vtag_eventlog::{EventCodec, EventTopics};
use vtag_inventory::GeneratedResource;
use vtag_policy_config::PoliciesDocument;
use vtag_service::auth::Role;

use crate::bench::retro::{observe_all, publish, wait_job, wait_migrated, wait_read_model};
use crate::bench::services::{free_port, wait_healthy, ChildService};
use crate::bench::{median, procfs, thousands};
use crate::harness::TestEnv;

const TENANT: &str = "bench";

/// 20 policies over the keys the P2 rule set derives, of every type, scoped and not: some broken by
/// most of the estate (a strict cost-center format), most by a few resources.
pub fn policies() -> Value {
    let required = |id: &str, keys: &[&str], severity: &str| {
        json!({"policy_id": id, "policy_name": id, "policy_type": "required_tags", "rules": {"required_tags": keys, "severity": severity}})
    };
    let allowed = |id: &str, key: &str, values: &[&str]| {
        json!({"policy_id": id, "policy_name": id, "policy_type": "value_validation", "rules": {"tag_key": key, "allowed_values": values, "severity": "medium"}})
    };
    let when = |id: &str, condition: &str, then: Value, severity: &str, grace: u32| {
        json!({"policy_id": id, "policy_name": id, "policy_type": "conditional_requirement",
               "rules": {"if_condition": condition, "then_require": then, "severity": severity, "grace_period_hours": grace}})
    };
    let scoped = |mut p: Value, scope: Value| {
        p["scope"] = scope;
        p
    };
    let list = vec![
        required("owner-required", &["owner"], "high"),
        required("team-required", &["team"], "medium"),
        required("environment-required", &["environment"], "high"),
        required("application-required", &["application"], "low"),
        json!({"policy_id": "owner-email", "policy_name": "owner-email", "policy_type": "required_tags",
               "rules": {"required_tags": ["owner"], "validation": {"owner": {"type": "email"}}, "severity": "high"}}),
        allowed("environment-values", "environment", &["production", "staging", "development", "sandbox", "test"]),
        allowed("data-classification-values", "data-classification", &["public", "internal", "confidential", "restricted", "sensitive"]),
        allowed("backup-values", "backup", &["daily", "hourly", "weekly"]),
        allowed("auto-stop-values", "auto-stop", &["nightly", "weekends", "never"]),
        when("prod-cost-center-format", "tags.environment == 'production'",
             json!([{"tag_key": "cost-center", "validation": {"type": "regex", "pattern": "^[A-Z]{3}-[0-9]{3}$"}}]), "critical", 24),
        when("prod-backup", "tags.environment == 'production'",
             json!([{"tag_key": "backup", "validation": {"type": "enum", "allowed_values": ["daily", "hourly", "weekly"]}}]), "critical", 0),
        when("prod-data-classification", "tags.environment == 'production'", json!(["data-classification"]), "high", 48),
        when("non-prod-auto-stop", "tags.environment != 'production' and tags.environment != 'staging'", json!(["auto-stop"]), "low", 0),
        when("cost-center-has-business-unit", "tags.cost-center != ''", json!(["business-unit"]), "medium", 0),
        when("staging-owner", "tags.environment == 'staging'", json!([{"tag_key": "owner", "validation": {"type": "email"}}]), "medium", 0),
        when("sensitive-stores", "tags.data-classification == 'sensitive'", json!(["backup", "owner"]), "critical", 0),
        scoped(required("aws-compute-project", &["project"], "medium"), json!({"providers": ["aws"], "resource_types": ["ec2:*"]})),
        scoped(required("azure-cost-center", &["cost-center"], "high"), json!({"providers": ["azure"]})),
        scoped(required("gcp-ownership", &["owner", "team"], "high"), json!({"providers": ["gcp"]})),
        json!({"policy_id": "high-cost-governance", "policy_name": "High cost resources", "policy_type": "cost_threshold",
               "rules": {"cost_threshold": {"amount": 500, "currency": "USD", "period": "monthly"},
                         "required_tags": ["business-unit", "project-justification"], "severity": "high"}}),
    ];
    json!({"format_version": 1, "policies": list})
}

/// The evaluator's own work without servers: a [`ComplianceBook`] of every resource as the
/// command side decides it under the rule set (observed, derived), then one sweep of the 20
/// policies through the book — judging, the lifecycle and recording every decision in the book:
/// what the evaluator does per resource before anything reaches the broker. Measured on one thread
/// (`judge_all`) and the evaluator's way (chunks of 10,000 judged on every core), each on a fresh book.
pub struct BookFloor {
    pub build_s: f64,
    pub sweep_1_thread_per_s: f64,
    /// The share of the one-thread sweep spent taking verdicts (the part that runs on every core).
    pub verdict_share: f64,
    pub sweep_all_cores_per_s: f64,
    pub decisions: usize,
    /// Distinct judgements among the sweep's (resources judged alike share one).
    pub judgements: usize,
    /// A second sweep with nothing changed (what a policy edit costs for the untouched resources).
    pub resweep_per_s: f64,
}

pub fn book_floor(resources: &[GeneratedResource], rules: &Value, policies: &[Policy]) -> anyhow::Result<BookFloor> {
    let started = Instant::now();
    let (mut book, ids) = book_of(resources, rules)?;
    let build_s = started.elapsed().as_secs_f64();
    let tenant = TenantId::parse(TENANT)?;
    let now = Utc::now();
    book.restore_policies(&tenant, TenantPolicies::new(1, policies.to_vec()));
    let (mut judging, mut settling, mut decisions) = (Duration::ZERO, Duration::ZERO, 0);
    let mut judgements = std::collections::HashSet::new();
    for chunk in ids.chunks(10_000) {
        let clock = Instant::now();
        let verdicts = book.verdicts(chunk, now);
        judging += clock.elapsed();
        let clock = Instant::now();
        let decided = book.settle(verdicts, now);
        settling += clock.elapsed();
        decisions += decided.len();
        // The book keeps every judgement it shares: their addresses are theirs for the sweep.
        judgements.extend(decided.iter().filter_map(|d| if let Change::Judged(j) = &d.change { Some(std::sync::Arc::as_ptr(j)) } else { None }));
    }
    let judgements = judgements.len();
    let sweep_1_thread_per_s = ids.len() as f64 / (judging + settling).as_secs_f64();
    let verdict_share = judging.as_secs_f64() / (judging + settling).as_secs_f64();
    let started = Instant::now();
    let again = book.judge_all(&ids, now).len();
    let resweep_per_s = ids.len() as f64 / started.elapsed().as_secs_f64();
    anyhow::ensure!(again == 0, "a second sweep with nothing changed decided {again} things");
    drop(book);

    let (mut book, ids) = book_of(resources, rules)?;
    book.restore_policies(&tenant, TenantPolicies::new(1, policies.to_vec()));
    let started = Instant::now();
    let mut parallel = 0;
    for chunk in ids.chunks(10_000) {
        parallel += vtag_compliance::judging::judge(&mut book, chunk, now).len();
    }
    let sweep_all_cores_per_s = ids.len() as f64 / started.elapsed().as_secs_f64();
    anyhow::ensure!(parallel == decisions, "judging on every core decided {parallel} things, on one thread {decisions}");
    Ok(BookFloor { build_s, sweep_1_thread_per_s, verdict_share, sweep_all_cores_per_s, decisions, judgements, resweep_per_s })
}

/// A book of every resource as the command side decides it (observed, then derived under `rules`).
fn book_of(resources: &[GeneratedResource], rules: &Value) -> anyhow::Result<(ComplianceBook, Vec<ResourceId>)> {
    let config = ConfigDocument::from_json(&serde_json::to_vec(rules)?)
        .and_then(|d| d.compile(1))
        .map_err(|e| anyhow::anyhow!("the bench rules do not compile: {e:?}"))?;
    let tenant = TenantId::parse(TENANT)?;
    let now = Utc::now();
    let ctx = |i: usize| CommandContext {
        command_id: Uuid::from_u128(i as u128),
        tenant: tenant.clone(),
        actor: Actor::parse("bench").expect("actor"),
        correlation_id: Uuid::nil(),
        occurred_at: now,
        recorded_at: now,
    };
    let mut book = ComplianceBook::new();
    let mut ids = Vec::with_capacity(resources.len());
    for (i, r) in resources.iter().enumerate() {
        let o = &r.observed;
        let command = ObserveResource {
            provider: Provider::parse(o.provider)?,
            cloud_id: CloudResourceId::parse(&o.resource_id)?,
            description: ResourceDescription::parse(o.account_id.clone(), o.region.clone(), o.resource_type.to_owned(), o.name.clone(), o.metadata.clone())
                .map_err(|(f, e)| anyhow::anyhow!("{f}: {e:?}"))?,
            native_tags: NativeTags::parse(o.native_tags.clone()).map_err(|(k, e)| anyhow::anyhow!("{k:?}: {e:?}"))?,
            observed_at: now,
        };
        let id = command.resource_id(&tenant);
        for e in &decide(&ResourceState::default(), id, &ResourceCommand::Observe(command), &ctx(i), &config)? {
            book.fold(e);
        }
        ids.push(id);
    }
    ids.sort_unstable();
    Ok((book, ids))
}

/// Resources per second of the pure evaluation, one thread, over each resource's canonical tags.
pub fn judge_floor(resources: &[GeneratedResource], policies: &[Policy]) -> f64 {
    let today = Utc::now().date_naive();
    let started = Instant::now();
    let mut findings = 0usize;
    for r in resources {
        let provider = Provider::parse(r.observed.provider).unwrap_or(Provider::Aws);
        let subject = Subject { provider, account: &r.observed.account_id, resource_type: r.observed.resource_type, tags: &r.truth, monthly_cost: None };
        for p in policies {
            findings += evaluate(p, &subject, today).len();
        }
    }
    std::hint::black_box(findings);
    resources.len() as f64 / started.elapsed().as_secs_f64()
}

/// The whole benchmark; `floor_only` stops after the in-process floors (no servers).
pub async fn run(resources: &[GeneratedResource], rules: &Value, probes: usize, timeout: Duration, floor_only: bool) -> anyhow::Result<Value> {
    let compiled = PoliciesDocument::from_json(&serde_json::to_vec(&policies())?)
        .and_then(|d| d.compile())
        .map_err(|e| anyhow::anyhow!("the bench policies do not compile: {e:?}"))?;
    let floors: Vec<f64> = (0..3).map(|_| judge_floor(resources, &compiled)).collect();
    let floor = median(&floors);
    eprintln!("[bench] judge floor: {} resources/s (20 policies, 1 thread)", thousands(floor));
    let book = book_floor(resources, rules, &compiled)?;
    eprintln!(
        "[bench] book floor: built in {:.1}s; sweep {} resources/s on 1 thread, {} on every core ({} decisions, {} distinct judgements; verdicts {:.0}% of one thread's time); unchanged re-sweep {} resources/s (1 thread)",
        book.build_s,
        thousands(book.sweep_1_thread_per_s),
        thousands(book.sweep_all_cores_per_s),
        book.decisions,
        book.judgements,
        100.0 * book.verdict_share,
        thousands(book.resweep_per_s)
    );
    let floors_json = json!({"resources": resources.len(), "judge_floor_per_s": floor, "book_sweep_1_thread_per_s": book.sweep_1_thread_per_s,
                             "book_sweep_all_cores_per_s": book.sweep_all_cores_per_s, "book_verdict_share": book.verdict_share, "book_resweep_per_s": book.resweep_per_s,
                             "book_decisions": book.decisions,
        "book_distinct_judgements": book.judgements, "book_distinct_judgements": book.judgements});
    if floor_only {
        return Ok(floors_json);
    }

    let env = TestEnv::new().await;
    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let mut commands = ChildService::spawn(&env, "command-api", "vtag-command-api", &[("VTAG_COMMAND_API_LISTEN", format!("127.0.0.1:{port}"))])?;
    wait_healthy(&mut commands, &base, Duration::from_secs(120)).await?;
    let projector = ChildService::spawn(&env, "projector", "vtag-projector", &[("VTAG_PROJECTOR_BATCH", String::new())])?;
    let mut db = PgConnection::connect(&env.database_url).await?;
    wait_migrated(&mut db, Duration::from_secs(120)).await?;
    let client = reqwest::Client::new();
    let admin = env.token(TENANT, "governance@bench.test", Role::Admin);

    // 1. The estate, derived under the rule set as it arrives.
    let (_, first) = publish(&client, &base, &admin, reqwest::Method::PUT, "/api/v1/tagging-config", rules).await?;
    wait_job(&mut db, &first, timeout).await?;
    let ingest = observe_all(&client, &base, &admin, resources).await?;
    wait_read_model(&mut db, resources.len() as i64, timeout).await?;
    eprintln!("[bench] {} resources observed in {:.0}s", thousands(resources.len() as f64), ingest.as_secs_f64());

    // Idle before measuring: the projector has folded everything the estate wrote (derived tags
    // and audit rows trail the resource rows).
    let topics = EventTopics::new(env.prefix.clone(), env.partitions);
    wait_projected(&mut db, &env.stack.brokers, &topics.resource_events(), env.partitions, timeout).await?;

    // 2. The evaluator, ready once it answers a one-resource recheck (it rebuilt from the log).
    let started = Instant::now();
    let evaluator = ChildService::spawn(&env, "compliance", "vtag-compliance", &[])?;
    let one: Uuid = sqlx::query_scalar("SELECT id FROM resources LIMIT 1").fetch_one(&mut db).await?;
    let recheck = recheck(&client, &base, &admin, json!({"resource_id": one})).await?;
    wait_compliance_job(&mut db, &recheck, timeout).await?;
    let ready = started.elapsed();
    eprintln!("[bench] evaluator ready (rebuilt from the log) in {:.1}s", ready.as_secs_f64());

    // 3. The sweep: 20 policies at once. CPU seconds per process say where the time goes (two
    //    shared cores: the evaluator's wall time is mostly waiting for the broker and projector).
    let home = std::env::var("VTAG_HOME").unwrap_or_else(|_| ".vtag".into());
    let mut names = vec![("evaluator".to_owned(), evaluator.pid), ("projector".to_owned(), projector.pid), ("command-api".to_owned(), commands.pid)];
    names.extend(procfs::stack_pid(&home, "kafka").map(|p| ("broker".to_owned(), p)));
    let watched = procfs::Watched { names };
    let before = watched.snapshot();
    let requested = Utc::now();
    let clock = Instant::now();
    let (_, job) = publish(&client, &base, &admin, reqwest::Method::PUT, "/api/v1/policies", &policies()).await?;
    let (judged, changed, evaluator_done) = wait_compliance_job(&mut db, &job, timeout).await?;
    let read_model = clock.elapsed();
    let cpu: serde_json::Map<String, Value> = procfs::cpu_delta(&before, &watched.snapshot()).into_iter().map(|(k, v)| (k, json!(v))).collect();
    let evaluator_s = (evaluator_done - requested).num_milliseconds() as f64 / 1000.0;
    let violations: i64 = sqlx::query_scalar("SELECT count(*) FROM violations").fetch_one(&mut db).await?;
    let judgements: i64 = sqlx::query_scalar("SELECT count(*) FROM resource_compliance").fetch_one(&mut db).await?;
    let evaluator_rss = procfs::rss_kib(evaluator.pid).map(|(hwm, _)| hwm as f64 / 1024.0);
    eprintln!(
        "[bench] sweep: {judged} judged, {changed} changed, {violations} violations; evaluator {evaluator_s:.1}s, read model {:.1}s",
        read_model.as_secs_f64()
    );
    let (records, bytes, produce) = raw_append(&env, &topics.compliance_events(), timeout).await?;
    eprintln!("[bench] raw append of the sweep's {records} records ({:.0} MB): {:.1}s", bytes as f64 / 1e6, produce.as_secs_f64());
    let copy = raw_copy_violations(&mut db, violations.max(1) as usize).await?;

    // 4. Latency at idle: a refused value, then a fix.
    let codec = EventCodec::for_compliance(&env.stack.registry_url, topics.compliance_events())?;
    let tail = tail(&env.stack.brokers, &topics.compliance_events(), env.partitions)?;
    let targets: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM resources ORDER BY id LIMIT $1").bind(probes as i64).fetch_all(&mut db).await?;
    let (mut opened, mut resolved) = (Vec::new(), Vec::new());
    for id in &targets {
        for (value, wanted, into) in [("not-an-email", "opened", &mut opened), ("probe@bench.test", "resolved", &mut resolved)] {
            let sent = Utc::now();
            let answer = client
                .put(format!("{base}/api/v1/virtual-tags/{id}:owner"))
                .bearer_auth(&admin)
                .json(&json!({"value": value}))
                .send()
                .await?;
            if !answer.status().is_success() {
                bail!("tagging {id} answered {}", answer.status());
            }
            let at = wait_for(&tail, &codec, *id, wanted, Duration::from_secs(10)).await?;
            into.push((at - sent).num_microseconds().unwrap_or(0) as f64 / 1000.0);
        }
    }
    let pct = |v: &mut Vec<f64>, p: f64| {
        v.sort_by(f64::total_cmp);
        v.get(((v.len() as f64 * p).ceil() as usize).saturating_sub(1)).copied().unwrap_or(f64::NAN)
    };
    let (open_p50, open_p99) = (pct(&mut opened, 0.5), pct(&mut opened, 0.99));
    let (fix_p50, fix_p99) = (pct(&mut resolved, 0.5), pct(&mut resolved, 0.99));

    evaluator.stop(Duration::from_secs(10)).await.ok();
    commands.stop(Duration::from_secs(10)).await.ok();
    projector.stop(Duration::from_secs(10)).await.ok();
    Ok(json!({
        "resources": resources.len(),
        "policies": compiled.len(),
        "judge_floor_per_s": floor,
        "judge_floor_passes": floors,
        "book_sweep_1_thread_per_s": book.sweep_1_thread_per_s,
        "book_sweep_all_cores_per_s": book.sweep_all_cores_per_s,
        "book_verdict_share": book.verdict_share,
        "book_resweep_per_s": book.resweep_per_s,
        "book_decisions": book.decisions,
        "book_distinct_judgements": book.judgements,
        "ingest_s": ingest.as_secs_f64(),
        "evaluator_ready_s": ready.as_secs_f64(),
        "sweep_judged": judged,
        "sweep_changed": changed,
        "violations": violations,
        "judgements": judgements,
        "sweep_evaluator_s": evaluator_s,
        "sweep_evaluator_per_s": judged as f64 / evaluator_s,
        "sweep_evaluator_target_per_s": 100_000.0,
        "sweep_read_model_s": read_model.as_secs_f64(),
        "sweep_cpu_s": cpu,
        "sweep_evaluator_per_cpu_s": judged as f64 / cpu.get("evaluator").and_then(Value::as_f64).unwrap_or(f64::NAN),
        "sweep_read_model_target_s": 120.0,
        "sweep_records": records,
        "sweep_record_bytes": bytes,
        "raw_append_same_records_s": produce.as_secs_f64(),
        "sweep_evaluator_vs_raw_append": produce.as_secs_f64() / evaluator_s,
        "raw_copy_same_violations_s": copy.as_secs_f64(),
        "evaluator_peak_rss_mb": evaluator_rss,
        "latency_probes": targets.len(),
        "violation_opened_p50_ms": open_p50,
        "violation_opened_p99_ms": open_p99,
        "violation_resolved_p50_ms": fix_p50,
        "violation_resolved_p99_ms": fix_p99,
        "latency_target_p99_ms": 1000.0,
    }))
}

pub fn summary(r: &Value) -> Vec<String> {
    let f = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
    let met = |ok: bool| if ok { "met" } else { "MISSED" };
    vec![
        format!("judge floor (pure evaluation, 1 thread)  {:>10} resources/s", thousands(f("judge_floor_per_s"))),
        format!(
            "book floor (evaluator's work, no broker)  {:>10} resources/s on 1 thread, {} on every core; unchanged re-sweep {}/s",
            thousands(f("book_sweep_1_thread_per_s")),
            thousands(f("book_sweep_all_cores_per_s")),
            thousands(f("book_resweep_per_s"))
        ),
        format!("observe {} resources over HTTP        {:>8.1} s", thousands(f("resources")), f("ingest_s")),
        format!("evaluator ready (rebuilt from the log)   {:>8.1} s  peak RSS {:.0} MB", f("evaluator_ready_s"), f("evaluator_peak_rss_mb")),
        format!(
            "SWEEP {} policies: evaluator              {:>8.1} s = {} resources/s (target ≥ 100k: {}; {:.2}× the floor)",
            f("policies"),
            f("sweep_evaluator_s"),
            thousands(f("sweep_evaluator_per_s")),
            met(f("sweep_evaluator_per_s") >= f("sweep_evaluator_target_per_s")),
            f("sweep_evaluator_per_s") / f("judge_floor_per_s")
        ),
        format!(
            "  … in the read model                    {:>8.1} s (target ≤ 120: {}); {} violations, {} judgements",
            f("sweep_read_model_s"),
            met(f("sweep_read_model_s") <= f("sweep_read_model_target_s")),
            thousands(f("violations")),
            thousands(f("judgements"))
        ),
        format!(
            "  evaluator CPU                          {:>8.1} s = {} resources per CPU-second",
            r["sweep_cpu_s"]["evaluator"].as_f64().unwrap_or(f64::NAN),
            thousands(f("sweep_evaluator_per_cpu_s"))
        ),
        format!(
            "  CPU s during the sweep: broker {:.1}, projector {:.1}, postgres {:.1}, machine {:.1} of {:.1} wall",
            r["sweep_cpu_s"]["broker"].as_f64().unwrap_or(f64::NAN),
            r["sweep_cpu_s"]["projector"].as_f64().unwrap_or(f64::NAN),
            r["sweep_cpu_s"]["postgres"].as_f64().unwrap_or(f64::NAN),
            r["sweep_cpu_s"]["machine"].as_f64().unwrap_or(f64::NAN),
            r["sweep_cpu_s"]["wall"].as_f64().unwrap_or(f64::NAN)
        ),
        format!(
            "  raw append of the sweep's own records  {:>8.2} s ({} records, {:.0} MB; evaluator at {:.2}× its speed)",
            f("raw_append_same_records_s"),
            thousands(f("sweep_records")),
            f("sweep_record_bytes") / 1e6,
            f("sweep_evaluator_vs_raw_append")
        ),
        format!("  raw COPY of as many violation rows     {:>8.2} s", f("raw_copy_same_violations_s")),
        format!(
            "TAG CHANGE → ViolationOpened             p50 {:.0} ms, p99 {:.0} ms over {} probes (target p99 ≤ 1000: {})",
            f("violation_opened_p50_ms"),
            f("violation_opened_p99_ms"),
            f("latency_probes"),
            met(f("violation_opened_p99_ms") <= f("latency_target_p99_ms"))
        ),
        format!("fix → ViolationResolved                  p50 {:.0} ms, p99 {:.0} ms", f("violation_resolved_p50_ms"), f("violation_resolved_p99_ms")),
    ]
}

async fn recheck(client: &reqwest::Client, base: &str, token: &str, body: Value) -> anyhow::Result<Uuid> {
    let resp = client.post(format!("{base}/api/v1/compliance/recheck")).bearer_auth(token).json(&body).send().await?;
    let status = resp.status();
    let v: Value = resp.json().await?;
    if status != reqwest::StatusCode::ACCEPTED {
        bail!("recheck answered {status}: {v}");
    }
    v["job_id"].as_str().and_then(|j| Uuid::parse_str(j).ok()).context("job id")
}

/// Waits until every partition of the job is done in the read model: (judged, changed, the
/// evaluator's time of its last marker).
async fn wait_compliance_job(db: &mut PgConnection, job: &Uuid, timeout: Duration) -> anyhow::Result<(i64, i64, DateTime<Utc>)> {
    let started = Instant::now();
    loop {
        let row: Option<(i64, i32, i64, i64, DateTime<Utc>)> = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE done), max(partitions), sum(processed)::int8, sum(changed)::int8, max(updated_at)
               FROM compliance_job_progress WHERE job_id = $1 HAVING count(*) > 0",
        )
        .bind(job)
        .fetch_optional(&mut *db)
        .await?;
        if let Some((done, partitions, processed, changed, at)) = row {
            if done == i64::from(partitions) {
                return Ok((processed, changed, at));
            }
        }
        if started.elapsed() > timeout {
            bail!("compliance job {job} not done after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the Postgres projector's checkpoints reach the end of every partition of `topic`.
async fn wait_projected(db: &mut PgConnection, brokers: &str, topic: &str, partitions: i32, timeout: Duration) -> anyhow::Result<()> {
    let consumer: rdkafka::consumer::BaseConsumer = vtag_eventlog::kafka::assigned_consumer_config(brokers, "vtag-bench-compliance-ends").create()?;
    let mut ends = Vec::new();
    for p in 0..partitions {
        ends.push(consumer.fetch_watermarks(topic, p, Duration::from_secs(10))?.1);
    }
    let started = Instant::now();
    loop {
        let at: Vec<(i32, i64)> =
            sqlx::query_as("SELECT partition, next_offset FROM projector_checkpoints WHERE projector = 'postgres' AND topic = $1")
                .bind(topic)
                .fetch_all(&mut *db)
                .await?;
        let reached = |p: i32, end: i64| end == 0 || at.iter().any(|(q, next)| *q == p && *next >= end);
        if ends.iter().enumerate().all(|(p, end)| reached(p as i32, *end)) {
            return Ok(());
        }
        if started.elapsed() > timeout {
            bail!("the projector did not reach the end of {topic} within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A consumer of every partition of `topic` from its current end.
fn tail(brokers: &str, topic: &str, partitions: i32) -> anyhow::Result<StreamConsumer> {
    let consumer: StreamConsumer = vtag_eventlog::kafka::assigned_consumer_config(brokers, "vtag-bench-compliance-tail").create()?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        let (_, high) = consumer.fetch_watermarks(topic, p, Duration::from_secs(10))?;
        tpl.add_partition_offset(topic, p, Offset::Offset(high))?;
    }
    consumer.assign(&tpl)?;
    Ok(consumer)
}

/// The evaluator's time of the next `opened` / `resolved` transition about `resource`.
async fn wait_for(tail: &StreamConsumer, codec: &EventCodec, resource: Uuid, wanted: &str, timeout: Duration) -> anyhow::Result<DateTime<Utc>> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let m = tokio::time::timeout_at(deadline, tail.recv()).await.with_context(|| format!("no {wanted} record for {resource} within {timeout:?}"))??;
        let payload = m.payload().unwrap_or_default().to_vec();
        let ComplianceLog::Decisions(decisions) = codec.decode_compliance_log(&payload).await? else { continue };
        for d in decisions {
            let hit = match &d.change {
                Change::Transition(Transition::Opened { .. }) => wanted == "opened",
                Change::Transition(Transition::Resolved { .. }) => wanted == "resolved",
                _ => false,
            };
            if hit && d.envelope.aggregate_id.as_uuid() == resource {
                return Ok(d.envelope.recorded_at);
            }
        }
    }
}

/// Every record of the compliance-events topic (the sweep's, and the readiness recheck's marker
/// per partition) appended again, as they are — same partitions, keys and payloads — by one
/// producer with the services' settings to a scratch topic: what the broker takes for the bytes
/// the evaluator wrote. Returns (records, bytes, time until all are acknowledged).
async fn raw_append(env: &TestEnv, topic: &str, timeout: Duration) -> anyhow::Result<(usize, usize, Duration)> {
    let consumer: StreamConsumer = vtag_eventlog::kafka::assigned_consumer_config(&env.stack.brokers, "vtag-bench-compliance-raw").create()?;
    let mut tpl = TopicPartitionList::new();
    let mut ends = Vec::new();
    for p in 0..env.partitions {
        ends.push(consumer.fetch_watermarks(topic, p, Duration::from_secs(10))?.1);
        tpl.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let mut records: Vec<(i32, Vec<u8>, Vec<u8>)> = Vec::new();
    let mut next = vec![0i64; ends.len()];
    let deadline = tokio::time::Instant::now() + timeout;
    while next.iter().zip(&ends).any(|(n, end)| n < end) {
        let m = tokio::time::timeout_at(deadline, consumer.recv()).await.context("reading the sweep's records back")??;
        next[m.partition() as usize] = m.offset() + 1;
        records.push((m.partition(), m.key().unwrap_or_default().to_vec(), m.payload().unwrap_or_default().to_vec()));
    }
    drop(consumer);
    let scratch = EventTopics::new(format!("{}raw.", env.prefix), env.partitions);
    scratch.ensure_created(&env.stack.brokers).await?;
    let target = scratch.compliance_events();
    let producer: rdkafka::producer::FutureProducer = vtag_eventlog::kafka::producer_config(&env.stack.brokers).create()?;
    let bytes = records.iter().map(|(_, k, v)| k.len() + v.len()).sum();
    let started = Instant::now();
    let mut deliveries = Vec::with_capacity(records.len());
    for (partition, key, payload) in &records {
        let record = rdkafka::producer::FutureRecord::to(&target).partition(*partition).key(key.as_slice()).payload(payload.as_slice());
        deliveries.push(producer.send_result(record).map_err(|(e, _)| anyhow::anyhow!("raw append: {e}"))?);
    }
    for d in deliveries {
        d.await.context("raw append cancelled")?.map_err(|(e, _)| anyhow::anyhow!("raw append: {e}"))?;
    }
    Ok((records.len(), bytes, started.elapsed()))
}

/// `n` violation rows by COPY into a temporary copy of `violations` (no index, no conflict check):
/// a lower bound for writing what the sweep found.
async fn raw_copy_violations(db: &mut PgConnection, n: usize) -> anyhow::Result<Duration> {
    sqlx::query("CREATE TEMP TABLE raw_violations (LIKE violations INCLUDING DEFAULTS)").execute(&mut *db).await?;
    let now = Utc::now().to_rfc3339();
    let mut csv = String::with_capacity(n * 220);
    for i in 0..n {
        let id = Uuid::from_u128((i / 3) as u128);
        csv.push_str(&format!(
            "bench,{id},{i},prod-backup,backup,critical,missing,backup is required,set the backup tag,due,{now},{now},,,{now},,,\n"
        ));
    }
    let started = Instant::now();
    let mut copy = db
        .copy_in_raw(
            "COPY raw_violations (tenant, resource_id, opened_version, policy_id, tag_key, severity, problem, message, remediation, stage,
             opened_at, due_at, escalate_to, escalate_at, became_due_at, escalated_at, resolved_at, resolution)
             FROM STDIN WITH (FORMAT csv)",
        )
        .await?;
    copy.send(csv.as_bytes()).await?;
    copy.finish().await?;
    Ok(started.elapsed())
}
