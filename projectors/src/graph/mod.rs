//! The graph projector: folds the resource topic into the graph read model (Neo4j over Bolt; locally
//! ArcadeDB's Bolt plugin): Resource nodes and the Tags, Teams, CostCenters, Projects and Accounts
//! their virtual tags link them to (`model`), written in UNWIND batches (`store`). One writer per
//! generation, like every projector.
//!
//! Checkpoints. The graph has transactions: a batch's nodes, relationships and the topic's
//! checkpoint commit together, so a crash replays nothing that was written. Each resource's
//! aggregate version is on its node as well, and a replayed event that is not newer changes nothing.
//!
//! Generations, as for search (ADR 0008): a generation is built from offset 0 up to the log's end,
//! then the model node's `serving` moves to it in one write; queries read the generation it names.
//! A rebuild (`rebuild`, `vtag-projector-graph --rebuild`) builds one beside the served one and
//! swaps; the serving projector notices within a second, drops the old one and follows.

pub mod model;
pub mod store;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::mpsc;
use vtag_eventlog::{EventCodec, EventTopics, LogRecord as Decoded};

use crate::dead_letter::DeadLetters;
use crate::holds::Holds;
use crate::generations::{behind, reached, Mode, Readers};
use crate::search::doc::ResourceDoc;
use crate::settings::LogSettings;
use crate::source::{BatchSource, LogRecord};
pub use store::BoltSettings;
use store::{GraphError, GraphStore};

pub const PROJECTOR: &str = "neo4j";

/// How often the serving projector checks that its generation is still the served one.
const WATCH: Duration = Duration::from_secs(1);
/// How long a replaced generation is left standing: a query that named it just before the swap
/// finishes on whole data.
const GRACE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct GraphSettings {
    pub bolt: BoltSettings,
    pub log: LogSettings,
}

impl GraphSettings {
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self { bolt: BoltSettings::from_env(), log: LogSettings::from_env()? })
    }
}

enum Stop {
    Shutdown,
    /// Another generation serves now: follow it.
    Replaced(String),
    /// A rebuild's generation serves now.
    Swapped(String),
    /// An operator asked to retry the held events: the next pass starts from the first of them.
    Retry,
}

/// Runs the projector until `shutdown` resolves.
pub async fn run(settings: GraphSettings, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let projector = Projector::connect(&settings).await?;
    tokio::pin!(shutdown);
    loop {
        match projector.pass(&mut shutdown, Mode::Serve).await? {
            Stop::Shutdown => break,
            Stop::Replaced(reason) => tracing::info!(%reason, "following the graph's served generation"),
            Stop::Retry => tracing::info!("retrying the held events, from the first one"),
            Stop::Swapped(_) => unreachable!("only a rebuild swaps"),
        }
    }
    tracing::info!("graph projector stopped");
    Ok(())
}

/// Rebuilds the graph beside the served generation and swaps when within a batch of the log's
/// end; queries read the old generation until then. Returns the new generation.
pub async fn rebuild(settings: GraphSettings, progress: &(dyn Fn(i64, i64) + Send + Sync)) -> anyhow::Result<String> {
    let projector = Projector::connect(&settings).await?;
    anyhow::ensure!(
        retry(|| projector.store.serving()).await?.is_some(),
        "no graph is served yet: the graph projector builds the first one by itself"
    );
    let mut never = std::pin::pin!(std::future::pending::<()>());
    match projector.pass(&mut never, Mode::Shadow(progress)).await? {
        Stop::Swapped(generation) => Ok(generation),
        Stop::Replaced(reason) => anyhow::bail!("the rebuild was overtaken: {reason}"),
        Stop::Shutdown => unreachable!("a rebuild is not shut down"),
        Stop::Retry => unreachable!("a rebuild does not answer retries"),
    }
}

struct Projector {
    settings: LogSettings,
    store: GraphStore,
    topic: String,
    codec: EventCodec,
    dead_letters: DeadLetters,
}

impl Projector {
    async fn connect(settings: &GraphSettings) -> anyhow::Result<Self> {
        let log = &settings.log;
        let topics = EventTopics::new(log.topic_prefix.clone(), log.partitions);
        topics.ensure_created(&log.brokers).await.context("creating topics")?;
        let graph = store::connect(&settings.bolt).context("graph server settings")?;
        let store = GraphStore::new(graph, vtag_service::read_models::graph_model(&log.topic_prefix));
        retry(|| store.ensure_schema()).await?;
        let topic = topics.resource_events();
        Ok(Self {
            settings: log.clone(),
            codec: EventCodec::new(&log.registry_url, topic.clone()).context("schema registry settings")?,
            dead_letters: DeadLetters::new(&log.brokers, topics.dead_letters(), topic.clone(), PROJECTOR)?,
            store,
            topic,
        })
    }

    async fn pass(&self, shutdown: &mut (impl Future<Output = ()> + Unpin), mode: Mode<'_>) -> anyhow::Result<Stop> {
        let serving = retry(|| self.store.serving()).await?;
        let (generation, mut building) = match (&mode, serving) {
            (Mode::Serve, Some(g)) => {
                // Generations older than the served one are garbage (a rebuild swapped while no
                // projector served, or a crash came before the drop).
                for old in retry(|| self.store.generations()).await?.into_iter().filter(|old| *old < g) {
                    retry(|| self.store.drop_generation(&old)).await?;
                }
                (g, None)
            }
            (mode, _) => {
                // A first build cut short goes on from its checkpoint; a rebuild starts its own.
                let unfinished = match mode {
                    Mode::Serve => retry(|| self.store.generations()).await?.pop(),
                    Mode::Shadow(_) => None,
                };
                let g = match unfinished {
                    Some(g) => g,
                    None => retry(|| self.store.create_generation()).await?,
                };
                tracing::info!(generation = %g, "building the graph from the log");
                (g, Some(self.end().await?))
            }
        };
        let checkpoints = retry(|| self.store.checkpoints(&generation, &self.topic)).await?;
        // A generation folded from offset 0 in this pass holds exactly the resources this pass
        // wrote: the others need not be looked up (half of a build's round trips otherwise).
        let mut written = checkpoints.is_empty().then(HashSet::new);
        // A rebuild's generation holds what the served one holds; only the served one answers retries
        // (with the schemas registered since the last pass).
        self.codec.forget_failed_lookups();
        let mut holds = Holds::load(&self.settings.brokers, self.dead_letters.clone(), matches!(mode, Mode::Serve)).await?;
        let mut checkpoints = holds.start(&checkpoints).await?;
        let partitions = vtag_eventlog::partition_count(&self.settings.brokers, &self.topic)?;
        let source = BatchSource::assign(&self.settings.brokers, "vtag-projector-graph", &self.topic, partitions, &checkpoints)?;
        let (tx, mut rx) = mpsc::channel(2);
        let _reader = Readers(vec![source.spawn(self.settings.batch_size, self.settings.batch_linger, tx, |records| records)]);
        tracing::info!(%generation, serving = building.is_none(), "graph projector started");
        let mut watch = tokio::time::interval(WATCH);
        loop {
            let batch = tokio::select! {
                _ = &mut *shutdown => return Ok(Stop::Shutdown),
                _ = watch.tick() => None,
                batch = rx.recv() => Some(batch.context("the topic reader stopped")??),
            };
            let tick = batch.is_none();
            if let Some(records) = batch {
                self.fold(&generation, &records, &mut checkpoints, written.as_mut(), &mut holds).await?;
                holds.settle(&checkpoints).await?;
            }
            if holds.retry_requested().await? {
                return Ok(Stop::Retry);
            }
            if let Some(target) = &building {
                if let Mode::Shadow(report) = &mode {
                    report(checkpoints.values().sum(), target.values().sum());
                }
                if !reached(&checkpoints, Some(target)) {
                    continue;
                }
                if let Mode::Shadow(_) = mode {
                    // The log moved on while this was built: chase its end until within a batch, so
                    // the swap does not take queries back in time.
                    let now = self.end().await?;
                    if behind(&checkpoints, Some(&now)) as usize > self.settings.batch_size {
                        building = Some(now);
                        continue;
                    }
                }
                let previous = retry(|| self.store.serving()).await?;
                retry(|| self.store.swap_to(&generation)).await?;
                tracing::info!(%generation, ?previous, "graph built; now serving");
                // What an interrupted build left behind goes; the generation served until now is
                // the serving projector's to drop when it follows (two droppers would collide).
                for old in retry(|| self.store.generations()).await?.into_iter().filter(|g| *g < generation && Some(g) != previous.as_ref()) {
                    retry(|| self.store.drop_generation(&old)).await?;
                }
                if let Mode::Shadow(_) = mode {
                    return Ok(Stop::Swapped(generation));
                }
                building = None;
                // Serving batches are small: looking their resources up costs less than
                // remembering every resource of the graph.
                written = None;
            } else if tick {
                match retry(|| self.store.serving()).await? {
                    Some(served) if served == generation => {}
                    other => {
                        // A rebuild replaced this generation (or the model was reset): it goes.
                        tokio::time::sleep(GRACE).await;
                        retry(|| self.store.drop_generation(&generation)).await?;
                        return Ok(Stop::Replaced(format!("{generation} was replaced by {other:?}")));
                    }
                }
            }
        }
    }

    async fn end(&self) -> anyhow::Result<HashMap<i32, i64>> {
        let ends = vtag_eventlog::ends_of(&self.settings.brokers, std::slice::from_ref(&self.topic)).await?;
        Ok(ends.get(&self.topic).cloned().unwrap_or_default())
    }

    /// Folds a batch into the states of the resources it is about (read first) and writes the
    /// changed ones with the checkpoint in one transaction. `written`: when known, every resource
    /// the generation holds (only those are read).
    async fn fold(
        &self,
        generation: &str,
        records: &[LogRecord],
        checkpoints: &mut HashMap<i32, i64>,
        written: Option<&mut HashSet<String>>,
        holds: &mut Holds,
    ) -> anyhow::Result<()> {
        let (decoded, next) = holds.decode_or_park(records, checkpoints, |p| self.codec.decode(p)).await?;
        if next.is_empty() {
            return Ok(());
        }
        let events: Vec<_> = decoded
            .into_iter()
            .filter_map(|(_, d)| match d {
                Decoded::Resource(recorded) => Some(recorded),
                Decoded::Progress(_) => None,
            })
            .collect();
        let mut keys: Vec<(String, String)> =
            events.iter().map(|e| (e.envelope.tenant.as_str().to_owned(), e.envelope.aggregate_id.to_string())).collect();
        keys.sort();
        keys.dedup();
        if let Some(written) = written.as_deref() {
            keys.retain(|(_, id)| written.contains(id));
        }
        let mut docs = retry(|| self.store.fetch(generation, &keys)).await?;
        let existing: HashSet<String> = docs.keys().cloned().collect();
        let mut touched = Vec::new();
        for e in &events {
            let id = e.envelope.aggregate_id.to_string();
            let doc = docs.entry(id.clone()).or_insert_with(|| ResourceDoc::new(e.envelope.tenant.as_str(), id.clone()));
            if doc.apply(e) {
                touched.push(id);
            }
        }
        touched.sort();
        touched.dedup();
        let changed: Vec<&ResourceDoc> = touched.iter().filter_map(|id| docs.get(id)).collect();
        let mut moved = checkpoints.clone();
        moved.extend(next);
        retry(|| self.store.write(generation, &changed, &existing, &self.topic, &moved)).await?;
        *checkpoints = moved;
        if let Some(written) = written {
            written.extend(touched);
        }
        Ok(())
    }
}

/// Retries while the server is unavailable; a refusal is an error.
async fn retry<T, Fut>(mut call: impl FnMut() -> Fut) -> anyhow::Result<T>
where
    Fut: Future<Output = Result<T, GraphError>>,
{
    let mut delay = Duration::from_millis(100);
    loop {
        match call().await {
            Ok(v) => return Ok(v),
            Err(GraphError::Refused(reason)) => anyhow::bail!("graph server refused: {reason}"),
            Err(GraphError::Unavailable(reason)) => {
                tracing::warn!(%reason, "graph server unavailable or busy; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}
