use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;
use vtag_service::auth::{Claims, Role};
use vtag_service::Authenticator;

/// The stack `make test` started (see `scripts/stack.sh env`).
#[derive(Debug, Clone)]
pub struct Stack {
    pub brokers: String,
    pub registry_url: String,
    pub pg_admin_url: String,
    pub bin_dir: String,
    pub opensearch_url: String,
    pub bolt: vtag_projectors::graph::BoltSettings,
}

fn required(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the integration tests with `make test`, which starts the local stack")
    })
}

impl Stack {
    pub fn from_env() -> Self {
        Self {
            brokers: required("VTAG_KAFKA_BROKERS"),
            registry_url: required("VTAG_SCHEMA_REGISTRY_URL"),
            pg_admin_url: required("VTAG_PG_ADMIN_URL"),
            bin_dir: required("VTAG_BIN_DIR"),
            opensearch_url: required("VTAG_OPENSEARCH_URL"),
            bolt: vtag_projectors::graph::BoltSettings::from_lookup(|name| Some(required(name))),
        }
    }
}

/// One test's private world.
pub struct TestEnv {
    pub stack: Stack,
    pub prefix: String,
    pub partitions: i32,
    pub database_url: String,
    pub secret: String,
    pub auth: Arc<Authenticator>,
}

impl TestEnv {
    pub async fn new() -> Self {
        Self::with_stack(Stack::from_env()).await
    }

    pub async fn with_stack(stack: Stack) -> Self {
        // Service logs go to the test's output, which nextest shows when a test fails.
        vtag_service::telemetry::init("vtag-tests");
        let id = Uuid::new_v4().simple().to_string()[..12].to_owned();
        let database_url = create_database(&stack.pg_admin_url, &format!("t_{id}")).await;
        let secret = format!("test-secret-{}", Uuid::new_v4().simple());
        let auth = Arc::new(Authenticator::new(secret.clone()).expect("secret long enough"));
        Self { stack, prefix: format!("t{id}."), partitions: 4, database_url, secret, auth }
    }

    pub fn topic(&self) -> String {
        vtag_eventlog::EventTopics::new(self.prefix.clone(), self.partitions).resource_events()
    }

    pub fn token(&self, tenant: &str, sub: &str, role: Role) -> String {
        let now = chrono::Utc::now().timestamp();
        self.auth.issue(&Claims { sub: sub.into(), tenant: tenant.into(), role, exp: now + 3600, iat: now })
    }

    pub fn editor(&self) -> String {
        self.token("acme", "alice@acme.test", Role::Editor)
    }

    pub fn command_settings(&self) -> vtag_command_api::Settings {
        vtag_command_api::Settings {
            listen: "127.0.0.1:0".into(),
            brokers: self.stack.brokers.clone(),
            registry_url: self.stack.registry_url.clone(),
            topic_prefix: self.prefix.clone(),
            partitions: self.partitions,
            rederive_chunk: 2_000,
            rederive_pause: Duration::ZERO,
        }
    }

    pub fn projector_settings(&self) -> vtag_projectors::Settings {
        vtag_projectors::Settings { database_url: self.database_url.clone(), log: self.log_settings() }
    }

    /// How the projectors in this process read this test's log.
    fn log_settings(&self) -> vtag_projectors::LogSettings {
        vtag_projectors::LogSettings {
            brokers: self.stack.brokers.clone(),
            registry_url: self.stack.registry_url.clone(),
            topic_prefix: self.prefix.clone(),
            partitions: self.partitions,
            batch_size: 2000,
            batch_linger: Duration::from_millis(10),
        }
    }

    /// The environment the service binaries read, for child processes.
    pub fn service_env(&self) -> Vec<(String, String)> {
        vec![
            ("VTAG_DATABASE_URL".into(), self.database_url.clone()),
            ("VTAG_KAFKA_BROKERS".into(), self.stack.brokers.clone()),
            ("VTAG_SCHEMA_REGISTRY_URL".into(), self.stack.registry_url.clone()),
            ("VTAG_TOPIC_PREFIX".into(), self.prefix.clone()),
            ("VTAG_PARTITIONS".into(), self.partitions.to_string()),
            ("VTAG_JWT_SECRET".into(), self.secret.clone()),
            ("VTAG_PROJECTOR_BATCH".into(), "500".into()),
            ("VTAG_OPENSEARCH_URL".into(), self.stack.opensearch_url.clone()),
            ("VTAG_BOLT_URL".into(), self.stack.bolt.url.clone()),
            ("VTAG_BOLT_USER".into(), self.stack.bolt.user.clone()),
            ("VTAG_BOLT_PASSWORD".into(), self.stack.bolt.password.clone()),
            ("VTAG_BOLT_DATABASE".into(), self.stack.bolt.database.clone()),
        ]
    }

    pub async fn pool(&self) -> PgPool {
        PgPoolOptions::new().max_connections(4).connect(&self.database_url).await.expect("connect test database")
    }

    pub async fn start_command_api(&self) -> Service {
        self.start_command_api_with(self.command_settings()).await
    }

    pub async fn start_command_api_with(&self, settings: vtag_command_api::Settings) -> Service {
        let auth = Authenticator::new(self.secret.clone()).unwrap();
        Service::spawn("command-api", |listener, shutdown| async move {
            vtag_command_api::serve(listener, settings, auth, shutdown).await
        })
        .await
    }

    pub async fn start_query_api(&self) -> Service {
        let settings = vtag_query_api::Settings {
            database_url: self.database_url.clone(),
            listen: "127.0.0.1:0".parse().unwrap(),
            topic_prefix: self.prefix.clone(),
            consistency_wait: Duration::from_secs(15),
            authenticator: self.auth.clone(),
            cost_cache_rows: vtag_query_api::Settings::DEFAULT_COST_CACHE_ROWS,
            opensearch_url: self.stack.opensearch_url.clone(),
            brokers: self.stack.brokers.clone(),
            bolt: self.stack.bolt.clone(),
        };
        Service::spawn("query-api", |listener, shutdown| async move {
            vtag_query_api::serve(listener, settings, shutdown).await
        })
        .await
    }

    pub fn start_projector(&self) -> Worker {
        let settings = self.projector_settings();
        let (tx, rx) = oneshot::channel::<()>();
        Worker::spawn("projector", tx, vtag_projectors::postgres::run(settings, async move {
            let _ = rx.await;
        }))
    }

    pub fn search_settings(&self) -> vtag_projectors::search::SearchSettings {
        vtag_projectors::search::SearchSettings { opensearch_url: self.stack.opensearch_url.clone(), log: self.log_settings() }
    }

    /// The search projector in this process.
    pub fn start_search_projector(&self) -> Worker {
        self.start_search_projector_with(self.search_settings())
    }

    pub fn start_search_projector_with(&self, settings: vtag_projectors::search::SearchSettings) -> Worker {
        let (tx, rx) = oneshot::channel::<()>();
        Worker::spawn("search projector", tx, vtag_projectors::search::run(settings, async move {
            let _ = rx.await;
        }))
    }

    /// The search projector as a separate OS process, so a test can kill -9 it.
    pub fn spawn_search_projector_process(&self) -> tokio::process::Child {
        self.spawn_service_process("vtag-projector-search")
    }

    pub fn graph_settings(&self) -> vtag_projectors::graph::GraphSettings {
        vtag_projectors::graph::GraphSettings { bolt: self.stack.bolt.clone(), log: self.log_settings() }
    }

    /// The graph projector in this process.
    pub fn start_graph_projector(&self) -> Worker {
        let (tx, rx) = oneshot::channel::<()>();
        Worker::spawn("graph projector", tx, vtag_projectors::graph::run(self.graph_settings(), async move {
            let _ = rx.await;
        }))
    }

    /// The graph projector as a separate OS process, so a test can kill -9 it.
    pub fn spawn_graph_projector_process(&self) -> tokio::process::Child {
        self.spawn_service_process("vtag-projector-graph")
    }

    /// The compliance evaluator in this process; time moves violations on every `tick`.
    pub fn start_compliance(&self, tick: Duration) -> Worker {
        let settings = vtag_compliance::Settings {
            database_url: self.database_url.clone(),
            brokers: self.stack.brokers.clone(),
            registry_url: self.stack.registry_url.clone(),
            topic_prefix: self.prefix.clone(),
            partitions: self.partitions,
            tick,
        };
        let (tx, rx) = oneshot::channel::<()>();
        Worker::spawn("compliance evaluator", tx, vtag_compliance::run(settings, async move {
            let _ = rx.await;
        }))
    }

    /// The projector as a separate OS process, so a test can kill -9 it.
    pub fn spawn_projector_process(&self) -> tokio::process::Child {
        self.spawn_service_process("vtag-projector")
    }

    /// One of the service binaries `make test` built, with this test's environment.
    fn spawn_service_process(&self, name: &str) -> tokio::process::Child {
        let bin = format!("{}/{name}", self.stack.bin_dir);
        tokio::process::Command::new(&bin)
            .envs(self.service_env())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {bin}: {e} (make test builds it)"))
    }

    /// The herald in this process, with `tweak` applied to its test settings
    /// (`alerts::herald_settings`: no configuration, quick retries).
    pub fn start_herald(&self, tweak: impl FnOnce(&mut vtag_herald::Settings)) -> Worker {
        let mut settings = crate::alerts::herald_settings(self);
        tweak(&mut settings);
        let (tx, rx) = oneshot::channel::<()>();
        Worker::spawn("herald", tx, vtag_herald::run(settings, async move {
            let _ = rx.await;
        }))
    }
}

async fn create_database(admin_url: &str, name: &str) -> String {
    let admin = PgPoolOptions::new().max_connections(1).connect(admin_url).await.expect("connect Postgres (admin)");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&admin).await.expect("create test database");
    admin.close().await;
    match admin_url.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{name}"),
        None => panic!("VTAG_PG_ADMIN_URL must end in /<database>"),
    }
}

/// A service running in this process on an ephemeral port.
pub struct Service {
    pub name: &'static str,
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Service {
    async fn spawn<F, Fut>(name: &'static str, start: F) -> Self
    where
        F: FnOnce(tokio::net::TcpListener, futures::future::BoxFuture<'static, ()>) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let shutdown: futures::future::BoxFuture<'static, ()> = Box::pin(async move {
            let _ = rx.await;
        });
        let handle = tokio::spawn(start(listener, shutdown));
        let service = Self { name, addr, shutdown: Some(tx), handle: Some(handle) };
        service.wait_healthy().await;
        service
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn wait_healthy(&self) {
        let client = reqwest::Client::new();
        for _ in 0..600 {
            if let Ok(r) = client.get(self.url("/health")).timeout(Duration::from_secs(5)).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            if self.handle.as_ref().is_some_and(|h| h.is_finished()) {
                panic!("{} exited during start-up", self.name);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{} did not become healthy", self.name);
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.expect("service task").expect("service stopped cleanly");
        }
    }
}

/// A background worker (the projector) running in this process.
pub struct Worker {
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Worker {
    /// Runs `work` in its own task. A failure is logged the moment it happens: a test waiting on
    /// a read model would otherwise only time out, the cause surfacing (if ever) at `stop`.
    fn spawn(
        what: &'static str,
        shutdown: oneshot::Sender<()>,
        work: impl std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    ) -> Self {
        let handle = tokio::spawn(async move {
            let result = work.await;
            if let Err(e) = &result {
                tracing::error!(error = format!("{e:#}"), "{what} failed");
            }
            result
        });
        Worker { shutdown: Some(shutdown), handle: Some(handle) }
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.expect("worker task").expect("worker stopped cleanly");
        }
    }
}

/// Polls `check` until it returns Some or `timeout` passes.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A port nobody listens on now, for a server a test starts itself.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A new directory of its own under `$VTAG_HOME/<what>` (git-ignored), for a server a test starts.
pub fn scratch_dir(what: &str) -> std::path::PathBuf {
    let home = std::env::var("VTAG_HOME").unwrap_or_else(|_| ".vtag".into());
    let dir = std::path::PathBuf::from(home).join(what).join(Uuid::new_v4().simple().to_string());
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}
