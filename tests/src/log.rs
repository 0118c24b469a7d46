//! Reading the event log directly, to check what reached it.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};

/// Sum of the high watermarks of every partition of `topic`: the number of records ever written.
pub fn records_in(brokers: &str, topic: &str, partitions: i32) -> i64 {
    let consumer: BaseConsumer =
        vtag_eventlog::kafka::assigned_consumer_config(brokers, "vtag-tests-watermarks").create().expect("consumer");
    (0..partitions)
        .map(|p| consumer.fetch_watermarks(topic, p, Duration::from_secs(10)).expect("watermarks").1)
        .sum()
}
