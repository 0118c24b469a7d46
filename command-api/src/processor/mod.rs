//! The command processor: the single writer of every partition of the event topic.
//!
//! Kafka has no conditional append, so optimistic concurrency lives here (DESIGN-NOTES rule 3): each
//! partition's state sits behind one lock; a command is decided against it, its events are appended
//! with an idempotent producer, and only the broker's acknowledgement makes the answer final. A write
//! whose fate is unknown marks the partition untrusted and it is rebuilt from the log before deciding
//! anything else; a partition whose lease comes back only reads what was appended meanwhile. Event
//! ids derive from command ids, and recent outcomes are remembered by command id, so a client that
//! re-sends a command gets the original answer and the log gets no duplicate.
//!
//! Which instance owns which partition is decided by a Kafka consumer group (see `ownership`); a
//! command for a partition this instance does not own is refused with 503 so a load balancer can
//! retry it on another instance.

mod ownership;
mod partition;
mod preview;
mod rebuild;
mod rederive;

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::Mutex;
use uuid::Uuid;
use vtag_domain::compliance::Selection;
use vtag_domain::{decide, CommandContext, ResourceCommand, ResourceError, ResourceId, ResourceState};
use vtag_eventlog::kafka::producer_config;
use vtag_eventlog::{EventCodec, EventTopics};

pub use partition::Outcome;
use partition::PartitionState;
pub use preview::{PreviewReport, RuleStats, TagChangeCount};

use crate::compliance::{PolicyChange, PolicyError, PolicyOutcome, PolicyWriter};
use crate::costs::{CostError, CostWriter, LedgerOutcome, SplitsOutcome};
use crate::settings::Settings;
use vtag_billing::{BillingFile, SplitsDoc};
use crate::tagging::publish::Publisher;
use crate::tagging::{tail, ConfigChange, ConfigOutcome, ConfigRegistry, PublishError};

/// One command addressed to one aggregate.
#[derive(Debug, Clone)]
pub struct Submission {
    pub aggregate: ResourceId,
    pub command: ResourceCommand,
    pub context: CommandContext,
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error(transparent)]
    Refused(#[from] ResourceError),
    /// The write could not be confirmed. Re-sending the same command (same id) is safe.
    #[error("the event log is unavailable: {0}")]
    Unavailable(String),
    /// Another command-API instance holds this partition's lease.
    #[error("partition {0} is owned by another command API instance")]
    NotOwner(i32),
}

pub struct CommandProcessor {
    brokers: String,
    codec: EventCodec,
    producer: FutureProducer,
    partitions: ownership::Partitions,
    ownership: std::sync::Mutex<Option<ownership::Ownership>>,
    configs: Arc<ConfigRegistry>,
    publisher: Publisher,
    costs: CostWriter,
    policies: PolicyWriter,
    rederive: RederivePace,
}

/// How re-derivation jobs walk a partition (see `Settings`).
#[derive(Debug, Clone, Copy)]
pub struct RederivePace {
    /// Resources decided per lock hold: small enough that commands wait milliseconds, large enough
    /// that the producer batches well.
    pub chunk: usize,
    pub pause: Duration,
}

impl CommandProcessor {
    /// Ensures topics and schemas exist, then rebuilds every partition's state from the log.
    pub async fn start(settings: &Settings) -> anyhow::Result<Self> {
        let topics = EventTopics::new(settings.topic_prefix.clone(), settings.partitions);
        topics.ensure_created(&settings.brokers).await?;
        let codec = EventCodec::new(&settings.registry_url, topics.resource_events())?;
        let registered = codec.register_schemas().await?;
        tracing::info!(?registered, "event schemas registered");
        let config_codec = EventCodec::for_config(&settings.registry_url, topics.tagging_config())?;
        config_codec.register_schemas().await?;
        let configs = Arc::new(ConfigRegistry::default());
        tail::follow(&settings.brokers, config_codec.clone(), configs.clone()).await?;
        let producer: FutureProducer = producer_config(&settings.brokers).create()?;
        let publisher = Publisher::new(config_codec, producer.clone(), configs.clone());
        let cost_codec = EventCodec::for_costs(&settings.registry_url, topics.cost_events())?;
        cost_codec.register_schemas().await?;
        let costs = CostWriter::new(&settings.brokers, cost_codec, producer.clone());
        let policy_codec = EventCodec::for_policies(&settings.registry_url, topics.compliance_policies())?;
        policy_codec.register_schemas().await?;
        let policies = PolicyWriter::new(&settings.brokers, policy_codec, producer.clone());
        let count = vtag_eventlog::partition_count(&settings.brokers, codec.topic())?;
        anyhow::ensure!(count > 0, "topic {} has no partitions", codec.topic());
        let partitions: ownership::Partitions =
            Arc::new((0..count).map(|_| Mutex::new(PartitionState::default())).collect());
        let group = format!("{}command-processor", settings.topic_prefix);
        let (brokers, topic, leased) = (settings.brokers.clone(), codec.topic().to_owned(), partitions.clone());
        let ownership = tokio::task::spawn_blocking(move || {
            ownership::Ownership::join(&brokers, &group, &topic, leased, Duration::from_secs(60))
        })
        .await??;
        let processor = Self {
            brokers: settings.brokers.clone(),
            codec,
            producer,
            partitions,
            ownership: std::sync::Mutex::new(Some(ownership)),
            configs,
            publisher,
            costs,
            policies,
            rederive: RederivePace { chunk: settings.rederive_chunk, pause: settings.rederive_pause },
        };
        // Rebuild what we own now, side by side (start-up is mostly fetch latency), rather than on
        // the first command.
        join_all((0..count).map(|p| processor.recover(p))).await;
        Ok(processor)
    }

    /// Brings a partition we own up to the log now rather than on its first command.
    async fn recover(&self, partition: i32) {
        let mut state = self.partitions[partition as usize].lock().await;
        if state.owned {
            if let Err(e) = self.up_to_date(partition, &mut state).await {
                tracing::error!(partition, error = %e, "could not read partition from the log; will retry on the next command");
            }
        }
    }

    /// Makes `state` reflect the whole log of `partition` before a decision: a rebuild when it is
    /// untrusted, a catch-up when the lease came back (another owner may have appended).
    async fn up_to_date(&self, partition: i32, state: &mut PartitionState) -> anyhow::Result<()> {
        if state.trusted && state.behind {
            if let Err(e) = rebuild::catch_up(&self.brokers, &self.codec, partition, state).await {
                tracing::warn!(partition, error = %e, "catch-up failed; rebuilding the partition from the log");
                state.trusted = false;
            }
        }
        if !state.trusted {
            *state = rebuild::rebuild_partition(&self.brokers, &self.codec, partition, state.owned).await?;
        }
        Ok(())
    }

    /// Leaves the ownership group (so other instances take the partitions over) and flushes.
    pub async fn shutdown(&self) {
        let ownership = self.ownership.lock().expect("ownership lock").take();
        if let Some(mut o) = ownership {
            let _ = tokio::task::spawn_blocking(move || o.leave()).await;
        }
        self.flush();
    }

    pub fn partition_of(&self, aggregate: &ResourceId) -> i32 {
        vtag_eventlog::partition_of(aggregate.as_uuid(), self.partitions.len() as i32)
    }

    /// Decides and records a batch of commands. Commands for the same partition are handled in
    /// order; partitions proceed in parallel. One result per submission, in the same order.
    pub async fn submit(&self, submissions: Vec<Submission>) -> Vec<Result<Outcome, SubmitError>> {
        let mut by_partition: Vec<Vec<(usize, Submission)>> = vec![Vec::new(); self.partitions.len()];
        let total = submissions.len();
        for (i, s) in submissions.into_iter().enumerate() {
            let p = self.partition_of(&s.aggregate) as usize;
            by_partition[p].push((i, s));
        }
        let groups = by_partition
            .into_iter()
            .enumerate()
            .filter(|(_, g)| !g.is_empty())
            .map(|(p, group)| self.submit_to_partition(p as i32, group));
        let mut results: Vec<Option<Result<Outcome, SubmitError>>> = (0..total).map(|_| None).collect();
        for group in join_all(groups).await {
            for (i, r) in group {
                results[i] = Some(r);
            }
        }
        results.into_iter().map(|r| r.expect("every submission answered")).collect()
    }

    async fn submit_to_partition(
        &self,
        partition: i32,
        group: Vec<(usize, Submission)>,
    ) -> Vec<(usize, Result<Outcome, SubmitError>)> {
        let mut state = self.partitions[partition as usize].lock().await;
        // Checked under the lock: a revocation takes the same lock, so ownership cannot change
        // between this check and the end of the writes below.
        if !state.owned {
            return group.into_iter().map(|(i, _)| (i, Err(SubmitError::NotOwner(partition)))).collect();
        }
        if let Err(e) = self.up_to_date(partition, &mut state).await {
            let reason = format!("partition {partition} is recovering: {e}");
            return group.into_iter().map(|(i, _)| (i, Err(SubmitError::Unavailable(reason.clone())))).collect();
        }

        // Decide everything first (state moves on optimistically), send everything, then await the
        // acknowledgements together: the producer pipelines, the lock keeps the order.
        let mut answers: Vec<(usize, Result<Outcome, SubmitError>)> = Vec::with_capacity(group.len());
        let mut pending = Vec::new();
        let unseen = ResourceState::default();
        for (i, s) in group {
            if let Some(done) = state.outcome_of(&s.context.command_id) {
                answers.push((i, Ok(done.clone())));
                continue;
            }
            let config = self.configs.get(&s.context.tenant);
            // Decided against a borrow: a re-derivation walk decides a million resources and most
            // record nothing, so copying each one's state would be most of its cost.
            let current = state.aggregates.get(&s.aggregate).unwrap_or(&unseen);
            let current_version = current.version;
            let events = match decide(current, s.aggregate, &s.command, &s.context, &config.compiled) {
                Ok(events) => events,
                Err(refused) => {
                    answers.push((i, Err(refused.into())));
                    continue;
                }
            };
            if events.is_empty() {
                let outcome = Outcome { resource_id: s.aggregate, version: current_version, events: 0, position: None };
                answers.push((i, Ok(outcome)));
                continue;
            }
            let mut deliveries = Vec::with_capacity(events.len());
            for recorded in &events {
                let sent = match self.codec.encode(recorded).await {
                    Ok(payload) => self.send(partition, &recorded.envelope.aggregate_id.to_string(), payload),
                    Err(e) => Err(e.to_string()),
                };
                deliveries.push(sent);
                state.apply(recorded);
            }
            let version = events.last().map_or(current_version, |e| e.envelope.aggregate_version);
            pending.push((i, s.context.command_id, s.aggregate, version, events.len(), deliveries));
        }

        let mut unconfirmed = false;
        for (i, command_id, aggregate, version, count, deliveries) in pending {
            let mut position = None;
            let mut failure = None;
            for d in deliveries {
                match d {
                    Ok(future) => match future.await {
                        Ok(Ok(delivered)) => {
                            state.reached(delivered.offset);
                            position = Some((delivered.partition, delivered.offset));
                        }
                        Ok(Err((e, _))) => failure = Some(e.to_string()),
                        Err(_) => failure = Some("delivery cancelled".to_owned()),
                    },
                    Err(e) => failure = Some(e),
                }
            }
            match failure {
                None => {
                    let outcome = Outcome { resource_id: aggregate, version, events: count, position };
                    state.remember(command_id, outcome.clone());
                    answers.push((i, Ok(outcome)));
                }
                Some(reason) => {
                    unconfirmed = true;
                    tracing::error!(partition, %reason, "event append not confirmed");
                    answers.push((i, Err(SubmitError::Unavailable(reason))));
                }
            }
        }
        if unconfirmed {
            state.trusted = false;
        }
        answers
    }

    fn send(&self, partition: i32, key: &str, payload: Vec<u8>) -> Result<rdkafka::producer::DeliveryFuture, String> {
        let record = FutureRecord::to(self.codec.topic()).partition(partition).key(key).payload(&payload);
        self.producer.send_result(record).map_err(|(e, _)| e.to_string())
    }

    pub fn configs(&self) -> &Arc<ConfigRegistry> {
        &self.configs
    }

    /// Decides and appends a tagging-configuration change; every instance's re-derivation runner
    /// then brings the resources it owns to the new version.
    pub async fn publish_config(
        &self,
        change: &ConfigChange,
        ctx: &CommandContext,
        expected_version: Option<u64>,
    ) -> Result<ConfigOutcome, PublishError> {
        // Partition 0's lease is the configuration writer's lease (see `tagging::publish`).
        let lease = self.partitions[0].lock().await;
        if !lease.owned {
            return Err(PublishError::NotOwner);
        }
        let outcome = self.publisher.publish(change, ctx, expected_version).await;
        drop(lease);
        outcome
    }

    /// Records a billing file's cost ledgers (their resources are observed by the caller first).
    pub async fn import_costs(&self, file: &BillingFile, source: &str, ctx: &CommandContext) -> Result<Vec<LedgerOutcome>, CostError> {
        // Partition 0's lease is the cost topic writer's lease too (see `costs`).
        let lease = self.partitions[0].lock().await;
        if !lease.owned {
            return Err(CostError::NotOwner);
        }
        let outcome = self.costs.import(file, source, ctx).await;
        drop(lease);
        outcome
    }

    /// Replaces a tenant's shared-cost split rules.
    pub async fn set_cost_splits(&self, doc: SplitsDoc, ctx: &CommandContext, expected: Option<u64>) -> Result<SplitsOutcome, CostError> {
        let lease = self.partitions[0].lock().await;
        if !lease.owned {
            return Err(CostError::NotOwner);
        }
        let outcome = self.costs.set_splits(doc, ctx, expected).await;
        drop(lease);
        outcome
    }

    /// Changes a tenant's compliance policies.
    pub async fn change_policies(&self, change: &PolicyChange, ctx: &CommandContext, expected: Option<u64>) -> Result<PolicyOutcome, PolicyError> {
        let lease = self.partitions[0].lock().await;
        if !lease.owned {
            return Err(PolicyError::NotOwner);
        }
        let outcome = self.policies.change(change, ctx, expected).await;
        drop(lease);
        outcome
    }

    /// Asks the evaluator for a recheck (appended by the policies topic's single writer).
    pub async fn request_recheck(&self, selection: Selection, ctx: &CommandContext) -> Result<Uuid, PolicyError> {
        let lease = self.partitions[0].lock().await;
        if !lease.owned {
            return Err(PolicyError::NotOwner);
        }
        let job = self.policies.request_recheck(selection, ctx).await;
        drop(lease);
        job
    }

    /// Waits for every queued event to reach the broker (used on shutdown).
    pub fn flush(&self) {
        use rdkafka::producer::Producer;
        let _ = self.producer.flush(Duration::from_secs(10));
    }
}
