//! What every handler shares: the read-only pool, the authenticator, the GraphQL schema and the
//! read-your-writes settings.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use vtag_eventlog::EventTopics;
use vtag_service::{Authenticator, Problem};

use crate::consistency::Consistency;
use crate::cost_cache::CostCache;
use crate::graph::GraphModel;
use crate::graphql::{self, QuerySchema};
use crate::search::SearchModel;
use crate::settings::Settings;

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub auth: Arc<Authenticator>,
    pub consistency: Arc<Consistency>,
    pub schema: QuerySchema,
    pub costs: Arc<CostCache>,
    pub search: SearchModel,
    pub graph: GraphModel,
    /// The event log, for the lag report's high watermarks.
    pub brokers: String,
    pub topic_prefix: String,
}

impl AppState {
    #[allow(clippy::too_many_arguments)]
    pub fn with_cost_cache(
        pool: PgPool,
        auth: Arc<Authenticator>,
        topic_prefix: &str,
        consistency_wait: Duration,
        cost_cache_rows: usize,
        search: SearchModel,
        graph: GraphModel,
        brokers: &str,
    ) -> Self {
        // The partition count plays no part in a topic's name; EventTopics is used only so the name
        // cannot drift from the one the command API and the projector use.
        let topic = EventTopics::new(topic_prefix, 0).resource_events();
        let costs = Arc::new(CostCache::new(cost_cache_rows, topic.clone()));
        let consistency = Arc::new(Consistency::new(topic, consistency_wait));
        let schema = graphql::schema(pool.clone(), costs.clone(), graph.clone());
        Self { pool, auth, consistency, schema, costs, search, graph, brokers: brokers.to_owned(), topic_prefix: topic_prefix.to_owned() }
    }

    pub async fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let pool = connect(&settings.database_url).await?;
        Ok(Self::with_cost_cache(
            pool,
            settings.authenticator.clone(),
            &settings.topic_prefix,
            settings.consistency_wait,
            settings.cost_cache_rows,
            SearchModel::connect(&settings.opensearch_url, &settings.topic_prefix)?,
            GraphModel::connect(&settings.bolt, &settings.topic_prefix)?,
            &settings.brokers,
        ))
    }
}

impl FromRef<AppState> for Arc<Authenticator> {
    fn from_ref(state: &AppState) -> Self {
        state.auth.clone()
    }
}

/// Opens the pool. Sessions are read-only at the server, so "the query API never writes" is
/// enforced by Postgres rather than by review; a statement timeout keeps one slow query from
/// holding one of only ten connections indefinitely.
pub async fn connect(database_url: &str) -> anyhow::Result<PgPool> {
    let options = PgConnectOptions::from_str(database_url)
        .map_err(|e| anyhow::anyhow!("VTAG_DATABASE_URL is not a Postgres URL: {e}"))?
        .options([("default_transaction_read_only", "on"), ("statement_timeout", "10s")]);
    let pool = PgPoolOptions::new()
        .max_connections(10)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .map_err(|e| anyhow::anyhow!("connecting to Postgres: {e}"))?;
    Ok(pool)
}

/// A database failure seen by a client. Connectivity problems are retryable (503); anything else
/// is a bug or a schema mismatch with the projector (500, logged).
pub fn db_error(e: sqlx::Error) -> Problem {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
            tracing::warn!(error = %e, "read model unavailable");
            Problem::unavailable("the read model is unavailable; retry shortly")
        }
        other => Problem::internal(other),
    }
}
