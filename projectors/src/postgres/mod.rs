//! The Postgres projector: `resources`, `virtual_tags`, `tag_audit`, `rederivation_progress` from
//! the resource topic, `tagging_configs` from the tagging-config topic, the cost read model
//! (`cost_imports`, `resource_cost_months`, `pool_costs`) from the cost topic, and its checkpoints.

pub mod configs;
pub mod costs;
pub mod fold;
pub mod store;
pub mod swap;
pub mod violations;

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use vtag_eventlog::{DecodeError, EventCodec, EventTopics};

use crate::dead_letter::DeadLetters;
use crate::holds::Holds;
use crate::settings::Settings;
use crate::source::{BatchSource, LogRecord};
use fold::{fold, AggregateKey, Positioned, ProgressRow};
use vtag_eventlog::LogRecord as Decoded;
use store::Store;

pub const PROJECTOR: &str = "postgres";

/// Runs the projector until `shutdown` resolves. A batch in flight when shutdown arrives is either
/// committed whole or not at all. When a rebuild swaps its read model in, the projector starts over
/// on it from its checkpoints.
pub async fn run(settings: Settings, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    tokio::pin!(shutdown);
    loop {
        match pass(&settings, None, &mut shutdown).await {
            Ok(Ended::Shutdown) => return Ok(()),
            Ok(Ended::RetryRequested) => tracing::info!("retrying the held events, from the first one"),
            Err(e) if swap::is_swapped(&e) => tracing::info!("a rebuilt read model was swapped in; projecting into it from its checkpoints"),
            Err(e) => return Err(e),
        }
    }
}

/// Why a pass ended without an error.
enum Ended {
    Shutdown,
    /// An operator asked to retry the held events: the next pass starts from the first of them.
    RetryRequested,
}

/// What a rebuild did.
pub struct Rebuilt {
    /// The name the replaced model had until it was dropped.
    pub retired: String,
    /// From the start until the rebuilt model served (its retired predecessor is dropped 2 s later).
    pub swapped_after: Duration,
}

/// Rebuilds the read model from offset 0 into a shadow schema beside the served one, and swaps it in
/// (ADR 0010). `progress` hears records folded of those due when the rebuild began.
pub async fn rebuild(settings: Settings, progress: &(dyn Fn(i64, i64) + Send + Sync)) -> anyhow::Result<Rebuilt> {
    let started = std::time::Instant::now();
    let mut rebuild = swap::Rebuild::prepare(&settings.database_url).await?;
    let topics = EventTopics::new(settings.log.topic_prefix.clone(), settings.log.partitions);
    topics.ensure_created(&settings.log.brokers).await.context("creating topics")?;
    let read = [topics.resource_events(), topics.tagging_config(), topics.compliance_policies(), topics.cost_events(), topics.compliance_events()];
    let due = vtag_eventlog::ends_of(&settings.log.brokers, &read).await.context("reading the log's ends")?;
    let due_total: i64 = due.values().flat_map(HashMap::values).sum();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let shadow = rebuild.shadow.clone();
    let mut building = tokio::spawn({
        let settings = settings.clone();
        async move {
            let stopped = async move {
                let _ = stopped.await;
            };
            tokio::pin!(stopped);
            pass(&settings, Some(&shadow), &mut stopped).await.map(drop)
        }
    });
    loop {
        tokio::select! {
            result = &mut building => {
                result.context("the shadow's projector")??;
                anyhow::bail!("the shadow's projector stopped before it caught up");
            }
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
        let folded = rebuild.shadow_checkpoints(PROJECTOR).await?;
        let done: i64 = due.iter().map(|(topic, ends)| ends.iter().map(|(p, end)| folded.get(topic).and_then(|c| c.get(p)).copied().unwrap_or(0).min(*end)).sum::<i64>()).sum();
        progress(done, due_total);
        if due.iter().all(|(topic, ends)| crate::generations::reached(folded.get(topic).unwrap_or(&HashMap::new()), Some(ends))) {
            break;
        }
    }
    rebuild.create_deferred_indexes().await.context("indexing the shadow")?;
    let retired = rebuild
        .swap(PROJECTOR, async move {
            let _ = stop.send(());
            building.await.context("the shadow's projector")?
        })
        .await?;
    let swapped_after = started.elapsed();
    rebuild.retire(&retired).await.context("dropping the retired read model")?;
    Ok(Rebuilt { retired, swapped_after })
}

/// One pass of the projector over the served model (`shadow` None) or a rebuild's shadow schema,
/// until `shutdown`, an error, or (served) a swap.
async fn pass(settings: &Settings, shadow: Option<&str>, shutdown: &mut (impl Future<Output = ()> + Unpin)) -> anyhow::Result<Ended> {
    let topics = EventTopics::new(settings.log.topic_prefix.clone(), settings.log.partitions);
    let topic = topics.resource_events();
    topics.ensure_created(&settings.log.brokers).await.context("creating topics")?;
    let store = Store::connect(&settings.database_url, PROJECTOR, &topic, shadow).await.context("connecting to Postgres")?;
    let _lock = store.lock_single_writer(&settings.database_url).await?;
    let codec = EventCodec::new(&settings.log.registry_url, topic.clone()).context("schema registry settings")?;
    // A rebuild's shadow holds what the served model holds; only the served one answers retries.
    let dead_letters = DeadLetters::new(&settings.log.brokers, topics.dead_letters(), topic.clone(), PROJECTOR)?;
    let mut holds = Holds::load(&settings.log.brokers, dead_letters, shadow.is_none()).await?;

    let mut checkpoints = holds.start(&store.checkpoints().await?).await?;
    let partitions = vtag_eventlog::partition_count(&settings.log.brokers, &topic)?;
    let (tx, mut batches) = tokio::sync::mpsc::channel(2);
    // A shadow is built from empty by this pass alone: the versions it holds are the ones this pass
    // wrote (no need to read them back), and bigger batches mean fewer round trips.
    let (batch_size, mut built) = match shadow {
        Some(_) => (settings.log.batch_size.max(20_000), Some(HashMap::new())),
        None => (settings.log.batch_size, None),
    };
    // On a task of its own, so that waking up to look for a retry request loses no records.
    let _reader = crate::generations::Readers(vec![BatchSource::assign(&settings.log.brokers, "vtag-projector-postgres", &topic, partitions, &checkpoints)?
        .spawn(batch_size, settings.log.batch_linger, tx, |records| records)]);
    tracing::info!(%topic, partitions, ?shadow, ?checkpoints, "postgres projector started");
    // Each in a task of its own: polled only from this loop's select!, one could sit suspended
    // mid-transaction holding a pooled connection while a batch waits for one. The set aborts them
    // all when the pass ends, however it ends.
    let mut projections = tokio::task::JoinSet::new();
    let config_codec = EventCodec::for_config(&settings.log.registry_url, topics.tagging_config()).context("schema registry settings")?;
    let configs =
        configs::ConfigProjection::start(store.target().clone(), PROJECTOR, &settings.log.brokers, config_codec, configs::Documents::TaggingConfig).await?;
    projections.spawn(async move { configs.run().await.context("tagging-config projection") });
    let policy_codec = EventCodec::for_policies(&settings.log.registry_url, topics.compliance_policies()).context("schema registry settings")?;
    let policies =
        configs::ConfigProjection::start(store.target().clone(), PROJECTOR, &settings.log.brokers, policy_codec, configs::Documents::CompliancePolicies).await?;
    projections.spawn(async move { policies.run().await.context("compliance-policies projection") });
    let compliance_codec = EventCodec::for_compliance(&settings.log.registry_url, topics.compliance_events()).context("schema registry settings")?;
    let compliance_partitions = vtag_eventlog::partition_count(&settings.log.brokers, &topics.compliance_events())?;
    let violations =
        violations::ViolationProjection::start(store.target().clone(), PROJECTOR, &settings.log.brokers, compliance_codec, compliance_partitions).await?;
    projections.spawn(async move { violations.run().await.context("violations projection") });
    let cost_codec = EventCodec::for_costs(&settings.log.registry_url, topics.cost_events()).context("schema registry settings")?;
    let cost_dead_letters = DeadLetters::new(&settings.log.brokers, topics.dead_letters(), topics.cost_events(), PROJECTOR)?;
    let costs = costs::CostProjection::start(store.target().clone(), PROJECTOR, &settings.log.brokers, cost_codec, cost_dead_letters).await?;
    projections.spawn(async move { costs.run().await.context("cost projection") });

    let ended = loop {
        let batch = tokio::select! {
            _ = &mut *shutdown => break Ok(Ended::Shutdown),
            Some(ended) = projections.join_next() => {
                break ended.context("a projection task").and_then(|r| r).and_then(|()| Err(anyhow::anyhow!("a projection stopped")))
            }
            batch = batches.recv() => Some(batch),
            _ = tokio::time::sleep(Duration::from_secs(1)) => None,
        };
        let step = async {
            if let Some(batch) = batch {
                let batch = batch.context("the resource topic's reader stopped")??;
                project_batch(&store, &codec, &mut holds, &mut checkpoints, built.as_mut(), batch).await?;
                holds.settle(&checkpoints).await?;
            }
            holds.retry_requested().await
        };
        match step.await {
            Ok(false) => {}
            Ok(true) => break Ok(Ended::RetryRequested),
            Err(e) => break Err(e),
        }
    };
    // Every writer is done before the pool closes, and the pool is closed before this returns: a
    // rebuild renames the shadow only after its last transaction ended.
    projections.shutdown().await;
    store.pool().close().await;
    tracing::info!(?shadow, "postgres projector stopped");
    ended
}

/// Decodes, folds and writes one batch; moves `checkpoints` past it.
pub async fn project_batch(
    store: &Store,
    codec: &EventCodec,
    holds: &mut Holds,
    checkpoints: &mut HashMap<i32, i64>,
    built: Option<&mut HashMap<AggregateKey, u64>>,
    batch: Vec<LogRecord>,
) -> anyhow::Result<()> {
    let mut events = Vec::with_capacity(batch.len());
    let mut progress = Vec::new();
    // Records already folded are skipped (the source may hand out a record twice around a
    // reconnect); poison is parked, its aggregate held.
    let (decoded, next_offsets) = holds.decode_or_park(&batch, checkpoints, |payload| codec.decode(payload)).await?;
    for (record, decoded) in decoded {
        match decoded {
            Decoded::Resource(recorded) => events.push(Positioned { partition: record.partition, offset: record.offset, recorded }),
            Decoded::Progress(m) => progress.push(ProgressRow {
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
    let known = match &built {
        Some(built) => keys.iter().filter_map(|k| Some((k.clone(), *built.get(k)?))).collect(),
        None => store.versions(&keys).await?,
    };
    let mut changes = fold(&events, &known);
    changes.progress = fold::latest_progress(progress);
    write_with_retry(|| store.write(&changes, &next_offsets)).await?;
    checkpoints.extend(next_offsets);
    if let Some(built) = built {
        built.extend(changes.resources.iter().map(|(k, c)| (k.clone(), c.version)));
    }
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
