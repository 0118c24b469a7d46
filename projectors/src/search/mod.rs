//! The search projector: folds the resource topic and the compliance-events topic into one
//! OpenSearch document per resource (`doc`), written with `_bulk` under external versioning
//! (`index`). One writer per index, like every projector.
//!
//! Checkpoints. OpenSearch has no transactions, so a batch's documents are written first and its
//! checkpoints after: a crash in between replays the batch, and the documents' versions (the
//! resource's aggregate version, the compliance stream's version, both in the document) make the
//! replay change nothing. At least once into the index, exactly once in effect.
//!
//! Generations. A generation that is not yet behind the alias is being built: it is folded from
//! offset 0 up to the high watermarks seen when it started, then the alias moves to it in one
//! call. A rebuild (`rebuild`, `vtag-projector-search --rebuild`) builds one beside the served one
//! and moves the alias from the old to the new; the serving projector notices, drops the old and
//! follows. A search server that lost its data (an in-memory server restarted) has no alias: the
//! projector notices within a second and builds a new generation by itself, and searches answer
//! "rebuilding" (503) meanwhile instead of showing half an index.

pub mod doc;
pub mod index;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::mpsc;
use vtag_domain::compliance::Change;
use vtag_domain::{EventEnvelope, Recorded, ResourceEvent};
use vtag_eventlog::compliance::{ComplianceLog, ComplianceRecord};
use vtag_eventlog::{EventCodec, EventTopics, LogRecord as Decoded};

use crate::dead_letter::DeadLetters;
use crate::holds::Holds;
use crate::generations::{behind, reached, Mode, Readers};
use crate::settings::LogSettings;
use crate::source::{BatchSource, LogRecord};
use doc::ResourceDoc;
use index::{IndexError, SearchIndex};

pub const PROJECTOR: &str = "opensearch";

/// How often the projector checks that its index is still there.
const WATCH: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct SearchSettings {
    pub opensearch_url: String,
    pub log: LogSettings,
}

impl SearchSettings {
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            opensearch_url: std::env::var("VTAG_OPENSEARCH_URL").unwrap_or_else(|_| "http://127.0.0.1:19200".to_owned()),
            log: LogSettings::from_env()?,
        })
    }
}

/// Why a pass over one generation ended.
enum Stop {
    Shutdown,
    /// The index went away (or a rebuild replaced it): start over on what the alias says.
    Lost(String),
    /// A shadow generation was built and now serves.
    Swapped(String),
    /// An operator asked to retry the held events: the next pass starts from the first of them.
    Retry,
}

/// Runs the projector until `shutdown` resolves.
pub async fn run(settings: SearchSettings, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let projector = Projector::connect(&settings).await?;
    tokio::pin!(shutdown);
    loop {
        match projector.pass(&mut shutdown, Mode::Serve).await? {
            Stop::Shutdown => break,
            Stop::Lost(reason) => tracing::warn!(%reason, "search index gone; following the alias, or building it again from the log"),
            Stop::Swapped(_) => unreachable!("only a rebuild swaps"),
            Stop::Retry => tracing::info!("retrying the held events, from the first one"),
        }
    }
    tracing::info!("search projector stopped");
    Ok(())
}

/// Rebuilds the search read model beside the one that serves: a new generation folded from offset
/// 0 until it is within a batch of the log's end, then the alias moved to it in one call. Searches use the
/// old generation until that instant. The serving projector (if one runs) follows the alias within
/// a second. `progress(done, due)` hears about records folded. Returns the new generation.
pub async fn rebuild(settings: SearchSettings, progress: &(dyn Fn(i64, i64) + Send + Sync)) -> anyhow::Result<String> {
    let projector = Projector::connect(&settings).await?;
    anyhow::ensure!(
        retry(|| projector.index.serving()).await?.is_some(),
        "no search index is served yet: the search projector builds the first one by itself"
    );
    let mut never = std::pin::pin!(std::future::pending::<()>());
    loop {
        match projector.pass(&mut never, Mode::Shadow(progress)).await? {
            Stop::Swapped(generation) => return Ok(generation),
            Stop::Lost(reason) => tracing::warn!(%reason, "the generation being built went away; starting again"),
            Stop::Shutdown => unreachable!("a rebuild is not shut down"),
            Stop::Retry => unreachable!("a rebuild does not answer retries"),
        }
    }
}

struct Projector {
    settings: LogSettings,
    index: SearchIndex,
    resource_topic: String,
    compliance_topic: String,
    resource_codec: EventCodec,
    compliance_codec: EventCodec,
    resource_dead_letters: DeadLetters,
    compliance_dead_letters: DeadLetters,
}

/// A batch from one of the two topics.
enum Batch {
    Resources(Vec<LogRecord>),
    Compliance(Vec<LogRecord>),
}

impl Projector {
    /// The topics (created if missing), the index's client, the codecs and the dead-letter producers.
    async fn connect(settings: &SearchSettings) -> anyhow::Result<Self> {
        let log = &settings.log;
        let topics = EventTopics::new(log.topic_prefix.clone(), log.partitions);
        topics.ensure_created(&log.brokers).await.context("creating topics")?;
        let index = SearchIndex::connect(&settings.opensearch_url, &vtag_service::read_models::search_alias(&log.topic_prefix))?;
        let (resource_topic, compliance_topic) = (topics.resource_events(), topics.compliance_events());
        Ok(Self {
            settings: log.clone(),
            resource_codec: EventCodec::new(&log.registry_url, resource_topic.clone()).context("schema registry settings")?,
            compliance_codec: EventCodec::for_compliance(&log.registry_url, compliance_topic.clone()).context("schema registry settings")?,
            resource_dead_letters: DeadLetters::new(&log.brokers, topics.dead_letters(), resource_topic.clone(), PROJECTOR)?,
            compliance_dead_letters: DeadLetters::new(&log.brokers, topics.dead_letters(), compliance_topic.clone(), PROJECTOR)?,
            index,
            resource_topic,
            compliance_topic,
        })
    }

    /// Folds into the served generation (or builds one when none is served) until shutdown or
    /// until the index is lost.
    async fn pass(&self, shutdown: &mut (impl Future<Output = ()> + Unpin), mode: Mode<'_>) -> anyhow::Result<Stop> {
        let serving = retry(|| self.index.serving()).await?;
        let (generation, mut building) = match (&mode, serving.clone()) {
            (Mode::Serve, Some(g)) => (g, None),
            (mode, _) => {
                // A build cut short (a crash, a restart) goes on from its checkpoints; a rebuild
                // always starts its own.
                let unfinished = match mode {
                    Mode::Serve => retry(|| self.index.generations()).await?.pop(),
                    Mode::Shadow(_) => None,
                };
                let g = match unfinished {
                    Some(g) => g,
                    None => retry(|| self.index.create_generation()).await?,
                };
                let targets = self.watermarks().await?;
                tracing::info!(generation = %g, ?targets, "building a search index from the log");
                (g, Some(targets))
            }
        };
        let resource_checkpoints = match retry(|| self.index.checkpoints(&generation, &self.resource_topic)).await {
            Err(Lost(reason)) => return Ok(Stop::Lost(reason)),
            other => other?,
        };
        // A rebuild's generation holds what the served one holds; only the served one answers retries
        // (with the schemas registered since the last pass).
        self.resource_codec.forget_failed_lookups();
        let mut holds = Holds::load(&self.settings.brokers, self.resource_dead_letters.clone(), matches!(mode, Mode::Serve)).await?;
        let fresh = resource_checkpoints.is_empty();
        let mut resource_checkpoints = holds.start(&resource_checkpoints).await?;
        let mut compliance_checkpoints = match retry(|| self.index.checkpoints(&generation, &self.compliance_topic)).await {
            Err(Lost(reason)) => return Ok(Stop::Lost(reason)),
            other => other?,
        };
        // A generation folded from offset 0 in this pass holds exactly the documents this pass wrote:
        // the others need not be looked up.
        let mut written = (fresh && compliance_checkpoints.is_empty()).then(HashSet::new);
        let (tx, mut rx) = mpsc::channel::<anyhow::Result<Batch>>(2);
        // Each topic read on its own task: a batch half-taken when the other topic's arrives
        // would otherwise be lost with the cancelled future.
        // A build folds the backlog in bigger batches: fewer, larger `_bulk` requests.
        let batch_size = if building.is_some() { self.settings.batch_size.max(20_000) } else { self.settings.batch_size };
        let readers = Readers(vec![
            self.reader(&self.resource_topic, &resource_checkpoints, tx.clone(), Batch::Resources, batch_size)?,
            self.reader(&self.compliance_topic, &compliance_checkpoints, tx, Batch::Compliance, batch_size)?,
        ]);
        tracing::info!(%generation, serving = building.is_none(), "search projector started");
        let mut watch = tokio::time::interval(WATCH);
        loop {
            let batch = tokio::select! {
                _ = &mut *shutdown => return Ok(Stop::Shutdown),
                _ = watch.tick() => None,
                batch = rx.recv() => Some(batch.context("a topic reader stopped")??),
            };
            let tick = batch.is_none();
            anyhow::ensure!(!tick || !readers.any_stopped(), "a topic reader stopped");
            let result = match batch {
                Some(Batch::Resources(records)) => {
                    self.fold_resources(&generation, records, &mut resource_checkpoints, &mut holds, written.as_mut()).await
                }
                Some(Batch::Compliance(records)) => self.fold_compliance(&generation, records, &mut compliance_checkpoints, written.as_mut()).await,
                None => Ok(()),
            };
            match result {
                Err(Lost(reason)) => return Ok(Stop::Lost(reason)),
                other => other?,
            }
            holds.settle(&resource_checkpoints).await?;
            if holds.retry_requested().await? {
                return Ok(Stop::Retry);
            }
            if let Some(targets) = &building {
                let done = |c: &HashMap<i32, i64>| c.values().sum::<i64>();
                let goal = |t: Option<&HashMap<i32, i64>>| t.map_or(0, |t| t.values().sum::<i64>());
                if let Mode::Shadow(report) = &mode {
                    report(done(&resource_checkpoints) + done(&compliance_checkpoints), goal(targets.get(&self.resource_topic)) + goal(targets.get(&self.compliance_topic)));
                }
                if reached(&resource_checkpoints, targets.get(&self.resource_topic))
                    && reached(&compliance_checkpoints, targets.get(&self.compliance_topic))
                {
                    // Beside a served generation, the log moved on while this one was built: chase
                    // its end again until it is within a batch, so the swap does not take searches
                    // back in time (by more than the last batch, which the serving projector then
                    // folds within a second).
                    if let Mode::Shadow(_) = mode {
                        let now = self.watermarks().await?;
                        let left = behind(&resource_checkpoints, now.get(&self.resource_topic))
                            + behind(&compliance_checkpoints, now.get(&self.compliance_topic));
                        if left as usize > self.settings.batch_size {
                            building = Some(now);
                            continue;
                        }
                    }
                    // The one step searches see: from the old generation (if any) to this one.
                    let previous = retry(|| self.index.serving()).await?;
                    retry(|| self.index.swap_to(&generation)).await?;
                    tracing::info!(%generation, ?previous, "search index built; now serving");
                    // Older generations are done with: the one served before (the serving
                    // projector notices within a second, follows the alias and drops it too) and
                    // any an interrupted build left behind.
                    for old in retry(|| self.index.generations()).await?.into_iter().filter(|g| *g < generation) {
                        retry(|| self.index.drop_generation(&old)).await?;
                    }
                    if let Mode::Shadow(_) = mode {
                        return Ok(Stop::Swapped(generation));
                    }
                    building = None;
                    // Serving batches are small: looking their documents up costs less than
                    // remembering every document of the index.
                    written = None;
                }
            }
            if tick {
                // A write to a deleted index would quietly create a new one with a guessed mapping:
                // the index is checked on the clock instead.
                if building.is_none() {
                    match retry(|| self.index.serving()).await? {
                        Some(served) if served == generation => {}
                        Some(newer) => {
                            // A rebuild replaced this generation: it goes, and the next pass follows the alias.
                            retry(|| self.index.drop_generation(&generation)).await?;
                            return Ok(Stop::Lost(format!("{generation} was replaced by {newer}")));
                        }
                        None => return Ok(Stop::Lost(format!("{generation} is no longer served"))),
                    }
                } else if !retry(|| self.index.exists(&generation)).await? {
                    return Ok(Stop::Lost(format!("{generation} is no longer there")));
                }
            }
        }
    }

    fn reader(
        &self,
        topic: &str,
        checkpoints: &HashMap<i32, i64>,
        tx: mpsc::Sender<anyhow::Result<Batch>>,
        wrap: fn(Vec<LogRecord>) -> Batch,
        batch_size: usize,
    ) -> anyhow::Result<tokio::task::JoinHandle<()>> {
        let partitions = vtag_eventlog::partition_count(&self.settings.brokers, topic)?;
        let source = BatchSource::assign(&self.settings.brokers, &format!("vtag-projector-search-{topic}"), topic, partitions, checkpoints)?;
        Ok(source.spawn(batch_size, self.settings.batch_linger, tx, wrap))
    }

    async fn watermarks(&self) -> anyhow::Result<HashMap<String, HashMap<i32, i64>>> {
        Ok(vtag_eventlog::ends_of(&self.settings.brokers, &[self.resource_topic.clone(), self.compliance_topic.clone()]).await?)
    }

    async fn fold_resources(
        &self,
        generation: &str,
        records: Vec<LogRecord>,
        checkpoints: &mut HashMap<i32, i64>,
        holds: &mut Holds,
        written: Option<&mut HashSet<String>>,
    ) -> Result<(), Failure> {
        let (decoded, next) = holds.decode_or_park(&records, checkpoints, |p| self.resource_codec.decode(p)).await?;
        let events: Vec<_> = decoded
            .into_iter()
            .filter_map(|(_, d)| match d {
                Decoded::Resource(recorded) => Some(recorded),
                // Re-derivation progress markers are for the Postgres read model's job view.
                Decoded::Progress(_) => None,
            })
            .collect();
        let apply = |doc: &mut ResourceDoc, e: &Recorded<ResourceEvent>| doc.apply(e);
        self.fold_into(generation, &self.resource_topic, checkpoints, next, &events, |e| &e.envelope, apply, written).await
    }

    async fn fold_compliance(
        &self,
        generation: &str,
        records: Vec<LogRecord>,
        checkpoints: &mut HashMap<i32, i64>,
        written: Option<&mut HashSet<String>>,
    ) -> Result<(), Failure> {
        let mut parking = Holds::none(self.compliance_dead_letters.clone());
        let (decoded, next) = parking.decode_or_park(&records, checkpoints, |p| self.compliance_codec.decode_compliance_log(p)).await?;
        let decisions: Vec<ComplianceRecord> = decoded
            .into_iter()
            .flat_map(|(_, d)| match d {
                ComplianceLog::Decisions(batch) => batch,
                ComplianceLog::Progress(_) => Vec::new(),
            })
            .collect();
        let apply = |doc: &mut ResourceDoc, d: &ComplianceRecord| {
            let version = d.envelope.aggregate_version;
            match &d.change {
                Change::Judged(judgement) => doc.judge(version, judgement, d.envelope.recorded_at),
                Change::Transition(_) => {
                    doc.pass(version);
                    false
                }
            }
        };
        self.fold_into(generation, &self.compliance_topic, checkpoints, next, &decisions, |d| &d.envelope, apply, written).await
    }

    /// Folds `items` into the documents of the resources they are about (read first), then commits.
    /// `written`: when known, every document the generation holds (only those are read).
    #[allow(clippy::too_many_arguments)]
    async fn fold_into<X>(
        &self,
        generation: &str,
        topic: &str,
        checkpoints: &mut HashMap<i32, i64>,
        next: HashMap<i32, i64>,
        items: &[X],
        envelope: impl Fn(&X) -> &EventEnvelope,
        apply: impl Fn(&mut ResourceDoc, &X) -> bool,
        written: Option<&mut HashSet<String>>,
    ) -> Result<(), Failure> {
        if next.is_empty() {
            return Ok(());
        }
        let mut ids: Vec<String> = items.iter().map(|x| envelope(x).aggregate_id.to_string()).collect::<HashSet<_>>().into_iter().collect();
        if let Some(written) = written.as_deref() {
            ids.retain(|id| written.contains(id));
        }
        let mut docs = if ids.is_empty() { HashMap::new() } else { retry(|| self.index.fetch(generation, &ids)).await? };
        let mut touched = HashSet::new();
        for x in items {
            let env = envelope(x);
            let id = env.aggregate_id.to_string();
            let doc = docs.entry(id.clone()).or_insert_with(|| ResourceDoc::new(env.tenant.as_str(), id.clone()));
            if apply(doc, x) {
                touched.insert(id);
            }
        }
        self.commit(generation, &docs, &touched, topic, checkpoints, next).await?;
        if let Some(written) = written {
            written.extend(touched);
        }
        Ok(())
    }

    /// Documents first, then the checkpoints (see the module's comment).
    async fn commit(
        &self,
        generation: &str,
        docs: &HashMap<String, ResourceDoc>,
        touched: &HashSet<String>,
        topic: &str,
        checkpoints: &mut HashMap<i32, i64>,
        next: HashMap<i32, i64>,
    ) -> Result<(), Failure> {
        let changed: Vec<&ResourceDoc> = touched.iter().filter_map(|id| docs.get(id)).collect();
        retry(|| self.index.write(generation, &changed)).await?;
        let mut moved = checkpoints.clone();
        moved.extend(next);
        retry(|| self.index.save_checkpoints(generation, topic, &moved)).await?;
        *checkpoints = moved;
        Ok(())
    }
}

/// A failure that ends a pass: the index is gone (rebuild), or anything else (stop).
enum Failure {
    Lost(String),
    Other(anyhow::Error),
}
use Failure::Lost;

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Other(e)
    }
}

impl From<Failure> for anyhow::Error {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Lost(reason) => anyhow::anyhow!("search index lost: {reason}"),
            Failure::Other(e) => e,
        }
    }
}

/// Retries while the server is unavailable; a lost index or a refusal ends the retrying.
async fn retry<T, Fut>(mut call: impl FnMut() -> Fut) -> Result<T, Failure>
where
    Fut: Future<Output = Result<T, IndexError>>,
{
    let mut delay = Duration::from_millis(100);
    loop {
        match call().await {
            Ok(v) => return Ok(v),
            Err(IndexError::Lost(reason)) => return Err(Failure::Lost(reason)),
            Err(IndexError::Refused(reason)) => return Err(Failure::Other(anyhow::anyhow!("search server refused: {reason}"))),
            Err(IndexError::Unavailable(reason)) => {
                tracing::warn!(%reason, "search server unavailable; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}
