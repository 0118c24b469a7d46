//! Reading one resource and its virtual tags from the read model. The single home of that SQL:
//! REST and GraphQL both call [`find`].

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;
use vtag_domain::{Provider, TenantId};
use vtag_service::Problem;

use crate::provenance::Provenance;
use crate::state::db_error;

#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub id: Uuid,
    pub provider: String,
    pub cloud_resource_id: String,
    pub resource_type: String,
    pub name: String,
    pub account_id: String,
    pub region: String,
    /// Aggregate version folded so far: what a client sends back as expected_version on a write.
    pub version: i64,
    /// Sorted by key.
    pub virtual_tags: Vec<VirtualTag>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VirtualTag {
    pub key: String,
    pub value: String,
    /// As stored: `native`, `inferred`, `rule_based`, `ai_suggested`, `user_confirmed` or `manual`.
    pub source: String,
    pub confidence: f64,
    pub created_by: String,
    pub updated_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    /// The event that last set it (explain's `recorded` step).
    pub event_id: Uuid,
    pub provenance: Provenance,
}

impl VirtualTag {
    /// Tags have no id of their own in an event-sourced model: (resource, key) is their identity.
    pub fn id(&self, resource: Uuid) -> String {
        format!("{resource}:{}", self.key)
    }
}

/// One row of the resource ⟕ tags join; the tag columns are NULL for a resource without tags.
#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    provider: String,
    cloud_resource_id: String,
    resource_type: String,
    name: String,
    account_id: String,
    region: String,
    version: i64,
    tag_key: Option<String>,
    tag_value: Option<String>,
    source: Option<String>,
    confidence: Option<f64>,
    created_by: Option<String>,
    updated_by: Option<String>,
    created_at: Option<DateTime<Utc>>,
    updated_at: Option<DateTime<Utc>>,
    tag_version: Option<i64>,
    tag_event_id: Option<Uuid>,
    #[sqlx(flatten)]
    provenance: Provenance,
}

/// Finds a resource of `tenant` by vtag id (a UUID) or by the cloud's own id (ARN, Azure resource
/// id, GCP name). `Ok(None)` both when it does not exist and when it belongs to another tenant:
/// the two must be indistinguishable.
pub async fn find(
    pool: &PgPool,
    tenant: &TenantId,
    raw_id: &str,
    provider: Option<Provider>,
) -> Result<Option<Resource>, Problem> {
    if let Ok(id) = Uuid::parse_str(raw_id) {
        if let Some(found) = load(pool, tenant, id).await? {
            if provider.is_none_or(|p| p.as_str() == found.provider) {
                return Ok(Some(found));
            }
        }
        // Nothing has that vtag id; a cloud could still use a UUID-shaped id of its own.
    }
    match by_cloud_id(pool, tenant, raw_id, provider).await?.as_slice() {
        [] => Ok(None),
        [(id, _)] => load(pool, tenant, *id).await,
        several => Err(ambiguous(several.iter().map(|(_, p)| p.clone()).collect())),
    }
}

async fn by_cloud_id(
    pool: &PgPool,
    tenant: &TenantId,
    cloud_id: &str,
    provider: Option<Provider>,
) -> Result<Vec<(Uuid, String)>, Problem> {
    sqlx::query_as(
        "SELECT id, provider FROM resources
          WHERE tenant = $1 AND cloud_resource_id = $2 AND ($3::text IS NULL OR provider = $3)
          ORDER BY provider",
    )
    .bind(tenant.as_str())
    .bind(cloud_id)
    .bind(provider.map(Provider::as_str))
    .fetch_all(pool)
    .await
    .map_err(db_error)
}

/// One statement, so the resource's version and its tags come from the same snapshot.
async fn load(pool: &PgPool, tenant: &TenantId, id: Uuid) -> Result<Option<Resource>, Problem> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT r.id, r.provider, r.cloud_resource_id, r.resource_type, r.name, r.account_id, r.region, r.version,
                t.tag_key, t.tag_value, t.source, t.confidence, t.created_by, t.updated_by,
                t.created_at, t.updated_at, t.version AS tag_version, t.event_id AS tag_event_id,
                t.origin, t.rule_id, t.rule_set_version, t.native_key, t.native_value, t.key_mapping, t.value_mapping
           FROM resources r
           LEFT JOIN virtual_tags t ON t.tenant = r.tenant AND t.resource_id = r.id
          WHERE r.tenant = $1 AND r.id = $2",
    )
    .bind(tenant.as_str())
    .bind(id)
    .fetch_all(pool)
    .await
    .map_err(db_error)?;
    Ok(assemble(rows))
}

fn assemble(rows: Vec<Row>) -> Option<Resource> {
    let first = rows.first()?;
    let mut resource = Resource {
        id: first.id,
        provider: first.provider.clone(),
        cloud_resource_id: first.cloud_resource_id.clone(),
        resource_type: first.resource_type.clone(),
        name: first.name.clone(),
        account_id: first.account_id.clone(),
        region: first.region.clone(),
        version: first.version,
        virtual_tags: Vec::with_capacity(rows.len()),
    };
    for row in rows {
        // The tag columns are all NOT NULL in the table, so one present means all are.
        if let (
            Some(key),
            Some(value),
            Some(source),
            Some(confidence),
            Some(created_by),
            Some(updated_by),
            Some(created_at),
            Some(updated_at),
            Some(version),
            Some(event_id),
        ) = (
            row.tag_key,
            row.tag_value,
            row.source,
            row.confidence,
            row.created_by,
            row.updated_by,
            row.created_at,
            row.updated_at,
            row.tag_version,
            row.tag_event_id,
        ) {
            resource.virtual_tags.push(VirtualTag {
                key,
                value,
                source,
                confidence,
                created_by,
                updated_by,
                created_at,
                updated_at,
                version,
                event_id,
                provenance: row.provenance,
            });
        }
    }
    // Byte order, not the database's collation: the same answer whatever locale the cluster has.
    resource.virtual_tags.sort_by(|a, b| a.key.cmp(&b.key));
    Some(resource)
}

fn ambiguous(providers: Vec<String>) -> Problem {
    Problem::new(StatusCode::CONFLICT, "ambiguous-resource", "Several resources have this id")
        .detail(format!(
            "resources of several providers ({}) have this cloud id; name one with ?provider=aws|azure|gcp \
             (GraphQL: the provider argument) or use the vtag UUID",
            providers.join(", ")
        ))
        .with("providers", providers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: Option<&str>) -> Row {
        let t = DateTime::parse_from_rfc3339("2025-11-17T10:00:00Z").unwrap().with_timezone(&Utc);
        Row {
            id: Uuid::nil(),
            provider: "aws".into(),
            cloud_resource_id: "arn:aws:ec2:us-east-1:1:instance/i-1".into(),
            resource_type: "ec2:instance".into(),
            name: "web".into(),
            account_id: "1".into(),
            region: "us-east-1".into(),
            version: 4,
            tag_key: key.map(Into::into),
            tag_value: key.map(|_| "v".into()),
            source: key.map(|_| "manual".into()),
            confidence: key.map(|_| 1.0),
            created_by: key.map(|_| "alice".into()),
            updated_by: key.map(|_| "bob".into()),
            created_at: key.map(|_| t),
            updated_at: key.map(|_| t),
            tag_version: key.map(|_| 3),
            tag_event_id: key.map(|_| Uuid::nil()),
            provenance: Provenance::default(),
        }
    }

    #[test]
    fn tags_come_sorted_by_key_and_a_tagless_resource_has_none() {
        let r = assemble(vec![row(Some("team")), row(Some("cost-center")), row(Some("environment"))]).unwrap();
        let keys: Vec<_> = r.virtual_tags.iter().map(|t| t.key.as_str()).collect();
        assert_eq!(keys, ["cost-center", "environment", "team"]);
        assert_eq!(r.virtual_tags[0].id(r.id), format!("{}:cost-center", Uuid::nil()));
        assert!(assemble(vec![row(None)]).unwrap().virtual_tags.is_empty());
        assert!(assemble(vec![]).is_none());
    }

    #[test]
    fn ambiguity_lists_the_providers() {
        let p = ambiguous(vec!["aws".into(), "gcp".into()]);
        assert_eq!(p.status, 409);
        assert_eq!(p.extensions["providers"], serde_json::json!(["aws", "gcp"]));
    }
}
