//! A billing file, aggregated into cost ledgers: one per billing account and billing period, the
//! unit a corrected export replaces. Inside a ledger, cost is summed per resource per charge day
//! (and charge category and service) — the grain allocation works at — and cost without a
//! resource (fees, support, tax, credits, other providers' charges) per day, category, service and
//! sub-account, kept as unallocatable pools.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{Datelike, NaiveDate};
use sha2::{Digest, Sha256};
use vtag_domain::Provider;

use crate::amount::Amount;
use crate::charge::{cloud_of, ChargeCategory};

/// BilledCost, EffectiveCost and ListCost of something, in the ledger's currency.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Costs {
    pub billed: Amount,
    pub effective: Amount,
    pub list: Amount,
}

impl Costs {
    pub fn add(&mut self, other: Costs) {
        self.billed += other.billed;
        self.effective += other.effective;
        self.list += other.list;
    }
}

/// Which ledger a row belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LedgerKey {
    /// The FOCUS provider name as written (`AWS`, `Microsoft`, …).
    pub provider_name: String,
    pub billing_account_id: String,
    pub period_start: NaiveDate,
}

/// A resource as its billing rows describe it. Rows are matched to vtag's resources by provider and
/// ResourceId; these attributes describe resources vtag has not observed yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BilledResource {
    pub provider: Provider,
    pub cloud_id: String,
    pub sub_account: String,
    pub region: String,
    pub resource_type: String,
    pub name: String,
    /// The Tags column of the resource's latest charge day (finalized by the provider: inherited
    /// account/project tags included).
    pub tags: BTreeMap<String, String>,
    /// The charge day those tags are from.
    pub tags_as_of: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceLine {
    /// Index into [`Ledger::resources`].
    pub resource: u32,
    pub day: NaiveDate,
    pub category: ChargeCategory,
    /// Shared by every line of the service (hundreds of thousands of lines, a few services).
    pub service: Arc<str>,
    pub costs: Costs,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolLine {
    pub day: NaiveDate,
    pub category: ChargeCategory,
    pub service: String,
    pub sub_account: String,
    /// Why it has no resource: `no resource id`, or `provider <name> has no vtag resources`.
    pub reason: &'static str,
    pub costs: Costs,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ledger {
    pub key: LedgerKey,
    pub period_end: NaiveDate,
    pub billing_account_name: String,
    pub currency: String,
    /// Billing rows folded into this ledger.
    pub rows: u64,
    pub resources: Vec<BilledResource>,
    /// Sorted by resource cloud id, day, category, service.
    pub resource_lines: Vec<ResourceLine>,
    /// Sorted by day, category, service, sub-account.
    pub pool_lines: Vec<PoolLine>,
    pub total: Costs,
    pub unallocatable: Costs,
}

impl Ledger {
    /// A digest of what the ledger says about cost (lines, period, currency), independent of the
    /// file's row order and of how rows were split: importing the same content again is a no-op.
    pub fn fingerprint(&self) -> [u8; 32] {
        let mut h = Buffered::default();
        h.text(&self.key.provider_name);
        h.text(&self.key.billing_account_id);
        h.day(self.key.period_start);
        h.day(self.period_end);
        h.text(&self.currency);
        h.put(&(self.resource_lines.len() as u64).to_le_bytes());
        for l in &self.resource_lines {
            let r = &self.resources[l.resource as usize];
            h.text(r.provider.as_str());
            h.text(&r.cloud_id);
            h.day(l.day);
            h.text(l.category.as_str());
            h.text(&l.service);
            h.costs(&l.costs);
        }
        h.put(&(self.pool_lines.len() as u64).to_le_bytes());
        for l in &self.pool_lines {
            h.day(l.day);
            h.text(l.category.as_str());
            h.text(&l.service);
            h.text(&l.sub_account);
            h.text(l.reason);
            h.costs(&l.costs);
        }
        h.finish()
    }
}

/// SHA-256 fed in 64 KiB blocks: a million lines are tens of millions of tiny fields, and a call
/// into the hasher per field cost more than the hashing.
#[derive(Default)]
struct Buffered {
    hasher: Sha256,
    buf: Vec<u8>,
}

impl Buffered {
    fn put(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= 1 << 16 {
            self.hasher.update(&self.buf);
            self.buf.clear();
        }
    }

    fn text(&mut self, s: &str) {
        self.put(&(s.len() as u64).to_le_bytes());
        self.put(s.as_bytes());
    }

    fn day(&mut self, d: NaiveDate) {
        self.put(&d.num_days_from_ce().to_le_bytes());
    }

    fn costs(&mut self, c: &Costs) {
        for a in [c.billed, c.effective, c.list] {
            self.put(&a.units().to_le_bytes());
        }
    }

    fn finish(mut self) -> [u8; 32] {
        self.hasher.update(&self.buf);
        self.hasher.finalize().into()
    }
}

/// Maps looked up on every row: a fast, non-cryptographic hash (the keys come from the tenant's
/// own file, so flooding is the tenant's own problem, and a bad file is refused anyway).
pub(crate) type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Folds rows into ledgers. Interns what repeats on every row (resource ids, services) so a
/// million-row file aggregates in memory proportional to its distinct lines.
#[derive(Default)]
pub(crate) struct LedgerBuilder {
    pub(crate) key: Option<LedgerKey>,
    pub(crate) period_end: Option<NaiveDate>,
    pub(crate) billing_account_name: String,
    pub(crate) currency: String,
    pub(crate) rows: u64,
    /// vtag's cloud for the ledger's provider (none: its costs are pools).
    pub(crate) cloud: Option<Provider>,
    pub(crate) resources: Vec<BilledResource>,
    resource_index: FastMap<String, u32>,
    /// Raw Tags text per resource, to parse it only when it changes.
    pub(crate) raw_tags: Vec<String>,
    services: Vec<String>,
    service_index: FastMap<String, u32>,
    lines: FastMap<(u32, NaiveDate, ChargeCategory, u32), Costs>,
    pools: FastMap<(NaiveDate, ChargeCategory, u32, String, &'static str), Costs>,
}

impl LedgerBuilder {
    pub(crate) fn new(key: LedgerKey) -> Self {
        Self { cloud: cloud_of(&key.provider_name), key: Some(key), ..Self::default() }
    }

    pub(crate) fn service(&mut self, name: &str) -> u32 {
        if let Some(i) = self.service_index.get(name) {
            return *i;
        }
        let i = self.services.len() as u32;
        self.services.push(name.to_owned());
        self.service_index.insert(name.to_owned(), i);
        i
    }

    /// The resource's slot, and whether it is new to this ledger.
    pub(crate) fn resource(&mut self, cloud_id: &str, make: impl FnOnce() -> BilledResource) -> (u32, bool) {
        if let Some(i) = self.resource_index.get(cloud_id) {
            return (*i, false);
        }
        let i = self.resources.len() as u32;
        self.resources.push(make());
        self.raw_tags.push(String::new());
        self.resource_index.insert(cloud_id.to_owned(), i);
        (i, true)
    }

    /// Adds to the resource's line; `false` when a component of the line's running sum leaves
    /// [`Amount::LINE_LIMIT`].
    pub(crate) fn add_line(&mut self, resource: u32, day: NaiveDate, category: ChargeCategory, service: u32, costs: Costs) -> bool {
        let line = self.lines.entry((resource, day, category, service)).or_default();
        line.add(costs);
        [line.billed, line.effective, line.list].iter().all(|a| a.units().unsigned_abs() <= Amount::LINE_LIMIT.units() as u128)
    }

    pub(crate) fn add_pool(
        &mut self,
        day: NaiveDate,
        category: ChargeCategory,
        service: u32,
        sub_account: &str,
        reason: &'static str,
        costs: Costs,
    ) {
        self.pools.entry((day, category, service, sub_account.to_owned(), reason)).or_default().add(costs);
    }

    pub(crate) fn finish(self) -> Ledger {
        let resources = self.resources;
        // Sorted by ranks, not by the strings: the same order, without comparing ids character
        // by character a million times.
        let resource_rank = ranks(resources.iter().map(|r| r.cloud_id.as_str()));
        let service_rank = ranks(self.services.iter().map(String::as_str));
        let mut keyed: Vec<((u32, NaiveDate, ChargeCategory, u32), Costs)> = self.lines.into_iter().collect();
        keyed.sort_unstable_by_key(|((resource, day, category, service), _)| {
            (resource_rank[*resource as usize], *day, *category, service_rank[*service as usize])
        });
        let shared: Vec<Arc<str>> = self.services.iter().map(|s| Arc::from(s.as_str())).collect();
        let resource_lines: Vec<ResourceLine> = keyed
            .into_iter()
            .map(|((resource, day, category, service), costs)| ResourceLine {
                resource,
                day,
                category,
                service: shared[service as usize].clone(),
                costs,
            })
            .collect();
        let services = self.services;
        let mut pool_lines: Vec<PoolLine> = self
            .pools
            .into_iter()
            .map(|((day, category, service, sub_account, reason), costs)| PoolLine {
                day,
                category,
                service: services[service as usize].clone(),
                sub_account,
                reason,
                costs,
            })
            .collect();
        pool_lines.sort_unstable_by(|a, b| {
            (a.day, a.category, &a.service, &a.sub_account, a.reason).cmp(&(b.day, b.category, &b.service, &b.sub_account, b.reason))
        });
        let mut total = Costs::default();
        let mut unallocatable = Costs::default();
        for l in &resource_lines {
            total.add(l.costs);
        }
        for l in &pool_lines {
            total.add(l.costs);
            unallocatable.add(l.costs);
        }
        Ledger {
            key: self.key.expect("a ledger is created by its first row"),
            period_end: self.period_end.expect("set with the key"),
            billing_account_name: self.billing_account_name,
            currency: self.currency,
            rows: self.rows,
            resources,
            resource_lines,
            pool_lines,
            total,
            unallocatable,
        }
    }
}

/// Each item's position in sorted order (items are distinct).
fn ranks<'a>(items: impl Iterator<Item = &'a str>) -> Vec<u32> {
    let mut order: Vec<(u32, &str)> = items.enumerate().map(|(i, s)| (i as u32, s)).collect();
    order.sort_unstable_by(|a, b| a.1.cmp(b.1));
    let mut rank = vec![0u32; order.len()];
    for (r, (i, _)) in order.into_iter().enumerate() {
        rank[i as usize] = r as u32;
    }
    rank
}
