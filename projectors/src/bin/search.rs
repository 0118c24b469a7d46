//! `vtag-projector-search`: the search projector. `--rebuild`: build a new generation of the index
//! from the log beside the served one, swap, exit (progress on standard error).

use vtag_projectors::{command_line, search};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    command_line::init_telemetry("vtag-projector-search");
    let settings = search::SearchSettings::from_env()?;
    match std::env::args().nth(1).as_deref() {
        None => search::run(settings, vtag_service::shutdown::signal()).await,
        Some("--rebuild") => {
            let report = command_line::progress("the search index");
            let generation = search::rebuild(settings, &report).await?;
            eprintln!("\nrebuilt: {generation} now serves");
            Ok(())
        }
        Some(other) => anyhow::bail!("unknown argument {other:?} (usage: vtag-projector-search [--rebuild])"),
    }
}
