//! JSON request bodies whose errors name the exact field (`resources[2].provider`), as problem+json.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::de::DeserializeOwned;

use crate::problem::Problem;

/// Like `axum::Json`, but a body that is not JSON is a 400 and JSON of the wrong shape is a 422
/// naming the field, the rule and the reason.
pub struct ValidJson<T>(pub T);

/// Bodies are bounded so a client cannot make a service buffer gigabytes.
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ValidJson<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json") || v.contains("+json"));
        if !is_json {
            return Err(Problem::new(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Expected a JSON body",
            )
            .detail("set Content-Type: application/json"));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| Problem::malformed(format!("could not read the body: {e}")))?;
        parse(&bytes).map(ValidJson)
    }
}

/// Parses JSON, telling syntax errors (400) from shape errors (422 with the field path).
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize::<_, T>(&mut de).map_err(|e| {
        let inner = e.inner();
        if inner.is_syntax() || inner.is_eof() || inner.is_io() {
            Problem::malformed(format!("body is not valid JSON: {inner}"))
        } else {
            let field = e.path().to_string();
            let field = if field == "." { "body".to_owned() } else { field };
            let message = inner.to_string();
            let message = message.split(" at line ").next().unwrap_or(&message).to_owned();
            Problem::invalid_field(field, "type", message)
        }
    })?;
    de.end().map_err(|e| Problem::malformed(format!("body is not valid JSON: {e}")))?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        name: String,
        count: u32,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Batch {
        items: Vec<Item>,
    }

    #[test]
    fn syntax_errors_are_400() {
        let p = parse::<Batch>(b"{\"items\": [").unwrap_err();
        assert_eq!(p.status, 400);
    }

    #[test]
    fn shape_errors_name_the_field() {
        let p = parse::<Batch>(br#"{"items": [{"name": "a", "count": 1}, {"name": "b", "count": "x"}]}"#).unwrap_err();
        assert_eq!(p.status, 422);
        assert_eq!(p.errors[0].field, "items[1].count");
        let p = parse::<Batch>(br#"{"items": [{"name": "a"}]}"#).unwrap_err();
        assert_eq!(p.errors[0].field, "items[0]");
        assert!(p.errors[0].message.contains("count"), "{:?}", p.errors);
    }
}
