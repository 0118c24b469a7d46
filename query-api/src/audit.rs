//! The audit trail: one row per event — per changed key for a derivation event, which changes
//! several at once — newest first by default, paged by keyset on (recorded_at, event_id,
//! change_index). The single home of its input rules, cursor and SQL: REST and GraphQL both go
//! through [`AuditInput::check`] and [`fetch`].
//!
//! Keyset rather than OFFSET: a page costs the same at row 10 and row 10 million, and rows
//! arriving meanwhile neither shift nor duplicate the pages already handed out.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Postgres, QueryBuilder};
use uuid::Uuid;
use vtag_domain::{TagKey, TenantId};
use vtag_service::{FieldError, Problem};

use crate::provenance::Provenance;
use crate::rfc3339;
use crate::state::db_error;

pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    Asc,
    #[default]
    Desc,
}

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct AuditEntry {
    pub event_id: Uuid,
    /// Which of the event's changes (0 for events that change one key or none).
    pub change_index: i32,
    pub resource_id: Uuid,
    pub aggregate_version: i64,
    /// The event type, e.g. `VirtualTagApplied`.
    pub action: String,
    pub tag_key: Option<String>,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    pub source: Option<String>,
    pub confidence: Option<f64>,
    /// Derived values only; each field is left out when NULL.
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub provenance: Provenance,
    pub performed_by: String,
    pub causation_id: Uuid,
    pub correlation_id: Uuid,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub occurred_at: DateTime<Utc>,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub recorded_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditPage {
    pub items: Vec<AuditEntry>,
    /// Present only when more rows follow, so a client loops `while next_cursor != null`.
    pub next_cursor: Option<String>,
}

/// Where the previous page ended. Opaque to clients; carries the order it was issued for, because
/// replaying a descending cursor in ascending order would silently skip everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub order: Order,
    pub recorded_at: DateTime<Utc>,
    pub event_id: Uuid,
    pub change_index: i32,
}

impl Cursor {
    const VERSION: &'static str = "v2";
    /// Issued before events had several rows; still read, so paging survives a deployment.
    const VERSION_1: &'static str = "v1";

    pub fn after(entry: &AuditEntry, order: Order) -> Self {
        Self { order, recorded_at: entry.recorded_at, event_id: entry.event_id, change_index: entry.change_index }
    }

    /// Microseconds, not a formatted time: Postgres keeps microseconds, and any rounding here
    /// would skip or repeat rows at page boundaries.
    pub fn encode(&self) -> String {
        let order = match self.order {
            Order::Asc => "a",
            Order::Desc => "d",
        };
        let raw = format!(
            "{}|{order}|{}|{}|{}",
            Self::VERSION,
            self.recorded_at.timestamp_micros(),
            self.event_id.simple(),
            self.change_index
        );
        URL_SAFE_NO_PAD.encode(raw)
    }

    pub fn decode(raw: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(raw.trim()).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let parts: Vec<&str> = text.split('|').collect();
        let (order, micros, id, change_index) = match parts.as_slice() {
            [Self::VERSION, order, micros, id, index] => (*order, *micros, *id, Some(index.parse().ok()?)),
            [Self::VERSION_1, order, micros, id] => (*order, *micros, *id, None),
            _ => return None,
        };
        let order = match order {
            "a" => Order::Asc,
            "d" => Order::Desc,
            _ => return None,
        };
        // A v1 cursor stood after its whole event: past every change index in the paging direction.
        let change_index = change_index.unwrap_or(match order {
            Order::Asc => i32::MAX,
            Order::Desc => 0,
        });
        (change_index >= 0).then_some(())?;
        Some(Self {
            order,
            recorded_at: DateTime::from_timestamp_micros(micros.parse().ok()?)?,
            event_id: Uuid::parse_str(id).ok()?,
            change_index,
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditFilter {
    pub resource_id: Option<Uuid>,
    pub key: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    /// Everything one command caused, e.g. all events of the re-derivation a configuration change
    /// started (their correlation id is the id of the command that published it).
    pub correlation_id: Option<Uuid>,
    /// Inclusive, on recorded_at.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive, on recorded_at.
    pub to: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuditQuery {
    pub filter: AuditFilter,
    pub limit: i64,
    pub order: Order,
    pub after: Option<Cursor>,
}

/// What REST and GraphQL call each parameter, so an error names the one the client actually sent.
#[derive(Debug, Clone, Copy)]
pub struct FieldNames {
    pub resource_id: &'static str,
    pub correlation_id: &'static str,
    pub key: &'static str,
    pub to: &'static str,
    pub limit: &'static str,
    pub cursor: &'static str,
}

pub const REST_NAMES: FieldNames = FieldNames {
    resource_id: "resource_id",
    correlation_id: "correlation_id",
    key: "key",
    to: "to",
    limit: "limit",
    cursor: "cursor",
};
pub const GRAPHQL_NAMES: FieldNames = FieldNames {
    resource_id: "resourceId",
    correlation_id: "correlationId",
    key: "key",
    to: "to",
    limit: "first",
    cursor: "after",
};

/// Typed but unchecked input from either front end. Blank strings count as absent (an empty form
/// field means "no filter").
#[derive(Debug, Clone, Default)]
pub struct AuditInput {
    pub resource_id: Option<String>,
    pub correlation_id: Option<String>,
    pub key: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    pub order: Order,
}

fn present(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty())
}

impl AuditInput {
    /// Applies every rule and reports every broken one at once (422), plus any the caller already
    /// found while reading its own representation (`earlier`).
    pub fn check(self, names: FieldNames, mut errors: Vec<FieldError>) -> Result<AuditQuery, Problem> {
        let resource_id = present(self.resource_id).and_then(|raw| match Uuid::parse_str(raw.trim()) {
            Ok(id) => Some(id),
            Err(_) => {
                errors.push(FieldError::new(names.resource_id, "uuid", "must be a resource UUID"));
                None
            }
        });
        let correlation_id = present(self.correlation_id).and_then(|raw| match Uuid::parse_str(raw.trim()) {
            Ok(id) => Some(id),
            Err(_) => {
                errors.push(FieldError::new(names.correlation_id, "uuid", "must be a UUID (a command id)"));
                None
            }
        });
        let key = present(self.key).and_then(|raw| match TagKey::parse(&raw) {
            Ok(k) => Some(k.as_str().to_owned()),
            Err(e) => {
                errors.push(FieldError::new(names.key, e.rule, e.message));
                None
            }
        });
        if let (Some(from), Some(to)) = (self.from, self.to) {
            if to <= from {
                errors.push(FieldError::new(
                    names.to,
                    "after_from",
                    "must be later than from (from is inclusive, to exclusive)",
                ));
            }
        }
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            errors.push(FieldError::new(names.limit, "range", format!("must be between 1 and {MAX_LIMIT}")));
        }
        let after = present(self.cursor).and_then(|raw| match Cursor::decode(&raw) {
            Some(c) if c.order == self.order => Some(c),
            Some(_) => {
                errors.push(FieldError::new(names.cursor, "order", "this cursor was issued for the other sort order"));
                None
            }
            None => {
                errors.push(FieldError::new(
                    names.cursor,
                    "cursor",
                    "not a cursor this API issued; pass next_cursor unchanged",
                ));
                None
            }
        });
        if !errors.is_empty() {
            return Err(Problem::invalid(errors));
        }
        Ok(AuditQuery {
            filter: AuditFilter {
                resource_id,
                key,
                actor: present(self.actor),
                action: present(self.action),
                correlation_id,
                from: self.from,
                to: self.to,
            },
            limit,
            order: self.order,
            after,
        })
    }
}

/// The REST query string, every value kept as text so a bad one becomes a 422 naming it rather
/// than a generic "could not deserialize".
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuditParams {
    pub resource_id: Option<String>,
    pub correlation_id: Option<String>,
    pub key: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
    pub order: Option<String>,
}

impl AuditParams {
    pub fn check(self) -> Result<AuditQuery, Problem> {
        let mut errors = Vec::new();
        let mut time = |field: &'static str, raw: Option<String>| {
            present(raw).and_then(|raw| {
                let t = rfc3339::parse(raw.trim());
                if t.is_none() {
                    errors.push(FieldError::new(
                        field,
                        "rfc3339",
                        "must be an RFC 3339 time, e.g. 2025-11-17T10:00:00Z",
                    ));
                }
                t
            })
        };
        let from = time("from", self.from);
        let to = time("to", self.to);
        let limit = present(self.limit).and_then(|raw| match raw.trim().parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => {
                errors.push(FieldError::new(
                    "limit",
                    "integer",
                    format!("must be a whole number between 1 and {MAX_LIMIT}"),
                ));
                None
            }
        });
        let order = match present(self.order).as_deref().map(str::trim) {
            None | Some("desc") => Order::Desc,
            Some("asc") => Order::Asc,
            Some(_) => {
                errors.push(FieldError::new("order", "one_of", "must be asc or desc"));
                Order::Desc
            }
        };
        AuditInput {
            resource_id: self.resource_id,
            correlation_id: self.correlation_id,
            key: self.key,
            actor: self.actor,
            action: self.action,
            from,
            to,
            limit,
            cursor: self.cursor,
            order,
        }
        .check(REST_NAMES, errors)
    }
}

/// One page of `tenant`'s audit trail. Only the filters given become predicates, so each query
/// can use `tag_audit_by_time` / `tag_audit_by_resource`; `tenant = $1` is always the first.
pub async fn fetch(pool: &PgPool, tenant: &TenantId, query: &AuditQuery) -> Result<AuditPage, Problem> {
    let mut statement = select(tenant, query);
    let mut rows: Vec<AuditEntry> = statement.build_query_as().fetch_all(pool).await.map_err(db_error)?;
    // One row more than asked tells whether another page exists without a COUNT or an empty last page.
    let limit = query.limit as usize;
    let next_cursor = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|last| Cursor::after(last, query.order).encode())
    } else {
        None
    };
    Ok(AuditPage { items: rows, next_cursor })
}

fn select<'a>(tenant: &'a TenantId, query: &'a AuditQuery) -> QueryBuilder<'a, Postgres> {
    let f = &query.filter;
    let mut q = QueryBuilder::new(
        "SELECT event_id, change_index, resource_id, aggregate_version, action, tag_key, old_value, new_value, source, \
         confidence, origin, rule_id, rule_set_version, native_key, native_value, key_mapping, value_mapping, \
         performed_by, causation_id, correlation_id, occurred_at, recorded_at FROM tag_audit WHERE tenant = ",
    );
    q.push_bind(tenant.as_str());
    if let Some(id) = f.resource_id {
        q.push(" AND resource_id = ").push_bind(id);
    }
    if let Some(key) = &f.key {
        q.push(" AND tag_key = ").push_bind(key);
    }
    if let Some(actor) = &f.actor {
        q.push(" AND performed_by = ").push_bind(actor);
    }
    if let Some(action) = &f.action {
        q.push(" AND action = ").push_bind(action);
    }
    if let Some(id) = f.correlation_id {
        q.push(" AND correlation_id = ").push_bind(id);
    }
    if let Some(from) = f.from {
        q.push(" AND recorded_at >= ").push_bind(from);
    }
    if let Some(to) = f.to {
        q.push(" AND recorded_at < ").push_bind(to);
    }
    let (after, direction) = match query.order {
        Order::Desc => (" < ", " DESC"),
        Order::Asc => (" > ", " ASC"),
    };
    if let Some(c) = query.after {
        // A row comparison, so ties on recorded_at are broken by event_id, and the rows of one
        // event by change_index: a page may end inside a derivation event and none is lost.
        q.push(" AND (recorded_at, event_id, change_index)")
            .push(after)
            .push("(")
            .push_bind(c.recorded_at)
            .push(", ")
            .push_bind(c.event_id)
            .push(", ")
            .push_bind(c.change_index)
            .push(")");
    }
    q.push(" ORDER BY recorded_at")
        .push(direction)
        .push(", event_id")
        .push(direction)
        .push(", change_index")
        .push(direction);
    q.push(" LIMIT ").push_bind(query.limit + 1);
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        rfc3339::parse(s).unwrap()
    }

    fn fields(p: &Problem) -> Vec<(&str, &str)> {
        p.errors.iter().map(|e| (e.field.as_str(), e.rule.as_str())).collect()
    }

    #[test]
    fn cursors_round_trip_to_the_microsecond() {
        let c = Cursor {
            order: Order::Desc,
            recorded_at: t("2025-11-17T10:00:00.123456Z"),
            event_id: Uuid::now_v7(),
            change_index: 3,
        };
        let encoded = c.encode();
        assert!(encoded.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_'), "URL-safe: {encoded}");
        assert_eq!(Cursor::decode(&encoded), Some(c));
        let asc = Cursor { order: Order::Asc, ..c };
        assert_eq!(Cursor::decode(&asc.encode()), Some(asc));
    }

    #[test]
    fn foreign_or_tampered_cursors_are_refused() {
        assert_eq!(Cursor::decode("not base64!"), None);
        assert_eq!(Cursor::decode(&URL_SAFE_NO_PAD.encode("v2|d|0|00000000000000000000000000000000")), None);
        assert_eq!(Cursor::decode(&URL_SAFE_NO_PAD.encode("v1|x|0|00000000000000000000000000000000")), None);
        assert_eq!(Cursor::decode(&URL_SAFE_NO_PAD.encode("v1|d|soon|00000000000000000000000000000000")), None);
        assert_eq!(Cursor::decode(&URL_SAFE_NO_PAD.encode("v1|d|0|nope")), None);
        assert_eq!(Cursor::decode(&URL_SAFE_NO_PAD.encode("v1|d|0|00000000000000000000000000000000|x")), None);
        assert_eq!(Cursor::decode(&URL_SAFE_NO_PAD.encode("v2|d|0|00000000000000000000000000000000|x")), None);
        assert_eq!(Cursor::decode(&URL_SAFE_NO_PAD.encode("v2|d|0|00000000000000000000000000000000|-1")), None);
    }

    #[test]
    fn a_v1_cursor_still_pages_past_its_whole_event() {
        let v1 = |order: &str| {
            Cursor::decode(&URL_SAFE_NO_PAD.encode(format!("v1|{order}|0|00000000000000000000000000000000"))).unwrap()
        };
        // Descending reads rows below (t, e, 0): none of event e; ascending rows above (t, e, MAX).
        assert_eq!(v1("d").change_index, 0);
        assert_eq!(v1("a").change_index, i32::MAX);
    }

    #[test]
    fn defaults_are_newest_first_a_hundred_at_a_time() {
        let q = AuditParams::default().check().unwrap();
        assert_eq!((q.limit, q.order, q.after), (100, Order::Desc, None));
        assert_eq!(q.filter, AuditFilter::default());
    }

    #[test]
    fn valid_parameters_become_a_typed_query() {
        let id = Uuid::now_v7();
        let cursor =
            Cursor { order: Order::Asc, recorded_at: t("2025-11-17T10:00:00Z"), event_id: id, change_index: 0 }
                .encode();
        let q = AuditParams {
            resource_id: Some(id.to_string()),
            correlation_id: Some(id.to_string()),
            key: Some("cost-center".into()),
            actor: Some("alice@example.com".into()),
            action: Some("VirtualTagApplied".into()),
            from: Some("2025-11-01T00:00:00+01:00".into()),
            to: Some("2025-12-01T00:00:00Z".into()),
            limit: Some("1000".into()),
            cursor: Some(cursor),
            order: Some("asc".into()),
        }
        .check()
        .unwrap();
        assert_eq!(q.filter.resource_id, Some(id));
        assert_eq!(q.filter.correlation_id, Some(id));
        assert_eq!(q.filter.from, Some(t("2025-10-31T23:00:00Z")));
        assert_eq!((q.limit, q.order), (1000, Order::Asc));
        assert_eq!(q.after.unwrap().event_id, id);
    }

    #[test]
    fn every_bad_parameter_is_named_with_its_rule() {
        let p = AuditParams {
            resource_id: Some("i-123".into()),
            correlation_id: Some("cmd-1".into()),
            key: Some("bad key".into()),
            from: Some("yesterday".into()),
            to: Some("2025-13-01".into()),
            limit: Some("lots".into()),
            cursor: Some("garbage".into()),
            order: Some("sideways".into()),
            ..Default::default()
        }
        .check()
        .unwrap_err();
        assert_eq!(p.status, 422);
        let mut got = fields(&p);
        got.sort();
        assert_eq!(
            got,
            [
                ("correlation_id", "uuid"),
                ("cursor", "cursor"),
                ("from", "rfc3339"),
                ("key", "charset"),
                ("limit", "integer"),
                ("order", "one_of"),
                ("resource_id", "uuid"),
                ("to", "rfc3339")
            ]
        );
    }

    #[test]
    fn limits_ranges_and_cursor_order_are_checked() {
        let check = |params: AuditParams| {
            fields(&params.check().unwrap_err()).iter().map(|(f, r)| format!("{f}:{r}")).collect::<Vec<_>>()
        };
        assert_eq!(check(AuditParams { limit: Some("0".into()), ..Default::default() }), ["limit:range"]);
        assert_eq!(check(AuditParams { limit: Some("1001".into()), ..Default::default() }), ["limit:range"]);
        assert_eq!(
            check(AuditParams {
                from: Some("2025-11-02T00:00:00Z".into()),
                to: Some("2025-11-01T00:00:00Z".into()),
                ..Default::default()
            }),
            ["to:after_from"]
        );
        let desc = Cursor {
            order: Order::Desc,
            recorded_at: t("2025-11-17T10:00:00Z"),
            event_id: Uuid::nil(),
            change_index: 0,
        }
        .encode();
        assert_eq!(
            check(AuditParams { cursor: Some(desc), order: Some("asc".into()), ..Default::default() }),
            ["cursor:order"]
        );
    }

    #[test]
    fn graphql_errors_use_graphql_argument_names() {
        let p = AuditInput {
            resource_id: Some("x".into()),
            limit: Some(5000),
            cursor: Some("x".into()),
            ..Default::default()
        }
        .check(GRAPHQL_NAMES, Vec::new())
        .unwrap_err();
        assert_eq!(fields(&p), [("resourceId", "uuid"), ("first", "range"), ("after", "cursor")]);
    }

    #[test]
    fn blank_parameters_mean_no_filter() {
        let q =
            AuditParams { key: Some("".into()), actor: Some(" ".into()), limit: Some("".into()), ..Default::default() }
                .check()
                .unwrap();
        assert_eq!(q.filter, AuditFilter::default());
        assert_eq!(q.limit, DEFAULT_LIMIT);
    }

    #[test]
    fn the_statement_is_tenant_first_and_only_has_the_filters_given() {
        let tenant = TenantId::parse("acme").unwrap();
        let q = AuditParams { key: Some("team".into()), ..Default::default() }.check().unwrap();
        let sql = select(&tenant, &q).into_sql();
        assert!(
            sql.contains(
                "WHERE tenant = $1 AND tag_key = $2 ORDER BY recorded_at DESC, event_id DESC, change_index DESC LIMIT $3"
            ),
            "{sql}"
        );
        let mut q = q;
        q.order = Order::Asc;
        q.after = Some(Cursor {
            order: Order::Asc,
            recorded_at: t("2025-11-17T10:00:00Z"),
            event_id: Uuid::nil(),
            change_index: 2,
        });
        let sql = select(&tenant, &q).into_sql();
        assert!(
            sql.contains(
                "AND (recorded_at, event_id, change_index) > ($3, $4, $5) \
                 ORDER BY recorded_at ASC, event_id ASC, change_index ASC LIMIT $6"
            ),
            "{sql}"
        );
    }
}
