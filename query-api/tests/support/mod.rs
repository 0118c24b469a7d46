//! What the query API's Postgres tests share: a fresh database per test binary with the
//! projector's migrations, the service on 127.0.0.1:0, and an HTTP client with tokens.
//!
//! Needs `VTAG_TEST_PG_ADMIN_URL` (or `VTAG_PG_ADMIN_URL`, which `scripts/stack.sh env` exports),
//! e.g. postgres://vtag@127.0.0.1:55432/postgres; `make test` provides it. Without it the tests
//! fail rather than pretending to pass.

// Each test binary compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use sqlx::{Connection, Executor, PgConnection, PgPool};
use uuid::Uuid;
use vtag_query_api::Settings;
use vtag_service::auth::Claims;
use vtag_service::{Authenticator, Role};

pub const SECRET: &[u8] = b"query-api-integration-test-secret-not-for-production";
pub const PREFIX: &str = "qa.";
pub const WAIT: Duration = Duration::from_millis(1500);

fn admin_url() -> Option<String> {
    ["VTAG_TEST_PG_ADMIN_URL", "VTAG_PG_ADMIN_URL"].iter().find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
}

/// The admin URL with its database replaced by `name` (query string kept).
fn database_url(admin: &str, name: &str) -> String {
    let (base, query) = match admin.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (admin, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..].find('/').map_or(base.len(), |i| scheme_end + i);
    format!("{}/{name}{query}", &base[..host_end])
}

/// Runs `scenario` against a new, migrated database and drops the database afterwards, also when
/// the scenario panics (the panic is re-raised after the drop).
pub async fn with_database<F, Fut>(scenario: F)
where
    F: FnOnce(String, PgPool) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let admin = admin_url()
        .expect("set VTAG_PG_ADMIN_URL (e.g. postgres://vtag@127.0.0.1:55432/postgres); `make test` starts Postgres and sets it");
    let name = format!("qa_{}", Uuid::new_v4().simple());
    let mut admin_conn = PgConnection::connect(&admin).await.expect("connect with VTAG_TEST_PG_ADMIN_URL");
    admin_conn.execute(format!("CREATE DATABASE {name}").as_str()).await.expect("create the test database");

    let url = database_url(&admin, &name);
    let pool = PgPool::connect(&url).await.expect("connect to the test database");
    migrate(&pool).await;
    // Run in a task so a failed assertion still lets us drop the database before re-raising it.
    let outcome = tokio::spawn(scenario(url, pool.clone())).await;
    pool.close().await;
    admin_conn
        .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await
        .expect("drop the test database");
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn migrate(pool: &PgPool) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../projectors/migrations");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("projectors/migrations")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no migrations in {}", dir.display());
    for file in files {
        let sql = std::fs::read_to_string(&file).unwrap();
        sqlx::raw_sql(&sql).execute(pool).await.unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    }
}

/// The service, serving `url` on a free port until [`Server::stop`].
pub struct Server {
    pub api: Api,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Server {
    pub async fn start(url: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let auth = Arc::new(Authenticator::new(SECRET).unwrap());
        let settings = Settings {
            database_url: url.to_owned(),
            listen: addr,
            topic_prefix: PREFIX.into(),
            consistency_wait: WAIT,
            authenticator: auth.clone(),
            cost_cache_rows: Settings::DEFAULT_COST_CACHE_ROWS,
            opensearch_url: std::env::var("VTAG_OPENSEARCH_URL").unwrap_or_else(|_| Settings::DEFAULT_OPENSEARCH_URL.into()),
            brokers: std::env::var("VTAG_KAFKA_BROKERS").unwrap_or_else(|_| Settings::DEFAULT_BROKERS.into()),
            bolt: vtag_query_api::graph::BoltSettings::from_env(),
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(vtag_query_api::serve(listener, settings, async {
            let _ = stopped.await;
        }));
        Self { api: Api { http: Client::new(), base: format!("http://{addr}"), auth }, stop, task }
    }

    pub async fn stop(self) {
        self.stop.send(()).unwrap();
        self.task.await.unwrap().expect("serve returns cleanly on shutdown");
    }
}

pub struct Api {
    pub http: Client,
    pub base: String,
    pub auth: Arc<Authenticator>,
}

impl Api {
    pub fn token(&self, tenant: &str) -> String {
        let now = Utc::now().timestamp();
        self.auth.issue(&Claims {
            sub: "viewer@example.com".into(),
            tenant: tenant.into(),
            role: Role::Viewer,
            exp: now + 600,
            iat: now,
        })
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let (status, _, body) = self.get_with(path, token, &[]).await;
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    /// Any GET with extra headers; the body as text, for the non-JSON answers too.
    pub async fn get_with(
        &self,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, String) {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let res = req.send().await.unwrap();
        let (status, headers) = (res.status(), res.headers().clone());
        (status, headers, res.text().await.unwrap())
    }

    pub async fn graphql(&self, query: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut req = self.http.post(format!("{}/graphql", self.base)).json(&json!({ "query": query }));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.unwrap();
        (res.status(), res.json().await.unwrap_or(Value::Null))
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters (so `:` and `/` of an ARN too).
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn rfc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

#[allow(clippy::too_many_arguments)]
pub async fn insert_resource(
    pool: &PgPool,
    tenant: &str,
    id: Uuid,
    provider: &str,
    cloud_id: &str,
    name: &str,
    version: i64,
    at: DateTime<Utc>,
) {
    sqlx::query(
        "INSERT INTO resources (tenant, id, provider, cloud_resource_id, resource_type, name, account_id, region, version,
                                first_seen_at, last_changed_at)
         VALUES ($1, $2, $3, $4, $5, $6, '123456789012', 'us-east-1', $7, $8, $8)",
    )
    .bind(tenant)
    .bind(id)
    .bind(provider)
    .bind(cloud_id)
    .bind(if provider == "aws" { "ec2:instance" } else { "compute.instance" })
    .bind(name)
    .bind(version)
    .bind(at)
    .execute(pool)
    .await
    .unwrap();
}
