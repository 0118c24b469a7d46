//! `make bench` (search read model, P5): the search projector's rebuild rate — from offset 0 to
//! the alias served — against a raw baseline in the same run: plain `_bulk` of the same final
//! documents into an index of the same mapping. Then search latency on the built index.
//!
//! The log is written directly (encoded events, the services' producer settings), not through the
//! command API, so the figure is the projector's and the search server's, not the writers'.
//! Each resource has four events: observed, two tags applied, its monthly cost.

use std::time::{Duration, Instant};

use chrono::Utc;
use rdkafka::producer::{FutureProducer, FutureRecord};
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;
use vtag_domain::resource::*;
use vtag_domain::*;
use vtag_eventlog::{partition_for, EventCodec, EventTopics};
use vtag_projectors::search::doc::ResourceDoc;

use crate::bench::{median, thousands};
use crate::harness::{eventually, TestEnv};
use crate::search::SearchServer;

pub struct Args {
    pub resources: usize,
    pub runs: usize,
    pub queries: usize,
    /// Only the search latency: the documents bulk-loaded (no log, no rebuild).
    pub latency_only: bool,
}

const TEAMS: [&str; 8] = ["payments", "web", "data", "platform", "ml", "search", "identity", "billing"];
const ENVS: [&str; 3] = ["production", "staging", "development"];

fn events_of(i: usize, tenant: &TenantId) -> Vec<Recorded<ResourceEvent>> {
    let cloud = CloudResourceId::parse(&format!("arn:aws:ec2:eu-west-1:1234567890{:02}:instance/i-{i:010}", i % 40)).unwrap();
    let id = ResourceId::derive(tenant, Provider::Aws, &cloud);
    let observed = ResourceEvent::ResourceObserved(ResourceObserved {
        provider: Provider::Aws,
        cloud_id: cloud,
        description: ResourceDescription {
            account: format!("1234567890{:02}", i % 40),
            region: ["eu-west-1", "us-east-1", "ap-south-1"][i % 3].into(),
            resource_type: ["ec2:instance", "rds:db", "s3:bucket", "lambda:function"][i % 4].into(),
            name: format!("{}-{}-{i:07}", TEAMS[i % TEAMS.len()], ENVS[i % ENVS.len()]),
            metadata: Default::default(),
        },
        native_tags: [("Team".to_owned(), TEAMS[i % TEAMS.len()].to_uppercase())].into(),
    });
    let tag = |key: &str, value: &str| {
        ResourceEvent::VirtualTagApplied(VirtualTagApplied {
            key: TagKey::parse(key).unwrap(),
            value: TagValue::parse(value).unwrap(),
            source: TagSource::Manual,
            confidence: Confidence::CERTAIN,
            previous: None,
        })
    };
    let cost = ResourceEvent::MonthlyCostChanged(MonthlyCostChanged {
        cents: (i as i64 * 37) % 100_000,
        currency: "USD".into(),
        as_of: Utc::now().date_naive(),
    });
    let events = [observed, tag("team", TEAMS[i % TEAMS.len()]), tag("environment", ENVS[i % ENVS.len()]), cost];
    let now = Utc::now();
    events
        .into_iter()
        .enumerate()
        .map(|(v, event)| Recorded {
            envelope: EventEnvelope {
                event_id: Uuid::now_v7(),
                tenant: tenant.clone(),
                aggregate_id: id,
                aggregate_version: v as u64 + 1,
                actor: Actor::parse("bench@vtag.local").unwrap(),
                causation_id: Uuid::nil(),
                correlation_id: Uuid::nil(),
                occurred_at: now,
                recorded_at: now,
            },
            event,
        })
        .collect()
}

/// Writes `resources` × 4 events to the test's resource topic (straight to the log, with the
/// services' producer settings) and returns how many, with each resource's final document.
pub async fn write_log(env: &TestEnv, resources: usize) -> anyhow::Result<(usize, Vec<ResourceDoc>)> {
    let topics = EventTopics::new(env.prefix.clone(), env.partitions);
    topics.ensure_created(&env.stack.brokers).await?;
    let topic = topics.resource_events();
    let tenant = TenantId::parse(TENANT).unwrap();
    let codec = EventCodec::new(&env.stack.registry_url, topic.clone())?;
    codec.register_schemas().await?;
    let producer: FutureProducer = vtag_eventlog::kafka::producer_config(&env.stack.brokers).create()?;
    let mut docs = Vec::with_capacity(resources);
    let mut deliveries = Vec::new();
    let started = Instant::now();
    for i in 0..resources {
        let events = events_of(i, &tenant);
        let id = events[0].envelope.aggregate_id.to_string();
        let mut doc = ResourceDoc::new(tenant.as_str(), id.clone());
        for e in &events {
            doc.apply(e);
            let payload = codec.encode(e).await?;
            let partition = partition_for(id.as_bytes(), env.partitions);
            let record = FutureRecord::to(&topic).partition(partition).key(&id).payload(&payload);
            deliveries.push(producer.send_result(record).map_err(|(e, _)| e)?);
        }
        docs.push(doc);
        if deliveries.len() >= 50_000 {
            for d in deliveries.drain(..) {
                d.await?.map_err(|(e, _)| e)?;
            }
        }
    }
    for d in deliveries {
        d.await?.map_err(|(e, _)| e)?;
    }
    let events = resources * 4;
    eprintln!("wrote {events} events in {:.1} s", started.elapsed().as_secs_f64());
    Ok((events, docs))
}

/// The tenant of the written log.
pub const TENANT: &str = "bench";

pub async fn run(args: &Args) -> anyhow::Result<Value> {
    let env = TestEnv::new().await;
    let (events, docs) = write_log(&env, args.resources).await?;

    let search = SearchServer::of(&env);
    let mut rebuilds = Vec::new();
    let mut raws = Vec::new();
    for run in 0..args.runs {
        // Raw: the final documents, plain _bulk, 2,000 per request, into the projector's mapping.
        let scratch = format!("{}-raw-{run}", search.alias);
        let (status, body) = search.call(Method::PUT, &format!("/{scratch}"), Some(vtag_projectors::search::index::mapping())).await;
        anyhow::ensure!(status == 200, "creating {scratch}: {body}");
        let clock = Instant::now();
        for chunk in docs.chunks(2_000) {
            let mut nd = String::new();
            for d in chunk {
                nd.push_str(&json!({ "index": { "_index": scratch, "_id": d.resource_id } }).to_string());
                nd.push('\n');
                nd.push_str(&serde_json::to_string(d)?);
                nd.push('\n');
            }
            bulk(&search.url, nd).await?;
        }
        raws.push(clock.elapsed().as_secs_f64());
        search.call(Method::DELETE, &format!("/{scratch}"), None).await;

        // The projector from offset 0 until it serves the generation it built.
        drop_generations(&search).await;
        let clock = Instant::now();
        let projector = env.start_search_projector_with(env.search_settings());
        eventually(Duration::from_secs(3600), "the search index to be built", || async { search.serving().await.map(|_| ()) }).await;
        rebuilds.push(clock.elapsed().as_secs_f64());
        projector.stop().await;
        eprintln!("run {run}: rebuild {:.2} s, raw _bulk {:.2} s", rebuilds[run], raws[run]);
    }
    let built = search.tag_snapshot().await.len();
    anyhow::ensure!(built == args.resources, "the rebuilt index holds {built} resources, not {}", args.resources);

    let (p50, p99) = search_latency(&search, &search.alias, args.queries).await?;
    drop_generations(&search).await;

    let (rebuild, raw) = (median(&rebuilds), median(&raws));
    Ok(json!({
        "resources": args.resources,
        "events": events,
        "runs": args.runs,
        "rebuild_s": rebuilds,
        "raw_bulk_s": raws,
        "rebuild_median_s": rebuild,
        "raw_bulk_median_s": raw,
        "rebuild_events_per_s": events as f64 / rebuild,
        "rebuild_docs_per_s": args.resources as f64 / rebuild,
        "raw_bulk_docs_per_s": args.resources as f64 / raw,
        "rebuild_vs_raw": raw / rebuild,
        "search_queries": args.queries,
        "search_p50_ms": p50,
        "search_p99_ms": p99,
    }))
}

/// Search latency alone, at sizes a rebuild through this broker would take too long to reach: the
/// final documents (no log) bulk-loaded into an index of the projector's mapping, then the search
/// API's query bodies.
pub async fn latency_only(args: &Args) -> anyhow::Result<Value> {
    let env = TestEnv::new().await;
    let tenant = TenantId::parse(TENANT).unwrap();
    let search = SearchServer::of(&env);
    let index = format!("{}-latency", search.alias);
    let (status, body) = search.call(Method::PUT, &format!("/{index}"), Some(vtag_projectors::search::index::mapping())).await;
    anyhow::ensure!(status == 200, "creating {index}: {body}");
    let clock = Instant::now();
    for from in (0..args.resources).step_by(2_000) {
        let mut nd = String::new();
        for i in from..(from + 2_000).min(args.resources) {
            let events = events_of(i, &tenant);
            let mut d = ResourceDoc::new(tenant.as_str(), events[0].envelope.aggregate_id.to_string());
            events.iter().for_each(|e| {
                d.apply(e);
            });
            nd.push_str(&json!({ "index": { "_index": index, "_id": d.resource_id } }).to_string());
            nd.push('\n');
            nd.push_str(&serde_json::to_string(&d)?);
            nd.push('\n');
        }
        bulk(&search.url, nd).await?;
    }
    let loaded = clock.elapsed().as_secs_f64();
    eprintln!("loaded {} documents in {loaded:.1} s", args.resources);
    let (p50, p99) = search_latency(&search, &index, args.queries).await?;
    search.call(Method::DELETE, &format!("/{index}"), None).await;
    Ok(json!({
        "resources": args.resources,
        "raw_bulk_s": loaded,
        "raw_bulk_docs_per_s": args.resources as f64 / loaded,
        "search_queries": args.queries,
        "search_p50_ms": p50,
        "search_p99_ms": p99,
    }))
}

/// p50 and p99 (ms) of `queries` searches on `index` with the search API's own query bodies (text,
/// tag, missing tag + provider, tag + type; each with the six facets).
async fn search_latency(search: &SearchServer, index: &str, queries: usize) -> anyhow::Result<(f64, f64)> {
    let tenant = TenantId::parse(TENANT).unwrap();
    let mut latencies = Vec::with_capacity(queries);
    let http = reqwest::Client::new();
    for q in 0..queries {
        let pairs: Vec<(String, String)> = match q % 4 {
            0 => vec![("q".into(), TEAMS[q % TEAMS.len()].into())],
            1 => vec![("tag".into(), format!("team:{}", TEAMS[q % TEAMS.len()]))],
            2 => vec![("missing".into(), "owner".into()), ("provider".into(), "aws".into())],
            _ => vec![("tag".into(), format!("environment:{}", ENVS[q % 3])), ("type".into(), "rds:db".into())],
        };
        let body = vtag_query_api::search::SearchQuery::parse(&pairs).map_err(|p| anyhow::anyhow!("{p:?}"))?.body(tenant.as_str());
        let clock = Instant::now();
        let r = http.post(format!("{}/{index}/_search", search.url)).json(&body).send().await?;
        anyhow::ensure!(r.status().is_success(), "search failed: {}", r.text().await?);
        r.bytes().await?;
        latencies.push(clock.elapsed().as_secs_f64() * 1000.0);
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| latencies[((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1];
    Ok((pct(0.50), pct(0.99)))
}

async fn bulk(url: &str, body: String) -> anyhow::Result<()> {
    let r = reqwest::Client::new()
        .post(format!("{url}/_bulk"))
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await?;
    let answer: Value = r.json().await?;
    anyhow::ensure!(answer["errors"] == json!(false), "raw _bulk failed: {answer}");
    Ok(())
}

/// Deletes the served generation and its checkpoints (a fresh build next).
async fn drop_generations(search: &SearchServer) {
    if let Some(generation) = search.serving().await {
        for name in [vtag_service::read_models::search_checkpoints_index(&generation), generation] {
            search.call(Method::DELETE, &format!("/{name}"), None).await;
        }
    }
}

pub fn summary(r: &Value) -> Vec<String> {
    let f = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
    if r.get("rebuild_s").is_none() {
        return vec![
            format!("search latency at {} documents (bulk-loaded in {:.1} s = {} docs/s)", thousands(f("resources")), f("raw_bulk_s"), thousands(f("raw_bulk_docs_per_s"))),
            format!("  search (API query bodies)           p50 {:.1} ms, p99 {:.1} ms over {} queries", f("search_p50_ms"), f("search_p99_ms"), r["search_queries"]),
        ];
    }
    vec![
        format!("search read model at {} resources ({} events), median of {} runs", thousands(f("resources")), thousands(f("events")), r["runs"]),
        format!("  rebuild from offset 0 (projector)   {:>8.2} s = {} events/s, {} docs/s", f("rebuild_median_s"), thousands(f("rebuild_events_per_s")), thousands(f("rebuild_docs_per_s"))),
        format!("  raw _bulk of the same documents     {:>8.2} s = {} docs/s", f("raw_bulk_median_s"), thousands(f("raw_bulk_docs_per_s"))),
        format!("  rebuild / raw                       {:>8.2}×", f("rebuild_vs_raw")),
        format!("  search (API query bodies)           p50 {:.1} ms, p99 {:.1} ms over {} queries", f("search_p50_ms"), f("search_p99_ms"), r["search_queries"]),
    ]
}
