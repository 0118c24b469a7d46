//! The Confluent Schema Registry REST surface (the subset Avro clients use).
//!
//! Bodies are read as raw bytes and parsed here rather than with axum's `Json`
//! extractor, because that extractor insists on `Content-Type: application/json` while
//! Confluent clients send `application/vnd.schemaregistry.v1+json` (and some send none).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::compatibility::CompatibilityLevel;
use crate::error::RegistryError;
use crate::registry::{Registry, SubjectVersion, VersionSpec};

pub const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

type AppState = State<Arc<Registry>>;
type ApiResult = Result<Response, RegistryError>;

/// The HTTP API over `registry`.
pub fn router(registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/health", get(health))
        .route("/schemas/types", get(schema_types))
        .route("/schemas/ids/{id}", get(schema_by_id))
        .route("/schemas/ids/{id}/schema", get(raw_schema_by_id))
        .route("/subjects", get(list_subjects))
        .route("/subjects/{subject}", post(lookup_schema))
        .route(
            "/subjects/{subject}/versions",
            get(list_versions).post(register_schema),
        )
        .route("/subjects/{subject}/versions/{version}", get(get_version))
        .route(
            "/subjects/{subject}/versions/{version}/schema",
            get(get_raw_version),
        )
        .route(
            "/compatibility/subjects/{subject}/versions/{version}",
            post(test_compatibility),
        )
        .route("/config", get(get_global_config).put(put_global_config))
        .route(
            "/config/{subject}",
            get(get_subject_config)
                .put(put_subject_config)
                .delete(delete_subject_config),
        )
        .fallback(|| async { RegistryError::RouteNotFound })
        .with_state(registry)
}

/// A JSON response with Confluent's content type.
pub(crate) fn sr_json(status: StatusCode, body: &impl Serialize) -> Response {
    let bytes = serde_json::to_vec(body).expect("response bodies always serialise");
    (status, [(header::CONTENT_TYPE, CONTENT_TYPE)], bytes).into_response()
}

fn ok(body: &impl Serialize) -> ApiResult {
    Ok(sr_json(StatusCode::OK, body))
}

fn parse_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, RegistryError> {
    serde_json::from_slice(body).map_err(|e| RegistryError::BadRequest(e.to_string()))
}

/// Runs a registry call that may fsync on the blocking pool, off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, RegistryError> + Send + 'static,
) -> Result<T, RegistryError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| RegistryError::Internal(e.to_string()))?
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SchemaRequest {
    schema: String,
    #[serde(default)]
    schema_type: Option<String>,
    #[serde(default)]
    references: Vec<Value>,
}

impl SchemaRequest {
    /// Only self-contained Avro is supported; say so instead of silently misparsing.
    fn into_avro_text(self) -> Result<String, RegistryError> {
        if let Some(t) = self.schema_type.as_deref() {
            if !t.eq_ignore_ascii_case("AVRO") {
                return Err(RegistryError::InvalidSchema(format!(
                    "schemaType {t} is not supported, only AVRO"
                )));
            }
        }
        if !self.references.is_empty() {
            return Err(RegistryError::InvalidSchema(
                "schema references are not supported by this registry".to_owned(),
            ));
        }
        Ok(self.schema)
    }
}

fn version_body(v: &SubjectVersion) -> Value {
    // schemaType is omitted for AVRO, as Confluent does.
    json!({ "subject": v.subject, "version": v.version, "id": v.id, "schema": v.schema.text })
}

/// The raw schema text is itself JSON; return it as such.
fn raw_schema(text: &str) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        text.to_owned(),
    )
        .into_response()
}

async fn root() -> ApiResult {
    ok(&json!({}))
}

async fn health() -> ApiResult {
    ok(&json!({ "status": "UP" }))
}

async fn schema_types() -> ApiResult {
    ok(&["AVRO"])
}

fn parse_id(id: &str) -> Result<u32, RegistryError> {
    // An id that is not a number cannot exist; Confluent answers 404 40403 too.
    id.parse().map_err(|_| RegistryError::SchemaNotFound)
}

async fn schema_by_id(State(registry): AppState, Path(id): Path<String>) -> ApiResult {
    let schema = registry.schema_by_id(parse_id(&id)?)?;
    ok(&json!({ "schema": schema.text }))
}

async fn raw_schema_by_id(State(registry): AppState, Path(id): Path<String>) -> ApiResult {
    Ok(raw_schema(&registry.schema_by_id(parse_id(&id)?)?.text))
}

async fn list_subjects(State(registry): AppState) -> ApiResult {
    ok(&registry.subjects())
}

async fn list_versions(State(registry): AppState, Path(subject): Path<String>) -> ApiResult {
    ok(&registry.versions(&subject)?)
}

async fn register_schema(
    State(registry): AppState,
    Path(subject): Path<String>,
    body: Bytes,
) -> ApiResult {
    let text = parse_body::<SchemaRequest>(&body)?.into_avro_text()?;
    let id = blocking(move || registry.register(&subject, &text)).await?;
    ok(&json!({ "id": id }))
}

async fn lookup_schema(
    State(registry): AppState,
    Path(subject): Path<String>,
    body: Bytes,
) -> ApiResult {
    let text = parse_body::<SchemaRequest>(&body)?.into_avro_text()?;
    ok(&version_body(&registry.lookup(&subject, &text)?))
}

async fn get_version(
    State(registry): AppState,
    Path((subject, version)): Path<(String, String)>,
) -> ApiResult {
    let v = registry.version(&subject, version.parse()?)?;
    ok(&version_body(&v))
}

async fn get_raw_version(
    State(registry): AppState,
    Path((subject, version)): Path<(String, String)>,
) -> ApiResult {
    let v = registry.version(&subject, version.parse()?)?;
    Ok(raw_schema(&v.schema.text))
}

async fn test_compatibility(
    State(registry): AppState,
    Path((subject, version)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let spec: VersionSpec = version.parse()?;
    let text = parse_body::<SchemaRequest>(&body)?.into_avro_text()?;
    let messages = registry.check_compatibility(&subject, spec, &text)?;
    if messages.is_empty() {
        ok(&json!({ "is_compatible": true }))
    } else {
        ok(&json!({ "is_compatible": false, "messages": messages }))
    }
}

#[derive(Deserialize)]
struct ConfigRequest {
    compatibility: String,
}

fn level_body(level: CompatibilityLevel) -> Value {
    json!({ "compatibilityLevel": level })
}

async fn get_global_config(State(registry): AppState) -> ApiResult {
    ok(&level_body(registry.global_level()))
}

async fn put_global_config(State(registry): AppState, body: Bytes) -> ApiResult {
    let level: CompatibilityLevel = parse_body::<ConfigRequest>(&body)?.compatibility.parse()?;
    blocking(move || registry.set_level(None, Some(level))).await?;
    ok(&json!({ "compatibility": level }))
}

async fn get_subject_config(
    State(registry): AppState,
    Path(subject): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult {
    // Confluent only falls back to the global level when asked to.
    let default_to_global = query
        .get("defaultToGlobal")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    match registry.subject_level(&subject) {
        Some(level) => ok(&level_body(level)),
        None if default_to_global => ok(&level_body(registry.global_level())),
        None => Err(RegistryError::SubjectLevelNotConfigured(subject)),
    }
}

async fn put_subject_config(
    State(registry): AppState,
    Path(subject): Path<String>,
    body: Bytes,
) -> ApiResult {
    let level: CompatibilityLevel = parse_body::<ConfigRequest>(&body)?.compatibility.parse()?;
    blocking(move || registry.set_level(Some(&subject), Some(level))).await?;
    ok(&json!({ "compatibility": level }))
}

async fn delete_subject_config(
    State(registry): AppState,
    Path(subject): Path<String>,
) -> ApiResult {
    let previous = registry
        .subject_level(&subject)
        .ok_or_else(|| RegistryError::SubjectLevelNotConfigured(subject.clone()))?;
    blocking(move || registry.set_level(Some(&subject), None)).await?;
    ok(&json!({ "compatibilityLevel": previous }))
}
