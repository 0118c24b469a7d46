//! REST handlers: parse and check the request, wait for the caller's writes, then read.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;
use vtag_domain::{Provider, TagKey};
use vtag_service::{Caller, FieldError, Problem, Role};

use crate::audit::{self, AuditPage, AuditParams};
use crate::consistency::{self, ConsistencyToken};
use crate::explain::{self, Explanation};
use crate::history;
use crate::resources::{self, Resource, VirtualTag};
use crate::rfc3339;
use crate::state::{db_error, AppState};

/// The seed's response, plus the vtag id, account, region and versions (what a client needs to
/// send an `expected_version` with its next write). Native cloud tags are not in it, by design.
/// With `as_of`, the tags and `version` are those of that instant; the description is today's
/// (the read model keeps no history of descriptions).
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
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "rfc3339::serialize_opt")]
    pub as_of: Option<DateTime<Utc>>,
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
    /// Derived values only (`native`, `rule`, `default`); absent for people's and models' values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_set_version: Option<i64>,
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
            origin: t.provenance.origin,
            rule_id: t.provenance.rule_id,
            rule_set_version: t.provenance.rule_set_version,
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
            as_of: None,
            virtual_tags: r.virtual_tags.into_iter().map(tag).collect(),
        }
    }
}

/// Kept as text so a bad value is a 422 naming its parameter.
#[derive(Debug, Default, Deserialize)]
pub struct ResourceParams {
    pub provider: Option<String>,
    pub as_of: Option<String>,
}

/// The explain endpoint's: the resource's, plus how many of the key's latest changes to list.
#[derive(Debug, Default, Deserialize)]
pub struct ExplainParams {
    pub provider: Option<String>,
    pub as_of: Option<String>,
    /// 0–20, default 20.
    pub history: Option<String>,
}

struct ResourceQuery {
    provider: Option<Provider>,
    as_of: Option<DateTime<Utc>>,
}

pub(crate) fn present(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// Every broken parameter is reported at once: `errors` collects them.
fn read_resource_params(
    provider: Option<String>,
    as_of: Option<String>,
    errors: &mut Vec<FieldError>,
) -> ResourceQuery {
    let provider = present(provider).and_then(|p| match Provider::parse(&p) {
        Ok(p) => Some(p),
        Err(e) => {
            errors.push(FieldError::new("provider", e.rule, e.message));
            None
        }
    });
    let as_of = present(as_of).and_then(|raw| {
        let t = rfc3339::parse(&raw);
        if t.is_none() {
            errors.push(FieldError::new("as_of", "rfc3339", "must be an RFC 3339 time, e.g. 2025-11-17T10:00:00Z"));
        }
        t
    });
    ResourceQuery { provider, as_of }
}

fn refuse_any(errors: Vec<FieldError>) -> Result<(), Problem> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Problem::invalid(errors))
    }
}

impl ResourceParams {
    fn check(self) -> Result<ResourceQuery, Problem> {
        let mut errors = Vec::new();
        let query = read_resource_params(self.provider, self.as_of, &mut errors);
        refuse_any(errors)?;
        Ok(query)
    }
}

impl ExplainParams {
    fn check(self) -> Result<(ResourceQuery, i64), Problem> {
        let mut errors = Vec::new();
        let query = read_resource_params(self.provider, self.as_of, &mut errors);
        let history = match present(self.history) {
            None => history::MAX_CHANGES,
            Some(raw) => match raw.parse::<i64>() {
                Ok(n) if (0..=history::MAX_CHANGES).contains(&n) => n,
                _ => {
                    let message = format!("must be a whole number between 0 and {}", history::MAX_CHANGES);
                    errors.push(FieldError::new("history", "range", message));
                    0
                }
            },
        };
        refuse_any(errors)?;
        Ok((query, history))
    }
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
    let query = params.check()?;
    consistency::wait_until_visible(&state.pool, &state.consistency, &token).await?;
    let resource = find(&state, &caller, &id, query.provider).await?;
    let Some(as_of) = query.as_of else { return Ok(Json(resource.into())) };
    // A resource that exists now but did not then answers with no tags (200): the id is valid,
    // there was just nothing to see at that instant.
    let past = history::at(&state.pool, &caller.tenant, resource, as_of).await?;
    Ok(Json(ResourceBody { as_of: Some(as_of), ..past.into() }))
}

/// `GET /api/v1/resources/{id}/virtual-tags/{key}/explain`: why the tag has its value (now, or
/// `?as_of=`), and the key's latest changes.
#[tracing::instrument(skip_all, fields(tenant = %caller.tenant))]
pub async fn explain_tag(
    State(state): State<AppState>,
    caller: Caller,
    token: ConsistencyToken,
    path: Result<Path<(String, String)>, PathRejection>,
    params: Result<Query<ExplainParams>, QueryRejection>,
) -> Result<Json<Explanation>, Problem> {
    caller.require(Role::Viewer)?;
    let Path((id, key)) = path.map_err(|e| Problem::malformed(format!("the path could not be read: {e}")))?;
    let Query(params) = params.map_err(unreadable_query)?;
    let key = TagKey::parse(&key).map_err(|e| Problem::invalid_field("key", e.rule, e.message))?;
    let (query, history) = params.check()?;
    consistency::wait_until_visible(&state.pool, &state.consistency, &token).await?;
    let resource = find(&state, &caller, &id, query.provider).await?;
    explain::explain(&state.pool, &caller.tenant, &resource, key.as_str(), query.as_of, history)
        .await?
        .map(Json)
        .ok_or_else(|| match query.as_of {
            None => Problem::not_found("this resource has no tag with this key"),
            Some(_) => Problem::not_found("this resource had no tag with this key at as_of"),
        })
}

async fn find(state: &AppState, caller: &Caller, id: &str, provider: Option<Provider>) -> Result<Resource, Problem> {
    resources::find(&state.pool, &caller.tenant, id, provider)
        .await?
        .ok_or_else(|| Problem::not_found("no resource with this id"))
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

pub(crate) fn unreadable_query(e: QueryRejection) -> Problem {
    Problem::malformed(format!("the query string could not be read: {}", e.body_text()))
}

pub async fn no_route() -> Problem {
    Problem::not_found("no such endpoint")
}

pub async fn wrong_method() -> Problem {
    Problem::new(StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed", "Method not allowed")
        .detail("this endpoint does not accept that method")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(p: &Problem) -> Vec<(&str, &str)> {
        p.errors.iter().map(|e| (e.field.as_str(), e.rule.as_str())).collect()
    }

    #[test]
    fn every_bad_parameter_is_named_at_once() {
        let p = ResourceParams { provider: Some("oracle".into()), as_of: Some("yesterday".into()) }.check();
        assert_eq!(fields(&p.err().unwrap()), [("provider", "one_of"), ("as_of", "rfc3339")]);
        let p = ExplainParams { as_of: Some("soon".into()), history: Some("21".into()), ..Default::default() }.check();
        assert_eq!(fields(&p.err().unwrap()), [("as_of", "rfc3339"), ("history", "range")]);
    }

    #[test]
    fn blank_parameters_mean_now_and_the_full_history() {
        let (q, history) = ExplainParams { as_of: Some(" ".into()), ..Default::default() }.check().unwrap();
        assert_eq!((q.provider, q.as_of, history), (None, None, 20));
        let q =
            ResourceParams { as_of: Some("2025-11-17T10:00:00+01:00".into()), ..Default::default() }.check().unwrap();
        assert_eq!(q.as_of, rfc3339::parse("2025-11-17T09:00:00Z"));
    }
}
