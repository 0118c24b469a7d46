//! `vtag-projector`: the Postgres projector.
//! - `--rebuild`: rebuild the read model from the log into a shadow schema beside the served one,
//!   swap, exit (progress on standard error).
//! - `--retry-held [postgres|opensearch|neo4j]`: ask the projectors (every one by default) to retry
//!   the events they hold behind a dead letter, and wait for their answers.

use std::time::Duration;

use vtag_eventlog::EventTopics;
use vtag_projectors::{command_line, dead_letter, postgres, Settings};

const PROJECTORS: [&str; 3] = [postgres::PROJECTOR, vtag_projectors::search::PROJECTOR, vtag_projectors::graph::PROJECTOR];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    command_line::init_telemetry("vtag-projector");
    let settings = Settings::from_env()?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] => postgres::run(settings, vtag_service::shutdown::signal()).await,
        ["--rebuild"] => {
            let report = command_line::progress("the Postgres read model");
            let rebuilt = postgres::rebuild(settings, &report).await?;
            eprintln!("\nrebuilt in {:.1} s: the new read model serves ({} was dropped)", rebuilt.swapped_after.as_secs_f64(), rebuilt.retired);
            Ok(())
        }
        ["--retry-held", ref which @ ..] if which.len() <= 1 => {
            let asked: Vec<&str> = match which.first() {
                None => PROJECTORS.to_vec(),
                Some(p) if PROJECTORS.contains(p) => vec![*p],
                Some(other) => anyhow::bail!("unknown projector {other:?}: postgres, opensearch or neo4j"),
            };
            retry_held(&settings, &asked).await
        }
        _ => anyhow::bail!("usage: vtag-projector [--rebuild | --retry-held [postgres|opensearch|neo4j]]"),
    }
}

async fn retry_held(settings: &Settings, projectors: &[&str]) -> anyhow::Result<()> {
    let topics = EventTopics::new(settings.log.topic_prefix.clone(), settings.log.partitions);
    let (brokers, dlq, topic) = (&settings.log.brokers, topics.dead_letters(), topics.resource_events());
    let to = if projectors.len() == 1 { projectors[0] } else { dead_letter::EVERY_PROJECTOR };
    let asked = dead_letter::request_retry(brokers, &dlq, &topic, to).await?;
    eprintln!("asked {} to retry their held events; waiting for their answers", projectors.join(", "));
    let answers = dead_letter::answers(brokers, &dlq, &topic, asked, projectors, Duration::from_secs(120)).await?;
    for a in &answers {
        println!("{}: {}", a.projector, a.note);
    }
    let silent: Vec<&&str> = projectors.iter().filter(|p| !answers.iter().any(|a| a.projector == **p)).collect();
    anyhow::ensure!(silent.is_empty(), "no answer within 2 minutes from {silent:?}: is it running? (it retries when it starts)");
    Ok(())
}
