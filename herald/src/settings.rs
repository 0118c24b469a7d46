//! Herald settings, from the environment (the variable names every vtag binary uses, plus the
//! herald's own `VTAG_HERALD_*`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

#[derive(Debug, Clone)]
pub struct Settings {
    /// The delivery ledger (schema `herald`), the lock, and the read model (a resource's team).
    pub database_url: String,
    pub brokers: String,
    pub registry_url: String,
    pub topic_prefix: String,
    /// Partitions of a new topic; an existing topic keeps its own count.
    pub partitions: i32,
    /// The channels and routes (`VTAG_HERALD_CONFIG`, YAML or JSON). None: nothing is routed.
    pub config_path: Option<PathBuf>,
    /// Secret values by variable name, looked up before the process environment (for embedding
    /// and tests; `from_env` leaves it empty).
    pub secrets: HashMap<String, String>,
    /// Delay after a delivery's first failed attempt; it doubles with every further failure.
    pub retry_base: Duration,
    /// The longest delay between two attempts.
    pub retry_max: Duration,
    /// Attempts after which a delivery is dead (kept, visible, replayable).
    pub max_attempts: u32,
    /// How long one webhook request or SMTP conversation may take.
    pub send_timeout: Duration,
}

impl Settings {
    pub fn from_env() -> anyhow::Result<Self> {
        let var = |name: &str| std::env::var(name).with_context(|| format!("{name} is not set"));
        let opt = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
        let millis = |name: &str, default: &str| -> anyhow::Result<Duration> {
            Ok(Duration::from_millis(opt(name, default).parse().with_context(|| format!("{name} must be a number of milliseconds"))?))
        };
        let settings = Self {
            database_url: var("VTAG_DATABASE_URL")?,
            brokers: opt("VTAG_KAFKA_BROKERS", "127.0.0.1:19092"),
            registry_url: opt("VTAG_SCHEMA_REGISTRY_URL", "http://127.0.0.1:18081"),
            topic_prefix: opt("VTAG_TOPIC_PREFIX", "vtag."),
            partitions: opt("VTAG_PARTITIONS", "6").parse().context("VTAG_PARTITIONS")?,
            config_path: std::env::var_os("VTAG_HERALD_CONFIG").filter(|p| !p.is_empty()).map(PathBuf::from),
            secrets: HashMap::new(),
            retry_base: millis("VTAG_HERALD_RETRY_BASE_MS", "1000")?,
            retry_max: millis("VTAG_HERALD_RETRY_MAX_MS", "300000")?,
            max_attempts: opt("VTAG_HERALD_MAX_ATTEMPTS", "8").parse().context("VTAG_HERALD_MAX_ATTEMPTS must be a whole number")?,
            send_timeout: millis("VTAG_HERALD_SEND_TIMEOUT_MS", "10000")?,
        };
        settings.check()?;
        Ok(settings)
    }

    /// Refuses settings the retry schedule cannot work with.
    pub fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.max_attempts >= 1, "VTAG_HERALD_MAX_ATTEMPTS must be at least 1");
        anyhow::ensure!(!self.retry_base.is_zero(), "VTAG_HERALD_RETRY_BASE_MS must be above 0");
        anyhow::ensure!(self.retry_max >= self.retry_base, "VTAG_HERALD_RETRY_MAX_MS must not be below VTAG_HERALD_RETRY_BASE_MS");
        anyhow::ensure!(!self.send_timeout.is_zero(), "VTAG_HERALD_SEND_TIMEOUT_MS must be above 0");
        Ok(())
    }

    /// A secret by the name of the variable that holds it.
    pub(crate) fn secret(&self, name: &str) -> Option<String> {
        self.secrets.get(name).cloned().or_else(|| std::env::var(name).ok())
    }
}

/// The delay after `failures` failed attempts (1 = the first): `base · 2^(failures−1)`, at most `max`.
pub fn backoff(base: Duration, max: Duration, failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(31);
    base.checked_mul(1u32 << doublings).unwrap_or(max).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_up_to_the_max() {
        let (base, max) = (Duration::from_secs(1), Duration::from_secs(60));
        let schedule: Vec<u64> = (1..=9).map(|n| backoff(base, max, n).as_secs()).collect();
        assert_eq!(schedule, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(backoff(base, max, 0), base, "no failure yet: the base");
        assert_eq!(backoff(Duration::from_millis(50), Duration::from_millis(400), 3), Duration::from_millis(200));
        assert_eq!(backoff(Duration::from_secs(3600), Duration::from_secs(7200), 200), Duration::from_secs(7200), "no overflow");
    }
}
