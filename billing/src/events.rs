//! The cost ledger aggregate: what importing a ledger records.
//!
//! A ledger (billing account × billing period) is replaced whole by each import that changes it.
//! The import appends its lines in chunks (`CostLinesRecorded`), then one `CostPeriodImported`
//! that commits them: readers apply a ledger's lines only once its commit is in the log, so a
//! writer that dies half-way leaves nothing visible, and retrying writes the same events again
//! (ids derive from the ledger, its version and its content).

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;
use vtag_domain::{Actor, CommandContext, ResourceId, TenantId};

use crate::charge::ChargeCategory;
use crate::ledger::{Costs, Ledger, PoolLine};

/// Lines per `CostLinesRecorded` (a little more when one resource's lines straddle the limit: a
/// resource's lines of one import are always in one chunk). ~150 KB records, well under broker
/// message limits; a million lines append in about five hundred records.
pub const LINES_PER_CHUNK: usize = 2_000;

#[derive(Debug, Clone, PartialEq)]
pub struct CostEnvelope {
    pub event_id: Uuid,
    pub tenant: TenantId,
    pub ledger_id: Uuid,
    pub import_id: Uuid,
    /// Gapless per ledger, from 1 (chunks and commits alike).
    pub version: u64,
    pub actor: Actor,
    pub causation_id: Uuid,
    pub correlation_id: Uuid,
    pub recorded_at: DateTime<Utc>,
}

/// Cost of one resource on one day, for one charge category and service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceCost {
    pub resource_id: ResourceId,
    pub day: NaiveDate,
    pub category: ChargeCategory,
    pub service: Arc<str>,
    pub costs: Costs,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CostLinesRecorded {
    pub envelope: CostEnvelope,
    /// 0-based position of the chunk in its import.
    pub chunk: u32,
    pub resource_lines: Vec<ResourceCost>,
    pub pool_lines: Vec<PoolLine>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CostPeriodImported {
    pub envelope: CostEnvelope,
    pub provider_name: String,
    pub billing_account_id: String,
    pub billing_account_name: String,
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    pub currency: String,
    /// Hex SHA-256 of the ledger's content ([`Ledger::fingerprint`]).
    pub fingerprint: String,
    /// The file's name as uploaded (for people reading the history).
    pub source: String,
    pub rows: u64,
    pub chunks: u32,
    pub resource_lines: u64,
    pub pool_lines: u64,
    pub resources: u64,
    pub total: Costs,
    pub unallocatable: Costs,
    /// The import this one replaces, if the ledger had one.
    pub replaces: Option<Uuid>,
}

// A few hundred events per import, never stored in bulk: the size difference does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum CostEvent {
    Lines(CostLinesRecorded),
    Imported(CostPeriodImported),
}

impl CostEvent {
    pub fn envelope(&self) -> &CostEnvelope {
        match self {
            Self::Lines(e) => &e.envelope,
            Self::Imported(e) => &e.envelope,
        }
    }
}

/// A tenant's split rules replaced (the cost topic's other record).
#[derive(Debug, Clone, PartialEq)]
pub struct CostSplitsChanged {
    pub event_id: Uuid,
    pub tenant: TenantId,
    /// Gapless per tenant, from 1.
    pub version: u64,
    pub actor: Actor,
    pub causation_id: Uuid,
    pub correlation_id: Uuid,
    pub recorded_at: DateTime<Utc>,
    /// JSON of a [`crate::SplitsDoc`].
    pub document: String,
}

/// One record of the cost topic.
#[allow(clippy::large_enum_variant)] // a few hundred per import, handled one at a time
#[derive(Debug, Clone, PartialEq)]
pub enum CostRecord {
    Ledger(CostEvent),
    Splits(CostSplitsChanged),
}

/// What the log says a ledger is now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerHead {
    pub version: u64,
    pub import_id: Option<Uuid>,
    pub fingerprint: String,
}

impl LedgerHead {
    pub fn evolve(&mut self, event: &CostEvent) {
        self.version = self.version.max(event.envelope().version);
        if let CostEvent::Imported(e) = event {
            self.import_id = Some(e.envelope.import_id);
            self.fingerprint = e.fingerprint.clone();
        }
    }
}

/// A ledger's id: one per tenant, provider, billing account and billing period.
pub fn ledger_id(tenant: &TenantId, ledger: &Ledger) -> Uuid {
    const NAMESPACE: Uuid = Uuid::from_u128(0x5e0b_3d9a_71c2_4f08_b6e4_92a1_0c7d_e353);
    let k = &ledger.key;
    let name = format!("{}\u{1f}{}\u{1f}{}\u{1f}{}", tenant.as_str(), k.provider_name, k.billing_account_id, k.period_start);
    Uuid::new_v5(&NAMESPACE, name.as_bytes())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Splits lines (sorted by resource) into chunks of about [`LINES_PER_CHUNK`], never splitting one
/// resource's lines: a reader can then fold each chunk into per-resource rows on its own. The
/// lines are moved, not copied (a million of them).
fn by_resource(mut lines: Vec<ResourceCost>) -> Vec<Vec<ResourceCost>> {
    let mut sizes = Vec::new();
    let mut start = 0;
    while start < lines.len() {
        let mut end = (start + LINES_PER_CHUNK).min(lines.len());
        while end < lines.len() && lines[end].resource_id == lines[end - 1].resource_id {
            end += 1;
        }
        sizes.push(end - start);
        start = end;
    }
    // Cut from the back: each split moves only the chunk it cuts off.
    let mut chunks: Vec<Vec<ResourceCost>> = sizes
        .iter()
        .rev()
        .map(|size| {
            let at = lines.len() - size;
            lines.split_off(at)
        })
        .collect();
    chunks.reverse();
    chunks
}

/// Decides an import of `ledger` over its `head`: nothing when the log already holds this content
/// (re-importing a file changes nothing), otherwise the chunks and the commit that replace the
/// ledger. `source` names the file.
pub fn decide_import(head: &LedgerHead, tenant: &TenantId, ledger: &Ledger, source: &str, ctx: &CommandContext) -> Vec<CostEvent> {
    let fingerprint = hex(&ledger.fingerprint());
    if head.import_id.is_some() && head.fingerprint == fingerprint {
        return Vec::new();
    }
    let ledger_id = ledger_id(tenant, ledger);
    const IMPORTS: Uuid = Uuid::from_u128(0x0f3a_6c21_d8e4_4b57_9a10_3e6b_c2f8_7d45);
    let import_id = Uuid::new_v5(&IMPORTS, format!("{ledger_id}\u{1f}{}\u{1f}{fingerprint}", head.version).as_bytes());
    let mut version = head.version;
    let mut envelope = |index: u64| {
        version += 1;
        CostEnvelope {
            // From the import, not the command: a retried import appends the very same events.
            event_id: Uuid::new_v5(&import_id, &index.to_be_bytes()),
            tenant: tenant.clone(),
            ledger_id,
            import_id,
            version,
            actor: ctx.actor.clone(),
            causation_id: ctx.command_id,
            correlation_id: ctx.correlation_id,
            recorded_at: ctx.recorded_at,
        }
    };

    // Resource ids are name-based UUIDs (a SHA-1 each): once per resource, not per line.
    let ids: Vec<ResourceId> = ledger
        .resources
        .iter()
        .map(|r| {
            let cloud_id = vtag_domain::CloudResourceId::parse(&r.cloud_id).expect("checked when read");
            ResourceId::derive(tenant, r.provider, &cloud_id)
        })
        .collect();
    let resource_lines: Vec<ResourceCost> = ledger
        .resource_lines
        .iter()
        .map(|l| ResourceCost {
            resource_id: ids[l.resource as usize],
            day: l.day,
            category: l.category,
            service: l.service.clone(),
            costs: l.costs,
        })
        .collect();
    let mut events = Vec::new();
    let mut chunk = 0u32;
    let mut resources = by_resource(resource_lines).into_iter();
    let mut pools = ledger.pool_lines.chunks(LINES_PER_CHUNK);
    loop {
        let (r, p) = (resources.next(), pools.next());
        if r.is_none() && p.is_none() && chunk > 0 {
            break;
        }
        events.push(CostEvent::Lines(CostLinesRecorded {
            envelope: envelope(u64::from(chunk)),
            chunk,
            resource_lines: r.unwrap_or_default(),
            pool_lines: p.unwrap_or_default().to_vec(),
        }));
        chunk += 1;
    }
    events.push(CostEvent::Imported(CostPeriodImported {
        envelope: envelope(u64::from(chunk)),
        provider_name: ledger.key.provider_name.clone(),
        billing_account_id: ledger.key.billing_account_id.clone(),
        billing_account_name: ledger.billing_account_name.clone(),
        period_start: ledger.key.period_start,
        period_end: ledger.period_end,
        currency: ledger.currency.clone(),
        fingerprint,
        source: source.to_owned(),
        rows: ledger.rows,
        chunks: chunk,
        resource_lines: ledger.resource_lines.len() as u64,
        pool_lines: ledger.pool_lines.len() as u64,
        resources: ledger.resources.len() as u64,
        total: ledger.total,
        unallocatable: ledger.unallocatable,
        replaces: head.import_id,
    }));
    events
}
