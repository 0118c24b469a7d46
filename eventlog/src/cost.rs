//! Cost ledger events (`vtag.events.cost`) ⇄ Avro values. Amounts travel as Avro decimals
//! (bytes, scale 10): exact, and readable as decimals by any Avro tool an auditor exports with.

use apache_avro::types::Value;
use apache_avro::Decimal;
use chrono::NaiveDate;
use uuid::Uuid;
use vtag_billing::{
    Amount, ChargeCategory, CostEnvelope, CostEvent, CostLinesRecorded, CostPeriodImported, CostRecord, CostSplitsChanged, Costs,
    PoolLine, ResourceCost,
};
use vtag_domain::{Actor, ResourceId, TenantId};

use crate::avro_value::{Fields, InvalidField};

pub const LINES: &str = "CostLinesRecorded";
pub const IMPORTED: &str = "CostPeriodImported";
pub const SPLITS: &str = "CostSplitsChanged";

fn s(v: &str) -> Value {
    Value::String(v.to_owned())
}

fn invalid(field: &str, reason: impl Into<String>) -> InvalidField {
    InvalidField { field: field.to_owned(), reason: reason.into() }
}

pub(crate) const EPOCH: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");

pub(crate) fn date(d: NaiveDate) -> Value {
    Value::Date((d - EPOCH).num_days() as i32)
}

fn decimal(a: Amount) -> Value {
    unscaled(a.units())
}

/// An Avro decimal of `units` (its unscaled value).
pub(crate) fn unscaled(units: i128) -> Value {
    let (bytes, start) = minimal_bytes(units);
    Value::Decimal(Decimal::from(&bytes[start..]))
}

/// Two's complement, big-endian, without redundant sign bytes (Avro's decimal bytes): the buffer
/// and where the significant bytes start.
pub(crate) fn minimal_bytes(units: i128) -> ([u8; 16], usize) {
    let bytes = units.to_be_bytes();
    let negative = units < 0;
    let pad = if negative { 0xff } else { 0x00 };
    let mut start = 0;
    while start < 15 && bytes[start] == pad && (bytes[start + 1] & 0x80 != 0) == negative {
        start += 1;
    }
    (bytes, start)
}

fn costs(c: &Costs) -> Value {
    Value::Record(vec![
        ("billed_cost".into(), decimal(c.billed)),
        ("effective_cost".into(), decimal(c.effective)),
        ("list_cost".into(), decimal(c.list)),
    ])
}

fn envelope(e: &CostEnvelope) -> Value {
    Value::Record(vec![
        ("event_id".into(), s(&e.event_id.to_string())),
        ("tenant".into(), s(e.tenant.as_str())),
        ("ledger_id".into(), s(&e.ledger_id.to_string())),
        ("import_id".into(), s(&e.import_id.to_string())),
        ("aggregate_version".into(), Value::Long(e.version as i64)),
        ("actor".into(), s(e.actor.as_str())),
        ("causation_id".into(), s(&e.causation_id.to_string())),
        ("correlation_id".into(), s(&e.correlation_id.to_string())),
        ("recorded_at".into(), Value::TimestampMicros(e.recorded_at.timestamp_micros())),
    ])
}

/// The record name and Avro value of a cost event.
pub fn to_value(event: &CostEvent) -> (&'static str, Value) {
    match event {
        CostEvent::Lines(e) => (LINES, lines_value(e)),
        CostEvent::Imported(e) => (IMPORTED, imported_value(e)),
    }
}

fn lines_value(e: &CostLinesRecorded) -> Value {
    let resources = e
        .resource_lines
        .iter()
        .map(|l| {
            Value::Record(vec![
                ("resource_id".into(), s(&l.resource_id.to_string())),
                ("day".into(), date(l.day)),
                ("charge_category".into(), s(l.category.as_str())),
                ("service_name".into(), s(&l.service)),
                ("costs".into(), costs(&l.costs)),
            ])
        })
        .collect();
    let pools = e
        .pool_lines
        .iter()
        .map(|l| {
            Value::Record(vec![
                ("day".into(), date(l.day)),
                ("charge_category".into(), s(l.category.as_str())),
                ("service_name".into(), s(&l.service)),
                ("sub_account_id".into(), s(&l.sub_account)),
                ("reason".into(), s(l.reason)),
                ("costs".into(), costs(&l.costs)),
            ])
        })
        .collect();
    Value::Record(vec![
        ("envelope".into(), envelope(&e.envelope)),
        ("chunk".into(), Value::Int(e.chunk as i32)),
        ("resource_lines".into(), Value::Array(resources)),
        ("pool_lines".into(), Value::Array(pools)),
    ])
}

fn imported_value(e: &CostPeriodImported) -> Value {
    let replaces = match e.replaces {
        Some(id) => Value::Union(1, Box::new(s(&id.to_string()))),
        None => Value::Union(0, Box::new(Value::Null)),
    };
    Value::Record(vec![
        ("envelope".into(), envelope(&e.envelope)),
        ("provider_name".into(), s(&e.provider_name)),
        ("billing_account_id".into(), s(&e.billing_account_id)),
        ("billing_account_name".into(), s(&e.billing_account_name)),
        ("period_start".into(), date(e.period_start)),
        ("period_end".into(), date(e.period_end)),
        ("currency".into(), s(&e.currency)),
        ("fingerprint".into(), s(&e.fingerprint)),
        ("source".into(), s(&e.source)),
        ("rows".into(), Value::Long(e.rows as i64)),
        ("chunks".into(), Value::Int(e.chunks as i32)),
        ("resource_lines".into(), Value::Long(e.resource_lines as i64)),
        ("pool_lines".into(), Value::Long(e.pool_lines as i64)),
        ("resources".into(), Value::Long(e.resources as i64)),
        ("total".into(), costs(&e.total)),
        ("unallocatable".into(), costs(&e.unallocatable)),
        ("replaces".into(), replaces),
    ])
}

pub fn splits_value(e: &CostSplitsChanged) -> Value {
    Value::Record(vec![
        ("event_id".into(), s(&e.event_id.to_string())),
        ("tenant".into(), s(e.tenant.as_str())),
        ("version".into(), Value::Long(e.version as i64)),
        ("actor".into(), s(e.actor.as_str())),
        ("causation_id".into(), s(&e.causation_id.to_string())),
        ("correlation_id".into(), s(&e.correlation_id.to_string())),
        ("recorded_at".into(), Value::TimestampMicros(e.recorded_at.timestamp_micros())),
        ("document".into(), s(&e.document)),
    ])
}

// ---------------------------------------------------------------------------------------------
// Avro → events

pub fn from_value(record: &str, value: Value) -> Result<CostRecord, InvalidField> {
    match record {
        LINES => lines_from(value).map(|e| CostRecord::Ledger(CostEvent::Lines(e))),
        IMPORTED => imported_from(value).map(|e| CostRecord::Ledger(CostEvent::Imported(e))),
        SPLITS => splits_from(value).map(CostRecord::Splits),
        other => Err(invalid("record", format!("not a cost record: {other}"))),
    }
}

fn splits_from(value: Value) -> Result<CostSplitsChanged, InvalidField> {
    let mut f = Fields::of("event", value)?;
    let version = f.long("version")?;
    if version < 1 {
        return Err(invalid("version", "must be at least 1"));
    }
    Ok(CostSplitsChanged {
        event_id: f.uuid("event_id")?,
        tenant: f.parsed("tenant", TenantId::parse)?,
        version: version as u64,
        actor: f.parsed("actor", Actor::parse)?,
        causation_id: f.uuid("causation_id")?,
        correlation_id: f.uuid("correlation_id")?,
        recorded_at: f.timestamp("recorded_at")?,
        document: f.string("document")?,
    })
}

pub(crate) fn day(f: &mut Fields, name: &str) -> Result<NaiveDate, InvalidField> {
    match f.take(name)? {
        Value::Date(d) | Value::Int(d) => {
            EPOCH.checked_add_signed(chrono::Duration::days(i64::from(d))).ok_or_else(|| invalid(name, "date out of range"))
        }
        other => Err(invalid(name, format!("expected a date, found {other:?}"))),
    }
}

fn amount(f: &mut Fields, name: &str) -> Result<Amount, InvalidField> {
    unscaled_from(f, name).map(Amount::from_units)
}

/// The unscaled value of an Avro decimal field.
pub(crate) fn unscaled_from(f: &mut Fields, name: &str) -> Result<i128, InvalidField> {
    let bytes: Vec<u8> = match f.take(name)? {
        Value::Decimal(d) => Vec::<u8>::try_from(&d).map_err(|e| invalid(name, e.to_string()))?,
        Value::Bytes(b) => b,
        other => return Err(invalid(name, format!("expected a decimal, found {other:?}"))),
    };
    if bytes.is_empty() || bytes.len() > 16 {
        return Err(invalid(name, format!("a decimal of {} bytes does not fit", bytes.len())));
    }
    let pad = if bytes[0] & 0x80 != 0 { 0xff } else { 0 };
    let mut wide = [pad; 16];
    wide[16 - bytes.len()..].copy_from_slice(&bytes);
    Ok(i128::from_be_bytes(wide))
}

fn costs_from(value: Value) -> Result<Costs, InvalidField> {
    let mut f = Fields::of("costs", value)?;
    Ok(Costs { billed: amount(&mut f, "billed_cost")?, effective: amount(&mut f, "effective_cost")?, list: amount(&mut f, "list_cost")? })
}

fn category(f: &mut Fields) -> Result<ChargeCategory, InvalidField> {
    let raw = f.string("charge_category")?;
    ChargeCategory::parse(&raw).ok_or_else(|| invalid("charge_category", format!("unknown charge category {raw}")))
}

fn envelope_from(value: Value) -> Result<CostEnvelope, InvalidField> {
    let mut e = Fields::of("envelope", value)?;
    let version = e.long("aggregate_version")?;
    if version < 1 {
        return Err(invalid("aggregate_version", "must be at least 1"));
    }
    Ok(CostEnvelope {
        event_id: e.uuid("event_id")?,
        tenant: e.parsed("tenant", TenantId::parse)?,
        ledger_id: e.uuid("ledger_id")?,
        import_id: e.uuid("import_id")?,
        version: version as u64,
        actor: e.parsed("actor", Actor::parse)?,
        causation_id: e.uuid("causation_id")?,
        correlation_id: e.uuid("correlation_id")?,
        recorded_at: e.timestamp("recorded_at")?,
    })
}

fn array(f: &mut Fields, name: &str) -> Result<Vec<Value>, InvalidField> {
    match f.take(name)? {
        Value::Array(items) => Ok(items),
        other => Err(invalid(name, format!("expected an array, found {other:?}"))),
    }
}

/// Pool reasons are a closed set; keeping them `&'static` keeps a million pool lines from each
/// owning a copy.
fn reason(raw: &str) -> &'static str {
    match raw {
        "no resource id" => "no resource id",
        "provider has no vtag resources" => "provider has no vtag resources",
        _ => "other",
    }
}

fn lines_from(value: Value) -> Result<CostLinesRecorded, InvalidField> {
    let mut f = Fields::of("event", value)?;
    let envelope = envelope_from(f.take("envelope")?)?;
    let chunk = f.long("chunk")?;
    // A chunk's lines name a handful of services: each is shared, not allocated per line.
    let mut services: Vec<std::sync::Arc<str>> = Vec::new();
    let resource_lines = array(&mut f, "resource_lines")?
        .into_iter()
        .map(|v| {
            let mut l = Fields::of("resource_lines", v)?;
            let name = l.string("service_name")?;
            let service = match services.iter().find(|s| ***s == *name) {
                Some(s) => s.clone(),
                None => {
                    services.push(std::sync::Arc::from(name));
                    services[services.len() - 1].clone()
                }
            };
            Ok(ResourceCost {
                resource_id: ResourceId::from_uuid(l.uuid("resource_id")?),
                day: day(&mut l, "day")?,
                category: category(&mut l)?,
                service,
                costs: costs_from(l.take("costs")?)?,
            })
        })
        .collect::<Result<_, InvalidField>>()?;
    let pool_lines = array(&mut f, "pool_lines")?
        .into_iter()
        .map(|v| {
            let mut l = Fields::of("pool_lines", v)?;
            Ok(PoolLine {
                day: day(&mut l, "day")?,
                category: category(&mut l)?,
                service: l.string("service_name")?,
                sub_account: l.string("sub_account_id")?,
                reason: reason(&l.string("reason")?),
                costs: costs_from(l.take("costs")?)?,
            })
        })
        .collect::<Result<_, InvalidField>>()?;
    Ok(CostLinesRecorded { envelope, chunk: chunk.max(0) as u32, resource_lines, pool_lines })
}

fn imported_from(value: Value) -> Result<CostPeriodImported, InvalidField> {
    let mut f = Fields::of("event", value)?;
    let replaces = match f.take("replaces")? {
        Value::Null => None,
        Value::String(v) => Some(v),
        Value::Union(_, inner) => match *inner {
            Value::String(v) => Some(v),
            _ => None,
        },
        other => return Err(invalid("replaces", format!("expected a string or null, found {other:?}"))),
    };
    let replaces = replaces.map(|r| Uuid::parse_str(&r).map_err(|e| invalid("replaces", e.to_string()))).transpose()?;
    let count = |f: &mut Fields, name: &str| f.long(name).map(|v| v.max(0) as u64);
    Ok(CostPeriodImported {
        envelope: envelope_from(f.take("envelope")?)?,
        provider_name: f.string("provider_name")?,
        billing_account_id: f.string("billing_account_id")?,
        billing_account_name: f.string("billing_account_name")?,
        period_start: day(&mut f, "period_start")?,
        period_end: day(&mut f, "period_end")?,
        currency: f.string("currency")?,
        fingerprint: f.string("fingerprint")?,
        source: f.string("source")?,
        rows: count(&mut f, "rows")?,
        chunks: count(&mut f, "chunks")? as u32,
        resource_lines: count(&mut f, "resource_lines")?,
        pool_lines: count(&mut f, "pool_lines")?,
        resources: count(&mut f, "resources")?,
        total: costs_from(f.take("total")?)?,
        unallocatable: costs_from(f.take("unallocatable")?)?,
        replaces,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_round_trip_with_minimal_bytes() {
        for units in [0i128, 1, -1, 127, 128, -128, -129, 255, 10_000_000_000, -417, i128::from(i64::MAX) * 1000, -(10i128.pow(37))] {
            let value = decimal(Amount::from_units(units));
            let Value::Decimal(d) = &value else { panic!() };
            let bytes = Vec::<u8>::try_from(d).unwrap();
            if (-128..=127).contains(&units) {
                assert_eq!(bytes.len(), 1, "{units}");
            }
            let mut f = Fields::of("t", Value::Record(vec![("a".into(), value)])).unwrap();
            assert_eq!(amount(&mut f, "a").unwrap().units(), units);
        }
    }
}
