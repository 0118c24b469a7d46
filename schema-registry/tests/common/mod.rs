//! In-process registry on 127.0.0.1:0 for the integration tests.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use vtag_schema_registry::{serve, CompatibilityLevel, ServeError, DEFAULT_COMPATIBILITY};

pub const SR_CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

pub struct Server {
    pub base: String,
    pub data_dir: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ServeError>>,
}

/// A fresh, empty data dir under cargo's per-target temp dir.
pub fn fresh_data_dir(name: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "schema-registry-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

impl Server {
    pub async fn start(data_dir: &Path) -> Server {
        Self::start_with(data_dir, DEFAULT_COMPATIBILITY).await
    }

    pub async fn start_with(data_dir: &Path, level: CompatibilityLevel) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, data_dir.to_owned(), level, async {
            let _ = stopped.await;
        }));
        let server = Server {
            base,
            data_dir: data_dir.to_owned(),
            stop: Some(stop),
            task,
        };
        // serve() replays the journal before accepting; wait until it answers.
        for _ in 0..100 {
            if reqwest::get(server.url("/health"))
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                return server;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("registry did not become healthy");
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Graceful stop; returns only once the server task (and its journal) is gone.
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap().unwrap();
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = reqwest::get(self.url(path)).await.unwrap();
        Self::parts(r).await
    }

    /// POST/PUT with Confluent's content type, as the real clients send it.
    pub async fn send(&self, method: reqwest::Method, path: &str, body: &Value) -> (u16, Value) {
        let r = reqwest::Client::new()
            .request(method, self.url(path))
            .header("content-type", SR_CONTENT_TYPE)
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        Self::parts(r).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, body).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(reqwest::Method::PUT, path, body).await
    }

    /// Registers `schema` (a JSON value) under `subject`.
    pub async fn register(&self, subject: &str, schema: &Value) -> (u16, Value) {
        self.post(
            &format!("/subjects/{subject}/versions"),
            &serde_json::json!({ "schema": schema.to_string(), "schemaType": "AVRO" }),
        )
        .await
    }

    async fn parts(r: reqwest::Response) -> (u16, Value) {
        let status = r.status().as_u16();
        let content_type = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(content_type.as_deref(), Some(SR_CONTENT_TYPE));
        let text = r.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        (status, body)
    }
}

/// A record schema `vtag.test.<name>` with the given fields (JSON array text).
pub fn record(name: &str, fields: Value) -> Value {
    serde_json::json!({
        "type": "record",
        "name": name,
        "namespace": "vtag.test",
        "fields": fields,
    })
}
