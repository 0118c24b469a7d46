//! Cost reads: allocation by virtual tag (`GET /api/v1/costs/allocation`, the REST twin of
//! GraphQL's `costAllocation`) and the import history (`GET /api/v1/costs/imports[/{id}]`).

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use vtag_domain::{Provider, TagKey, TagValue, TenantId};
use vtag_service::{Caller, FieldError, Problem, Role};

use crate::allocation::{self, Allocation, AllocationQuery, AllocationReport, CostFilters, MAX_DAYS};
use vtag_billing::SplitMethod;
use crate::consistency::{self, ConsistencyToken};
use crate::rest::present;
use crate::rfc3339;
use crate::state::{db_error, AppState};

#[derive(Debug, Deserialize)]
pub struct AllocationParams {
    tag_key: Option<String>,
    from: Option<String>,
    to: Option<String>,
    provider: Option<String>,
    account: Option<String>,
    region: Option<String>,
    resource_type: Option<String>,
    service: Option<String>,
    charge_category: Option<String>,
    /// `key=value` pairs, comma-separated: only resources carrying every one of these tags.
    tags: Option<String>,
    as_of: Option<String>,
}

/// Raw inputs of an allocation query, as REST and GraphQL both receive them.
#[derive(Debug, Default)]
pub struct AllocationInput {
    pub tag_key: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub filters: CostFilters,
    pub tags: Vec<(String, String)>,
    pub as_of: Option<DateTime<Utc>>,
}

/// A required `YYYY-MM-DD` parameter (its problem recorded in `errors`).
pub(crate) fn date(field: &str, raw: Option<String>, errors: &mut Vec<FieldError>) -> Option<NaiveDate> {
    match present(raw) {
        None => {
            errors.push(FieldError::new(field, "required", format!("{field} is required (YYYY-MM-DD)")));
            None
        }
        Some(raw) => NaiveDate::parse_from_str(&raw, "%Y-%m-%d").map_err(|_| {
            errors.push(FieldError::new(field, "date", format!("'{raw}' is not a date; use YYYY-MM-DD")));
        }).ok(),
    }
}

/// Checks every input (reporting every broken one at once) into a query.
pub fn check(input: AllocationInput) -> Result<AllocationQuery, Problem> {
    let mut errors = Vec::new();
    let tag_key = match present(input.tag_key) {
        None => {
            errors.push(FieldError::new("tag_key", "required", "tag_key is required: the virtual tag key to allocate by"));
            String::new()
        }
        Some(k) => match TagKey::parse(&k) {
            Ok(k) => k.as_str().to_owned(),
            Err(e) => {
                errors.push(FieldError::new("tag_key", e.rule, e.message));
                String::new()
            }
        },
    };
    let from = date("from", input.from, &mut errors);
    let to = date("to", input.to, &mut errors);
    if let (Some(from), Some(to)) = (from, to) {
        if to < from {
            errors.push(FieldError::new("to", "range", "to must not be before from"));
        } else if (to - from).num_days() + 1 > MAX_DAYS {
            errors.push(FieldError::new("to", "range", format!("a query covers at most {MAX_DAYS} days; ask for a year at a time")));
        }
    }
    let mut filters = input.filters;
    if let Some(p) = filters.provider.take().and_then(|p| present(Some(p))) {
        match Provider::parse(&p) {
            Ok(p) => filters.provider = Some(p.as_str().to_owned()),
            Err(e) => errors.push(FieldError::new("provider", e.rule, e.message)),
        }
    }
    if let Some(c) = filters.charge_category.take().and_then(|c| present(Some(c))) {
        match vtag_billing::ChargeCategory::parse(&c) {
            Some(c) => filters.charge_category = Some(c.as_str().to_owned()),
            None => errors.push(FieldError::new("charge_category", "one_of", "must be one of Usage, Purchase, Tax, Credit, Adjustment")),
        }
    }
    for (i, (k, v)) in input.tags.into_iter().enumerate() {
        match (TagKey::parse(k.trim()), TagValue::parse(v.trim())) {
            (Ok(k), Ok(v)) => filters.tags.push((k.as_str().to_owned(), v.as_str().to_owned())),
            (Err(e), _) | (_, Err(e)) => errors.push(FieldError::new(format!("tags[{i}]"), e.rule, e.message)),
        }
    }
    if !errors.is_empty() {
        return Err(Problem::invalid(errors));
    }
    Ok(AllocationQuery { tag_key, from: from.expect("checked"), to: to.expect("checked"), filters, as_of: input.as_of })
}

impl AllocationParams {
    fn input(self) -> Result<AllocationInput, Problem> {
        let mut errors = Vec::new();
        let as_of = present(self.as_of).and_then(|raw| {
            let t = rfc3339::parse(&raw);
            if t.is_none() {
                errors.push(FieldError::new("as_of", "rfc3339", "must be an RFC 3339 time, e.g. 2025-11-17T10:00:00Z"));
            }
            t
        });
        let mut tags = Vec::new();
        for (i, pair) in present(self.tags).iter().flat_map(|t| t.split(',')).enumerate() {
            match pair.split_once('=') {
                Some((k, v)) => tags.push((k.to_owned(), v.to_owned())),
                None => errors.push(FieldError::new(format!("tags[{i}]"), "format", "each tag filter is key=value")),
            }
        }
        if !errors.is_empty() {
            return Err(Problem::invalid(errors));
        }
        Ok(AllocationInput {
            tag_key: self.tag_key,
            from: self.from,
            to: self.to,
            filters: CostFilters {
                provider: self.provider,
                account: present(self.account),
                region: present(self.region),
                resource_type: present(self.resource_type),
                service: present(self.service),
                charge_category: self.charge_category,
                tags: Vec::new(),
            },
            tags,
            as_of,
        })
    }
}

#[derive(Serialize)]
pub struct AllocationBody {
    tag_key: String,
    from: NaiveDate,
    to: NaiveDate,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "rfc3339::serialize_opt")]
    as_of: Option<DateTime<Utc>>,
    allocations: Vec<AllocationEntry>,
    /// Per currency: the whole bill for the range, and how much of it is not allocated to a value.
    totals: Vec<CurrencyTotal>,
    /// The split rules applied: each pool and its shares.
    splits: Vec<SplitEntry>,
}

#[derive(Serialize)]
struct SplitEntry {
    id: String,
    method: SplitMethod,
    currency: String,
    pool_billed_cost: String,
    pool_effective_cost: String,
    /// False when no value could take a share: the pool stays unallocatable.
    shared: bool,
    shares: Vec<ShareEntry>,
}

#[derive(Serialize)]
struct ShareEntry {
    tag_value: String,
    billed_cost: String,
    effective_cost: String,
}

#[derive(Serialize)]
struct AllocationEntry {
    /// The tag's value; null for the untagged and unallocatable groups.
    tag_value: Option<String>,
    /// `value`, `untagged` (resources without the key) or `unallocatable` (cost without a resource).
    group: &'static str,
    currency: String,
    /// BilledCost, exact decimal text (the seed's totalCost).
    total_cost: String,
    billed_cost: String,
    effective_cost: String,
    /// The part of billed_cost / effective_cost shared to this value by split rules.
    shared_billed_cost: String,
    shared_effective_cost: String,
    resource_count: u64,
    breakdown: Vec<DayEntry>,
}

#[derive(Serialize)]
struct DayEntry {
    date: NaiveDate,
    cost: String,
    effective_cost: String,
}

#[derive(Serialize)]
struct CurrencyTotal {
    currency: String,
    billed_cost: String,
    effective_cost: String,
    unallocated_billed_cost: String,
    unallocated_effective_cost: String,
}

fn body(q: &AllocationQuery, report: AllocationReport) -> AllocationBody {
    let allocations: Vec<Allocation> = report.allocations;
    let mut totals: Vec<CurrencyTotal> = Vec::new();
    let mut sums: std::collections::BTreeMap<&str, [vtag_billing::Amount; 4]> = Default::default();
    for a in &allocations {
        let s = sums.entry(a.currency.as_str()).or_default();
        s[0] += a.billed;
        s[1] += a.effective;
        if a.group != allocation::Group::Value {
            s[2] += a.billed;
            s[3] += a.effective;
        }
    }
    for (currency, s) in sums {
        totals.push(CurrencyTotal {
            currency: currency.to_owned(),
            billed_cost: s[0].to_string(),
            effective_cost: s[1].to_string(),
            unallocated_billed_cost: s[2].to_string(),
            unallocated_effective_cost: s[3].to_string(),
        });
    }
    AllocationBody {
        tag_key: q.tag_key.clone(),
        from: q.from,
        to: q.to,
        as_of: q.as_of,
        totals,
        splits: report
            .splits
            .into_iter()
            .map(|s| SplitEntry {
                id: s.id,
                method: s.method,
                currency: s.currency,
                pool_billed_cost: s.pool_billed.to_string(),
                pool_effective_cost: s.pool_effective.to_string(),
                shared: s.shared,
                shares: s
                    .shares
                    .into_iter()
                    .map(|(v, b, e)| ShareEntry { tag_value: v, billed_cost: b.to_string(), effective_cost: e.to_string() })
                    .collect(),
            })
            .collect(),
        allocations: allocations
            .into_iter()
            .map(|a| AllocationEntry {
                tag_value: a.tag_value,
                group: a.group.as_str(),
                currency: a.currency,
                total_cost: a.billed.to_string(),
                billed_cost: a.billed.to_string(),
                effective_cost: a.effective.to_string(),
                shared_billed_cost: a.shared_billed.to_string(),
                shared_effective_cost: a.shared_effective.to_string(),
                resource_count: a.resource_count,
                breakdown: a
                    .daily
                    .into_iter()
                    .map(|d| DayEntry { date: d.date, cost: d.billed.to_string(), effective_cost: d.effective.to_string() })
                    .collect(),
            })
            .collect(),
    }
}

/// `GET /api/v1/costs/allocation?tag_key=team&from=2026-10-01&to=2026-10-31[&provider=…&tags=environment=production&as_of=…]`
#[tracing::instrument(skip_all, fields(tenant = %caller.tenant))]
pub async fn allocation(
    State(state): State<AppState>,
    caller: Caller,
    token: ConsistencyToken,
    params: Result<Query<AllocationParams>, QueryRejection>,
) -> Result<Json<AllocationBody>, Problem> {
    caller.require(Role::Viewer)?;
    let Query(params) = params.map_err(|e| Problem::malformed(format!("the query string could not be read: {e}")))?;
    let query = check(params.input()?)?;
    consistency::wait_until_visible(&state.pool, &state.consistency, &token).await?;
    let report = allocation::allocate(&state.pool, &state.costs, &caller.tenant, &query).await?;
    Ok(Json(body(&query, report)))
}

#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct ImportBody {
    import_id: Uuid,
    ledger_id: Uuid,
    version: i64,
    provider_name: String,
    billing_account_id: String,
    billing_account_name: String,
    period_start: NaiveDate,
    period_end: NaiveDate,
    currency: String,
    source: String,
    rows: i64,
    resources: i64,
    billed_cost: String,
    effective_cost: String,
    list_cost: String,
    unallocatable_billed_cost: String,
    replaces: Option<Uuid>,
    imported_by: String,
    #[serde(serialize_with = "rfc3339::serialize")]
    imported_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "rfc3339::serialize_opt")]
    superseded_at: Option<DateTime<Utc>>,
    superseded_by: Option<Uuid>,
}

const IMPORT_COLUMNS: &str = "import_id, ledger_id, version, provider_name, billing_account_id, billing_account_name, period_start,
    period_end, currency, source, rows, resources, billed_cost::text AS billed_cost, effective_cost::text AS effective_cost,
    list_cost::text AS list_cost, unallocatable_billed_cost::text AS unallocatable_billed_cost, replaces, imported_by,
    imported_at, superseded_at, superseded_by";

/// Postgres prints NUMERIC(38,10) with all ten digits; clients get the exact value without padding.
fn tidy(mut b: ImportBody) -> ImportBody {
    for s in [&mut b.billed_cost, &mut b.effective_cost, &mut b.list_cost, &mut b.unallocatable_billed_cost] {
        if let Ok(p) = vtag_billing::Amount::parse(s) {
            *s = p.amount.to_string();
        }
    }
    b
}

pub async fn find_import(pool: &sqlx::PgPool, tenant: &TenantId, id: Uuid) -> Result<Option<ImportBody>, Problem> {
    let sql = format!("SELECT {IMPORT_COLUMNS} FROM cost_imports WHERE tenant = $1 AND import_id = $2");
    let row: Option<ImportBody> = sqlx::query_as(&sql).bind(tenant.as_str()).bind(id).fetch_optional(pool).await.map_err(db_error)?;
    Ok(row.map(tidy))
}

/// `GET /api/v1/costs/imports/{id}`: 404 until the projector has committed the import.
pub async fn import(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<Json<ImportBody>, Problem> {
    caller.require(Role::Viewer)?;
    let Path(id) = id.map_err(|_| Problem::invalid_field("id", "uuid", "the import id is a UUID"))?;
    find_import(&state.pool, &caller.tenant, id)
        .await?
        .map(Json)
        .ok_or_else(|| Problem::not_found(format!("no import {id} (an import appears once the read model has folded its commit)")))
}

#[derive(Debug, Deserialize)]
pub struct ImportsParams {
    /// `true`: also imports since replaced by a corrected file.
    all: Option<bool>,
}

#[derive(Serialize)]
pub struct ImportsBody {
    imports: Vec<ImportBody>,
}

/// `GET /api/v1/costs/imports[?all=true]`: the imports in force (newest period first).
pub async fn imports(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<ImportsParams>, QueryRejection>,
) -> Result<Json<ImportsBody>, Problem> {
    caller.require(Role::Viewer)?;
    let Query(params) = params.map_err(|e| Problem::malformed(format!("the query string could not be read: {e}")))?;
    let sql = format!(
        "SELECT {IMPORT_COLUMNS} FROM cost_imports WHERE tenant = $1 AND ($2 OR superseded_at IS NULL)
          ORDER BY period_start DESC, provider_name, billing_account_id, version DESC LIMIT 1000"
    );
    let rows: Vec<ImportBody> =
        sqlx::query_as(&sql).bind(caller.tenant.as_str()).bind(params.all.unwrap_or(false)).fetch_all(&state.pool).await.map_err(db_error)?;
    Ok(Json(ImportsBody { imports: rows.into_iter().map(tidy).collect() }))
}

#[derive(Serialize)]
pub struct SplitsBody {
    /// 0 until the first change.
    version: i64,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "rfc3339::serialize_opt")]
    changed_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    changed_by: Option<String>,
    splits: serde_json::Value,
}

/// `GET /api/v1/cost-splits`: the tenant's shared-cost split rules in force.
pub async fn splits(State(state): State<AppState>, caller: Caller) -> Result<Json<SplitsBody>, Problem> {
    caller.require(Role::Viewer)?;
    let row: Option<(i64, serde_json::Value, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT version, document, actor, recorded_at FROM cost_split_configs WHERE tenant = $1 ORDER BY version DESC LIMIT 1",
    )
    .bind(caller.tenant.as_str())
    .fetch_optional(&state.pool)
    .await
    .map_err(db_error)?;
    Ok(Json(match row {
        Some((version, doc, actor, at)) => SplitsBody {
            version,
            changed_at: Some(at),
            changed_by: Some(actor),
            splits: doc.get("splits").cloned().unwrap_or_else(|| serde_json::json!([])),
        },
        None => SplitsBody { version: 0, changed_at: None, changed_by: None, splits: serde_json::json!([]) },
    }))
}
