//! Projector settings, from the environment (the same variable names every vtag binary uses).

use std::time::Duration;

use anyhow::Context;

/// The Postgres projector's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database_url: String,
    pub log: LogSettings,
}

/// What every projector reads the log with, whatever its read model.
#[derive(Debug, Clone)]
pub struct LogSettings {
    pub brokers: String,
    pub registry_url: String,
    pub topic_prefix: String,
    /// Partitions of a new topic; an existing topic keeps its own count.
    pub partitions: i32,
    /// Upper bound of events folded in one write.
    pub batch_size: usize,
    /// How long to wait for more records before writing a partial batch.
    pub batch_linger: Duration,
}

impl Settings {
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            database_url: std::env::var("VTAG_DATABASE_URL").context("VTAG_DATABASE_URL is not set")?,
            log: LogSettings::from_env()?,
        })
    }
}

impl LogSettings {
    pub fn from_env() -> anyhow::Result<Self> {
        let opt = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
        Ok(Self {
            brokers: opt("VTAG_KAFKA_BROKERS", "127.0.0.1:19092"),
            registry_url: opt("VTAG_SCHEMA_REGISTRY_URL", "http://127.0.0.1:18081"),
            topic_prefix: opt("VTAG_TOPIC_PREFIX", "vtag."),
            partitions: opt("VTAG_PARTITIONS", "6").parse().context("VTAG_PARTITIONS")?,
            batch_size: opt("VTAG_PROJECTOR_BATCH", "5000").parse().context("VTAG_PROJECTOR_BATCH")?,
            batch_linger: Duration::from_millis(opt("VTAG_PROJECTOR_LINGER_MS", "20").parse().context("VTAG_PROJECTOR_LINGER_MS")?),
        })
    }
}
