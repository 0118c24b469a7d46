//! The three read models agree: after 100k events (25k resources observed, tagged twice, costed;
//! written straight to the log), Postgres, the search index and the graph hold the same virtual
//! tags at the same version for every resource, and the graph's cost per team adds up to the
//! events'.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use vtag_service::Role;
use vtag_tests::bench::search::{write_log, TENANT};
use vtag_tests::graph::GraphServer;
use vtag_tests::harness::{eventually, TestEnv};
use vtag_tests::http::Api;
use vtag_tests::search::{postgres_tag_snapshot, SearchServer};

const RESOURCES: usize = 25_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_search_and_graph_agree_after_100k_events() {
    let env = TestEnv::new().await;
    let (events, docs) = write_log(&env, RESOURCES).await.expect("the log written");
    assert_eq!(events, 100_000);
    let started = Instant::now();
    let projector = env.start_projector();
    let search_projector = env.start_search_projector();
    let graph_projector = env.start_graph_projector();
    let (pool, search, graph) = (env.pool().await, SearchServer::of(&env), GraphServer::of(&env));
    let topic = env.topic();
    eventually(Duration::from_secs(1_200), "the three read models to fold 100k events", || async {
        let pg = vtag_tests::readmodel::folded_of(&pool, &topic).await == events as i64;
        (pg && search.caught_up(&env).await && graph.caught_up(&env).await).then_some(())
    })
    .await;
    eprintln!("three read models folded {events} events in {:.1} s", started.elapsed().as_secs_f64());

    let pg = postgres_tag_snapshot(&pool).await;
    assert_eq!(pg.len(), RESOURCES);
    let os = search.tag_snapshot().await;
    let neo = graph.tag_snapshot().await;
    assert!(os == pg, "the search index differs from Postgres");
    assert!(neo == pg, "the graph differs from Postgres");

    // What a team owns, with its cost, from the graph API: as the events say.
    let queries = env.start_query_api().await;
    let read = Api::new(queries.url(""), Some(env.token(TENANT, "fin@bench.test", Role::Viewer)));
    let mut expected: BTreeMap<String, (usize, i64)> = BTreeMap::new();
    for d in &docs {
        let team = d.tags.iter().find(|t| t.key == "team").unwrap().value.clone();
        let e = expected.entry(team).or_default();
        e.0 += 1;
        e.1 += d.monthly_cost_cents.unwrap();
    }
    for (team, (count, cents)) in expected {
        let r = read.get(&format!("/api/v1/graph/teams/{team}/resources")).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.body["resource_count"].as_u64(), Some(count as u64), "{team}");
        assert_eq!(r.body["monthly_cost"], serde_json::json!([{"currency": "USD", "cents": cents}]), "{team}");
    }

    queries.stop().await;
    graph_projector.stop().await;
    search_projector.stop().await;
    projector.stop().await;
}
