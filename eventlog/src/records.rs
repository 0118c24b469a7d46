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

/// A change of one of a tenant's configuration documents (the tagging configuration, the
/// compliance policies): the whole new document and what changed.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigRecord {
    pub event_id: Uuid,
    pub tenant: TenantId,
    /// Gapless per tenant and document, from 1; for the tagging configuration also the rule-set
    /// version derived tags cite.
    pub version: u64,
    pub actor: Actor,
    pub causation_id: Uuid,
    pub correlation_id: Uuid,
    pub recorded_at: DateTime<Utc>,
    pub change: String,
    pub change_kind: String,
    /// The rules (or policies) the change is about.
    pub rule_ids: Vec<String>,
    /// JSON, in the format of the document's crate (`vtag-tagging-config`, `vtag-policy-config`).
    pub document: String,
}

/// Which document a [`ConfigRecord`] changes: its aggregate and how its record names things.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocumentKind {
    pub aggregate_type: &'static str,
    /// The record's field listing the items the change is about.
    pub ids_field: &'static str,
    /// Namespace of the aggregate ids (one aggregate per tenant).
    namespace: Uuid,
}

impl DocumentKind {
    pub const TAGGING_CONFIG: DocumentKind = DocumentKind {
        aggregate_type: "TaggingConfig",
        ids_field: "rule_ids",
        namespace: Uuid::from_u128(0x41a7_0f3c_9e25_4d8b_a6c0_7b31_e9f2_5d18),
    };
    pub const COMPLIANCE_POLICIES: DocumentKind = DocumentKind {
        aggregate_type: "CompliancePolicies",
        ids_field: "policy_ids",
        namespace: Uuid::from_u128(0x7c2e_95b1_0d64_4f3a_8e17_c5a9_3b20_6f48),
    };

    /// The document aggregate's id for a tenant.
    pub fn aggregate_id(self, tenant: &TenantId) -> Uuid {
        Uuid::new_v5(&self.namespace, tenant.as_str().as_bytes())
    }
}

impl ConfigRecord {
    /// The tagging-configuration aggregate's id (one per tenant).
    pub fn aggregate_id(tenant: &TenantId) -> Uuid {
        DocumentKind::TAGGING_CONFIG.aggregate_id(tenant)
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

pub fn config_to_value(c: &ConfigRecord, kind: DocumentKind) -> Value {
    let envelope = Value::Record(vec![
        ("event_id".into(), s(&c.event_id.to_string())),
        ("tenant".into(), s(c.tenant.as_str())),
        ("aggregate_type".into(), s(kind.aggregate_type)),
        ("aggregate_id".into(), s(&kind.aggregate_id(&c.tenant).to_string())),
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
        (kind.ids_field.into(), Value::Array(c.rule_ids.iter().map(|r| s(r)).collect())),
        ("document".into(), s(&c.document)),
    ])
}

pub fn config_from_value(value: Value, kind: DocumentKind) -> Result<ConfigRecord, InvalidField> {
    let mut f = Fields::of("event", value)?;
    let mut e = Fields::of("envelope", f.take("envelope")?)?;
    let version = e.long("aggregate_version")?;
    if version < 1 {
        return Err(InvalidField { field: "aggregate_version".into(), reason: "must be at least 1".into() });
    }
    let ids = kind.ids_field;
    let rule_ids = match f.take(ids)? {
        Value::Array(items) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                other => Err(InvalidField { field: ids.into(), reason: format!("expected strings, found {other:?}") }),
            })
            .collect::<Result<Vec<_>, _>>()?,
        other => return Err(InvalidField { field: ids.into(), reason: format!("expected an array, found {other:?}") }),
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

#[cfg(test)]
mod tests {
    use apache_avro::{from_avro_datum, to_avro_datum, Schema};
    use chrono::TimeZone;

    use super::*;
    use crate::schemas::{CONFIG_SCHEMA, POLICIES_SCHEMA};

    fn record() -> ConfigRecord {
        ConfigRecord {
            event_id: Uuid::from_u128(1),
            tenant: TenantId::parse("acme").unwrap(),
            version: 3,
            actor: Actor::parse("ana@example.com").unwrap(),
            causation_id: Uuid::from_u128(2),
            correlation_id: Uuid::from_u128(3),
            recorded_at: Utc.with_ymd_and_hms(2026, 11, 23, 4, 30, 0).unwrap(),
            change: "policy prod-tagging-standard saved".into(),
            change_kind: "policy_saved".into(),
            rule_ids: vec!["prod-tagging-standard".into()],
            document: r#"{"format_version":1,"policies":[]}"#.into(),
        }
    }

    #[test]
    fn document_changes_round_trip_through_their_schemas() {
        for ((_, text), kind) in [(CONFIG_SCHEMA, DocumentKind::TAGGING_CONFIG), (POLICIES_SCHEMA, DocumentKind::COMPLIANCE_POLICIES)] {
            let schema = Schema::parse_str(text).unwrap();
            let bytes = to_avro_datum(&schema, config_to_value(&record(), kind)).unwrap();
            let back = config_from_value(from_avro_datum(&schema, &mut &bytes[..], None).unwrap(), kind).unwrap();
            assert_eq!(back, record(), "{}", kind.aggregate_type);
        }
        // Each document is its own aggregate.
        let tenant = TenantId::parse("acme").unwrap();
        assert_ne!(DocumentKind::TAGGING_CONFIG.aggregate_id(&tenant), DocumentKind::COMPLIANCE_POLICIES.aggregate_id(&tenant));
        assert_eq!(ConfigRecord::aggregate_id(&tenant), DocumentKind::TAGGING_CONFIG.aggregate_id(&tenant), "tagging ids never move");
    }
}
