//! The graph read model (Bolt; ArcadeDB here) against the real stack: it agrees with the Postgres
//! read model on every resource's virtual tags and version; the graph API answers what a team
//! owns, which teams share a project and which resources have conflicting ownership, within the
//! caller's tenant (REST and GraphQL); a projector killed with -9 resumes without duplicates, and
//! one killed mid-build finishes the same generation; a rebuild swaps generations while queries
//! run, which never fail nor see a half-built graph.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use vtag_service::Role;
use vtag_tests::graph::GraphServer;
use vtag_tests::harness::{eventually, TestEnv};
use vtag_tests::http::{observe_batch, Api};
use vtag_tests::search::{postgres_tag_snapshot, TagSnapshot};

const RESOURCES: usize = 1_200;

/// Observes `RESOURCES` resources and tags them with ownership: team payments on 0..400 and web on
/// 400..800 (0..20 then moved to web, 390..400 removed); project checkout on 0..600 (shared by both
/// teams), search on 800..1000 (no team); owners: web's mailbox on 0..50 (a conflict on 20..50),
/// payments on 400..410 (a conflict), a person on 100..150 (none); a cost center on every third.
async fn ownership_tags(api: &Api) -> Vec<String> {
    let mut ids = Vec::with_capacity(RESOURCES);
    for from in (0..RESOURCES).step_by(600) {
        let r = api.post("/api/v1/resources/observe", &observe_batch(from, 600)).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        ids.extend(r.body["results"].as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap().to_owned()));
    }
    let apply = |ids: Vec<String>, key: &'static str, value: &'static str| async move {
        for chunk in ids.chunks(1_000) {
            let r = api.post("/api/v1/virtual-tags/apply", &json!({"resource_ids": chunk, "key": key, "value": value})).await;
            assert_eq!(r.status, 200, "{:?}", r.body);
        }
    };
    apply(ids[..400].to_vec(), "team", "payments").await;
    apply(ids[400..800].to_vec(), "team", "web").await;
    apply(ids[..600].to_vec(), "project", "checkout").await;
    apply(ids[800..1_000].to_vec(), "project", "search").await;
    apply(ids[..50].to_vec(), "owner", "web-team@acme.test").await;
    apply(ids[400..410].to_vec(), "owner", "payments").await;
    apply(ids[100..150].to_vec(), "owner", "alice@acme.test").await;
    apply(ids.iter().step_by(3).cloned().collect(), "cost-center", "ENG-001").await;
    apply(ids[..20].to_vec(), "team", "web").await;
    for id in &ids[390..400] {
        let r = api.send(Method::DELETE, &format!("/api/v1/virtual-tags/{id}:team"), None, &[]).await;
        assert!(r.status == 200 || r.status == 204, "{:?}", r.body);
    }
    ids
}

async fn folded_everywhere(env: &TestEnv, graph: &GraphServer) {
    let pool = env.pool().await;
    eventually(Duration::from_secs(180), "Postgres and the graph to fold the whole log", || async {
        let pg_done = vtag_tests::readmodel::folded_of(&pool, &env.topic()).await == vtag_tests::log::records_in(&env.stack.brokers, &env.topic(), env.partitions);
        (pg_done && graph.caught_up(env).await).then_some(())
    })
    .await;
}

fn team_of(snapshot: &TagSnapshot, id: &str) -> Option<String> {
    snapshot[id].1.iter().find(|t| t.0 == "team").map(|t| t.1.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_graph_agrees_with_postgres_and_answers_ownership_questions() {
    let env = TestEnv::new().await;
    let commands = env.start_command_api().await;
    let queries = env.start_query_api().await;
    let projector = env.start_projector();
    let graph_projector = env.start_graph_projector();
    let admin = Api::new(commands.url(""), Some(env.token("acme", "fin@acme.test", Role::Admin)));
    let read = Api::new(queries.url(""), Some(env.token("acme", "viewer@acme.test", Role::Viewer)));

    let ids = ownership_tags(&admin).await;
    let graph = GraphServer::of(&env);
    folded_everywhere(&env, &graph).await;

    let pg = postgres_tag_snapshot(&env.pool().await).await;
    let neo = graph.tag_snapshot().await;
    assert_eq!(pg.len(), RESOURCES);
    assert!(pg == neo, "the graph differs from Postgres");
    assert_eq!(team_of(&neo, &ids[0]).as_deref(), Some("web"), "overwritten");
    assert_eq!(team_of(&neo, &ids[395]), None, "removed");

    // What a team owns: every resource Postgres has with that team, through OWNED_BY.
    let web = read.get("/api/v1/graph/teams/web/resources?limit=1000").await;
    assert_eq!(web.status, 200, "{:?}", web.body);
    let expected_web = pg.keys().filter(|id| team_of(&pg, id).as_deref() == Some("web")).count();
    let owned = web.body["resources"].as_array().unwrap();
    // 20..50 are named by web's mailbox only (their team is payments): owned through `owner`.
    assert_eq!(owned.len(), expected_web + 30, "{}", web.body);
    assert_eq!(web.body["resource_count"].as_u64(), Some(owned.len() as u64));
    assert!(web.body["next"].is_null(), "one page holds them all");
    let via_owner = owned.iter().filter(|r| r["via"] == json!(["owner"])).count();
    assert_eq!(via_owner, 30);
    assert!(owned.iter().any(|r| r["via"] == json!(["owner", "team"])), "0..20: both tags name web");
    assert_eq!(read.get("/api/v1/graph/teams/WEB/resources").await.body["resource_count"], web.body["resource_count"], "team names are lower case");
    // Pages of 100 visit every resource once, in name order.
    let mut seen = Vec::new();
    let mut path = "/api/v1/graph/teams/web/resources?limit=100".to_owned();
    loop {
        let page = read.get(&path).await;
        assert_eq!(page.status, 200, "{:?}", page.body);
        assert_eq!(page.body["resource_count"], web.body["resource_count"], "totals cover every page");
        seen.extend(page.body["resources"].as_array().unwrap().iter().map(|r| r["resource_id"].as_str().unwrap().to_owned()));
        match page.body["next"].as_str() {
            Some(next) => path = format!("/api/v1/graph/teams/web/resources?limit=100&after={next}"),
            None => break,
        }
    }
    let in_one: Vec<String> = owned.iter().map(|r| r["resource_id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(seen, in_one);
    let bad = read.get("/api/v1/graph/teams/web/resources?limit=0").await;
    assert_eq!(bad.status, 422, "{:?}", bad.body);
    assert_eq!(bad.body["errors"][0]["field"], "limit");
    let unknown = read.get("/api/v1/graph/teams/web/resources?tenant=globex").await;
    assert_eq!(unknown.status, 400, "unknown parameters are refused");
    assert!(unknown.body["detail"].as_str().unwrap().contains("tenant"), "{:?}", unknown.body);

    // Teams sharing a project: checkout (payments and web), not search (no team).
    let shared = read.get("/api/v1/graph/projects/shared").await;
    assert_eq!(shared.status, 200, "{:?}", shared.body);
    let projects = shared.body["projects"].as_array().unwrap();
    assert_eq!(projects.len(), 1, "{}", shared.body);
    assert_eq!(projects[0]["project"], "checkout");
    let teams: BTreeMap<String, i64> =
        projects[0]["teams"].as_array().unwrap().iter().map(|t| (t["team"].as_str().unwrap().to_owned(), t["resources"].as_i64().unwrap())).collect();
    // payments: 20..390 by team, 400..410 by owner; web: 0..20 and 400..600 by team, 20..50 by owner.
    assert_eq!(teams, BTreeMap::from([("payments".to_owned(), 380), ("web".to_owned(), 250)]));

    // Conflicting ownership: 20..50 (payments vs web's mailbox) and 400..410 (web vs payments).
    let conflicts = read.get("/api/v1/graph/ownership-conflicts").await;
    assert_eq!(conflicts.status, 200, "{:?}", conflicts.body);
    let disputed = conflicts.body["resources"].as_array().unwrap();
    assert_eq!(disputed.len(), 40, "{}", conflicts.body);
    let first = disputed.iter().find(|c| c["resource_id"] == ids[20].as_str()).expect("resource 20 is disputed");
    assert_eq!(first["owners"], json!([{"team": "web", "via": "owner"}, {"team": "payments", "via": "team"}]));

    // GraphQL: the same answers.
    let gql = read
        .post("/graphql", &json!({"query": "{ teamResources(team: \"payments\", first: 1000) { team resourceCount resources { resourceId via } } sharedProjects { project } ownershipConflicts { resourceId } }"}))
        .await;
    assert_eq!(gql.status, 200, "{:?}", gql.body);
    assert!(gql.body["errors"].is_null(), "{:?}", gql.body);
    let payments = pg.keys().filter(|id| team_of(&pg, id).as_deref() == Some("payments")).count();
    assert_eq!(gql.body["data"]["teamResources"]["resources"].as_array().unwrap().len(), payments + 10);
    assert_eq!(gql.body["data"]["sharedProjects"], json!([{"project": "checkout"}]));
    assert_eq!(gql.body["data"]["ownershipConflicts"].as_array().unwrap().len(), 40);

    // Tenants never see each other; every endpoint needs a token.
    let other = Api::new(queries.url(""), Some(env.token("globex", "eve@globex.test", Role::Viewer)));
    assert_eq!(other.get("/api/v1/graph/teams/web/resources").await.body["resources"], json!([]));
    assert_eq!(other.get("/api/v1/graph/projects/shared").await.body["projects"], json!([]));
    assert_eq!(other.get("/api/v1/graph/ownership-conflicts").await.body["resources"], json!([]));
    let anonymous = Api::new(queries.url(""), None);
    assert_eq!(anonymous.get("/api/v1/graph/projects/shared").await.status, 401);

    // Lag: the graph is a read model of its own in the report.
    let admin_read = Api::new(queries.url(""), Some(env.token("acme", "fin@acme.test", Role::Admin)));
    let lag = admin_read.get("/api/v1/read-models/lag").await;
    assert_eq!(lag.status, 200, "{:?}", lag.body);
    let neo4j = lag.body["read_models"].as_array().unwrap().iter().find(|m| m["name"] == "neo4j").cloned().expect("neo4j in the lag report");
    assert_eq!((neo4j["status"].as_str(), neo4j["lag"].as_i64()), (Some("serving"), Some(0)), "{neo4j}");
    assert_eq!(neo4j["topics"][0]["partitions"].as_array().unwrap().len(), env.partitions as usize);

    graph_projector.stop().await;
    projector.stop().await;
    queries.stop().await;
    commands.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graph_projector_killed_mid_stream_resumes_without_duplicates() {
    let env = TestEnv::new().await;
    let commands = env.start_command_api().await;
    let projector = env.start_projector();
    let graph = GraphServer::of(&env);
    let mut process = env.spawn_graph_projector_process();
    eventually(Duration::from_secs(60), "the graph projector to serve", || async { graph.serving().await.map(|_| ()) }).await;
    let topic = env.topic();

    let producer = {
        let api = Api::new(commands.url(""), Some(env.editor()));
        tokio::spawn(async move { ownership_tags(&api).await })
    };
    let at_kill = eventually(Duration::from_secs(120), "the graph projector to make progress", || async {
        let done: i64 = graph.checkpoints(&topic).await.values().sum();
        (done >= 600).then_some(done)
    })
    .await;
    process.start_kill().expect("kill -9");
    process.wait().await.expect("reaped");
    producer.await.expect("all commands accepted");

    let mut restarted = env.spawn_graph_projector_process();
    folded_everywhere(&env, &graph).await;
    restarted.start_kill().ok();
    let total = vtag_tests::log::records_in(&env.stack.brokers, &topic, env.partitions);
    assert!(at_kill < total, "the kill must land mid-stream (folded {at_kill} of {total})");
    let pg = postgres_tag_snapshot(&env.pool().await).await;
    let neo = graph.tag_snapshot().await;
    assert_eq!(neo.len(), RESOURCES, "one node per resource, none twice");
    assert!(pg == neo, "the graph differs from Postgres after the crash");
    projector.stop().await;
    commands.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_swaps_while_queries_run_and_they_never_see_half_a_graph() {
    let env = TestEnv::new().await;
    let commands = env.start_command_api().await;
    let queries = env.start_query_api().await;
    let projector = env.start_projector();
    let graph_projector = env.start_graph_projector();
    let admin = Api::new(commands.url(""), Some(env.editor()));
    ownership_tags(&admin).await;
    let graph = GraphServer::of(&env);
    folded_everywhere(&env, &graph).await;
    let before = graph.serving().await.unwrap();
    let read = Api::new(queries.url(""), Some(env.token("acme", "viewer@acme.test", Role::Viewer)));
    let full = read.get("/api/v1/graph/teams/payments/resources?limit=1000").await.body["resources"].as_array().unwrap().len();
    assert!(full > 300);

    // Queries every 20 ms during the rebuild: each must answer 200 with the whole team.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (stop, read) = (stop.clone(), Api::new(queries.url(""), Some(env.token("acme", "viewer@acme.test", Role::Viewer))));
        tokio::spawn(async move {
            let mut answers = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = read.get("/api/v1/graph/teams/payments/resources?limit=1000").await;
                assert_eq!(r.status, 200, "a query failed during the rebuild: {:?}", r.body);
                let n = r.body["resources"].as_array().unwrap().len();
                assert_eq!(n, full, "a query saw part of the graph");
                answers += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            answers
        })
    };
    let rebuilt = vtag_projectors::graph::rebuild(env.graph_settings(), &|_, _| {}).await.expect("rebuild");
    assert_ne!(rebuilt, before);
    assert_eq!(graph.serving().await.as_deref(), Some(rebuilt.as_str()));
    // The serving projector follows within a second and drops the old generation.
    eventually(Duration::from_secs(30), "the old generation to be dropped", || async {
        (graph.generations().await == [rebuilt.clone()] && graph.nodes_of(&before).await == 0).then_some(())
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let answers = watcher.await.expect("no query failed");
    assert!(answers > 5, "queries ran during the rebuild ({answers})");

    // Writes after the swap reach the new generation through the serving projector.
    let more = admin.post("/api/v1/resources/observe", &observe_batch(5_000, 5)).await;
    let new_ids: Vec<String> = more.body["results"].as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(admin.post("/api/v1/virtual-tags/apply", &json!({"resource_ids": new_ids, "key": "team", "value": "payments"})).await.status, 200);
    eventually(Duration::from_secs(60), "the new resources in the rebuilt graph", || async {
        let n = read.get("/api/v1/graph/teams/payments/resources").await.body["resource_count"].as_u64().unwrap_or(0) as usize;
        (n == full + 5).then_some(())
    })
    .await;
    folded_everywhere(&env, &graph).await;
    assert!(postgres_tag_snapshot(&env.pool().await).await == graph.tag_snapshot().await);

    graph_projector.stop().await;
    projector.stop().await;
    queries.stop().await;
    commands.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graph_build_cut_short_goes_on_in_the_same_generation() {
    let env = TestEnv::new().await;
    // 40k events straight to the log, folded 500 a batch: the build is still running when killed.
    let (_, docs) = vtag_tests::bench::search::write_log(&env, 10_000).await.expect("the log written");
    let graph = GraphServer::of(&env);
    let topic = env.topic();
    let mut first = env.spawn_graph_projector_process();
    let building = eventually(Duration::from_secs(60), "a generation half built", || async {
        let generation = graph.generations().await.pop()?;
        let done: i64 = graph.checkpoints_of(&generation, &topic).await.values().sum();
        (done > 0).then_some(generation)
    })
    .await;
    first.start_kill().expect("kill -9");
    first.wait().await.unwrap();
    assert!(graph.serving().await.is_none(), "killed before it served (the test needs a slower build otherwise)");

    let mut second = env.spawn_graph_projector_process();
    eventually(Duration::from_secs(300), "the build to finish", || async { graph.caught_up(&env).await.then_some(()) }).await;
    second.start_kill().ok();
    assert_eq!(graph.serving().await.as_deref(), Some(building.as_str()), "the same generation, finished");
    assert_eq!(graph.generations().await, vec![building], "nothing left behind");
    let expected: TagSnapshot = docs
        .iter()
        .map(|d| {
            let tags = d.tags.iter().map(|t| (t.key.clone(), t.value.clone(), t.source.clone())).collect();
            (d.resource_id.clone(), (d.version as i64, tags))
        })
        .collect();
    assert!(graph.tag_snapshot().await == expected, "the graph differs from the log's resources");
}
