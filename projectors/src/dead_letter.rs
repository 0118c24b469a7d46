//! Dead letters: events a projector can never apply (undecodable, or refused by the domain's rules)
//! are copied to the dead-letter topic with where they came from and why, and the projector moves on.
//! A poison event must never stop a pipeline.

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
