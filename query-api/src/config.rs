//! Reading tenants' tagging configurations from `tagging_configs`: the current document, one rule
//! of a given version (for explain), and the version history. The single home of that SQL: REST
//! and GraphQL both call these.
//!
//! A tenant without any row has never published a configuration and runs on the initial one
//! ([`ConfigDocument::initial`], version 0), so that is what is served, not a 404: the command side
//! derives with exactly that document.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;
use vtag_domain::TenantId;
use vtag_service::{FieldError, Problem};
use vtag_tagging_config::{ConfigDocument, RuleDoc};

use crate::rfc3339;
use crate::state::db_error;

/// A configuration document and the version it was published as.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned {
    pub version: i64,
    pub document: ConfigDocument,
}

/// The tenant's latest configuration, or the initial one at version 0.
pub async fn current(pool: &PgPool, tenant: &TenantId) -> Result<Versioned, Problem> {
    match latest_document(pool, "tagging_configs", tenant).await? {
        None => Ok(Versioned { version: 0, document: ConfigDocument::initial() }),
        Some((version, text)) => {
            let document = ConfigDocument::from_json(text.as_bytes()).map_err(|errors| {
                let errors = errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
                Problem::internal(format!("stored configuration {version} of {tenant} does not read: {errors}"))
            })?;
            Ok(Versioned { version, document })
        }
    }
}

/// The latest version of a tenant's versioned document (`tagging_configs`, `compliance_policies`)
/// and the document as text: it is parsed once, by the type that defines its format.
pub async fn latest_document(pool: &PgPool, table: &'static str, tenant: &TenantId) -> Result<Option<(i64, String)>, Problem> {
    sqlx::query_as(&format!("SELECT version, document::text FROM {table} WHERE tenant = $1 ORDER BY version DESC LIMIT 1"))
        .bind(tenant.as_str())
        .fetch_optional(pool)
        .await
        .map_err(db_error)
}

/// The highest published version (0: none yet), for the read-your-writes wait.
pub async fn latest_version(pool: &PgPool, tenant: &TenantId) -> Result<i64, Problem> {
    let version: Option<i64> = sqlx::query_scalar("SELECT max(version) FROM tagging_configs WHERE tenant = $1")
        .bind(tenant.as_str())
        .fetch_one(pool)
        .await
        .map_err(db_error)?;
    Ok(version.unwrap_or(0))
}

/// A rule as explain shows it: typed when it reads, so its fields print in the documented order
/// (jsonb and serde_json's maps sort them); as stored otherwise, since showing an odd rule beats
/// hiding it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum RuleJson {
    // Boxed: a rule document is large next to a JSON value, and explain holds at most one.
    Doc(Box<RuleDoc>),
    Stored(serde_json::Value),
}

/// Rule `rule_id` as configuration `version` had it; `None` when that version or rule is not (or
/// no longer) in the read model. Only the one rule leaves Postgres, not the document.
pub async fn rule_at(
    pool: &PgPool,
    tenant: &TenantId,
    version: i64,
    rule_id: &str,
) -> Result<Option<RuleJson>, Problem> {
    let raw: Option<String> = sqlx::query_scalar(
        "SELECT r.rule::text
           FROM tagging_configs c, jsonb_array_elements(c.document -> 'rules') AS r(rule)
          WHERE c.tenant = $1 AND c.version = $2 AND r.rule ->> 'id' = $3
          LIMIT 1",
    )
    .bind(tenant.as_str())
    .bind(version)
    .bind(rule_id)
    .fetch_optional(pool)
    .await
    .map_err(db_error)?;
    let Some(raw) = raw else { return Ok(None) };
    match RuleDoc::from_json(raw.as_bytes()) {
        Ok(rule) => Ok(Some(RuleJson::Doc(Box::new(rule)))),
        Err(_) => serde_json::from_str(&raw).map(|v| Some(RuleJson::Stored(v))).map_err(Problem::internal),
    }
}

pub const DEFAULT_HISTORY_LIMIT: i64 = 50;
pub const MAX_HISTORY_LIMIT: i64 = 200;

/// One published version, without its document.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct HistoryEntry {
    pub version: i64,
    pub change: String,
    pub change_kind: String,
    pub rule_ids: Vec<String>,
    pub actor: String,
    pub event_id: Uuid,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub recorded_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryPage {
    pub items: Vec<HistoryEntry>,
    /// Present only when older versions follow.
    pub next_cursor: Option<String>,
}

/// The REST query string of the history, kept as text so a bad value is a 422 naming it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct HistoryParams {
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryQuery {
    pub limit: i64,
    /// Only versions below this one (the last version of the previous page).
    pub before: Option<i64>,
}

impl HistoryParams {
    pub fn check(self) -> Result<HistoryQuery, Problem> {
        let mut errors = Vec::new();
        let limit = match self.limit.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => DEFAULT_HISTORY_LIMIT,
            Some(raw) => match raw.parse::<i64>() {
                Ok(n) if (1..=MAX_HISTORY_LIMIT).contains(&n) => n,
                _ => {
                    errors.push(FieldError::new(
                        "limit",
                        "range",
                        format!("must be a whole number between 1 and {MAX_HISTORY_LIMIT}"),
                    ));
                    DEFAULT_HISTORY_LIMIT
                }
            },
        };
        let before = self.cursor.as_deref().map(str::trim).filter(|s| !s.is_empty()).and_then(|raw| {
            let decoded = decode_cursor(raw);
            if decoded.is_none() {
                errors.push(FieldError::new(
                    "cursor",
                    "cursor",
                    "not a cursor this API issued; pass next_cursor unchanged",
                ));
            }
            decoded
        });
        if !errors.is_empty() {
            return Err(Problem::invalid(errors));
        }
        Ok(HistoryQuery { limit, before })
    }
}

const CURSOR_VERSION: &str = "c1";

/// Opaque so the paging scheme can change without breaking clients that loop on next_cursor.
fn encode_cursor(version: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{CURSOR_VERSION}|{version}"))
}

fn decode_cursor(raw: &str) -> Option<i64> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(raw).ok()?).ok()?;
    let (tag, version) = text.split_once('|')?;
    (tag == CURSOR_VERSION).then_some(())?;
    version.parse().ok().filter(|v| *v >= 0)
}

/// Newest first, by keyset on version: versions only ever grow, so pages never shift.
pub async fn history(pool: &PgPool, tenant: &TenantId, query: HistoryQuery) -> Result<HistoryPage, Problem> {
    let mut items: Vec<HistoryEntry> = sqlx::query_as(
        "SELECT version, change, change_kind, rule_ids, actor, event_id, recorded_at
           FROM tagging_configs
          WHERE tenant = $1 AND ($2::bigint IS NULL OR version < $2)
          ORDER BY version DESC
          LIMIT $3",
    )
    .bind(tenant.as_str())
    .bind(query.before)
    .bind(query.limit + 1)
    .fetch_all(pool)
    .await
    .map_err(db_error)?;
    let next_cursor = if items.len() as i64 > query.limit {
        items.truncate(query.limit as usize);
        items.last().map(|last| encode_cursor(last.version))
    } else {
        None
    };
    Ok(HistoryPage { items, next_cursor })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_parameters_default_and_are_checked() {
        assert_eq!(HistoryParams::default().check().unwrap(), HistoryQuery { limit: 50, before: None });
        let q = HistoryParams { limit: Some("200".into()), cursor: Some(encode_cursor(7)) }.check().unwrap();
        assert_eq!(q, HistoryQuery { limit: 200, before: Some(7) });
        let p = HistoryParams { limit: Some("201".into()), cursor: Some("nope".into()) }.check().unwrap_err();
        assert_eq!(p.status, 422);
        let fields: Vec<_> = p.errors.iter().map(|e| (e.field.as_str(), e.rule.as_str())).collect();
        assert_eq!(fields, [("limit", "range"), ("cursor", "cursor")]);
    }

    #[test]
    fn cursors_are_opaque_and_refuse_tampering() {
        assert_eq!(decode_cursor(&encode_cursor(42)), Some(42));
        assert_eq!(decode_cursor(&URL_SAFE_NO_PAD.encode("c2|42")), None);
        assert_eq!(decode_cursor(&URL_SAFE_NO_PAD.encode("c1|-1")), None);
        assert_eq!(decode_cursor("c1|42"), None);
    }
}
