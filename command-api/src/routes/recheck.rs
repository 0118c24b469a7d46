//! `POST /api/v1/compliance/recheck`: judge a tenant's resources again now — one resource, those a
//! filter covers, or all — without waiting for an event (after fixing tags outside vtag's view of
//! time, or to confirm a remediation). The request is a record on the compliance-policies topic
//! (ordered with the policy versions it runs under, ADR 0007); the evaluator runs it as a job with
//! progress at `GET /api/v1/compliance/jobs/{job_id}` on the query API.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use vtag_domain::compliance::{Scope, Selection};
use vtag_domain::{Provider, ResourceId};
use vtag_service::{Caller, FieldError, Problem, Role, ValidJson};

use super::policies::problem_for;
use super::ContextFactory;
use crate::AppState;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RecheckBody {
    resource_id: Option<String>,
    filter: Option<FilterBody>,
    #[serde(default)]
    all: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FilterBody {
    #[serde(default)]
    providers: Vec<String>,
    #[serde(default)]
    accounts: Vec<String>,
    #[serde(default)]
    resource_types: Vec<String>,
}

#[derive(Serialize)]
struct Accepted {
    job_id: Uuid,
    /// Where the job's progress shows (query API).
    status_url: String,
}

/// Exactly one of `resource_id`, `filter` or `all: true`: a request that names nothing is more
/// likely a mistake than a wish to judge the whole estate.
fn selection(body: RecheckBody) -> Result<Selection, Problem> {
    let named = [body.resource_id.is_some(), body.filter.is_some(), body.all].iter().filter(|n| **n).count();
    if named != 1 {
        return Err(Problem::invalid_field("body", "one_of", "give exactly one of resource_id, filter or \"all\": true"));
    }
    if let Some(raw) = body.resource_id {
        let id = Uuid::parse_str(raw.trim())
            .map_err(|_| Problem::invalid_field("resource_id", "uuid", "must be a resource id as the APIs return it"))?;
        return Ok(Selection { resource: Some(ResourceId::from_uuid(id)), scope: Scope::default() });
    }
    let Some(filter) = body.filter else { return Ok(Selection::default()) };
    let mut errors = Vec::new();
    let mut providers = Vec::new();
    for (i, p) in filter.providers.iter().enumerate() {
        match Provider::parse(p.trim()) {
            Ok(p) => providers.push(p),
            Err(e) => errors.push(FieldError::new(format!("filter.providers[{i}]"), "one_of", e.message)),
        }
    }
    for (field, values) in [("accounts", &filter.accounts), ("resource_types", &filter.resource_types)] {
        for (i, v) in values.iter().enumerate().filter(|(_, v)| v.trim().is_empty()) {
            errors.push(FieldError::new(format!("filter.{field}[{i}]"), "required", format!("'{v}' is empty")));
        }
    }
    if providers.is_empty() && filter.accounts.is_empty() && filter.resource_types.is_empty() && errors.is_empty() {
        errors.push(FieldError::new("filter", "required", "name providers, accounts or resource_types (or send \"all\": true)"));
    }
    if !errors.is_empty() {
        return Err(Problem::invalid(errors));
    }
    let trimmed = |v: Vec<String>| v.into_iter().map(|s| s.trim().to_owned()).collect();
    Ok(Selection { resource: None, scope: Scope { providers, accounts: trimmed(filter.accounts), resource_types: trimmed(filter.resource_types) } })
}

/// Editors may ask: a recheck changes nothing but what the evaluator decides from the tags and
/// policies already there.
pub async fn recheck(State(state): State<AppState>, caller: Caller, headers: HeaderMap, ValidJson(body): ValidJson<RecheckBody>) -> Result<Response, Problem> {
    caller.require(Role::Editor)?;
    let selection = selection(body)?;
    let ctx = ContextFactory::new(&caller, &headers)?.context(0, None);
    let job_id = state.processor.request_recheck(selection, &ctx).await.map_err(problem_for)?;
    let status_url = format!("/api/v1/compliance/jobs/{job_id}");
    Ok((StatusCode::ACCEPTED, Json(Accepted { job_id, status_url })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: serde_json::Value) -> Result<Selection, Problem> {
        selection(serde_json::from_value(json).unwrap())
    }

    fn fields(p: Problem) -> Vec<(String, String)> {
        p.errors.into_iter().map(|e| (e.field, e.rule)).collect()
    }

    #[test]
    fn one_resource_a_filter_or_all() {
        let id = Uuid::from_u128(7);
        assert_eq!(body(serde_json::json!({"resource_id": id.to_string()})).unwrap().resource, Some(ResourceId::from_uuid(id)));
        let all = body(serde_json::json!({"all": true})).unwrap();
        assert!(all.resource.is_none() && all.scope.providers.is_empty() && all.scope.resource_types.is_empty());
        let some = body(serde_json::json!({"filter": {"providers": ["aws"], "resource_types": ["ec2:*"]}})).unwrap();
        assert_eq!((some.scope.providers, some.scope.resource_types), (vec![Provider::Aws], vec!["ec2:*".to_owned()]));
    }

    #[test]
    fn bad_requests_name_the_field_and_the_rule() {
        assert_eq!(fields(body(serde_json::json!({})).unwrap_err()), [("body".to_owned(), "one_of".to_owned())]);
        assert_eq!(fields(body(serde_json::json!({"all": true, "resource_id": "x"})).unwrap_err()), [("body".to_owned(), "one_of".to_owned())]);
        assert_eq!(fields(body(serde_json::json!({"resource_id": "nope"})).unwrap_err()), [("resource_id".to_owned(), "uuid".to_owned())]);
        assert_eq!(
            fields(body(serde_json::json!({"filter": {"providers": ["aws", "oracle"], "accounts": [" "]}})).unwrap_err()),
            [("filter.providers[1]".to_owned(), "one_of".to_owned()), ("filter.accounts[0]".to_owned(), "required".to_owned())]
        );
        assert_eq!(fields(body(serde_json::json!({"filter": {}})).unwrap_err()), [("filter".to_owned(), "required".to_owned())]);
    }
}
