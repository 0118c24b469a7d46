//! Applying, changing and removing virtual tags by hand (or by any client acting for a person).

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use vtag_domain::resource::RemoveVirtualTag;
use vtag_domain::{ResourceCommand, ResourceId, TagKey};
use vtag_service::{Caller, Problem, Role, ValidJson};

use super::requests::{apply_targets, parse_tag_id, tag_fields, ApplyRequest, RemoveQuery, UpdateRequest};
use super::{consistency_token, problem_for, ContextFactory, ItemResult, MAX_BATCH};
use crate::processor::{Outcome, Submission};
use crate::AppState;

#[derive(Serialize)]
pub(super) struct TagWritten {
    /// The virtual tag's id: `<resource uuid>:<key>`.
    id: String,
    resource_id: String,
    key: String,
    /// The resource's aggregate version after the write.
    version: u64,
    changed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    consistency_token: Option<String>,
}

pub(super) fn written(o: &Outcome, key: &TagKey, token: Option<String>) -> TagWritten {
    TagWritten {
        id: format!("{}:{}", o.resource_id, key),
        resource_id: o.resource_id.to_string(),
        key: key.to_string(),
        version: o.version,
        changed: o.events > 0,
        consistency_token: token,
    }
}

#[derive(Serialize)]
struct BulkResponse {
    results: Vec<ItemResult<TagWritten>>,
    consistency_token: String,
}

/// `POST /api/v1/virtual-tags/apply`: one resource (with optional `expected_version`) or many
/// (`resource_ids`, the bulk flow of the dashboard).
#[tracing::instrument(skip_all, fields(tenant = %caller.tenant))]
pub async fn apply(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ValidJson(req): ValidJson<ApplyRequest>,
) -> Result<Response, Problem> {
    caller.require(Role::Editor)?;
    let targets = apply_targets(&req, &caller.tenant, MAX_BATCH);
    let tag = tag_fields(&req.key, &req.value, req.source.as_deref(), req.confidence);
    let (targets, tag) = match (targets, tag) {
        (Ok(t), Ok(f)) => (t, f),
        (t, f) => return Err(Problem::invalid(t.err().into_iter().chain(f.err()).flatten().collect())),
    };
    let contexts = ContextFactory::new(&caller, &headers)?;
    let bulk = req.resource_ids.is_some();
    let submissions = targets
        .iter()
        .enumerate()
        .map(|(i, id)| Submission {
            aggregate: *id,
            command: ResourceCommand::ApplyVirtualTag(tag.command(req.expected_version)),
            context: contexts.context(i, None),
        })
        .collect();
    let outcomes = state.processor.submit(submissions).await;
    if !bulk {
        let outcome = outcomes.into_iter().next().expect("one submission, one outcome");
        return single(outcome, &tag.key);
    }
    let token = consistency_token(outcomes.iter().filter_map(|r| r.as_ref().ok()));
    let results = outcomes.iter().map(|r| ItemResult::from(r.as_ref().map(|o| written(o, &tag.key, None)))).collect();
    Ok(Json(BulkResponse { results, consistency_token: token }).into_response())
}

fn single(outcome: Result<Outcome, crate::processor::SubmitError>, key: &TagKey) -> Result<Response, Problem> {
    let outcome = outcome.map_err(|e| problem_for(&e))?;
    let token = consistency_token([&outcome]);
    Ok(Json(written(&outcome, key, Some(token))).into_response())
}

/// `PUT /api/v1/virtual-tags/{resource uuid}:{key}`: set the value of one tag.
#[tracing::instrument(skip_all, fields(tenant = %caller.tenant))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    ValidJson(req): ValidJson<UpdateRequest>,
) -> Result<Response, Problem> {
    caller.require(Role::Editor)?;
    let (resource, key) = parse_tag_id(&id).map_err(|e| Problem::invalid(vec![e]))?;
    let tag = tag_fields(key.as_str(), &req.value, req.source.as_deref(), req.confidence).map_err(Problem::invalid)?;
    let command = ResourceCommand::ApplyVirtualTag(tag.command(req.expected_version));
    submit_one(&state, &caller, &headers, resource, command, &key).await
}

/// `DELETE /api/v1/virtual-tags/{resource uuid}:{key}[?expected_version=N]`.
#[tracing::instrument(skip_all, fields(tenant = %caller.tenant))]
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: Result<Query<RemoveQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    caller.require(Role::Editor)?;
    let Query(query) = query.map_err(|e| Problem::invalid_field("expected_version", "type", e.body_text()))?;
    let (resource, key) = parse_tag_id(&id).map_err(|e| Problem::invalid(vec![e]))?;
    let command = ResourceCommand::RemoveVirtualTag(RemoveVirtualTag { key: key.clone(), expected_version: query.expected_version });
    submit_one(&state, &caller, &headers, resource, command, &key).await
}

async fn submit_one(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    resource: ResourceId,
    command: ResourceCommand,
    key: &TagKey,
) -> Result<Response, Problem> {
    let contexts = ContextFactory::new(caller, headers)?;
    let submission = Submission { aggregate: resource, command, context: contexts.context(0, None) };
    let outcome = state.processor.submit(vec![submission]).await.into_iter().next().expect("one outcome");
    single(outcome, key)
}
