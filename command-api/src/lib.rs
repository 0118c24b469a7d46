//! The command API: the only way facts enter vtag's event log.
//!
//! An HTTP command is parsed into domain values ([`routes`]), handed to the [`processor`] — the
//! single writer of each partition of the event topic — which decides it against the aggregate's
//! state, appends the resulting events with an idempotent producer, and answers with the new
//! aggregate version and a read-your-writes token once the broker has acknowledged them.
//!
//! Every decision derives virtual tags under the tenant's tagging configuration ([`tagging`]);
//! configuration changes are appended to their own topic, and a re-derivation job per partition
//! brings every resource to the new version.

pub mod backlog;
pub mod compliance;
pub mod costs;
pub mod processor;
pub mod routes;
pub mod settings;
pub mod tagging;

use std::future::Future;
use std::sync::Arc;

use axum::extract::FromRef;
use vtag_service::Authenticator;

pub use settings::Settings;

#[derive(Clone)]
pub struct AppState {
    pub processor: Arc<processor::CommandProcessor>,
    pub auth: Arc<Authenticator>,
}

impl FromRef<AppState> for Arc<Authenticator> {
    fn from_ref(state: &AppState) -> Self {
        state.auth.clone()
    }
}

/// Starts the processor (rebuilding partition state from the log), then serves HTTP until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    settings: Settings,
    auth: Authenticator,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let processor = Arc::new(processor::CommandProcessor::start(&settings).await?);
    let rederivation = processor.spawn_rederivation();
    let state = AppState { processor: processor.clone(), auth: Arc::new(auth) };
    tracing::info!(addr = %listener.local_addr()?, "command API listening");
    axum::serve(listener, routes::router(state)).with_graceful_shutdown(shutdown).await?;
    rederivation.abort();
    processor.shutdown().await;
    Ok(())
}
