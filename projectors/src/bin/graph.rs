//! `vtag-projector-graph`: the graph projector. `--rebuild`: build a new generation of the graph
//! from the log beside the served one, swap, exit (progress on standard error).

use vtag_projectors::{command_line, graph};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    command_line::init_telemetry("vtag-projector-graph");
    let settings = graph::GraphSettings::from_env()?;
    match std::env::args().nth(1).as_deref() {
        None => graph::run(settings, vtag_service::shutdown::signal()).await,
        Some("--rebuild") => {
            let report = command_line::progress("the graph");
            let generation = graph::rebuild(settings, &report).await?;
            eprintln!("\nrebuilt: {generation} now serves");
            Ok(())
        }
        Some(other) => anyhow::bail!("unknown argument {other:?} (usage: vtag-projector-graph [--rebuild])"),
    }
}
