//! Bringing a partition's state up to the log: the log is the only source of truth. A rebuild reads
//! the partition from offset 0 (start-up, or after a write of unknown fate); a catch-up reads only
//! what was appended after the state's `log_end` (after the lease came back — usually nothing).

use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use vtag_eventlog::kafka::assigned_consumer_config;
use vtag_eventlog::{EventCodec, LogRecord};

use super::partition::{Outcome, PartitionState};

/// A fresh state holding everything the partition's log holds.
pub async fn rebuild_partition(brokers: &str, codec: &EventCodec, partition: i32, owned: bool) -> anyhow::Result<PartitionState> {
    let mut state = PartitionState::replaying(owned);
    let events = read_from(brokers, codec, partition, &mut state).await?;
    tracing::info!(partition, events, aggregates = state.aggregates.len(), "partition state rebuilt from the log");
    Ok(state)
}

/// Applies whatever was appended after `state.log_end`. A log shorter than the state (a topic
/// recreated underneath us) cannot be caught up with: that is an error, and the caller rebuilds.
pub async fn catch_up(brokers: &str, codec: &EventCodec, partition: i32, state: &mut PartitionState) -> anyhow::Result<u64> {
    let from = state.log_end;
    let events = read_from(brokers, codec, partition, state).await?;
    if events > 0 {
        tracing::info!(partition, from, events, "caught up with another owner's appends");
    }
    Ok(events)
}

/// Reads `[state.log_end, high watermark)` into `state`, moving `log_end` record by record (so an
/// interrupted read leaves a consistent, merely older, state). Returns the events applied.
async fn read_from(brokers: &str, codec: &EventCodec, partition: i32, state: &mut PartitionState) -> anyhow::Result<u64> {
    let topic = codec.topic();
    let consumer: StreamConsumer = assigned_consumer_config(brokers, &format!("vtag-command-rebuild-{partition}")).create()?;
    let (_, high) = consumer.fetch_watermarks(topic, partition, Duration::from_secs(10))?;
    anyhow::ensure!(high >= state.log_end, "partition {partition} ends at {high}, before {} which this instance has seen", state.log_end);
    if high == state.log_end {
        state.behind = false;
        return Ok(0);
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(state.log_end))?;
    consumer.assign(&tpl)?;
    let mut events = 0u64;
    while state.log_end < high {
        let msg = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .map_err(|_| anyhow::anyhow!("timed out reading partition {partition} at offset {}", state.log_end))??;
        let offset = msg.offset();
        match codec.decode(msg.payload().unwrap_or_default()).await {
            Ok(LogRecord::Progress(marker)) => state.note_progress(&marker),
            Ok(LogRecord::Resource(recorded)) => {
                let env = &recorded.envelope;
                let current = state.aggregates.get(&env.aggregate_id).map_or(0, |s| s.version);
                // The log may hold an event twice (a producer retry on a broker without
                // idempotence), and a catch-up may re-read one this instance wrote: the version
                // says whether it is news.
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
            Err(e) => tracing::error!(partition, offset, error = %e, "skipping an undecodable event while reading the log"),
        }
        state.reached(offset);
    }
    state.behind = false;
    Ok(events)
}
