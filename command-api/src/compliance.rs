//! Compliance policy changes (ADR 0007): decided against the tenant's current policies document,
//! validated by compiling the whole result (nothing is written unless every policy compiles), and
//! appended to the compliance-policies topic by its single writer — the holder of resource
//! partition 0's lease, as for the tagging configuration and costs. Before deciding, the writer
//! reads whatever the topic gained since it last looked, so a version is always the log's.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::Mutex;
use vtag_domain::{CommandContext, TenantId};
use uuid::Uuid;
use vtag_domain::compliance::Selection;
use vtag_eventlog::compliance::{PoliciesLog, RecheckRequest};
use vtag_eventlog::{ConfigRecord, EventCodec};
use vtag_policy_config::{DocError, PoliciesDocument, PolicyDoc};

use crate::backlog::Backlog;

#[derive(Debug, Clone)]
pub enum PolicyChange {
    /// A whole new document (PUT, or a YAML import).
    Replace(Box<PoliciesDocument>),
    /// A new policy; its id must be free.
    Create(Box<PolicyDoc>),
    /// Policy `id` replaced (created when missing).
    Save(Box<PolicyDoc>),
    Remove(String),
    SetEnabled(String, bool),
}

impl PolicyChange {
    fn describe(&self) -> (String, &'static str, Vec<String>) {
        match self {
            Self::Replace(_) => ("policies replaced".into(), "replaced", Vec::new()),
            Self::Create(p) | Self::Save(p) => (format!("policy {} saved", p.policy_id), "policy_saved", vec![p.policy_id.clone()]),
            Self::Remove(id) => (format!("policy {id} removed"), "policy_removed", vec![id.clone()]),
            Self::SetEnabled(id, true) => (format!("policy {id} enabled"), "policy_enabled", vec![id.clone()]),
            Self::SetEnabled(id, false) => (format!("policy {id} disabled"), "policy_disabled", vec![id.clone()]),
        }
    }

    fn apply(&self, doc: &PoliciesDocument) -> Result<PoliciesDocument, PolicyError> {
        let missing = |id: &str| PolicyError::NotFound(id.to_owned());
        match self {
            Self::Replace(new) => Ok((**new).clone()),
            Self::Create(p) if doc.policy(&p.policy_id).is_some() => Err(PolicyError::Exists(p.policy_id.clone())),
            Self::Create(p) | Self::Save(p) => Ok(doc.with_policy((**p).clone())),
            Self::Remove(id) => doc.without_policy(id).ok_or_else(|| missing(id)),
            Self::SetEnabled(id, on) => doc.with_enabled(id, *on).ok_or_else(|| missing(id)),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PolicyOutcome {
    pub version: u64,
    pub changed: bool,
    /// Where the change landed on the policies topic (none when it changed nothing).
    pub offset: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("the policies are invalid")]
    Invalid(Vec<DocError>),
    #[error("no policy {0}")]
    NotFound(String),
    #[error("a policy {0} exists already")]
    Exists(String),
    #[error("expected policies version {expected} but they are at version {actual}")]
    VersionConflict { expected: u64, actual: u64 },
    #[error("compliance policies are written by the instance owning partition 0")]
    NotOwner,
    #[error("the event log is unavailable: {0}")]
    Unavailable(String),
}

/// Every tenant's policies as far as this instance has read the topic.
#[derive(Default)]
struct Book {
    next_offset: i64,
    docs: HashMap<TenantId, (u64, PoliciesDocument)>,
    last_recorded_at: chrono::DateTime<chrono::Utc>,
}

pub struct PolicyWriter {
    brokers: String,
    codec: EventCodec,
    producer: FutureProducer,
    book: Mutex<Book>,
}

impl PolicyWriter {
    pub fn new(brokers: &str, codec: EventCodec, producer: FutureProducer) -> Self {
        Self { brokers: brokers.to_owned(), codec, producer, book: Mutex::default() }
    }

    /// Decides and appends a change. The caller holds partition 0's lease.
    pub async fn change(&self, change: &PolicyChange, ctx: &CommandContext, expected: Option<u64>) -> Result<PolicyOutcome, PolicyError> {
        let mut book = self.book.lock().await;
        self.catch_up(&mut book).await.map_err(|e| PolicyError::Unavailable(format!("reading the policies topic: {e}")))?;
        let (version, current) = book.docs.get(&ctx.tenant).cloned().unwrap_or_default();
        if let Some(expected) = expected.filter(|e| *e != version) {
            return Err(PolicyError::VersionConflict { expected, actual: version });
        }
        let next = change.apply(&current)?;
        next.compile().map_err(PolicyError::Invalid)?;
        if next == current {
            return Ok(PolicyOutcome { version, changed: false, offset: None });
        }
        // Stamped at the write, never before the previous one: as-of reads order versions by it.
        let recorded_at = chrono::Utc::now().max(book.last_recorded_at);
        let (what, kind, ids) = change.describe();
        let record = ConfigRecord {
            event_id: ctx.event_id(0),
            tenant: ctx.tenant.clone(),
            version: version + 1,
            actor: ctx.actor.clone(),
            causation_id: ctx.command_id,
            correlation_id: ctx.correlation_id,
            recorded_at,
            change: what,
            change_kind: kind.to_owned(),
            rule_ids: ids,
            document: String::from_utf8(next.to_json()).expect("JSON is UTF-8"),
        };
        let payload = self.codec.encode_policies(&record).await.map_err(|e| PolicyError::Unavailable(e.to_string()))?;
        let key = ctx.tenant.as_str().to_owned();
        let delivered = self
            .producer
            .send(FutureRecord::to(self.codec.topic()).partition(0).key(&key).payload(&payload), Duration::from_secs(10))
            .await
            .map_err(|(e, _)| PolicyError::Unavailable(e.to_string()))?;
        // Our own record directly follows what was read (the lease keeps other writers out);
        // anything else is read back by the next catch-up.
        if delivered.offset == book.next_offset {
            book.next_offset += 1;
            book.docs.insert(ctx.tenant.clone(), (record.version, next));
            book.last_recorded_at = recorded_at;
        }
        Ok(PolicyOutcome { version: record.version, changed: true, offset: Some(delivered.offset) })
    }

    /// Appends a recheck request; its job id is the command's id (an `Idempotency-Key` retry asks
    /// for the same job). The caller holds partition 0's lease.
    pub async fn request_recheck(&self, selection: Selection, ctx: &CommandContext) -> Result<Uuid, PolicyError> {
        let request = RecheckRequest {
            event_id: ctx.event_id(0),
            tenant: ctx.tenant.clone(),
            job_id: ctx.command_id,
            resource: selection.resource,
            scope: selection.scope,
            actor: ctx.actor.clone(),
            recorded_at: ctx.recorded_at,
        };
        let payload = self.codec.encode_recheck(&request).await.map_err(|e| PolicyError::Unavailable(e.to_string()))?;
        let key = ctx.tenant.as_str().to_owned();
        self.producer
            .send(FutureRecord::to(self.codec.topic()).partition(0).key(&key).payload(&payload), Duration::from_secs(10))
            .await
            .map_err(|(e, _)| PolicyError::Unavailable(e.to_string()))?;
        Ok(request.job_id)
    }

    /// Reads `[next_offset, high watermark)` of the policies topic.
    async fn catch_up(&self, book: &mut Book) -> anyhow::Result<()> {
        let Some(mut backlog) = Backlog::open(&self.brokers, "vtag-command-policies", self.codec.topic(), book.next_offset).await? else {
            return Ok(());
        };
        while let Some((offset, payload)) = backlog.next().await? {
            match self.codec.decode_policies_log(&payload).await {
                Ok(PoliciesLog::Recheck(_)) => {}
                Ok(PoliciesLog::Policies(record)) => match PoliciesDocument::from_json(record.document.as_bytes()) {
                    Ok(doc) => {
                        book.last_recorded_at = book.last_recorded_at.max(record.recorded_at);
                        book.docs.insert(record.tenant, (record.version, doc));
                    }
                    Err(e) => tracing::error!(offset, errors = ?e, "skipping an unreadable policies document"),
                },
                Err(e) => tracing::error!(offset, error = %e, "skipping an undecodable policies record"),
            }
            book.next_offset = offset + 1;
        }
        Ok(())
    }
}
