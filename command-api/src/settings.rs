use anyhow::Context;

#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: String,
    pub brokers: String,
    pub registry_url: String,
    pub topic_prefix: String,
    /// Partitions of the event topic when it is created. Fixed for the topic's life.
    pub partitions: i32,
    /// Resources a re-derivation job decides per lock hold (and per progress marker).
    pub rederive_chunk: usize,
    /// A pause between chunks: throttles re-derivation so live commands and the projectors keep
    /// up while a rule change sweeps a large estate (0 = as fast as possible).
    pub rederive_pause: std::time::Duration,
}

impl Settings {
    pub fn from_env() -> anyhow::Result<Self> {
        let opt = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
        Ok(Self {
            listen: opt("VTAG_COMMAND_API_LISTEN", "127.0.0.1:18080"),
            brokers: opt("VTAG_KAFKA_BROKERS", "127.0.0.1:19092"),
            registry_url: opt("VTAG_SCHEMA_REGISTRY_URL", "http://127.0.0.1:18081"),
            topic_prefix: opt("VTAG_TOPIC_PREFIX", "vtag."),
            partitions: opt("VTAG_PARTITIONS", "6").parse().context("VTAG_PARTITIONS")?,
            rederive_chunk: opt("VTAG_REDERIVE_CHUNK", "2000").parse().context("VTAG_REDERIVE_CHUNK")?,
            rederive_pause: std::time::Duration::from_millis(
                opt("VTAG_REDERIVE_PAUSE_MS", "0").parse().context("VTAG_REDERIVE_PAUSE_MS")?,
            ),
        })
    }
}
