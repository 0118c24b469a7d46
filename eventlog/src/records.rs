//! Records that are not resource events: re-derivation job markers (on the resource topic) and
//! tagging configuration changes (on the configuration topic), with their Avro conversions.

use apache_avro::types::Value;
use chrono::{DateTime, Utc};
use uuid::Uuid;
use vtag_domain::{Actor, Recorded, ResourceEvent, TenantId};

use crate::avro_value::{Fields, InvalidField};

/// One read from the resource topic.
#[derive(Debug, Clone, PartialEq)]
pub enum LogRecord {
    Resource(Recorded<ResourceEvent>),
    Progress(ProgressMarker),
}

/// Progress of a re-derivation job on one partition. Written to that partition after the derived
/// events it counts, so whoever has read the marker has read those events too.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgressMarker {
    pub event_id: Uuid,
    pub tenant: TenantId,
    pub job_id: Uuid,
    pub rule_set_version: u64,
    pub partition: i32,
    /// How many partitions the job runs on (every one reports, even with nothing to do).
    pub partitions: i32,
    pub processed: u64,
    pub total: u64,
    pub changed: u64,
    pub done: bool,
    pub actor: Actor,
    pub recorded_at: DateTime<Utc>,
}

impl ProgressMarker {
    /// Jobs are named by what they do — bring tenant T to configuration version V — so a job
    /// resumed after a restart keeps its id.
    pub fn job_id(tenant: &TenantId, rule_set_version: u64) -> Uuid {
        const NAMESPACE: Uuid = Uuid::from_u128(0x8d0c_51e2_6b7a_4c19_b3f4_2a9e_57d1_c064);
        Uuid::new_v5(&NAMESPACE, format!("{}\u{1f}{rule_set_version}", tenant.as_str()).as_bytes())
    }
}

/// A change of a tenant's tagging configuration: the whole new document and what changed.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigRecord {
    pub event_id: Uuid,
    pub tenant: TenantId,
    /// Gapless per tenant, from 1; also the rule-set version derived tags cite.
    pub version: u64,
    pub actor: Actor,
    pub causation_id: Uuid,
    pub correlation_id: Uuid,
    pub recorded_at: DateTime<Utc>,
    pub change: String,
    pub change_kind: String,
    pub rule_ids: Vec<String>,
    /// JSON, in the format of the `vtag-tagging-config` crate.
    pub document: String,
}

impl ConfigRecord {
    /// The configuration aggregate's id (one per tenant).
    pub fn aggregate_id(tenant: &TenantId) -> Uuid {
        const NAMESPACE: Uuid = Uuid::from_u128(0x41a7_0f3c_9e25_4d8b_a6c0_7b31_e9f2_5d18);
        Uuid::new_v5(&NAMESPACE, tenant.as_str().as_bytes())
    }
}

fn s(v: &str) -> Value {
    Value::String(v.to_owned())
}

fn micros(t: DateTime<Utc>) -> Value {
    Value::TimestampMicros(t.timestamp_micros())
}

pub fn progress_to_value(m: &ProgressMarker) -> Value {
    Value::Record(vec![
        ("event_id".into(), s(&m.event_id.to_string())),
        ("tenant".into(), s(m.tenant.as_str())),
        ("job_id".into(), s(&m.job_id.to_string())),
        ("rule_set_version".into(), Value::Long(m.rule_set_version as i64)),
        ("partition".into(), Value::Int(m.partition)),
        ("partitions".into(), Value::Int(m.partitions)),
        ("processed".into(), Value::Long(m.processed as i64)),
        ("total".into(), Value::Long(m.total as i64)),
        ("changed".into(), Value::Long(m.changed as i64)),
        ("done".into(), Value::Boolean(m.done)),
        ("actor".into(), s(m.actor.as_str())),
        ("recorded_at".into(), micros(m.recorded_at)),
    ])
}

pub fn progress_from_value(value: Value) -> Result<ProgressMarker, InvalidField> {
    let mut f = Fields::of("marker", value)?;
    Ok(ProgressMarker {
        event_id: f.uuid("event_id")?,
        tenant: f.parsed("tenant", TenantId::parse)?,
        job_id: f.uuid("job_id")?,
        rule_set_version: f.long("rule_set_version")?.max(0) as u64,
        partition: f.long("partition")? as i32,
        partitions: f.long("partitions")? as i32,
        processed: f.long("processed")?.max(0) as u64,
        total: f.long("total")?.max(0) as u64,
        changed: f.long("changed")?.max(0) as u64,
        done: f.boolean("done")?,
        actor: f.parsed("actor", Actor::parse)?,
        recorded_at: f.timestamp("recorded_at")?,
    })
}

pub fn config_to_value(c: &ConfigRecord) -> Value {
    let envelope = Value::Record(vec![
        ("event_id".into(), s(&c.event_id.to_string())),
        ("tenant".into(), s(c.tenant.as_str())),
        ("aggregate_type".into(), s("TaggingConfig")),
        ("aggregate_id".into(), s(&ConfigRecord::aggregate_id(&c.tenant).to_string())),
        ("aggregate_version".into(), Value::Long(c.version as i64)),
        ("actor".into(), s(c.actor.as_str())),
        ("causation_id".into(), s(&c.causation_id.to_string())),
        ("correlation_id".into(), s(&c.correlation_id.to_string())),
        ("occurred_at".into(), micros(c.recorded_at)),
        ("recorded_at".into(), micros(c.recorded_at)),
    ]);
    Value::Record(vec![
        ("envelope".into(), envelope),
        ("change".into(), s(&c.change)),
        ("change_kind".into(), s(&c.change_kind)),
        ("rule_ids".into(), Value::Array(c.rule_ids.iter().map(|r| s(r)).collect())),
        ("document".into(), s(&c.document)),
    ])
}

pub fn config_from_value(value: Value) -> Result<ConfigRecord, InvalidField> {
    let mut f = Fields::of("event", value)?;
    let mut e = Fields::of("envelope", f.take("envelope")?)?;
    let version = e.long("aggregate_version")?;
    if version < 1 {
        return Err(InvalidField { field: "aggregate_version".into(), reason: "must be at least 1".into() });
    }
    let rule_ids = match f.take("rule_ids")? {
        Value::Array(items) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                other => Err(InvalidField { field: "rule_ids".into(), reason: format!("expected strings, found {other:?}") }),
            })
            .collect::<Result<Vec<_>, _>>()?,
        other => return Err(InvalidField { field: "rule_ids".into(), reason: format!("expected an array, found {other:?}") }),
    };
    Ok(ConfigRecord {
        event_id: e.uuid("event_id")?,
        tenant: e.parsed("tenant", TenantId::parse)?,
        version: version as u64,
        actor: e.parsed("actor", Actor::parse)?,
        causation_id: e.uuid("causation_id")?,
        correlation_id: e.uuid("correlation_id")?,
        recorded_at: e.timestamp("recorded_at")?,
        change: f.string("change")?,
        change_kind: f.string("change_kind")?,
        rule_ids,
        document: f.string("document")?,
    })
}
