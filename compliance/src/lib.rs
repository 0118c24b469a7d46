//! The compliance evaluator (docs/adr/0007). It folds the resource topic into a
//! [`ComplianceBook`], follows every tenant's policies, and appends what the book decides —
//! violations opened, due, escalated, resolved, and changes of a resource's judgement — to
//! partition *p* of the compliance-events topic for resources of resource partition *p*.
//!
//! One evaluator writes at a time (a Postgres advisory lock; per-partition leases are the next
//! step, as in the command API). On start, and after any failed append, it rebuilds: the resource
//! topic folded without judging, its own records restored, the policies read, then every resource
//! judged once — the book decides on state, not on events, so what a crash left undecided is
//! decided then, and nothing already recorded is decided again.

mod jobs;
pub mod judging;
mod replay;
mod settings;

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;
use vtag_domain::compliance::{Change, ComplianceBook, Decision, TenantPolicies};
use vtag_domain::{Actor, ResourceId, TenantId};
use vtag_eventlog::compliance::{decision_event_id, ComplianceLog, DecisionBatch, JobProgress, PoliciesLog, RecheckRequest};
use vtag_eventlog::kafka::{assigned_consumer_config, producer_config};
use vtag_eventlog::{partition_of, ConfigRecord, EventCodec, EventTopics, LogRecord};
use vtag_policy_config::PoliciesDocument;

use crate::replay::Replay;
pub use settings::Settings;

/// Who the records name as their actor.
const ACTOR: &str = "vtag-compliance";

/// Decisions per record (a few hundred kilobytes)...
const BATCH: usize = 2_000;
/// ... and never more than brokers take by default (1 MB, `message.max.bytes`): long messages
/// halve a batch until it fits.
const MAX_RECORD_BYTES: usize = 900_000;

struct Codecs {
    resources: EventCodec,
    policies: EventCodec,
    compliance: EventCodec,
}

/// Runs until `shutdown` resolves, rebuilding after any failure.
pub async fn run(settings: Settings, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let topics = EventTopics::new(settings.topic_prefix.clone(), settings.partitions);
    topics.ensure_created(&settings.brokers).await.context("creating topics")?;
    let _lock = single_evaluator(&settings).await?;
    let codecs = Codecs {
        resources: EventCodec::new(&settings.registry_url, topics.resource_events())?,
        policies: EventCodec::for_policies(&settings.registry_url, topics.compliance_policies())?,
        compliance: EventCodec::for_compliance(&settings.registry_url, topics.compliance_events())?,
    };
    codecs.compliance.register_schemas().await.context("registering compliance schemas")?;
    let producer: FutureProducer = producer_config(&settings.brokers).create()?;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            result = evaluate(&settings, &codecs, &producer) => {
                let e = result.expect_err("evaluation only ends on failure");
                tracing::error!(error = format!("{e:#}"), "compliance evaluation failed; rebuilding from the log");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }
    tracing::info!("compliance evaluator stopped");
    Ok(())
}

/// Waits until no other evaluator of this installation runs.
async fn single_evaluator(settings: &Settings) -> anyhow::Result<PgConnection> {
    let mut conn = PgConnection::connect(&settings.database_url).await.context("connecting to Postgres for the evaluator lock")?;
    let key = format!("vtag-compliance:{}", settings.topic_prefix);
    loop {
        let (locked,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock(hashtextextended($1, 0))").bind(&key).fetch_one(&mut conn).await?;
        if locked {
            return Ok(conn);
        }
        tracing::warn!("another compliance evaluator runs; waiting");
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Rebuilds, then follows the log; returns only with an error.
async fn evaluate(settings: &Settings, codecs: &Codecs, producer: &FutureProducer) -> anyhow::Result<()> {
    let partitions = vtag_eventlog::partition_count(&settings.brokers, codecs.resources.topic())?;
    let mut book = ComplianceBook::new();

    // 1. The resources as their events left them.
    let mut replay = Replay::open(&settings.brokers, "vtag-compliance-rebuild", codecs.resources.topic(), partitions).await?;
    while let Some(batch) = replay.next_batch().await? {
        for r in batch {
            if let Ok(LogRecord::Resource(e)) = codecs.resources.decode(&r.payload).await {
                book.fold(&e);
            }
        }
    }
    let resource_ends = replay.ends().clone();
    // 2. What was already decided about them, and which jobs finished where.
    let mut finished = jobs::Finished::default();
    let mut replay = Replay::open(&settings.brokers, "vtag-compliance-rebuild", codecs.compliance.topic(), partitions).await?;
    while let Some(batch) = replay.next_batch().await? {
        for r in batch {
            match codecs.compliance.decode_compliance_log(&r.payload).await {
                Ok(ComplianceLog::Decisions(records)) => {
                    for c in records {
                        let at = c.envelope.recorded_at;
                        book.restore(&Decision { tenant: c.envelope.tenant, resource: c.envelope.aggregate_id, version: c.envelope.aggregate_version, change: c.change }, at);
                    }
                }
                Ok(ComplianceLog::Progress(p)) => finished.record(&p),
                Err(e) => tracing::error!(partition = r.partition, offset = r.offset, error = %e, "skipping an undecodable compliance record"),
            }
        }
    }
    // 3. Every tenant's policies in force, and the jobs asked for.
    let mut asked = Vec::new();
    let mut replay = Replay::open(&settings.brokers, "vtag-compliance-rebuild", codecs.policies.topic(), 1).await?;
    while let Some(batch) = replay.next_batch().await? {
        for r in batch {
            match read_policies_log(codecs, &r.payload).await {
                Some(Asked::Policies(record, policies)) => {
                    book.restore_policies(&record.tenant, policies);
                    asked.push(jobs::Job::after_policies(&record));
                }
                Some(Asked::Recheck(request)) => asked.push(jobs::Job::recheck(&request)),
                None => {}
            }
        }
    }
    let policies_end = replay.ends().get(&0).copied().unwrap_or(0);
    tracing::info!(resources = book.resources(), "compliance book rebuilt");

    // 4. Everything judged once under the policies in force (what a failure left undecided), and
    // the jobs a failure interrupted finished (their decisions are taken by now: they report).
    let log = Log { codecs, producer, partitions };
    let now = Utc::now();
    let everyone = book.resources_of(|_| true);
    let decided = judging::judge(&mut book, &everyone, now);
    log.append(&book, decided, &resource_ends, now, Uuid::nil()).await?;
    for (job, superseded) in jobs::latest_first(&asked) {
        if finished.all_done(job.id, partitions) {
            continue;
        }
        tracing::info!(job = %job.id, kind = job.kind.as_str(), tenant = %job.tenant, superseded, "finishing an interrupted job");
        if superseded {
            jobs::close(&log, job).await?;
        } else {
            jobs::run(&log, &mut book, job, &resource_ends).await?;
        }
    }

    // 5. Follow the log.
    let resources = assign(&settings.brokers, "vtag-compliance-resources", codecs.resources.topic(), &resource_ends)?;
    let policies = assign(&settings.brokers, "vtag-compliance-policies", codecs.policies.topic(), &HashMap::from([(0, policies_end)]))?;
    let mut applied = resource_ends;
    let mut tick = tokio::time::interval(settings.tick);
    // Dates age without any event (a review date 90 days old tomorrow): each new day judges every
    // resource again.
    let mut judged_on = Utc::now().date_naive();
    loop {
        tokio::select! {
            message = resources.recv() => {
                // Everything already fetched is judged and sent before the acknowledgements are
                // awaited: waiting for each event's own (the producer lingers 20 ms) held a bulk
                // tag change of 1,000 resources up for half a minute.
                let mut sent = Vec::new();
                let mut next = Some(message?);
                let mut taken = 0;
                while let Some(m) = next.take() {
                    let (partition, offset) = (m.partition(), m.offset());
                    let payload = m.payload().unwrap_or_default().to_vec();
                    drop(m);
                    applied.insert(partition, offset + 1);
                    if let Ok(LogRecord::Resource(e)) = codecs.resources.decode(&payload).await {
                        let now = Utc::now();
                        let decided = book.resource_event(&e, now);
                        sent.extend(log.send_decisions(&book, decided, &applied, now, e.envelope.event_id).await?);
                    }
                    taken += 1;
                    if taken < FOLLOW_BATCH {
                        // Polled once: only what is already here.
                        next = match tokio::time::timeout(std::time::Duration::ZERO, resources.recv()).await {
                            Ok(m) => Some(m?),
                            Err(_) => None,
                        };
                    }
                }
                for d in sent {
                    Log::acknowledged(d).await?;
                }
            }
            message = policies.recv() => {
                let m = message?;
                let payload = m.payload().unwrap_or_default().to_vec();
                drop(m);
                let job = match read_policies_log(codecs, &payload).await {
                    Some(Asked::Policies(record, next)) => {
                        tracing::info!(tenant = %record.tenant, version = record.version, "policies changed; judging the tenant's resources again");
                        book.restore_policies(&record.tenant, next);
                        jobs::Job::after_policies(&record)
                    }
                    Some(Asked::Recheck(request)) => jobs::Job::recheck(&request),
                    None => continue,
                };
                jobs::run(&log, &mut book, &job, &applied).await?;
            }
            _ = tick.tick() => {
                let now = Utc::now();
                let mut decided = book.tick(now);
                if now.date_naive() != judged_on {
                    judged_on = now.date_naive();
                    let everyone = book.resources_of(|_| true);
                    decided.extend(judging::judge(&mut book, &everyone, now));
                    tracing::info!(day = %judged_on, decisions = decided.len(), "daily pass judged every resource again");
                }
                log.append(&book, decided, &applied, now, Uuid::nil()).await?;
            }
        }
    }
}

/// One decision as a batch carries it: (resource, its compliance version, what was decided).
type Decided = (ResourceId, u64, Change);

/// Resource events judged before their decisions' acknowledgements are awaited.
const FOLLOW_BATCH: usize = 1_000;

/// What a record of the policies topic asks of the evaluator.
enum Asked {
    /// A tenant's new policies (and the retroactive pass they need).
    Policies(ConfigRecord, TenantPolicies),
    Recheck(RecheckRequest),
}

/// Reads a policies-topic record (an unreadable one is skipped: it was validated before it was
/// written, so it can only come from a newer format).
async fn read_policies_log(codecs: &Codecs, payload: &[u8]) -> Option<Asked> {
    let record = match codecs.policies.decode_policies_log(payload).await {
        Ok(PoliciesLog::Policies(r)) => r,
        Ok(PoliciesLog::Recheck(request)) => return Some(Asked::Recheck(request)),
        Err(e) => {
            tracing::error!(error = %e, "skipping an undecodable policies record");
            return None;
        }
    };
    let compiled = PoliciesDocument::from_json(record.document.as_bytes()).and_then(|d| d.compile());
    match compiled {
        Ok(policies) => {
            let next = TenantPolicies::new(record.version, policies);
            Some(Asked::Policies(record, next))
        }
        Err(errors) => {
            tracing::error!(tenant = %record.tenant, version = record.version, ?errors, "skipping policies this build cannot read");
            None
        }
    }
}

/// Where decisions and job markers go: partition *p* of the compliance-events topic for the
/// resources of resource partition *p*.
pub(crate) struct Log<'a> {
    codecs: &'a Codecs,
    producer: &'a FutureProducer,
    partitions: i32,
}

impl Log<'_> {
    pub(crate) fn partitions(&self) -> i32 {
        self.partitions
    }

    /// Appends the decisions — in batches per partition and tenant, each partition's in the order
    /// decided — and waits for every acknowledgement.
    pub(crate) async fn append(
        &self,
        book: &ComplianceBook,
        decided: Vec<Decision>,
        applied: &HashMap<i32, i64>,
        now: DateTime<Utc>,
        cause: Uuid,
    ) -> anyhow::Result<()> {
        for d in self.send_decisions(book, decided, applied, now, cause).await? {
            Self::acknowledged(d).await?;
        }
        Ok(())
    }

    /// Sends the decisions without waiting: the producer keeps each partition's order (idempotent
    /// producer), so a job can send its next chunk while this one is acknowledged.
    pub(crate) async fn send_decisions(
        &self,
        book: &ComplianceBook,
        decided: Vec<Decision>,
        applied: &HashMap<i32, i64>,
        now: DateTime<Utc>,
        cause: Uuid,
    ) -> anyhow::Result<Vec<DeliveryFuture>> {
        if decided.is_empty() {
            return Ok(Vec::new());
        }
        let actor = Actor::parse(ACTOR).expect("a valid actor");
        let mut deliveries = Vec::new();
        for ((partition, tenant), decisions) in self.group(decided) {
            // Chunks of BATCH in order; one whose record would be too big for the broker is halved.
            let mut chunks: Vec<Vec<Decided>> = Vec::new();
            let mut rest = decisions.into_iter().peekable();
            while rest.peek().is_some() {
                chunks.push(rest.by_ref().take(BATCH).collect());
            }
            chunks.reverse();
            while let Some(chunk) = chunks.pop() {
                let (first, version, _) = chunk[0];
                let mut batch = DecisionBatch {
                    batch_id: Uuid::new_v5(&decision_event_id(first, version), format!("batch:{}", chunk.len()).as_bytes()),
                    tenant: tenant.clone(),
                    actor: actor.clone(),
                    causation_id: cause,
                    correlation_id: cause,
                    recorded_at: now,
                    source_offset: applied.get(&partition).copied().unwrap_or(0) - 1,
                    policies_version: book.policies_version(&tenant),
                    decisions: chunk,
                };
                let payload = self.codecs.compliance.encode_decisions(&batch).await?;
                if payload.len() > MAX_RECORD_BYTES && batch.decisions.len() > 1 {
                    let tail = batch.decisions.split_off(batch.decisions.len() / 2);
                    chunks.push(tail);
                    chunks.push(batch.decisions);
                    continue;
                }
                // Keyed by the first resource: a one-resource batch (a tag change) is keyed like the
                // resource's own events.
                deliveries.push(self.send(partition, &first.to_string(), &payload)?);
            }
        }
        Ok(deliveries)
    }

    /// The decisions by (partition, tenant), in first-seen order so every resource's stay in
    /// order.
    fn group(&self, decided: Vec<Decision>) -> Vec<((i32, TenantId), Vec<Decided>)> {
        if let Some(first) = decided.first().map(|d| (partition_of(d.resource.as_uuid(), self.partitions), d.tenant.clone())) {
            // A resource's decisions are consecutive: its partition is computed once.
            let mut last = decided[0].resource;
            let same = |d: &Decision| {
                let known = d.resource == last || partition_of(d.resource.as_uuid(), self.partitions) == first.0;
                last = d.resource;
                known && d.tenant == first.1
            };
            if decided.iter().all(same) {
                // A job's chunk: one group, moved in one allocation.
                return vec![(first, decided.into_iter().map(|d| (d.resource, d.version, d.change)).collect())];
            }
        }
        let mut groups: Vec<((i32, TenantId), Vec<Decided>)> = Vec::new();
        let mut index: HashMap<(i32, TenantId), usize, foldhash::fast::RandomState> = HashMap::default();
        for d in decided {
            let partition = partition_of(d.resource.as_uuid(), self.partitions);
            let i = *index.entry((partition, d.tenant.clone())).or_insert_with(|| {
                groups.push(((partition, d.tenant.clone()), Vec::new()));
                groups.len() - 1
            });
            groups[i].1.push((d.resource, d.version, d.change));
        }
        groups
    }

    /// Appends a job's progress on one partition, after the decisions it counts.
    pub(crate) async fn progress(&self, progress: &JobProgress) -> anyhow::Result<()> {
        Self::acknowledged(self.send_progress(progress).await?).await
    }

    /// Sends a job's progress without waiting (behind the decisions sent before it).
    pub(crate) async fn send_progress(&self, progress: &JobProgress) -> anyhow::Result<DeliveryFuture> {
        let payload = self.codecs.compliance.encode_job_progress(progress).await?;
        self.send(progress.partition, &progress.job_id.to_string(), &payload)
    }

    fn send(&self, partition: i32, key: &str, payload: &[u8]) -> anyhow::Result<DeliveryFuture> {
        self.producer
            .send_result(FutureRecord::to(self.codecs.compliance.topic()).partition(partition).key(key).payload(payload))
            .map_err(|(e, _)| anyhow::anyhow!("sending a compliance record: {e}"))
    }

    pub(crate) async fn acknowledged(delivery: DeliveryFuture) -> anyhow::Result<()> {
        delivery
            .await
            .map_err(|_| anyhow::anyhow!("a compliance record's delivery was cancelled"))?
            .map_err(|(e, _)| anyhow::anyhow!("appending a compliance record: {e}"))?;
        Ok(())
    }
}

/// A consumer of `topic`'s partitions, each from the given offset.
fn assign(brokers: &str, client_id: &str, topic: &str, from: &HashMap<i32, i64>) -> anyhow::Result<StreamConsumer> {
    let consumer: StreamConsumer = assigned_consumer_config(brokers, client_id).create()?;
    let mut tpl = TopicPartitionList::new();
    for (p, offset) in from {
        tpl.add_partition_offset(topic, *p, Offset::Offset(*offset))?;
    }
    consumer.assign(&tpl)?;
    Ok(consumer)
}
