//! `vtag`, the command line: for now `vtag import focus FILE`, which streams a FOCUS billing
//! export to the command API and tells what it recorded. The logic is here rather than in
//! `main.rs` so that tests run it against a fake API and read its output and exit code.

mod args;
mod problem;
mod progress;
mod summary;
mod upload;

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context};

pub use args::{parse, ImportFocus, Invocation, IMPORT_FOCUS_USAGE, USAGE};
pub use problem::{FAILED, REFUSED};

pub const DEFAULT_API: &str = "http://127.0.0.1:18080";

/// What the command reads from its surroundings, passed in so tests do not depend on the process's.
#[derive(Debug, Default, Clone)]
pub struct Env {
    /// `VTAG_COMMAND_API_URL`
    pub command_api_url: Option<String>,
    /// `VTAG_TOKEN`
    pub token: Option<String>,
    /// Standard error is a terminal: progress is drawn there.
    pub interactive: bool,
}

impl Env {
    pub fn from_process() -> Self {
        let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        Self {
            command_api_url: var("VTAG_COMMAND_API_URL"),
            token: var("VTAG_TOKEN"),
            interactive: std::io::stderr().is_terminal(),
        }
    }
}

/// Runs one command line (without the program's name) and returns the exit code: 0 done,
/// [`REFUSED`] (the request, the file or the command line is at fault), [`FAILED`] (the server
/// failed or was not reached).
pub async fn run(args: impl IntoIterator<Item = String>, env: &Env, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let invocation = match args::parse(args) {
        Ok(invocation) => invocation,
        Err(e) => {
            say(err, &format!("error: {e:#} (see vtag --help)\n"));
            return REFUSED;
        }
    };
    match invocation {
        Invocation::Help(text) => {
            say(out, text);
            0
        }
        Invocation::Version => {
            say(out, &format!("vtag {}\n", env!("CARGO_PKG_VERSION")));
            0
        }
        Invocation::ImportFocus(args) => import_focus(args, env, out, err).await,
        Invocation::Replay { read_model } => run_projector(&projector_of(&read_model), &["--rebuild"], "the rebuild", err).await,
        Invocation::RetryHeld { projector } => {
            let mut args = vec!["--retry-held"];
            args.extend(projector.as_deref());
            run_projector("vtag-projector", &args, "the retry", err).await
        }
    }
}

/// The program whose `--rebuild` rebuilds `read_model` (the projector owns its read model; the CLI
/// only starts it).
fn projector_of(read_model: &str) -> String {
    match read_model {
        "postgres" => "vtag-projector",
        "neo4j" => "vtag-projector-graph",
        _ => "vtag-projector-search",
    }
    .to_owned()
}

/// Runs one of the projector programs, from this program's directory, with `args`.
async fn run_projector(name: &str, args: &[&str], what: &str, err: &mut dyn Write) -> u8 {
    let program = match std::env::current_exe() {
        Ok(me) => me.with_file_name(name),
        Err(e) => {
            say(err, &format!("error: cannot find this program's directory: {e}\n"));
            return FAILED;
        }
    };
    match tokio::process::Command::new(&program).args(args).status().await {
        Ok(status) if status.success() => 0,
        Ok(status) => {
            say(err, &format!("error: {what} failed ({status})\n"));
            FAILED
        }
        Err(e) => {
            say(err, &format!("error: cannot run {}: {e} (build it: cargo build --release --bins)\n", program.display()));
            FAILED
        }
    }
}

/// `vtag import focus`, once the command line is read.
async fn import_focus(args: ImportFocus, env: &Env, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let upload = match prepare(&args, env).await {
        Ok(upload) => upload,
        Err(e) => {
            say(err, &format!("error: {e:#}\n"));
            return REFUSED;
        }
    };
    let Upload { api, source, file, len, content_type, token } = upload;
    let request = upload::Request {
        url: upload::imports_url(&api, &source).expect("checked in prepare"),
        token: &token,
        idempotency_key: args.idempotency_key.as_deref(),
        content_type,
    };
    let progress = progress::Progress::new(len, env.interactive && !args.quiet);
    let started = Instant::now();
    let sent = upload::send(&request, file, len, progress.clone()).await;
    progress.done();
    let elapsed = started.elapsed();

    let answer = match sent {
        Ok(answer) => Ok(answer),
        // connected, then cut off: maybe the server refused the request without reading it
        Err(e) if !e.is_connect() => upload::early_refusal(&request).await.ok_or(e),
        Err(e) => Err(e),
    };
    let answer = match answer {
        Ok(answer) => answer,
        Err(e) => {
            let e = e.without_url();
            let what = match e.is_connect() {
                // "Connection refused" says it all; the layers above it only repeat "error"
                true => format!("could not reach the command API at {api}: {}", root_cause(&e)),
                false => format!("the upload to {api} failed: {}", chain(&e)),
            };
            say(err, &format!("error: {what}\n"));
            // the server records nothing twice, whatever part of the import it got to
            say(err, "note: re-sending the same file is safe\n");
            return FAILED;
        }
    };
    if !answer.status.is_success() {
        let status = answer.status.as_u16();
        say(err, &problem::describe(status, &answer.content_type, &answer.body, answer.retry_after.as_deref()));
        if args.json && !answer.body.is_empty() {
            say_json(out, &answer.body);
        }
        return problem::exit_code(status);
    }
    if args.json {
        say_json(out, &answer.body);
        return 0;
    }
    match serde_json::from_slice::<summary::Imported>(&answer.body) {
        Ok(imported) => say(out, &summary::summary(&source, &imported, elapsed)),
        // recorded all the same: show what came back rather than fail
        Err(e) => {
            say(err, &format!("warning: the server answered {} but its answer could not be read ({e}):\n", answer.status));
            say_json(out, &answer.body);
        }
    }
    0
}

struct Upload {
    api: String,
    source: String,
    file: tokio::fs::File,
    len: u64,
    content_type: &'static str,
    token: String,
}

/// Everything checked before a byte is sent: a mistake costs nothing to find out.
async fn prepare(args: &ImportFocus, env: &Env) -> anyhow::Result<Upload> {
    let Some(token) = args.token.clone().or_else(|| env.token.clone()).filter(|t| !t.is_empty()) else {
        bail!("no token: pass --token TOKEN or set VTAG_TOKEN (a token with the editor role)");
    };
    if !upload::token_header_ok(&token) {
        bail!("the token has characters an Authorization header cannot carry");
    }
    let api = args.api.clone().or_else(|| env.command_api_url.clone()).unwrap_or_else(|| DEFAULT_API.to_owned());
    let source = match &args.source {
        Some(source) => source.clone(),
        None => file_name(&args.file),
    };
    upload::imports_url(&api, &source)?;
    let path = args.file.display();
    let file = tokio::fs::File::open(&args.file).await.with_context(|| format!("cannot read {path}"))?;
    let metadata = file.metadata().await.with_context(|| format!("cannot read {path}"))?;
    if !metadata.is_file() {
        bail!("{path} is not a file");
    }
    Ok(Upload { api, source, file, len: metadata.len(), content_type: upload::content_type(&args.file), token })
}

/// The name the import is kept under by default: the file's, without its directories.
fn file_name(path: &Path) -> String {
    match path.file_name() {
        Some(name) => name.to_string_lossy().into_owned(),
        None => path.display().to_string(),
    }
}

/// An error and its causes on one line: reqwest's own message alone ("error sending request")
/// does not say that the connection was refused.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // hyper and std repeat their cause's words in their own
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

fn say(to: &mut dyn Write, text: &str) {
    // a closed stdout (`vtag … | head`) does not change what the import did: no exit code for it
    let _ = to.write_all(text.as_bytes()).and_then(|()| to.flush());
}

fn say_json(to: &mut dyn Write, body: &[u8]) {
    let mut text = String::from_utf8_lossy(body).into_owned();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    say(to, &text);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_source_is_the_file_name() {
        assert_eq!(file_name(Path::new("/exports/2026-10/focus.csv.gz")), "focus.csv.gz");
        assert_eq!(file_name(Path::new("focus.parquet")), "focus.parquet");
    }

    #[test]
    fn error_chains_skip_repeated_words() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let outer = anyhow::Error::new(io).context("tcp connect error: connection refused").context("client error");
        let e: &(dyn std::error::Error + 'static) = outer.as_ref();
        assert_eq!(chain(e), "client error: tcp connect error: connection refused");
        assert_eq!(root_cause(e), "connection refused");
    }
}
