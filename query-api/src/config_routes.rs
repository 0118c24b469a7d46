//! REST handlers of the tagging configuration: the tag schema, the rules, the whole document (JSON
//! or YAML, the GitOps export) and its version history. All honour `X-Config-Version`.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use vtag_service::{Caller, Problem, Role};
use vtag_tagging_config::{RuleDoc, SchemaDoc};

use crate::config::{self, HistoryPage, HistoryParams, Versioned};
use crate::config_wait::{self, ConfigVersion};
use crate::rest::unreadable_query;
use crate::state::AppState;

pub const YAML: &str = "application/yaml";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
}

/// `?format=` wins over `Accept`, so a link or a plain `curl` can ask for YAML too.
#[derive(Debug, Default, Deserialize)]
pub struct FormatParams {
    pub format: Option<String>,
}

/// JSON unless YAML is asked for: by `?format=yaml`, or by an `Accept` that prefers a YAML type to
/// `application/json` (wildcards do not count: they mean "whatever you serve by default").
pub fn negotiate(param: Option<&str>, headers: &HeaderMap) -> Result<Format, Problem> {
    match param.map(str::trim).filter(|p| !p.is_empty()) {
        Some(p) if p.eq_ignore_ascii_case("json") => return Ok(Format::Json),
        Some(p) if p.eq_ignore_ascii_case("yaml") => return Ok(Format::Yaml),
        Some(_) => return Err(Problem::invalid_field("format", "one_of", "must be json or yaml")),
        None => {}
    }
    let (mut yaml, mut json) = (0.0_f32, 0.0_f32);
    for accept in headers.get_all(header::ACCEPT).iter().filter_map(|v| v.to_str().ok()) {
        for range in accept.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            match media.as_str() {
                "application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml" => yaml = yaml.max(q),
                "application/json" => json = json.max(q),
                _ => {}
            }
        }
    }
    Ok(if yaml > 0.0 && yaml > json { Format::Yaml } else { Format::Json })
}

/// `GET /api/v1/tag-schema`: the canonical keys, their aliases and value mappings.
#[derive(Debug, Serialize)]
pub struct SchemaBody {
    pub version: i64,
    #[serde(flatten)]
    pub schema: SchemaDoc,
}

#[tracing::instrument(skip_all, fields(tenant = %caller.tenant))]
pub async fn tag_schema(
    State(state): State<AppState>,
    caller: Caller,
    wanted: ConfigVersion,
) -> Result<Json<SchemaBody>, Problem> {
    let Versioned { version, document } = current(&state, &caller, wanted).await?;
    Ok(Json(SchemaBody { version, schema: document.schema }))
}

#[derive(Debug, Serialize)]
pub struct RulesBody {
    pub version: i64,
    pub rules: Vec<RuleDoc>,
    pub defaults: std::collections::BTreeMap<String, String>,
}

/// `GET /api/v1/rules`: rules and defaults as JSON; as YAML, the whole document, because the
/// YAML form is the GitOps file and a file of rules alone could not be imported back.
#[tracing::instrument(skip_all, fields(tenant = %caller.tenant))]
pub async fn rules(
    State(state): State<AppState>,
    caller: Caller,
    wanted: ConfigVersion,
    headers: HeaderMap,
    params: Result<Query<FormatParams>, QueryRejection>,
) -> Result<Response, Problem> {
    caller.require(Role::Viewer)?;
    let Query(params) = params.map_err(unreadable_query)?;
    let format = negotiate(params.format.as_deref(), &headers)?;
    let config = current(&state, &caller, wanted).await?;
    if format == Format::Yaml {
        return Ok(document_response(config, format, &headers));
    }
    let Versioned { version, document } = config;
    let mut response = Json(RulesBody { version, rules: document.rules, defaults: document.defaults }).into_response();
    response.headers_mut().insert(header::VARY, HeaderValue::from_static("accept"));
    Ok(response)
}

/// `GET /api/v1/tagging-config`: the whole document, exactly what `PUT /api/v1/tagging-config`
/// of the command API takes back, with its version as the ETag (the command API's `If-Match`).
#[tracing::instrument(skip_all, fields(tenant = %caller.tenant))]
pub async fn tagging_config(
    State(state): State<AppState>,
    caller: Caller,
    wanted: ConfigVersion,
    headers: HeaderMap,
    params: Result<Query<FormatParams>, QueryRejection>,
) -> Result<Response, Problem> {
    caller.require(Role::Viewer)?;
    let Query(params) = params.map_err(unreadable_query)?;
    let format = negotiate(params.format.as_deref(), &headers)?;
    let config = current(&state, &caller, wanted).await?;
    Ok(document_response(config, format, &headers))
}

/// `GET /api/v1/tagging-config/history`: newest first, without documents.
#[tracing::instrument(skip_all, fields(tenant = %caller.tenant))]
pub async fn history(
    State(state): State<AppState>,
    caller: Caller,
    wanted: ConfigVersion,
    params: Result<Query<HistoryParams>, QueryRejection>,
) -> Result<Json<HistoryPage>, Problem> {
    caller.require(Role::Viewer)?;
    let Query(params) = params.map_err(unreadable_query)?;
    let query = params.check()?;
    config_wait::wait_for_config(&state.pool, &state.consistency, &caller.tenant, wanted).await?;
    Ok(Json(config::history(&state.pool, &caller.tenant, query).await?))
}

async fn current(state: &AppState, caller: &Caller, wanted: ConfigVersion) -> Result<Versioned, Problem> {
    caller.require(Role::Viewer)?;
    config_wait::wait_for_config(&state.pool, &state.consistency, &caller.tenant, wanted).await?;
    config::current(&state.pool, &caller.tenant).await
}

/// The document in the negotiated format, with `ETag: "<version>"`; a matching `If-None-Match`
/// gets a 304, so a GitOps job polling for drift transfers nothing while nothing changed.
fn document_response(config: Versioned, format: Format, headers: &HeaderMap) -> Response {
    let document = config.document;
    versioned_response(config.version, format, headers, || Json(&document).into_response(), || document.to_yaml())
}

/// A versioned document's answer (see [`document_response`]): `json` or `yaml` renders it.
pub(crate) fn versioned_response(
    version: i64,
    format: Format,
    headers: &HeaderMap,
    json: impl FnOnce() -> Response,
    yaml: impl FnOnce() -> String,
) -> Response {
    let etag = format!("\"{version}\"");
    let etag_value = HeaderValue::from_str(&etag).expect("a quoted number is a valid header value");
    let unchanged = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == etag || tag == "*");
    let mut response = if unchanged {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        match format {
            Format::Json => json(),
            Format::Yaml => ([(header::CONTENT_TYPE, YAML)], yaml()).into_response(),
        }
    };
    let h = response.headers_mut();
    h.insert(header::ETAG, etag_value);
    h.insert(header::VARY, HeaderValue::from_static("accept"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_static(v));
        h
    }

    #[test]
    fn json_unless_yaml_is_preferred() {
        let n = |param: Option<&str>, h: HeaderMap| negotiate(param, &h).unwrap();
        assert_eq!(n(None, HeaderMap::new()), Format::Json);
        assert_eq!(n(None, accept("*/*")), Format::Json);
        assert_eq!(n(None, accept("application/yaml")), Format::Yaml);
        assert_eq!(n(None, accept("text/yaml, */*;q=0.1")), Format::Yaml);
        assert_eq!(n(None, accept("application/json, application/yaml;q=0.5")), Format::Json);
        assert_eq!(n(None, accept("application/yaml;q=0.5, application/json;q=0.4")), Format::Yaml);
        assert_eq!(n(None, accept("application/yaml;q=0")), Format::Json);
        assert_eq!(n(Some("yaml"), accept("application/json")), Format::Yaml);
        assert_eq!(n(Some("JSON"), accept("application/yaml")), Format::Json);
    }

    #[test]
    fn an_unknown_format_is_refused_naming_the_parameter() {
        let p = negotiate(Some("xml"), &HeaderMap::new()).unwrap_err();
        assert_eq!((p.status, p.errors[0].field.as_str(), p.errors[0].rule.as_str()), (422, "format", "one_of"));
    }

    #[test]
    fn the_etag_is_the_quoted_version_and_if_none_match_short_cuts() {
        let config = Versioned { version: 4, document: vtag_tagging_config::ConfigDocument::initial() };
        let r = document_response(config.clone(), Format::Yaml, &HeaderMap::new());
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[header::ETAG], "\"4\"");
        assert_eq!(r.headers()[header::CONTENT_TYPE], YAML);
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"3\", \"4\""));
        assert_eq!(document_response(config.clone(), Format::Json, &h).status(), StatusCode::NOT_MODIFIED);
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"3\""));
        assert_eq!(document_response(config, Format::Json, &h).status(), StatusCode::OK);
    }
}
