//! Typed configuration, read once from the environment at start-up.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use vtag_service::Authenticator;

use crate::graph::BoltSettings;

pub struct Settings {
    /// Only ever read from; the connection is opened read-only (see `state::connect`).
    pub database_url: String,
    pub listen: SocketAddr,
    /// Prefix of the event topics: the read-your-writes wait compares offsets of
    /// `<prefix>resource-events`, so it must match the command API's and the projector's.
    pub topic_prefix: String,
    /// How long a read may wait for the projector to reach a client's consistency token.
    pub consistency_wait: Duration,
    pub authenticator: Arc<Authenticator>,
    /// Month rows of cost imports kept in memory (about 0.5 KB each).
    pub cost_cache_rows: usize,
    /// The search read model's server (its alias derives from the topic prefix).
    pub opensearch_url: String,
    /// The event log's brokers (the lag report reads their high watermarks).
    pub brokers: String,
    /// The graph read model's server.
    pub bolt: BoltSettings,
}

impl Settings {
    pub const DEFAULT_LISTEN: &'static str = "127.0.0.1:18082";
    pub const DEFAULT_TOPIC_PREFIX: &'static str = "vtag.";
    pub const DEFAULT_CONSISTENCY_WAIT_MS: u64 = 5_000;
    pub const DEFAULT_OPENSEARCH_URL: &'static str = "http://127.0.0.1:19200";
    pub const DEFAULT_BROKERS: &'static str = "127.0.0.1:19092";
    /// 2M month rows ≈ 1 GB: a month of a two-million-resource estate.
    pub const DEFAULT_COST_CACHE_ROWS: usize = 2_000_000;

    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok(), Authenticator::from_env)
    }

    /// The environment lookup is a parameter so defaults and errors can be tested without
    /// mutating the process environment.
    fn from_lookup(
        var: impl Fn(&str) -> Option<String>,
        authenticator: impl FnOnce() -> Result<Authenticator, vtag_service::auth::SecretError>,
    ) -> anyhow::Result<Self> {
        let database_url = var("VTAG_DATABASE_URL").context("VTAG_DATABASE_URL is not set")?;
        let listen = var("VTAG_QUERY_API_LISTEN")
            .unwrap_or_else(|| Self::DEFAULT_LISTEN.to_owned())
            .parse()
            .context("VTAG_QUERY_API_LISTEN must be host:port, e.g. 127.0.0.1:18082")?;
        let topic_prefix = var("VTAG_TOPIC_PREFIX").unwrap_or_else(|| Self::DEFAULT_TOPIC_PREFIX.to_owned());
        let wait_ms = match var("VTAG_CONSISTENCY_WAIT_MS") {
            Some(raw) => {
                raw.trim().parse::<u64>().context("VTAG_CONSISTENCY_WAIT_MS must be a number of milliseconds")?
            }
            None => Self::DEFAULT_CONSISTENCY_WAIT_MS,
        };
        let cost_cache_rows = match var("VTAG_COST_CACHE_ROWS") {
            Some(raw) => raw.trim().parse::<usize>().context("VTAG_COST_CACHE_ROWS must be a number of rows")?,
            None => Self::DEFAULT_COST_CACHE_ROWS,
        };
        Ok(Self {
            cost_cache_rows,
            opensearch_url: var("VTAG_OPENSEARCH_URL").unwrap_or_else(|| Self::DEFAULT_OPENSEARCH_URL.to_owned()),
            brokers: var("VTAG_KAFKA_BROKERS").unwrap_or_else(|| Self::DEFAULT_BROKERS.to_owned()),
            bolt: BoltSettings::from_lookup(&var),
            database_url,
            listen,
            topic_prefix,
            consistency_wait: Duration::from_millis(wait_ms),
            authenticator: Arc::new(authenticator().context("VTAG_JWT_SECRET")?),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn auth() -> Result<Authenticator, vtag_service::auth::SecretError> {
        Authenticator::new(vec![1u8; 32])
    }

    #[test]
    fn defaults_apply_and_the_database_url_is_required() {
        let env: HashMap<&str, &str> = HashMap::from([("VTAG_DATABASE_URL", "postgres://x@localhost/vtag")]);
        let s = Settings::from_lookup(|k| env.get(k).map(|v| v.to_string()), auth).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:18082");
        assert_eq!(s.topic_prefix, "vtag.");
        assert_eq!(s.consistency_wait, Duration::from_secs(5));
        assert!(Settings::from_lookup(|_| None, auth).is_err());
    }

    #[test]
    fn overrides_are_read_and_checked() {
        let env: HashMap<&str, &str> = HashMap::from([
            ("VTAG_DATABASE_URL", "postgres://x@localhost/vtag"),
            ("VTAG_QUERY_API_LISTEN", "0.0.0.0:9000"),
            ("VTAG_TOPIC_PREFIX", "t1."),
            ("VTAG_CONSISTENCY_WAIT_MS", "250"),
        ]);
        let s = Settings::from_lookup(|k| env.get(k).map(|v| v.to_string()), auth).unwrap();
        assert_eq!(s.listen.port(), 9000);
        assert_eq!(s.topic_prefix, "t1.");
        assert_eq!(s.consistency_wait, Duration::from_millis(250));
        let bad = |k: &'static str, v: &'static str| {
            let mut env = env.clone();
            env.insert(k, v);
            Settings::from_lookup(|k| env.get(k).map(|v| v.to_string()), auth).is_err()
        };
        assert!(bad("VTAG_CONSISTENCY_WAIT_MS", "soon"));
        assert!(bad("VTAG_QUERY_API_LISTEN", "localhost"));
    }
}
