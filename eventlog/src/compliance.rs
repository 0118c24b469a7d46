//! The compliance-events topic's records (docs/adr/0007): an evaluator's decisions about one
//! resource — violation transitions and changes of its compliance judgement — as Avro values.

use std::sync::Arc;

use apache_avro::types::Value;
use chrono::{DateTime, Utc};
use uuid::Uuid;
use vtag_domain::compliance::{Change, Judgement, Problem, Resolution, Scope, Selection, Severity, Transition};
use vtag_domain::{Actor, EventEnvelope, Provider, ResourceId, TenantId};

use crate::avro_value::{envelope_from, invalid, micros, s, Fields, InvalidField};

/// The aggregate type compliance records carry (the aggregate id is the resource's).
pub const AGGREGATE_TYPE: &str = "ResourceCompliance";

pub const OPENED: &str = "ViolationOpened";
pub const DUE: &str = "ViolationBecameDue";
pub const ESCALATED: &str = "ViolationEscalated";
pub const RESOLVED: &str = "ViolationResolved";
pub const JUDGED: &str = "ResourceComplianceChanged";
pub const RECHECK: &str = "ComplianceRecheckRequested";
pub const DECISIONS: &str = "ComplianceDecisionsRecorded";
/// What evaluators write now: the same batches, packed (see its `.avsc`).
pub const PACKED: &str = "ComplianceDecisionsPacked";
pub const PROGRESS: &str = "ComplianceJobProgressed";

/// One decision of an evaluator about one resource.
#[derive(Debug, Clone, PartialEq)]
pub struct ComplianceRecord {
    pub envelope: EventEnvelope,
    /// The resource-topic offset (same partition) the evaluator had applied when it decided.
    pub source_offset: i64,
    /// The tenant's policies version it judged under.
    pub policies_version: u64,
    pub change: Change,
}

/// Ids of decisions: one per resource and compliance version, however often it is decided.
const DECISION_IDS: Uuid = Uuid::from_u128(0x3f6b_2a91_c8d4_4e07_9b15_6ad2_e0c7_4f83);

pub fn decision_event_id(resource: ResourceId, version: u64) -> Uuid {
    Uuid::new_v5(&DECISION_IDS, format!("{resource}:{version}").as_bytes())
}

/// An evaluator's decisions about resources of one tenant in one partition, as one record
/// (`ComplianceDecisionsRecorded`): a sweep over a million resources is a few hundred records, not
/// millions. Each decision keeps its identity (resource, version, derived event id).
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionBatch {
    pub batch_id: Uuid,
    pub tenant: TenantId,
    pub actor: Actor,
    pub causation_id: Uuid,
    pub correlation_id: Uuid,
    pub recorded_at: DateTime<Utc>,
    pub source_offset: i64,
    pub policies_version: u64,
    /// (resource, its compliance version, what was decided), in the order decided.
    pub decisions: Vec<(ResourceId, u64, Change)>,
}

impl DecisionBatch {
    /// The decisions as records, each with its own envelope.
    pub fn records(self) -> Vec<ComplianceRecord> {
        let Self { tenant, actor, causation_id, correlation_id, recorded_at, source_offset, policies_version, decisions, .. } = self;
        decisions
            .into_iter()
            .map(|(resource, version, change)| ComplianceRecord {
                envelope: EventEnvelope {
                    event_id: decision_event_id(resource, version),
                    tenant: tenant.clone(),
                    aggregate_id: resource,
                    aggregate_version: version,
                    actor: actor.clone(),
                    causation_id,
                    correlation_id,
                    occurred_at: recorded_at,
                    recorded_at,
                },
                source_offset,
                policies_version,
                change,
            })
            .collect()
    }
}

/// The decision kinds inside a batch.
pub(crate) fn kind_of(change: &Change) -> &'static str {
    match change {
        Change::Transition(Transition::Opened { .. }) => "opened",
        Change::Transition(Transition::BecameDue { .. }) => "due",
        Change::Transition(Transition::Escalated { .. }) => "escalated",
        Change::Transition(Transition::Resolved { .. }) => "resolved",
        Change::Judged(_) => "judged",
    }
}

/// Reads a decoded `ComplianceDecisionsRecorded`.
pub fn batch_from_value(value: Value) -> Result<DecisionBatch, InvalidField> {
    let mut f = Fields::of("batch", value)?;
    let batch_id = f.uuid("batch_id")?;
    let tenant = f.parsed("tenant", TenantId::parse)?;
    let actor = f.parsed("actor", Actor::parse)?;
    let causation_id = f.uuid("causation_id")?;
    let correlation_id = f.uuid("correlation_id")?;
    let recorded_at = f.timestamp("recorded_at")?;
    let source_offset = f.long("source_offset")?;
    let policies_version = f.long("policies_version")?.max(0) as u64;
    let Value::Array(items) = f.take("decisions")? else { return Err(invalid("decisions", "expected an array")) };
    let mut decisions = Vec::with_capacity(items.len());
    for item in items {
        let mut d = Fields::of("decisions[]", item)?;
        let resource = ResourceId::from_uuid(d.uuid("resource_id")?);
        let version = d.long("version")?.max(0) as u64;
        let kind = d.string("kind")?;
        let (policy_id, key): (Arc<str>, Arc<str>) = (d.string("policy_id")?.into(), d.string("tag_key")?.into());
        let change = match kind.as_str() {
            "opened" => {
                let severity = d.string("severity")?;
                let problem = d.string("problem")?;
                let (message, remediation) = (d.string("message")?.into(), d.string("remediation")?.into());
                let due_at = optional_timestamp(&mut d, "due_at")?.ok_or_else(|| invalid("due_at", "an opening has a due time"))?;
                let escalate_to = d.optional_string("escalate_to")?;
                let escalate_at = optional_timestamp(&mut d, "escalate_at")?;
                Change::Transition(Transition::Opened {
                    policy_id,
                    key,
                    severity: Severity::parse(&severity).ok_or_else(|| invalid("severity", format!("unknown severity '{severity}'")))?,
                    problem: Problem::parse(&problem).ok_or_else(|| invalid("problem", format!("unknown problem '{problem}'")))?,
                    message,
                    remediation,
                    due_at,
                    escalation: escalate_to.map(Arc::from).zip(escalate_at),
                })
            }
            "due" => Change::Transition(Transition::BecameDue { policy_id, key }),
            "escalated" => Change::Transition(Transition::Escalated { policy_id, key, to: d.string("escalated_to")?.into() }),
            "resolved" => {
                let resolution = d.string("resolution")?;
                let reason = Resolution::parse(&resolution).ok_or_else(|| invalid("resolution", format!("unknown resolution '{resolution}'")))?;
                Change::Transition(Transition::Resolved { policy_id, key, reason })
            }
            "judged" => Change::Judged(std::sync::Arc::new(Judgement {
                applicable: string_list(&mut d, "applicable_policies")?,
                violated: string_list(&mut d, "violated_policies")?,
                score: d.double("score")?,
            })),
            other => return Err(invalid("kind", format!("unknown decision kind '{other}'"))),
        };
        decisions.push((resource, version, change));
    }
    Ok(DecisionBatch { batch_id, tenant, actor, causation_id, correlation_id, recorded_at, source_offset, policies_version, decisions })
}

/// A recheck asked for (on the compliance-policies topic, ordered with the policy versions).
#[derive(Debug, Clone, PartialEq)]
pub struct RecheckRequest {
    pub event_id: Uuid,
    pub tenant: TenantId,
    pub job_id: Uuid,
    /// One resource; `None` for what `scope` covers (everything when it is empty).
    pub resource: Option<ResourceId>,
    pub scope: Scope,
    pub actor: Actor,
    pub recorded_at: DateTime<Utc>,
}

impl RecheckRequest {
    pub fn selection(&self) -> Selection {
        Selection { resource: self.resource, scope: self.scope.clone() }
    }
}

/// Ids of the retroactive passes after policy changes: one per tenant and policies version, so
/// the command API can name the job before the evaluator runs it.
const POLICIES_JOB_IDS: Uuid = Uuid::from_u128(0x8d2c_51e4_0b7a_4c19_a3f6_27e9_d1b0_5c48);

pub fn policies_job_id(tenant: &TenantId, version: u64) -> Uuid {
    Uuid::new_v5(&POLICIES_JOB_IDS, format!("{}:{version}", tenant.as_str()).as_bytes())
}

/// What an evaluation job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    Recheck,
    /// The retroactive pass after a tenant's policies changed.
    PoliciesChanged,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Recheck => "recheck",
            Self::PoliciesChanged => "policies_changed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Recheck, Self::PoliciesChanged].into_iter().find(|k| k.as_str() == raw)
    }
}

/// Progress of an evaluation job on one compliance-events partition, written after the decisions
/// it counts.
#[derive(Debug, Clone, PartialEq)]
pub struct JobProgress {
    pub event_id: Uuid,
    pub tenant: TenantId,
    pub job_id: Uuid,
    pub kind: JobKind,
    pub policies_version: u64,
    pub partition: i32,
    /// Every one of them reports, even with nothing to judge.
    pub partitions: i32,
    pub processed: u64,
    pub total: u64,
    pub changed: u64,
    pub done: bool,
    pub actor: Actor,
    pub recorded_at: DateTime<Utc>,
}

/// A record of the compliance-events topic.
#[derive(Debug, Clone, PartialEq)]
pub enum ComplianceLog {
    /// In the order decided (a batch's decisions are about one tenant in one partition).
    Decisions(Vec<ComplianceRecord>),
    Progress(JobProgress),
}

/// A record of the compliance-policies topic.
#[derive(Debug, Clone, PartialEq)]
pub enum PoliciesLog {
    Policies(crate::ConfigRecord),
    Recheck(RecheckRequest),
}

pub fn recheck_to_value(r: &RecheckRequest) -> Value {
    let providers: Vec<String> = r.scope.providers.iter().map(|p| p.as_str().to_owned()).collect();
    Value::Record(vec![
        ("event_id".into(), s(&r.event_id.to_string())),
        ("tenant".into(), s(r.tenant.as_str())),
        ("job_id".into(), s(&r.job_id.to_string())),
        ("resource_id".into(), optional(r.resource.map(|id| s(&id.to_string())))),
        ("providers".into(), strings(&providers)),
        ("accounts".into(), strings(&r.scope.accounts)),
        ("resource_types".into(), strings(&r.scope.resource_types)),
        ("actor".into(), s(r.actor.as_str())),
        ("recorded_at".into(), micros(r.recorded_at)),
    ])
}

pub fn recheck_from_value(value: Value) -> Result<RecheckRequest, InvalidField> {
    let mut f = Fields::of("recheck", value)?;
    let event_id = f.uuid("event_id")?;
    let tenant = f.parsed("tenant", TenantId::parse)?;
    let job_id = f.uuid("job_id")?;
    let resource = match f.optional_string("resource_id")? {
        None => None,
        Some(raw) => Some(ResourceId::from_uuid(Uuid::parse_str(&raw).map_err(|e| invalid("resource_id", e.to_string()))?)),
    };
    let providers = string_list::<String>(&mut f, "providers")?
        .iter()
        .map(|p| Provider::parse(p).map_err(|e| invalid("providers", e.message)))
        .collect::<Result<_, _>>()?;
    let scope = Scope { providers, accounts: string_list(&mut f, "accounts")?, resource_types: string_list(&mut f, "resource_types")? };
    Ok(RecheckRequest { event_id, tenant, job_id, resource, scope, actor: f.parsed("actor", Actor::parse)?, recorded_at: f.timestamp("recorded_at")? })
}

pub fn progress_to_value(p: &JobProgress) -> Value {
    Value::Record(vec![
        ("event_id".into(), s(&p.event_id.to_string())),
        ("tenant".into(), s(p.tenant.as_str())),
        ("job_id".into(), s(&p.job_id.to_string())),
        ("kind".into(), s(p.kind.as_str())),
        ("policies_version".into(), Value::Long(p.policies_version as i64)),
        ("partition".into(), Value::Int(p.partition)),
        ("partitions".into(), Value::Int(p.partitions)),
        ("processed".into(), Value::Long(p.processed as i64)),
        ("total".into(), Value::Long(p.total as i64)),
        ("changed".into(), Value::Long(p.changed as i64)),
        ("done".into(), Value::Boolean(p.done)),
        ("actor".into(), s(p.actor.as_str())),
        ("recorded_at".into(), micros(p.recorded_at)),
    ])
}

pub fn progress_from_value(value: Value) -> Result<JobProgress, InvalidField> {
    let mut f = Fields::of("progress", value)?;
    let count = |f: &mut Fields, name: &str| f.long(name).map(|v| v.max(0) as u64);
    Ok(JobProgress {
        event_id: f.uuid("event_id")?,
        tenant: f.parsed("tenant", TenantId::parse)?,
        job_id: f.uuid("job_id")?,
        kind: {
            let raw = f.string("kind")?;
            JobKind::parse(&raw).ok_or_else(|| invalid("kind", format!("unknown job kind '{raw}'")))?
        },
        policies_version: count(&mut f, "policies_version")?,
        partition: f.long("partition")? as i32,
        partitions: f.long("partitions")? as i32,
        processed: count(&mut f, "processed")?,
        total: count(&mut f, "total")?,
        changed: count(&mut f, "changed")?,
        done: f.boolean("done")?,
        actor: f.parsed("actor", Actor::parse)?,
        recorded_at: f.timestamp("recorded_at")?,
    })
}

fn strings(items: &[impl AsRef<str>]) -> Value {
    Value::Array(items.iter().map(|i| s(i.as_ref())).collect())
}

/// The record's name and Avro value; field order follows the `.avsc` files. Single-decision records
/// are no longer written (decisions travel in batches): this remains to test that they are still read.
#[cfg(test)]
pub fn to_value(r: &ComplianceRecord) -> (&'static str, Value) {
    use crate::avro_value::envelope_of;
    let mut fields = vec![
        ("envelope".to_owned(), envelope_of(&r.envelope, AGGREGATE_TYPE)),
        ("source_offset".to_owned(), Value::Long(r.source_offset)),
        ("policies_version".to_owned(), Value::Long(r.policies_version as i64)),
    ];
    let violation = |policy_id: &str, key: &str| [("policy_id".to_owned(), s(policy_id)), ("tag_key".to_owned(), s(key))];
    let name = match &r.change {
        Change::Transition(Transition::Opened { policy_id, key, severity, problem, message, remediation, due_at, escalation }) => {
            fields.extend(violation(policy_id, key));
            fields.extend([
                ("severity".to_owned(), s(severity.as_str())),
                ("problem".to_owned(), s(problem.as_str())),
                ("message".to_owned(), s(message)),
                ("remediation".to_owned(), s(remediation)),
                ("due_at".to_owned(), micros(*due_at)),
                ("escalate_to".to_owned(), optional(escalation.as_ref().map(|(to, _)| s(to)))),
                ("escalate_at".to_owned(), optional(escalation.as_ref().map(|(_, at)| micros(*at)))),
            ]);
            OPENED
        }
        Change::Transition(Transition::BecameDue { policy_id, key }) => {
            fields.extend(violation(policy_id, key));
            DUE
        }
        Change::Transition(Transition::Escalated { policy_id, key, to }) => {
            fields.extend(violation(policy_id, key));
            fields.push(("escalated_to".to_owned(), s(to)));
            ESCALATED
        }
        Change::Transition(Transition::Resolved { policy_id, key, reason }) => {
            fields.extend(violation(policy_id, key));
            fields.push(("resolution".to_owned(), s(reason.as_str())));
            RESOLVED
        }
        Change::Judged(j) => {
            fields.extend([
                ("applicable_policies".to_owned(), strings(&j.applicable)),
                ("violated_policies".to_owned(), strings(&j.violated)),
                ("score".to_owned(), Value::Double(j.score)),
            ]);
            JUDGED
        }
    };
    (name, Value::Record(fields))
}

fn optional(v: Option<Value>) -> Value {
    match v {
        None => Value::Union(0, Box::new(Value::Null)),
        Some(v) => Value::Union(1, Box::new(v)),
    }
}

fn optional_timestamp(f: &mut Fields, name: &str) -> Result<Option<DateTime<Utc>>, InvalidField> {
    let at = |micros: i64| DateTime::from_timestamp_micros(micros).ok_or_else(|| invalid(name, "out of range"));
    match f.take(name)? {
        Value::Null => Ok(None),
        Value::Union(_, inner) => match *inner {
            Value::Null => Ok(None),
            Value::TimestampMicros(m) | Value::Long(m) => at(m).map(Some),
            other => Err(invalid(name, format!("expected a timestamp or null, found {other:?}"))),
        },
        Value::TimestampMicros(m) | Value::Long(m) => at(m).map(Some),
        other => Err(invalid(name, format!("expected a timestamp or null, found {other:?}"))),
    }
}

fn string_list<T: From<String>>(f: &mut Fields, name: &str) -> Result<Vec<T>, InvalidField> {
    match f.take(name)? {
        Value::Array(items) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.into()),
                other => Err(invalid(name, format!("expected strings, found {other:?}"))),
            })
            .collect(),
        other => Err(invalid(name, format!("expected an array, found {other:?}"))),
    }
}

/// Rebuilds a record from a decoded value whose record name is `name`.
pub fn from_value(name: &str, value: Value) -> Result<ComplianceRecord, InvalidField> {
    let mut f = Fields::of("record", value)?;
    let envelope = envelope_from(f.take("envelope")?)?;
    let source_offset = f.long("source_offset")?;
    let policies_version = f.long("policies_version")?.max(0) as u64;
    let change = if name == JUDGED {
        Change::Judged(std::sync::Arc::new(Judgement {
            applicable: string_list(&mut f, "applicable_policies")?,
            violated: string_list(&mut f, "violated_policies")?,
            score: f.double("score")?,
        }))
    } else {
        let (policy_id, key): (Arc<str>, Arc<str>) = (f.string("policy_id")?.into(), f.string("tag_key")?.into());
        Change::Transition(match name {
            OPENED => {
                let severity = f.string("severity")?;
                let problem = f.string("problem")?;
                let escalate_to = f.optional_string("escalate_to")?;
                let escalate_at = optional_timestamp(&mut f, "escalate_at")?;
                Transition::Opened {
                    policy_id,
                    key,
                    severity: Severity::parse(&severity).ok_or_else(|| invalid("severity", format!("unknown severity '{severity}'")))?,
                    problem: Problem::parse(&problem).ok_or_else(|| invalid("problem", format!("unknown problem '{problem}'")))?,
                    message: f.string("message")?.into(),
                    remediation: f.string("remediation")?.into(),
                    due_at: f.timestamp("due_at")?,
                    escalation: escalate_to.map(Arc::from).zip(escalate_at),
                }
            }
            DUE => Transition::BecameDue { policy_id, key },
            ESCALATED => Transition::Escalated { policy_id, key, to: f.string("escalated_to")?.into() },
            RESOLVED => {
                let resolution = f.string("resolution")?;
                let reason = Resolution::parse(&resolution).ok_or_else(|| invalid("resolution", format!("unknown resolution '{resolution}'")))?;
                Transition::Resolved { policy_id, key, reason }
            }
            other => return Err(invalid("record", format!("not a compliance record: {other}"))),
        })
    };
    Ok(ComplianceRecord { envelope, source_offset, policies_version, change })
}

#[cfg(test)]
mod tests {
    use apache_avro::{from_avro_datum, to_avro_datum, Schema};
    use chrono::TimeZone;
    use uuid::Uuid;
    use vtag_domain::{Actor, ResourceId, TenantId};

    use super::*;
    use crate::schemas::COMPLIANCE_EVENT_SCHEMAS;

    fn record(change: Change) -> ComplianceRecord {
        let at = Utc.with_ymd_and_hms(2026, 11, 23, 5, 0, 0).unwrap();
        ComplianceRecord {
            envelope: EventEnvelope {
                event_id: Uuid::from_u128(1),
                tenant: TenantId::parse("acme").unwrap(),
                aggregate_id: ResourceId::from_uuid(Uuid::from_u128(9)),
                aggregate_version: 4,
                actor: Actor::parse("compliance@vtag").unwrap(),
                causation_id: Uuid::from_u128(2),
                correlation_id: Uuid::from_u128(3),
                occurred_at: at,
                recorded_at: at,
            },
            source_offset: 1204,
            policies_version: 7,
            change,
        }
    }

    #[test]
    fn every_decision_round_trips_through_its_schema() {
        let at = Utc.with_ymd_and_hms(2026, 11, 24, 5, 0, 0).unwrap();
        let (p, k) = (Arc::<str>::from("prod-tagging-standard"), Arc::<str>::from("owner"));
        let changes = [
            Change::Transition(Transition::Opened {
                policy_id: p.clone(),
                key: k.clone(),
                severity: Severity::Critical,
                problem: Problem::Invalid,
                message: "owner: Owner must be valid email address (is 'ops')".into(),
                remediation: "set owner to a value that is an email address".into(),
                due_at: at,
                escalation: Some(("leads@example.com".into(), at + chrono::Duration::hours(48))),
            }),
            Change::Transition(Transition::Opened {
                policy_id: p.clone(),
                key: k.clone(),
                severity: Severity::Low,
                problem: Problem::Missing,
                message: "owner is required".into(),
                remediation: "set the owner tag".into(),
                due_at: at,
                escalation: None,
            }),
            Change::Transition(Transition::BecameDue { policy_id: p.clone(), key: k.clone() }),
            Change::Transition(Transition::Escalated { policy_id: p.clone(), key: k.clone(), to: "leads@example.com".into() }),
            Change::Transition(Transition::Resolved { policy_id: p.clone(), key: k.clone(), reason: Resolution::PolicyWithdrawn }),
            Change::Judged(std::sync::Arc::new(Judgement { applicable: vec![p.clone(), "x".into()], violated: vec![p], score: 11.1 })),
        ];
        for change in changes {
            let original = record(change);
            let (name, value) = to_value(&original);
            let text = COMPLIANCE_EVENT_SCHEMAS.iter().find(|(n, _)| *n == name).expect("a schema per record").1;
            let schema = Schema::parse_str(text).unwrap();
            let bytes = to_avro_datum(&schema, value).unwrap_or_else(|e| panic!("{name}: {e}"));
            let back = from_value(name, from_avro_datum(&schema, &mut &bytes[..], None).unwrap()).unwrap();
            assert_eq!(back, original, "{name}");
        }
    }

    #[test]
    fn recheck_requests_and_job_progress_round_trip_through_their_schemas() {
        let at = Utc.with_ymd_and_hms(2026, 11, 23, 5, 0, 0).unwrap();
        let schema = |name: &str| {
            let text = crate::schemas::COMPLIANCE_JOB_SCHEMAS.iter().chain(&[crate::schemas::RECHECK_SCHEMA]).find(|(n, _)| *n == name).unwrap().1;
            Schema::parse_str(text).unwrap()
        };
        let round_trip = |name: &str, value: Value| {
            let schema = schema(name);
            let bytes = to_avro_datum(&schema, value).unwrap_or_else(|e| panic!("{name}: {e}"));
            from_avro_datum(&schema, &mut &bytes[..], None).unwrap()
        };
        for (resource, scope) in [
            (Some(ResourceId::from_uuid(Uuid::from_u128(9))), Scope::default()),
            (None, Scope { providers: vec![Provider::Aws, Provider::Gcp], accounts: vec!["123".into()], resource_types: vec!["ec2:*".into()] }),
        ] {
            let original = RecheckRequest {
                event_id: Uuid::from_u128(1),
                tenant: TenantId::parse("acme").unwrap(),
                job_id: Uuid::from_u128(2),
                resource,
                scope,
                actor: Actor::parse("ana@example.com").unwrap(),
                recorded_at: at,
            };
            assert_eq!(recheck_from_value(round_trip(RECHECK, recheck_to_value(&original))).unwrap(), original);
        }
        let progress = JobProgress {
            event_id: Uuid::from_u128(3),
            tenant: TenantId::parse("acme").unwrap(),
            job_id: Uuid::from_u128(2),
            kind: JobKind::PoliciesChanged,
            policies_version: 7,
            partition: 2,
            partitions: 6,
            processed: 5000,
            total: 16_000,
            changed: 12,
            done: false,
            actor: Actor::parse("ana@example.com").unwrap(),
            recorded_at: at,
        };
        assert_eq!(progress_from_value(round_trip(PROGRESS, progress_to_value(&progress))).unwrap(), progress);
    }
}
