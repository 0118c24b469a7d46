//! Avro binary written directly, for the one record that comes by the hundred thousand: a cost
//! import's `CostLinesRecorded` chunks. Building an `apache_avro::Value` tree per line (named
//! fields, big-integer decimals) and validating it cost ~14 µs a line — most of an import; these
//! bytes are what `apache_avro` writes for the same schema (a test compares them), in a fraction of
//! the time. Everything else keeps the generic path.

use std::sync::Arc;

use vtag_billing::{Amount, CostEnvelope, CostLinesRecorded, Costs};

use crate::cost::{minimal_bytes, EPOCH};

/// A growing Confluent-framed Avro datum.
pub(crate) struct Wire(Vec<u8>);

impl Wire {
    /// Magic byte 0 and the schema id, as the Confluent wire format wants.
    pub(crate) fn framed(schema_id: u32, capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(capacity);
        buf.push(0);
        buf.extend_from_slice(&schema_id.to_be_bytes());
        Self(buf)
    }

    #[cfg(test)]
    fn bare() -> Self {
        Self(Vec::new())
    }

    fn long(&mut self, v: i64) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        while z >= 0x80 {
            self.0.push((z as u8) | 0x80);
            z >>= 7;
        }
        self.0.push(z as u8);
    }

    fn bytes(&mut self, b: &[u8]) {
        self.long(b.len() as i64);
        self.0.extend_from_slice(b);
    }

    fn string(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    fn uuid(&mut self, u: &uuid::Uuid) {
        let mut buf = uuid::Uuid::encode_buffer();
        self.string(u.hyphenated().encode_lower(&mut buf));
    }

    fn date(&mut self, d: chrono::NaiveDate) {
        self.long((d - EPOCH).num_days());
    }

    fn decimal(&mut self, a: Amount) {
        let (bytes, start) = minimal_bytes(a.units());
        self.bytes(&bytes[start..]);
    }

    fn costs(&mut self, c: &Costs) {
        self.decimal(c.billed);
        self.decimal(c.effective);
        self.decimal(c.list);
    }

    fn envelope(&mut self, e: &CostEnvelope) {
        self.uuid(&e.event_id);
        self.string(e.tenant.as_str());
        self.uuid(&e.ledger_id);
        self.uuid(&e.import_id);
        self.long(e.version as i64);
        self.string(e.actor.as_str());
        self.uuid(&e.causation_id);
        self.uuid(&e.correlation_id);
        self.long(e.recorded_at.timestamp_micros());
    }

    /// An array of `items` as one block (count, items, end marker); an empty array is the marker alone.
    fn array<T>(&mut self, items: &[T], mut item: impl FnMut(&mut Self, &T)) {
        if !items.is_empty() {
            self.long(items.len() as i64);
            for i in items {
                item(self, i);
            }
        }
        self.long(0);
    }

    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

fn optional_micros(w: &mut Wire, at: Option<chrono::DateTime<chrono::Utc>>) {
    match at {
        None => w.long(0),
        Some(at) => {
            w.long(1);
            w.long(at.timestamp_micros());
        }
    }
}

/// `ComplianceDecisionsRecorded` in the field order of its `.avsc`, as evaluators wrote decisions
/// before they were packed (the tests write such records to check they are still read).
#[cfg(test)]
pub(crate) fn decisions(w: &mut Wire, b: &crate::compliance::DecisionBatch) {
    use vtag_domain::compliance::Transition;
    batch_header(w, b);
    w.array(&b.decisions, |w, (resource, version, change)| {
        w.uuid(&resource.as_uuid());
        w.long(*version as i64);
        w.string(crate::compliance::kind_of(change));
        let none: &[Arc<str>] = &[];
        let (policy, key, opened, escalated_to, resolution, judged) = parts(change);
        w.string(policy);
        w.string(key);
        match opened {
            Some(Transition::Opened { severity, problem, message, remediation, due_at, escalation, .. }) => {
                w.string(severity.as_str());
                w.string(problem.as_str());
                w.string(message);
                w.string(remediation);
                optional_micros(w, Some(*due_at));
                match escalation {
                    Some((to, _)) => {
                        w.long(1);
                        w.string(to);
                    }
                    None => w.long(0),
                }
                optional_micros(w, escalation.as_ref().map(|(_, at)| *at));
            }
            _ => {
                for _ in 0..4 {
                    w.string("");
                }
                w.long(0);
                w.long(0);
                w.long(0);
            }
        }
        w.string(escalated_to);
        w.string(resolution);
        w.array(judged.map_or(none, |j| &j.applicable), |w, p| w.string(p));
        w.array(judged.map_or(none, |j| &j.violated), |w, p| w.string(p));
        w.0.extend_from_slice(&judged.map_or(100.0, |j| j.score).to_le_bytes());
    });
}

/// The fields both batch schemas start with.
fn batch_header(w: &mut Wire, b: &crate::compliance::DecisionBatch) {
    w.uuid(&b.batch_id);
    w.string(b.tenant.as_str());
    w.string(b.actor.as_str());
    w.uuid(&b.causation_id);
    w.uuid(&b.correlation_id);
    w.long(b.recorded_at.timestamp_micros());
    w.long(b.source_offset);
    w.long(b.policies_version as i64);
}

type Parts<'a> = (&'a str, &'a str, Option<&'a vtag_domain::compliance::Transition>, &'a str, &'a str, Option<&'a vtag_domain::compliance::Judgement>);

/// A decision as both batch schemas lay it out: policy, key, the opening (if it is one), whom it
/// escalated to, why it resolved, the judgement (if it is one); "" where a field does not apply.
fn parts(change: &vtag_domain::compliance::Change) -> Parts<'_> {
    use vtag_domain::compliance::{Change, Transition};
    match change {
        Change::Transition(t @ Transition::Opened { policy_id, key, .. }) => (policy_id, key, Some(t), "", "", None),
        Change::Transition(Transition::BecameDue { policy_id, key }) => (policy_id, key, None, "", "", None),
        Change::Transition(Transition::Escalated { policy_id, key, to }) => (policy_id, key, None, to, "", None),
        Change::Transition(Transition::Resolved { policy_id, key, reason }) => (policy_id, key, None, "", reason.as_str(), None),
        Change::Judged(j) => ("", "", None, "", "", Some(j)),
    }
}

/// `ComplianceDecisionsPacked` in the field order of its `.avsc`: the strings the decisions repeat
/// once in the batch's table, each decision pointing into it. The decisions are written as their
/// strings are met (the table grows meanwhile), then placed after the table.
pub(crate) fn packed(w: &mut Wire, b: &crate::compliance::DecisionBatch) {
    use vtag_domain::compliance::Transition;
    let mut table = Strings::default();
    let mut body = Wire(Vec::with_capacity(48 * b.decisions.len()));
    // Resources judged alike share one judgement (the book keeps one per kind): its encoding,
    // indices into this batch's table included, is written once and copied after that.
    let mut judged_before: std::collections::HashMap<*const vtag_domain::compliance::Judgement, std::ops::Range<usize>, foldhash::fast::FixedState> =
        Default::default();
    for (resource, version, change) in &b.decisions {
        let w = &mut body;
        w.0.extend_from_slice(resource.as_uuid().as_bytes());
        w.long(*version as i64);
        let same_as = match change {
            vtag_domain::compliance::Change::Judged(j) => Some(Arc::as_ptr(j)),
            _ => None,
        };
        if let Some(earlier) = same_as.and_then(|j| judged_before.get(&j)) {
            w.0.extend_from_within(earlier.clone());
            continue;
        }
        let start = w.0.len();
        let table = &mut table;
        at(w, table, crate::compliance::kind_of(change));
        let (policy, key, opened, escalated_to, resolution, judged) = parts(change);
        at(w, table, policy);
        at(w, table, key);
        match opened {
            Some(Transition::Opened { severity, problem, message, remediation, due_at, escalation, .. }) => {
                at(w, table, severity.as_str());
                at(w, table, problem.as_str());
                at(w, table, message);
                at(w, table, remediation);
                optional_micros(w, Some(*due_at));
                match escalation {
                    Some((to, _)) => {
                        w.long(1);
                        at(w, table, to);
                    }
                    None => w.long(0),
                }
                optional_micros(w, escalation.as_ref().map(|(_, at)| *at));
            }
            _ => {
                for _ in 0..4 {
                    at(w, table, "");
                }
                w.long(0);
                w.long(0);
                w.long(0);
            }
        }
        at(w, table, escalated_to);
        at(w, table, resolution);
        let none: &[Arc<str>] = &[];
        for ids in [judged.map_or(none, |j| &j.applicable), judged.map_or(none, |j| &j.violated)] {
            // An array as `Wire::array` writes it (one block).
            if !ids.is_empty() {
                w.long(ids.len() as i64);
                for id in ids {
                    at(w, table, id);
                }
            }
            w.long(0);
        }
        match judged {
            Some(j) => {
                w.long(1);
                w.0.extend_from_slice(&j.score.to_le_bytes());
            }
            None => w.long(0),
        }
        if let Some(j) = same_as {
            judged_before.insert(j, start..w.0.len());
        }
    }
    batch_header(w, b);
    w.array(&table.list, |w, s| w.string(s));
    // The decisions array as one block, as `Wire::array` writes it.
    if !b.decisions.is_empty() {
        w.long(b.decisions.len() as i64);
        w.0.extend_from_slice(&body.0);
    }
    w.long(0);
}

/// A string's index in the table, written.
fn at<'a>(w: &mut Wire, table: &mut Strings<'a>, s: &'a str) {
    w.long(i64::from(table.index(s)));
}

/// A batch's string table: each distinct string once, in first-seen order.
#[derive(Default)]
struct Strings<'a> {
    list: Vec<&'a str>,
    index: std::collections::HashMap<&'a str, i32, foldhash::fast::FixedState>,
    /// Most strings are shared by many decisions (a policy's id, a missing tag's message): found
    /// by their address before their text is hashed and compared. Every string lives as long as
    /// the batch, so one address and length is one text.
    by_address: std::collections::HashMap<(usize, usize), i32, foldhash::fast::FixedState>,
}

impl<'a> Strings<'a> {
    fn index(&mut self, s: &'a str) -> i32 {
        let address = (s.as_ptr() as usize, s.len());
        if let Some(i) = self.by_address.get(&address) {
            return *i;
        }
        let next = self.list.len() as i32;
        let i = *self.index.entry(s).or_insert(next);
        if i == next {
            self.list.push(s);
        }
        self.by_address.insert(address, i);
        i
    }
}

/// Reads Avro binary written for this build's schema (the decoder checks the writer's schema id
/// first: any other version goes through `apache_avro` and schema resolution).
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    fn fail(what: &str) -> crate::avro_value::InvalidField {
        crate::avro_value::invalid("record", format!("truncated or malformed Avro ({what})"))
    }

    fn long(&mut self) -> Result<i64, crate::avro_value::InvalidField> {
        let (mut z, mut shift) = (0u64, 0u32);
        loop {
            let (&b, rest) = self.bytes.split_first().ok_or_else(|| Self::fail("long"))?;
            self.bytes = rest;
            if shift > 63 {
                return Err(Self::fail("long too long"));
            }
            z |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
    }

    fn str(&mut self) -> Result<&'a str, crate::avro_value::InvalidField> {
        let n = usize::try_from(self.long()?).map_err(|_| Self::fail("negative length"))?;
        if n > self.bytes.len() {
            return Err(Self::fail("string"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        std::str::from_utf8(head).map_err(|_| Self::fail("utf-8"))
    }

    fn uuid(&mut self, field: &str) -> Result<uuid::Uuid, crate::avro_value::InvalidField> {
        let raw = self.str()?;
        uuid::Uuid::parse_str(raw).map_err(|e| crate::avro_value::invalid(field, e.to_string()))
    }

    fn micros(&mut self, field: &str) -> Result<chrono::DateTime<chrono::Utc>, crate::avro_value::InvalidField> {
        let us = self.long()?;
        chrono::DateTime::from_timestamp_micros(us).ok_or_else(|| crate::avro_value::invalid(field, "timestamp out of range"))
    }

    /// A `["null", T]` union: `None` for null.
    fn nullable<T>(&mut self, read: impl FnOnce(&mut Self) -> Result<T, crate::avro_value::InvalidField>) -> Result<Option<T>, crate::avro_value::InvalidField> {
        match self.long()? {
            0 => Ok(None),
            1 => read(self).map(Some),
            _ => Err(Self::fail("union branch")),
        }
    }

    /// An array's items, block by block (a negative count is followed by the block's size).
    fn array<T>(&mut self, mut item: impl FnMut(&mut Self) -> Result<T, crate::avro_value::InvalidField>) -> Result<Vec<T>, crate::avro_value::InvalidField> {
        let mut out = Vec::new();
        loop {
            let mut n = self.long()?;
            if n == 0 {
                return Ok(out);
            }
            if n < 0 {
                n = -n;
                self.long()?;
            }
            out.reserve(n as usize);
            for _ in 0..n {
                out.push(item(self)?);
            }
        }
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], crate::avro_value::InvalidField> {
        if self.bytes.len() < N {
            return Err(Self::fail("fixed"));
        }
        let (head, rest) = self.bytes.split_at(N);
        self.bytes = rest;
        Ok(head.try_into().expect("N bytes"))
    }

    fn double(&mut self) -> Result<f64, crate::avro_value::InvalidField> {
        if self.bytes.len() < 8 {
            return Err(Self::fail("double"));
        }
        let (head, rest) = self.bytes.split_at(8);
        self.bytes = rest;
        Ok(f64::from_le_bytes(head.try_into().expect("8 bytes")))
    }
}

/// `ComplianceDecisionsRecorded`, read as `decisions` writes it.
pub(crate) fn read_decisions(bytes: &[u8]) -> Result<crate::compliance::DecisionBatch, crate::avro_value::InvalidField> {
    use vtag_domain::ResourceId;
    let mut r = Reader::new(bytes);
    let mut batch = read_batch_header(&mut r)?;
    let decisions = r.array(|r| {
        let resource = ResourceId::from_uuid(r.uuid("resource_id")?);
        let version = r.long()?.max(0) as u64;
        let kind = r.str()?;
        let text = |r: &mut Reader<'_>| r.str().map(Arc::<str>::from);
        let (policy_id, key) = (text(r)?, text(r)?);
        let (severity, problem, message, remediation) = (r.str()?, r.str()?, text(r)?, text(r)?);
        let due_at = r.nullable(|r| r.micros("due_at"))?;
        let escalate_to = r.nullable(text)?;
        let escalate_at = r.nullable(|r| r.micros("escalate_at"))?;
        let (escalated_to, resolution) = (text(r)?, r.str()?);
        let applicable = r.array(text)?;
        let violated = r.array(text)?;
        let score = r.double()?;
        let change = Fields { kind, policy_id, key, severity, problem, message, remediation, due_at, escalate_to, escalate_at, escalated_to, resolution, applicable, violated, score: Some(score) }
            .change()?;
        Ok((resource, version, change))
    })?;
    if !r.bytes.is_empty() {
        return Err(Reader::fail("trailing bytes"));
    }
    batch.decisions = decisions;
    Ok(batch)
}

/// The fields both batch schemas start with (the decisions left empty).
fn read_batch_header(r: &mut Reader<'_>) -> Result<crate::compliance::DecisionBatch, crate::avro_value::InvalidField> {
    use crate::avro_value::invalid;
    use vtag_domain::{Actor, TenantId};
    Ok(crate::compliance::DecisionBatch {
        batch_id: r.uuid("batch_id")?,
        tenant: TenantId::parse(r.str()?).map_err(|e| invalid("tenant", e.message))?,
        actor: Actor::parse(r.str()?).map_err(|e| invalid("actor", e.message))?,
        causation_id: r.uuid("causation_id")?,
        correlation_id: r.uuid("correlation_id")?,
        recorded_at: r.micros("recorded_at")?,
        source_offset: r.long()?,
        policies_version: r.long()?.max(0) as u64,
        decisions: Vec::new(),
    })
}

/// One decision's fields as both batch schemas carry them, before they are checked.
struct Fields<'a> {
    kind: &'a str,
    policy_id: Arc<str>,
    key: Arc<str>,
    severity: &'a str,
    problem: &'a str,
    message: Arc<str>,
    remediation: Arc<str>,
    due_at: Option<chrono::DateTime<chrono::Utc>>,
    escalate_to: Option<Arc<str>>,
    escalate_at: Option<chrono::DateTime<chrono::Utc>>,
    escalated_to: Arc<str>,
    resolution: &'a str,
    applicable: Vec<Arc<str>>,
    violated: Vec<Arc<str>>,
    score: Option<f64>,
}

impl Fields<'_> {
    fn change(self) -> Result<vtag_domain::compliance::Change, crate::avro_value::InvalidField> {
        use crate::avro_value::invalid;
        use vtag_domain::compliance::{Change, Judgement, Problem, Resolution, Severity, Transition};
        let Self { kind, policy_id, key, severity, problem, resolution, .. } = self;
        Ok(match kind {
            "opened" => Change::Transition(Transition::Opened {
                policy_id,
                key,
                severity: Severity::parse(severity).ok_or_else(|| invalid("severity", format!("unknown severity '{severity}'")))?,
                problem: Problem::parse(problem).ok_or_else(|| invalid("problem", format!("unknown problem '{problem}'")))?,
                message: self.message,
                remediation: self.remediation,
                due_at: self.due_at.ok_or_else(|| invalid("due_at", "an opening has a due time"))?,
                escalation: self.escalate_to.zip(self.escalate_at),
            }),
            "due" => Change::Transition(Transition::BecameDue { policy_id, key }),
            "escalated" => Change::Transition(Transition::Escalated { policy_id, key, to: self.escalated_to }),
            "resolved" => Change::Transition(Transition::Resolved {
                policy_id,
                key,
                reason: Resolution::parse(resolution).ok_or_else(|| invalid("resolution", format!("unknown resolution '{resolution}'")))?,
            }),
            "judged" => Change::Judged(std::sync::Arc::new(Judgement {
                applicable: self.applicable,
                violated: self.violated,
                score: self.score.ok_or_else(|| invalid("score", "a judgement has a score"))?,
            })),
            other => return Err(invalid("kind", format!("unknown decision kind '{other}'"))),
        })
    }
}

/// `ComplianceDecisionsPacked`, read as `packed` writes it.
pub(crate) fn read_packed(bytes: &[u8]) -> Result<crate::compliance::DecisionBatch, crate::avro_value::InvalidField> {
    use crate::avro_value::invalid;
    use vtag_domain::ResourceId;
    let mut r = Reader::new(bytes);
    let mut batch = read_batch_header(&mut r)?;
    // Each string of the table once, shared by every decision that points at it.
    let table: Vec<Arc<str>> = r.array(|r| r.str().map(Arc::<str>::from))?;
    let at = |r: &mut Reader<'_>, field: &str| -> Result<Arc<str>, crate::avro_value::InvalidField> {
        let i = r.long()?;
        usize::try_from(i).ok().and_then(|i| table.get(i).cloned()).ok_or_else(|| invalid(field, format!("no string {i} in the batch's table")))
    };
    let decisions = r.array(|r| {
        let resource = ResourceId::from_uuid(uuid::Uuid::from_bytes(r.fixed::<16>()?));
        let version = r.long()?.max(0) as u64;
        let kind = at(r, "kind")?;
        let (policy_id, key) = (at(r, "policy_id")?, at(r, "tag_key")?);
        let (severity, problem, message, remediation) = (at(r, "severity")?, at(r, "problem")?, at(r, "message")?, at(r, "remediation")?);
        let due_at = r.nullable(|r| r.micros("due_at"))?;
        let escalate_to = r.nullable(|r| at(r, "escalate_to"))?;
        let escalate_at = r.nullable(|r| r.micros("escalate_at"))?;
        let (escalated_to, resolution) = (at(r, "escalated_to")?, at(r, "resolution")?);
        let applicable = r.array(|r| at(r, "applicable_policies"))?;
        let violated = r.array(|r| at(r, "violated_policies"))?;
        let score = r.nullable(Reader::double)?;
        let change = Fields { kind: &kind, policy_id, key, severity: &severity, problem: &problem, message, remediation, due_at, escalate_to, escalate_at, escalated_to, resolution: &resolution, applicable, violated, score }
            .change()?;
        Ok((resource, version, change))
    })?;
    if !r.bytes.is_empty() {
        return Err(Reader::fail("trailing bytes"));
    }
    batch.decisions = decisions;
    Ok(batch)
}

/// `CostLinesRecorded` in the field order of `schemas/avro/CostLinesRecorded.avsc`.
pub(crate) fn lines(w: &mut Wire, e: &CostLinesRecorded) {
    w.envelope(&e.envelope);
    w.long(i64::from(e.chunk));
    w.array(&e.resource_lines, |w, l| {
        w.uuid(&l.resource_id.as_uuid());
        w.date(l.day);
        w.string(l.category.as_str());
        w.string(&l.service);
        w.costs(&l.costs);
    });
    w.array(&e.pool_lines, |w, l| {
        w.date(l.day);
        w.string(l.category.as_str());
        w.string(&l.service);
        w.string(&l.sub_account);
        w.string(l.reason);
        w.costs(&l.costs);
    });
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeZone, Utc};
    use uuid::Uuid;
    use vtag_billing::{ChargeCategory, CostEvent, PoolLine, ResourceCost};
    use vtag_domain::{Actor, ResourceId, TenantId};

    use super::*;
    use super::decisions as decisions_wire;

    fn sample(resource_lines: usize, pool_lines: usize) -> CostLinesRecorded {
        let costs = |i: i128| Costs {
            billed: Amount::from_units(i * 1_234_567_891 - 77),
            effective: Amount::from_units(-i * 5),
            list: Amount::from_units(i128::from(i64::MAX) - i),
        };
        CostLinesRecorded {
            envelope: CostEnvelope {
                event_id: Uuid::from_u128(1),
                tenant: TenantId::parse("acme").unwrap(),
                ledger_id: Uuid::from_u128(2),
                import_id: Uuid::from_u128(3),
                version: 300,
                actor: Actor::parse("finops@acme.test").unwrap(),
                causation_id: Uuid::from_u128(4),
                correlation_id: Uuid::from_u128(5),
                recorded_at: Utc.with_ymd_and_hms(2026, 11, 23, 1, 2, 3).unwrap(),
            },
            chunk: 70,
            resource_lines: (0..resource_lines)
                .map(|i| ResourceCost {
                    resource_id: ResourceId::from_uuid(Uuid::from_u128(1000 + i as u128)),
                    day: NaiveDate::from_ymd_opt(2026, 10, 1 + (i % 28) as u32).unwrap(),
                    category: ChargeCategory::ALL[i % 5],
                    service: format!("Service ünïcode {i}").into(),
                    costs: costs(i as i128),
                })
                .collect(),
            pool_lines: (0..pool_lines)
                .map(|i| PoolLine {
                    day: NaiveDate::from_ymd_opt(1969, 12, 31).unwrap(),
                    category: ChargeCategory::Tax,
                    service: String::new(),
                    sub_account: format!("sub-{i}"),
                    reason: "no resource id",
                    costs: costs(-(i as i128)),
                })
                .collect(),
        }
    }

    #[test]
    fn writes_what_apache_avro_writes() {
        let schema = apache_avro::Schema::parse_str(include_str!("../../schemas/avro/CostLinesRecorded.avsc")).unwrap();
        for (r, p) in [(0, 0), (1, 0), (0, 2), (300, 17)] {
            let event = sample(r, p);
            let (_, value) = crate::cost::to_value(&CostEvent::Lines(event.clone()));
            let expected = apache_avro::to_avro_datum(&schema, value).unwrap();
            let mut w = Wire::bare();
            lines(&mut w, &event);
            assert_eq!(w.into_bytes(), expected, "{r} resource lines, {p} pool lines");
        }
    }

    #[test]
    fn decision_batches_read_back_through_their_schema() {
        use vtag_domain::compliance::{Change, Judgement, Problem, Resolution, Severity, Transition};
        let schema = apache_avro::Schema::parse_str(include_str!("../../schemas/avro/ComplianceDecisionsRecorded.avsc")).unwrap();
        let packed_schema = apache_avro::Schema::parse_str(include_str!("../../schemas/avro/ComplianceDecisionsPacked.avsc")).unwrap();
        let at = Utc.with_ymd_and_hms(2026, 11, 23, 6, 0, 0).unwrap();
        let (p, k) = (Arc::<str>::from("prod"), Arc::<str>::from("owner"));
        let r = |i: u128| ResourceId::from_uuid(Uuid::from_u128(100 + i));
        let decisions = [
            (r(1), 1, Change::Transition(Transition::Opened {
                policy_id: p.clone(), key: k.clone(), severity: Severity::Critical, problem: Problem::Invalid,
                message: "owner is 'ops' ünïcode".into(), remediation: "set owner".into(), due_at: at,
                escalation: Some(("leads@example.com".into(), at + chrono::Duration::hours(48))),
            })),
            (r(1), 2, Change::Transition(Transition::BecameDue { policy_id: p.clone(), key: k.clone() })),
            (r(2), 7, Change::Transition(Transition::Opened {
                policy_id: p.clone(), key: "backup".into(), severity: Severity::Low, problem: Problem::Missing,
                message: "".into(), remediation: "".into(), due_at: at, escalation: None,
            })),
            (r(2), 8, Change::Transition(Transition::Escalated { policy_id: p.clone(), key: k.clone(), to: "x@y.z".into() })),
            (r(3), 3, Change::Transition(Transition::Resolved { policy_id: p.clone(), key: k.clone(), reason: Resolution::PolicyWithdrawn })),
            (r(3), 4, Change::Judged(std::sync::Arc::new(Judgement { applicable: vec![p.clone(), "b".into()], violated: vec![], score: 87.5 }))),
            (r(4), 1, Change::Judged(std::sync::Arc::new(Judgement { applicable: vec![], violated: vec![], score: 100.0 }))),
        ];
        let batch_of = |decisions: Vec<_>| crate::compliance::DecisionBatch {
            batch_id: Uuid::from_u128(9),
            tenant: TenantId::parse("acme").unwrap(),
            actor: Actor::parse("vtag-compliance").unwrap(),
            causation_id: Uuid::from_u128(10),
            correlation_id: Uuid::nil(),
            recorded_at: at,
            source_offset: -1,
            policies_version: 12,
            decisions,
        };
        for n in [0, 1, decisions.len()] {
            let batch = batch_of(decisions[..n].to_vec());
            let mut w = Wire::bare();
            decisions_wire(&mut w, &batch);
            let bytes = w.into_bytes();
            let value = apache_avro::from_avro_datum(&schema, &mut &bytes[..], None).unwrap_or_else(|e| panic!("{n} decisions: {e}"));
            assert_eq!(crate::compliance::batch_from_value(value).unwrap(), batch, "{n} decisions");
            assert_eq!(read_decisions(&bytes).unwrap(), batch, "{n} decisions, read directly");
            assert!(read_decisions(&bytes[..bytes.len() - 1]).is_err(), "a truncated record is refused");

            // Packed, as evaluators write them now: Avro of its schema, read back the same.
            let mut w = Wire::bare();
            packed(&mut w, &batch);
            let bytes = w.into_bytes();
            apache_avro::from_avro_datum(&packed_schema, &mut &bytes[..], None).unwrap_or_else(|e| panic!("{n} decisions, packed: {e}"));
            assert_eq!(read_packed(&bytes).unwrap(), batch, "{n} decisions, packed");
            assert!(read_packed(&bytes[..bytes.len() - 1]).is_err(), "a truncated packed record is refused");
        }
        // A sweep's batch: the same few strings over and over, and judgements shared by many
        // resources (written once, copied after that), read back the same.
        let sweep: Vec<_> = (0..2_000).map(|i| decisions[i % decisions.len()].clone()).collect();
        let batch = batch_of(sweep);
        let (mut plain, mut small) = (Wire::bare(), Wire::bare());
        decisions_wire(&mut plain, &batch);
        packed(&mut small, &batch);
        let small = small.into_bytes();
        apache_avro::from_avro_datum(&packed_schema, &mut &small[..], None).expect("the sweep's batch, packed");
        assert_eq!(read_packed(&small).unwrap(), batch, "the sweep's batch, packed");
        let (plain, small) = (plain.into_bytes().len(), small.len());
        assert!(small * 2 < plain, "packed {small} bytes, plain {plain}");
    }
}
