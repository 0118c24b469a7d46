//! Tagging configuration changes: the tag schema and its mappings, rules (create, update, remove,
//! enable, disable, reorder), per-key defaults, whole-document imports (JSON or YAML, for GitOps)
//! and dry-run previews. Every change publishes a new configuration version and starts the
//! re-derivation job that applies it to every resource; the answer names the job.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use vtag_service::{Caller, FieldError, Problem, Role, ValidJson};
use vtag_tagging_config::{ConfigDocument, DocError, MappingDoc, RuleDoc};

use super::ContextFactory;
use crate::tagging::{ConfigChange, ConfigOutcome, PublishError};
use crate::AppState;

#[derive(Serialize)]
struct Published {
    /// The configuration version now in force (derived tags cite it as `rule_set_version`).
    version: u64,
    changed: bool,
    job_id: String,
    /// Where to follow the re-derivation (query API).
    job: String,
}

impl From<ConfigOutcome> for Published {
    fn from(o: ConfigOutcome) -> Self {
        Self { version: o.version, changed: o.changed, job_id: o.job_id.to_string(), job: format!("/api/v1/rederivations/{}", o.job_id) }
    }
}

/// Optimistic concurrency on a versioned document: `If-Match: <version>` (or `"<version>"`).
pub(super) fn expected_version(headers: &HeaderMap) -> Result<Option<u64>, Problem> {
    match headers.get(header::IF_MATCH) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .map(|v| v.trim().trim_matches('"'))
            .and_then(|v| v.parse().ok())
            .map(Some)
            .ok_or_else(|| Problem::invalid_field("If-Match", "type", "must be the document's version, a number")),
    }
}

pub fn problem_for_docs(errors: Vec<DocError>) -> Problem {
    Problem::invalid(
        errors.into_iter().map(|e| FieldError::new(e.path, e.rule, e.message).at(e.line, e.column)).collect(),
    )
}

fn problem_for(error: PublishError) -> Problem {
    match error {
        PublishError::Invalid(errors) => problem_for_docs(errors),
        PublishError::VersionConflict { expected, actual } => {
            Problem::conflict(format!("expected configuration version {expected} but it is at version {actual}"))
                .with("expected_version", expected)
                .with("current_version", actual)
        }
        e @ PublishError::NotOwner => Problem::unavailable(format!("{e}; send it to that instance (retrying is safe)")),
        e @ PublishError::Unavailable(_) => Problem::unavailable(format!("{e}; retrying the request is safe")),
    }
}

async fn publish(state: &AppState, caller: &Caller, headers: &HeaderMap, change: ConfigChange) -> Result<Response, Problem> {
    caller.require(Role::Admin)?;
    let expected = expected_version(headers)?;
    let ctx = ContextFactory::new(caller, headers)?.context(0, None);
    let outcome = state.processor.publish_config(&change, &ctx, expected).await.map_err(problem_for)?;
    let status = if outcome.changed { StatusCode::ACCEPTED } else { StatusCode::OK };
    Ok((status, Json(Published::from(outcome))).into_response())
}

pub(super) fn is_yaml(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("yaml"))
}

/// A whole document from a JSON or YAML body. YAML errors carry the line of the offending node.
fn document(headers: &HeaderMap, body: &[u8], version: u64) -> Result<ConfigDocument, Problem> {
    if is_yaml(headers) {
        let text = std::str::from_utf8(body).map_err(|_| Problem::malformed("the YAML body is not UTF-8"))?;
        ConfigDocument::compile_yaml(text, version).map(|(doc, _)| doc).map_err(problem_for_docs)
    } else {
        let doc = ConfigDocument::from_json(body).map_err(problem_for_docs)?;
        doc.compile(version).map_err(problem_for_docs)?;
        Ok(doc)
    }
}

/// `PUT /api/v1/tagging-config`: replaces the whole configuration (JSON, or YAML with
/// `Content-Type: application/yaml`) — the GitOps import.
pub async fn replace(State(state): State<AppState>, caller: Caller, headers: HeaderMap, body: Bytes) -> Result<Response, Problem> {
    caller.require(Role::Admin)?;
    let next = state.processor.configs().get(&caller.tenant).version + 1;
    let doc = document(&headers, &body, next)?;
    publish(&state, &caller, &headers, ConfigChange::Replace(Box::new(doc))).await
}

/// `POST /api/v1/rules` and `PUT /api/v1/rules/{id}`: saves one rule (replacing one of that id).
pub async fn save_rule(State(state): State<AppState>, caller: Caller, headers: HeaderMap, body: Bytes) -> Result<Response, Problem> {
    let rule = RuleDoc::from_json(&body).map_err(problem_for_docs)?;
    publish(&state, &caller, &headers, ConfigChange::UpsertRule(Box::new(rule))).await
}

pub async fn put_rule(
    State(state): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let rule = RuleDoc::from_json(&body).map_err(problem_for_docs)?;
    if rule.id != id {
        return Err(Problem::invalid_field("id", "matches_path", format!("the body's id '{}' differs from the path's '{id}'", rule.id)));
    }
    publish(&state, &caller, &headers, ConfigChange::UpsertRule(Box::new(rule))).await
}

pub async fn remove_rule(State(state): State<AppState>, Path(id): Path<String>, caller: Caller, headers: HeaderMap) -> Result<Response, Problem> {
    publish(&state, &caller, &headers, ConfigChange::RemoveRule(id)).await
}

pub async fn enable_rule(State(state): State<AppState>, Path(id): Path<String>, caller: Caller, headers: HeaderMap) -> Result<Response, Problem> {
    publish(&state, &caller, &headers, ConfigChange::SetEnabled(id, true)).await
}

pub async fn disable_rule(State(state): State<AppState>, Path(id): Path<String>, caller: Caller, headers: HeaderMap) -> Result<Response, Problem> {
    publish(&state, &caller, &headers, ConfigChange::SetEnabled(id, false)).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReorderRequest {
    pub key: String,
    /// Every rule id of `key`, in the new evaluation order.
    pub order: Vec<String>,
}

/// `POST /api/v1/rules/reorder`
pub async fn reorder(State(state): State<AppState>, caller: Caller, headers: HeaderMap, ValidJson(req): ValidJson<ReorderRequest>) -> Result<Response, Problem> {
    publish(&state, &caller, &headers, ConfigChange::Reorder { key: req.key, ids: req.order }).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultsRequest {
    pub defaults: BTreeMap<String, String>,
}

/// `PUT /api/v1/rules/defaults`
pub async fn set_defaults(State(state): State<AppState>, caller: Caller, headers: HeaderMap, ValidJson(req): ValidJson<DefaultsRequest>) -> Result<Response, Problem> {
    publish(&state, &caller, &headers, ConfigChange::SetDefaults(req.defaults)).await
}

/// `POST /api/v1/tag-mappings`: key aliases and value aliases for a canonical key (created if new).
pub async fn add_mapping(State(state): State<AppState>, caller: Caller, headers: HeaderMap, ValidJson(mapping): ValidJson<MappingDoc>) -> Result<Response, Problem> {
    publish(&state, &caller, &headers, ConfigChange::AddMapping(Box::new(mapping))).await
}

/// What a preview evaluates: a whole proposed document, or one change to the current one.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ProposedChange {
    Document(Box<ConfigDocument>),
    UpsertRule(Box<RuleDoc>),
    RemoveRule(String),
    EnableRule(String),
    DisableRule(String),
    Reorder(ReorderRequest),
    Defaults(BTreeMap<String, String>),
    Mapping(Box<MappingDoc>),
}

impl From<ProposedChange> for ConfigChange {
    fn from(p: ProposedChange) -> Self {
        match p {
            ProposedChange::Document(d) => Self::Replace(d),
            ProposedChange::UpsertRule(r) => Self::UpsertRule(r),
            ProposedChange::RemoveRule(id) => Self::RemoveRule(id),
            ProposedChange::EnableRule(id) => Self::SetEnabled(id, true),
            ProposedChange::DisableRule(id) => Self::SetEnabled(id, false),
            ProposedChange::Reorder(r) => Self::Reorder { key: r.key, ids: r.order },
            ProposedChange::Defaults(d) => Self::SetDefaults(d),
            ProposedChange::Mapping(m) => Self::AddMapping(m),
        }
    }
}

/// `POST /api/v1/rules/preview`: what publishing a change would do — per key, how many resources
/// move from which value to which, with samples, and which rules would be shadowed — writing
/// nothing. A YAML body is a whole proposed document; a JSON body is one `ProposedChange`.
pub async fn preview(State(state): State<AppState>, caller: Caller, headers: HeaderMap, body: Bytes) -> Result<Response, Problem> {
    caller.require(Role::Editor)?;
    let current = state.processor.configs().get(&caller.tenant);
    let version = current.version + 1;
    let proposed = if is_yaml(&headers) {
        document(&headers, &body, version)?
    } else {
        let change: ConfigChange = vtag_service::json::parse::<ProposedChange>(&body)?.into();
        change.apply(&current.document).map_err(problem_for_docs)?
    };
    let compiled = proposed.compile(version).map_err(problem_for_docs)?;
    let report = state.processor.preview(&caller.tenant, &compiled).await;
    Ok(Json(serde_json::json!({ "based_on_version": current.version, "report": report })).into_response())
}
