//! Errors, and how they map onto Confluent's error bodies.
//!
//! Clients (Java's `CachedSchemaRegistryClient`, `schema_registry_converter`, Karapace
//! tooling) branch on `error_code`, not on the message, so the codes below are the ones
//! Confluent documents; the messages are for humans.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::journal::JournalError;
use crate::routes::sr_json;

/// A request-level failure, turned into `{"error_code": N, "message": "..."}`.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("Subject '{0}' not found.")]
    SubjectNotFound(String),

    #[error("Version {version} not found for subject '{subject}'.")]
    VersionNotFound { subject: String, version: u32 },

    #[error("Schema not found")]
    SchemaNotFound,

    #[error("Schema {0} not found")]
    SchemaIdNotFound(u32),

    #[error("Subject '{0}' does not have subject-level compatibility configured")]
    SubjectLevelNotConfigured(String),

    #[error("Invalid schema: {0}")]
    InvalidSchema(String),

    #[error(
        "The specified version '{0}' is not a valid version id. \
         Allowed values are between [1, 2^31-1] and the string \"latest\""
    )]
    InvalidVersion(String),

    #[error(
        "Invalid compatibility level '{0}'. Valid values are NONE, BACKWARD, BACKWARD_TRANSITIVE, \
         FORWARD, FORWARD_TRANSITIVE, FULL and FULL_TRANSITIVE"
    )]
    InvalidCompatibilityLevel(String),

    #[error(
        "Schema being registered is incompatible with an earlier schema for subject '{subject}', \
         details: {}", messages.join("; ")
    )]
    Incompatible {
        subject: String,
        messages: Vec<String>,
    },

    #[error("Invalid request body: {0}")]
    BadRequest(String),

    #[error("HTTP 404 Not Found")]
    RouteNotFound,

    /// The journal could not be written: nothing was acknowledged, nothing changed.
    #[error("Error in the backend data store: {0}")]
    Store(#[from] JournalError),

    #[error("Internal server error: {0}")]
    Internal(String),
}

impl RegistryError {
    /// (HTTP status, Confluent `error_code`).
    pub fn codes(&self) -> (StatusCode, u32) {
        use RegistryError::*;
        match self {
            SubjectNotFound(_) => (StatusCode::NOT_FOUND, 40401),
            VersionNotFound { .. } => (StatusCode::NOT_FOUND, 40402),
            SchemaNotFound | SchemaIdNotFound(_) => (StatusCode::NOT_FOUND, 40403),
            SubjectLevelNotConfigured(_) => (StatusCode::NOT_FOUND, 40408),
            RouteNotFound => (StatusCode::NOT_FOUND, 404),
            InvalidSchema(_) => (StatusCode::UNPROCESSABLE_ENTITY, 42201),
            InvalidVersion(_) => (StatusCode::UNPROCESSABLE_ENTITY, 42202),
            InvalidCompatibilityLevel(_) => (StatusCode::UNPROCESSABLE_ENTITY, 42203),
            Incompatible { .. } => (StatusCode::CONFLICT, 409),
            BadRequest(_) => (StatusCode::BAD_REQUEST, 400),
            Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, 50001),
            Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, 50000),
        }
    }
}

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let (status, error_code) = self.codes();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        sr_json(
            status,
            &json!({ "error_code": error_code, "message": self.to_string() }),
        )
    }
}

/// Why the server could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("could not open the journal: {0}")]
    Journal(#[from] JournalError),
    #[error("server I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("startup task failed: {0}")]
    Startup(String),
}
