//! `POST /api/v1/resources/observe`: a collector reports what it saw (a batch of resources).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde::Serialize;
use vtag_domain::ResourceCommand;
use vtag_service::{Caller, Problem, Role, ValidJson};

use super::requests::{observe_commands, ObserveRequest};
use super::{consistency_token, ContextFactory, ItemResult, MAX_BATCH};
use crate::processor::Submission;
use crate::AppState;

#[derive(Serialize)]
pub struct ObserveResponse {
    results: Vec<ItemResult<Observed>>,
    consistency_token: String,
}

#[derive(Serialize)]
struct Observed {
    id: String,
    resource_id: String,
    version: u64,
    /// False when the resource was already known exactly as reported (nothing recorded).
    changed: bool,
}

/// The whole batch is validated before anything is recorded: one bad item refuses the request.
/// Items then go to their own aggregates (different partitions), so a broker failure midway can
/// leave some recorded and some not; each item's result says which, and re-sending the batch with
/// the same `Idempotency-Key` completes it without duplicates.
#[tracing::instrument(skip_all, fields(tenant = %caller.tenant, items))]
pub async fn observe(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ValidJson(request): ValidJson<ObserveRequest>,
) -> Result<Json<ObserveResponse>, Problem> {
    caller.require(Role::Editor)?;
    let commands = observe_commands(request, MAX_BATCH).map_err(Problem::invalid)?;
    tracing::Span::current().record("items", commands.len());
    let contexts = ContextFactory::new(&caller, &headers)?;
    let cloud_ids: Vec<String> = commands.iter().map(|c| c.cloud_id.as_str().to_owned()).collect();
    let submissions: Vec<Submission> = commands
        .into_iter()
        .enumerate()
        .map(|(i, c)| Submission {
            aggregate: c.resource_id(&caller.tenant),
            context: contexts.context(i, Some(c.observed_at)),
            command: ResourceCommand::Observe(c),
        })
        .collect();
    let outcomes = state.processor.submit(submissions).await;
    let unconfirmed = outcomes.iter().filter(|r| r.is_err()).count();
    if unconfirmed > 0 {
        // Observing never refuses, so any failure is the log being unavailable.
        return Err(Problem::unavailable(format!(
            "{unconfirmed} of {} observations were not confirmed; re-send the batch with the same Idempotency-Key",
            outcomes.len()
        )));
    }
    let token = consistency_token(outcomes.iter().filter_map(|r| r.as_ref().ok()));
    let results = outcomes
        .iter()
        .zip(cloud_ids)
        .map(|(r, cloud_id)| {
            ItemResult::from(r.as_ref().map(|o| Observed {
                id: o.resource_id.to_string(),
                resource_id: cloud_id,
                version: o.version,
                changed: o.events > 0,
            }))
        })
        .collect();
    Ok(Json(ObserveResponse { results, consistency_token: token }))
}
