//! `vtag-projector-search`: the search projector. `--rebuild`: build a new generation of the index
//! from the log beside the served one, swap, exit (progress on standard error).

use std::io::Write;

use vtag_projectors::search;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // A one-shot command (a rebuild, a retry) shows its progress line, not the service's logs.
    if std::env::args().nth(1).is_some() && std::env::var_os("RUST_LOG").is_none() {
        std::env::set_var("RUST_LOG", "warn");
    }
    vtag_service::telemetry::init("vtag-projector-search");
    let settings = search::SearchSettings::from_env()?;
    match std::env::args().nth(1).as_deref() {
        None => search::run(settings, vtag_service::shutdown::signal()).await,
        Some("--rebuild") => {
            let report = |done: i64, due: i64| {
                let pct = if due > 0 { done.min(due) * 100 / due } else { 100 };
                let _ = write!(std::io::stderr(), "\rrebuilding the search index: {done} of {due} records ({pct}%)");
            };
            let generation = search::rebuild(settings, &report).await?;
            eprintln!("\nrebuilt: {generation} now serves");
            Ok(())
        }
        Some(other) => anyhow::bail!("unknown argument {other:?} (usage: vtag-projector-search [--rebuild])"),
    }
}
