//! `vtag-schema-registry`: a small, durable Avro schema registry that speaks the
//! Confluent Schema Registry REST API.
//!
//! It is vtag's local stand-in for Confluent Schema Registry / Karapace: producers and
//! consumers use their ordinary clients (e.g. `schema_registry_converter`) against it,
//! and in production point the same clients at the real thing.
//!
//! What it does: global, stable schema ids (the same schema under two subjects gets one
//! id); versions per subject; Confluent's compatibility levels, enforced with
//! `apache-avro`'s schema-resolution check; subject and global config. What it leaves
//! out: deletes, schema references, JSON Schema and Protobuf, modes, contexts.
//!
//! Durability: every change is a line in an append-only JSON-lines journal in the data
//! dir, fsynced before the response (see [`journal`]), replayed on start.
//!
//! ```no_run
//! # async fn run() -> Result<(), vtag_schema_registry::ServeError> {
//! use vtag_schema_registry::{serve, CompatibilityLevel};
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! serve(listener, "data".into(), CompatibilityLevel::BackwardTransitive, async {
//!     let _ = tokio::signal::ctrl_c().await;
//! })
//! .await
//! # }
//! ```

pub mod avro_schema;
pub mod compatibility;
pub mod error;
pub mod journal;
pub mod registry;
pub mod routes;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

pub use compatibility::CompatibilityLevel;
pub use error::{RegistryError, ServeError};
pub use registry::Registry;
pub use routes::router;

/// The level used when neither the journal nor the operator says otherwise: new schemas
/// must be able to read everything ever written to the subject.
pub const DEFAULT_COMPATIBILITY: CompatibilityLevel = CompatibilityLevel::BackwardTransitive;

/// Opens (or creates) the registry in `data_dir` and serves it on `listener` until
/// `shutdown` completes, then drains in-flight requests and returns.
pub async fn serve<F>(
    listener: tokio::net::TcpListener,
    data_dir: PathBuf,
    default_level: CompatibilityLevel,
    shutdown: F,
) -> Result<(), ServeError>
where
    F: Future<Output = ()> + Send + 'static,
{
    // Replay reads and parses the whole journal: blocking work, keep it off the workers.
    let registry = tokio::task::spawn_blocking(move || Registry::open(&data_dir, default_level))
        .await
        .map_err(|e| ServeError::Startup(e.to_string()))??;
    tracing::info!(addr = ?listener.local_addr().ok(), %default_level, "schema registry listening");
    axum::serve(listener, router(Arc::new(registry)))
        .with_graceful_shutdown(shutdown)
        .await?;
    tracing::info!("schema registry stopped");
    Ok(())
}
