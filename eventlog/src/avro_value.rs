//! Hand-written conversions between domain events and Avro values. Kept outside the domain so the
//! domain stays free of serialization concerns, and explicit so a schema change is a visible code
//! change here rather than a silent serde rename.

use std::collections::{BTreeMap, HashMap};

use apache_avro::types::Value;
use chrono::{DateTime, Utc};
use uuid::Uuid;
use vtag_domain::resource::{
    NativeTagsChanged, PreviousTag, ResourceEvent, ResourceObserved, VirtualTagApplied, VirtualTagRemoved,
};
use vtag_domain::{
    Actor, CloudResourceId, Confidence, EventEnvelope, Provider, Recorded, ResourceDescription, ResourceId, TagKey,
    TagSource, TagValue, TenantId,
};

/// A field that is missing, of the wrong type, or holds a value the domain refuses.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("field '{field}': {reason}")]
pub struct InvalidField {
    pub field: String,
    pub reason: String,
}

fn invalid(field: &str, reason: impl Into<String>) -> InvalidField {
    InvalidField { field: field.to_owned(), reason: reason.into() }
}

// ---------------------------------------------------------------------------------------------
// domain → Avro

fn s(v: &str) -> Value {
    Value::String(v.to_owned())
}

fn micros(t: DateTime<Utc>) -> Value {
    Value::TimestampMicros(t.timestamp_micros())
}

fn string_map(m: &BTreeMap<String, String>) -> Value {
    Value::Map(m.iter().map(|(k, v)| (k.clone(), s(v))).collect::<HashMap<_, _>>())
}

fn previous(p: &PreviousTag) -> Value {
    Value::Record(vec![("value".into(), s(p.value.as_str())), ("source".into(), s(p.source.as_str()))])
}

fn envelope(e: &EventEnvelope) -> Value {
    Value::Record(vec![
        ("event_id".into(), s(&e.event_id.to_string())),
        ("tenant".into(), s(e.tenant.as_str())),
        ("aggregate_type".into(), s("Resource")),
        ("aggregate_id".into(), s(&e.aggregate_id.to_string())),
        ("aggregate_version".into(), Value::Long(e.aggregate_version as i64)),
        ("actor".into(), s(e.actor.as_str())),
        ("causation_id".into(), s(&e.causation_id.to_string())),
        ("correlation_id".into(), s(&e.correlation_id.to_string())),
        ("occurred_at".into(), micros(e.occurred_at)),
        ("recorded_at".into(), micros(e.recorded_at)),
    ])
}

/// The Avro record for an event; field order follows the `.avsc` files.
pub fn to_value(recorded: &Recorded<ResourceEvent>) -> Value {
    let mut fields = vec![("envelope".to_owned(), envelope(&recorded.envelope))];
    match &recorded.event {
        ResourceEvent::ResourceObserved(e) => fields.extend([
            ("provider".into(), s(e.provider.as_str())),
            ("cloud_resource_id".into(), s(e.cloud_id.as_str())),
            ("account_id".into(), s(&e.description.account)),
            ("region".into(), s(&e.description.region)),
            ("resource_type".into(), s(&e.description.resource_type)),
            ("name".into(), s(&e.description.name)),
            ("metadata".into(), string_map(&e.description.metadata)),
            ("native_tags".into(), string_map(&e.native_tags)),
        ]),
        ResourceEvent::NativeTagsChanged(e) => fields.push(("native_tags".into(), string_map(&e.native_tags))),
        ResourceEvent::VirtualTagApplied(e) => fields.extend([
            ("key".into(), s(e.key.as_str())),
            ("value".into(), s(e.value.as_str())),
            ("source".into(), s(e.source.as_str())),
            ("confidence".into(), Value::Double(e.confidence.value())),
            (
                "previous".into(),
                match &e.previous {
                    None => Value::Union(0, Box::new(Value::Null)),
                    Some(p) => Value::Union(1, Box::new(previous(p))),
                },
            ),
        ]),
        ResourceEvent::VirtualTagRemoved(e) => {
            fields.extend([("key".into(), s(e.key.as_str())), ("previous".into(), previous(&e.previous))])
        }
    }
    Value::Record(fields)
}

// ---------------------------------------------------------------------------------------------
// Avro → domain

struct Fields {
    path: &'static str,
    fields: Vec<(String, Value)>,
}

impl Fields {
    fn of(path: &'static str, value: Value) -> Result<Self, InvalidField> {
        match value {
            Value::Record(fields) => Ok(Self { path, fields }),
            other => Err(invalid(path, format!("expected a record, found {other:?}"))),
        }
    }

    fn take(&mut self, name: &str) -> Result<Value, InvalidField> {
        let i = self
            .fields
            .iter()
            .position(|(n, _)| n == name)
            .ok_or_else(|| invalid(&format!("{}.{name}", self.path), "missing"))?;
        Ok(self.fields.swap_remove(i).1)
    }

    fn string(&mut self, name: &str) -> Result<String, InvalidField> {
        match self.take(name)? {
            Value::String(v) => Ok(v),
            other => Err(invalid(name, format!("expected a string, found {other:?}"))),
        }
    }

    fn long(&mut self, name: &str) -> Result<i64, InvalidField> {
        match self.take(name)? {
            Value::Long(v) | Value::TimestampMicros(v) => Ok(v),
            Value::Int(v) => Ok(i64::from(v)),
            other => Err(invalid(name, format!("expected a long, found {other:?}"))),
        }
    }

    fn double(&mut self, name: &str) -> Result<f64, InvalidField> {
        match self.take(name)? {
            Value::Double(v) => Ok(v),
            Value::Float(v) => Ok(f64::from(v)),
            other => Err(invalid(name, format!("expected a double, found {other:?}"))),
        }
    }

    fn timestamp(&mut self, name: &str) -> Result<DateTime<Utc>, InvalidField> {
        let us = self.long(name)?;
        DateTime::from_timestamp_micros(us).ok_or_else(|| invalid(name, "timestamp out of range"))
    }

    fn uuid(&mut self, name: &str) -> Result<Uuid, InvalidField> {
        let raw = self.string(name)?;
        Uuid::parse_str(&raw).map_err(|e| invalid(name, e.to_string()))
    }

    fn string_map(&mut self, name: &str) -> Result<BTreeMap<String, String>, InvalidField> {
        match self.take(name)? {
            Value::Map(m) => m
                .into_iter()
                .map(|(k, v)| match v {
                    Value::String(v) => Ok((k, v)),
                    other => Err(invalid(name, format!("expected string values, found {other:?}"))),
                })
                .collect(),
            other => Err(invalid(name, format!("expected a map, found {other:?}"))),
        }
    }

    /// Parses a field through one of the domain's validating constructors.
    fn parsed<T>(&mut self, name: &str, parse: impl FnOnce(&str) -> Result<T, vtag_domain::ValidationError>) -> Result<T, InvalidField> {
        let raw = self.string(name)?;
        parse(&raw).map_err(|e| invalid(name, e.message))
    }
}

fn previous_from(value: Value) -> Result<PreviousTag, InvalidField> {
    let mut f = Fields::of("previous", value)?;
    Ok(PreviousTag { value: f.parsed("value", TagValue::parse)?, source: f.parsed("source", TagSource::parse)? })
}

fn envelope_from(value: Value) -> Result<EventEnvelope, InvalidField> {
    let mut f = Fields::of("envelope", value)?;
    let version = f.long("aggregate_version")?;
    if version < 1 {
        return Err(invalid("aggregate_version", "must be at least 1"));
    }
    Ok(EventEnvelope {
        event_id: f.uuid("event_id")?,
        tenant: f.parsed("tenant", TenantId::parse)?,
        aggregate_id: ResourceId::from_uuid(f.uuid("aggregate_id")?),
        aggregate_version: version as u64,
        actor: f.parsed("actor", Actor::parse)?,
        causation_id: f.uuid("causation_id")?,
        correlation_id: f.uuid("correlation_id")?,
        occurred_at: f.timestamp("occurred_at")?,
        recorded_at: f.timestamp("recorded_at")?,
    })
}

/// Rebuilds a domain event from a decoded Avro record whose full name is `record`.
pub fn from_value(record: &str, value: Value) -> Result<Recorded<ResourceEvent>, InvalidField> {
    let mut f = Fields::of("event", value)?;
    let envelope = envelope_from(f.take("envelope")?)?;
    let event = match record {
        "ResourceObserved" => {
            let provider = f.parsed("provider", Provider::parse)?;
            let cloud_id = f.parsed("cloud_resource_id", CloudResourceId::parse)?;
            let description = ResourceDescription::parse(
                f.string("account_id")?,
                f.string("region")?,
                f.string("resource_type")?,
                f.string("name")?,
                f.string_map("metadata")?,
            )
            .map_err(|(field, e)| invalid(&field, e.message))?;
            ResourceEvent::ResourceObserved(ResourceObserved {
                provider,
                cloud_id,
                description,
                native_tags: f.string_map("native_tags")?,
            })
        }
        "NativeTagsChanged" => {
            ResourceEvent::NativeTagsChanged(NativeTagsChanged { native_tags: f.string_map("native_tags")? })
        }
        "VirtualTagApplied" => {
            let previous = match f.take("previous")? {
                Value::Union(_, inner) if *inner == Value::Null => None,
                Value::Null => None,
                Value::Union(_, inner) => Some(previous_from(*inner)?),
                other => Some(previous_from(other)?),
            };
            ResourceEvent::VirtualTagApplied(VirtualTagApplied {
                key: f.parsed("key", TagKey::parse)?,
                value: f.parsed("value", TagValue::parse)?,
                source: f.parsed("source", TagSource::parse)?,
                confidence: Confidence::parse(f.double("confidence")?).map_err(|e| invalid("confidence", e.message))?,
                previous,
            })
        }
        "VirtualTagRemoved" => ResourceEvent::VirtualTagRemoved(VirtualTagRemoved {
            key: f.parsed("key", TagKey::parse)?,
            previous: previous_from(f.take("previous")?)?,
        }),
        other => return Err(invalid("record", format!("unknown event type {other}"))),
    };
    Ok(Recorded { envelope, event })
}
