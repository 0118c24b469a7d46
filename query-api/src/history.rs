//! A resource's tags as they were at an instant, and one key's recent changes, both rebuilt from
//! `tag_audit`. The audit trail is the only place the read model keeps the past: `virtual_tags`
//! holds the present only.
//!
//! Within a resource, (aggregate_version, change_index) is the log's own order, so "the latest row
//! per key" is taken by that, not by recorded_at (which two events of one command share). A row
//! whose new_value is NULL — a `VirtualTagRemoved`, or a derivation that dropped the key — means
//! the key was absent from then on.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;
use vtag_domain::TenantId;
use vtag_service::Problem;

use crate::provenance::Provenance;
use crate::resources::{Resource, VirtualTag};
use crate::rfc3339;
use crate::state::db_error;

/// What explain shows of a key's past at most, newest first.
pub const MAX_CHANGES: i64 = 20;

#[derive(sqlx::FromRow)]
struct TagAt {
    tag_key: String,
    tag_value: String,
    source: String,
    confidence: f64,
    created_by: String,
    created_at: DateTime<Utc>,
    updated_by: String,
    updated_at: DateTime<Utc>,
    aggregate_version: i64,
    event_id: Uuid,
    #[sqlx(flatten)]
    provenance: Provenance,
}

/// The tags of resource `id` at `as_of` (only `key`'s, when given), sorted by key. Each carries the
/// source, value and provenance of the row that set it; its creation is the first set since the
/// key was last removed, as the projector counts it for `virtual_tags`.
pub async fn tags_as_of(
    pool: &PgPool,
    tenant: &TenantId,
    id: Uuid,
    as_of: DateTime<Utc>,
    key: Option<&str>,
) -> Result<Vec<VirtualTag>, Problem> {
    let rows: Vec<TagAt> = sqlx::query_as(
        "WITH h AS (
           SELECT tag_key, aggregate_version, change_index, event_id, new_value, source, confidence, performed_by,
                  recorded_at, origin, rule_id, rule_set_version, native_key, native_value, key_mapping, value_mapping,
                  (new_value IS NULL OR action = 'VirtualTagRemoved') AS removal
             FROM tag_audit
            WHERE tenant = $1 AND resource_id = $2 AND tag_key IS NOT NULL AND recorded_at <= $3
              AND ($4::text IS NULL OR tag_key = $4)
         ),
         latest AS (
           SELECT DISTINCT ON (tag_key) * FROM h ORDER BY tag_key, aggregate_version DESC, change_index DESC
         ),
         last_removal AS (
           SELECT tag_key, max(aggregate_version) AS version FROM h WHERE removal GROUP BY tag_key
         ),
         created AS (
           SELECT DISTINCT ON (h.tag_key) h.tag_key, h.performed_by, h.recorded_at
             FROM h LEFT JOIN last_removal r ON r.tag_key = h.tag_key
            WHERE NOT h.removal AND h.aggregate_version > COALESCE(r.version, 0)
            ORDER BY h.tag_key, h.aggregate_version, h.change_index
         )
         -- Derived values carry confidence 1.0 in virtual_tags; their audit rows may leave it NULL.
         SELECT l.tag_key, l.new_value AS tag_value, l.source, COALESCE(l.confidence, 1.0) AS confidence,
                c.performed_by AS created_by, c.recorded_at AS created_at,
                l.performed_by AS updated_by, l.recorded_at AS updated_at, l.aggregate_version, l.event_id,
                l.origin, l.rule_id, l.rule_set_version, l.native_key, l.native_value, l.key_mapping, l.value_mapping
           FROM latest l JOIN created c ON c.tag_key = l.tag_key
          WHERE NOT l.removal",
    )
    .bind(tenant.as_str())
    .bind(id)
    .bind(as_of)
    .bind(key)
    .fetch_all(pool)
    .await
    .map_err(db_error)?;
    let mut tags: Vec<VirtualTag> = rows
        .into_iter()
        .map(|r| VirtualTag {
            key: r.tag_key,
            value: r.tag_value,
            source: r.source,
            confidence: r.confidence,
            created_by: r.created_by,
            updated_by: r.updated_by,
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.aggregate_version,
            event_id: r.event_id,
            provenance: r.provenance,
        })
        .collect();
    // Byte order, as for the current tags.
    tags.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(tags)
}

/// `resource` with its tags and version as they were at `as_of` (its description stays today's).
pub async fn at(
    pool: &PgPool,
    tenant: &TenantId,
    resource: Resource,
    as_of: DateTime<Utc>,
) -> Result<Resource, Problem> {
    let virtual_tags = tags_as_of(pool, tenant, resource.id, as_of, None).await?;
    let version = version_as_of(pool, tenant, resource.id, as_of).await?;
    Ok(Resource { virtual_tags, version, ..resource })
}

/// The resource's aggregate version at `as_of`: 0 when it did not exist yet. Every event leaves at
/// least one audit row, so the highest one recorded by then is the version folded by then.
pub async fn version_as_of(pool: &PgPool, tenant: &TenantId, id: Uuid, as_of: DateTime<Utc>) -> Result<i64, Problem> {
    let version: Option<i64> = sqlx::query_scalar(
        "SELECT max(aggregate_version) FROM tag_audit WHERE tenant = $1 AND resource_id = $2 AND recorded_at <= $3",
    )
    .bind(tenant.as_str())
    .bind(id)
    .bind(as_of)
    .fetch_one(pool)
    .await
    .map_err(db_error)?;
    Ok(version.unwrap_or(0))
}

/// One change of one key, as explain lists it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct Change {
    pub event_id: Uuid,
    pub change_index: i32,
    pub aggregate_version: i64,
    pub action: String,
    pub old_value: Option<String>,
    /// NULL: the key was removed.
    pub new_value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub provenance: Provenance,
    pub actor: String,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub at: DateTime<Utc>,
}

/// The last `limit` changes of `key` on resource `id` (up to `as_of` when given), newest first.
pub async fn changes(
    pool: &PgPool,
    tenant: &TenantId,
    id: Uuid,
    key: &str,
    as_of: Option<DateTime<Utc>>,
    limit: i64,
) -> Result<Vec<Change>, Problem> {
    sqlx::query_as(
        "SELECT event_id, change_index, aggregate_version, action, old_value, new_value, source,
                origin, rule_id, rule_set_version, native_key, native_value, key_mapping, value_mapping,
                performed_by AS actor, recorded_at AS at
           FROM tag_audit
          WHERE tenant = $1 AND resource_id = $2 AND tag_key = $3 AND ($4::timestamptz IS NULL OR recorded_at <= $4)
          ORDER BY aggregate_version DESC, change_index DESC
          LIMIT $5",
    )
    .bind(tenant.as_str())
    .bind(id)
    .bind(key)
    .bind(as_of)
    .bind(limit.clamp(0, MAX_CHANGES))
    .fetch_all(pool)
    .await
    .map_err(db_error)
}
