//! HTTP routes of the command API. Every route authenticates the caller; the tenant and actor of a
//! command come from the token, never from the body.

mod costs;
mod observe;
mod policies;
mod recheck;
mod remediation;
mod requests;
mod rules;
mod tags;
mod upload;

use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Serialize;
use uuid::Uuid;
use vtag_domain::{Actor, CommandContext, ResourceError, TenantId};
use vtag_eventlog::LogPosition;
use vtag_service::Problem;

use crate::processor::{Outcome, SubmitError};
use crate::AppState;

/// Largest batch one request may carry: big enough for a collector page, small enough that one
/// request cannot hold a partition lock for long.
pub const MAX_BATCH: usize = 5_000;

/// Largest billing file one request may carry (4 GiB, gzip or not).
pub const MAX_BILLING_FILE: usize = 4 << 30;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(|| async { Json(serde_json::json!({"status": "ok"})) }))
        .route("/api/v1/resources/observe", post(observe::observe))
        // A month of FOCUS for a large estate is hundreds of megabytes uncompressed: read as it
        // arrives, bounded by MAX_BILLING_FILE there.
        .route("/api/v1/costs/imports", post(costs::import))
        .route("/api/v1/virtual-tags/apply", post(tags::apply))
        .route("/api/v1/virtual-tags/{id}", put(tags::update).delete(tags::remove))
        .route("/api/v1/cost-splits", put(costs::put_splits))
        .route("/api/v1/policies", put(policies::replace).post(policies::create))
        .route("/api/v1/policies/{id}", put(policies::put).delete(policies::delete))
        .route("/api/v1/policies/{id}/enable", post(policies::enable))
        .route("/api/v1/policies/{id}/disable", post(policies::disable))
        .route("/api/v1/compliance/recheck", post(recheck::recheck))
        .route("/api/v1/compliance/remediations", post(remediation::apply))
        .route("/api/v1/tagging-config", put(rules::replace))
        .route("/api/v1/tag-mappings", post(rules::add_mapping))
        .route("/api/v1/rules", post(rules::save_rule))
        .route("/api/v1/rules/preview", post(rules::preview))
        .route("/api/v1/rules/reorder", post(rules::reorder))
        .route("/api/v1/rules/defaults", put(rules::set_defaults))
        .route("/api/v1/rules/{id}", put(rules::put_rule).delete(rules::remove_rule))
        .route("/api/v1/rules/{id}/enable", post(rules::enable_rule))
        .route("/api/v1/rules/{id}/disable", post(rules::disable_rule))
        .with_state(state)
}

/// The read-your-writes token of a set of outcomes: hand it to the query API as
/// `X-Consistency-Token` to read your own writes.
fn consistency_token<'a>(outcomes: impl IntoIterator<Item = &'a Outcome>) -> String {
    let mut pos = LogPosition::default();
    for o in outcomes {
        if let Some((p, off)) = o.position {
            pos.record(p, off);
        }
    }
    pos.to_string()
}

/// Builds command contexts for a request. With an `Idempotency-Key`, command ids are derived from
/// it, so a client that retries the same request gets the same answers and records nothing twice.
struct ContextFactory {
    tenant: TenantId,
    actor: Actor,
    idempotency_key: Option<String>,
    correlation_id: Uuid,
    now: chrono::DateTime<chrono::Utc>,
}

impl ContextFactory {
    const NAMESPACE: Uuid = Uuid::from_u128(0x2b8e_4c1d_77a0_4f3e_9c55_1e0f_aa6d_0b42);

    fn new(caller: &vtag_service::Caller, headers: &axum::http::HeaderMap) -> Result<Self, Problem> {
        let idempotency_key = match headers.get("idempotency-key") {
            None => None,
            Some(v) => {
                let v = v.to_str().ok().filter(|v| !v.is_empty() && v.len() <= 200).ok_or_else(|| {
                    Problem::invalid_field("Idempotency-Key", "max_length", "must be 1 to 200 visible ASCII characters")
                })?;
                Some(v.to_owned())
            }
        };
        let correlation_id = headers
            .get("x-correlation-id")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Uuid::parse_str(v).ok())
            .unwrap_or_else(Uuid::now_v7);
        Ok(Self {
            tenant: caller.tenant.clone(),
            actor: caller.actor.clone(),
            idempotency_key,
            correlation_id,
            now: chrono::Utc::now(),
        })
    }

    fn context(&self, index: usize, occurred_at: Option<chrono::DateTime<chrono::Utc>>) -> CommandContext {
        let command_id = match &self.idempotency_key {
            Some(key) => Uuid::new_v5(&Self::NAMESPACE, format!("{}\u{1f}{key}\u{1f}{index}", self.tenant).as_bytes()),
            None => Uuid::now_v7(),
        };
        CommandContext {
            command_id,
            tenant: self.tenant.clone(),
            actor: self.actor.clone(),
            correlation_id: self.correlation_id,
            occurred_at: occurred_at.unwrap_or(self.now),
            recorded_at: self.now,
        }
    }
}

fn problem_for(error: &SubmitError) -> Problem {
    match error {
        SubmitError::Refused(ResourceError::VersionConflict { expected, actual }) => {
            Problem::conflict(error.to_string()).with("expected_version", *expected).with("current_version", *actual)
        }
        SubmitError::Refused(ResourceError::UnknownResource) => Problem::not_found(error.to_string()),
        SubmitError::Refused(ResourceError::TagNotPresent { .. }) => Problem::not_found(error.to_string()),
        SubmitError::Refused(ResourceError::DerivedTag { derived_as, .. }) => {
            Problem::conflict(error.to_string()).with("source", derived_as.as_str())
        }
        SubmitError::Refused(ResourceError::DerivedSource(_)) => {
            Problem::invalid_field("source", "one_of", error.to_string())
        }
        SubmitError::Unavailable(_) => Problem::unavailable(format!("{error}; retrying the request is safe")),
        SubmitError::NotOwner(p) => {
            Problem::unavailable(format!("{error}; send it to that instance (retrying is safe)")).with("partition", *p)
        }
    }
}

/// One item of a batch answer: its outcome or the problem that refused it.
#[derive(Serialize)]
#[serde(untagged)]
enum ItemResult<T: Serialize> {
    Ok(T),
    Err { status: u16, problem: Problem },
}

impl<T: Serialize> ItemResult<T> {
    fn from(result: Result<T, &SubmitError>) -> Self {
        match result {
            Ok(v) => Self::Ok(v),
            Err(e) => {
                let problem = problem_for(e);
                Self::Err { status: problem.status, problem }
            }
        }
    }
}
