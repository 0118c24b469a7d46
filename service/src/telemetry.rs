//! Logging set-up shared by every binary: `RUST_LOG` filters, `VTAG_LOG_FORMAT=json` for machines.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

pub fn init(service: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,rdkafka=warn,sqlx=warn"));
    let json = std::env::var("VTAG_LOG_FORMAT").is_ok_and(|f| f == "json");
    // Logs go to stderr; colour only on a terminal, so log files stay plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let result = if json { builder.json().try_init() } else { builder.try_init() };
    if result.is_ok() {
        tracing::info!(service, "telemetry initialised");
    }
}
