//! Hand-written conversions between domain events and Avro values. Kept outside the domain so the
//! domain stays free of serialization concerns, and explicit so a schema change is a visible code
//! change here rather than a silent serde rename.

use std::collections::{BTreeMap, HashMap};

use apache_avro::types::Value;
use chrono::{DateTime, Utc};
use uuid::Uuid;
use vtag_domain::resource::{
    DerivedChange, MonthlyCostChanged, NativeTagsChanged, PreviousTag, ResourceEvent, ResourceObserved, VirtualTagApplied,
    VirtualTagRemoved, VirtualTagsDerived,
};
use vtag_domain::tagging::{KeyMapping, Origin, ValueMapping};
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

pub(crate) fn invalid(field: &str, reason: impl Into<String>) -> InvalidField {
    InvalidField { field: field.to_owned(), reason: reason.into() }
}

// ---------------------------------------------------------------------------------------------
// domain → Avro

pub(crate) fn s(v: &str) -> Value {
    Value::String(v.to_owned())
}

pub(crate) fn micros(t: DateTime<Utc>) -> Value {
    Value::TimestampMicros(t.timestamp_micros())
}

fn string_map(m: &BTreeMap<String, String>) -> Value {
    Value::Map(m.iter().map(|(k, v)| (k.clone(), s(v))).collect::<HashMap<_, _>>())
}

fn previous(p: &PreviousTag) -> Value {
    Value::Record(vec![("value".into(), s(p.value.as_str())), ("source".into(), s(p.source.as_str()))])
}

fn envelope(e: &EventEnvelope) -> Value {
    envelope_of(e, "Resource")
}

/// The envelope of a record about a resource on another topic (`ResourceCompliance`).
pub(crate) fn envelope_of(e: &EventEnvelope, aggregate_type: &str) -> Value {
    Value::Record(vec![
        ("event_id".into(), s(&e.event_id.to_string())),
        ("tenant".into(), s(e.tenant.as_str())),
        ("aggregate_type".into(), s(aggregate_type)),
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
        ResourceEvent::MonthlyCostChanged(e) => fields.extend([
            ("monthly_cost".into(), crate::cost::unscaled(i128::from(e.cents))),
            ("currency".into(), s(&e.currency)),
            ("as_of".into(), crate::cost::date(e.as_of)),
        ]),
        ResourceEvent::VirtualTagsDerived(e) => fields.extend([
            ("rule_set_version".into(), Value::Long(e.rule_set_version as i64)),
            ("changes".into(), Value::Array(e.changes.iter().map(derived_change).collect())),
        ]),
    }
    Value::Record(fields)
}

fn optional(v: Option<&str>) -> Value {
    match v {
        None => Value::Union(0, Box::new(Value::Null)),
        Some(v) => Value::Union(1, Box::new(s(v))),
    }
}

fn derived_change(c: &DerivedChange) -> Value {
    let (origin, rule_id, native) = match &c.origin {
        None => ("none", None, None),
        Some(Origin::Default) => ("default", None, None),
        Some(Origin::Rule { rule_id }) => ("rule", Some(rule_id.as_str()), None),
        Some(Origin::Native { native_key, native_value, key_mapping, value_mapping }) => {
            ("native", None, Some((native_key.as_str(), native_value.as_str(), key_mapping.as_str(), value_mapping.as_str())))
        }
    };
    Value::Record(vec![
        ("key".into(), s(c.key.as_str())),
        ("value".into(), optional(c.value.as_ref().map(|v| v.as_str()))),
        ("source".into(), s(c.source.as_str())),
        ("origin".into(), s(origin)),
        ("rule_id".into(), optional(rule_id)),
        ("native_key".into(), optional(native.map(|n| n.0))),
        ("native_value".into(), optional(native.map(|n| n.1))),
        ("key_mapping".into(), optional(native.map(|n| n.2))),
        ("value_mapping".into(), optional(native.map(|n| n.3))),
        (
            "previous".into(),
            match &c.previous {
                None => Value::Union(0, Box::new(Value::Null)),
                Some(p) => Value::Union(1, Box::new(previous(p))),
            },
        ),
    ])
}

// ---------------------------------------------------------------------------------------------
// Avro → domain

pub(crate) struct Fields {
    path: &'static str,
    fields: Vec<(String, Value)>,
}

impl Fields {
    pub(crate) fn of(path: &'static str, value: Value) -> Result<Self, InvalidField> {
        match value {
            Value::Record(fields) => Ok(Self { path, fields }),
            other => Err(invalid(path, format!("expected a record, found {other:?}"))),
        }
    }

    pub(crate) fn take(&mut self, name: &str) -> Result<Value, InvalidField> {
        let i = self
            .fields
            .iter()
            .position(|(n, _)| n == name)
            .ok_or_else(|| invalid(&format!("{}.{name}", self.path), "missing"))?;
        Ok(self.fields.swap_remove(i).1)
    }

    pub(crate) fn string(&mut self, name: &str) -> Result<String, InvalidField> {
        match self.take(name)? {
            Value::String(v) => Ok(v),
            other => Err(invalid(name, format!("expected a string, found {other:?}"))),
        }
    }

    pub(crate) fn long(&mut self, name: &str) -> Result<i64, InvalidField> {
        match self.take(name)? {
            Value::Long(v) | Value::TimestampMicros(v) => Ok(v),
            Value::Int(v) => Ok(i64::from(v)),
            other => Err(invalid(name, format!("expected a long, found {other:?}"))),
        }
    }

    pub(crate) fn boolean(&mut self, name: &str) -> Result<bool, InvalidField> {
        match self.take(name)? {
            Value::Boolean(v) => Ok(v),
            other => Err(invalid(name, format!("expected a boolean, found {other:?}"))),
        }
    }

    /// An `["null", "string"]` union.
    pub(crate) fn optional_string(&mut self, name: &str) -> Result<Option<String>, InvalidField> {
        match self.take(name)? {
            Value::Null => Ok(None),
            Value::String(v) => Ok(Some(v)),
            Value::Union(_, inner) => match *inner {
                Value::Null => Ok(None),
                Value::String(v) => Ok(Some(v)),
                other => Err(invalid(name, format!("expected a string or null, found {other:?}"))),
            },
            other => Err(invalid(name, format!("expected a string or null, found {other:?}"))),
        }
    }

    fn optional_previous(&mut self) -> Result<Option<PreviousTag>, InvalidField> {
        match self.take("previous")? {
            Value::Union(_, inner) if *inner == Value::Null => Ok(None),
            Value::Null => Ok(None),
            Value::Union(_, inner) => Ok(Some(previous_from(*inner)?)),
            other => Ok(Some(previous_from(other)?)),
        }
    }

    pub(crate) fn double(&mut self, name: &str) -> Result<f64, InvalidField> {
        match self.take(name)? {
            Value::Double(v) => Ok(v),
            Value::Float(v) => Ok(f64::from(v)),
            other => Err(invalid(name, format!("expected a double, found {other:?}"))),
        }
    }

    pub(crate) fn timestamp(&mut self, name: &str) -> Result<DateTime<Utc>, InvalidField> {
        let us = self.long(name)?;
        DateTime::from_timestamp_micros(us).ok_or_else(|| invalid(name, "timestamp out of range"))
    }

    pub(crate) fn uuid(&mut self, name: &str) -> Result<Uuid, InvalidField> {
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
    pub(crate) fn parsed<T>(&mut self, name: &str, parse: impl FnOnce(&str) -> Result<T, vtag_domain::ValidationError>) -> Result<T, InvalidField> {
        let raw = self.string(name)?;
        parse(&raw).map_err(|e| invalid(name, e.message))
    }
}

fn previous_from(value: Value) -> Result<PreviousTag, InvalidField> {
    let mut f = Fields::of("previous", value)?;
    Ok(PreviousTag { value: f.parsed("value", TagValue::parse)?, source: f.parsed("source", TagSource::parse)? })
}

pub(crate) fn envelope_from(value: Value) -> Result<EventEnvelope, InvalidField> {
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
            let previous = f.optional_previous()?;
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
        "VirtualTagsDerived" => {
            let version = f.long("rule_set_version")?;
            let changes = match f.take("changes")? {
                Value::Array(items) => items.into_iter().map(derived_change_from).collect::<Result<Vec<_>, _>>()?,
                other => return Err(invalid("changes", format!("expected an array, found {other:?}"))),
            };
            ResourceEvent::VirtualTagsDerived(VirtualTagsDerived { rule_set_version: version.max(0) as u64, changes })
        }
        "MonthlyCostChanged" => {
            let cents = i64::try_from(crate::cost::unscaled_from(&mut f, "monthly_cost")?).map_err(|_| invalid("monthly_cost", "out of range"))?;
            ResourceEvent::MonthlyCostChanged(MonthlyCostChanged {
                cents,
                currency: f.string("currency")?,
                as_of: crate::cost::day(&mut f, "as_of")?,
            })
        }
        other => return Err(invalid("record", format!("unknown event type {other}"))),
    };
    Ok(Recorded { envelope, event })
}

fn derived_change_from(value: Value) -> Result<DerivedChange, InvalidField> {
    let mut f = Fields::of("changes[]", value)?;
    let value = f.optional_string("value")?.map(|v| TagValue::parse(&v)).transpose().map_err(|e| invalid("value", e.message))?;
    let origin = match f.string("origin")?.as_str() {
        "none" => None,
        "default" => Some(Origin::Default),
        "rule" => Some(Origin::Rule { rule_id: f.optional_string("rule_id")?.ok_or_else(|| invalid("rule_id", "missing for origin rule"))? }),
        "native" => {
            let need = |v: Option<String>, name: &str| v.ok_or_else(|| invalid(name, "missing for origin native"));
            let native_key = need(f.optional_string("native_key")?, "native_key")?;
            let native_value = need(f.optional_string("native_value")?, "native_value")?;
            let key_mapping = need(f.optional_string("key_mapping")?, "key_mapping")?;
            let value_mapping = need(f.optional_string("value_mapping")?, "value_mapping")?;
            Some(Origin::Native {
                native_key,
                native_value,
                key_mapping: KeyMapping::parse(&key_mapping).ok_or_else(|| invalid("key_mapping", "unknown mapping"))?,
                value_mapping: ValueMapping::parse(&value_mapping).ok_or_else(|| invalid("value_mapping", "unknown mapping"))?,
            })
        }
        other => return Err(invalid("origin", format!("unknown origin {other}"))),
    };
    Ok(DerivedChange {
        key: f.parsed("key", TagKey::parse)?,
        value,
        source: f.parsed("source", TagSource::parse)?,
        origin,
        previous: f.optional_previous()?,
    })
}
