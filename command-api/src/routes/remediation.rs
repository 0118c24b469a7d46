//! `POST /api/v1/compliance/remediations`: the values a reviewer accepted from
//! `GET /api/v1/compliance/remediations` (query API), applied in one request — a different key and
//! value per resource, unlike the bulk tag apply. Every item is checked before anything is applied
//! (a bad one refuses the request, 422 naming `items[i].field`); each accepted value is a virtual
//! tag event like any other, so the evaluator re-judges the resource and resolves what it fixed.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use vtag_domain::ResourceCommand;
use vtag_service::{Caller, FieldError, Problem, Role, ValidJson};

use super::requests::{resource_uuid, tag_fields};
use super::tags::{written, TagWritten};
use super::{consistency_token, ContextFactory, ItemResult, MAX_BATCH};
use crate::processor::Submission;
use crate::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemediationBody {
    items: Vec<Item>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Item {
    resource_id: String,
    key: String,
    value: String,
    /// `user_confirmed` (default: a person accepted a suggested value) or `manual` (they typed it).
    source: Option<String>,
}

#[derive(Serialize)]
struct Applied {
    results: Vec<ItemResult<TagWritten>>,
    consistency_token: String,
}

const SOURCES: [&str; 2] = ["user_confirmed", "manual"];

#[tracing::instrument(skip_all, fields(tenant = %caller.tenant))]
pub async fn apply(State(state): State<AppState>, caller: Caller, headers: HeaderMap, ValidJson(body): ValidJson<RemediationBody>) -> Result<Response, Problem> {
    caller.require(Role::Editor)?;
    if body.items.is_empty() || body.items.len() > MAX_BATCH {
        return Err(Problem::invalid_field("items", "max_items", format!("give 1 to {MAX_BATCH} items")));
    }
    let mut errors = Vec::new();
    let mut checked = Vec::with_capacity(body.items.len());
    for (i, item) in body.items.iter().enumerate() {
        let at = |e: FieldError| FieldError::new(format!("items[{i}].{}", e.field), e.rule, e.message);
        let source = item.source.as_deref().unwrap_or("user_confirmed");
        if !SOURCES.contains(&source) {
            errors.push(FieldError::new(format!("items[{i}].source"), "one_of", format!("'{source}' is not one of {}", SOURCES.join(", "))));
        }
        match (resource_uuid("resource_id", &item.resource_id), tag_fields(&item.key, &item.value, Some(source), Some(1.0))) {
            (Ok(id), Ok(tag)) => checked.push((id, tag)),
            (id, tag) => errors.extend(id.err().into_iter().chain(tag.err().into_iter().flatten()).map(at)),
        }
    }
    if !errors.is_empty() {
        return Err(Problem::invalid(errors));
    }
    let contexts = ContextFactory::new(&caller, &headers)?;
    let submissions = checked
        .iter()
        .enumerate()
        .map(|(i, (id, tag))| Submission { aggregate: *id, command: ResourceCommand::ApplyVirtualTag(tag.command(None)), context: contexts.context(i, None) })
        .collect();
    let outcomes = state.processor.submit(submissions).await;
    let token = consistency_token(outcomes.iter().filter_map(|r| r.as_ref().ok()));
    let results = outcomes.iter().zip(&checked).map(|(r, (_, tag))| ItemResult::from(r.as_ref().map(|o| written(o, &tag.key, None)))).collect();
    Ok(Json(Applied { results, consistency_token: token }).into_response())
}
