//! The query API: the read side of vtag. It serves the Postgres read model that the postgres
//! projector maintains, and nothing else — it never writes and never migrates, and native cloud
//! tags, which are not in the read model, can never come out of it.
//!
//! Map:
//! - [`settings`]: configuration from `VTAG_*` environment variables.
//! - [`state`]: the shared [`AppState`] and the read-only Postgres pool.
//! - [`consistency`]: read-your-writes — wait (bounded) until the projector has passed the
//!   client's `X-Consistency-Token`.
//! - [`config_wait`]: read-your-writes for tagging configurations (`X-Config-Version`).
//! - [`resources`]: SQL for one resource and its virtual tags (by vtag UUID or cloud id).
//! - [`provenance`]: where a derived value came from, as both tag tables record it.
//! - [`history`]: tags as they were at an instant, and one key's changes, from the audit trail.
//! - [`explain`]: the chain from raw input to a tag's value.
//! - [`audit`]: SQL, input rules and keyset cursor for the audit trail.
//! - [`config`]: SQL for tagging configurations (current document, one rule of a version, history).
//! - [`jobs`]: re-derivation job progress (SQL and handler).
//! - [`rest`]: the REST handlers of resources and the audit trail; [`config_routes`]: those of the
//!   tagging configuration; [`graphql`]: the GraphQL schema and its HTTP glue.
//! - [`allocation`]: cost allocation by virtual tag (untagged and unallocatable shown apart), over
//!   [`cost_cache`], the committed cost imports held in memory; [`cost_routes`]: its REST handlers
//!   and the import history; [`coverage`]: tag coverage as a share of cost, stage by stage.
//! - [`search`]: the resource list over the search read model (OpenSearch): text, filters, facets.
//! - [`lag`]: each read model's checkpoints against the log's high watermarks.
//! - [`rfc3339`]: the single timestamp format clients see.
//!
//! Invariants: the tenant comes only from the verified token and every tenant-data statement is
//! filtered by it (another tenant's resource is a 404, like a missing one); every error is
//! problem+json; every endpoint but `/health` (and the static GraphiQL page) needs a viewer token.

// Problem (problem+json) is the error type of every vtag service by design; errors are the rare
// path, so its size in a Result is not worth boxing.
#![allow(clippy::result_large_err)]

pub mod allocation;
pub mod audit;
pub mod config;
pub mod config_routes;
pub mod config_wait;
pub mod compliance_routes;
pub mod consistency;
pub mod cost_cache;
pub mod cost_routes;
pub mod coverage;
pub mod cursor;
pub mod explain;
pub mod graph;
pub mod graphql;
pub mod history;
pub mod jobs;
pub mod lag;
pub mod policy_routes;
pub mod search;
pub mod provenance;
pub mod remediation;
pub mod resources;
pub mod rest;
pub mod rfc3339;
pub mod settings;
pub mod state;
pub mod tag_cache;

use std::future::Future;

use axum::routing::get;
use axum::Router;

pub use settings::Settings;
pub use state::AppState;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(rest::health))
        .route("/api/v1/resources/{id}/virtual-tags", get(rest::resource_virtual_tags))
        .route("/api/v1/resources/{id}/virtual-tags/{key}/explain", get(rest::explain_tag))
        .route("/api/v1/audit-trail", get(rest::audit_trail))
        .route("/api/v1/search", get(search::search))
        .route("/api/v1/read-models/lag", get(lag::lag))
        .route("/api/v1/graph/teams/{team}/resources", get(graph::team_resources))
        .route("/api/v1/graph/projects/shared", get(graph::shared_projects))
        .route("/api/v1/graph/ownership-conflicts", get(graph::ownership_conflicts))
        .route("/api/v1/costs/allocation", get(cost_routes::allocation))
        .route("/api/v1/costs/imports", get(cost_routes::imports))
        .route("/api/v1/cost-splits", get(cost_routes::splits))
        .route("/api/v1/costs/coverage", get(coverage::coverage))
        .route("/api/v1/costs/imports/{id}", get(cost_routes::import))
        .route("/api/v1/tag-schema", get(config_routes::tag_schema))
        .route("/api/v1/rules", get(config_routes::rules))
        .route("/api/v1/tagging-config", get(config_routes::tagging_config))
        .route("/api/v1/tagging-config/history", get(config_routes::history))
        .route("/api/v1/policies", get(policy_routes::policies))
        .route("/api/v1/compliance/status", get(compliance_routes::status))
        .route("/api/v1/compliance/violations", get(compliance_routes::violations))
        .route("/api/v1/compliance/jobs/{job_id}", get(jobs::compliance_job))
        .route("/api/v1/compliance/remediations", get(remediation::remediations))
        .route("/api/v1/policies/{id}", get(policy_routes::policy))
        .route("/api/v1/rederivations/{job_id}", get(jobs::rederivation))
        .route("/graphql", get(graphql::graphiql).post(graphql::execute))
        .fallback(rest::no_route)
        .method_not_allowed_fallback(rest::wrong_method)
        .with_state(state)
}

/// Serves until `shutdown` completes, then drains in-flight requests. The listener is a parameter
/// so tests can bind port 0.
pub async fn serve(
    listener: tokio::net::TcpListener,
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let state = AppState::from_settings(&settings).await?;
    tracing::info!(
        addr = %listener.local_addr()?,
        topic = state.consistency.topic(),
        consistency_wait_ms = settings.consistency_wait.as_millis() as u64,
        "query API listening"
    );
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await?;
    Ok(())
}
