//! The delivery ledger in Postgres (schema `herald`): transitions read, deliveries and their
//! states, and the consumer's offsets. A batch's transitions, deliveries (as `sending`) and
//! offsets are committed in one transaction before anything is sent; each send's outcome is
//! recorded after it.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection};
use uuid::Uuid;

use crate::alert::ResourceInfo;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The schema the herald owns.
pub const SCHEMA: &str = "herald";

/// A transition as recorded.
#[derive(Debug, Clone)]
pub struct TransitionRow {
    pub event_id: Uuid,
    pub tenant: String,
    pub resource_id: Uuid,
    pub policy_id: String,
    pub tag_key: String,
    pub transition: &'static str,
    pub partition: i32,
    pub offset: i64,
    pub deliveries: i32,
}

/// A delivery to record.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub delivery_id: Uuid,
    pub event_id: Uuid,
    pub channel_id: String,
    pub channel_kind: &'static str,
    pub tenant: String,
    pub escalation_contact: Option<String>,
    pub payload: String,
}

/// A delivery to attempt (status `sending`, held by this herald).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Pending {
    pub delivery_id: Uuid,
    pub seq: i64,
    pub channel_id: String,
    pub tenant: String,
    pub escalation_contact: Option<String>,
    pub payload: String,
    /// Attempts with a known outcome so far.
    pub attempts: i32,
}

const PENDING_COLUMNS: &str = "delivery_id, seq, channel_id, tenant, escalation_contact, payload::text AS payload, attempts";

#[derive(Clone)]
pub struct Ledger {
    pool: PgPool,
}

impl Ledger {
    /// Creates the schema if missing and applies the herald's migrations in it.
    pub async fn connect(database_url: &str) -> anyhow::Result<Self> {
        let options: PgConnectOptions = database_url.parse().context("VTAG_DATABASE_URL")?;
        let mut conn = PgConnection::connect_with(&options).await.context("connecting to Postgres")?;
        sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {SCHEMA}")).execute(&mut conn).await.context("creating the herald schema")?;
        conn.close().await?;
        let options = options.options([("search_path", SCHEMA)]).disable_statement_logging();
        let pool = PgPoolOptions::new().max_connections(4).connect_with(options).await.context("connecting to Postgres")?;
        MIGRATOR.run(&pool).await.context("migrating the herald schema")?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The next offset to dispatch from, per partition of `topic`.
    pub async fn offsets(&self, topic: &str) -> anyhow::Result<HashMap<i32, i64>> {
        let rows: Vec<(i32, i64)> =
            sqlx::query_as("SELECT partition, next_offset FROM consumer_offsets WHERE topic = $1").bind(topic).fetch_all(&self.pool).await?;
        Ok(rows.into_iter().collect())
    }

    /// Records a batch in one transaction: its transitions (a transition already recorded — a
    /// duplicate record — is skipped with its deliveries), its deliveries as `sending` (one already
    /// there is left alone) and the offsets after it. Returns the deliveries it added, to send.
    pub async fn record(&self, topic: &str, transitions: &[TransitionRow], deliveries: &[NewDelivery], offsets: &HashMap<i32, i64>) -> anyhow::Result<Vec<Pending>> {
        let mut tx = self.pool.begin().await?;
        let mut new_events: HashSet<Uuid> = HashSet::new();
        if !transitions.is_empty() {
            let col = |f: fn(&TransitionRow) -> String| transitions.iter().map(f).collect::<Vec<_>>();
            let inserted: Vec<Uuid> = sqlx::query_scalar(
                "INSERT INTO transitions (event_id, tenant, resource_id, policy_id, tag_key, transition, log_partition, log_offset, deliveries, read_at)
                 SELECT e, t, r, p, k, tr, lp, lo, d, now()
                   FROM UNNEST($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::int[], $8::bigint[], $9::int[])
                        AS x(e, t, r, p, k, tr, lp, lo, d)
                 ON CONFLICT (event_id) DO NOTHING
                 RETURNING event_id",
            )
            .bind(transitions.iter().map(|t| t.event_id).collect::<Vec<_>>())
            .bind(col(|t| t.tenant.clone()))
            .bind(transitions.iter().map(|t| t.resource_id).collect::<Vec<_>>())
            .bind(col(|t| t.policy_id.clone()))
            .bind(col(|t| t.tag_key.clone()))
            .bind(col(|t| t.transition.to_owned()))
            .bind(transitions.iter().map(|t| t.partition).collect::<Vec<_>>())
            .bind(transitions.iter().map(|t| t.offset).collect::<Vec<_>>())
            .bind(transitions.iter().map(|t| t.deliveries).collect::<Vec<_>>())
            .fetch_all(&mut *tx)
            .await
            .context("recording transitions")?;
            new_events.extend(inserted);
        }
        let fresh: Vec<&NewDelivery> = deliveries.iter().filter(|d| new_events.contains(&d.event_id)).collect();
        let mut added: Vec<Pending> = Vec::new();
        if !fresh.is_empty() {
            let col = |f: fn(&NewDelivery) -> String| fresh.iter().map(|d| f(d)).collect::<Vec<_>>();
            added = sqlx::query_as(&format!(
                "INSERT INTO deliveries (delivery_id, event_id, channel_id, channel_kind, tenant, escalation_contact, payload, status, created_at, updated_at)
                 SELECT id, e, c, k, t, ec, p::json, 'sending', now(), now()
                   FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[]) WITH ORDINALITY AS x(id, e, c, k, t, ec, p, n)
                  ORDER BY n
                 ON CONFLICT DO NOTHING
                 RETURNING {PENDING_COLUMNS}"
            ))
            .bind(fresh.iter().map(|d| d.delivery_id).collect::<Vec<_>>())
            .bind(fresh.iter().map(|d| d.event_id).collect::<Vec<_>>())
            .bind(col(|d| d.channel_id.clone()))
            .bind(col(|d| d.channel_kind.to_owned()))
            .bind(col(|d| d.tenant.clone()))
            .bind(fresh.iter().map(|d| d.escalation_contact.clone()).collect::<Vec<_>>())
            .bind(col(|d| d.payload.clone()))
            .fetch_all(&mut *tx)
            .await
            .context("recording deliveries")?;
            added.sort_by_key(|p| p.seq);
        }
        if !offsets.is_empty() {
            let (partitions, next): (Vec<i32>, Vec<i64>) = offsets.iter().map(|(p, o)| (*p, *o)).unzip();
            sqlx::query(
                "INSERT INTO consumer_offsets (topic, partition, next_offset, updated_at)
                 SELECT $1, p, o, now() FROM UNNEST($2::int[], $3::bigint[]) AS x(p, o)
                 ON CONFLICT (topic, partition) DO UPDATE
                   SET next_offset = GREATEST(consumer_offsets.next_offset, EXCLUDED.next_offset), updated_at = now()",
            )
            .bind(topic)
            .bind(&partitions)
            .bind(&next)
            .execute(&mut *tx)
            .await
            .context("moving the offsets")?;
        }
        tx.commit().await?;
        Ok(added)
    }

    /// Deliveries left `sending` by a herald that stopped before knowing their outcome (a crash,
    /// a failed cycle): due again at once, with the same delivery ids. Returns how many.
    pub async fn requeue_interrupted(&self) -> anyhow::Result<u64> {
        let done = sqlx::query(
            "UPDATE deliveries SET status = 'failed', next_attempt_at = now(), updated_at = now(),
                    last_error = 'interrupted: the herald stopped before this delivery''s outcome was known; sent again with the same delivery id'
              WHERE status = 'sending'",
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Takes up to `limit` failed deliveries whose next attempt is due (they become `sending`).
    pub async fn claim_due(&self, limit: i64) -> anyhow::Result<Vec<Pending>> {
        let mut due: Vec<Pending> = sqlx::query_as(&format!(
            "UPDATE deliveries SET status = 'sending', updated_at = now()
              WHERE delivery_id IN (SELECT delivery_id FROM deliveries
                                     WHERE status = 'failed' AND next_attempt_at <= now()
                                     ORDER BY next_attempt_at, seq LIMIT $1 FOR UPDATE SKIP LOCKED)
             RETURNING {PENDING_COLUMNS}"
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        due.sort_by_key(|p| p.seq);
        Ok(due)
    }

    pub async fn mark_sent(&self, id: Uuid) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE deliveries SET status = 'sent', attempts = attempts + 1, sent_at = now(), updated_at = now(), next_attempt_at = NULL
              WHERE delivery_id = $1 AND status = 'sending'",
        )
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A failed attempt: `failed` with the next attempt `retry_in` from now, or `dead` (None).
    pub async fn mark_failed(&self, id: Uuid, error: &str, retry_in: Option<Duration>) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE deliveries
                SET status = CASE WHEN $3::bigint IS NULL THEN 'dead' ELSE 'failed' END,
                    attempts = attempts + 1, last_error = $2, updated_at = now(),
                    next_attempt_at = now() + $3::bigint * interval '1 millisecond'
              WHERE delivery_id = $1 AND status = 'sending'",
        )
        .bind(id)
        .bind(error)
        .bind(retry_in.map(|d| d.as_millis() as i64))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Puts deliveries back without an attempt (their channel just failed): due in `retry_in`.
    pub async fn defer(&self, ids: &[Uuid], reason: &str, retry_in: Duration) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE deliveries SET status = 'failed', last_error = $2, updated_at = now(),
                    next_attempt_at = now() + $3::bigint * interval '1 millisecond'
              WHERE delivery_id = ANY($1) AND status = 'sending'",
        )
        .bind(ids)
        .bind(reason)
        .bind(retry_in.as_millis() as i64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// The read model (the projector's tables), for what an alert says about its resource. Read at
/// dispatch time; a resource the projector has not written yet has no name and no team.
pub struct ReadModel {
    pool: PgPool,
    warned: std::sync::atomic::AtomicBool,
}

impl ReadModel {
    pub async fn connect(database_url: &str) -> anyhow::Result<Self> {
        let options: PgConnectOptions = database_url.parse().context("VTAG_DATABASE_URL")?;
        let pool = PgPoolOptions::new().max_connections(2).connect_with(options.disable_statement_logging()).await?;
        Ok(Self { pool, warned: Default::default() })
    }

    /// Name, provider, cloud id, account and `team` tag of each (tenant, resource).
    pub async fn resources(&self, keys: &[(String, Uuid)]) -> anyhow::Result<HashMap<(String, Uuid), ResourceInfo>> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let (tenants, ids): (Vec<String>, Vec<Uuid>) = keys.iter().cloned().unzip();
        let rows: Result<Vec<ResourceRow>, sqlx::Error> = sqlx::query_as(
            "SELECT k.tenant, k.id, r.name, r.provider, r.cloud_resource_id, r.account_id, t.tag_value AS team
               FROM UNNEST($1::text[], $2::uuid[]) AS k(tenant, id)
               LEFT JOIN resources r ON r.tenant = k.tenant AND r.id = k.id
               LEFT JOIN virtual_tags t ON t.tenant = k.tenant AND t.resource_id = k.id AND t.tag_key = 'team'",
        )
        .bind(&tenants)
        .bind(&ids)
        .fetch_all(&self.pool)
        .await;
        let rows = match rows {
            Ok(rows) => rows,
            // No read model in this database (no projector ran yet): alerts go out without names or teams.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => {
                if !self.warned.swap(true, std::sync::atomic::Ordering::Relaxed) {
                    tracing::warn!(error = %e, "no read model to look resources up in: alerts carry no resource name and no team");
                }
                return Ok(HashMap::new());
            }
            Err(e) => return Err(e).context("looking resources up in the read model"),
        };
        Ok(rows
            .into_iter()
            .map(|r| {
                let info = ResourceInfo { name: r.name, provider: r.provider, cloud_resource_id: r.cloud_resource_id, account_id: r.account_id, team: r.team };
                ((r.tenant, r.id), info)
            })
            .collect())
    }
}

#[derive(sqlx::FromRow)]
struct ResourceRow {
    tenant: String,
    id: Uuid,
    name: Option<String>,
    provider: Option<String>,
    cloud_resource_id: Option<String>,
    account_id: Option<String>,
    team: Option<String>,
}
