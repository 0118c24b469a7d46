//! `make bench` (graph read model, P5): the graph projector's rebuild rate — from offset 0 until it
//! serves the generation it built — against raw baselines in the same run: plain `UNWIND … MERGE`
//! of the same resources' nodes, 2,000 per statement, and plain `UNWIND … CREATE` of them (the
//! Postgres rebuild of the same log: `vtag_tests::bench::rebuild`).
//!
//! The log is the search bench's (`write_log`): four events per resource, written straight to
//! the log.

use std::time::{Duration, Instant};

use neo4rs::{query, BoltType};
use serde_json::{json, Value};
use vtag_service::read_models;

use crate::bench::search::write_log;
use crate::bench::{median, thousands};
use crate::graph::GraphServer;
use crate::harness::{eventually, TestEnv};

pub struct Args {
    pub resources: usize,
    pub runs: usize,
}

pub async fn run(args: &Args) -> anyhow::Result<Value> {
    let env = TestEnv::new().await;
    let (events, docs) = write_log(&env, args.resources).await?;
    let graph = GraphServer::of(&env);
    graph.store.ensure_schema().await?;

    let mut rebuilds = Vec::new();
    let mut raws = Vec::new();
    let mut creates = Vec::new();
    for run in 0..args.runs {
        // Raw: the same resources as nodes with their properties, plain UNWIND MERGE (the
        // issue's baseline), then plain UNWIND CREATE (the server's write ceiling over Bolt).
        for (verb, times) in [("MERGE", &mut raws), ("CREATE", &mut creates)] {
            let scratch = format!("{}-{}", graph.model, 1_000 + run);
            let clock = Instant::now();
            for chunk in docs.chunks(2_000) {
                let q = format!("UNWIND $rows AS row {verb} (r:Resource {{uid: row.uid}}) SET r.gen = $gen, r.name = row.name, r.team = row.team, r.version = row.version");
                graph.graph.run(query(&q).param("rows", raw_rows(&scratch, chunk)).param("gen", scratch.as_str())).await?;
            }
            times.push(clock.elapsed().as_secs_f64());
            graph.store.drop_generation(&scratch).await?;
        }

        // The projector from offset 0 until it serves the generation it built.
        reset(&graph).await?;
        let clock = Instant::now();
        let projector = env.start_graph_projector();
        eventually(Duration::from_secs(3600), "the graph to be built", || async { graph.serving().await.map(|_| ()) }).await;
        rebuilds.push(clock.elapsed().as_secs_f64());
        projector.stop().await;
        eprintln!("run {run}: rebuild {:.2} s, raw UNWIND MERGE {:.2} s, raw UNWIND CREATE {:.2} s", rebuilds[run], raws[run], creates[run]);
    }
    let built = graph.tag_snapshot().await.len();
    anyhow::ensure!(built == args.resources, "the rebuilt graph holds {built} resources, not {}", args.resources);
    reset(&graph).await?;

    let (rebuild, raw, create) = (median(&rebuilds), median(&raws), median(&creates));
    Ok(json!({
        "resources": args.resources,
        "events": events,
        "runs": args.runs,
        "rebuild_s": rebuilds,
        "raw_merge_s": raws,
        "rebuild_median_s": rebuild,
        "raw_merge_median_s": raw,
        "rebuild_events_per_s": events as f64 / rebuild,
        "rebuild_resources_per_s": args.resources as f64 / rebuild,
        "raw_upserts_per_s": args.resources as f64 / raw,
        "rebuild_vs_raw": raw / rebuild,
        "raw_create_s": creates,
        "raw_create_median_s": create,
        "raw_creates_per_s": args.resources as f64 / create,
        "rebuild_vs_raw_create": create / rebuild,
    }))
}

/// The raw baselines' rows: each resource's uid (in `scratch`), name, team and version.
fn raw_rows(scratch: &str, docs: &[vtag_projectors::search::doc::ResourceDoc]) -> Vec<BoltType> {
    docs.iter()
        .map(|d| {
            let row: std::collections::HashMap<String, BoltType> = [
                ("uid".to_owned(), read_models::graph_uid(scratch, &d.tenant, &["resource", &d.resource_id]).into()),
                ("name".to_owned(), d.resource_name.as_str().into()),
                ("team".to_owned(), d.tags.iter().find(|t| t.key == "team").map(|t| t.value.clone()).into()),
                ("version".to_owned(), (d.version as i64).into()),
            ]
            .into();
            BoltType::from(row)
        })
        .collect()
}

/// Drops every generation and the model node: the next projector builds from offset 0.
async fn reset(graph: &GraphServer) -> anyhow::Result<()> {
    for generation in graph.generations().await {
        graph.store.drop_generation(&generation).await?;
    }
    graph.graph.run(query("MATCH (m:GraphModel {uid: $model}) DETACH DELETE m").param("model", graph.model.as_str())).await?;
    Ok(())
}

pub fn summary(r: &Value) -> Vec<String> {
    let f = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
    vec![
        format!("graph read model at {} resources ({} events), median of {} runs", thousands(f("resources")), thousands(f("events")), r["runs"]),
        format!("  rebuild from offset 0 (projector)   {:>8.2} s = {} events/s, {} resources/s", f("rebuild_median_s"), thousands(f("rebuild_events_per_s")), thousands(f("rebuild_resources_per_s"))),
        format!("  raw UNWIND MERGE of the nodes       {:>8.2} s = {} upserts/s", f("raw_merge_median_s"), thousands(f("raw_upserts_per_s"))),
        format!("  rebuild / raw MERGE                 {:>8.2}×", f("rebuild_vs_raw")),
        format!("  raw UNWIND CREATE of the nodes      {:>8.2} s = {} nodes/s", f("raw_create_median_s"), thousands(f("raw_creates_per_s"))),
        format!("  rebuild / raw CREATE                {:>8.2}×", f("rebuild_vs_raw_create")),
    ]
}
