//! Read-your-writes for tagging configurations. The command API answers a configuration change
//! with the version it published; a client that sends it back as `X-Config-Version: N` is not
//! answered from a `tagging_configs` that does not have version N yet. Configurations live on
//! their own topic, so the resource topic's consistency token cannot express this.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use sqlx::PgPool;
use vtag_domain::TenantId;
use vtag_service::Problem;

use crate::config;
use crate::consistency::{self, Consistency, Deadline};

pub const HEADER: &str = "x-config-version";

/// The version the caller wants to see at least; `None` (no header) means no wait. A malformed
/// value is a 422, never ignored, like a malformed consistency token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConfigVersion(pub Option<i64>);

impl<S: Send + Sync> FromRequestParts<S> for ConfigVersion {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parse(&parts.headers).map(ConfigVersion)
    }
}

/// Several headers: the highest wins, so no wanted version is answered early.
fn parse(headers: &HeaderMap) -> Result<Option<i64>, Problem> {
    let mut wanted = None;
    for value in headers.get_all(HEADER) {
        let version =
            value.to_str().ok().and_then(|raw| raw.trim().parse::<i64>().ok()).filter(|v| *v >= 0).ok_or_else(
                || {
                    Problem::invalid_field(
                        "X-Config-Version",
                        "integer",
                        "must be a configuration version (a whole number ≥ 0), as the command API returned it",
                    )
                },
            )?;
        wanted = wanted.max(Some(version));
    }
    Ok(wanted)
}

/// Waits (bounded, like the consistency token) until `tenant` has a configuration of at least the
/// wanted version. Version 0 is the initial configuration, which every tenant always has.
pub async fn wait_for_config(
    pool: &PgPool,
    consistency: &Consistency,
    tenant: &TenantId,
    wanted: ConfigVersion,
) -> Result<(), Problem> {
    let Some(wanted) = wanted.0.filter(|v| *v > 0) else { return Ok(()) };
    let deadline = Deadline::start(consistency.max_wait());
    loop {
        let have = config::latest_version(pool, tenant).await?;
        if have >= wanted {
            deadline.caught_up("configuration version");
            return Ok(());
        }
        if !deadline.next_poll().await {
            return Err(consistency::not_yet(format!(
                "waited {} ms for configuration version {wanted} (the read model has {have}); \
                 retry the request with the same X-Config-Version",
                consistency.max_wait().as_millis()
            ))
            .with("config_version", wanted)
            .with("current_config_version", have));
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn absent_means_no_wait_and_the_highest_header_wins() {
        assert_eq!(parse(&HeaderMap::new()).unwrap(), None);
        let mut headers = HeaderMap::new();
        headers.append(HEADER, HeaderValue::from_static("3"));
        headers.append(HEADER, HeaderValue::from_static(" 7 "));
        assert_eq!(parse(&headers).unwrap(), Some(7));
    }

    #[test]
    fn a_bad_version_is_refused_naming_the_header() {
        for bad in ["seven", "-1", "3:12"] {
            let mut headers = HeaderMap::new();
            headers.insert(HEADER, HeaderValue::from_static(bad));
            let p = parse(&headers).unwrap_err();
            assert_eq!((p.status, p.errors[0].field.as_str()), (422, "X-Config-Version"), "{bad}");
        }
    }
}
