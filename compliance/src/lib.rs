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

mod replay;
mod settings;

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;
use vtag_domain::compliance::{ComplianceBook, Decision, TenantPolicies};
use vtag_domain::{Actor, EventEnvelope};
use vtag_eventlog::compliance::ComplianceRecord;
use vtag_eventlog::kafka::{assigned_consumer_config, producer_config};
use vtag_eventlog::{partition_for, ConfigRecord, EventCodec, EventTopics, LogRecord};
use vtag_policy_config::PoliciesDocument;

use crate::replay::Replay;
pub use settings::Settings;

/// Who the records name as their actor.
const ACTOR: &str = "vtag-compliance";

/// Ids of the records: one per resource and version, the same however often it is decided.
const RECORD_IDS: Uuid = Uuid::from_u128(0x3f6b_2a91_c8d4_4e07_9b15_6ad2_e0c7_4f83);

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
    // 2. What was already decided about them.
    let mut replay = Replay::open(&settings.brokers, "vtag-compliance-rebuild", codecs.compliance.topic(), partitions).await?;
    while let Some(batch) = replay.next_batch().await? {
        for r in batch {
            match codecs.compliance.decode_compliance(&r.payload).await {
                Ok(c) => book.restore(
                    &Decision { tenant: c.envelope.tenant.clone(), resource: c.envelope.aggregate_id, version: c.envelope.aggregate_version, change: c.change },
                    c.envelope.recorded_at,
                ),
                Err(e) => tracing::error!(partition = r.partition, offset = r.offset, error = %e, "skipping an undecodable compliance record"),
            }
        }
    }
    // 3. Every tenant's policies in force.
    let mut replay = Replay::open(&settings.brokers, "vtag-compliance-rebuild", codecs.policies.topic(), 1).await?;
    while let Some(batch) = replay.next_batch().await? {
        for r in batch {
            if let Some((record, policies)) = policies_of(codecs, &r.payload).await {
                book.restore_policies(&record.tenant, policies);
            }
        }
    }
    let policies_end = replay.ends().get(&0).copied().unwrap_or(0);
    tracing::info!(resources = book.resources(), "compliance book rebuilt");

    // 4. Everything judged once under the policies in force (what a failure left undecided).
    let now = Utc::now();
    let decided = book.rejudge(|_| true, now);
    append(codecs, producer, &book, &decided, &resource_ends, now, Uuid::nil()).await?;

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
                let m = message?;
                let (partition, offset) = (m.partition(), m.offset());
                let payload = m.payload().unwrap_or_default().to_vec();
                drop(m);
                applied.insert(partition, offset + 1);
                let Ok(LogRecord::Resource(e)) = codecs.resources.decode(&payload).await else { continue };
                let now = Utc::now();
                let decided = book.resource_event(&e, now);
                append(codecs, producer, &book, &decided, &applied, now, e.envelope.event_id).await?;
            }
            message = policies.recv() => {
                let m = message?;
                let payload = m.payload().unwrap_or_default().to_vec();
                drop(m);
                if let Some((record, next)) = policies_of(codecs, &payload).await {
                    let now = Utc::now();
                    let decided = book.policies_changed(&record.tenant, next, now);
                    tracing::info!(tenant = %record.tenant, version = record.version, decisions = decided.len(), "policies applied");
                    append(codecs, producer, &book, &decided, &applied, now, record.event_id).await?;
                }
            }
            _ = tick.tick() => {
                let now = Utc::now();
                let mut decided = book.tick(now);
                if now.date_naive() != judged_on {
                    judged_on = now.date_naive();
                    decided.extend(book.rejudge(|_| true, now));
                    tracing::info!(day = %judged_on, decisions = decided.len(), "daily pass judged every resource again");
                }
                append(codecs, producer, &book, &decided, &applied, now, Uuid::nil()).await?;
            }
        }
    }
}

/// A policies record and the policies it puts in force (an unreadable one is skipped: it was
/// validated before it was written, so it can only come from a newer format).
async fn policies_of(codecs: &Codecs, payload: &[u8]) -> Option<(ConfigRecord, TenantPolicies)> {
    let record = match codecs.policies.decode_policies(payload).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "skipping an undecodable policies record");
            return None;
        }
    };
    let compiled = PoliciesDocument::from_json(record.document.as_bytes()).and_then(|d| d.compile());
    match compiled {
        Ok(policies) => {
            let next = TenantPolicies::new(record.version, policies);
            Some((record, next))
        }
        Err(errors) => {
            tracing::error!(tenant = %record.tenant, version = record.version, ?errors, "skipping policies this build cannot read");
            None
        }
    }
}

/// Appends the decisions (each to its resource's partition) and waits for every acknowledgement.
async fn append(
    codecs: &Codecs,
    producer: &FutureProducer,
    book: &ComplianceBook,
    decided: &[Decision],
    applied: &HashMap<i32, i64>,
    now: DateTime<Utc>,
    cause: Uuid,
) -> anyhow::Result<()> {
    if decided.is_empty() {
        return Ok(());
    }
    let partitions = applied.len().max(1) as i32;
    let actor = Actor::parse(ACTOR).expect("a valid actor");
    let mut deliveries = Vec::with_capacity(decided.len());
    for d in decided {
        let key = d.resource.to_string();
        let partition = partition_for(key.as_bytes(), partitions);
        let event_id = Uuid::new_v5(&RECORD_IDS, format!("{key}:{}", d.version).as_bytes());
        let record = ComplianceRecord {
            envelope: EventEnvelope {
                event_id,
                tenant: d.tenant.clone(),
                aggregate_id: d.resource,
                aggregate_version: d.version,
                actor: actor.clone(),
                causation_id: cause,
                correlation_id: cause,
                occurred_at: now,
                recorded_at: now,
            },
            source_offset: applied.get(&partition).copied().unwrap_or(0) - 1,
            policies_version: book.policies_version(&d.tenant),
            change: d.change.clone(),
        };
        let payload = codecs.compliance.encode_compliance(&record).await?;
        let sent = producer
            .send_result(FutureRecord::to(codecs.compliance.topic()).partition(partition).key(&key).payload(&payload))
            .map_err(|(e, _)| anyhow::anyhow!("sending a compliance record: {e}"))?;
        deliveries.push(sent);
    }
    for d in deliveries {
        d.await.map_err(|_| anyhow::anyhow!("a compliance record's delivery was cancelled"))?.map_err(|(e, _)| anyhow::anyhow!("appending a compliance record: {e}"))?;
    }
    Ok(())
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
