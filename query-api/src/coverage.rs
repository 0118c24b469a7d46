//! Tag coverage as a share of cost, not only of resources: for each key (by default the tag
//! schema's critical keys), how much of the bill carries it at each stage of the pipeline —
//!
//! - `native_clean`: the resource's own native tag already had the canonical key and value;
//! - `normalized`: a native tag supplied it once normalized (aliases, value spellings, case);
//! - `with_rules`: native tags or business rules supplied it (defaults excluded: a default is a
//!   placeholder, not knowledge);
//! - `all_sources`: any value in force, people's and defaults included.
//!
//! Each stage counts the source of the value in force, so a native value a person overrode counts
//! under `all_sources` only. Shares are of the resources' cost in the range; cost without a
//! resource (fees, tax) can never carry a tag and is reported apart.


use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;
use vtag_billing::Amount;
use vtag_domain::{TagKey, TenantId};
use vtag_service::{Caller, FieldError, Problem, Role};

use crate::allocation::{self, AllocationQuery, CostFilters, MAX_DAYS};
use crate::cost_routes;
use crate::cost_cache::CostCache;
use crate::state::{db_error, AppState};

/// The seed taxonomy's critical keys, when the tenant's schema names none.
const SEED_CRITICAL: [&str; 3] = ["environment", "cost-center", "owner"];

#[derive(Debug, Deserialize)]
pub struct CoverageParams {
    from: Option<String>,
    to: Option<String>,
    /// Comma-separated keys; default: the schema's critical keys.
    keys: Option<String>,
}

#[derive(Serialize)]
pub struct CoverageBody {
    from: NaiveDate,
    to: NaiveDate,
    currencies: Vec<CurrencyCoverage>,
}

#[derive(Serialize)]
struct CurrencyCoverage {
    currency: String,
    /// The resources' cost in the range (what shares are of).
    resource_cost: String,
    /// Cost without a resource (fees, support, tax): never taggable.
    unallocatable_cost: String,
    resources: u64,
    keys: Vec<KeyCoverage>,
}

#[derive(Serialize)]
struct KeyCoverage {
    key: String,
    native_clean: Stage,
    normalized: Stage,
    with_rules: Stage,
    all_sources: Stage,
}

#[derive(Serialize, Default)]
struct Stage {
    cost: String,
    /// Percent of `resource_cost`, to two decimals.
    cost_share: f64,
    resources: u64,
    /// Percent of the billed resources, to two decimals.
    resource_share: f64,
}

#[derive(Default, Clone, Copy)]
struct Tally {
    cost: i128,
    resources: u64,
}

/// How a resource's value of a key came to be, as `virtual_tags` records it.
#[derive(sqlx::FromRow)]
struct Source {
    resource_id: Uuid,
    origin: Option<String>,
    key_mapping: Option<String>,
    value_mapping: Option<String>,
}

/// `GET /api/v1/costs/coverage?from=…&to=…[&keys=environment,owner]`
pub async fn coverage(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<CoverageParams>, QueryRejection>,
) -> Result<Json<CoverageBody>, Problem> {
    caller.require(Role::Viewer)?;
    let Query(params) = params.map_err(|e| Problem::malformed(format!("the query string could not be read: {e}")))?;
    let (from, to, keys) = check(params)?;
    let keys = match keys {
        Some(k) => k,
        None => critical_keys(&state.pool, &caller.tenant).await?,
    };
    Ok(Json(measure(&state.pool, &state.costs, &caller.tenant, from, to, &keys).await?))
}

fn check(p: CoverageParams) -> Result<(NaiveDate, NaiveDate, Option<Vec<String>>), Problem> {
    let mut errors = Vec::new();
    let (from, to) = (cost_routes::date("from", p.from, &mut errors), cost_routes::date("to", p.to, &mut errors));
    if let (Some(f), Some(t)) = (from, to) {
        if t < f || (t - f).num_days() + 1 > MAX_DAYS {
            errors.push(FieldError::new("to", "range", format!("to must be on or after from, at most {MAX_DAYS} days on")));
        }
    }
    let keys = p.keys.filter(|k| !k.trim().is_empty()).map(|k| {
        k.split(',')
            .enumerate()
            .filter_map(|(i, key)| match TagKey::parse(key.trim()) {
                Ok(k) => Some(k.as_str().to_owned()),
                Err(e) => {
                    errors.push(FieldError::new(format!("keys[{i}]"), e.rule, e.message));
                    None
                }
            })
            .collect::<Vec<_>>()
    });
    if !errors.is_empty() {
        return Err(Problem::invalid(errors));
    }
    Ok((from.expect("checked"), to.expect("checked"), keys))
}

/// The critical keys of the tenant's tag schema (the seed's when it has no configuration yet).
async fn critical_keys(pool: &PgPool, tenant: &TenantId) -> Result<Vec<String>, Problem> {
    let doc: Option<serde_json::Value> =
        sqlx::query_scalar("SELECT document FROM tagging_configs WHERE tenant = $1 ORDER BY version DESC LIMIT 1")
            .bind(tenant.as_str())
            .fetch_optional(pool)
            .await
            .map_err(db_error)?;
    let keys: Vec<String> = doc
        .as_ref()
        .and_then(|d| d["schema"]["keys"].as_array())
        .map(|keys| {
            keys.iter().filter(|k| k["priority"] == "critical").filter_map(|k| k["key"].as_str().map(str::to_owned)).collect()
        })
        .unwrap_or_default();
    Ok(if keys.is_empty() { SEED_CRITICAL.iter().map(|k| (*k).to_owned()).collect() } else { keys })
}

async fn measure(pool: &PgPool, cache: &CostCache, tenant: &TenantId, from: NaiveDate, to: NaiveDate, keys: &[String]) -> Result<CoverageBody, Problem> {
    let query = AllocationQuery { tag_key: String::new(), from, to, filters: CostFilters::default(), as_of: None };
    let costs = allocation::resource_costs(pool, cache, tenant, &query).await?;
    let mut currencies = Vec::new();
    for (currency, per_resource) in costs.by_currency {
        let resource_cost: i128 = per_resource.values().sum();
        let billed_resources = per_resource.len() as u64;
        let mut key_rows = Vec::new();
        for key in keys {
            let sources: Vec<Source> = sqlx::query_as(
                "SELECT resource_id, origin, key_mapping, value_mapping FROM virtual_tags WHERE tenant = $1 AND tag_key = $2",
            )
            .bind(tenant.as_str())
            .bind(key)
            .fetch_all(pool)
            .await
            .map_err(db_error)?;
            let mut stages = [Tally::default(); 4];
            for s in &sources {
                let Some(cost) = per_resource.get(&s.resource_id) else { continue };
                let native = s.origin.as_deref() == Some("native");
                let clean = native && s.key_mapping.as_deref() == Some("canonical") && s.value_mapping.as_deref() == Some("kept");
                let ruled = native || s.origin.as_deref() == Some("rule");
                for (i, counts) in [clean, native, ruled, true].into_iter().enumerate() {
                    if counts {
                        stages[i].cost += cost;
                        stages[i].resources += 1;
                    }
                }
            }
            let stage = |t: Tally| Stage {
                cost: Amount::from_units(t.cost).to_string(),
                cost_share: percent(t.cost, resource_cost),
                resources: t.resources,
                resource_share: percent(i128::from(t.resources), i128::from(billed_resources)),
            };
            key_rows.push(KeyCoverage {
                key: key.clone(),
                native_clean: stage(stages[0]),
                normalized: stage(stages[1]),
                with_rules: stage(stages[2]),
                all_sources: stage(stages[3]),
            });
        }
        currencies.push(CurrencyCoverage {
            unallocatable_cost: Amount::from_units(costs.unallocatable.get(&currency).copied().unwrap_or(0)).to_string(),
            currency,
            resource_cost: Amount::from_units(resource_cost).to_string(),
            resources: billed_resources,
            keys: key_rows,
        });
    }
    Ok(CoverageBody { from, to, currencies })
}

fn percent(part: i128, whole: i128) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    // Basis points first, in integers, so 100% is exactly 100.
    ((part * 10_000 + whole / 2) / whole) as f64 / 100.0
}
