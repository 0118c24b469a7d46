//! Reading what a single-partition topic gained since an offset (the cost topic, the compliance
//! policies topic): their writers read it up to its end before deciding, so their view of every
//! document's head is the log's even after another instance held the lease.

use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use vtag_eventlog::kafka::assigned_consumer_config;

/// The records of partition 0 of a topic from an offset up to the high watermark seen on opening.
pub struct Backlog {
    consumer: StreamConsumer,
    next: i64,
    high: i64,
}

impl Backlog {
    /// `None` when there is nothing at or after `from`.
    pub async fn open(brokers: &str, group: &str, topic: &str, from: i64) -> anyhow::Result<Option<Self>> {
        let consumer: StreamConsumer = assigned_consumer_config(brokers, group).create()?;
        let (_, high) = consumer.fetch_watermarks(topic, 0, Duration::from_secs(10))?;
        if high <= from {
            return Ok(None);
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, 0, Offset::Offset(from))?;
        consumer.assign(&tpl)?;
        Ok(Some(Self { consumer, next: from, high }))
    }

    /// The next record (offset, payload), or `None` once the high watermark is reached.
    pub async fn next(&mut self) -> anyhow::Result<Option<(i64, Vec<u8>)>> {
        if self.next >= self.high {
            return Ok(None);
        }
        let msg = tokio::time::timeout(Duration::from_secs(30), self.consumer.recv())
            .await
            .map_err(|_| anyhow::anyhow!("timed out reading at offset {}", self.next))??;
        self.next = msg.offset() + 1;
        Ok(Some((msg.offset(), msg.payload().unwrap_or_default().to_vec())))
    }
}
