//! Follows the tagging-configuration topic from its first record into the registry. Start-up waits
//! until the tail has read everything there was, so no decision uses a stale configuration of a
//! tenant whose newer one was already in the log.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::oneshot;
use vtag_eventlog::kafka::assigned_consumer_config;
use vtag_eventlog::{DecodeError, EventCodec};

use super::registry::ConfigRegistry;

/// Spawns the tail and returns once it has caught up with the topic's end as of now.
pub async fn follow(brokers: &str, codec: EventCodec, registry: Arc<ConfigRegistry>) -> anyhow::Result<()> {
    let consumer: StreamConsumer = assigned_consumer_config(brokers, "vtag-config-tail").create()?;
    let topic = codec.topic().to_owned();
    let (_, high) = consumer.fetch_watermarks(&topic, 0, Duration::from_secs(10))?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Beginning)?;
    consumer.assign(&tpl)?;
    let (caught_up, ready) = oneshot::channel();
    let mut caught_up = Some(caught_up);
    if high == 0 {
        let _ = caught_up.take().map(|c| c.send(()));
    }
    tokio::spawn(async move {
        loop {
            let msg = match consumer.recv().await {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, "tagging-config tail: read failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let offset = msg.offset();
            let payload = msg.payload().unwrap_or_default().to_vec();
            loop {
                match codec.decode_config(&payload).await {
                    Ok(record) => {
                        if let Err(e) = registry.install(&record) {
                            tracing::error!(offset, error = %e, "tagging-config tail: skipping a configuration that does not compile");
                        }
                        break;
                    }
                    Err(DecodeError::Unavailable(e)) => {
                        tracing::warn!(offset, error = %e, "tagging-config tail: registry unavailable; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    Err(DecodeError::Poison(e)) => {
                        tracing::error!(offset, error = %e, "tagging-config tail: skipping an undecodable record");
                        break;
                    }
                }
            }
            if offset + 1 >= high {
                if let Some(c) = caught_up.take() {
                    let _ = c.send(());
                }
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(60), ready)
        .await
        .map_err(|_| anyhow::anyhow!("timed out reading the tagging-config topic"))?
        .map_err(|_| anyhow::anyhow!("the tagging-config tail stopped"))?;
    Ok(())
}
