//! Dead letters: events a projector can never apply (undecodable, or refused by the domain's rules)
//! are copied to the dead-letter topic with where they came from and why, and the projector moves on.
//! A poison event must never stop a pipeline.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use vtag_eventlog::kafka::producer_config;

use crate::source::LogRecord;

#[derive(Clone)]
pub struct DeadLetters {
    producer: FutureProducer,
    topic: String,
    source_topic: String,
    projector: String,
}

impl DeadLetters {
    pub fn new(brokers: &str, topic: String, source_topic: String, projector: &str) -> Result<Self, rdkafka::error::KafkaError> {
        Ok(Self { producer: producer_config(brokers).create()?, topic, source_topic, projector: projector.to_owned() })
    }

    /// Parks the record. Must succeed before the checkpoint moves past it, or the event would be lost.
    pub async fn park(&self, record: &LogRecord, error: &str) -> Result<(), rdkafka::error::KafkaError> {
        let partition = record.partition.to_string();
        let offset = record.offset.to_string();
        let headers = OwnedHeaders::new()
            .insert(Header { key: "vtag.source.topic", value: Some(self.source_topic.as_str()) })
            .insert(Header { key: "vtag.source.partition", value: Some(partition.as_str()) })
            .insert(Header { key: "vtag.source.offset", value: Some(offset.as_str()) })
            .insert(Header { key: "vtag.projector", value: Some(self.projector.as_str()) })
            .insert(Header { key: "vtag.error", value: Some(error) });
        let key = format!("{}:{}:{}", self.source_topic, record.partition, record.offset);
        self.producer
            .send(
                FutureRecord::to(&self.topic).key(&key).payload(&record.payload).headers(headers),
                Duration::from_secs(30),
            )
            .await
            .map(|_| ())
            .map_err(|(e, _)| e)
    }
}

/// The records of a batch past `checkpoints`, decoded, with poison parked on the dead-letter topic
/// (the registry's unavailability is waited out, never taken for poison), and the next offsets past
/// them per partition.
pub async fn decode_or_park<'a, T, Fut>(
    records: &'a [LogRecord],
    checkpoints: &HashMap<i32, i64>,
    dead_letters: &DeadLetters,
    decode: impl Fn(&'a [u8]) -> Fut,
) -> Result<(Vec<T>, HashMap<i32, i64>), rdkafka::error::KafkaError>
where
    Fut: Future<Output = Result<T, vtag_eventlog::DecodeError>>,
{
    let (mut decoded, mut next) = (Vec::new(), HashMap::new());
    for record in records {
        if record.offset < checkpoints.get(&record.partition).copied().unwrap_or(0) {
            continue;
        }
        next.insert(record.partition, record.offset + 1);
        match crate::postgres::decode_with_retry(|| decode(&record.payload)).await {
            Ok(value) => decoded.push(value),
            Err(reason) => {
                tracing::error!(partition = record.partition, offset = record.offset, projector = %dead_letters.projector, %reason, "dead-lettering a record");
                dead_letters.park(record, &reason).await?;
            }
        }
    }
    Ok((decoded, next))
}
