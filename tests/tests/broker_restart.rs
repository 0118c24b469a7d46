//! Durability: stop every service and the broker, start them again — every event is still in the
//! log, the read model is unchanged, and the command side decides from the rebuilt state.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;
use vtag_tests::harness::{eventually, free_port, scratch_dir, Stack, TestEnv};
use vtag_tests::http::{observe_batch, Api};
use vtag_tests::log::records_in;
use vtag_tests::readmodel::{folded, snapshot};

/// A private tansu broker (sqlite storage) this test may stop and start at will.
struct Broker {
    dir: PathBuf,
    port: u16,
    child: Option<tokio::process::Child>,
}

impl Broker {
    async fn start(dir: PathBuf, port: u16) -> Self {
        let bin = std::env::var("VTAG_TANSU_BIN").unwrap_or_else(|_| "tansu".into());
        let url = format!("tcp://127.0.0.1:{port}");
        let child = tokio::process::Command::new(&bin)
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url, "--storage-engine", "sqlite://tansu.db"])
            .current_dir(&dir)
            .env_remove("SCHEMA_REGISTRY")
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start {bin}: {e}"));
        eventually(Duration::from_secs(30), "the broker to listen", || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok().map(|_| ())
        })
        .await;
        Self { dir, port, child: Some(child) }
    }

    /// A clean stop (SIGTERM), as an operator would do.
    async fn stop(mut self) -> (PathBuf, u16) {
        let mut child = self.child.take().unwrap();
        let pid = child.id().expect("running") as i32;
        // SAFETY-free: kill(2) through the shell utility keeps this test free of libc bindings.
        std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("kill -TERM");
        tokio::time::timeout(Duration::from_secs(15), child.wait()).await.expect("broker stops").unwrap();
        (self.dir.clone(), self.port)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_and_the_read_model_survive_a_full_restart() {
    let dir = scratch_dir("test-brokers");
    let broker = Broker::start(dir, free_port()).await;
    let mut stack = Stack::from_env();
    stack.brokers = format!("127.0.0.1:{}", broker.port);
    let env = TestEnv::with_stack(stack).await;
    let pool = env.pool().await;

    let commands = env.start_command_api().await;
    let projector = env.start_projector();
    let api = Api::new(commands.url(""), Some(env.editor()));
    let observed = api.post("/api/v1/resources/observe", &observe_batch(0, 300)).await;
    assert_eq!(observed.status, 200, "{:?}", observed.body);
    let ids: Vec<String> = observed.body["results"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect();
    let applied = api.post("/api/v1/virtual-tags/apply", &json!({"resource_ids": ids, "key": "environment", "value": "production"})).await;
    assert_eq!(applied.status, 200);
    let written = records_in(&env.stack.brokers, &env.topic(), env.partitions);
    assert_eq!(written, 600);
    eventually(Duration::from_secs(60), "projection", || async { (folded(&pool).await == written).then_some(()) }).await;
    let before = snapshot(&pool).await;

    projector.stop().await;
    commands.stop().await;
    let (dir, port) = broker.stop().await;
    let broker = Broker::start(dir, port).await;

    assert_eq!(records_in(&env.stack.brokers, &env.topic(), env.partitions), written, "every event is still in the log");

    let commands = env.start_command_api().await;
    let projector = env.start_projector();
    let api = Api::new(commands.url(""), Some(env.editor()));
    // Give the restarted projector time to (wrongly) re-apply anything, then compare.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(folded(&pool).await, written);
    assert!(snapshot(&pool).await == before, "the read model must be unchanged by the restart");

    // The command side rebuilt its state from the log: version 2 is current, version 1 is stale.
    let stale = api.post("/api/v1/virtual-tags/apply", &json!({"resource_id": ids[0], "key": "owner", "value": "a@acme.test", "expected_version": 1})).await;
    assert_eq!(stale.status, 409, "{:?}", stale.body);
    let fresh = api.post("/api/v1/virtual-tags/apply", &json!({"resource_id": ids[0], "key": "owner", "value": "a@acme.test", "expected_version": 2})).await;
    assert_eq!(fresh.status, 200, "{:?}", fresh.body);
    assert_eq!(fresh.body["version"], 3);
    // Re-observing the same inventory after the restart records nothing.
    let again = api.post("/api/v1/resources/observe", &observe_batch(0, 300)).await;
    assert!(again.body["results"].as_array().unwrap().iter().all(|r| r["changed"] == false));
    assert_eq!(records_in(&env.stack.brokers, &env.topic(), env.partitions), written + 1);

    projector.stop().await;
    commands.stop().await;
    broker.stop().await;
}
