//! Receivers for the herald's alerts, started by the tests themselves: an HTTP server (webhooks
//! and Slack) that checks signatures and records every request, and a real SMTP server (Python
//! aiosmtpd, installed by `scripts/stack.sh install`) writing what it receives to a Maildir.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::time::Instant;
use uuid::Uuid;
use vtag_domain::compliance::{Change, Transition};

use crate::harness::TestEnv;

/// The herald's settings for a test: no configuration, quick retries.
pub fn herald_settings(env: &TestEnv) -> vtag_herald::Settings {
    vtag_herald::Settings {
        database_url: env.database_url.clone(),
        brokers: env.stack.brokers.clone(),
        registry_url: env.stack.registry_url.clone(),
        topic_prefix: env.prefix.clone(),
        partitions: env.partitions,
        config_path: None,
        secrets: HashMap::new(),
        retry_base: Duration::from_millis(100),
        retry_max: Duration::from_secs(2),
        max_attempts: 8,
        send_timeout: Duration::from_secs(5),
    }
}

/// Writes a herald configuration into a directory of this test's own; returns its path.
pub fn write_config(env: &TestEnv, yaml: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vtag-herald-{}", env.prefix.trim_end_matches('.')));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("herald.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// One request as an HTTP receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Whether `X-Vtag-Signature` is the HMAC of timestamp + "." + body under the path's secret
    /// (None: the path has no secret, as for Slack).
    pub signature_valid: Option<bool>,
    pub at: Instant,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// How a receiver answers.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    Ok,
    /// Always this status.
    Fail(u16),
    /// 200 after sleeping (the request is recorded when it arrives).
    Slow(Duration),
}

struct ReceiverState {
    secrets: HashMap<String, String>,
    answer: Mutex<Answer>,
    received: Mutex<Vec<Received>>,
}

/// An HTTP server on an ephemeral port that records every POST.
pub struct Receiver {
    pub addr: std::net::SocketAddr,
    state: Arc<ReceiverState>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// `secrets`: path → webhook signing secret (requests with a bad signature get 401).
    pub async fn start(secrets: &[(&str, &str)], answer: Answer) -> Self {
        let state = Arc::new(ReceiverState {
            secrets: secrets.iter().map(|(p, s)| (p.to_string(), s.to_string())).collect(),
            answer: Mutex::new(answer),
            received: Mutex::new(Vec::new()),
        });
        let app = axum::Router::new().fallback(receive).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, state, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn answer(&self, answer: Answer) {
        *self.state.answer.lock().unwrap() = answer;
    }

    /// Every request so far to `path`, in arrival order.
    pub fn received(&self, path: &str) -> Vec<Received> {
        self.state.received.lock().unwrap().iter().filter(|r| r.path == path).cloned().collect()
    }

    pub fn stop(self) {
        self.task.abort();
    }
}

async fn receive(State(state): State<Arc<ReceiverState>>, uri: Uri, headers: HeaderMap, body: Bytes) -> StatusCode {
    let path = uri.path().to_owned();
    let signature_valid = state.secrets.get(&path).map(|secret| {
        let timestamp = headers.get("x-vtag-timestamp").and_then(|v| v.to_str().ok()).unwrap_or_default();
        let given = headers.get("x-vtag-signature").and_then(|v| v.to_str().ok()).unwrap_or_default();
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(&body);
        let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
        given == format!("sha256={hex}")
    });
    let answer = *state.answer.lock().unwrap();
    state.received.lock().unwrap().push(Received { path, headers, body, signature_valid, at: Instant::now() });
    if signature_valid == Some(false) {
        return StatusCode::UNAUTHORIZED;
    }
    match answer {
        Answer::Ok => StatusCode::OK,
        Answer::Fail(status) => StatusCode::from_u16(status).unwrap(),
        Answer::Slow(pause) => {
            tokio::time::sleep(pause).await;
            StatusCode::OK
        }
    }
}

/// A real SMTP server: `$VTAG_PYTHON -m aiosmtpd` with its Maildir handler, as a child process.
pub struct SmtpServer {
    pub port: u16,
    maildir: PathBuf,
    child: tokio::process::Child,
}

/// One email as the SMTP server stored it.
#[derive(Debug, Clone)]
pub struct Email {
    /// Header names lowercase.
    pub headers: BTreeMap<String, String>,
    /// The body with quoted-printable soft line breaks undone.
    pub body: String,
}

impl SmtpServer {
    pub async fn start(env: &TestEnv) -> Self {
        let python = std::env::var("VTAG_PYTHON")
            .unwrap_or_else(|_| panic!("VTAG_PYTHON is not set: eval \"$(scripts/stack.sh env)\" after scripts/stack.sh install"));
        assert!(Path::new(&python).exists(), "{python} is missing: run scripts/stack.sh install smtp");
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let maildir = std::env::temp_dir().join(format!("vtag-herald-mail-{}", env.prefix.trim_end_matches('.')));
        let child = tokio::process::Command::new(&python)
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {python} -m aiosmtpd: {e}"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(Instant::now() < deadline, "aiosmtpd did not listen on {port} within 20 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self { port, maildir, child }
    }

    /// Every message delivered so far.
    pub fn messages(&self) -> Vec<Email> {
        let Ok(entries) = std::fs::read_dir(self.maildir.join("new")) else { return Vec::new() };
        let mut out = Vec::new();
        for e in entries.flatten() {
            let raw = std::fs::read_to_string(e.path()).unwrap();
            let raw = raw.replace("\r\n", "\n");
            let (head, body) = raw.split_once("\n\n").unwrap_or((&raw, ""));
            let mut headers = BTreeMap::new();
            let mut last: Option<String> = None;
            for line in head.lines() {
                if line.starts_with([' ', '\t']) {
                    if let Some(h) = &last {
                        headers.entry(h.clone()).and_modify(|v: &mut String| v.push_str(line.trim_start_matches(['\t'])));
                    }
                    continue;
                }
                if let Some((name, value)) = line.split_once(':') {
                    let name = name.trim().to_ascii_lowercase();
                    headers.insert(name.clone(), value.trim().to_owned());
                    last = Some(name);
                }
            }
            out.push(Email { headers, body: body.replace("=\n", "").replace("=3D", "=") });
        }
        out
    }

    /// Stops the server by its pid (the child handle) and removes its Maildir.
    pub async fn stop(mut self) {
        self.child.kill().await.expect("kill aiosmtpd");
        let _ = std::fs::remove_dir_all(&self.maildir);
    }
}

/// The event ids of every `ViolationBecameDue` on the test's compliance-events topic.
pub async fn due_event_ids(env: &TestEnv) -> Vec<Uuid> {
    crate::log::compliance_decisions(env)
        .await
        .into_iter()
        .filter(|r| matches!(r.change, Change::Transition(Transition::BecameDue { .. })))
        .map(|r| r.envelope.event_id)
        .collect()
}
