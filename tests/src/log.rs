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

/// Every decision on the test's compliance-events topic so far, partition by partition in order
/// (job progress markers left out).
pub async fn compliance_decisions(env: &crate::harness::TestEnv) -> Vec<vtag_eventlog::compliance::ComplianceRecord> {
    use rdkafka::message::Message;
    use rdkafka::{Offset, TopicPartitionList};
    use vtag_eventlog::compliance::ComplianceLog;

    let topic = vtag_eventlog::EventTopics::new(env.prefix.clone(), env.partitions).compliance_events();
    let codec = vtag_eventlog::EventCodec::for_compliance(&env.stack.registry_url, topic.clone()).expect("codec");
    let consumer: BaseConsumer =
        vtag_eventlog::kafka::assigned_consumer_config(&env.stack.brokers, "vtag-tests-compliance").create().expect("consumer");
    let mut tpl = TopicPartitionList::new();
    let mut left = std::collections::BTreeMap::new();
    for p in 0..env.partitions {
        let (low, high) = consumer.fetch_watermarks(&topic, p, Duration::from_secs(10)).expect("watermarks");
        if high > low {
            left.insert(p, high);
            tpl.add_partition_offset(&topic, p, Offset::Offset(low)).expect("partition");
        }
    }
    let mut payloads = Vec::new();
    if !left.is_empty() {
        consumer.assign(&tpl).expect("assign");
        while !left.is_empty() {
            let m = consumer.poll(Duration::from_secs(10)).expect("a record").expect("no error");
            payloads.push(m.payload().unwrap_or_default().to_vec());
            if left.get(&m.partition()).is_some_and(|high| m.offset() + 1 >= *high) {
                left.remove(&m.partition());
            }
        }
    }
    let mut out = Vec::new();
    for p in payloads {
        if let ComplianceLog::Decisions(decisions) = codec.decode_compliance_log(&p).await.expect("decodable") {
            out.extend(decisions);
        }
    }
    out
}
