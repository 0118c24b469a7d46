//! The real service binaries as child processes (the realistic deployment: one process per
//! service, so each one's RSS and CPU can be read from /proc).

use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::process::{Child, Command};

use crate::harness::TestEnv;

pub struct ChildService {
    pub name: &'static str,
    pub child: Child,
    pub pid: u32,
}

impl ChildService {
    /// Starts `$VTAG_BIN_DIR/<bin>` with the test environment's service variables plus `extra`
    /// (an extra entry with an empty value removes the variable).
    pub fn spawn(env: &TestEnv, name: &'static str, bin: &str, extra: &[(&str, String)]) -> anyhow::Result<Self> {
        let path = format!("{}/{bin}", env.stack.bin_dir);
        let mut cmd = Command::new(&path);
        for (k, v) in env.service_env() {
            if !extra.iter().any(|(e, _)| *e == k) {
                cmd.env(k, v);
            }
        }
        for (k, v) in extra {
            if v.is_empty() {
                cmd.env_remove(k);
            } else {
                cmd.env(k, v);
            }
        }
        let child = cmd
            .env("RUST_LOG", std::env::var("VTAG_BENCH_SERVICE_LOG").unwrap_or_else(|_| "warn".into()))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("could not start {path} (build it: cargo build --release --bins)"))?;
        let pid = child.id().context("child has no pid")?;
        Ok(Self { name, child, pid })
    }

    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGTERM (graceful shutdown), then SIGKILL after `grace`.
    pub async fn stop(mut self, grace: Duration) -> anyhow::Result<()> {
        if self.exited().is_some() {
            return Ok(());
        }
        let _ = std::process::Command::new("kill").arg("-TERM").arg(self.pid.to_string()).status();
        match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(status) => {
                let status = status?;
                if !status.success() {
                    eprintln!("[bench] warning: {} exited with {status} on SIGTERM", self.name);
                }
                Ok(())
            }
            Err(_) => {
                eprintln!("[bench] warning: {} ignored SIGTERM for {grace:?}; killing it", self.name);
                self.child.kill().await?;
                Ok(())
            }
        }
    }
}

/// A free local port (bound and released: a tiny race, fine for a benchmark).
pub fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Polls `GET <base>/health` until it answers 2xx.
pub async fn wait_healthy(service: &mut ChildService, base: &str, timeout: Duration) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Ok(r) = client.get(format!("{base}/health")).timeout(Duration::from_secs(2)).send().await {
            if r.status().is_success() {
                return Ok(());
            }
        }
        if let Some(status) = service.exited() {
            bail!("{} exited during start-up ({status})", service.name);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("{} did not become healthy within {timeout:?}", service.name);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
