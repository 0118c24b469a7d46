//! The Postgres projector: `resources`, `virtual_tags`, `tag_audit`, `rederivation_progress` from
//! the resource topic, `tagging_configs` from the tagging-config topic, the cost read model
//! (`cost_imports`, `resource_cost_months`, `pool_costs`) from the cost topic, and its checkpoints.

pub mod configs;
pub mod costs;
pub mod fold;
pub mod store;
pub mod violations;

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use vtag_eventlog::{DecodeError, EventCodec, EventTopics};

use crate::dead_letter::DeadLetters;
use crate::settings::Settings;
use crate::source::{BatchSource, LogRecord};
use fold::{fold, AggregateKey, Positioned, ProgressRow};
use vtag_eventlog::LogRecord as Decoded;
use store::Store;

pub const PROJECTOR: &str = "postgres";

/// Runs the projector until `shutdown` resolves. A batch in flight when shutdown arrives is either
/// committed whole or not at all.
pub async fn run(settings: Settings, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let topics = EventTopics::new(settings.log.topic_prefix.clone(), settings.log.partitions);
    let topic = topics.resource_events();
    topics.ensure_created(&settings.log.brokers).await.context("creating topics")?;
    let store = Store::connect(&settings.database_url, PROJECTOR, &topic).await.context("connecting to Postgres")?;
    let _lock = store.lock_single_writer(&settings.database_url).await?;
    let codec = EventCodec::new(&settings.log.registry_url, topic.clone()).context("schema registry settings")?;
    let dead_letters = DeadLetters::new(&settings.log.brokers, topics.dead_letters(), topic.clone(), PROJECTOR)?;

    let mut checkpoints = store.checkpoints().await?;
    let partitions = vtag_eventlog::partition_count(&settings.log.brokers, &topic)?;
    let source = BatchSource::assign(&settings.log.brokers, "vtag-projector-postgres", &topic, partitions, &checkpoints)?;
    tracing::info!(%topic, partitions, ?checkpoints, "postgres projector started");
    let config_codec = EventCodec::for_config(&settings.log.registry_url, topics.tagging_config()).context("schema registry settings")?;
    let configs =
        configs::ConfigProjection::start(store.pool().clone(), PROJECTOR, &settings.log.brokers, config_codec, configs::Documents::TaggingConfig).await?;
    // Its own task: polled only from this loop's select!, it could sit suspended mid-transaction
    // holding a pooled connection while a batch waits for one.
    let mut configs = tokio::spawn(configs.run());
    let policy_codec = EventCodec::for_policies(&settings.log.registry_url, topics.compliance_policies()).context("schema registry settings")?;
    let policies =
        configs::ConfigProjection::start(store.pool().clone(), PROJECTOR, &settings.log.brokers, policy_codec, configs::Documents::CompliancePolicies).await?;
    let mut policies = tokio::spawn(policies.run());
    let compliance_codec = EventCodec::for_compliance(&settings.log.registry_url, topics.compliance_events()).context("schema registry settings")?;
    let compliance_partitions = vtag_eventlog::partition_count(&settings.log.brokers, &topics.compliance_events())?;
    let violations =
        violations::ViolationProjection::start(store.pool().clone(), PROJECTOR, &settings.log.brokers, compliance_codec, compliance_partitions).await?;
    let mut violations = tokio::spawn(violations.run());
    let cost_codec = EventCodec::for_costs(&settings.log.registry_url, topics.cost_events()).context("schema registry settings")?;
    let cost_dead_letters = DeadLetters::new(&settings.log.brokers, topics.dead_letters(), topics.cost_events(), PROJECTOR)?;
    let costs = costs::CostProjection::start(store.pool().clone(), PROJECTOR, &settings.log.brokers, cost_codec, cost_dead_letters).await?;
    let mut costs = tokio::spawn(costs.run());

    tokio::pin!(shutdown);
    loop {
        let batch = tokio::select! {
            _ = &mut shutdown => break,
            result = &mut configs => return result.context("tagging-config projection")?.context("tagging-config projection"),
            result = &mut costs => return result.context("cost projection")?.context("cost projection"),
            result = &mut policies => return result.context("compliance-policies projection")?.context("compliance-policies projection"),
            result = &mut violations => return result.context("violations projection")?.context("violations projection"),
            batch = source.next_batch(settings.log.batch_size, settings.log.batch_linger) => batch?,
        };
        project_batch(&store, &codec, &dead_letters, &mut checkpoints, batch).await?;
    }
    configs.abort();
    costs.abort();
    policies.abort();
    violations.abort();
    tracing::info!("postgres projector stopped");
    Ok(())
}

/// Decodes, folds and writes one batch; moves `checkpoints` past it.
pub async fn project_batch(
    store: &Store,
    codec: &EventCodec,
    dead_letters: &DeadLetters,
    checkpoints: &mut HashMap<i32, i64>,
    batch: Vec<LogRecord>,
) -> anyhow::Result<()> {
    let mut events = Vec::with_capacity(batch.len());
    let mut progress = Vec::new();
    let mut next_offsets: HashMap<i32, i64> = HashMap::new();
    for record in &batch {
        // Already folded (the source may hand out a record twice around a reconnect).
        if record.offset < checkpoints.get(&record.partition).copied().unwrap_or(0) {
            continue;
        }
        next_offsets.insert(record.partition, record.offset + 1);
        match decode_with_retry(|| codec.decode(&record.payload)).await {
            Ok(Decoded::Resource(recorded)) => events.push(Positioned { partition: record.partition, offset: record.offset, recorded }),
            Ok(Decoded::Progress(m)) => progress.push(ProgressRow {
                tenant: m.tenant.as_str().to_owned(),
                job_id: m.job_id,
                rule_set_version: m.rule_set_version,
                partition: m.partition,
                partitions: m.partitions,
                processed: m.processed,
                total: m.total,
                changed: m.changed,
                done: m.done,
                actor: m.actor.as_str().to_owned(),
                at: m.recorded_at,
            }),
            Err(reason) => {
                tracing::error!(partition = record.partition, offset = record.offset, %reason, "dead-lettering an event");
                dead_letters.park(record, &reason).await.context("writing to the dead-letter topic")?;
            }
        }
    }
    if next_offsets.is_empty() {
        return Ok(());
    }
    let keys: Vec<AggregateKey> = events
        .iter()
        .map(|e| (e.recorded.envelope.tenant.as_str().to_owned(), e.recorded.envelope.aggregate_id.as_uuid()))
        .collect::<std::collections::HashSet<_>>()
        .into_iter()
        .collect();
    let known = store.versions(&keys).await?;
    let mut changes = fold(&events, &known);
    changes.progress = fold::latest_progress(progress);
    write_with_retry(|| store.write(&changes, &next_offsets)).await?;
    checkpoints.extend(next_offsets);
    if changes.skipped > 0 {
        tracing::debug!(skipped = changes.skipped, "skipped events already in the read model");
    }
    Ok(())
}

/// Registry outages are transient: wait them out. Anything else about the bytes is permanent.
pub(crate) async fn decode_with_retry<T, Fut>(mut decode: impl FnMut() -> Fut) -> Result<T, String>
where
    Fut: Future<Output = Result<T, DecodeError>>,
{
    let mut delay = Duration::from_millis(100);
    loop {
        match decode().await {
            Ok(e) => return Ok(e),
            Err(DecodeError::Poison(reason)) => return Err(reason),
            Err(DecodeError::Unavailable(reason)) => {
                tracing::warn!(%reason, "schema registry unavailable; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Retries a read-model write (one transaction) while the failure is transient.
pub(crate) async fn write_with_retry<Fut>(mut write: impl FnMut() -> Fut) -> anyhow::Result<()>
where
    Fut: Future<Output = Result<(), sqlx::Error>>,
{
    let mut attempt = 0;
    loop {
        match write().await {
            Ok(()) => return Ok(()),
            Err(e) if attempt < 20 && is_transient(&e) => {
                attempt += 1;
                tracing::warn!(error = %e, attempt, "read-model write failed; retrying");
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
            Err(e) => return Err(e).context("writing the read model"),
        }
    }
}

fn is_transient(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Protocol(_))
        || matches!(e, sqlx::Error::Database(db) if db.code().is_some_and(|c| c.starts_with("40") || c.starts_with("08") || c.starts_with("57")))
}
