//! REST handlers: parse and check the request, wait for the caller's writes, then read.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;
use vtag_domain::Provider;
use vtag_service::{Caller, Problem, Role};

use crate::audit::{self, AuditPage, AuditParams};
use crate::consistency::{self, ConsistencyToken};
use crate::resources::{self, Resource, VirtualTag};
use crate::rfc3339;
use crate::state::{db_error, AppState};

/// The seed's response, plus the vtag id, account, region and versions (what a client needs to
/// send an `expected_version` with its next write). Native cloud tags are not in it, by design.
#[derive(Debug, Serialize)]
pub struct ResourceBody {
    pub id: Uuid,
    pub resource_id: String,
    pub resource_name: String,
    pub provider: String,
    pub resource_type: String,
    pub account_id: String,
    pub region: String,
    pub version: i64,
    pub virtual_tags: Vec<TagBody>,
}

#[derive(Debug, Serialize)]
pub struct TagBody {
    pub id: String,
    pub key: String,
    pub value: String,
    pub source: String,
    pub confidence: f64,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub updated_at: DateTime<Utc>,
    pub created_by: String,
    pub updated_by: String,
    pub version: i64,
}

impl From<Resource> for ResourceBody {
    fn from(r: Resource) -> Self {
        let tag = |t: VirtualTag| TagBody {
            id: t.id(r.id),
            key: t.key,
            value: t.value,
            source: t.source,
            confidence: t.confidence,
            created_at: t.created_at,
            updated_at: t.updated_at,
            created_by: t.created_by,
            updated_by: t.updated_by,
            version: t.version,
        };
        Self {
            id: r.id,
            resource_id: r.cloud_resource_id,
            resource_name: r.name,
            provider: r.provider,
            resource_type: r.resource_type,
            account_id: r.account_id,
            region: r.region,
            version: r.version,
            virtual_tags: r.virtual_tags.into_iter().map(tag).collect(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct ResourceParams {
    pub provider: Option<String>,
}

/// Liveness and readiness in one: the service is useless without its read model.
pub async fn health(State(state): State<AppState>) -> Result<Json<Value>, Problem> {
    sqlx::query("SELECT 1").execute(&state.pool).await.map_err(db_error)?;
    Ok(Json(json!({ "status": "ok" })))
}

/// `GET /api/v1/resources/{id}/virtual-tags`: `{id}` is the vtag UUID or the URL-encoded cloud id.
#[tracing::instrument(skip_all, fields(tenant = %caller.tenant))]
pub async fn resource_virtual_tags(
    State(state): State<AppState>,
    caller: Caller,
    token: ConsistencyToken,
    id: Result<Path<String>, PathRejection>,
    params: Result<Query<ResourceParams>, QueryRejection>,
) -> Result<Json<ResourceBody>, Problem> {
    caller.require(Role::Viewer)?;
    let Path(id) = id.map_err(|e| Problem::malformed(format!("the resource id could not be read: {e}")))?;
    let Query(params) = params.map_err(unreadable_query)?;
    let provider = params
        .provider
        .filter(|p| !p.is_empty())
        .map(|p| Provider::parse(&p))
        .transpose()
        .map_err(|e| Problem::invalid_field("provider", e.rule, e.message))?;
    consistency::wait_until_visible(&state.pool, &state.consistency, &token).await?;
    let resource = resources::find(&state.pool, &caller.tenant, &id, provider)
        .await?
        .ok_or_else(|| Problem::not_found("no resource with this id"))?;
    Ok(Json(resource.into()))
}

/// `GET /api/v1/audit-trail`.
#[tracing::instrument(skip_all, fields(tenant = %caller.tenant))]
pub async fn audit_trail(
    State(state): State<AppState>,
    caller: Caller,
    token: ConsistencyToken,
    params: Result<Query<AuditParams>, QueryRejection>,
) -> Result<Json<AuditPage>, Problem> {
    caller.require(Role::Viewer)?;
    let Query(params) = params.map_err(unreadable_query)?;
    let query = params.check()?;
    consistency::wait_until_visible(&state.pool, &state.consistency, &token).await?;
    Ok(Json(audit::fetch(&state.pool, &caller.tenant, &query).await?))
}

fn unreadable_query(e: QueryRejection) -> Problem {
    Problem::malformed(format!("the query string could not be read: {}", e.body_text()))
}

pub async fn no_route() -> Problem {
    Problem::not_found("no such endpoint")
}

pub async fn wrong_method() -> Problem {
    Problem::new(StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed", "Method not allowed")
        .detail("this endpoint does not accept that method")
}
