//! The compliance-events topic's records (docs/adr/0007): an evaluator's decisions about one
//! resource — violation transitions and changes of its compliance judgement — as Avro values.

use apache_avro::types::Value;
use chrono::{DateTime, Utc};
use vtag_domain::compliance::{Change, Judgement, Problem, Resolution, Severity, Transition};
use vtag_domain::EventEnvelope;

use crate::avro_value::{envelope_from, envelope_of, invalid, micros, s, Fields, InvalidField};

/// The aggregate type compliance records carry (the aggregate id is the resource's).
pub const AGGREGATE_TYPE: &str = "ResourceCompliance";

pub const OPENED: &str = "ViolationOpened";
pub const DUE: &str = "ViolationBecameDue";
pub const ESCALATED: &str = "ViolationEscalated";
pub const RESOLVED: &str = "ViolationResolved";
pub const JUDGED: &str = "ResourceComplianceChanged";

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

fn strings(items: &[String]) -> Value {
    Value::Array(items.iter().map(|i| s(i)).collect())
}

/// The record's name and Avro value; field order follows the `.avsc` files.
pub fn to_value(r: &ComplianceRecord) -> (&'static str, Value) {
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

fn string_list(f: &mut Fields, name: &str) -> Result<Vec<String>, InvalidField> {
    match f.take(name)? {
        Value::Array(items) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
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
        Change::Judged(Judgement {
            applicable: string_list(&mut f, "applicable_policies")?,
            violated: string_list(&mut f, "violated_policies")?,
            score: f.double("score")?,
        })
    } else {
        let (policy_id, key) = (f.string("policy_id")?, f.string("tag_key")?);
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
                    message: f.string("message")?,
                    remediation: f.string("remediation")?,
                    due_at: f.timestamp("due_at")?,
                    escalation: escalate_to.zip(escalate_at),
                }
            }
            DUE => Transition::BecameDue { policy_id, key },
            ESCALATED => Transition::Escalated { policy_id, key, to: f.string("escalated_to")? },
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
        let (p, k) = ("prod-tagging-standard".to_owned(), "owner".to_owned());
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
            Change::Judged(Judgement { applicable: vec![p.clone(), "x".into()], violated: vec![p], score: 11.1 }),
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
}
