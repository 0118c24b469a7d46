//! Rebuilding a partition's state from the log: the log is the only source of truth, so this is
//! what start-up does and what recovers a partition after a write of unknown fate.

use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use vtag_eventlog::kafka::assigned_consumer_config;
use vtag_eventlog::{EventCodec, LogRecord};

use super::partition::{Outcome, PartitionState};

pub async fn rebuild_partition(brokers: &str, codec: &EventCodec, partition: i32, owned: bool) -> anyhow::Result<PartitionState> {
    let topic = codec.topic();
    let mut state = PartitionState::replaying(owned);
    let consumer: StreamConsumer = assigned_consumer_config(brokers, &format!("vtag-command-rebuild-{partition}")).create()?;
    let (_, high) = consumer.fetch_watermarks(topic, partition, Duration::from_secs(10))?;
    if high == 0 {
        return Ok(state);
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Beginning)?;
    consumer.assign(&tpl)?;
    let mut events = 0u64;
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .map_err(|_| anyhow::anyhow!("timed out rebuilding partition {partition}"))??;
        let offset = msg.offset();
        match codec.decode(msg.payload().unwrap_or_default()).await {
            Ok(LogRecord::Progress(marker)) => state.note_progress(&marker),
            Ok(LogRecord::Resource(recorded)) => {
                let env = &recorded.envelope;
                let current = state.aggregates.get(&env.aggregate_id).map_or(0, |s| s.version);
                // The log may hold an event twice (a producer retry on a broker without idempotence):
                // the version says whether it is news.
                if env.aggregate_version == current + 1 {
                    state.apply(&recorded);
                    let outcome = Outcome {
                        resource_id: env.aggregate_id,
                        version: env.aggregate_version,
                        events: 1,
                        position: Some((partition, offset)),
                    };
                    state.remember(env.causation_id, outcome);
                    events += 1;
                }
            }
            Err(e) => tracing::error!(partition, offset, error = %e, "skipping an undecodable event while rebuilding"),
        }
        if offset + 1 >= high {
            break;
        }
    }
    tracing::info!(partition, events, aggregates = state.aggregates.len(), "partition state rebuilt from the log");
    Ok(state)
}
