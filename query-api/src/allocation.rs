//! Cost allocation by virtual tag: each resource's cost goes to the value its virtual tag `key`
//! has (now, or at `as_of`); resources without the key are "untagged"; cost without a resource
//! (fees, support, tax, other providers) is "unallocatable". The groups add up to the imported
//! bill exactly: amounts are summed as integers of 10⁻¹⁰ of the currency, never floats.
//!
//! Which costs: the imports in force (or, with `as_of`, those reported at that instant — committed
//! by then and not yet superseded). Which tags: `virtual_tags` now, or the audit trail at `as_of`.
//! Split rules for the key (in force then) take their pools out of those groups first and share
//! them among values; shares add up to each pool exactly (`vtag_billing::split`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use sqlx::PgPool;
use uuid::Uuid;
use vtag_billing::{largest_remainder, Amount, SplitMethod, SplitRule, SplitsDoc};
use vtag_domain::TenantId;
use vtag_service::Problem;

use crate::cost_cache::{CostCache, MONTH_DAYS};
use crate::state::db_error;
use crate::tag_cache::TagMap;

use crate::tag_cache::FastMap;
type FastSet<K> = HashSet<K, foldhash::fast::RandomState>;

/// The longest range one query may ask for: a bound on work, not on history (any past period can
/// be asked for, a year at a time).
pub const MAX_DAYS: i64 = 366;

#[derive(Debug, Clone, Default)]
pub struct CostFilters {
    pub provider: Option<String>,
    pub account: Option<String>,
    pub region: Option<String>,
    pub resource_type: Option<String>,
    pub service: Option<String>,
    pub charge_category: Option<String>,
    /// Only resources carrying each of these virtual tags (key, value).
    pub tags: Vec<(String, String)>,
}

impl CostFilters {
    /// Filters that select resources: pools (which have none) cannot match them.
    fn select_resources(&self) -> bool {
        self.provider.is_some() || self.account.is_some() || self.region.is_some() || self.resource_type.is_some() || !self.tags.is_empty()
    }
}

#[derive(Debug, Clone)]
pub struct AllocationQuery {
    pub tag_key: String,
    pub from: NaiveDate,
    /// Inclusive.
    pub to: NaiveDate,
    pub filters: CostFilters,
    pub as_of: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Group {
    Value,
    /// Resources without the key.
    Untagged,
    /// Cost without a resource.
    Unallocatable,
}

impl Group {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Value => "value",
            Self::Untagged => "untagged",
            Self::Unallocatable => "unallocatable",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Allocation {
    pub group: Group,
    pub tag_value: Option<String>,
    pub currency: String,
    /// Direct cost plus shares of split pools.
    pub billed: Amount,
    pub effective: Amount,
    /// The part of `billed` / `effective` that came from split pools.
    pub shared_billed: Amount,
    pub shared_effective: Amount,
    pub resource_count: u64,
    /// Every day of the range, in order.
    pub daily: Vec<DailyCost>,
}

#[derive(Debug, Clone, Copy)]
pub struct DailyCost {
    pub date: NaiveDate,
    pub billed: Amount,
    pub effective: Amount,
}

/// A split rule's pool in one currency and where it went.
#[derive(Debug, Clone)]
pub struct SplitApplied {
    pub id: String,
    pub method: SplitMethod,
    pub currency: String,
    pub pool_billed: Amount,
    pub pool_effective: Amount,
    /// False when no value could take a share (the pool stays unallocatable).
    pub shared: bool,
    /// (value, billed, effective), by value.
    pub shares: Vec<(String, Amount, Amount)>,
}

#[derive(Debug, Clone)]
pub struct AllocationReport {
    pub allocations: Vec<Allocation>,
    pub splits: Vec<SplitApplied>,
}

/// One import in force for the query.
#[derive(sqlx::FromRow)]
struct InForce {
    import_id: Uuid,
    currency: String,
}

/// Interned strings (tag values, currencies): the fold runs over hundreds of thousands of rows.
#[derive(Default)]
struct Names {
    names: Vec<String>,
    index: HashMap<String, u32>,
}

impl Names {
    fn id(&mut self, name: &str) -> u32 {
        if let Some(i) = self.index.get(name) {
            return *i;
        }
        self.names.push(name.to_owned());
        self.index.insert(name.to_owned(), self.names.len() as u32 - 1);
        self.names.len() as u32 - 1
    }
}

/// A split rule ready to pick its pool's cost.
struct Pool<'a> {
    rule: &'a SplitRule,
    /// Resources carrying the pool's tag.
    tagged: Option<HashSet<Uuid>>,
}

impl Pool<'_> {
    fn narrows(&self, service: &str, category: &str) -> bool {
        let p = &self.rule.pool;
        p.service.as_deref().is_none_or(|s| s == service) && p.charge_category.as_deref().is_none_or(|c| c.eq_ignore_ascii_case(category))
    }

    fn takes_resource(&self, resource: &Uuid, has_value: bool, service: &str, category: &str) -> bool {
        let p = &self.rule.pool;
        let source = (p.untagged && !has_value) || self.tagged.as_ref().is_some_and(|t| t.contains(resource));
        source && self.narrows(service, category)
    }

    fn takes_unallocatable(&self, service: &str, category: &str) -> bool {
        self.rule.pool.unallocatable && self.narrows(service, category)
    }
}

const NO_VALUE: u32 = u32::MAX;

/// Where a row's cost goes: a split rule's pool, or a group (value, untagged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Pool(usize),
    Group(Group, u32),
}

pub async fn allocate(pool: &PgPool, cache: &CostCache, tenant: &TenantId, q: &AllocationQuery) -> Result<AllocationReport, Problem> {
    let started = std::time::Instant::now();
    let imports = imports_in_force(pool, tenant, q).await?;
    let tags: Arc<TagMap> = match q.as_of {
        None => cache.tags.current(pool, tenant, &q.tag_key).await?,
        Some(at) => Arc::new(TagMap::new(tag_values(pool, tenant, &q.tag_key, Some(at)).await?)),
    };
    let tags_ms = started.elapsed().as_secs_f64() * 1000.0;
    let mut values = Names::default();
    let value_ids: Vec<u32> = tags.values.iter().map(|v| values.id(v)).collect();
    let allowed = allowed_resources(pool, cache, tenant, &q.filters, q.as_of).await?;
    let rules = split_rules(pool, tenant, &q.tag_key, q.as_of).await?;
    let mut pools = Vec::with_capacity(rules.len());
    for rule in &rules {
        let tagged = match &rule.pool.tag {
            Some(t) => Some(carrying(pool, cache, tenant, &t.key, &t.value, q.as_of).await?),
            None => None,
        };
        pools.push(Pool { rule, tagged });
    }
    let days = (q.to - q.from).num_days() as usize + 1;
    let mut currencies = Names::default();
    let mut groups: FastMap<(u32, Group, u32), Acc> = FastMap::default();
    let mut pooled: FastMap<(u32, usize), Acc> = FastMap::default();

    for import in &imports {
        let currency = currencies.id(&import.currency);
        let costs = cache.get(pool, tenant.as_str(), import.import_id).await?;
        let service = q.filters.service.as_ref().map(|s| costs.services.iter().position(|n| n == s));
        let category = q.filters.charge_category.as_ref().map(|c| costs.categories.iter().position(|n| n.eq_ignore_ascii_case(c)));
        if matches!(service, Some(None)) || matches!(category, Some(None)) {
            continue;
        }
        // Each resource's value and admission, looked up once (not per row).
        let resources: Vec<(Option<u32>, bool)> = costs
            .resources
            .iter()
            .map(|r| (tags.value_of.get(r).map(|v| value_ids[*v as usize]), allowed.as_ref().is_none_or(|a| a.contains(r))))
            .collect();
        // Rows come grouped by resource: a resource is counted once per group it lands in.
        let mut counted: Option<(u32, Target)> = None;
        for row in &costs.rows {
            if service.is_some_and(|s| s != Some(row.service as usize)) || category.is_some_and(|c| c != Some(row.category as usize)) {
                continue;
            }
            let Some((first, last)) = overlap(row.month, q.from, q.to) else { continue };
            let (value, admitted) = resources[row.resource as usize];
            if !admitted {
                continue;
            }
            let (service_name, category_name) = (&costs.services[row.service as usize], &costs.categories[row.category as usize]);
            let target = match pools.iter().position(|p| p.takes_resource(&row.resource_id, value.is_some(), service_name, category_name)) {
                Some(split) => Target::Pool(split),
                None => Target::Group(value.map_or(Group::Untagged, |_| Group::Value), value.unwrap_or(NO_VALUE)),
            };
            let a = match target {
                Target::Pool(split) => pooled.entry((currency, split)).or_insert_with(|| Acc::new(days)),
                Target::Group(group, value) => groups.entry((currency, group, value)).or_insert_with(|| Acc::new(days)),
            };
            // The range's index of the month's first day (negative when the month starts earlier).
            let base = (row.month - q.from).num_days();
            let mut any = false;
            for slot in first..=last {
                let i = (base + slot as i64) as usize;
                a.billed[i] += i128::from(row.billed[slot]);
                a.effective[i] += i128::from(row.effective[slot]);
                any |= row.billed[slot] != 0 || row.effective[slot] != 0;
            }
            if any && counted != Some((row.resource, target)) {
                a.resources.insert(row.resource_id);
                counted = Some((row.resource, target));
            }
        }
    }
    let folded_ms = started.elapsed().as_secs_f64() * 1000.0;
    // Cost without a resource cannot match resource filters.
    if !q.filters.select_resources() {
        for line in pool_lines(pool, tenant, &imports, q).await? {
            let currency = currencies.id(&line.currency);
            let a = match pools.iter().position(|p| p.takes_unallocatable(&line.service, &line.category)) {
                Some(split) => pooled.entry((currency, split)).or_insert_with(|| Acc::new(days)),
                None => groups.entry((currency, Group::Unallocatable, NO_VALUE)).or_insert_with(|| Acc::new(days)),
            };
            let i = (line.day - q.from).num_days() as usize;
            a.billed[i] += line.billed.units();
            a.effective[i] += line.effective.units();
        }
    }

    let splits = share_pools(&pools, pooled, &mut groups, &mut values, &currencies, days);
    let mut allocations: Vec<Allocation> = groups
        .into_iter()
        .map(|((currency, group, value), a)| Allocation {
            group,
            tag_value: (group == Group::Value).then(|| values.names[value as usize].clone()),
            currency: currencies.names[currency as usize].clone(),
            billed: Amount::from_units(a.billed.iter().sum()),
            effective: Amount::from_units(a.effective.iter().sum()),
            shared_billed: Amount::from_units(a.shared_billed),
            shared_effective: Amount::from_units(a.shared_effective),
            resource_count: a.resources.len() as u64,
            daily: (0..days)
                .map(|i| DailyCost {
                    date: q.from + Duration::days(i as i64),
                    billed: Amount::from_units(a.billed[i]),
                    effective: Amount::from_units(a.effective[i]),
                })
                .collect(),
        })
        .collect();
    // Largest first; untagged and unallocatable last, where people look for them.
    allocations.sort_by(|a, b| {
        (a.group, &a.currency, std::cmp::Reverse(a.billed), &a.tag_value).cmp(&(b.group, &b.currency, std::cmp::Reverse(b.billed), &b.tag_value))
    });
    tracing::debug!(key = %q.tag_key, tags_ms, folded_ms, total_ms = started.elapsed().as_secs_f64() * 1000.0, groups = allocations.len(), "allocation computed");
    Ok(AllocationReport { allocations, splits })
}

/// Costs per resource and the unallocatable cost, per currency, over the imports in force.
pub struct ResourceCosts {
    pub by_currency: Vec<(String, HashMap<Uuid, i128>)>,
    pub unallocatable: HashMap<String, i128>,
}

/// Each resource's billed cost over the range (no tags, no splits): what coverage weighs by.
pub async fn resource_costs(pool: &PgPool, cache: &CostCache, tenant: &TenantId, q: &AllocationQuery) -> Result<ResourceCosts, Problem> {
    let imports = imports_in_force(pool, tenant, q).await?;
    let mut by_currency: HashMap<String, HashMap<Uuid, i128>> = HashMap::new();
    for import in &imports {
        let costs = cache.get(pool, tenant.as_str(), import.import_id).await?;
        let sums = by_currency.entry(import.currency.clone()).or_default();
        for row in &costs.rows {
            let Some((first, last)) = overlap(row.month, q.from, q.to) else { continue };
            *sums.entry(row.resource_id).or_default() += row.billed[first..=last].iter().map(|d| i128::from(*d)).sum::<i128>();
        }
    }
    let mut unallocatable: HashMap<String, i128> = HashMap::new();
    for line in pool_lines(pool, tenant, &imports, q).await? {
        *unallocatable.entry(line.currency).or_default() += line.billed.units();
    }
    let mut by_currency: Vec<(String, HashMap<Uuid, i128>)> = by_currency.into_iter().collect();
    by_currency.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(ResourceCosts { by_currency, unallocatable })
}

/// Shares every split pool, day by day, among its rule's values (see `vtag_billing::split` for
/// the rounding rule): each day's shares add up to that day's pool exactly.
fn share_pools(
    pools: &[Pool<'_>],
    pooled: FastMap<(u32, usize), Acc>,
    groups: &mut FastMap<(u32, Group, u32), Acc>,
    values: &mut Names,
    currencies: &Names,
    days: usize,
) -> Vec<SplitApplied> {
    let mut pooled: Vec<((u32, usize), Acc)> = pooled.into_iter().collect();
    pooled.sort_by_key(|((currency, split), _)| (*split, *currency));
    // Each value's own cost, before any pool is shared: a later rule's weights (and its default
    // targets) must not include what an earlier rule handed out.
    let own: FastMap<(u32, u32), i128> = groups
        .iter()
        .filter(|((_, g, _), _)| *g == Group::Value)
        .map(|((c, _, v), a)| ((*c, *v), a.billed.iter().sum()))
        .collect();
    let mut applied = Vec::new();
    for ((currency, split), pool) in pooled {
        let rule = pools[split].rule;
        let (targets, weights) = targets(rule, currency, &own, values);
        let mut summary = SplitApplied {
            id: rule.id.clone(),
            method: rule.method,
            currency: currencies.names[currency as usize].clone(),
            pool_billed: Amount::from_units(pool.billed.iter().sum()),
            pool_effective: Amount::from_units(pool.effective.iter().sum()),
            shared: !targets.is_empty(),
            shares: Vec::new(),
        };
        if targets.is_empty() {
            let rest = groups.entry((currency, Group::Unallocatable, NO_VALUE)).or_insert_with(|| Acc::new(days));
            for i in 0..days {
                rest.billed[i] += pool.billed[i];
                rest.effective[i] += pool.effective[i];
            }
            applied.push(summary);
            continue;
        }
        let mut totals = vec![(0i128, 0i128); targets.len()];
        for i in 0..days {
            let billed = largest_remainder(pool.billed[i], &weights);
            let effective = largest_remainder(pool.effective[i], &weights);
            for (t, target) in targets.iter().enumerate() {
                let a = groups.entry((currency, Group::Value, *target)).or_insert_with(|| Acc::new(days));
                a.billed[i] += billed[t];
                a.effective[i] += effective[t];
                a.shared_billed += billed[t];
                a.shared_effective += effective[t];
                totals[t].0 += billed[t];
                totals[t].1 += effective[t];
            }
        }
        summary.shares = targets
            .iter()
            .zip(totals)
            .map(|(t, (b, e))| (values.names[*t as usize].clone(), Amount::from_units(b), Amount::from_units(e)))
            .collect();
        applied.push(summary);
    }
    applied
}

/// The values sharing a pool and their weights, in value order (ties of the rounding go to the
/// first). Proportional weights are each value's own billed cost in the range (negative counts as
/// none); when no value has any, the pool is shared evenly.
fn targets(rule: &SplitRule, currency: u32, own: &FastMap<(u32, u32), i128>, values: &mut Names) -> (Vec<u32>, Vec<i128>) {
    let direct = |v: u32| own.get(&(currency, v)).copied().unwrap_or(0);
    let mut named: Vec<(String, i128)> = match rule.method {
        SplitMethod::Fixed => rule.percentages.iter().map(|(v, p)| (v.clone(), p.amount().map_or(0, |a| a.units()))).collect(),
        SplitMethod::Even | SplitMethod::Proportional => {
            let names: Vec<String> = if rule.to.is_empty() {
                let mut with_cost: Vec<String> =
                    own.keys().filter(|(c, _)| *c == currency).map(|(_, v)| values.names[*v as usize].clone()).collect();
                with_cost.sort();
                with_cost
            } else {
                rule.to.clone()
            };
            names.into_iter().map(|n| (n, 1)).collect()
        }
    };
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named.dedup_by(|a, b| a.0 == b.0);
    let ids: Vec<u32> = named.iter().map(|(n, _)| values.id(n)).collect();
    let mut weights: Vec<i128> = named.iter().map(|(_, w)| *w).collect();
    if rule.method == SplitMethod::Proportional {
        let own: Vec<i128> = ids.iter().map(|v| direct(*v).max(0)).collect();
        if own.iter().any(|w| *w > 0) {
            weights = own;
        }
    }
    if weights.iter().all(|w| *w <= 0) {
        return (Vec::new(), Vec::new());
    }
    (ids, weights)
}

struct Acc {
    billed: Vec<i128>,
    effective: Vec<i128>,
    shared_billed: i128,
    shared_effective: i128,
    resources: FastSet<Uuid>,
}

impl Acc {
    fn new(days: usize) -> Self {
        Self { billed: vec![0; days], effective: vec![0; days], shared_billed: 0, shared_effective: 0, resources: FastSet::default() }
    }
}

/// The day slots (0-based) of `month` within `[from, to]`.
fn overlap(month: NaiveDate, from: NaiveDate, to: NaiveDate) -> Option<(usize, usize)> {
    let month_end = month.checked_add_months(chrono::Months::new(1))? - Duration::days(1);
    if month_end < from || month > to {
        return None;
    }
    let first = from.max(month).day0() as usize;
    let last = (to.min(month_end).day0() as usize).min(MONTH_DAYS - 1);
    Some((first, last))
}

/// Imports with charge days in the range, in force now or as reported at `as_of`.
async fn imports_in_force(pool: &PgPool, tenant: &TenantId, q: &AllocationQuery) -> Result<Vec<InForce>, Problem> {
    sqlx::query_as(
        "SELECT import_id, currency FROM cost_imports
          WHERE tenant = $1 AND first_day <= $3 AND last_day >= $2
            AND CASE WHEN $4::timestamptz IS NULL THEN superseded_at IS NULL
                     ELSE imported_at <= $4 AND (superseded_at IS NULL OR superseded_at > $4) END
          ORDER BY import_id",
    )
    .bind(tenant.as_str())
    .bind(q.from)
    .bind(q.to)
    .bind(q.as_of)
    .fetch_all(pool)
    .await
    .map_err(db_error)
}

/// The values of `key` and the resources carrying each, now or at `as_of` (the audit trail's
/// latest row per resource by then; a removal means no value).
pub async fn tag_values(pool: &PgPool, tenant: &TenantId, key: &str, as_of: Option<DateTime<Utc>>) -> Result<Vec<(String, Vec<Uuid>)>, Problem> {
    // One row per value with its resources as an array: a hundred thousand rows decode several
    // times slower than a dozen arrays holding the same ids.
    let grouped: Result<Vec<(String, Vec<Uuid>)>, sqlx::Error> = match as_of {
        None => {
            sqlx::query_as("SELECT tag_value, array_agg(resource_id) FROM virtual_tags WHERE tenant = $1 AND tag_key = $2 GROUP BY tag_value")
                .bind(tenant.as_str())
                .bind(key)
                .fetch_all(pool)
                .await
        }
        Some(at) => {
            sqlx::query_as(
                "SELECT new_value, array_agg(resource_id) FROM (
                   SELECT DISTINCT ON (resource_id) resource_id, new_value, (new_value IS NULL OR action = 'VirtualTagRemoved') AS removal
                     FROM tag_audit WHERE tenant = $1 AND tag_key = $2 AND recorded_at <= $3
                    ORDER BY resource_id, aggregate_version DESC, change_index DESC) latest
                  WHERE NOT removal GROUP BY new_value",
            )
            .bind(tenant.as_str())
            .bind(key)
            .bind(at)
            .fetch_all(pool)
            .await
        }
    };
    grouped.map_err(db_error)
}

/// The resources carrying `key` = `value` (now or at `as_of`).
async fn carrying(
    pool: &PgPool,
    cache: &CostCache,
    tenant: &TenantId,
    key: &str,
    value: &str,
    as_of: Option<DateTime<Utc>>,
) -> Result<HashSet<Uuid>, Problem> {
    if as_of.is_none() {
        let map = cache.tags.current(pool, tenant, key).await?;
        let Some(v) = map.values.iter().position(|v| v == value) else { return Ok(HashSet::new()) };
        return Ok(map.value_of.iter().filter(|(_, of)| **of as usize == v).map(|(r, _)| *r).collect());
    }
    let groups = tag_values(pool, tenant, key, as_of).await?;
    Ok(groups.into_iter().filter(|(v, _)| v == value).flat_map(|(_, ids)| ids).collect())
}

/// The resources the filters allow (`None`: every resource).
async fn allowed_resources(pool: &PgPool, cache: &CostCache, tenant: &TenantId, f: &CostFilters, as_of: Option<DateTime<Utc>>) -> Result<Option<HashSet<Uuid>>, Problem> {
    let mut allowed: Option<HashSet<Uuid>> = None;
    if f.provider.is_some() || f.account.is_some() || f.region.is_some() || f.resource_type.is_some() {
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "SELECT id FROM resources WHERE tenant = $1
               AND ($2::text IS NULL OR provider = $2) AND ($3::text IS NULL OR account_id = $3)
               AND ($4::text IS NULL OR region = $4) AND ($5::text IS NULL OR resource_type = $5)",
        )
        .bind(tenant.as_str())
        .bind(&f.provider)
        .bind(&f.account)
        .bind(&f.region)
        .bind(&f.resource_type)
        .fetch_all(pool)
        .await
        .map_err(db_error)?;
        allowed = Some(ids.into_iter().collect());
    }
    for (key, value) in &f.tags {
        let with = carrying(pool, cache, tenant, key, value, as_of).await?;
        allowed = Some(match allowed {
            None => with,
            Some(a) => a.intersection(&with).copied().collect(),
        });
    }
    Ok(allowed)
}

struct PoolLine {
    currency: String,
    day: NaiveDate,
    service: String,
    category: String,
    billed: Amount,
    effective: Amount,
}

async fn pool_lines(pool: &PgPool, tenant: &TenantId, imports: &[InForce], q: &AllocationQuery) -> Result<Vec<PoolLine>, Problem> {
    if imports.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = imports.iter().map(|i| i.import_id).collect();
    let rows: Vec<(String, NaiveDate, String, String, String, String)> = sqlx::query_as(
        "SELECT i.currency, p.day, p.service_name, p.charge_category, sum(p.billed_cost)::text, sum(p.effective_cost)::text
           FROM pool_costs p JOIN cost_imports i ON i.tenant = p.tenant AND i.import_id = p.import_id
          WHERE p.tenant = $1 AND p.import_id = ANY($2) AND p.day BETWEEN $3 AND $4
            AND ($5::text IS NULL OR p.service_name = $5) AND ($6::text IS NULL OR lower(p.charge_category) = lower($6))
          GROUP BY i.currency, p.day, p.service_name, p.charge_category",
    )
    .bind(tenant.as_str())
    .bind(&ids)
    .bind(q.from)
    .bind(q.to)
    .bind(&q.filters.service)
    .bind(&q.filters.charge_category)
    .fetch_all(pool)
    .await
    .map_err(db_error)?;
    rows.into_iter()
        .map(|(currency, day, service, category, billed, effective)| {
            let parse = |s: &str| Amount::parse(s).map(|p| p.amount).map_err(|e| Problem::internal(format!("pool sum {s} {e}")));
            Ok(PoolLine { currency, day, service, category, billed: parse(&billed)?, effective: parse(&effective)? })
        })
        .collect()
}

/// The tenant's split rules for `key`, as in force now or at `as_of`.
async fn split_rules(pool: &PgPool, tenant: &TenantId, key: &str, as_of: Option<DateTime<Utc>>) -> Result<Vec<SplitRule>, Problem> {
    let doc: Option<serde_json::Value> = sqlx::query_scalar(
        "SELECT document FROM cost_split_configs
          WHERE tenant = $1 AND ($2::timestamptz IS NULL OR recorded_at <= $2)
          ORDER BY version DESC LIMIT 1",
    )
    .bind(tenant.as_str())
    .bind(as_of)
    .fetch_optional(pool)
    .await
    .map_err(db_error)?;
    let Some(doc) = doc else { return Ok(Vec::new()) };
    let doc: SplitsDoc = serde_json::from_value(doc).map_err(|e| Problem::internal(format!("stored split rules unreadable: {e}")))?;
    Ok(doc.splits.into_iter().filter(|s| s.key == key).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn overlap_clips_a_month_to_the_range() {
        assert_eq!(overlap(d("2026-10-01"), d("2026-10-01"), d("2026-10-31")), Some((0, 30)));
        assert_eq!(overlap(d("2026-10-01"), d("2026-10-15"), d("2026-11-20")), Some((14, 30)));
        assert_eq!(overlap(d("2026-11-01"), d("2026-10-15"), d("2026-11-20")), Some((0, 19)));
        assert_eq!(overlap(d("2026-02-01"), d("2026-01-01"), d("2026-12-31")), Some((0, 27)));
        assert_eq!(overlap(d("2026-09-01"), d("2026-10-01"), d("2026-10-31")), None);
        assert_eq!(overlap(d("2026-12-01"), d("2026-10-01"), d("2026-11-30")), None);
    }
}
