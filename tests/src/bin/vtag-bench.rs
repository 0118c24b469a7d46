//! `make bench`: ingest N observed resources through the command API (batched) and measure, in the
//! same run, against raw baselines of the same stack:
//!
//!  1. raw produce   — rdkafka FutureProducer (the service's producer settings), N real encoded events
//!  2. raw consume   — those N back from offset 0 (the projector's consumer settings)
//!  3. raw COPY      — the same N rows into a `resources`-shaped table (and + `tag_audit`-shaped rows)
//!  4. end to end    — POST /api/v1/resources/observe (B per request, C in flight) until the Postgres
//!     read model's checkpoints cover every event; plus the HTTP ingest rate alone
//!  5. replay        — a fresh projector on a new, empty database, from offset 0 to the high watermarks
//!  6. RSS           — VmHWM / VmRSS of each service
//!
//! Steps 4–6 run the real binaries (`$VTAG_BIN_DIR/vtag-command-api`, `vtag-projector`) as child
//! processes, one process per service, as deployed. Every run uses a fresh TestEnv (own topics and
//! database). Medians of R runs, all runs, ratios and targets go to stdout; JSON to
//! `$VTAG_HOME/bench/p1-<timestamp>.json`; progress to stderr.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::StreamExt;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{json, Value};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};
use vtag_eventlog::kafka::{assigned_consumer_config, producer_config};
use vtag_eventlog::{partition_for, EventCodec};
use vtag_service::auth::Role;
use vtag_tests::bench::data::{self, Resource};
use vtag_tests::bench::procfs::{self, Watched};
use vtag_tests::bench::services::{free_port, wait_healthy, ChildService};
use vtag_tests::bench::{median, thousands};
use vtag_tests::harness::TestEnv;

const TENANT: &str = "bench";
const MB: f64 = 1024.0;

#[derive(Debug, Clone)]
struct Args {
    resources: usize,
    runs: usize,
    batch: usize,
    concurrency: usize,
    projector_batch: Option<usize>,
    timeout: Duration,
    keep: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: vtag-bench [--resources N (100000)] [--runs R (3)] [--batch B (1000)] [--concurrency C (4)]\n\
         \x20                 [--projector-batch K (binary default)] [--timeout-secs S (600)] [--keep]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        resources: 100_000,
        runs: 3,
        batch: 1000,
        concurrency: 4,
        projector_batch: None,
        timeout: Duration::from_secs(600),
        keep: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut num = |name: &str| -> usize {
            it.next().and_then(|v| v.replace('_', "").parse().ok()).unwrap_or_else(|| {
                eprintln!("{name} needs a positive integer");
                usage()
            })
        };
        match flag.as_str() {
            "--resources" => a.resources = num("--resources"),
            "--runs" => a.runs = num("--runs"),
            "--batch" => a.batch = num("--batch"),
            "--concurrency" => a.concurrency = num("--concurrency"),
            "--projector-batch" => a.projector_batch = Some(num("--projector-batch")),
            "--timeout-secs" => a.timeout = Duration::from_secs(num("--timeout-secs") as u64),
            "--keep" => a.keep = true,
            "-h" | "--help" => usage(),
            other => {
                eprintln!("unknown argument {other}");
                usage()
            }
        }
    }
    if a.resources == 0 || a.runs == 0 || a.batch == 0 || a.concurrency == 0 {
        usage()
    }
    a
}

static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

macro_rules! progress {
    ($($t:tt)*) => {
        eprintln!("[bench {:>7.1}s] {}", START.get_or_init(Instant::now).elapsed().as_secs_f64(), format!($($t)*))
    };
}

/// Everything measured in one run.
#[derive(Debug, Default, Clone)]
struct RunResult {
    raw_produce: f64,
    raw_consume: f64,
    copy_resources: f64,
    copy_full: f64,
    http_ingest: f64,
    e2e: f64,
    replay: f64,
    /// Events not yet in the read model when the last HTTP response arrived.
    lag_at_http_done: i64,
    /// The projector's rate from the last HTTP response to done (ingest finished, it catches up alone).
    catchup_rate: f64,
    /// Replay rate from the first checkpoint to the last (without process start-up).
    replay_steady: f64,
    replay_startup_s: f64,
    cmd_hwm_kib: u64,
    cmd_rss_kib: u64,
    proj_hwm_kib: u64,
    proj_rss_kib: u64,
    replay_hwm_kib: u64,
    replay_rss_kib: u64,
    cpu: Vec<(String, Vec<(String, f64)>)>,
    /// (seconds since first request, events in the log, events in the read model) every 250 ms.
    timeline: Vec<(f64, i64, i64)>,
}

#[tokio::main]
async fn main() {
    START.get_or_init(Instant::now);
    vtag_tests::bench::quiet_logs();
    let args = parse_args();
    if let Err(e) = bench(args).await {
        eprintln!("vtag-bench: FAILED: {e:#}");
        std::process::exit(1);
    }
}

async fn bench(args: Args) -> anyhow::Result<()> {
    let vtag_home = std::env::var("VTAG_HOME").unwrap_or_else(|_| ".vtag".into());
    progress!(
        "{} resources, {} run(s), batch {}, concurrency {}; generating data",
        args.resources,
        args.runs,
        args.batch,
        args.concurrency
    );
    let resources = data::generate(args.resources, 0x7a6_b3c4);
    let bodies = data::request_bodies(&resources, args.batch);
    let body_bytes: usize = bodies.iter().map(Vec::len).sum();
    let resources_csv = data::resources_csv(&resources, TENANT);
    progress!(
        "{} request bodies ({:.1} MB JSON, {:.0} B per resource), COPY data {:.1} MB",
        bodies.len(),
        body_bytes as f64 / 1e6,
        body_bytes as f64 / resources.len() as f64,
        resources_csv.len() as f64 / 1e6
    );

    let mut encoded: Option<Vec<(String, Vec<u8>)>> = None;
    let mut runs = Vec::new();
    let mut partitions = 0;
    for run in 0..args.runs {
        progress!("=== run {}/{} ===", run + 1, args.runs);
        let env = TestEnv::new().await;
        partitions = env.partitions;
        if encoded.is_none() {
            let codec = EventCodec::new(&env.stack.registry_url, env.topic()).context("schema registry settings")?;
            codec.register_schemas().await.context("registering schemas")?;
            let t = Instant::now();
            let e = data::encoded_events(&resources, TENANT, &codec).await?;
            progress!(
                "encoded {} real ResourceObserved events in {:.1}s, {:.0} B avg value",
                e.len(),
                t.elapsed().as_secs_f64(),
                e.iter().map(|(_, v)| v.len()).sum::<usize>() as f64 / e.len() as f64
            );
            encoded = Some(e);
        }
        let result = one_run(&args, &env, &resources, &bodies, &resources_csv, encoded.as_ref().unwrap(), &vtag_home).await;
        if !args.keep {
            cleanup(&env).await;
        }
        runs.push(result.with_context(|| format!("run {}", run + 1))?);
    }
    let avg_event = {
        let e = encoded.as_ref().unwrap();
        e.iter().map(|(_, v)| v.len()).sum::<usize>() as f64 / e.len() as f64
    };
    report(&args, partitions, avg_event, body_bytes, &runs, &vtag_home)
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn watched(vtag_home: &str, services: &[(&str, u32)]) -> Watched {
    let mut names = vec![("bench".to_owned(), std::process::id())];
    for (n, p) in services {
        names.push(((*n).to_owned(), *p));
    }
    for (n, file) in [("tansu", "kafka"), ("registry", "registry")] {
        if let Some(pid) = procfs::stack_pid(vtag_home, file) {
            names.push((n.to_owned(), pid));
        }
    }
    Watched { names }
}

async fn one_run(
    args: &Args,
    env: &TestEnv,
    resources: &[Resource],
    bodies: &[Vec<u8>],
    resources_csv: &str,
    encoded: &[(String, Vec<u8>)],
    vtag_home: &str,
) -> anyhow::Result<RunResult> {
    let n = resources.len();
    let mut r = RunResult::default();
    let brokers = env.stack.brokers.clone();

    // 1. raw produce
    let raw_topic = format!("{}raw", env.prefix);
    create_topic(&brokers, &raw_topic, env.partitions).await?;
    let w = watched(vtag_home, &[]);
    let before = w.snapshot();
    let elapsed = raw_produce(&brokers, &raw_topic, env.partitions, encoded, args.timeout).await?;
    r.cpu.push(("raw produce".into(), procfs::cpu_delta(&before, &w.snapshot())));
    r.raw_produce = rate(encoded.len(), elapsed);
    progress!("raw produce: {} msgs in {:.2}s = {} msgs/s", encoded.len(), elapsed.as_secs_f64(), thousands(r.raw_produce));

    // 2. raw consume
    let before = w.snapshot();
    let elapsed = raw_consume(&brokers, &raw_topic, env.partitions, encoded.len(), args.timeout).await?;
    r.cpu.push(("raw consume".into(), procfs::cpu_delta(&before, &w.snapshot())));
    r.raw_consume = rate(encoded.len(), elapsed);
    progress!("raw consume: {} msgs in {:.2}s = {} msgs/s", encoded.len(), elapsed.as_secs_f64(), thousands(r.raw_consume));

    // 3. raw COPY
    let before = w.snapshot();
    let (copy_res, copy_full) = raw_copy(env, resources, resources_csv).await?;
    r.cpu.push(("raw COPY".into(), procfs::cpu_delta(&before, &w.snapshot())));
    r.copy_resources = rate(n, copy_res);
    r.copy_full = rate(n, copy_full);
    progress!(
        "raw COPY: resources {:.2}s = {} rows/s; resources+audit {:.2}s = {} events/s",
        copy_res.as_secs_f64(),
        thousands(r.copy_resources),
        copy_full.as_secs_f64(),
        thousands(r.copy_full)
    );

    // 4. end to end, services as child processes
    end_to_end(args, env, bodies, n, vtag_home, &mut r).await?;

    // 5. replay from offset 0 into a new database
    replay(args, env, n, vtag_home, &mut r).await?;
    Ok(r)
}

async fn create_topic(brokers: &str, topic: &str, partitions: i32) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new().set("bootstrap.servers", brokers).create()?;
    let t = NewTopic::new(topic, partitions, TopicReplication::Fixed(1)).set("cleanup.policy", "delete");
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for res in admin.create_topics(&[t], &opts).await? {
        match res {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, code)) => bail!("could not create topic {t}: {code:?}"),
        }
    }
    Ok(())
}

/// N records, keyed and partitioned as the command API does, until every one is acknowledged.
async fn raw_produce(
    brokers: &str,
    topic: &str,
    partitions: i32,
    encoded: &[(String, Vec<u8>)],
    timeout: Duration,
) -> anyhow::Result<Duration> {
    let producer: FutureProducer = producer_config(brokers).set("client.id", "vtag-bench-raw").create()?;
    {
        // Connect and learn the topic before the clock starts (the service is long-running too).
        let p = producer.clone();
        let t = topic.to_owned();
        tokio::task::spawn_blocking(move || p.client().fetch_metadata(Some(&t), Duration::from_secs(10)))
            .await?
            .context("producer metadata")?;
    }
    let start = Instant::now();
    let mut deliveries = futures::stream::FuturesUnordered::new();
    for (key, payload) in encoded {
        let p = partition_for(key.as_bytes(), partitions);
        let mut record = FutureRecord::to(topic).partition(p).key(key.as_str()).payload(payload.as_slice());
        loop {
            match producer.send_result(record) {
                Ok(d) => {
                    deliveries.push(d);
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err((e, _)) => bail!("raw produce: {e}"),
            }
        }
    }
    let deadline = tokio::time::Instant::now() + timeout;
    let mut acked = 0usize;
    while acked < encoded.len() {
        match tokio::time::timeout_at(deadline, deliveries.next()).await {
            Err(_) => bail!("raw produce: only {acked} of {} acknowledged within {timeout:?}", encoded.len()),
            Ok(None) => break,
            Ok(Some(Ok(Ok(_)))) => acked += 1,
            Ok(Some(Ok(Err((e, _))))) => bail!("raw produce: delivery failed: {e}"),
            Ok(Some(Err(_))) => bail!("raw produce: delivery cancelled"),
        }
    }
    Ok(start.elapsed())
}

/// Reads `n` records from offset 0 of every partition.
async fn raw_consume(brokers: &str, topic: &str, partitions: i32, n: usize, timeout: Duration) -> anyhow::Result<Duration> {
    let consumer: StreamConsumer = assigned_consumer_config(brokers, "vtag-bench-raw-consume").create()?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    let start = Instant::now();
    consumer.assign(&tpl)?;
    let deadline = tokio::time::Instant::now() + timeout;
    let (mut count, mut bytes) = (0usize, 0usize);
    while count < n {
        match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Err(_) => bail!("raw consume: only {count} of {n} records within {timeout:?}"),
            Ok(Err(e)) => bail!("raw consume: {e}"),
            Ok(Ok(m)) => {
                // Copy out like the projector's source does.
                bytes += m.payload().map_or(0, |p| p.to_vec().len());
                count += 1;
            }
        }
    }
    let elapsed = start.elapsed();
    std::hint::black_box(bytes);
    Ok(elapsed)
}

async fn pg_connect(url: &str) -> anyhow::Result<PgConnection> {
    let opts: PgConnectOptions = url.parse()?;
    Ok(opts.options([("synchronous_commit", "off")]).disable_statement_logging().connect().await?)
}

const RESOURCE_COLUMNS: &str =
    "tenant, id, provider, cloud_resource_id, resource_type, name, account_id, region, metadata, version, first_seen_at, last_changed_at";
const AUDIT_COLUMNS: &str = "event_id, tenant, resource_id, aggregate_version, action, tag_key, old_value, new_value, source, \
     confidence, performed_by, causation_id, correlation_id, occurred_at, recorded_at, log_partition, log_offset";

/// COPY the rows the projector would write: (resources only, resources + audit in one transaction).
/// Tables shaped like the read model's, with the same keys and indexes.
async fn raw_copy(env: &TestEnv, resources: &[Resource], resources_csv: &str) -> anyhow::Result<(Duration, Duration)> {
    let mut conn = pg_connect(&env.database_url).await.context("connecting to the run's database")?;
    for (table, _) in [("bench_copy_resources", ()), ("bench_copy_resources2", ())] {
        sqlx::raw_sql(&format!(
            "CREATE TABLE {table} (
                tenant text NOT NULL, id uuid NOT NULL, provider text NOT NULL, cloud_resource_id text NOT NULL,
                resource_type text NOT NULL, name text NOT NULL, account_id text NOT NULL, region text NOT NULL,
                metadata jsonb NOT NULL DEFAULT '{{}}', version bigint NOT NULL, first_seen_at timestamptz NOT NULL,
                last_changed_at timestamptz NOT NULL, PRIMARY KEY (tenant, id));
             CREATE UNIQUE INDEX {table}_by_cloud_id ON {table} (tenant, cloud_resource_id, provider);"
        ))
        .execute(&mut conn)
        .await?;
    }
    sqlx::raw_sql(
        "CREATE TABLE bench_copy_audit (
            event_id uuid PRIMARY KEY, tenant text NOT NULL, resource_id uuid NOT NULL, aggregate_version bigint NOT NULL,
            action text NOT NULL, tag_key text, old_value text, new_value text, source text, confidence double precision,
            performed_by text NOT NULL, causation_id uuid NOT NULL, correlation_id uuid NOT NULL,
            occurred_at timestamptz NOT NULL, recorded_at timestamptz NOT NULL, log_partition integer NOT NULL,
            log_offset bigint NOT NULL);
         CREATE INDEX bench_copy_audit_by_time ON bench_copy_audit (tenant, recorded_at, event_id);
         CREATE INDEX bench_copy_audit_by_resource ON bench_copy_audit (tenant, resource_id, recorded_at, event_id);",
    )
    .execute(&mut conn)
    .await?;
    let audit_csv = data::audit_csv(resources, TENANT, env.partitions);

    let start = Instant::now();
    {
        let mut tx = conn.begin().await?;
        copy_csv(&mut tx, &format!("COPY bench_copy_resources ({RESOURCE_COLUMNS}) FROM STDIN WITH (FORMAT csv)"), resources_csv)
            .await?;
        tx.commit().await?;
    }
    let copy_res = start.elapsed();

    let start = Instant::now();
    {
        let mut tx = conn.begin().await?;
        copy_csv(&mut tx, &format!("COPY bench_copy_resources2 ({RESOURCE_COLUMNS}) FROM STDIN WITH (FORMAT csv)"), resources_csv)
            .await?;
        copy_csv(&mut tx, &format!("COPY bench_copy_audit ({AUDIT_COLUMNS}) FROM STDIN WITH (FORMAT csv)"), &audit_csv).await?;
        tx.commit().await?;
    }
    let copy_full = start.elapsed();
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM bench_copy_resources").fetch_one(&mut conn).await?;
    if count as usize != resources.len() {
        bail!("COPY stored {count} rows, expected {}", resources.len());
    }
    conn.close().await?;
    Ok((copy_res, copy_full))
}

async fn copy_csv(conn: &mut PgConnection, statement: &str, csv: &str) -> anyhow::Result<()> {
    let mut copy = conn.copy_in_raw(statement).await?;
    for chunk in csv.as_bytes().chunks(1 << 20) {
        copy.send(chunk).await?;
    }
    copy.finish().await?;
    Ok(())
}

/// Sum of the projector's checkpoints for `topic` (0 while its table does not exist yet).
async fn projected(conn: &mut PgConnection, topic: &str) -> i64 {
    sqlx::query_as::<_, (i64,)>(
        "SELECT coalesce(sum(next_offset), 0)::int8 FROM projector_checkpoints WHERE projector = 'postgres' AND topic = $1",
    )
    .bind(topic)
    .fetch_one(conn)
    .await
    .map_or(0, |(s,)| s)
}

fn high_watermarks(consumer: &BaseConsumer, topic: &str, partitions: i32) -> anyhow::Result<i64> {
    let mut total = 0;
    for p in 0..partitions {
        total += consumer.fetch_watermarks(topic, p, Duration::from_secs(10))?.1;
    }
    Ok(total)
}

fn projector_env(args: &Args, database_url: Option<&str>) -> Vec<(&'static str, String)> {
    let mut extra = vec![
        // The binary's own default unless --projector-batch (the harness's 500 is a test setting).
        ("VTAG_PROJECTOR_BATCH", args.projector_batch.map(|b| b.to_string()).unwrap_or_default()),
    ];
    if let Some(url) = database_url {
        extra.push(("VTAG_DATABASE_URL", url.to_owned()));
    }
    extra
}

/// Waits until the projector has migrated its database (so it is past start-up) — or died.
async fn wait_projector_ready(projector: &mut ChildService, conn: &mut PgConnection, timeout: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let ok = sqlx::query("SELECT 1 FROM projector_checkpoints LIMIT 1").execute(&mut *conn).await.is_ok();
        if ok {
            return Ok(());
        }
        if let Some(status) = projector.exited() {
            bail!("projector exited during start-up ({status})");
        }
        if tokio::time::Instant::now() > deadline {
            bail!("projector did not migrate its database within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn end_to_end(args: &Args, env: &TestEnv, bodies: &[Vec<u8>], n: usize, vtag_home: &str, r: &mut RunResult) -> anyhow::Result<()> {
    let topic = env.topic();
    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    progress!("starting vtag-command-api on {base} and vtag-projector (child processes)");
    let mut cmd = ChildService::spawn(env, "command-api", "vtag-command-api", &[("VTAG_COMMAND_API_LISTEN", format!("127.0.0.1:{port}"))])?;
    wait_healthy(&mut cmd, &base, Duration::from_secs(120)).await?;
    let mut proj = ChildService::spawn(env, "projector", "vtag-projector", &projector_env(args, None))?;
    let mut conn = pg_connect(&env.database_url).await?;
    wait_projector_ready(&mut proj, &mut conn, Duration::from_secs(120)).await?;
    // Let it assign its partitions and issue its first fetch.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let token = env.token(TENANT, "collector:bench", Role::Editor);
    let client = reqwest::Client::builder().pool_max_idle_per_host(args.concurrency * 2).build()?;
    let bodies: Vec<Vec<u8>> = bodies.to_vec();
    let w = watched(vtag_home, &[("command-api", cmd.pid), ("projector", proj.pid)]);

    // Timeline sampler: log high watermark vs read model, every 250 ms.
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let sampler = {
        let stop = stop.clone();
        let brokers = env.stack.brokers.clone();
        let topic = topic.clone();
        let url = env.database_url.clone();
        let partitions = env.partitions;
        tokio::spawn(async move {
            let consumer: Arc<BaseConsumer> =
                Arc::new(assigned_consumer_config(&brokers, "vtag-bench-sampler").create().expect("sampler consumer"));
            let mut conn = pg_connect(&url).await.expect("sampler connection");
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let c = consumer.clone();
                let t = topic.clone();
                let hw = tokio::task::spawn_blocking(move || high_watermarks(&c, &t, partitions)).await;
                let rm = projected(&mut conn, &topic).await;
                samples.push((t0.elapsed().as_secs_f64(), hw.ok().and_then(Result::ok).unwrap_or(-1), rm));
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            samples
        })
    };

    let before = w.snapshot();
    let start = Instant::now();
    progress!("ingesting {n} resources: {} requests, {} in flight", bodies.len(), args.concurrency);
    let deadline = tokio::time::Instant::now() + args.timeout;
    let results: Vec<anyhow::Result<usize>> = futures::stream::iter(bodies)
        .map(|body| {
            let req = client
                .post(format!("{base}/api/v1/resources/observe"))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .timeout(args.timeout)
                .body(body);
            async move {
                let resp = req.send().await.context("observe request")?;
                let status = resp.status();
                let bytes = resp.bytes().await.context("observe response")?;
                if !status.is_success() {
                    bail!("observe answered {status}: {}", String::from_utf8_lossy(&bytes[..bytes.len().min(500)]));
                }
                let v: Value = serde_json::from_slice(&bytes).context("observe response json")?;
                Ok(v["results"].as_array().map_or(0, Vec::len))
            }
        })
        .buffer_unordered(args.concurrency)
        .collect::<Vec<_>>()
        .await;
    let http_done = start.elapsed();
    let mut answered = 0;
    for res in results {
        answered += res?;
    }
    if answered != n {
        bail!("the command API answered for {answered} resources, expected {n}");
    }
    r.http_ingest = rate(n, http_done);
    let mut rm = projected(&mut conn, &topic).await;
    r.lag_at_http_done = n as i64 - rm;
    progress!(
        "HTTP ingest done in {:.2}s = {} resources/s; read model at {rm} ({} behind)",
        http_done.as_secs_f64(),
        thousands(r.http_ingest),
        r.lag_at_http_done
    );

    // Each new resource records exactly one event; the log's high watermarks say how many there are.
    let hw = {
        let brokers = env.stack.brokers.clone();
        let topic = topic.clone();
        let partitions = env.partitions;
        tokio::task::spawn_blocking(move || {
            let c: BaseConsumer = assigned_consumer_config(&brokers, "vtag-bench-watermarks").create()?;
            high_watermarks(&c, &topic, partitions)
        })
        .await??
    };
    if hw != n as i64 {
        progress!("warning: the log holds {hw} events for {n} resources");
    }
    let target = hw.max(n as i64);
    while rm < target {
        if tokio::time::Instant::now() > deadline {
            bail!("end to end: the read model reached {rm} of {target} events within {:?}", args.timeout);
        }
        if let Some(status) = proj.exited() {
            bail!("the projector exited ({status}) at {rm} of {target} events");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        rm = projected(&mut conn, &topic).await;
    }
    let done = start.elapsed();
    r.cpu.push(("end to end".into(), procfs::cpu_delta(&before, &w.snapshot())));
    r.e2e = rate(n, done);
    let tail = (done - http_done).as_secs_f64();
    r.catchup_rate = if tail > 0.05 { r.lag_at_http_done as f64 / tail } else { f64::NAN };
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM resources").fetch_one(&mut conn).await?;
    if count as usize != n {
        bail!("the read model holds {count} resources, expected {n}");
    }
    progress!("end to end: {n} in read model after {:.2}s = {} events/s", done.as_secs_f64(), thousands(r.e2e));

    stop.store(true, Ordering::Relaxed);
    r.timeline = sampler.await.unwrap_or_default();
    (r.cmd_hwm_kib, r.cmd_rss_kib) = procfs::rss_kib(cmd.pid).unwrap_or_default();
    (r.proj_hwm_kib, r.proj_rss_kib) = procfs::rss_kib(proj.pid).unwrap_or_default();
    progress!(
        "RSS command-api peak {:.0} MB (now {:.0}), projector peak {:.0} MB (now {:.0})",
        r.cmd_hwm_kib as f64 / MB,
        r.cmd_rss_kib as f64 / MB,
        r.proj_hwm_kib as f64 / MB,
        r.proj_rss_kib as f64 / MB
    );
    conn.close().await.ok();
    proj.stop(Duration::from_secs(20)).await?;
    cmd.stop(Duration::from_secs(20)).await?;
    Ok(())
}

fn replay_database(env: &TestEnv) -> (String, String) {
    let (base, name) = env.database_url.rsplit_once('/').expect("database url ends in /<db>");
    let name = format!("{name}_replay");
    (name.clone(), format!("{base}/{name}"))
}

async fn replay(args: &Args, env: &TestEnv, n: usize, vtag_home: &str, r: &mut RunResult) -> anyhow::Result<()> {
    let topic = env.topic();
    let (name, url) = replay_database(env);
    let mut admin = pg_connect(&env.stack.pg_admin_url).await.context("connecting as admin")?;
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.context("creating the replay database")?;
    admin.close().await.ok();
    let mut conn = pg_connect(&url).await?;

    progress!("replay: fresh vtag-projector on empty database {name}, from offset 0");
    let start = Instant::now();
    let mut proj = ChildService::spawn(env, "projector", "vtag-projector", &projector_env(args, Some(&url)))?;
    let w = watched(vtag_home, &[("projector", proj.pid)]);
    // The process is brand new: count all of its CPU time.
    let mut before = w.snapshot();
    for (name, v) in before.named.iter_mut() {
        if name == "projector" {
            *v = 0.0;
        }
    }
    let deadline = tokio::time::Instant::now() + args.timeout;
    let mut first: Option<(Duration, i64)> = None;
    let mut rm = 0;
    while rm < n as i64 {
        if tokio::time::Instant::now() > deadline {
            bail!("replay: reached {rm} of {n} events within {:?}", args.timeout);
        }
        if let Some(status) = proj.exited() {
            bail!("the replay projector exited ({status}) at {rm} of {n} events");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        rm = projected(&mut conn, &topic).await;
        if rm > 0 && first.is_none() {
            first = Some((start.elapsed(), rm));
        }
    }
    let done = start.elapsed();
    r.cpu.push(("replay".into(), procfs::cpu_delta(&before, &w.snapshot())));
    r.replay = rate(n, done);
    if let Some((t, at)) = first {
        r.replay_startup_s = t.as_secs_f64();
        let span = (done - t).as_secs_f64();
        r.replay_steady = if span > 0.05 { (n as i64 - at) as f64 / span } else { f64::NAN };
    }
    (r.replay_hwm_kib, r.replay_rss_kib) = procfs::rss_kib(proj.pid).unwrap_or_default();
    progress!(
        "replay: {n} events in {:.2}s = {} events/s (first checkpoint after {:.2}s; {} events/s after it); RSS peak {:.0} MB",
        done.as_secs_f64(),
        thousands(r.replay),
        r.replay_startup_s,
        thousands(r.replay_steady),
        r.replay_hwm_kib as f64 / MB
    );
    conn.close().await.ok();
    proj.stop(Duration::from_secs(20)).await?;
    Ok(())
}

/// Drops the run's databases (best effort; `--keep` skips this). Topics stay: see below.
async fn cleanup(env: &TestEnv) {
    let db = env.database_url.rsplit_once('/').map(|(_, d)| d.to_owned()).unwrap_or_default();
    let (replay_db, _) = replay_database(env);
    match pg_connect(&env.stack.pg_admin_url).await {
        Ok(mut admin) => {
            for name in [db, replay_db] {
                if let Err(e) = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin).await {
                    eprintln!("[bench] warning: could not drop database {name}: {e}");
                }
            }
            admin.close().await.ok();
        }
        Err(e) => eprintln!("[bench] warning: cleanup could not connect to Postgres: {e}"),
    }
    // Topics are NOT deleted: on tansu 0.6 (sqlite engine) one DeleteTopics request deletes every
    // topic of the cluster (its topic_delete_by.sql filters on the cluster only; topitions, records
    // and watermarks follow by ON DELETE CASCADE), which would destroy everyone's logs on the shared
    // broker. The run's topics stay (a unique prefix; a few MB per 100k events).
}

// ------------------------------------------------------------------------------------ report ----

struct Row {
    key: &'static str,
    label: &'static str,
    unit: &'static str,
    values: Vec<f64>,
}

fn report(args: &Args, partitions: i32, avg_event: f64, body_bytes: usize, runs: &[RunResult], vtag_home: &str) -> anyhow::Result<()> {
    let col = |f: &dyn Fn(&RunResult) -> f64| runs.iter().map(f).collect::<Vec<f64>>();
    let kib_mb = |k: u64| k as f64 / MB;
    let rows = vec![
        Row { key: "raw_produce", label: "raw produce (rdkafka, service producer cfg)", unit: "msg/s", values: col(&|r| r.raw_produce) },
        Row { key: "raw_consume", label: "raw consume from offset 0 (rdkafka)", unit: "msg/s", values: col(&|r| r.raw_consume) },
        Row { key: "copy_resources", label: "raw COPY -> resources-shaped table", unit: "rows/s", values: col(&|r| r.copy_resources) },
        Row { key: "copy_full", label: "raw COPY -> resources + tag_audit rows", unit: "ev/s", values: col(&|r| r.copy_full) },
        Row { key: "http_ingest", label: "HTTP ingest (until last response)", unit: "res/s", values: col(&|r| r.http_ingest) },
        Row { key: "e2e", label: "END TO END (first request -> read model)", unit: "ev/s", values: col(&|r| r.e2e) },
        Row { key: "catchup", label: "  projector catch-up after last response", unit: "ev/s", values: col(&|r| r.catchup_rate) },
        Row { key: "lag_at_http_done", label: "  read-model lag at last response", unit: "events", values: col(&|r| r.lag_at_http_done as f64) },
        Row { key: "replay", label: "PROJECTOR REPLAY from offset 0 (incl. start)", unit: "ev/s", values: col(&|r| r.replay) },
        Row { key: "replay_steady", label: "  replay after first checkpoint", unit: "ev/s", values: col(&|r| r.replay_steady) },
        Row { key: "cmd_hwm_mb", label: "RSS command-api peak (VmHWM)", unit: "MB", values: col(&|r| kib_mb(r.cmd_hwm_kib)) },
        Row { key: "cmd_rss_mb", label: "RSS command-api after ingest (VmRSS)", unit: "MB", values: col(&|r| kib_mb(r.cmd_rss_kib)) },
        Row { key: "proj_hwm_mb", label: "RSS projector (live) peak", unit: "MB", values: col(&|r| kib_mb(r.proj_hwm_kib)) },
        Row { key: "proj_rss_mb", label: "RSS projector (live) after ingest", unit: "MB", values: col(&|r| kib_mb(r.proj_rss_kib)) },
        Row { key: "replay_hwm_mb", label: "RSS projector (replay) peak", unit: "MB", values: col(&|r| kib_mb(r.replay_hwm_kib)) },
    ];
    let ratio = |f: &dyn Fn(&RunResult) -> f64| median(&col(f));
    let e2e_vs_produce = ratio(&|r| r.e2e / r.raw_produce);
    let replay_vs_consume = ratio(&|r| r.replay / r.raw_consume);
    let replay_vs_copy = ratio(&|r| r.replay / r.copy_resources);
    let replay_vs_copy_full = ratio(&|r| r.replay / r.copy_full);
    let http_vs_produce = ratio(&|r| r.http_ingest / r.raw_produce);
    let med = |key: &str| rows.iter().find(|r| r.key == key).map_or(f64::NAN, |r| median(&r.values));
    let (e2e, produce, replay) = (med("e2e"), med("raw_produce"), med("replay"));
    let max_rss = ["cmd_hwm_mb", "proj_hwm_mb", "replay_hwm_mb"].iter().map(|k| med(k)).fold(0.0, f64::max);
    let broker_allows_20k = produce * 0.5 >= 20_000.0;
    let pass = |ok: bool| if ok { "PASS" } else { "MISS" };

    println!();
    println!(
        "vtag-bench: {} resources x {} run(s) | batch {} | concurrency {} | {} partitions | projector batch {} | event {:.0} B Avro, {:.0} B JSON/resource",
        thousands(args.resources as f64),
        runs.len(),
        args.batch,
        args.concurrency,
        partitions,
        args.projector_batch.map_or("default (5000)".to_owned(), |b| b.to_string()),
        avg_event,
        body_bytes as f64 / args.resources as f64,
    );
    println!("services: real binaries as child processes (one process each); baselines in the same run, same stack");
    println!("{:<46} {:>12} {:>7}   runs", "measurement", "median", "unit");
    for row in &rows {
        let all: Vec<String> = row.values.iter().map(|v| if row.unit == "MB" { format!("{v:.0}") } else { thousands(*v) }).collect();
        let m = median(&row.values);
        let m = if row.unit == "MB" { format!("{m:.0}") } else { thousands(m) };
        println!("{:<46} {:>12} {:>7}   {}", row.label, m, row.unit, all.join(" / "));
    }
    println!("ratios (median of per-run ratios):");
    println!("  e2e / raw produce            {:>6.1}%   target >= 50%            {}", e2e_vs_produce * 100.0, pass(e2e_vs_produce >= 0.5));
    println!(
        "  e2e absolute                 {:>7}   target >= 20,000 ev/s    {}",
        thousands(e2e),
        if broker_allows_20k {
            pass(e2e >= 20_000.0).to_owned()
        } else {
            format!("n/a: broker allows only {} (50% of raw produce)", thousands(produce * 0.5))
        }
    );
    println!("  HTTP ingest / raw produce    {:>6.1}%", http_vs_produce * 100.0);
    println!("  replay / raw consume         {:>6.1}%", replay_vs_consume * 100.0);
    println!("  replay / COPY resources      {:>6.1}%   (replay / COPY resources+audit {:.1}%)", replay_vs_copy * 100.0, replay_vs_copy_full * 100.0);
    println!("  replay absolute              {:>7}   target >= 50,000 ev/s    {}", thousands(replay), pass(replay >= 50_000.0));
    println!("  max service RSS peak         {:>5.0} MB   target <= 200 MB each     {}", max_rss, pass(max_rss <= 200.0));

    // CPU seconds per phase, mean over runs.
    let mut phases: Vec<String> = Vec::new();
    let mut sums: HashMap<(String, String), f64> = HashMap::new();
    let mut procs: Vec<String> = Vec::new();
    for r in runs {
        for (phase, deltas) in &r.cpu {
            if !phases.contains(phase) {
                phases.push(phase.clone());
            }
            for (p, v) in deltas {
                if !procs.contains(p) {
                    procs.push(p.clone());
                }
                *sums.entry((phase.clone(), p.clone())).or_default() += v / runs.len() as f64;
            }
        }
    }
    println!("CPU seconds per phase (mean of runs; 2 cores => at most 2 s per wall second):");
    print!("  {:<12}", "phase");
    for p in &procs {
        print!(" {:>11}", p);
    }
    println!();
    for phase in &phases {
        print!("  {:<12}", phase);
        for p in &procs {
            match sums.get(&(phase.clone(), p.clone())) {
                Some(v) => print!(" {:>11.2}", v),
                None => print!(" {:>11}", "-"),
            }
        }
        println!();
    }

    // JSON
    let now = chrono::Utc::now();
    let dir = format!("{vtag_home}/bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {dir}"))?;
    let path = format!("{dir}/p1-{}.json", now.format("%Y%m%dT%H%M%SZ"));
    let measurements: serde_json::Map<String, Value> = rows
        .iter()
        .map(|r| (r.key.to_owned(), json!({"unit": r.unit, "median": num(median(&r.values)), "runs": r.values.iter().map(|v| num(*v)).collect::<Vec<_>>()})))
        .collect();
    let runs_json: Vec<Value> = runs
        .iter()
        .map(|r| {
            json!({
                "cpu_seconds": r.cpu.iter().map(|(phase, d)| (phase.clone(), Value::Object(d.iter().map(|(p, v)| (p.clone(), json!(v))).collect()))).collect::<serde_json::Map<String, Value>>(),
                "timeline": r.timeline.iter().map(|(t, log, rm)| json!([t, log, rm])).collect::<Vec<_>>(),
                "replay_startup_s": r.replay_startup_s,
            })
        })
        .collect();
    let git = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let out = json!({
        "bench": "p1",
        "at": now.to_rfc3339(),
        "git": git,
        "params": {
            "resources": args.resources, "runs": runs.len(), "batch": args.batch, "concurrency": args.concurrency,
            "partitions": partitions, "projector_batch": args.projector_batch, "event_bytes_avg": avg_event,
            "json_bytes_per_resource": body_bytes as f64 / args.resources as f64,
            "services": "child processes",
        },
        "measurements": measurements,
        "ratios": {
            "e2e_over_raw_produce": num(e2e_vs_produce),
            "http_over_raw_produce": num(http_vs_produce),
            "replay_over_raw_consume": num(replay_vs_consume),
            "replay_over_copy_resources": num(replay_vs_copy),
            "replay_over_copy_full": num(replay_vs_copy_full),
        },
        "targets": {
            "e2e_ge_50pct_raw_produce": e2e_vs_produce >= 0.5,
            "e2e_ge_20k": if broker_allows_20k { json!(e2e >= 20_000.0) } else { json!("n/a (broker)") },
            "replay_ge_50k": replay >= 50_000.0,
            "rss_le_200mb": max_rss <= 200.0,
        },
        "runs": runs_json,
    });
    std::fs::write(&path, serde_json::to_vec_pretty(&out)?).with_context(|| format!("writing {path}"))?;
    println!("results: {path}");
    Ok(())
}

fn num(x: f64) -> Value {
    if x.is_finite() {
        json!(x)
    } else {
        Value::Null
    }
}

