//! Cost allocation by virtual tag: each resource's cost goes to the value its virtual tag `key`
//! has (now, or at `as_of`); resources without the key are "untagged"; cost without a resource
//! (fees, support, tax, other providers) is "unallocatable". The groups add up to the imported
//! bill exactly: amounts are summed as integers of 10⁻¹⁰ of the currency, never floats.
//!
//! Which costs: the imports in force (or, with `as_of`, those reported at that instant — committed
//! by then and not yet superseded). Which tags: `virtual_tags` now, or the audit trail at `as_of`.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use sqlx::PgPool;
use uuid::Uuid;
use vtag_billing::Amount;
use vtag_domain::TenantId;
use vtag_service::Problem;

use crate::cost_cache::{CostCache, MONTH_DAYS};
use crate::state::db_error;

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
    pub billed: Amount,
    pub effective: Amount,
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

/// One import in force for the query.
#[derive(sqlx::FromRow)]
struct InForce {
    import_id: Uuid,
    currency: String,
}

pub async fn allocate(pool: &PgPool, cache: &CostCache, tenant: &TenantId, q: &AllocationQuery) -> Result<Vec<Allocation>, Problem> {
    let imports = imports_in_force(pool, tenant, q).await?;
    let values = tag_values(pool, tenant, &q.tag_key, q.as_of).await?;
    let allowed = allowed_resources(pool, tenant, &q.filters, q.as_of).await?;
    let days = (q.to - q.from).num_days() as usize + 1;

    // Groups keyed by (currency, group, value index); values interned to keep the fold cheap.
    let mut names: Vec<&str> = Vec::new();
    let mut index: HashMap<&str, u32> = HashMap::new();
    let value_of: HashMap<Uuid, u32> = values
        .iter()
        .map(|(r, v)| {
            let i = *index.entry(v.as_str()).or_insert_with(|| {
                names.push(v.as_str());
                names.len() as u32 - 1
            });
            (*r, i)
        })
        .collect();
    let mut acc: HashMap<(String, Group, u32), Acc> = HashMap::new();
    for import in &imports {
        let costs = cache.get(pool, tenant.as_str(), import.import_id).await?;
        let service = q.filters.service.as_ref().map(|s| costs.services.iter().position(|n| n == s));
        let category = q.filters.charge_category.as_ref().map(|c| costs.categories.iter().position(|n| n.eq_ignore_ascii_case(c)));
        if matches!(service, Some(None)) || matches!(category, Some(None)) {
            continue;
        }
        for row in &costs.rows {
            if service.is_some_and(|s| s != Some(row.service as usize)) || category.is_some_and(|c| c != Some(row.category as usize)) {
                continue;
            }
            let Some((first, last)) = overlap(row.month, q.from, q.to) else { continue };
            if allowed.as_ref().is_some_and(|a| !a.contains(&row.resource_id)) {
                continue;
            }
            let key = match value_of.get(&row.resource_id) {
                Some(v) => (Group::Value, *v),
                None => (Group::Untagged, u32::MAX),
            };
            let a = acc.entry((import.currency.clone(), key.0, key.1)).or_insert_with(|| Acc::new(days));
            let mut any = false;
            for slot in first..=last {
                let day = row.month + Duration::days(slot as i64);
                let i = (day - q.from).num_days() as usize;
                a.billed[i] += i128::from(row.billed[slot]);
                a.effective[i] += i128::from(row.effective[slot]);
                any |= row.billed[slot] != 0 || row.effective[slot] != 0;
            }
            if any {
                a.resources.insert(row.resource_id);
            }
        }
    }
    if !q.filters.select_resources() {
        for (currency, day, billed, effective) in pools(pool, tenant, &imports, q).await? {
            let a = acc.entry((currency, Group::Unallocatable, u32::MAX)).or_insert_with(|| Acc::new(days));
            let i = (day - q.from).num_days() as usize;
            a.billed[i] += billed.units();
            a.effective[i] += effective.units();
        }
    }

    let mut out: Vec<Allocation> = acc
        .into_iter()
        .map(|((currency, group, value), a)| Allocation {
            group,
            tag_value: (group == Group::Value).then(|| names[value as usize].to_owned()),
            currency,
            billed: Amount::from_units(a.billed.iter().sum()),
            effective: Amount::from_units(a.effective.iter().sum()),
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
    out.sort_by(|a, b| (a.group, &a.currency, std::cmp::Reverse(a.billed), &a.tag_value).cmp(&(b.group, &b.currency, std::cmp::Reverse(b.billed), &b.tag_value)));
    Ok(out)
}

struct Acc {
    billed: Vec<i128>,
    effective: Vec<i128>,
    resources: HashSet<Uuid>,
}

impl Acc {
    fn new(days: usize) -> Self {
        Self { billed: vec![0; days], effective: vec![0; days], resources: HashSet::new() }
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

/// Imports whose billing period is near the range (charges fall inside their billing period, or
/// close to it for late corrections), in force now or as reported at `as_of`.
async fn imports_in_force(pool: &PgPool, tenant: &TenantId, q: &AllocationQuery) -> Result<Vec<InForce>, Problem> {
    sqlx::query_as(
        "SELECT import_id, currency FROM cost_imports
          WHERE tenant = $1 AND period_start <= $3 + 31 AND period_end > $2 - 31
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

/// Each resource's value of `key`, now or at `as_of` (the audit trail's latest row per resource
/// by then; a removal means no value).
pub async fn tag_values(pool: &PgPool, tenant: &TenantId, key: &str, as_of: Option<DateTime<Utc>>) -> Result<Vec<(Uuid, String)>, Problem> {
    let rows = match as_of {
        None => {
            sqlx::query_as("SELECT resource_id, tag_value FROM virtual_tags WHERE tenant = $1 AND tag_key = $2")
                .bind(tenant.as_str())
                .bind(key)
                .fetch_all(pool)
                .await
        }
        Some(at) => {
            sqlx::query_as(
                "SELECT resource_id, new_value FROM (
                   SELECT DISTINCT ON (resource_id) resource_id, new_value, (new_value IS NULL OR action = 'VirtualTagRemoved') AS removal
                     FROM tag_audit WHERE tenant = $1 AND tag_key = $2 AND recorded_at <= $3
                    ORDER BY resource_id, aggregate_version DESC, change_index DESC) latest
                  WHERE NOT removal",
            )
            .bind(tenant.as_str())
            .bind(key)
            .bind(at)
            .fetch_all(pool)
            .await
        }
    };
    rows.map_err(db_error)
}

/// The resources the filters allow (`None`: every resource).
async fn allowed_resources(pool: &PgPool, tenant: &TenantId, f: &CostFilters, as_of: Option<DateTime<Utc>>) -> Result<Option<HashSet<Uuid>>, Problem> {
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
        let with: HashSet<Uuid> =
            tag_values(pool, tenant, key, as_of).await?.into_iter().filter(|(_, v)| v == value).map(|(r, _)| r).collect();
        allowed = Some(match allowed {
            None => with,
            Some(a) => a.intersection(&with).copied().collect(),
        });
    }
    Ok(allowed)
}

async fn pools(pool: &PgPool, tenant: &TenantId, imports: &[InForce], q: &AllocationQuery) -> Result<Vec<(String, NaiveDate, Amount, Amount)>, Problem> {
    if imports.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = imports.iter().map(|i| i.import_id).collect();
    let rows: Vec<(String, NaiveDate, String, String)> = sqlx::query_as(
        "SELECT i.currency, p.day, sum(p.billed_cost)::text, sum(p.effective_cost)::text
           FROM pool_costs p JOIN cost_imports i ON i.tenant = p.tenant AND i.import_id = p.import_id
          WHERE p.tenant = $1 AND p.import_id = ANY($2) AND p.day BETWEEN $3 AND $4
            AND ($5::text IS NULL OR p.service_name = $5) AND ($6::text IS NULL OR lower(p.charge_category) = lower($6))
          GROUP BY i.currency, p.day",
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
        .map(|(currency, day, billed, effective)| {
            let parse = |s: &str| Amount::parse(s).map(|p| p.amount).map_err(|e| Problem::internal(format!("pool sum {s} {e}")));
            Ok((currency, day, parse(&billed)?, parse(&effective)?))
        })
        .collect()
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
