//! `vtag import focus` end to end against a fake command API on 127.0.0.1: what is sent (bytes,
//! headers, query), what is printed, and the exit code.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use vtag_cli::{run, Env, FAILED, REFUSED};

const IMPORTED: &str = r#"{"rows":3,"rounded_amounts":0,"resources":{"billed":2,"recorded":2},"ledgers":[{"ledger_id":"l1","provider":"AWS","billing_account_id":"123456789012","period_start":"2026-10-01","period_end":"2026-11-01","currency":"USD","changed":true,"import_id":"i1","replaced_import_id":null,"version":1,"rows":3,"resources":2,"billed_cost":"12.5","effective_cost":"12.5","unallocatable_billed_cost":"0","import":"/api/v1/costs/imports/i1"}],"consistency_token":"0:12"}"#;

const BAD_CELL: &str = r#"{"type":"https://vtag.dev/problems/validation","title":"The request has invalid fields","status":422,"detail":"the billing file was not imported: row 42, column BilledCost: '12.5x' is not a number","errors":[{"field":"BilledCost","rule":"decimal","message":"'12.5x' is not a number","line":43}],"row":42,"line":43,"column":"BilledCost"}"#;

/// What the fake API was sent.
#[derive(Default)]
struct Seen {
    headers: HeaderMap,
    query: HashMap<String, String>,
    body: Vec<u8>,
}

/// A fake command API answering every import with `status`, `content_type` and `answer`;
/// returns its URL and what it was sent.
async fn fake_api(status: StatusCode, content_type: &'static str, answer: &'static str) -> (String, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let record = seen.clone();
    let handler = move |headers: HeaderMap, Query(query): Query<HashMap<String, String>>, body: Bytes| async move {
        *record.lock().unwrap() = Seen { headers, query, body: body.to_vec() };
        let mut response: Response = (status, [(header::CONTENT_TYPE, content_type)], answer).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(header::RETRY_AFTER, "1".parse().unwrap());
        }
        response
    };
    let app = Router::new().route("/api/v1/costs/imports", post(handler)).layer(DefaultBodyLimit::disable());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

/// A file of `len` bytes that differ from position to position, so a lost or reordered chunk shows.
fn billing_file(name: &str, len: usize) -> (TempFile, Vec<u8>) {
    // a folder per file: `cargo test` runs the tests as threads of one process
    static FILES: AtomicUsize = AtomicUsize::new(0);
    let n = FILES.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("vtag-cli-test-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &bytes).unwrap();
    (TempFile(path), bytes)
}

/// Removed with its folder at the end of the test.
struct TempFile(PathBuf);

impl std::ops::Deref for TempFile {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let _ = self.0.parent().map(std::fs::remove_dir_all);
    }
}

struct Outcome {
    code: u8,
    out: String,
    err: String,
}

async fn vtag(args: &[&str], env: &Env) -> Outcome {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run(args.iter().map(|a| a.to_string()), env, &mut out, &mut err).await;
    Outcome { code, out: String::from_utf8(out).unwrap(), err: String::from_utf8(err).unwrap() }
}

fn env_with_token() -> Env {
    Env { token: Some("t0k".into()), ..Env::default() }
}

#[tokio::test]
async fn the_file_is_streamed_whole_with_its_headers_and_a_summary_is_printed() {
    let (api, seen) = fake_api(StatusCode::CREATED, "application/json", IMPORTED).await;
    // several chunks, the last one short
    let (path, bytes) = billing_file("oct 2026.csv", 3 * (256 << 10) + 1234);
    let file = path.to_str().unwrap();
    let run = vtag(&["import", "focus", file, "--api", &api, "--idempotency-key", "oct-1", "--quiet"], &env_with_token()).await;

    assert_eq!(run.code, 0, "{}", run.err);
    assert_eq!(run.err, "");
    assert!(run.out.starts_with("imported oct 2026.csv: 3 rows, 1 ledger (1 changed, 0 unchanged)\n"), "{}", run.out);
    assert!(run.out.contains("  new  AWS  123456789012  2026-10-01 to 2026-11-01  12.5 USD\n"), "{}", run.out);
    assert!(run.out.contains("2 resources billed, 2 recorded from billing\ntook "), "{}", run.out);

    let seen = seen.lock().unwrap();
    assert!(seen.body == bytes, "the body is the file, byte for byte ({} bytes received)", seen.body.len());
    let header = |name: &str| seen.headers.get(name).map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(header("authorization").as_deref(), Some("Bearer t0k"));
    assert_eq!(header("content-type").as_deref(), Some("text/csv"));
    assert_eq!(header("content-length"), Some(bytes.len().to_string()));
    assert_eq!(header("idempotency-key").as_deref(), Some("oct-1"));
    assert_eq!(seen.query.get("source").map(String::as_str), Some("oct 2026.csv"));
}

#[tokio::test]
async fn json_prints_the_answer_as_the_server_sent_it() {
    let (api, seen) = fake_api(StatusCode::OK, "application/json", IMPORTED).await;
    let (path, _) = billing_file("nov.csv.gz", 10);
    // the API and the token from the environment, the source from the command line
    let env = Env { command_api_url: Some(format!("{api}/")), token: Some("env-token".into()), interactive: false };
    let run = vtag(&["import", "focus", "--json", "--source=November", path.to_str().unwrap()], &env).await;

    assert_eq!(run.code, 0, "{}", run.err);
    assert_eq!(run.out, format!("{IMPORTED}\n"));
    let seen = seen.lock().unwrap();
    assert_eq!(seen.headers["authorization"], "Bearer env-token");
    assert_eq!(seen.headers["content-type"], "application/gzip");
    assert!(!seen.headers.contains_key("idempotency-key"));
    assert_eq!(seen.query["source"], "November");
}

#[tokio::test]
async fn a_refused_file_is_one_clear_line_and_exit_code_1() {
    let (api, _) = fake_api(StatusCode::UNPROCESSABLE_ENTITY, "application/problem+json", BAD_CELL).await;
    let (path, _) = billing_file("bad.csv", 100);
    let file = path.to_str().unwrap();

    let run = vtag(&["import", "focus", file, "--api", &api], &env_with_token()).await;
    assert_eq!(run.code, REFUSED);
    assert_eq!(run.out, "");
    assert_eq!(
        run.err,
        "error: the billing file was not imported: row 42, column BilledCost: '12.5x' is not a number\n"
    );

    // with --json the problem itself goes to standard output too, for scripts
    let run = vtag(&["import", "focus", file, "--api", &api, "--json"], &env_with_token()).await;
    assert_eq!(run.code, REFUSED);
    assert_eq!(run.out, format!("{BAD_CELL}\n"));
    assert!(run.err.starts_with("error: the billing file was not imported: row 42"), "{}", run.err);
}

#[tokio::test]
async fn unavailable_is_exit_code_2_and_safe_to_retry() {
    let problem = r#"{"type":"https://vtag.dev/problems/unavailable","title":"Temporarily unavailable","status":503,"detail":"the event log is not reachable"}"#;
    let (api, _) = fake_api(StatusCode::SERVICE_UNAVAILABLE, "application/problem+json", problem).await;
    let (path, _) = billing_file("busy.csv", 100);
    let run = vtag(&["import", "focus", path.to_str().unwrap(), "--api", &api], &env_with_token()).await;
    assert_eq!(run.code, FAILED);
    assert_eq!(
        run.err,
        "error: Temporarily unavailable: the event log is not reachable\n\
         note: retrying is safe (the server asks to wait 1 s)\n"
    );
}

#[tokio::test]
async fn no_server_is_exit_code_2() {
    // a port that was free a moment ago: nothing listens there
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let api = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let (path, _) = billing_file("lost.csv", 100);
    let run = vtag(&["import", "focus", path.to_str().unwrap(), "--api", &api], &env_with_token()).await;
    assert_eq!(run.code, FAILED);
    assert!(run.err.starts_with(&format!("error: could not reach the command API at {api}: ")), "{}", run.err);
    assert!(run.err.ends_with("note: re-sending the same file is safe\n"), "{}", run.err);
}

#[tokio::test]
async fn mistakes_found_before_sending_are_exit_code_1() {
    let (path, _) = billing_file("early.csv", 10);
    let file = path.to_str().unwrap();
    // nothing listens on port 9 of the loopback: these must fail before connecting
    let api = "http://127.0.0.1:9";

    let run = vtag(&["import", "focus", file, "--api", api], &Env::default()).await;
    assert_eq!(run.code, REFUSED);
    assert_eq!(run.err, "error: no token: pass --token TOKEN or set VTAG_TOKEN (a token with the editor role)\n");

    let missing = path.with_file_name("missing.csv");
    let run = vtag(&["import", "focus", missing.to_str().unwrap(), "--api", api], &env_with_token()).await;
    assert_eq!(run.code, REFUSED);
    assert!(run.err.starts_with(&format!("error: cannot read {}: ", missing.display())), "{}", run.err);

    let run = vtag(&["import", "focus", path.parent().unwrap().to_str().unwrap(), "--api", api], &env_with_token()).await;
    assert_eq!(run.code, REFUSED);
    assert!(run.err.ends_with("is not a file\n"), "{}", run.err);

    let run = vtag(&["import", "focus", file, "--api", "https://vtag.example"], &env_with_token()).await;
    assert_eq!(run.code, REFUSED);
    assert!(run.err.contains("only http:// URLs are supported"), "{}", run.err);

    let run = vtag(&["import", "focus", file, "--frob"], &env_with_token()).await;
    assert_eq!(run.code, REFUSED);
    assert_eq!(run.err, "error: unknown option \"--frob\" (see vtag --help)\n");
}

#[tokio::test]
async fn help_and_version_go_to_standard_output() {
    let run = vtag(&["--help"], &Env::default()).await;
    assert_eq!((run.code, run.out.as_str()), (0, vtag_cli::USAGE));
    let run = vtag(&["import", "focus", "--help"], &Env::default()).await;
    assert_eq!((run.code, run.out.as_str()), (0, vtag_cli::IMPORT_FOCUS_USAGE));
    let run = vtag(&["--version"], &Env::default()).await;
    assert_eq!((run.code, run.out), (0, format!("vtag {}\n", env!("CARGO_PKG_VERSION"))));
    let run = vtag(&[], &Env::default()).await;
    assert_eq!(run.code, REFUSED);
    assert_eq!(run.err, "error: no command given (see vtag --help)\n");
}

#[tokio::test]
async fn a_refusal_before_the_body_is_read_is_still_the_servers_answer() {
    // as the real API does for a bad token: it answers before reading a byte of the body
    let problem = r#"{"type":"https://vtag.dev/problems/unauthorized","title":"Authentication required","status":401,"detail":"the token has expired"}"#;
    let handler = move || async move {
        (StatusCode::UNAUTHORIZED, [(header::CONTENT_TYPE, "application/problem+json")], problem)
    };
    let app = Router::new().route("/api/v1/costs/imports", post(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    // far more than the socket buffers hold: the upload is cut off mid-way
    let (path, _) = billing_file("expired.csv", 16 << 20);
    let run = vtag(&["import", "focus", path.to_str().unwrap(), "--api", &api], &env_with_token()).await;
    assert_eq!(run.code, REFUSED, "{}", run.err);
    assert_eq!(
        run.err,
        "error: Authentication required: the token has expired\n\
         note: pass a token with the editor role: --token TOKEN or VTAG_TOKEN\n"
    );
}
