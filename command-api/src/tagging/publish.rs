//! Configuration changes: decided against the tenant's current document, validated by compiling
//! the result (nothing is written unless the whole new configuration compiles), and appended to
//! the tagging-config topic by its single writer.
//!
//! The writer is whoever holds the lease of resource partition 0: the lease already guarantees one
//! holder at a time, and taking that partition's lock for the write keeps a handover from
//! splitting a change.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::Mutex;
use uuid::Uuid;
use vtag_domain::CommandContext;
use vtag_eventlog::{ConfigRecord, EventCodec, ProgressMarker};
use vtag_tagging_config::{ConfigDocument, DocError, MappingDoc, RuleDoc};

use super::registry::ConfigRegistry;

#[derive(Debug, Clone)]
pub enum ConfigChange {
    /// A whole new document (PUT, or a YAML import).
    Replace(Box<ConfigDocument>),
    UpsertRule(Box<RuleDoc>),
    RemoveRule(String),
    SetEnabled(String, bool),
    Reorder { key: String, ids: Vec<String> },
    AddMapping(Box<MappingDoc>),
    SetDefaults(BTreeMap<String, String>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConfigOutcome {
    pub version: u64,
    /// The re-derivation job that brings every resource to this version.
    pub job_id: Uuid,
    /// Where the change landed (none when it changed nothing).
    pub position: Option<(i32, i64)>,
    pub changed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("the configuration is invalid")]
    Invalid(Vec<DocError>),
    #[error("expected configuration version {expected} but it is at version {actual}")]
    VersionConflict { expected: u64, actual: u64 },
    #[error("tagging configuration changes are written by the instance owning partition 0")]
    NotOwner,
    #[error("the event log is unavailable: {0}")]
    Unavailable(String),
}

impl ConfigChange {
    pub fn apply(&self, doc: &ConfigDocument) -> Result<ConfigDocument, Vec<DocError>> {
        match self {
            Self::Replace(new) => Ok((**new).clone()),
            Self::UpsertRule(rule) => doc.upsert_rule((**rule).clone()),
            Self::RemoveRule(id) => doc.remove_rule(id),
            Self::SetEnabled(id, on) => doc.set_enabled(id, *on),
            Self::Reorder { key, ids } => doc.reorder(key, ids),
            Self::AddMapping(m) => doc.add_mapping((**m).clone()),
            Self::SetDefaults(d) => doc.set_defaults(d.clone()),
        }
    }

    fn describe(&self) -> (String, &'static str, Vec<String>) {
        match self {
            Self::Replace(_) => ("configuration replaced".into(), "replaced", Vec::new()),
            Self::UpsertRule(r) => (format!("rule {} saved", r.id), "rule_upserted", vec![r.id.clone()]),
            Self::RemoveRule(id) => (format!("rule {id} removed"), "rule_removed", vec![id.clone()]),
            Self::SetEnabled(id, true) => (format!("rule {id} enabled"), "rule_enabled", vec![id.clone()]),
            Self::SetEnabled(id, false) => (format!("rule {id} disabled"), "rule_disabled", vec![id.clone()]),
            Self::Reorder { key, ids } => (format!("rules of {key} reordered"), "rules_reordered", ids.clone()),
            Self::AddMapping(m) => (format!("mapping for {} added", m.key), "mapping_added", Vec::new()),
            Self::SetDefaults(_) => ("defaults set".into(), "defaults_set", Vec::new()),
        }
    }
}

pub struct Publisher {
    codec: EventCodec,
    producer: FutureProducer,
    registry: Arc<ConfigRegistry>,
    recent: Mutex<(HashMap<Uuid, ConfigOutcome>, VecDeque<Uuid>)>,
}

const RECENT: usize = 10_000;

impl Publisher {
    pub fn new(codec: EventCodec, producer: FutureProducer, registry: Arc<ConfigRegistry>) -> Self {
        Self { codec, producer, registry, recent: Mutex::default() }
    }

    /// Decides and appends one change. The caller holds partition 0's lock and has checked the lease.
    pub async fn publish(
        &self,
        change: &ConfigChange,
        ctx: &CommandContext,
        expected_version: Option<u64>,
    ) -> Result<ConfigOutcome, PublishError> {
        let mut recent = self.recent.lock().await;
        if let Some(done) = recent.0.get(&ctx.command_id) {
            return Ok(done.clone());
        }
        let current = self.registry.get(&ctx.tenant);
        if let Some(expected) = expected_version {
            if expected != current.version {
                return Err(PublishError::VersionConflict { expected, actual: current.version });
            }
        }
        let document = change.apply(&current.document).map_err(PublishError::Invalid)?;
        if document == current.document {
            let job_id = ProgressMarker::job_id(&ctx.tenant, current.version);
            return Ok(ConfigOutcome { version: current.version, job_id, position: None, changed: false });
        }
        let version = current.version + 1;
        let compiled = document.compile(version).map_err(PublishError::Invalid)?;
        let (change_text, kind, rule_ids) = change.describe();
        let record = ConfigRecord {
            event_id: ctx.event_id(0),
            tenant: ctx.tenant.clone(),
            version,
            actor: ctx.actor.clone(),
            causation_id: ctx.command_id,
            correlation_id: ctx.correlation_id,
            recorded_at: ctx.recorded_at,
            change: change_text,
            change_kind: kind.to_owned(),
            rule_ids,
            document: String::from_utf8(document.to_json()).expect("JSON is UTF-8"),
        };
        let payload = self.codec.encode_config(&record).await.map_err(|e| PublishError::Unavailable(e.to_string()))?;
        let key = ctx.tenant.as_str().to_owned();
        let sent = self
            .producer
            .send(FutureRecord::to(self.codec.topic()).partition(0).key(&key).payload(&payload), Duration::from_secs(10))
            .await
            .map_err(|(e, _)| PublishError::Unavailable(e.to_string()))?;
        self.registry.install_compiled(&record, document, compiled);
        let outcome = ConfigOutcome {
            version,
            job_id: ProgressMarker::job_id(&ctx.tenant, version),
            position: Some((sent.partition, sent.offset)),
            changed: true,
        };
        recent.0.insert(ctx.command_id, outcome.clone());
        recent.1.push_back(ctx.command_id);
        if recent.1.len() > RECENT {
            if let Some(old) = recent.1.pop_front() {
                recent.0.remove(&old);
            }
        }
        Ok(outcome)
    }
}
