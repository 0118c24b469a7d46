//! Cost ledger imports: the single writer of the cost topic.
//!
//! The writer is whoever holds resource partition 0's lease (as for tagging configuration): the
//! lease already guarantees one holder at a time. Before deciding, it reads whatever the topic
//! gained since it last looked (another holder's imports), so a ledger's head — its version and
//! the fingerprint of its content — is always the log's. Each changed ledger's events are sent
//! together and the answer waits for every acknowledgement.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::Mutex;
use uuid::Uuid;
use vtag_billing::{decide_import, ledger_id, BillingFile, CostRecord, CostSplitsChanged, LedgerHead, SplitError, SplitsDoc};
use vtag_domain::{CommandContext, TenantId};
use vtag_eventlog::EventCodec;

use crate::backlog::Backlog;

/// What one ledger of an import came to.
#[derive(Debug, Clone)]
pub struct LedgerOutcome {
    pub ledger_id: Uuid,
    /// The import now in force for the ledger (this one, or the identical earlier one).
    pub import_id: Option<Uuid>,
    pub version: u64,
    pub changed: bool,
    pub replaced: Option<Uuid>,
    /// Offset of the commit record on the cost topic (when something was written).
    pub offset: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum CostError {
    #[error("cost imports and split rules are written by the instance owning partition 0")]
    NotOwner,
    #[error("the split rules are invalid")]
    Invalid(Vec<SplitError>),
    #[error("expected split rules version {expected} but they are at version {actual}")]
    VersionConflict { expected: u64, actual: u64 },
    #[error("the event log is unavailable: {0}")]
    Unavailable(String),
}

/// The heads of every ledger in the cost topic, and every tenant's split rules, as far as this
/// instance has read it.
#[derive(Default)]
struct Book {
    next_offset: i64,
    heads: HashMap<Uuid, LedgerHead>,
    splits: HashMap<TenantId, (u64, SplitsDoc)>,
    last_recorded_at: chrono::DateTime<chrono::Utc>,
}

impl Book {
    /// The command's context stamped with the time of this write — not of the request, which may
    /// have started minutes earlier with the upload — never before the previous write's: `as_of`
    /// reads order imports by this time.
    fn stamp(&mut self, ctx: &CommandContext) -> CommandContext {
        let at = chrono::Utc::now().max(self.last_recorded_at);
        self.last_recorded_at = at;
        CommandContext { recorded_at: at, ..ctx.clone() }
    }

    /// After our own appends: when they directly follow what was read (the lease keeps other
    /// writers out), there is nothing to read back; otherwise (a failure, or records that landed
    /// in between) the next catch-up reads from where it was.
    fn skip_own(&mut self, offsets: &[i64], all_acknowledged: bool) {
        let (Some(first), Some(last)) = (offsets.iter().min(), offsets.iter().max()) else { return };
        if all_acknowledged && *first == self.next_offset && last - first + 1 == offsets.len() as i64 {
            self.next_offset = last + 1;
        }
    }
}

/// What a split-rules change came to.
#[derive(Debug, Clone)]
pub struct SplitsOutcome {
    pub version: u64,
    pub changed: bool,
    pub offset: Option<i64>,
}

pub struct CostWriter {
    brokers: String,
    codec: EventCodec,
    producer: FutureProducer,
    book: Mutex<Book>,
}

impl CostWriter {
    pub fn new(brokers: &str, codec: EventCodec, producer: FutureProducer) -> Self {
        Self { brokers: brokers.to_owned(), codec, producer, book: Mutex::default() }
    }

    /// Decides and appends every ledger of `file`. The caller holds partition 0's lease.
    pub async fn import(&self, file: &BillingFile, source: &str, ctx: &CommandContext) -> Result<Vec<LedgerOutcome>, CostError> {
        let mut book = self.book.lock().await;
        self.catch_up(&mut book).await.map_err(|e| CostError::Unavailable(format!("reading the cost topic: {e}")))?;
        let ctx = book.stamp(ctx);
        let mut outcomes = Vec::with_capacity(file.ledgers.len());
        let mut pending = Vec::new();
        let mut failure = None;
        let started = std::time::Instant::now();
        'ledgers: for ledger in &file.ledgers {
            let id = ledger_id(&ctx.tenant, ledger);
            let head = book.heads.get(&id).cloned().unwrap_or_default();
            let events = decide_import(&head, &ctx.tenant, ledger, source, &ctx);
            let Some(last) = events.last().map(|e| e.envelope().clone()) else {
                outcomes.push(LedgerOutcome {
                    ledger_id: id,
                    import_id: head.import_id,
                    version: head.version,
                    changed: false,
                    replaced: None,
                    offset: None,
                });
                continue;
            };
            let mut deliveries = Vec::with_capacity(events.len());
            for event in &events {
                let sent = match self.codec.encode_cost(event).await {
                    Ok(payload) => {
                        let key = id.to_string();
                        let record = FutureRecord::to(self.codec.topic()).partition(0).key(&key).payload(&payload);
                        self.producer.send_result(record).map_err(|(e, _)| e.to_string())
                    }
                    Err(e) => Err(e.to_string()),
                };
                match sent {
                    Ok(d) => deliveries.push(d),
                    Err(e) => {
                        failure = Some(e);
                        pending.push((outcomes.len(), deliveries, Vec::new()));
                        break 'ledgers;
                    }
                }
            }
            outcomes.push(LedgerOutcome {
                ledger_id: id,
                import_id: Some(last.import_id),
                version: last.version,
                changed: true,
                replaced: head.import_id,
                offset: None,
            });
            pending.push((outcomes.len() - 1, deliveries, events));
        }
        // Every delivery is awaited, even after a failure: nothing of this import may still be in
        // flight once the lease's lock is released.
        let mut offsets = Vec::new();
        for (i, deliveries, events) in pending {
            let mut complete = !events.is_empty();
            for d in deliveries {
                match d.await {
                    Ok(Ok(delivered)) => {
                        offsets.push(delivered.offset);
                        if let Some(o) = outcomes.get_mut(i) {
                            o.offset = Some(delivered.offset);
                        }
                    }
                    Ok(Err((e, _))) => {
                        complete = false;
                        failure.get_or_insert(e.to_string());
                    }
                    Err(_) => {
                        complete = false;
                        failure.get_or_insert("delivery cancelled".to_owned());
                    }
                }
            }
            // A head moves only with a whole acknowledged import; otherwise the next import reads
            // the log again to learn what landed.
            if complete {
                let head = book.heads.entry(outcomes[i].ledger_id).or_default();
                for e in &events {
                    head.evolve(e);
                }
            }
        }
        tracing::debug!(seconds = started.elapsed().as_secs_f64(), records = offsets.len(), "cost ledgers appended");
        book.skip_own(&offsets, failure.is_none());
        match failure {
            Some(reason) => Err(CostError::Unavailable(reason)),
            None => Ok(outcomes),
        }
    }

    /// Replaces a tenant's split rules (checked whole first). The caller holds partition 0's lease.
    pub async fn set_splits(&self, doc: SplitsDoc, ctx: &CommandContext, expected: Option<u64>) -> Result<SplitsOutcome, CostError> {
        let errors = doc.check();
        if !errors.is_empty() {
            return Err(CostError::Invalid(errors));
        }
        let mut book = self.book.lock().await;
        self.catch_up(&mut book).await.map_err(|e| CostError::Unavailable(format!("reading the cost topic: {e}")))?;
        let ctx = &book.stamp(ctx);
        let (version, current) = book.splits.get(&ctx.tenant).cloned().unwrap_or_default();
        if let Some(expected) = expected.filter(|e| *e != version) {
            return Err(CostError::VersionConflict { expected, actual: version });
        }
        if current == doc {
            return Ok(SplitsOutcome { version, changed: false, offset: None });
        }
        let record = CostSplitsChanged {
            event_id: ctx.event_id(0),
            tenant: ctx.tenant.clone(),
            version: version + 1,
            actor: ctx.actor.clone(),
            causation_id: ctx.command_id,
            correlation_id: ctx.correlation_id,
            recorded_at: ctx.recorded_at,
            document: serde_json::to_string(&doc).expect("a splits document serializes"),
        };
        let payload = self.codec.encode_splits(&record).await.map_err(|e| CostError::Unavailable(e.to_string()))?;
        let key = ctx.tenant.as_str().to_owned();
        let delivered = self
            .producer
            .send(FutureRecord::to(self.codec.topic()).partition(0).key(&key).payload(&payload), Duration::from_secs(10))
            .await
            .map_err(|(e, _)| CostError::Unavailable(e.to_string()))?;
        book.splits.insert(ctx.tenant.clone(), (record.version, doc));
        book.skip_own(&[delivered.offset], true);
        Ok(SplitsOutcome { version: record.version, changed: true, offset: Some(delivered.offset) })
    }

    /// Reads `[next_offset, high watermark)` of the cost topic into the ledger heads.
    async fn catch_up(&self, book: &mut Book) -> anyhow::Result<()> {
        let Some(mut backlog) = Backlog::open(&self.brokers, "vtag-command-costs", self.codec.topic(), book.next_offset).await? else {
            return Ok(());
        };
        while let Some((offset, payload)) = backlog.next().await? {
            match self.codec.decode_cost(&payload).await {
                Ok(CostRecord::Ledger(event)) => {
                    book.heads.entry(event.envelope().ledger_id).or_default().evolve(&event);
                }
                Ok(CostRecord::Splits(s)) => match serde_json::from_str::<SplitsDoc>(&s.document) {
                    Ok(doc) => {
                        book.splits.insert(s.tenant.clone(), (s.version, doc));
                    }
                    Err(e) => tracing::error!(offset, error = %e, "skipping an unreadable split-rules document"),
                },
                Err(e) => tracing::error!(offset, error = %e, "skipping an undecodable cost record"),
            }
            book.next_offset = offset + 1;
        }
        tracing::debug!(ledgers = book.heads.len(), next = book.next_offset, "cost ledgers caught up");
        Ok(())
    }
}
