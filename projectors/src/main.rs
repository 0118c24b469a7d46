//! `vtag-projector`: the Postgres projector. `--rebuild`: rebuild the read model from the log into
//! a shadow schema beside the served one, swap, exit (progress on standard error).

use std::io::Write;

use vtag_projectors::{postgres, Settings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    vtag_service::telemetry::init("vtag-projector");
    let settings = Settings::from_env()?;
    match std::env::args().nth(1).as_deref() {
        None => postgres::run(settings, vtag_service::shutdown::signal()).await,
        Some("--rebuild") => {
            let report = |done: i64, due: i64| {
                let pct = if due > 0 { done.min(due) * 100 / due } else { 100 };
                let _ = write!(std::io::stderr(), "\rrebuilding the Postgres read model: {done} of {due} records ({pct}%)");
            };
            let retired = postgres::rebuild(settings, &report).await?;
            eprintln!("\nrebuilt: the new read model serves ({retired} was dropped)");
            Ok(())
        }
        Some(other) => anyhow::bail!("unknown argument {other:?} (usage: vtag-projector [--rebuild])"),
    }
}
