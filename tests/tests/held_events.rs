//! A resource event no projector can decode holds that resource's later events back in all three
//! read models (Postgres, search, graph) while other resources go on; once the cause is fixed,
//! `vtag dead-letters retry` has every projector apply the held events in log order (ADR 0011).
//!
//! The cause here is real: an event whose schema id the registry does not know yet (registered
//! later, as when a writer's registry was ahead of the readers'). The test runs its own registry so
//! that the id the late schema gets is known in advance.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{json, Value};
use vtag_projectors::dead_letter::{self, kind};
use vtag_tests::graph::GraphServer;
use vtag_tests::harness::{eventually, free_port, scratch_dir, Stack, TestEnv};
use vtag_tests::http::{observe_batch, Api};
use vtag_tests::search::{postgres_tag_snapshot, SearchServer, TagSnapshot};

/// A registry of this test's own, on a free port, with an empty journal.
async fn private_registry(bin_dir: &str) -> (tokio::process::Child, String) {
    let port = free_port();
    let data = scratch_dir("test-registries");
    let child = tokio::process::Command::new(format!("{bin_dir}/vtag-schema-registry"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir", data.to_str().unwrap()])
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .expect("start vtag-schema-registry (make test builds it)");
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    eventually(Duration::from_secs(20), "the private registry to answer", || async {
        http.get(format!("{url}/subjects")).send().await.ok().filter(|r| r.status().is_success()).map(drop)
    })
    .await;
    (child, url)
}

/// The last record of `key` on `partition` of `topic`: its bytes.
async fn last_record_of(env: &TestEnv, partition: i32, key: &str) -> Vec<u8> {
    let consumer: StreamConsumer = vtag_eventlog::kafka::assigned_consumer_config(&env.stack.brokers, "held-test").create().unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&env.topic(), partition, Offset::Beginning).unwrap();
    consumer.assign(&tpl).unwrap();
    let end = consumer.fetch_watermarks(&env.topic(), partition, Duration::from_secs(10)).unwrap().1;
    let mut last = None;
    loop {
        let m = tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await.expect("records arrive").unwrap();
        if m.key() == Some(key.as_bytes()) {
            last = Some(m.payload().unwrap().to_vec());
        }
        if m.offset() + 1 >= end {
            return last.expect("the resource's records");
        }
    }
}

fn team(snapshot: &TagSnapshot, id: &str) -> Option<String> {
    snapshot.get(id)?.1.iter().find(|t| t.0 == "team").map(|t| t.1.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_behind_a_dead_letter_is_held_in_every_read_model_until_retried() {
    let mut stack = Stack::from_env();
    let (_registry, registry_url) = private_registry(&stack.bin_dir).await;
    stack.registry_url = registry_url.clone();
    let env = TestEnv::with_stack(stack).await;
    let commands = env.start_command_api().await;
    let projector = env.start_projector();
    let search_projector = env.start_search_projector();
    let graph_projector = env.start_graph_projector();
    let api = Api::new(commands.url(""), Some(env.editor()));
    let r = api.post("/api/v1/resources/observe", &observe_batch(0, 20)).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let ids: Vec<String> = r.body["results"].as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap().to_owned()).collect();
    let (held, free) = (ids[0].clone(), ids[1].clone());
    let r = api.post("/api/v1/virtual-tags/apply", &json!({"resource_ids": [held, free], "key": "team", "value": "payments"})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);

    // The poison: the held resource's last event as written, under a schema id the registry does
    // not know yet (the next one it will give).
    let http = reqwest::Client::new();
    let subject = format!("{}-vtag.events.resource.VirtualTagApplied", env.topic());
    let latest: Value = http.get(format!("{registry_url}/subjects/{subject}/versions/latest")).send().await.unwrap().json().await.unwrap();
    let subjects: Vec<String> = http.get(format!("{registry_url}/subjects")).send().await.unwrap().json().await.unwrap();
    let mut max_id = 0;
    for s in &subjects {
        let v: Value = http.get(format!("{registry_url}/subjects/{s}/versions/latest")).send().await.unwrap().json().await.unwrap();
        max_id = max_id.max(v["id"].as_i64().unwrap());
    }
    let late_id = max_id + 1;
    let partition = vtag_eventlog::partition_for(held.as_bytes(), env.partitions);
    let mut poison = last_record_of(&env, partition, &held).await;
    poison[1..5].copy_from_slice(&(late_id as u32).to_be_bytes());
    let producer: FutureProducer = vtag_eventlog::kafka::producer_config(&env.stack.brokers).create().unwrap();
    producer
        .send(FutureRecord::to(&env.topic()).partition(partition).key(held.as_str()).payload(&poison), Duration::from_secs(10))
        .await
        .expect("poison produced");
    // Later events: the held resource's (held back) and another's (applied).
    let r = api.post("/api/v1/virtual-tags/apply", &json!({"resource_ids": [held, free], "key": "team", "value": "web"})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);

    let pool = env.pool().await;
    let (search, graph) = (SearchServer::of(&env), GraphServer::of(&env));
    let log_end = vtag_tests::log::records_in(&env.stack.brokers, &env.topic(), env.partitions);
    let snapshots = || async {
        (postgres_tag_snapshot(&pool).await, search.tag_snapshot().await, graph.tag_snapshot().await)
    };
    eventually(Duration::from_secs(90), "every read model to pass the poison", || async {
        let pg_done = vtag_tests::readmodel::folded_of(&pool, &env.topic()).await == log_end;
        (pg_done && search.caught_up(&env).await && graph.caught_up(&env).await).then_some(())
    })
    .await;
    let (pg, os, neo) = snapshots().await;
    for (model, snapshot) in [("postgres", &pg), ("opensearch", &os), ("neo4j", &neo)] {
        assert_eq!(team(snapshot, &free).as_deref(), Some("web"), "{model}: other resources go on");
        assert_eq!(team(snapshot, &held).as_deref(), Some("payments"), "{model}: the later event is held back");
    }
    let dlq = vtag_eventlog::EventTopics::new(env.prefix.clone(), env.partitions).dead_letters();
    let letters = dead_letter::read_letters(&env.stack.brokers, &dlq, 0).await.unwrap();
    for model in ["postgres", "opensearch", "neo4j"] {
        let of: Vec<&str> = letters.iter().filter(|l| l.projector == model && l.source_key == held.as_bytes()).map(|l| l.kind.as_str()).collect();
        assert_eq!(of, [kind::POISON, kind::HELD], "{model} parked the poison, then held the later event");
    }

    // The cause goes away: the schema is registered (the same record, plus a field of type null,
    // which takes no bytes), and gets the id the poison carries.
    let mut schema: Value = serde_json::from_str(latest["schema"].as_str().unwrap()).unwrap();
    schema["fields"].as_array_mut().unwrap().push(json!({"name": "late_marker", "type": "null", "default": null}));
    let registered: Value = http
        .post(format!("{registry_url}/subjects/{subject}/versions"))
        .json(&json!({"schema": schema.to_string()}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(registered["id"].as_i64(), Some(late_id), "{registered}");

    let out = tokio::process::Command::new(format!("{}/vtag", env.stack.bin_dir))
        .args(["dead-letters", "retry"])
        .envs(env.service_env())
        .env("RUST_LOG", "warn")
        .output()
        .await
        .expect("run vtag");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "vtag dead-letters retry: {said} {}", String::from_utf8_lossy(&out.stderr));
    let answers: BTreeMap<&str, &str> = said.lines().filter_map(|l| l.split_once(": ")).collect();
    for model in ["postgres", "opensearch", "neo4j"] {
        assert_eq!(answers.get(model).copied(), Some("released 1 aggregates; 0 still held"), "{said}");
    }
    eventually(Duration::from_secs(60), "the held event in every read model", || async {
        let (pg, os, neo) = snapshots().await;
        [&pg, &os, &neo].iter().all(|s| team(s, &held).as_deref() == Some("web")).then_some(())
    })
    .await;
    let (pg, os, neo) = snapshots().await;
    assert!(pg == os && os == neo, "the three read models agree after the retry");

    // Released: the resource's next events flow again.
    let r = api.post("/api/v1/virtual-tags/apply", &json!({"resource_ids": [held], "key": "team", "value": "data"})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    eventually(Duration::from_secs(60), "a released resource's next event everywhere", || async {
        let (pg, os, neo) = snapshots().await;
        [&pg, &os, &neo].iter().all(|s| team(s, &held).as_deref() == Some("data")).then_some(())
    })
    .await;

    graph_projector.stop().await;
    search_projector.stop().await;
    projector.stop().await;
    commands.stop().await;
}
