//! Partition ownership: which command-API instance may write which partition of the event topic.
//!
//! Ownership is a Kafka consumer-group assignment on the event topic (group
//! `<prefix>command-processor`): the group coordinator hands each partition to exactly one live
//! member, which makes the assignment a lease. We want the lease, not the records, so assigned
//! partitions are paused. The group consumer is polled on its own OS thread because rebalance
//! callbacks run on the polling thread and must block: a revocation waits for the partition's
//! in-flight writes to finish (by taking its lock) before giving it up, so two instances never write
//! the same partition at once; an assignment marks the partition `behind` so whatever another owner
//! appended since this instance last saw the partition is read from the log before the next
//! decision. The state itself is kept across a revocation: under load the group can rebalance
//! without ownership really changing, and a partition handed straight back must not be rebuilt
//! from offset 0 (minutes at a million resources, during which every command would wait).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::ClientContext;
use tokio::sync::Mutex;

use super::partition::PartitionState;

pub type Partitions = Arc<Vec<Mutex<PartitionState>>>;

pub struct Ownership {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

struct Lease {
    partitions: Partitions,
    assigned: mpsc::Sender<()>,
}

impl ClientContext for Lease {}

impl ConsumerContext for Lease {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            for e in tpl.elements() {
                if let Some(partition) = self.partitions.get(e.partition() as usize) {
                    // Waits for a write in flight on this partition: it finishes under our lease.
                    partition.blocking_lock().owned = false;
                    tracing::info!(partition = e.partition(), "partition ownership revoked");
                }
            }
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                if let Err(e) = consumer.pause(tpl) {
                    tracing::warn!(error = %e, "could not pause the ownership consumer");
                }
                for e in tpl.elements() {
                    if let Some(partition) = self.partitions.get(e.partition() as usize) {
                        let mut state = partition.blocking_lock();
                        state.owned = true;
                        state.behind = true;
                    }
                }
                tracing::info!(partitions = ?tpl.elements().iter().map(|e| e.partition()).collect::<Vec<_>>(), "partition ownership assigned");
                let _ = self.assigned.send(());
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(e) => tracing::error!(error = %e, "ownership rebalance failed"),
        }
    }
}

impl Ownership {
    /// Joins the ownership group and waits for the first assignment (which may be empty when more
    /// instances than partitions are running).
    pub fn join(brokers: &str, group: &str, topic: &str, partitions: Partitions, wait: Duration) -> anyhow::Result<Self> {
        let (assigned, first) = mpsc::channel();
        let consumer: BaseConsumer<Lease> = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", group)
            .set("client.id", "vtag-command-ownership")
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "latest")
            // Generous: a broker busy with a bulk load can answer heartbeats late, and a spurious
            // expiry costs a rebalance. A crashed instance's partitions move after this long; a
            // stopped one leaves the group at once.
            .set("session.timeout.ms", "30000")
            .set("heartbeat.interval.ms", "3000")
            .set("partition.assignment.strategy", "roundrobin")
            .create_with_context(Lease { partitions, assigned })?;
        consumer.subscribe(&[topic])?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new().name("vtag-ownership".into()).spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                // Records never arrive (partitions are paused); polling serves the group protocol.
                let _ = consumer.poll(Duration::from_millis(100));
            }
            consumer.unsubscribe();
            drop(consumer);
        })?;
        let ownership = Self { stop, thread: Some(thread) };
        first
            .recv_timeout(wait)
            .map_err(|_| anyhow::anyhow!("no partition assignment from group {group} within {wait:?}"))?;
        Ok(ownership)
    }

    /// Leaves the group (its partitions go to the remaining instances).
    pub fn leave(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Ownership {
    fn drop(&mut self) {
        self.leave();
    }
}
