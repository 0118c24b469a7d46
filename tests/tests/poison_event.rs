//! A record a projector can never apply is dead-lettered with its origin, and the pipeline goes on
//! (the Postgres, search and graph projectors alike).

use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use vtag_tests::graph::GraphServer;
use vtag_tests::harness::{eventually, TestEnv};
use vtag_tests::http::{observe_batch, Api};
use vtag_tests::log::records_in;
use vtag_tests::readmodel::folded;
use vtag_tests::search::SearchServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_goes_to_the_dead_letter_topic_and_the_projector_goes_on() {
    let env = TestEnv::new().await;
    let commands = env.start_command_api().await;
    let projector = env.start_projector();
    let pool = env.pool().await;
    let api = Api::new(commands.url(""), Some(env.editor()));

    // Garbage, and a record with a valid wire header but an unknown schema id, then real events.
    let producer: FutureProducer = vtag_eventlog::kafka::producer_config(&env.stack.brokers).create().unwrap();
    for payload in [b"definitely not avro".to_vec(), vec![0u8, 0, 0, 0x7f, 0x7f, 1, 2, 3]] {
        producer
            .send(FutureRecord::to(&env.topic()).partition(0).key("poison").payload(&payload), Duration::from_secs(10))
            .await
            .expect("poison produced");
    }
    let r = api.post("/api/v1/resources/observe", &observe_batch(0, 50)).await;
    assert_eq!(r.status, 200);

    let total = records_in(&env.stack.brokers, &env.topic(), env.partitions);
    assert_eq!(total, 52);
    eventually(Duration::from_secs(60), "the projector to pass the poison", || async {
        (folded(&pool).await == total).then_some(())
    })
    .await;
    let resources: i64 = sqlx::query_scalar("SELECT count(*) FROM resources").fetch_one(&pool).await.unwrap();
    assert_eq!(resources, 50);

    let parked = dead_letters(&env, "postgres", 2).await;
    assert!(parked.iter().all(|(partition, _)| partition == "0"), "{parked:?}");
    assert_eq!(parked[0].1, b"definitely not avro");

    projector.stop().await;
    commands.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_goes_to_the_dead_letter_topic_and_the_search_and_graph_projectors_go_on() {
    let env = TestEnv::new().await;
    let commands = env.start_command_api().await;
    let search_projector = env.start_search_projector();
    let graph_projector = env.start_graph_projector();
    let api = Api::new(commands.url(""), Some(env.editor()));
    let producer: FutureProducer = vtag_eventlog::kafka::producer_config(&env.stack.brokers).create().unwrap();
    let r = api.post("/api/v1/resources/observe", &observe_batch(0, 20)).await;
    assert_eq!(r.status, 200);
    producer
        .send(FutureRecord::to(&env.topic()).partition(1).key("poison").payload(b"definitely not avro".as_slice()), Duration::from_secs(10))
        .await
        .expect("poison produced");
    let r = api.post("/api/v1/resources/observe", &observe_batch(20, 30)).await;
    assert_eq!(r.status, 200);

    let search = SearchServer::of(&env);
    eventually(Duration::from_secs(60), "the search projector to pass the poison", || async {
        (search.caught_up(&env).await && search.tag_snapshot().await.len() == 50).then_some(())
    })
    .await;
    let parked = dead_letters(&env, "opensearch", 1).await;
    assert_eq!(parked[0], ("1".to_owned(), b"definitely not avro".to_vec()), "the poison's partition and bytes");
    let graph = GraphServer::of(&env);
    eventually(Duration::from_secs(60), "the graph projector to pass the poison", || async {
        (graph.caught_up(&env).await && graph.tag_snapshot().await.len() == 50).then_some(())
    })
    .await;
    assert_eq!(dead_letters(&env, "neo4j", 1).await[0], ("1".to_owned(), b"definitely not avro".to_vec()));
    graph_projector.stop().await;
    search_projector.stop().await;
    commands.stop().await;
}

/// The first `n` records `projector` parked on the dead-letter topic: (source partition, payload).
async fn dead_letters(env: &TestEnv, projector: &str, n: usize) -> Vec<(String, Vec<u8>)> {
    let dlq = vtag_eventlog::EventTopics::new(env.prefix.clone(), env.partitions).dead_letters();
    let consumer: StreamConsumer = vtag_eventlog::kafka::assigned_consumer_config(&env.stack.brokers, "poison-test").create().unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&dlq, 0, Offset::Beginning).unwrap();
    consumer.assign(&tpl).unwrap();
    let mut parked = Vec::new();
    while parked.len() < n {
        let m = tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await.expect("dead letters arrive").unwrap();
        let headers = m.headers().expect("headers");
        let header = |name: &str| {
            headers.iter().find(|h| h.key == name).and_then(|h| h.value).map(|v| String::from_utf8_lossy(v).into_owned())
        };
        assert_eq!(header("vtag.source.topic").as_deref(), Some(env.topic().as_str()));
        assert!(header("vtag.error").is_some_and(|e| !e.is_empty()));
        if header("vtag.projector").as_deref() != Some(projector) {
            continue;
        }
        assert!(header("vtag.source.offset").is_some_and(|o| o.parse::<i64>().is_ok()));
        parked.push((header("vtag.source.partition").unwrap(), m.payload().unwrap().to_vec()));
    }
    parked
}
