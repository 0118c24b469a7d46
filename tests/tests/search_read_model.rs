//! The search read model (OpenSearch API, osmem-server here) against the real stack: it agrees
//! with the Postgres read model on every resource's virtual tags and version; the search API
//! filters, facets and pages it within the caller's tenant; a projector killed with -9 resumes
//! without duplicates; a search server restarted empty is rebuilt without anyone asking.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use vtag_service::Role;
use vtag_tests::harness::{eventually, free_port, TestEnv};
use vtag_tests::http::{observe_batch, Api};
use vtag_tests::search::{postgres_tag_snapshot, SearchServer};

const RESOURCES: usize = 3_000;

/// Observes `RESOURCES` resources and moves their tags about: team on two thirds (two values),
/// env on every fifth, then team removed again from every tenth — adds, overwrites, removals.
async fn tag_changes(api: &Api) -> Vec<String> {
    let mut ids = Vec::with_capacity(RESOURCES);
    for from in (0..RESOURCES).step_by(1_000) {
        let r = api.post("/api/v1/resources/observe", &observe_batch(from, 1_000)).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        ids.extend(r.body["results"].as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap().to_owned()));
    }
    let apply = |ids: Vec<String>, key: &'static str, value: &'static str| async move {
        for chunk in ids.chunks(1_000) {
            let r = api.post("/api/v1/virtual-tags/apply", &json!({"resource_ids": chunk, "key": key, "value": value})).await;
            assert_eq!(r.status, 200, "{:?}", r.body);
        }
    };
    apply(ids[..1_000].to_vec(), "team", "payments").await;
    apply(ids[1_000..2_000].to_vec(), "team", "web").await;
    apply(ids.iter().step_by(5).cloned().collect(), "env", "production").await;
    // Some of the payments resources move to web: an overwrite.
    apply(ids[..100].to_vec(), "team", "web").await;
    for id in ids.iter().step_by(10).take(50) {
        let r = api.send(Method::DELETE, &format!("/api/v1/virtual-tags/{id}:team"), None, &[]).await;
        assert!(r.status == 200 || r.status == 204, "{:?}", r.body);
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_agrees_with_postgres_and_serves_filters_facets_and_pages() {
    let env = TestEnv::new().await;
    let commands = env.start_command_api().await;
    let queries = env.start_query_api().await;
    let projector = env.start_projector();
    let search_projector = env.start_search_projector();
    let evaluator = env.start_compliance(Duration::from_millis(200));
    let admin = Api::new(commands.url(""), Some(env.token("acme", "gov@acme.test", Role::Admin)));
    let read = Api::new(queries.url(""), Some(env.token("acme", "viewer@acme.test", Role::Viewer)));
    let owner_required = json!({"policy_id": "team", "policy_name": "Every resource has a team", "policy_type": "required_tags",
                                "rules": {"required_tags": ["team"], "severity": "high"}});
    assert_eq!(admin.post("/api/v1/policies", &owner_required).await.status, 201);

    let ids = tag_changes(&admin).await;
    let pool = env.pool().await;
    let search = SearchServer::of(&env);
    eventually(Duration::from_secs(180), "both read models to fold the whole log", || async {
        let pg_done = vtag_tests::readmodel::folded_of(&pool, &env.topic()).await == vtag_tests::log::records_in(&env.stack.brokers, &env.topic(), env.partitions);
        (pg_done && search.caught_up(&env).await).then_some(())
    })
    .await;

    // The two read models agree on every resource: same version, same virtual tags.
    let pg = postgres_tag_snapshot(&pool).await;
    let os = search.tag_snapshot().await;
    assert_eq!(pg.len(), RESOURCES);
    assert_eq!(os.len(), RESOURCES, "one document per resource");
    for (id, expected) in &pg {
        assert_eq!(os.get(id), Some(expected), "resource {id}");
    }
    let team_of = |i: usize| os[&ids[i]].1.iter().find(|t| t.0 == "team").map(|t| t.1.clone());
    assert_eq!(team_of(0), None, "removed");
    assert_eq!(team_of(1).as_deref(), Some("web"), "overwritten");
    assert_eq!(team_of(151).as_deref(), Some("payments"));

    // Filters on tags and their facets.
    let page = read.get("/api/v1/search?tag=team:web&size=500").await;
    assert_eq!(page.status, 200, "{:?}", page.body);
    let web = pg.values().filter(|(_, tags)| tags.iter().any(|t| t.0 == "team" && t.1 == "web")).count();
    assert_eq!(page.body["total"].as_u64(), Some(web as u64));
    let team = facet(&page.body, "team");
    assert_eq!(team, vec![("web".to_owned(), web as u64)], "the facet counts the filtered resources");
    // Missing tags: the untagged list FinOps teams chase.
    let untagged = read.get("/api/v1/search?missing=team&size=1").await;
    let without_team = pg.values().filter(|(_, tags)| !tags.iter().any(|t| t.0 == "team")).count();
    assert_eq!(untagged.body["total"].as_u64(), Some(without_team as u64));
    // Compliance comes from the evaluator's judgements, folded into the same documents.
    let failing = eventually(Duration::from_secs(60), "judgements in the index", || async {
        let r = read.get("/api/v1/search?compliance=non_compliant&size=1").await;
        (r.body["total"].as_u64() == Some(without_team as u64)).then_some(r)
    })
    .await;
    assert_eq!(failing.body["resources"][0]["violated_policies"], json!(["team"]));
    // Lag per read model, topic and partition: none left once both have caught up (the evaluator's
    // last judgements included).
    let admin_read = Api::new(queries.url(""), Some(env.token("acme", "gov@acme.test", Role::Admin)));
    let lag = eventually(Duration::from_secs(60), "no lag left", || async {
        let lag = admin_read.get("/api/v1/read-models/lag").await;
        assert_eq!(lag.status, 200, "{:?}", lag.body);
        let models = lag.body["read_models"].as_array().unwrap().clone();
        models.iter().find(|m| m["name"] == "opensearch" && m["lag"] == 0 && m["status"] == "serving").map(|_| models.clone())
    })
    .await;
    let search_lag = lag.iter().find(|m| m["name"] == "opensearch").unwrap();
    assert_eq!(search_lag["topics"][0]["partitions"].as_array().unwrap().len(), env.partitions as usize);
    let pg_lag = lag.iter().find(|m| m["name"] == "postgres").unwrap();
    assert_eq!(pg_lag["topics"][0]["lag"].as_i64(), Some(0), "{pg_lag}");
    assert_eq!(read.get("/api/v1/read-models/lag").await.status, 403, "operators only");

    // Full text on names (observe_batch names them web-server-prod-NNN).
    let named = read.get("/api/v1/search?q=web-server-prod-042").await;
    assert_eq!(named.body["resources"][0]["resource_name"], "web-server-prod-042", "{:?}", named.body);

    // Paging with search_after visits every resource exactly once.
    let mut seen = BTreeSet::new();
    let mut path = "/api/v1/search?size=400&tag=env".to_owned();
    loop {
        let page = read.get(&path).await;
        assert_eq!(page.status, 200, "{:?}", page.body);
        for r in page.body["resources"].as_array().unwrap() {
            assert!(seen.insert(r["resource_id"].as_str().unwrap().to_owned()), "a resource on two pages");
        }
        match page.body["next"].as_str() {
            Some(next) => path = format!("/api/v1/search?size=400&tag=env&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), RESOURCES / 5);

    // Tenants never see each other; bad input names the field and the rule.
    let other = Api::new(queries.url(""), Some(env.token("globex", "eve@globex.test", Role::Viewer)));
    assert_eq!(other.get("/api/v1/search?size=10").await.body["total"].as_u64(), Some(0));
    let bad = read.get("/api/v1/search?provider=oracle").await;
    assert_eq!(bad.status, 422);
    assert_eq!(bad.body["errors"][0]["field"], "provider");
    let anonymous = Api::new(queries.url(""), None);
    assert_eq!(anonymous.get("/api/v1/search").await.status, 401);

    evaluator.stop().await;
    search_projector.stop().await;
    projector.stop().await;
    queries.stop().await;
    commands.stop().await;
}

fn facet(body: &Value, key: &str) -> Vec<(String, u64)> {
    let tags = body["facets"]["tags"].as_array().unwrap();
    let Some(facet) = tags.iter().find(|t| t["key"] == key) else { return Vec::new() };
    facet["values"].as_array().unwrap().iter().map(|b| (b["value"].as_str().unwrap().to_owned(), b["count"].as_u64().unwrap())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_projector_killed_mid_stream_resumes_without_duplicates() {
    let env = TestEnv::new().await;
    let commands = env.start_command_api().await;
    let projector = env.start_projector();
    let api = Api::new(commands.url(""), Some(env.editor()));
    let mut search_process = env.spawn_search_projector_process();
    let search = SearchServer::of(&env);
    let topic = env.topic();
    // Serving before the stream starts: a projector that came up late would build its first index
    // out of sight (no alias, no visible checkpoints) and could finish before the kill.
    eventually(Duration::from_secs(60), "the search projector to serve", || async { search.serving().await.map(|_| ()) }).await;

    let producer = {
        let api = Api::new(commands.url(""), Some(env.editor()));
        tokio::spawn(async move { tag_changes(&api).await })
    };
    let at_kill = eventually(Duration::from_secs(120), "the search projector to make progress", || async {
        let done: i64 = search.checkpoints(&topic).await.values().sum();
        (done >= 1_000).then_some(done)
    })
    .await;
    search_process.start_kill().expect("kill -9");
    search_process.wait().await.expect("reaped");
    producer.await.expect("all commands accepted");
    drop(api);

    let mut restarted = env.spawn_search_projector_process();
    let pool = env.pool().await;
    eventually(Duration::from_secs(180), "both read models to fold the whole log", || async {
        let pg_done = vtag_tests::readmodel::folded_of(&pool, &topic).await == vtag_tests::log::records_in(&env.stack.brokers, &topic, env.partitions);
        (pg_done && search.caught_up(&env).await).then_some(())
    })
    .await;
    restarted.start_kill().ok();
    let total = vtag_tests::log::records_in(&env.stack.brokers, &topic, env.partitions);
    assert!(at_kill < total, "the kill must land mid-stream (folded {at_kill} of {total})");
    let pg = postgres_tag_snapshot(&pool).await;
    let os = search.tag_snapshot().await;
    assert_eq!(os.len(), RESOURCES, "one document per resource, none twice");
    assert!(pg == os, "the search read model differs from Postgres after the crash");
    projector.stop().await;
    commands.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_cut_short_goes_on_where_it_was() {
    let env = TestEnv::new().await;
    let commands = env.start_command_api().await;
    let api = Api::new(commands.url(""), Some(env.editor()));
    // Twice the others' estate: the build must still be running when it is killed.
    for from in (0..2 * RESOURCES).step_by(1_000) {
        assert_eq!(api.post("/api/v1/resources/observe", &observe_batch(from, 1_000)).await.status, 200);
    }
    let search = SearchServer::of(&env);
    let mut first = env.spawn_search_projector_process();
    // Killed while its first generation is half built (not served yet).
    let building = eventually(Duration::from_secs(60), "a generation half built", || async {
        let generations = search.generations().await;
        let (status, count) = match generations.first() {
            Some(g) => search.call(Method::GET, &format!("/{g}/_count"), None).await,
            None => return None,
        };
        (status == 200 && count["count"].as_u64().unwrap_or(0) > 0).then(|| generations[0].clone())
    })
    .await;
    first.start_kill().expect("kill -9");
    first.wait().await.unwrap();
    assert!(search.serving().await.is_none(), "killed before it served (the test needs a slower build otherwise)");

    let mut second = env.spawn_search_projector_process();
    eventually(Duration::from_secs(120), "the build to finish", || async { search.caught_up(&env).await.then_some(()) }).await;
    assert_eq!(search.serving().await.as_deref(), Some(building.as_str()), "the same generation, finished");
    assert_eq!(search.generations().await, vec![building], "nothing left behind");
    assert_eq!(search.tag_snapshot().await.len(), 2 * RESOURCES);
    second.start_kill().ok();
    commands.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_server_restarted_empty_is_rebuilt_by_itself() {
    let env = TestEnv::new().await;
    // A private search server: restarting the shared one would pull it from under other tests.
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut server = start_osmem(port).await;
    let commands = env.start_command_api().await;
    let api = Api::new(commands.url(""), Some(env.editor()));
    let r = api.post("/api/v1/resources/observe", &observe_batch(0, 500)).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let mut settings = env.search_settings();
    settings.opensearch_url = url.clone();
    let search_projector = env.start_search_projector_with(settings);
    let search = SearchServer::at(&url, &env);
    eventually(Duration::from_secs(60), "the first build", || async { search.caught_up(&env).await.then_some(()) }).await;
    assert_eq!(search.tag_snapshot().await.len(), 500);
    let first = search.serving().await.unwrap();

    server.start_kill().expect("kill -9 the search server");
    server.wait().await.unwrap();
    let mut server = start_osmem(port).await;
    eventually(Duration::from_secs(60), "the index to be rebuilt from the log", || async {
        (search.caught_up(&env).await && search.tag_snapshot().await.len() == 500).then_some(())
    })
    .await;
    assert_ne!(search.serving().await.unwrap(), first, "a new generation, built from the log");

    search_projector.stop().await;
    commands.stop().await;
    server.start_kill().ok();
}

async fn start_osmem(port: u16) -> tokio::process::Child {
    let bin = std::env::var("VTAG_OSMEM_BIN").expect("VTAG_OSMEM_BIN is set by scripts/stack.sh env");
    let child = tokio::process::Command::new(&bin)
        .args(["-addr", &format!("127.0.0.1:{port}"), "-no-stdin-watch", "-no-ja"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("could not start {bin}: {e}"));
    let url = format!("http://127.0.0.1:{port}/");
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if http.get(&url).send().await.is_ok_and(|r| r.status().is_success()) {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{bin} did not answer on {url}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_swaps_in_a_whole_index_while_searches_go_on() {
    let env = TestEnv::new().await;
    let commands = env.start_command_api().await;
    let queries = env.start_query_api().await;
    let api = Api::new(commands.url(""), Some(env.editor()));
    let read = Api::new(queries.url(""), Some(env.token("acme", "viewer@acme.test", Role::Viewer)));
    let mut ids = Vec::new();
    for from in (0..2_000).step_by(1_000) {
        let r = api.post("/api/v1/resources/observe", &observe_batch(from, 1_000)).await;
        assert_eq!(r.status, 200);
        ids.extend(r.body["results"].as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap().to_owned()));
    }
    let search_projector = env.start_search_projector();
    let search = SearchServer::of(&env);
    eventually(Duration::from_secs(60), "the first build", || async { search.caught_up(&env).await.then_some(()) }).await;
    let before = search.serving().await.unwrap();

    // Searches all through the rebuild: every one answers, and always with the whole estate.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let searcher = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut answered = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = read.get("/api/v1/search?size=1&q=web").await;
                assert_eq!(r.status, 200, "a search failed during the rebuild: {:?}", r.body);
                assert_eq!(r.body["total"].as_u64(), Some(2_000), "a search saw a partial index");
                answered += 1;
                // Steady, not flat out: the same server is building the new index.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            answered
        })
    };
    let reports = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
    let seen = reports.clone();
    let progress = move |_done: i64, _due: i64| {
        seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    };
    // Changes keep coming while it rebuilds: the swap must not take searches back in time.
    let writer = {
        let api = Api::new(commands.url(""), Some(env.editor()));
        let ids = ids.clone();
        tokio::spawn(async move {
            for (k, chunk) in ids.chunks(100).enumerate() {
                let r = api.post("/api/v1/virtual-tags/apply", &json!({"resource_ids": chunk, "key": "wave", "value": format!("w{k}")})).await;
                assert_eq!(r.status, 200, "{:?}", r.body);
            }
        })
    };
    let after = vtag_projectors::search::rebuild(env.search_settings(), &progress).await.expect("rebuild");
    let topic = env.topic();
    let done: i64 = search.checkpoints(&topic).await.values().sum();
    let end = vtag_tests::log::records_in(&env.stack.brokers, &topic, env.partitions);
    assert!(end - done <= 2_000, "the rebuilt index was swapped in {} records behind the log (more than a batch)", end - done);
    writer.await.expect("changes accepted during the rebuild");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let answered = searcher.await.expect("searches never failed");
    assert!(answered > 5, "searches ran during the rebuild ({answered})");
    assert!(reports.load(std::sync::atomic::Ordering::Relaxed) > 0, "progress was reported");
    assert_ne!(after, before);
    assert_eq!(search.serving().await.as_deref(), Some(after.as_str()));
    let (old, _) = search.call(Method::GET, &format!("/{before}/_count"), None).await;
    assert_eq!(old, 404, "the old generation is dropped");

    // The serving projector follows the alias: a new change lands in the new generation.
    let id = api.post("/api/v1/resources/observe", &observe_batch(0, 1)).await.body["results"][0]["id"].as_str().unwrap().to_owned();
    let r = api.post("/api/v1/virtual-tags/apply", &json!({"resource_id": id, "key": "team", "value": "after-rebuild"})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    eventually(Duration::from_secs(30), "the change in the rebuilt index", || async {
        let snapshot = search.tag_snapshot().await;
        snapshot[&id].1.iter().any(|t| t.1 == "after-rebuild").then_some(())
    })
    .await;
    assert_eq!(search.serving().await.as_deref(), Some(after.as_str()));
    search_projector.stop().await;
    queries.stop().await;
    commands.stop().await;
}
