//! `make bench` (Postgres read model, P5): `vtag replay --read-model postgres` — the rebuild into a
//! shadow schema from offset 0 until it is swapped in (not counting the 2 s before the old one is dropped) — against a raw baseline in the same run: plain
//! `COPY … FROM STDIN` of the rows that rebuild produces (resources, virtual tags, audit) into
//! tables of the same definition, indexes included. The first build by the serving projector (a
//! fresh database) is measured beside them.
//!
//! The log is the search bench's (`write_log`): four events per resource, written straight to
//! the log.

use std::time::{Duration, Instant};

use futures::TryStreamExt;
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};

use crate::bench::search::write_log;
use crate::bench::{median, thousands};
use crate::harness::{eventually, TestEnv};

pub struct Args {
    pub resources: usize,
    pub runs: usize,
}

/// The tables the resource topic fills.
const TABLES: [&str; 3] = ["resources", "virtual_tags", "tag_audit"];

pub async fn run(args: &Args) -> anyhow::Result<Value> {
    let env = TestEnv::new().await;
    let (events, _) = write_log(&env, args.resources).await?;

    // The serving projector's first build, on the test's fresh database.
    let pool = env.pool().await;
    let clock = Instant::now();
    let projector = env.start_projector();
    let topic = env.topic();
    eventually(Duration::from_secs(3600), "Postgres to fold the log", || async {
        (crate::readmodel::folded_of(&pool, &topic).await == events as i64).then_some(())
    })
    .await;
    let first_build = clock.elapsed().as_secs_f64();
    projector.stop().await;
    eprintln!("first build {first_build:.2} s");

    let mut rebuilds = Vec::new();
    let mut copies = Vec::new();
    let mut reads = Vec::new();
    let mut parallel_reads = Vec::new();
    let mut db = PgConnection::connect(&env.database_url).await?;
    let rows = row_counts(&mut db).await?;
    for run in 0..args.runs {
        let rebuilt = vtag_projectors::postgres::rebuild(env.projector_settings(), &|_, _| {}).await?;
        rebuilds.push(rebuilt.swapped_after.as_secs_f64());
        anyhow::ensure!(row_counts(&mut db).await? == rows, "the rebuilt read model holds other rows");
        copies.push(copy_rows(&mut db).await?);
        reads.push(read_log(&env, &topic, events, false).await?);
        parallel_reads.push(read_log(&env, &topic, events, true).await?);
        eprintln!(
            "run {run}: rebuild {:.2} s, raw COPY {:.2} s, raw read of the log {:.2} s ({:.2} s one consumer per partition)",
            rebuilds[run], copies[run], reads[run], parallel_reads[run]
        );
    }
    let (rebuild, copy, read, parallel_read) = (median(&rebuilds), median(&copies), median(&reads), median(&parallel_reads));
    Ok(json!({
        "resources": args.resources,
        "events": events,
        "rows": rows,
        "runs": args.runs,
        "first_build_s": first_build,
        "first_build_events_per_s": events as f64 / first_build,
        "rebuild_s": rebuilds,
        "rebuild_median_s": rebuild,
        "rebuild_events_per_s": events as f64 / rebuild,
        "raw_copy_s": copies,
        "raw_copy_median_s": copy,
        "raw_copy_events_per_s": events as f64 / copy,
        "raw_copy_rows_per_s": rows.iter().sum::<i64>() as f64 / copy,
        "rebuild_vs_raw_copy": copy / rebuild,
        "raw_read_s": reads,
        "raw_read_median_s": read,
        "raw_read_events_per_s": events as f64 / read,
        "raw_parallel_read_s": parallel_reads,
        "raw_parallel_read_median_s": parallel_read,
        "raw_parallel_read_events_per_s": events as f64 / parallel_read,
        "rebuild_vs_raw_read": read / rebuild,
    }))
}

/// Seconds to read the whole topic from the broker and nothing else: with one consumer for every
/// partition (as the projector reads), or one consumer per partition at once.
async fn read_log(env: &TestEnv, topic: &str, events: usize, per_partition: bool) -> anyhow::Result<f64> {
    use rdkafka::consumer::{Consumer, StreamConsumer};
    use rdkafka::{Offset, TopicPartitionList};
    let consumer = |partitions: Vec<i32>| -> anyhow::Result<StreamConsumer> {
        let c: StreamConsumer = vtag_eventlog::kafka::assigned_consumer_config(&env.stack.brokers, "bench-read").create()?;
        let mut tpl = TopicPartitionList::new();
        for p in partitions {
            tpl.add_partition_offset(topic, p, Offset::Beginning)?;
        }
        c.assign(&tpl)?;
        Ok(c)
    };
    let groups: Vec<Vec<i32>> = if per_partition { (0..env.partitions).map(|p| vec![p]).collect() } else { vec![(0..env.partitions).collect()] };
    let ends = vtag_eventlog::ends_of(&env.stack.brokers, &[topic.to_owned()]).await?;
    let clock = Instant::now();
    let mut readers = Vec::new();
    for group in groups {
        let due: i64 = group.iter().map(|p| ends[topic].get(p).copied().unwrap_or(0)).sum();
        let c = consumer(group)?;
        readers.push(tokio::spawn(async move {
            let mut read = 0i64;
            while read < due {
                c.recv().await?;
                read += 1;
            }
            anyhow::Ok(read)
        }));
    }
    let mut total = 0;
    for r in readers {
        total += r.await??;
    }
    anyhow::ensure!(total == events as i64, "read {total} of {events} records");
    Ok(clock.elapsed().as_secs_f64())
}

async fn row_counts(db: &mut PgConnection) -> anyhow::Result<Vec<i64>> {
    let mut counts = Vec::new();
    for table in TABLES {
        counts.push(sqlx::query_scalar(&format!("SELECT count(*) FROM {table}")).fetch_one(&mut *db).await?);
    }
    Ok(counts)
}

/// Seconds to COPY the read model's rows into empty tables of the same definition (indexes
/// included), in one transaction (rolled back). The rows are read out before the clock starts.
async fn copy_rows(db: &mut PgConnection) -> anyhow::Result<f64> {
    let mut dumps = Vec::new();
    for table in TABLES {
        let bytes: Vec<bytes::Bytes> = db.copy_out_raw(&format!("COPY {table} TO STDOUT (FORMAT binary)")).await?.try_collect().await?;
        dumps.push(bytes);
    }
    let mut tx = db.begin().await?;
    sqlx::query("CREATE SCHEMA bench_copy").execute(&mut *tx).await?;
    for table in TABLES {
        sqlx::query(&format!("CREATE TABLE bench_copy.{table} (LIKE {table} INCLUDING ALL)")).execute(&mut *tx).await?;
    }
    let clock = Instant::now();
    for (table, chunks) in TABLES.iter().zip(dumps) {
        let mut copy = tx.copy_in_raw(&format!("COPY bench_copy.{table} FROM STDIN (FORMAT binary)")).await?;
        for chunk in chunks {
            copy.send(chunk).await?;
        }
        copy.finish().await?;
    }
    let seconds = clock.elapsed().as_secs_f64();
    tx.rollback().await?;
    Ok(seconds)
}

pub fn summary(r: &Value) -> Vec<String> {
    let f = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
    vec![
        format!("postgres read model at {} resources ({} events), median of {} runs", thousands(f("resources")), thousands(f("events")), r["runs"]),
        format!("  rebuild into a shadow + swap        {:>8.2} s = {} events/s", f("rebuild_median_s"), thousands(f("rebuild_events_per_s"))),
        format!("  raw COPY of the rows it writes      {:>8.2} s = {} events/s ({} rows/s)", f("raw_copy_median_s"), thousands(f("raw_copy_events_per_s")), thousands(f("raw_copy_rows_per_s"))),
        format!("  rebuild / raw COPY                  {:>8.2}×", f("rebuild_vs_raw_copy")),
        format!("  raw read of the log (1 consumer)    {:>8.2} s = {} events/s", f("raw_read_median_s"), thousands(f("raw_read_events_per_s"))),
        format!("  raw read, 1 consumer per partition  {:>8.2} s = {} events/s", f("raw_parallel_read_median_s"), thousands(f("raw_parallel_read_events_per_s"))),
        format!("  rebuild / raw read                  {:>8.2}×", f("rebuild_vs_raw_read")),
        format!("  first build (serving projector)     {:>8.2} s = {} events/s", f("first_build_s"), thousands(f("first_build_events_per_s"))),
    ]
}
