//! Reading every partition of a topic from its start up to the high watermarks it had when the
//! reading began: what a rebuild folds.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use vtag_eventlog::kafka::assigned_consumer_config;

pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub payload: Vec<u8>,
}

pub struct Replay {
    consumer: StreamConsumer,
    /// Per partition: the high watermark at the start (where following the log takes over).
    ends: HashMap<i32, i64>,
    /// Per partition still being read: the next offset.
    left: HashMap<i32, i64>,
}

impl Replay {
    pub async fn open(brokers: &str, client_id: &str, topic: &str, partitions: i32) -> anyhow::Result<Self> {
        let consumer: StreamConsumer = assigned_consumer_config(brokers, client_id).create()?;
        let mut ends = HashMap::new();
        let mut left = HashMap::new();
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            let (low, high) = consumer.fetch_watermarks(topic, p, Duration::from_secs(10))?;
            ends.insert(p, high);
            if high > low {
                left.insert(p, low);
                tpl.add_partition_offset(topic, p, Offset::Offset(low))?;
            }
        }
        if !left.is_empty() {
            consumer.assign(&tpl)?;
        }
        Ok(Self { consumer, ends, left })
    }

    pub fn ends(&self) -> &HashMap<i32, i64> {
        &self.ends
    }

    /// The next records (up to a few thousand), or `None` once every partition reached its end.
    pub async fn next_batch(&mut self) -> anyhow::Result<Option<Vec<Record>>> {
        if self.left.is_empty() {
            return Ok(None);
        }
        let mut batch = Vec::new();
        while batch.len() < 2048 && !self.left.is_empty() {
            let wait = if batch.is_empty() { Duration::from_secs(30) } else { Duration::from_millis(5) };
            let m = match tokio::time::timeout(wait, self.consumer.recv()).await {
                Ok(m) => m?,
                Err(_) if batch.is_empty() => anyhow::bail!("timed out replaying {:?}", self.left),
                Err(_) => break,
            };
            let (p, offset) = (m.partition(), m.offset());
            if !self.left.contains_key(&p) {
                continue;
            }
            batch.push(Record { partition: p, offset, payload: m.payload().unwrap_or_default().to_vec() });
            if offset + 1 >= self.ends[&p] {
                self.left.remove(&p);
            }
        }
        Ok(Some(batch))
    }
}
