//! Reading the log in batches from explicitly assigned partitions, starting at the read model's
//! own checkpoints (no consumer-group offsets: they could disagree with the read model).

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use vtag_eventlog::kafka::assigned_consumer_config;

/// One record as read from the log.
#[derive(Debug, Clone)]
pub struct LogRecord {
    pub partition: i32,
    pub offset: i64,
    /// The aggregate's id on the resource topic (empty when the record has no key).
    pub key: Vec<u8>,
    pub payload: Vec<u8>,
}

pub struct BatchSource {
    consumer: StreamConsumer,
}

impl BatchSource {
    /// Assigns every partition of `topic`, each at its checkpoint (0 when none).
    pub fn assign(
        brokers: &str,
        client_id: &str,
        topic: &str,
        partitions: i32,
        checkpoints: &HashMap<i32, i64>,
    ) -> Result<Self, rdkafka::error::KafkaError> {
        let consumer: StreamConsumer = assigned_consumer_config(brokers, client_id).create()?;
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            let next = checkpoints.get(&p).copied().unwrap_or(0);
            tpl.add_partition_offset(topic, p, Offset::Offset(next))?;
        }
        consumer.assign(&tpl)?;
        Ok(Self { consumer })
    }

    /// Reads batches on a task of its own, sending each (wrapped) to `tx` until the receiver goes
    /// or reading fails: a batch half-taken when a projector's `select!` picks another branch would
    /// otherwise be lost with the cancelled future.
    pub fn spawn<T: Send + 'static>(
        self,
        max: usize,
        linger: Duration,
        tx: tokio::sync::mpsc::Sender<anyhow::Result<T>>,
        wrap: fn(Vec<LogRecord>) -> T,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let batch = self.next_batch(max, linger).await.map(wrap).map_err(anyhow::Error::from);
                let failed = batch.is_err();
                if tx.send(batch).await.is_err() || failed {
                    return;
                }
            }
        })
    }

    /// Waits for the first record, then takes whatever else arrives within `linger`, up to `max`.
    pub async fn next_batch(&self, max: usize, linger: Duration) -> Result<Vec<LogRecord>, rdkafka::error::KafkaError> {
        let mut batch = Vec::with_capacity(max.min(8192));
        let first = self.consumer.recv().await?;
        batch.push(to_record(&first));
        drop(first);
        let deadline = tokio::time::Instant::now() + linger;
        while batch.len() < max {
            match tokio::time::timeout_at(deadline, self.consumer.recv()).await {
                Ok(Ok(m)) => batch.push(to_record(&m)),
                Ok(Err(e)) => return Err(e),
                Err(_) => break,
            }
        }
        Ok(batch)
    }
}

fn to_record<M: Message>(m: &M) -> LogRecord {
    LogRecord {
        partition: m.partition(),
        offset: m.offset(),
        key: m.key().unwrap_or_default().to_vec(),
        payload: m.payload().unwrap_or_default().to_vec(),
    }
}
