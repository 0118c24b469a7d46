//! Evaluator settings, from the environment (the variable names every vtag binary uses).

use std::time::Duration;

use anyhow::Context;

#[derive(Debug, Clone)]
pub struct Settings {
    /// Only for the single-evaluator lock (the evaluator reads and writes the log, not Postgres).
    pub database_url: String,
    pub brokers: String,
    pub registry_url: String,
    pub topic_prefix: String,
    /// Partitions of a new topic; an existing topic keeps its own count.
    pub partitions: i32,
    /// How often time is let move violations on (grace periods ending, escalations).
    pub tick: Duration,
}

impl Settings {
    pub fn from_env() -> anyhow::Result<Self> {
        let var = |name: &str| std::env::var(name).with_context(|| format!("{name} is not set"));
        let opt = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
        Ok(Self {
            database_url: var("VTAG_DATABASE_URL")?,
            brokers: opt("VTAG_KAFKA_BROKERS", "127.0.0.1:19092"),
            registry_url: opt("VTAG_SCHEMA_REGISTRY_URL", "http://127.0.0.1:18081"),
            topic_prefix: opt("VTAG_TOPIC_PREFIX", "vtag."),
            partitions: opt("VTAG_PARTITIONS", "6").parse().context("VTAG_PARTITIONS")?,
            tick: Duration::from_millis(opt("VTAG_COMPLIANCE_TICK_MS", "10000").parse().context("VTAG_COMPLIANCE_TICK_MS")?),
        })
    }
}
