//! State survives restarts, including a crash that tore the last journal line.

mod common;

use std::io::Write;

use common::{fresh_data_dir, record, Server};
use serde_json::{json, Value};
use vtag_schema_registry::journal::JOURNAL_FILE;
use vtag_schema_registry::CompatibilityLevel;

async fn snapshot(server: &Server) -> Value {
    let mut out = serde_json::Map::new();
    let (_, subjects) = server.get("/subjects").await;
    for s in subjects.as_array().unwrap() {
        let s = s.as_str().unwrap();
        let (_, versions) = server.get(&format!("/subjects/{s}/versions")).await;
        let mut vs = Vec::new();
        for v in versions.as_array().unwrap() {
            vs.push(server.get(&format!("/subjects/{s}/versions/{v}")).await.1);
        }
        out.insert(s.to_owned(), Value::Array(vs));
    }
    out.insert("config".into(), server.get("/config").await.1);
    Value::Object(out)
}

#[tokio::test]
async fn restart_keeps_subjects_ids_versions_and_config() {
    let dir = fresh_data_dir("restart");
    let server = Server::start(&dir).await;
    let a = "topic.a-vtag.test.A";
    let b = "topic.b-vtag.test.A";
    let v1 = record("A", json!([{"name": "x", "type": "int"}]));
    let v2 = record(
        "A",
        json!([{"name": "x", "type": "int"}, {"name": "y", "type": "int", "default": 1}]),
    );
    server.register(a, &v1).await;
    server.register(a, &v2).await;
    server.register(b, &v2).await;
    server
        .put(&format!("/config/{b}"), &json!({"compatibility": "FULL"}))
        .await;
    server
        .put("/config", &json!({"compatibility": "FORWARD"}))
        .await;
    let before = snapshot(&server).await;
    server.stop().await;

    // The journaled global level wins over the command-line default on restart.
    let server = Server::start_with(&dir, CompatibilityLevel::None).await;
    assert_eq!(snapshot(&server).await, before);
    assert_eq!(
        server.get(&format!("/config/{b}")).await.1,
        json!({"compatibilityLevel": "FULL"})
    );
    assert_eq!(before["config"], json!({"compatibilityLevel": "FORWARD"}));
    // Ids keep counting from where they were; nothing is reused.
    let (_, r) = server.register(b, &record("A", json!([{"name": "x", "type": "int"}, {"name": "y", "type": "int", "default": 1}, {"name": "z", "type": "int", "default": 2}]))).await;
    assert_eq!(r, json!({"id": 3}));
    // Re-registering an old schema after restart still dedups.
    assert_eq!(server.register(a, &v1).await.1, json!({"id": 1}));
    server.stop().await;
}

#[tokio::test]
async fn torn_last_journal_line_is_ignored_and_cut_off() {
    let dir = fresh_data_dir("torn");
    let server = Server::start(&dir).await;
    let s = "torn-vtag.test.T";
    let v1 = record("T", json!([{"name": "x", "type": "int"}]));
    assert_eq!(server.register(s, &v1).await.1, json!({"id": 1}));
    let before = snapshot(&server).await;
    server.stop().await;

    // Simulate a crash in the middle of writing the next registration.
    let journal = dir.join(JOURNAL_FILE);
    let good_len = std::fs::metadata(&journal).unwrap().len();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&journal)
        .unwrap()
        .write_all(br#"{"op":"register","subject":"torn-vtag.test.T","vers"#)
        .unwrap();

    let server = Server::start(&dir).await;
    assert_eq!(snapshot(&server).await, before);
    assert_eq!(
        std::fs::metadata(&journal).unwrap().len(),
        good_len,
        "torn tail cut off"
    );
    // New writes land on a clean line, so a further restart replays them fine.
    let v2 = record(
        "T",
        json!([{"name": "x", "type": "int"}, {"name": "y", "type": "int", "default": 0}]),
    );
    assert_eq!(server.register(s, &v2).await.1, json!({"id": 2}));
    let after = snapshot(&server).await;
    server.stop().await;

    let server = Server::start(&dir).await;
    assert_eq!(snapshot(&server).await, after);
    assert_eq!(
        server.get(&format!("/subjects/{s}/versions")).await.1,
        json!([1, 2])
    );
    server.stop().await;
}
