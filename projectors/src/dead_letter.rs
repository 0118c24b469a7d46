//! The dead-letter topic: events a projector can never apply (undecodable, or refused by the domain's
//! rules) are copied there with where they came from and why, and the projector moves on — a poison
//! event must never stop a pipeline. The same topic carries what holding and retrying an aggregate
//! say (`holds`, ADR 0011), so every record names its kind.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use vtag_eventlog::kafka::{assigned_consumer_config, producer_config};

use crate::source::LogRecord;

/// What a dead-letter record says (header `vtag.kind`; records without one are `poison`).
pub mod kind {
    /// An event the projector could not apply.
    pub const POISON: &str = "poison";
    /// A later event of an aggregate held behind its poison.
    pub const HELD: &str = "held";
    /// The projector applied an aggregate's held events; its later events flow again.
    pub const RELEASED: &str = "released";
    /// An operator asks the projector(s) to try the held events again.
    pub const RETRY: &str = "retry";
    /// A projector's answer to a retry.
    pub const RETRIED: &str = "retried";
}

/// Every projector answers a retry addressed to it or to this name.
pub const EVERY_PROJECTOR: &str = "*";

/// What one projector writes to the dead-letter topic about one source topic.
#[derive(Clone)]
pub struct DeadLetters {
    producer: FutureProducer,
    pub(crate) topic: String,
    pub(crate) source_topic: String,
    pub(crate) projector: String,
}

impl DeadLetters {
    pub fn new(brokers: &str, topic: String, source_topic: String, projector: &str) -> Result<Self, rdkafka::error::KafkaError> {
        Ok(Self { producer: producer_config(brokers).create()?, topic, source_topic, projector: projector.to_owned() })
    }

    /// Parks the record. Must succeed before the checkpoint moves past it, or the event would be lost.
    pub async fn park(&self, record: &LogRecord, error: &str) -> Result<(), rdkafka::error::KafkaError> {
        self.send(record, kind::POISON, error).await.map(drop)
    }

    /// Appends a record of `what` kind about `record` (its bytes, origin and key); `note`: why it
    /// was parked, or what a retry did. Returns its offset.
    pub async fn send(&self, record: &LogRecord, what: &str, note: &str) -> Result<i64, rdkafka::error::KafkaError> {
        let (partition, offset) = (record.partition.to_string(), record.offset.to_string());
        let mut headers = OwnedHeaders::new()
            .insert(Header { key: "vtag.kind", value: Some(what) })
            .insert(Header { key: "vtag.source.topic", value: Some(self.source_topic.as_str()) })
            .insert(Header { key: "vtag.source.partition", value: Some(partition.as_str()) })
            .insert(Header { key: "vtag.source.offset", value: Some(offset.as_str()) })
            .insert(Header { key: "vtag.source.key", value: Some(record.key.as_slice()) })
            .insert(Header { key: "vtag.projector", value: Some(self.projector.as_str()) });
        if !note.is_empty() {
            let name = if what == kind::RETRIED { "vtag.note" } else { "vtag.error" };
            headers = headers.insert(Header { key: name, value: Some(note) });
        }
        let key = format!("{}:{}:{}", self.source_topic, record.partition, record.offset);
        self.producer
            .send(FutureRecord::to(&self.topic).key(&key).payload(&record.payload).headers(headers), Duration::from_secs(30))
            .await
            .map(|delivered| delivered.offset)
            .map_err(|(e, _)| e)
    }
}

/// One dead-letter record as read back.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Letter {
    pub offset: i64,
    pub kind: String,
    pub projector: String,
    pub source_topic: String,
    pub source_partition: i32,
    pub source_offset: i64,
    pub source_key: Vec<u8>,
    /// Why it was parked (`vtag.error`), or what a retry did (`vtag.note`).
    pub note: String,
}

impl Letter {
    /// A retry request addressed to `projector` (or to every one) about `source_topic`.
    pub fn asks_retry_of(&self, projector: &str, source_topic: &str) -> bool {
        self.kind == kind::RETRY && self.source_topic == source_topic && (self.projector == projector || self.projector == EVERY_PROJECTOR)
    }
}

/// Reads the dead-letter topic (one partition) with one client, kept for repeated reads.
#[derive(Clone)]
pub struct LetterReader {
    consumer: Arc<BaseConsumer>,
    topic: String,
}

impl LetterReader {
    pub fn new(brokers: &str, topic: String) -> Result<Self, rdkafka::error::KafkaError> {
        Ok(Self { consumer: Arc::new(assigned_consumer_config(brokers, "vtag-dead-letters").create()?), topic })
    }

    /// The records from offset `from` to the topic's end.
    pub async fn read(&self, from: i64) -> anyhow::Result<Vec<Letter>> {
        let (consumer, topic) = (self.consumer.clone(), self.topic.clone());
        tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<Letter>> {
            let (_, end) = consumer.fetch_watermarks(&topic, 0, Duration::from_secs(10))?;
            let mut letters = Vec::new();
            if end <= from {
                return Ok(letters);
            }
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(&topic, 0, Offset::Offset(from))?;
            consumer.assign(&tpl)?;
            let deadline = Instant::now() + Duration::from_secs(30);
            while letters.last().map_or(from, |l: &Letter| l.offset + 1) < end {
                anyhow::ensure!(Instant::now() < deadline, "reading the dead-letter topic timed out");
                match consumer.poll(Duration::from_millis(500)) {
                    Some(Ok(m)) => letters.push(letter(&m)),
                    Some(Err(e)) => return Err(e.into()),
                    None => {}
                }
            }
            Ok(letters)
        })
        .await?
    }
}

/// The dead-letter topic from `from` to its end, with a client of its own.
pub async fn read_letters(brokers: &str, topic: &str, from: i64) -> anyhow::Result<Vec<Letter>> {
    LetterReader::new(brokers, topic.to_owned())?.read(from).await
}

/// Appends a retry request for `projector` (or [`EVERY_PROJECTOR`]) of `source_topic`'s held
/// events; returns its offset.
pub async fn request_retry(brokers: &str, topic: &str, source_topic: &str, projector: &str) -> anyhow::Result<i64> {
    let requests = DeadLetters::new(brokers, topic.to_owned(), source_topic.to_owned(), projector)?;
    let nothing = LogRecord { partition: -1, offset: -1, key: Vec::new(), payload: Vec::new() };
    Ok(requests.send(&nothing, kind::RETRY, "").await?)
}

/// The projectors' answers to the retry request at `asked` (each projector's first), waiting up to
/// `patience` for all of `projectors`.
pub async fn answers(brokers: &str, topic: &str, source_topic: &str, asked: i64, projectors: &[&str], patience: Duration) -> anyhow::Result<Vec<Letter>> {
    let reader = LetterReader::new(brokers, topic.to_owned())?;
    let deadline = Instant::now() + patience;
    let mut answers: Vec<Letter> = Vec::new();
    let mut from = asked + 1;
    while Instant::now() < deadline && !projectors.iter().all(|p| answers.iter().any(|a| a.projector == *p)) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let letters = reader.read(from).await?;
        if let Some(last) = letters.last() {
            from = last.offset + 1;
        }
        for l in letters {
            let new = !answers.iter().any(|a| a.projector == l.projector);
            if l.kind == kind::RETRIED && l.source_topic == source_topic && projectors.contains(&l.projector.as_str()) && new {
                answers.push(l);
            }
        }
    }
    Ok(answers)
}

fn letter<M: Message>(m: &M) -> Letter {
    let mut l = Letter { offset: m.offset(), kind: kind::POISON.to_owned(), ..Letter::default() };
    for h in m.headers().into_iter().flat_map(|hs| hs.iter()) {
        let value = h.value.unwrap_or_default();
        let text = || String::from_utf8_lossy(value).into_owned();
        match h.key {
            "vtag.kind" => l.kind = text(),
            "vtag.projector" => l.projector = text(),
            "vtag.source.topic" => l.source_topic = text(),
            "vtag.source.partition" => l.source_partition = text().parse().unwrap_or(-1),
            "vtag.source.offset" => l.source_offset = text().parse().unwrap_or(-1),
            "vtag.source.key" => l.source_key = value.to_vec(),
            "vtag.error" | "vtag.note" => l.note = text(),
            _ => {}
        }
    }
    l
}
