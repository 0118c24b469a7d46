//! Compliance policies (ADR 0007): the whole document (JSON, or YAML for GitOps), or one policy at
//! a time in the seed's policy JSON — created, replaced, enabled, disabled, deleted. Every change
//! publishes a new version of the tenant's policies; the evaluators re-judge every resource under
//! it. Admins only.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use vtag_policy_config::{PoliciesDocument, PolicyDoc};
use vtag_service::{Caller, Problem, Role};

use super::rules::{expected_version, is_yaml, problem_for_docs};
use super::ContextFactory;
use crate::compliance::{PolicyChange, PolicyError, PolicyOutcome};
use crate::AppState;

#[derive(Serialize)]
struct Published {
    /// The policies version now in force.
    version: u64,
    changed: bool,
    /// The evaluator's pass judging the tenant's resources under the new version (when it changed):
    /// `GET /api/v1/compliance/jobs/{job_id}` on the query API.
    #[serde(skip_serializing_if = "Option::is_none")]
    job_id: Option<uuid::Uuid>,
}

pub(super) fn problem_for(error: PolicyError) -> Problem {
    match error {
        PolicyError::Invalid(errors) => problem_for_docs(errors),
        e @ PolicyError::NotFound(_) => Problem::not_found(e.to_string()),
        e @ PolicyError::Exists(_) => Problem::conflict(format!("{e}: replace it with PUT /api/v1/policies/{{id}}")),
        PolicyError::VersionConflict { expected, actual } => {
            Problem::conflict(format!("expected policies version {expected} but they are at version {actual}"))
                .with("expected_version", expected)
                .with("current_version", actual)
        }
        e @ PolicyError::NotOwner => Problem::unavailable(format!("{e}; send it to that instance (retrying is safe)")),
        e @ PolicyError::Unavailable(_) => Problem::unavailable(format!("{e}; retrying the request is safe")),
    }
}

async fn publish(state: &AppState, caller: &Caller, headers: &HeaderMap, change: PolicyChange, created: bool) -> Result<Response, Problem> {
    caller.require(Role::Admin)?;
    let expected = expected_version(headers)?;
    let ctx = ContextFactory::new(caller, headers)?.context(0, None);
    let PolicyOutcome { version, changed, .. } = state.processor.change_policies(&change, &ctx, expected).await.map_err(problem_for)?;
    let status = match (changed, created) {
        (false, _) => StatusCode::OK,
        (true, true) => StatusCode::CREATED,
        (true, false) => StatusCode::ACCEPTED,
    };
    let job_id = changed.then(|| vtag_eventlog::compliance::policies_job_id(&caller.tenant, version));
    Ok((status, Json(Published { version, changed, job_id })).into_response())
}

/// One policy from the body; with `id`, the body's `policy_id` must be it.
fn policy(body: &[u8], id: Option<&str>) -> Result<PolicyDoc, Problem> {
    let doc = PolicyDoc::from_json(body).map_err(problem_for_docs)?;
    if let Some(id) = id.filter(|id| *id != doc.policy_id) {
        return Err(Problem::invalid_field("policy_id", "mismatch", format!("the body's policy_id '{}' is not the path's '{id}'", doc.policy_id)));
    }
    doc.compile().map_err(problem_for_docs)?;
    Ok(doc)
}

/// `PUT /api/v1/policies`: replaces every policy (JSON, or YAML with `Content-Type: application/yaml`).
pub async fn replace(State(state): State<AppState>, caller: Caller, headers: HeaderMap, body: Bytes) -> Result<Response, Problem> {
    caller.require(Role::Admin)?;
    let doc = if is_yaml(&headers) {
        let text = std::str::from_utf8(&body).map_err(|_| Problem::malformed("the YAML body is not UTF-8"))?;
        PoliciesDocument::compile_yaml(text).map(|(doc, _)| doc).map_err(problem_for_docs)?
    } else {
        let doc = PoliciesDocument::from_json(&body).map_err(problem_for_docs)?;
        doc.compile().map_err(problem_for_docs)?;
        doc
    };
    publish(&state, &caller, &headers, PolicyChange::Replace(Box::new(doc)), false).await
}

/// `POST /api/v1/policies`: a new policy (409 when its id is taken).
pub async fn create(State(state): State<AppState>, caller: Caller, headers: HeaderMap, body: Bytes) -> Result<Response, Problem> {
    caller.require(Role::Admin)?;
    let doc = policy(&body, None)?;
    publish(&state, &caller, &headers, PolicyChange::Create(Box::new(doc)), true).await
}

/// `PUT /api/v1/policies/{id}`: replaces policy `id` (or creates it).
pub async fn put(State(state): State<AppState>, Path(id): Path<String>, caller: Caller, headers: HeaderMap, body: Bytes) -> Result<Response, Problem> {
    caller.require(Role::Admin)?;
    let doc = policy(&body, Some(&id))?;
    publish(&state, &caller, &headers, PolicyChange::Save(Box::new(doc)), false).await
}

/// `DELETE /api/v1/policies/{id}`: its open violations resolve (policy withdrawn).
pub async fn delete(State(state): State<AppState>, Path(id): Path<String>, caller: Caller, headers: HeaderMap) -> Result<Response, Problem> {
    publish(&state, &caller, &headers, PolicyChange::Remove(id), false).await
}

/// `POST /api/v1/policies/{id}/enable`.
pub async fn enable(State(state): State<AppState>, Path(id): Path<String>, caller: Caller, headers: HeaderMap) -> Result<Response, Problem> {
    publish(&state, &caller, &headers, PolicyChange::SetEnabled(id, true), false).await
}

/// `POST /api/v1/policies/{id}/disable`: its open violations resolve (policy withdrawn).
pub async fn disable(State(state): State<AppState>, Path(id): Path<String>, caller: Caller, headers: HeaderMap) -> Result<Response, Problem> {
    publish(&state, &caller, &headers, PolicyChange::SetEnabled(id, false), false).await
}
