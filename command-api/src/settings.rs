use anyhow::Context;

#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: String,
    pub brokers: String,
    pub registry_url: String,
    pub topic_prefix: String,
    /// Partitions of the event topic when it is created. Fixed for the topic's life.
    pub partitions: i32,
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
        })
    }
}
