//! REST reads of the compliance policies (ADR 0007): the whole document — exactly what the
//! command API's `PUT /api/v1/policies` takes back, as JSON or YAML (the GitOps export), its version
//! as the ETag — and one policy by id.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use sqlx::PgPool;
use vtag_domain::TenantId;
use vtag_policy_config::{PoliciesDocument, PolicyDoc};
use vtag_service::{Caller, Problem, Role};

use crate::config_routes::{negotiate, versioned_response, FormatParams};
use crate::rest::unreadable_query;
use crate::state::AppState;

/// The tenant's latest policies and their version (0 and no policies: none published yet).
pub async fn current(pool: &PgPool, tenant: &TenantId) -> Result<(i64, PoliciesDocument), Problem> {
    match crate::config::latest_document(pool, "compliance_policies", tenant).await? {
        None => Ok((0, PoliciesDocument::default())),
        Some((version, text)) => {
            let document = PoliciesDocument::from_json(text.as_bytes()).map_err(|errors| {
                let errors = errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
                Problem::internal(format!("stored policies {version} of {tenant} do not read: {errors}"))
            })?;
            Ok((version, document))
        }
    }
}

/// `GET /api/v1/policies[?format=yaml]`.
#[tracing::instrument(skip_all, fields(tenant = %caller.tenant))]
pub async fn policies(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    params: Result<Query<FormatParams>, QueryRejection>,
) -> Result<Response, Problem> {
    caller.require(Role::Viewer)?;
    let Query(params) = params.map_err(unreadable_query)?;
    let format = negotiate(params.format.as_deref(), &headers)?;
    let (version, document) = current(&state.pool, &caller.tenant).await?;
    Ok(versioned_response(version, format, &headers, || Json(&document).into_response(), || document.to_yaml()))
}

#[derive(Serialize)]
pub struct PolicyBody {
    /// The policies version this policy is part of.
    version: i64,
    #[serde(flatten)]
    policy: PolicyDoc,
}

/// `GET /api/v1/policies/{id}`: one policy in the seed's format.
#[tracing::instrument(skip_all, fields(tenant = %caller.tenant))]
pub async fn policy(State(state): State<AppState>, caller: Caller, id: Result<Path<String>, PathRejection>) -> Result<Json<PolicyBody>, Problem> {
    caller.require(Role::Viewer)?;
    let Path(id) = id.map_err(|_| Problem::invalid_field("id", "type", "the policy id is text"))?;
    let (version, document) = current(&state.pool, &caller.tenant).await?;
    let policy = document.policy(&id).cloned().ok_or_else(|| Problem::not_found(format!("no policy {id}")))?;
    Ok(Json(PolicyBody { version, policy }))
}
