//! What the projector programs share as command-line tools (`--rebuild`, `--retry-held`).

use std::io::Write;

/// Starts logging for `program`. A one-shot command (any argument) logs warnings only unless
/// RUST_LOG says otherwise, so its progress line reads cleanly.
pub fn init_telemetry(program: &str) {
    if std::env::args().nth(1).is_some() && std::env::var_os("RUST_LOG").is_none() {
        std::env::set_var("RUST_LOG", "warn");
    }
    vtag_service::telemetry::init(program);
}

/// A progress line on standard error, rewritten in place: "rebuilding {what}: done of due (pct%)".
pub fn progress(what: &'static str) -> impl Fn(i64, i64) + Send + Sync {
    move |done, due| {
        let pct = if due > 0 { done.min(due) * 100 / due } else { 100 };
        let _ = write!(std::io::stderr(), "\rrebuilding {what}: {done} of {due} records ({pct}%)");
    }
}
