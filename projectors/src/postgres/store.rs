//! The Postgres side of the projector: checkpoints, current versions, and the batch write — rows
//! and checkpoint in ONE transaction. Bulk statements over arrays (UNNEST) keep a batch of thousands
//! of events to a handful of round trips.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection};
use uuid::Uuid;

use super::fold::{AggregateKey, Provenance, RowChanges};
use super::swap::Target;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub struct Store {
    target: Target,
    projector: String,
    topic: String,
    /// The shadow schema a rebuild folds into; None: the served read model.
    shadow: Option<String>,
}

impl Store {
    /// The served read model (`shadow` None) or a rebuild's shadow schema, migrated.
    pub async fn connect(database_url: &str, projector: &str, topic: &str, shadow: Option<&str>) -> Result<Self, sqlx::Error> {
        let options: PgConnectOptions = super::swap::options(database_url, shadow)?;
        // The read model is rebuildable and rows + checkpoint commit atomically, so losing the last
        // few commits in a Postgres crash only means re-reading them from the log: no need to wait
        // for the WAL flush on every batch.
        let options = options.options([("synchronous_commit", "off")]).disable_statement_logging();
        let pool = PgPoolOptions::new().max_connections(4).connect_with(options).await?;
        MIGRATOR.run(&pool).await?;
        let target = match shadow {
            None => Target::served(pool).await?,
            Some(_) => Target::shadow(pool),
        };
        Ok(Self { target, projector: projector.to_owned(), topic: topic.to_owned(), shadow: shadow.map(str::to_owned) })
    }

    pub fn pool(&self) -> &PgPool {
        self.target.pool()
    }

    /// Where the projections write, guarded against a swap when it is the served model.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// A session-level advisory lock held for the projector's lifetime: two instances of the same
    /// projector would fight over checkpoints, so the second one waits. (A rebuild's shadow has a
    /// writer of its own beside the served one.)
    pub async fn lock_single_writer(&self, database_url: &str) -> Result<PgConnection, sqlx::Error> {
        let mut conn = PgConnection::connect(database_url).await?;
        let key = match &self.shadow {
            None => format!("vtag-projector:{}:{}", self.projector, self.topic),
            Some(shadow) => format!("vtag-projector:{}:{}:{shadow}", self.projector, self.topic),
        };
        loop {
            let (locked,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
                .bind(&key)
                .fetch_one(&mut conn)
                .await?;
            if locked {
                return Ok(conn);
            }
            tracing::warn!(projector = %self.projector, "another instance holds the projector lock; waiting");
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        }
    }

    pub async fn checkpoints(&self) -> Result<HashMap<i32, i64>, sqlx::Error> {
        let rows: Vec<(i32, i64)> =
            sqlx::query_as("SELECT partition, next_offset FROM projector_checkpoints WHERE projector = $1 AND topic = $2")
                .bind(&self.projector)
                .bind(&self.topic)
                .fetch_all(self.pool())
                .await?;
        Ok(rows.into_iter().collect())
    }

    pub async fn versions(&self, keys: &[AggregateKey]) -> Result<HashMap<AggregateKey, u64>, sqlx::Error> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let (tenants, ids): (Vec<String>, Vec<Uuid>) = keys.iter().cloned().unzip();
        // Joined on the whole primary key (tenant, id) so each key is an index probe; filtering on
        // `id` alone cannot use the index and scans the table once per batch.
        let rows: Vec<(String, Uuid, i64)> = sqlx::query_as(
            "SELECT r.tenant, r.id, r.version
               FROM UNNEST($1::text[], $2::uuid[]) AS k(tenant, id)
               JOIN resources r ON r.tenant = k.tenant AND r.id = k.id",
        )
        .bind(&tenants)
        .bind(&ids)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(|(t, id, v)| ((t, id), v as u64)).collect())
    }

    /// Writes the batch's row changes and moves the checkpoints, atomically.
    pub async fn write(&self, changes: &RowChanges, next_offsets: &HashMap<i32, i64>) -> Result<(), sqlx::Error> {
        let mut tx = self.target.begin().await?;
        upsert_described_resources(&mut tx, changes).await?;
        bump_resource_versions(&mut tx, changes).await?;
        set_monthly_costs(&mut tx, changes).await?;
        delete_removed_tags(&mut tx, changes).await?;
        upsert_tags(&mut tx, changes).await?;
        insert_audit(&mut tx, changes).await?;
        upsert_progress(&mut tx, changes).await?;
        super::configs::save_checkpoints(&mut tx, &self.projector, &self.topic, next_offsets).await?;
        tx.commit().await
    }
}

type Tx<'a> = sqlx::Transaction<'a, sqlx::Postgres>;

async fn upsert_described_resources(tx: &mut Tx<'_>, changes: &RowChanges) -> Result<(), sqlx::Error> {
    let mut cols = ResourceColumns::default();
    for ((tenant, id), c) in &changes.resources {
        if let Some(d) = &c.description {
            cols.tenant.push(tenant.clone());
            cols.id.push(*id);
            cols.provider.push(d.provider.clone());
            cols.cloud_id.push(d.cloud_resource_id.clone());
            cols.resource_type.push(d.resource_type.clone());
            cols.name.push(d.name.clone());
            cols.account.push(d.account_id.clone());
            cols.region.push(d.region.clone());
            cols.metadata.push(d.metadata.clone());
            cols.version.push(c.version as i64);
            cols.first_seen.push(c.first_seen_at);
            cols.last_changed.push(c.last_changed_at);
        }
    }
    if cols.id.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO resources (tenant, id, provider, cloud_resource_id, resource_type, name, account_id, region,
                                metadata, version, first_seen_at, last_changed_at)
         SELECT * FROM UNNEST($1::text[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                              $8::text[], $9::jsonb[], $10::int8[], $11::timestamptz[], $12::timestamptz[])
         ON CONFLICT (tenant, id) DO UPDATE SET
           resource_type = EXCLUDED.resource_type, name = EXCLUDED.name, account_id = EXCLUDED.account_id,
           region = EXCLUDED.region, metadata = EXCLUDED.metadata, version = EXCLUDED.version,
           last_changed_at = EXCLUDED.last_changed_at
         WHERE resources.version < EXCLUDED.version",
    )
    .bind(&cols.tenant)
    .bind(&cols.id)
    .bind(&cols.provider)
    .bind(&cols.cloud_id)
    .bind(&cols.resource_type)
    .bind(&cols.name)
    .bind(&cols.account)
    .bind(&cols.region)
    .bind(&cols.metadata)
    .bind(&cols.version)
    .bind(&cols.first_seen)
    .bind(&cols.last_changed)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[derive(Default)]
struct ResourceColumns {
    tenant: Vec<String>,
    id: Vec<Uuid>,
    provider: Vec<String>,
    cloud_id: Vec<String>,
    resource_type: Vec<String>,
    name: Vec<String>,
    account: Vec<String>,
    region: Vec<String>,
    metadata: Vec<serde_json::Value>,
    version: Vec<i64>,
    first_seen: Vec<DateTime<Utc>>,
    last_changed: Vec<DateTime<Utc>>,
}

async fn bump_resource_versions(tx: &mut Tx<'_>, changes: &RowChanges) -> Result<(), sqlx::Error> {
    let (mut tenant, mut id, mut version, mut at) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for ((t, i), c) in &changes.resources {
        if c.description.is_none() {
            tenant.push(t.clone());
            id.push(*i);
            version.push(c.version as i64);
            at.push(c.last_changed_at);
        }
    }
    if id.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE resources r SET version = u.version, last_changed_at = u.at
         FROM UNNEST($1::text[], $2::uuid[], $3::int8[], $4::timestamptz[]) AS u(tenant, id, version, at)
         WHERE r.tenant = u.tenant AND r.id = u.id AND r.version < u.version",
    )
    .bind(&tenant)
    .bind(&id)
    .bind(&version)
    .bind(&at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The batch's latest monthly cost per resource (events of older versions never get here: the
/// fold skips what the read model already holds).
async fn set_monthly_costs(tx: &mut Tx<'_>, changes: &RowChanges) -> Result<(), sqlx::Error> {
    let (mut tenant, mut id, mut cents, mut currency, mut as_of) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for ((t, i), c) in &changes.resources {
        if let Some((cost, cur, day)) = &c.monthly_cost {
            tenant.push(t.clone());
            id.push(*i);
            cents.push(*cost);
            currency.push(cur.clone());
            as_of.push(*day);
        }
    }
    if id.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE resources r SET monthly_cost = u.cents::numeric / 100, monthly_cost_currency = u.currency, monthly_cost_as_of = u.as_of
         FROM UNNEST($1::text[], $2::uuid[], $3::int8[], $4::text[], $5::date[]) AS u(tenant, id, cents, currency, as_of)
         WHERE r.tenant = u.tenant AND r.id = u.id",
    )
    .bind(&tenant)
    .bind(&id)
    .bind(&cents)
    .bind(&currency)
    .bind(&as_of)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn delete_removed_tags(tx: &mut Tx<'_>, changes: &RowChanges) -> Result<(), sqlx::Error> {
    let (mut tenant, mut id, mut key, mut version) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for ((t, i, k), c) in &changes.tags {
        if let Some(v) = c.removed_at_version {
            tenant.push(t.clone());
            id.push(*i);
            key.push(k.clone());
            version.push(v as i64);
        }
    }
    if id.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "DELETE FROM virtual_tags v USING UNNEST($1::text[], $2::uuid[], $3::text[], $4::int8[]) AS u(tenant, id, key, version)
         WHERE v.tenant = u.tenant AND v.resource_id = u.id AND v.tag_key = u.key AND v.version < u.version",
    )
    .bind(&tenant)
    .bind(&id)
    .bind(&key)
    .bind(&version)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn upsert_tags(tx: &mut Tx<'_>, changes: &RowChanges) -> Result<(), sqlx::Error> {
    let mut c = TagColumns::default();
    for ((t, i, k), change) in &changes.tags {
        if let Some(row) = &change.set {
            c.tenant.push(t.clone());
            c.id.push(*i);
            c.key.push(k.clone());
            c.value.push(row.value.clone());
            c.source.push(row.source.clone());
            c.confidence.push(row.confidence);
            c.created_by.push(row.created_by.clone());
            c.created_at.push(row.created_at);
            c.actor.push(row.actor.clone());
            c.at.push(row.at);
            c.version.push(row.version as i64);
            c.event_id.push(row.event_id);
            c.provenance.push(&row.provenance);
        }
    }
    if c.id.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO virtual_tags (tenant, resource_id, tag_key, tag_value, source, confidence, created_by, updated_by,
                                   created_at, updated_at, version, event_id, origin, rule_id, rule_set_version,
                                   native_key, native_value, key_mapping, value_mapping)
         SELECT tenant, id, key, value, source, confidence, created_by, actor, created_at, at, version, event_id,
                origin, rule_id, rule_set_version, native_key, native_value, key_mapping, value_mapping
         FROM UNNEST($1::text[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::float8[], $7::text[],
                     $8::timestamptz[], $9::text[], $10::timestamptz[], $11::int8[], $12::uuid[],
                     $13::text[], $14::text[], $15::int8[], $16::text[], $17::text[], $18::text[], $19::text[])
              AS u(tenant, id, key, value, source, confidence, created_by, created_at, actor, at, version, event_id,
                   origin, rule_id, rule_set_version, native_key, native_value, key_mapping, value_mapping)
         ON CONFLICT (tenant, resource_id, tag_key) DO UPDATE SET
           tag_value = EXCLUDED.tag_value, source = EXCLUDED.source, confidence = EXCLUDED.confidence,
           updated_by = EXCLUDED.updated_by, updated_at = EXCLUDED.updated_at, version = EXCLUDED.version,
           event_id = EXCLUDED.event_id, origin = EXCLUDED.origin, rule_id = EXCLUDED.rule_id,
           rule_set_version = EXCLUDED.rule_set_version, native_key = EXCLUDED.native_key,
           native_value = EXCLUDED.native_value, key_mapping = EXCLUDED.key_mapping,
           value_mapping = EXCLUDED.value_mapping
         WHERE virtual_tags.version < EXCLUDED.version",
    )
    .bind(&c.tenant)
    .bind(&c.id)
    .bind(&c.key)
    .bind(&c.value)
    .bind(&c.source)
    .bind(&c.confidence)
    .bind(&c.created_by)
    .bind(&c.created_at)
    .bind(&c.actor)
    .bind(&c.at)
    .bind(&c.version)
    .bind(&c.event_id)
    .bind(&c.provenance.origin)
    .bind(&c.provenance.rule_id)
    .bind(&c.provenance.rule_set_version)
    .bind(&c.provenance.native_key)
    .bind(&c.provenance.native_value)
    .bind(&c.provenance.key_mapping)
    .bind(&c.provenance.value_mapping)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[derive(Default)]
struct TagColumns {
    tenant: Vec<String>,
    id: Vec<Uuid>,
    key: Vec<String>,
    value: Vec<String>,
    source: Vec<String>,
    confidence: Vec<f64>,
    created_by: Vec<String>,
    created_at: Vec<DateTime<Utc>>,
    actor: Vec<String>,
    at: Vec<DateTime<Utc>>,
    version: Vec<i64>,
    event_id: Vec<Uuid>,
    provenance: ProvenanceColumns,
}

#[derive(Default)]
struct ProvenanceColumns {
    origin: Vec<Option<String>>,
    rule_id: Vec<Option<String>>,
    rule_set_version: Vec<Option<i64>>,
    native_key: Vec<Option<String>>,
    native_value: Vec<Option<String>>,
    key_mapping: Vec<Option<String>>,
    value_mapping: Vec<Option<String>>,
}

impl ProvenanceColumns {
    fn push(&mut self, p: &Provenance) {
        self.origin.push(p.origin.map(str::to_owned));
        self.rule_id.push(p.rule_id.clone());
        self.rule_set_version.push(p.rule_set_version.map(|v| v as i64));
        self.native_key.push(p.native_key.clone());
        self.native_value.push(p.native_value.clone());
        self.key_mapping.push(p.key_mapping.map(str::to_owned));
        self.value_mapping.push(p.value_mapping.map(str::to_owned));
    }
}

async fn insert_audit(tx: &mut Tx<'_>, changes: &RowChanges) -> Result<(), sqlx::Error> {
    if changes.audit.is_empty() {
        return Ok(());
    }
    let a = &changes.audit;
    let col = |f: &dyn Fn(&super::fold::AuditRow) -> Option<String>| a.iter().map(f).collect::<Vec<Option<String>>>();
    let mut p = ProvenanceColumns::default();
    a.iter().for_each(|r| p.push(&r.provenance));
    sqlx::query(
        "INSERT INTO tag_audit (event_id, tenant, resource_id, aggregate_version, action, tag_key, old_value, new_value,
                                source, confidence, performed_by, causation_id, correlation_id, occurred_at, recorded_at,
                                log_partition, log_offset, change_index, origin, rule_id, rule_set_version,
                                native_key, native_value, key_mapping, value_mapping)
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::uuid[], $4::int8[], $5::text[], $6::text[], $7::text[],
                              $8::text[], $9::text[], $10::float8[], $11::text[], $12::uuid[], $13::uuid[],
                              $14::timestamptz[], $15::timestamptz[], $16::int4[], $17::int8[], $18::int4[],
                              $19::text[], $20::text[], $21::int8[], $22::text[], $23::text[], $24::text[], $25::text[])
         ON CONFLICT (event_id, change_index) DO NOTHING",
    )
    .bind(a.iter().map(|r| r.event_id).collect::<Vec<_>>())
    .bind(a.iter().map(|r| r.tenant.clone()).collect::<Vec<_>>())
    .bind(a.iter().map(|r| r.resource_id).collect::<Vec<_>>())
    .bind(a.iter().map(|r| r.version as i64).collect::<Vec<_>>())
    .bind(a.iter().map(|r| r.action.to_owned()).collect::<Vec<_>>())
    .bind(col(&|r| r.tag_key.clone()))
    .bind(col(&|r| r.old_value.clone()))
    .bind(col(&|r| r.new_value.clone()))
    .bind(col(&|r| r.source.clone()))
    .bind(a.iter().map(|r| r.confidence).collect::<Vec<_>>())
    .bind(a.iter().map(|r| r.actor.clone()).collect::<Vec<_>>())
    .bind(a.iter().map(|r| r.causation_id).collect::<Vec<_>>())
    .bind(a.iter().map(|r| r.correlation_id).collect::<Vec<_>>())
    .bind(a.iter().map(|r| r.occurred_at).collect::<Vec<_>>())
    .bind(a.iter().map(|r| r.recorded_at).collect::<Vec<_>>())
    .bind(a.iter().map(|r| r.partition).collect::<Vec<_>>())
    .bind(a.iter().map(|r| r.offset).collect::<Vec<_>>())
    .bind(a.iter().map(|r| r.change_index).collect::<Vec<_>>())
    .bind(&p.origin)
    .bind(&p.rule_id)
    .bind(&p.rule_set_version)
    .bind(&p.native_key)
    .bind(&p.native_value)
    .bind(&p.key_mapping)
    .bind(&p.value_mapping)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Progress only moves forward: a replayed older marker does not undo a newer one.
async fn upsert_progress(tx: &mut Tx<'_>, changes: &RowChanges) -> Result<(), sqlx::Error> {
    let rows = &changes.progress;
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO rederivation_progress (tenant, job_id, rule_set_version, log_partition, processed, total, changed,
                                            done, actor, updated_at, partitions)
         SELECT * FROM UNNEST($1::text[], $2::uuid[], $3::int8[], $4::int4[], $5::int8[], $6::int8[], $7::int8[],
                              $8::bool[], $9::text[], $10::timestamptz[], $11::int4[])
         ON CONFLICT (tenant, job_id, log_partition) DO UPDATE SET
           processed = EXCLUDED.processed, total = EXCLUDED.total, changed = EXCLUDED.changed, done = EXCLUDED.done,
           actor = EXCLUDED.actor, updated_at = EXCLUDED.updated_at
         WHERE NOT rederivation_progress.done AND rederivation_progress.processed <= EXCLUDED.processed",
    )
    .bind(rows.iter().map(|r| r.tenant.clone()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.job_id).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.rule_set_version as i64).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.partition).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.processed as i64).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.total as i64).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.changed as i64).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.done).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.actor.clone()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.at).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.partitions).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
