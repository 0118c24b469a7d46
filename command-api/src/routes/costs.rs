//! `POST /api/v1/costs/imports`: a FOCUS billing export (CSV, plain or gzip, or Parquet) as the
//! request body.
//!
//! The whole file is read and checked before anything is recorded: a bad cell refuses it (422
//! naming row and column) and nothing is imported. Then the resources it bills are observed
//! (created when vtag has not seen them; see `ObserveFromBilling`), and each ledger — billing
//! account × billing period — whose content changed is replaced. Re-sending the same file records
//! nothing; a corrected file for a period replaces that period.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use vtag_billing::{monthly_costs, BilledResource, BillingFile, ImportError, MonthlyCost, SplitsDoc};
use vtag_domain::resource::{ObserveResource, RecordMonthlyCost, BILLING_SOURCE};
use vtag_domain::{CloudResourceId, NativeTags, ResourceCommand, ResourceDescription};
use vtag_service::{Caller, FieldError, Problem, Role, ValidJson};

use super::{consistency_token, ContextFactory};
use crate::costs::{CostError, LedgerOutcome};
use crate::processor::{Outcome, Submission};
use crate::AppState;

/// Commands an import submits at once (observations, monthly costs); the request-size bound,
/// `MAX_BATCH`, is for clients.
const IMPORT_BATCH: usize = 50_000;

#[derive(Deserialize)]
pub struct ImportParams {
    /// The file's name, kept with the import for people reading the history.
    source: Option<String>,
}

#[derive(Serialize)]
struct Imported {
    rows: u64,
    /// Amounts with more than ten fractional digits, rounded half to even.
    rounded_amounts: u64,
    resources: ResourcesSeen,
    ledgers: Vec<LedgerAnswer>,
    /// Read-your-writes token for the resources observed (query API `X-Consistency-Token`).
    consistency_token: String,
}

#[derive(Serialize)]
struct ResourcesSeen {
    billed: usize,
    /// Created or updated from billing (resources a collector reports are left as it reported them).
    recorded: usize,
    /// Resources whose monthly cost (30-day run rate) changed.
    monthly_costs_changed: usize,
}

#[derive(Serialize)]
struct LedgerAnswer {
    ledger_id: String,
    provider: String,
    billing_account_id: String,
    period_start: String,
    period_end: String,
    currency: String,
    changed: bool,
    import_id: Option<String>,
    replaced_import_id: Option<String>,
    version: u64,
    rows: u64,
    resources: usize,
    billed_cost: String,
    effective_cost: String,
    unallocatable_billed_cost: String,
    /// Where to see the import once projected (query API).
    import: Option<String>,
}

pub fn problem_for_import(e: ImportError) -> Problem {
    let field = e.column.clone().unwrap_or_else(|| "file".to_owned());
    let line = e.line.map(|l| l as usize);
    let mut problem = Problem::invalid(vec![FieldError::new(field, e.rule, e.message.clone()).at(line, None)])
        .detail(format!("the billing file was not imported: {e}"));
    if let Some(row) = e.row {
        problem = problem.with("row", row);
    }
    if let Some(line) = e.line {
        problem = problem.with("line", line);
    }
    if let Some(column) = &e.column {
        problem = problem.with("column", column.as_str());
    }
    problem
}

#[tracing::instrument(skip_all, fields(tenant = %caller.tenant))]
pub async fn import(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Query(params): Query<ImportParams>,
    body: Body,
) -> Result<Response, Problem> {
    caller.require(Role::Editor)?;
    let source = params.source.unwrap_or_else(|| "upload".to_owned());
    if source.chars().count() > 256 || source.chars().any(char::is_control) {
        return Err(Problem::invalid_field("source", "max_length", "must be at most 256 printable characters"));
    }
    let contexts = ContextFactory::new(&caller, &headers)?;
    let started = std::time::Instant::now();
    let file = super::upload::read_billing_file(body, super::MAX_BILLING_FILE).await?;

    let read_s = started.elapsed().as_secs_f64();
    let resources = billed_resources(&file);
    let billed = resources.len();
    let mut outcomes = Vec::new();
    let mut index = 0;
    let observe = |r: &&BilledResource| {
        let observe = observation(r, contexts.now);
        (observe.resource_id(&caller.tenant), ResourceCommand::ObserveFromBilling(observe))
    };
    let recorded = submit_all(&state, &contexts, &mut index, &resources, &observe, &mut outcomes, "the billed resources").await?;

    let observed_s = started.elapsed().as_secs_f64();
    // Monthly costs, for rules (`monthly_cost`) and cost-threshold policies: recorded only where
    // they changed, and each change re-derives the resource's tags under the current rules.
    let monthly = monthly_costs(&file);
    let record = |m: &MonthlyCost| {
        let cloud_id = CloudResourceId::parse(&m.cloud_id).expect("checked when the file was read");
        let command = RecordMonthlyCost { cents: m.cents, currency: m.currency.clone(), as_of: m.as_of };
        (vtag_domain::ResourceId::derive(&caller.tenant, m.provider, &cloud_id), ResourceCommand::RecordMonthlyCost(command))
    };
    let costed = submit_all(&state, &contexts, &mut index, &monthly, &record, &mut outcomes, "the resources' monthly costs").await?;

    let costed_s = started.elapsed().as_secs_f64();
    let ctx = contexts.context(0, None);
    let ledgers = state.processor.import_costs(&file, &source, &ctx).await.map_err(problem_for_cost)?;
    tracing::info!(
        rows = file.rows,
        resources = billed,
        ledgers = ledgers.len(),
        read_s,
        observed_s,
        costed_s,
        done_s = started.elapsed().as_secs_f64(),
        "billing file imported"
    );
    let changed = ledgers.iter().any(|l| l.changed);
    let answer = Imported {
        rows: file.rows,
        rounded_amounts: file.rounded_amounts,
        resources: ResourcesSeen { billed, recorded, monthly_costs_changed: costed },
        ledgers: file.ledgers.iter().zip(&ledgers).map(|(l, o)| ledger_answer(l, o)).collect(),
        consistency_token: consistency_token(&outcomes),
    };
    let status = if changed { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(answer)).into_response())
}

/// Submits an import's resource commands in batches (their contexts numbered on from `index`),
/// keeping every outcome; how many recorded something. Nothing of the costs is imported yet when
/// one fails, so the answer says the file may be sent again.
async fn submit_all<T: Sync>(
    state: &AppState,
    contexts: &ContextFactory,
    index: &mut usize,
    items: &[T],
    command_of: &(dyn Fn(&T) -> (vtag_domain::ResourceId, ResourceCommand) + Sync),
    outcomes: &mut Vec<Outcome>,
    what: &str,
) -> Result<usize, Problem> {
    let mut changed = 0;
    for chunk in items.chunks(IMPORT_BATCH) {
        let batch = chunk
            .iter()
            .map(command_of)
            .map(|(aggregate, command)| {
                *index += 1;
                Submission { aggregate, context: contexts.context(*index, Some(contexts.now)), command }
            })
            .collect();
        for result in state.processor.submit(batch).await {
            let o = result.map_err(|e| {
                Problem::unavailable(format!(
                    "{what} could not all be recorded ({e}); nothing of the costs was imported, and re-sending the file is safe"
                ))
            })?;
            changed += usize::from(o.events > 0);
            outcomes.push(o);
        }
    }
    Ok(changed)
}

fn problem_for_cost(e: CostError) -> Problem {
    match e {
        e @ CostError::NotOwner => Problem::unavailable(format!("{e}; send it to that instance (retrying is safe)")),
        e @ CostError::Unavailable(_) => Problem::unavailable(format!("{e}; re-sending the request is safe")),
        CostError::Invalid(errors) => {
            Problem::invalid(errors.into_iter().map(|e| FieldError::new(e.path, e.rule, e.message)).collect())
        }
        CostError::VersionConflict { expected, actual } => {
            Problem::conflict(format!("expected split rules version {expected} but they are at version {actual}"))
                .with("expected_version", expected)
                .with("current_version", actual)
        }
    }
}

#[derive(Serialize)]
struct SplitsAnswer {
    version: u64,
    changed: bool,
}

/// `PUT /api/v1/cost-splits`: replaces the tenant's shared-cost split rules (admin). Optimistic
/// concurrency with `If-Match: <version>`. Every allocation after it (and `as_of` later instants)
/// shares pools by the new rules, for any past period.
pub async fn put_splits(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ValidJson(doc): ValidJson<SplitsDoc>,
) -> Result<Response, Problem> {
    caller.require(Role::Admin)?;
    let expected = match headers.get(axum::http::header::IF_MATCH) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|v| v.trim().trim_matches('"').parse::<u64>().ok())
                .ok_or_else(|| Problem::invalid_field("If-Match", "type", "must be the split rules version, a number"))?,
        ),
    };
    let ctx = ContextFactory::new(&caller, &headers)?.context(0, None);
    let outcome = state.processor.set_cost_splits(doc, &ctx, expected).await.map_err(problem_for_cost)?;
    let status = if outcome.changed { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(SplitsAnswer { version: outcome.version, changed: outcome.changed })).into_response())
}

fn ledger_answer(l: &vtag_billing::Ledger, o: &LedgerOutcome) -> LedgerAnswer {
    LedgerAnswer {
        ledger_id: o.ledger_id.to_string(),
        provider: l.key.provider_name.clone(),
        billing_account_id: l.key.billing_account_id.clone(),
        period_start: l.key.period_start.to_string(),
        period_end: l.period_end.to_string(),
        currency: l.currency.clone(),
        changed: o.changed,
        import_id: o.import_id.map(|i| i.to_string()),
        replaced_import_id: o.replaced.map(|i| i.to_string()),
        version: o.version,
        rows: l.rows,
        resources: l.resources.len(),
        billed_cost: l.total.billed.to_string(),
        effective_cost: l.total.effective.to_string(),
        unallocatable_billed_cost: l.unallocatable.billed.to_string(),
        import: o.import_id.map(|i| format!("/api/v1/costs/imports/{i}")),
    }
}

/// Every resource the file bills, once: where several ledgers (months) bill it, the latest
/// charge day's description and tags.
fn billed_resources(file: &BillingFile) -> Vec<&BilledResource> {
    let mut latest: HashMap<(vtag_domain::Provider, &str), &BilledResource> = HashMap::new();
    for r in file.ledgers.iter().flat_map(|l| &l.resources) {
        latest
            .entry((r.provider, r.cloud_id.as_str()))
            .and_modify(|seen| {
                if r.tags_as_of > seen.tags_as_of {
                    *seen = r;
                }
            })
            .or_insert(r);
    }
    let mut resources: Vec<&BilledResource> = latest.into_values().collect();
    // A stable order: the same file observes in the same order (and batches) every time.
    resources.sort_by(|a, b| (a.provider.as_str(), &a.cloud_id).cmp(&(b.provider.as_str(), &b.cloud_id)));
    resources
}

fn observation(r: &BilledResource, at: chrono::DateTime<chrono::Utc>) -> ObserveResource {
    let metadata = [(BILLING_SOURCE.0.to_owned(), BILLING_SOURCE.1.to_owned())].into();
    ObserveResource {
        provider: r.provider,
        cloud_id: CloudResourceId::parse(&r.cloud_id).expect("checked when the file was read"),
        description: ResourceDescription::parse(
            r.sub_account.clone(),
            r.region.clone(),
            r.resource_type.clone(),
            r.name.clone(),
            metadata,
        )
        .expect("checked when the file was read"),
        native_tags: NativeTags::parse(r.tags.clone()).expect("checked when the file was read"),
        observed_at: at,
    }
}
