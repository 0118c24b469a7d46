//! Cost ledger imports: the single writer of the cost topic.
//!
//! The writer is whoever holds resource partition 0's lease (as for tagging configuration): the
//! lease already guarantees one holder at a time. Before deciding, it reads whatever the topic
//! gained since it last looked (another holder's imports), so a ledger's head — its version and
//! the fingerprint of its content — is always the log's. Each changed ledger's events are sent
//! together and the answer waits for every acknowledgement.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::Mutex;
use uuid::Uuid;
use vtag_billing::{decide_import, ledger_id, BillingFile, CostRecord, CostSplitsChanged, LedgerHead, SplitError, SplitsDoc};
use vtag_domain::{CommandContext, TenantId};
use vtag_eventlog::kafka::assigned_consumer_config;
use vtag_eventlog::EventCodec;

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
        let mut outcomes = Vec::with_capacity(file.ledgers.len());
        let mut pending = Vec::new();
        let mut encoding = std::time::Duration::ZERO;
        let mut deciding = std::time::Duration::ZERO;
        let started = std::time::Instant::now();
        for ledger in &file.ledgers {
            let id = ledger_id(&ctx.tenant, ledger);
            let head = book.heads.get(&id).cloned().unwrap_or_default();
            let t = std::time::Instant::now();
            let events = decide_import(&head, &ctx.tenant, ledger, source, ctx);
            deciding += t.elapsed();
            if events.is_empty() {
                outcomes.push(LedgerOutcome {
                    ledger_id: id,
                    import_id: head.import_id,
                    version: head.version,
                    changed: false,
                    replaced: None,
                    offset: None,
                });
                continue;
            }
            let mut deliveries = Vec::with_capacity(events.len());
            for event in &events {
                let t = std::time::Instant::now();
                let payload = self.codec.encode_cost(event).await.map_err(|e| CostError::Unavailable(e.to_string()))?;
                encoding += t.elapsed();
                let key = id.to_string();
                let record = FutureRecord::to(self.codec.topic()).partition(0).key(&key).payload(&payload);
                deliveries.push(self.producer.send_result(record).map_err(|(e, _)| CostError::Unavailable(e.to_string()))?);
            }
            let last = events.last().expect("an import has a commit").envelope();
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
        let sent = started.elapsed();
        for (i, deliveries, events) in pending {
            for d in deliveries {
                let delivered = d
                    .await
                    .map_err(|_| CostError::Unavailable("delivery cancelled".into()))?
                    .map_err(|(e, _)| CostError::Unavailable(e.to_string()))?;
                outcomes[i].offset = Some(delivered.offset);
            }
            // Applied only once the whole import is acknowledged; otherwise the next import reads
            // the log again to learn what landed.
            let head = book.heads.entry(outcomes[i].ledger_id).or_default();
            for e in &events {
                head.evolve(e);
            }
        }
        tracing::debug!(
            deciding_s = deciding.as_secs_f64(),
            encoding_s = encoding.as_secs_f64(),
            sent_s = sent.as_secs_f64(),
            acknowledged_s = started.elapsed().as_secs_f64(),
            "cost ledgers appended"
        );
        // Our own records, contiguous after what catch-up read (the lease keeps other writers
        // out): no need to read them back.
        if let Some(end) = outcomes.iter().filter_map(|o| o.offset).max() {
            book.next_offset = book.next_offset.max(end + 1);
        }
        Ok(outcomes)
    }

    /// Replaces a tenant's split rules (checked whole first). The caller holds partition 0's lease.
    pub async fn set_splits(&self, doc: SplitsDoc, ctx: &CommandContext, expected: Option<u64>) -> Result<SplitsOutcome, CostError> {
        let errors = doc.check();
        if !errors.is_empty() {
            return Err(CostError::Invalid(errors));
        }
        let mut book = self.book.lock().await;
        self.catch_up(&mut book).await.map_err(|e| CostError::Unavailable(format!("reading the cost topic: {e}")))?;
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
        book.next_offset = book.next_offset.max(delivered.offset + 1);
        Ok(SplitsOutcome { version: record.version, changed: true, offset: Some(delivered.offset) })
    }

    /// Reads `[next_offset, high watermark)` of the cost topic into the ledger heads.
    async fn catch_up(&self, book: &mut Book) -> anyhow::Result<()> {
        let topic = self.codec.topic();
        let consumer: StreamConsumer = assigned_consumer_config(&self.brokers, "vtag-command-costs").create()?;
        let (_, high) = consumer.fetch_watermarks(topic, 0, Duration::from_secs(10))?;
        if high <= book.next_offset {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, 0, Offset::Offset(book.next_offset))?;
        consumer.assign(&tpl)?;
        while book.next_offset < high {
            let msg = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
                .await
                .map_err(|_| anyhow::anyhow!("timed out reading the cost topic at offset {}", book.next_offset))??;
            match self.codec.decode_cost(msg.payload().unwrap_or_default()).await {
                Ok(CostRecord::Ledger(event)) => {
                    book.heads.entry(event.envelope().ledger_id).or_default().evolve(&event);
                }
                Ok(CostRecord::Splits(s)) => match serde_json::from_str::<SplitsDoc>(&s.document) {
                    Ok(doc) => {
                        book.splits.insert(s.tenant.clone(), (s.version, doc));
                    }
                    Err(e) => tracing::error!(offset = msg.offset(), error = %e, "skipping an unreadable split-rules document"),
                },
                Err(e) => tracing::error!(offset = msg.offset(), error = %e, "skipping an undecodable cost record"),
            }
            book.next_offset = msg.offset() + 1;
        }
        tracing::debug!(ledgers = book.heads.len(), next = book.next_offset, "cost ledgers caught up");
        Ok(())
    }
}
