//! Topic layout. Event topics keep everything forever (delete policy with unbounded retention,
//! never compacted: the log is the record) and have a partition count fixed up front, because the
//! partition of an aggregate must never move.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::config::ClientConfig;
use rdkafka::types::RDKafkaErrorCode;

/// Unbounded retention, spelled as Long.MAX_VALUE rather than Kafka's `-1`: tansu 0.6 reads `-1`
/// literally in its retention sweep (`now - timestamp > -1`) and deletes every record of the topic
/// when it starts. Long.MAX_VALUE means "forever" on Kafka and tansu alike (docs/adr/0002).
pub const RETAIN_FOREVER: &str = "9223372036854775807";

/// The topics of one vtag installation. A prefix lets tests (and several installations sharing a
/// cluster) keep their logs apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventTopics {
    pub prefix: String,
    pub partitions: i32,
}

impl EventTopics {
    pub fn new(prefix: impl Into<String>, partitions: i32) -> Self {
        Self { prefix: prefix.into(), partitions }
    }

    /// Every event of the `Resource` aggregate, keyed by aggregate id.
    pub fn resource_events(&self) -> String {
        format!("{}resource-events", self.prefix)
    }

    /// Tagging configuration changes of every tenant, keyed by tenant. One partition: configuration
    /// changes are rare, and every command-API instance reads all of them.
    pub fn tagging_config(&self) -> String {
        format!("{}tagging-config", self.prefix)
    }

    /// Cost ledger imports of every tenant, keyed by ledger. One partition: imports are a few a
    /// day, each a few hundred large records, and their writer is one instance (partition 0's lease).
    pub fn cost_events(&self) -> String {
        format!("{}cost-events", self.prefix)
    }

    /// Compliance policy changes of every tenant, keyed by tenant. One partition, one writer
    /// (partition 0's lease), as for the tagging configuration.
    pub fn compliance_policies(&self) -> String {
        format!("{}compliance-policies", self.prefix)
    }

    /// The compliance evaluators' decisions about resources (violations, judgements), keyed by
    /// resource id with the resource topic's partition count: partition p is written by whoever
    /// evaluates resource partition p (docs/adr/0007).
    pub fn compliance_events(&self) -> String {
        format!("{}compliance-events", self.prefix)
    }

    /// Events a projector could not apply, with the original position and error in headers.
    pub fn dead_letters(&self) -> String {
        format!("{}resource-events.dlq", self.prefix)
    }

    /// Creates the topics if they are missing. Idempotent.
    pub async fn ensure_created(&self, brokers: &str) -> Result<(), rdkafka::error::KafkaError> {
        let admin: AdminClient<DefaultClientContext> =
            ClientConfig::new().set("bootstrap.servers", brokers).create()?;
        let events = self.resource_events();
        let dlq = self.dead_letters();
        let config = self.tagging_config();
        let costs = self.cost_events();
        let policies = self.compliance_policies();
        let compliance = self.compliance_events();
        let topics = [
            NewTopic::new(&compliance, self.partitions, TopicReplication::Fixed(1))
                .set("retention.ms", RETAIN_FOREVER)
                .set("cleanup.policy", "delete"),
            NewTopic::new(&policies, 1, TopicReplication::Fixed(1))
                .set("retention.ms", RETAIN_FOREVER)
                .set("cleanup.policy", "delete"),
            NewTopic::new(&costs, 1, TopicReplication::Fixed(1))
                .set("retention.ms", RETAIN_FOREVER)
                .set("cleanup.policy", "delete"),
            NewTopic::new(&config, 1, TopicReplication::Fixed(1))
                .set("retention.ms", RETAIN_FOREVER)
                .set("cleanup.policy", "delete"),
            NewTopic::new(&events, self.partitions, TopicReplication::Fixed(1))
                .set("retention.ms", RETAIN_FOREVER)
                .set("cleanup.policy", "delete"),
            NewTopic::new(&dlq, 1, TopicReplication::Fixed(1))
                .set("retention.ms", RETAIN_FOREVER)
                .set("cleanup.policy", "delete"),
        ];
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        for result in admin.create_topics(&topics, &options).await? {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => {
                    return Err(rdkafka::error::KafkaError::AdminOp(code)).inspect_err(|_| {
                        tracing::error!(%topic, ?code, "could not create topic");
                    })
                }
            }
        }
        Ok(())
    }
}

/// How many partitions `topic` has, as the broker reports it (0 if the topic does not exist).
/// Read from the broker rather than configuration: an existing topic keeps the count it was created with.
pub fn partition_count(brokers: &str, topic: &str) -> Result<i32, rdkafka::error::KafkaError> {
    let consumer: BaseConsumer = crate::kafka::assigned_consumer_config(brokers, "vtag-metadata").create()?;
    let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    Ok(md.topics().iter().find(|t| t.name() == topic).map_or(0, |t| t.partitions().len() as i32))
}

/// The high watermark (next offset to be written) of every partition of `topic`: what a reader
/// has to reach to have read everything written so far. Blocking.
pub fn high_watermarks(brokers: &str, topic: &str) -> Result<HashMap<i32, i64>, rdkafka::error::KafkaError> {
    Ok(ends_with(&watermark_reader(brokers)?, &[topic.to_owned()])?.remove(topic).unwrap_or_default())
}

/// `high_watermarks` of several topics (one client for all), off the async runtime's threads.
pub async fn ends_of(brokers: &str, topics: &[String]) -> Result<HashMap<String, HashMap<i32, i64>>, rdkafka::error::KafkaError> {
    let (brokers, topics) = (brokers.to_owned(), topics.to_vec());
    tokio::task::spawn_blocking(move || ends_with(&watermark_reader(&brokers)?, &topics))
        .await
        .expect("reading watermarks does not panic")
}

fn watermark_reader(brokers: &str) -> Result<BaseConsumer, rdkafka::error::KafkaError> {
    crate::kafka::assigned_consumer_config(brokers, "vtag-watermarks").create()
}

fn ends_with(consumer: &BaseConsumer, topics: &[String]) -> Result<HashMap<String, HashMap<i32, i64>>, rdkafka::error::KafkaError> {
    let mut ends = HashMap::new();
    for topic in topics {
        let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
        let partitions = md.topics().iter().find(|t| t.name() == topic).map_or(0, |t| t.partitions().len() as i32);
        let of_topic = (0..partitions).map(|p| Ok((p, consumer.fetch_watermarks(topic, p, Duration::from_secs(10))?.1))).collect::<Result<_, rdkafka::error::KafkaError>>()?;
        ends.insert(topic.clone(), of_topic);
    }
    Ok(ends)
}

/// Kafka's default partitioner (murmur2 of the key, as the Java client computes it), so every
/// client — librdkafka with `partitioner=murmur2_random`, Java, and our explicit routing — agrees on
/// which partition owns an aggregate.
pub fn partition_for(key: &[u8], partitions: i32) -> i32 {
    ((murmur2(key) & 0x7fff_ffff) % partitions as u32) as i32
}

/// The partition of an aggregate keyed by its UUID (the hyphenated lower-case text, as every
/// producer keys it), without allocating the text: the evaluator asks once per decision.
pub fn partition_of(aggregate: uuid::Uuid, partitions: i32) -> i32 {
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    partition_for(aggregate.hyphenated().encode_lower(&mut text).as_bytes(), partitions)
}

fn murmur2(data: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, b) in tail.iter().enumerate().rev() {
            h ^= u32::from(*b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_the_java_client() {
        // Vectors from Apache Kafka's UtilsTest.testMurmur2.
        let cases: [(&str, i32); 6] = [
            ("21", -973932308),
            ("foobar", -790332482),
            ("a-little-bit-long-string", -985981536),
            ("a-little-bit-longer-string", -1486304829),
            ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
            ("abc", 479470107),
        ];
        for (input, expected) in cases {
            assert_eq!(murmur2(input.as_bytes()) as i32, expected, "{input}");
        }
    }

    #[test]
    fn partitions_are_in_range_and_stable() {
        for i in 0..1000 {
            let key = format!("key-{i}");
            let p = partition_for(key.as_bytes(), 6);
            assert!((0..6).contains(&p));
            assert_eq!(p, partition_for(key.as_bytes(), 6));
        }
    }

    #[test]
    fn an_aggregate_partition_is_its_uuid_text_partition() {
        for i in 0..1000u128 {
            let id = uuid::Uuid::from_u128(i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c834));
            assert_eq!(partition_of(id, 6), partition_for(id.to_string().as_bytes(), 6), "{id}");
        }
    }
}
