//! Rebuilding the Postgres read model beside the served one (ADR 0010).
//!
//! The served read model is the schema `public`. A rebuild migrates a schema of its own
//! (`vtag_shadow_<millis>`), folds every topic into it from offset 0, and then swaps the two names
//! in one transaction: readers resolve `public` to the rebuilt tables from their next statement on
//! (Postgres re-plans prepared statements when a schema is renamed), and never see a half-built one.
//!
//! Writers of the served model take a shared advisory lock in every transaction and check that
//! `public` is still the schema they started on; the swap holds the lock exclusively, so no write
//! straddles it, and a writer that finds a new `public` starts over on it from its checkpoints. The
//! swap waits until the shadow's checkpoints are at or past the served ones: checkpoints never go
//! back, which read-your-writes tokens and the query API's checkpoint-keyed caches rely on.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Connection, PgConnection, Postgres, Transaction};

/// The schema the query API reads.
pub const SERVED: &str = "public";
/// Schemas a rebuild folds into, and the ones a swap retired.
const SHADOW_PREFIX: &str = "vtag_shadow_";
const RETIRED_PREFIX: &str = "vtag_retired_";
/// Served writers hold it shared per transaction; the swap holds it exclusively.
const SWAP_LOCK: &str = "vtag-read-model:swap";
/// One rebuild at a time per database.
const REBUILD_LOCK: &str = "vtag-read-model:rebuild";
/// How long a retired model stays for queries that started on it.
const GRACE: Duration = Duration::from_secs(2);

/// Which copy of the read model a projection writes.
#[derive(Clone)]
pub struct Target {
    pool: PgPool,
    /// For the served model: `public`'s oid when this pass began (a different one means a swap).
    served_oid: Option<i64>,
}

/// A write found that a rebuilt read model had been swapped in; the projector starts over on it.
#[derive(Debug, thiserror::Error)]
#[error("the served read model was replaced by a rebuilt one")]
pub struct Swapped;

impl Target {
    pub async fn served(pool: PgPool) -> Result<Self, sqlx::Error> {
        let oid = served_oid(&pool).await?.ok_or(sqlx::Error::RowNotFound)?;
        Ok(Self { pool, served_oid: Some(oid) })
    }

    pub fn shadow(pool: PgPool) -> Self {
        Self { pool, served_oid: None }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// A write transaction; for the served model, one no swap can happen in, refused with
    /// [`Swapped`] when one happened since this pass began.
    pub async fn begin(&self) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        if let Some(started_on) = self.served_oid {
            sqlx::query("SELECT pg_advisory_xact_lock_shared(hashtextextended($1, 0))").bind(SWAP_LOCK).execute(&mut *tx).await?;
            // A statement of its own: its snapshot is taken after the lock was granted.
            if served_oid(&mut *tx).await? != Some(started_on) {
                return Err(sqlx::Error::Configuration(Box::new(Swapped)));
            }
        }
        Ok(tx)
    }
}

/// The oid of the schema named `public` now.
async fn served_oid<'e>(db: impl sqlx::PgExecutor<'e>) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT oid::int8 FROM pg_namespace WHERE nspname = $1").bind(SERVED).fetch_optional(db).await
}

/// Whether `e` (anywhere in its chain) is a write that found the read model swapped.
pub fn is_swapped(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| cause.is::<Swapped>())
}

/// Connection options whose unqualified names resolve in `schema` (None: the served model).
pub fn options(database_url: &str, schema: Option<&str>) -> Result<PgConnectOptions, sqlx::Error> {
    let options: PgConnectOptions = database_url.parse()?;
    Ok(match schema {
        Some(schema) => options.options([("search_path", schema)]),
        None => options,
    })
}

/// The rebuild's side of the database: its lock, the shadow schema, and the swap.
pub struct Rebuild {
    /// Holds the rebuild lock (session-level) and runs the swap.
    conn: PgConnection,
    pub shadow: String,
    /// The shadow's secondary indexes, created once its rows are in (one sort per index instead of
    /// an insert into each per row).
    deferred: Vec<String>,
}

impl Rebuild {
    /// Takes the rebuild lock, drops what an interrupted rebuild left behind, and creates and
    /// migrates a fresh shadow schema.
    pub async fn prepare(database_url: &str) -> anyhow::Result<Self> {
        let mut conn = PgConnection::connect_with(&options(database_url, None)?).await.context("connecting to Postgres")?;
        let locked: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))").bind(REBUILD_LOCK).fetch_one(&mut conn).await?;
        if !locked {
            bail!("another rebuild of the Postgres read model is running");
        }
        for leftover in schemas_named(&mut conn, SHADOW_PREFIX).await?.into_iter().chain(schemas_named(&mut conn, RETIRED_PREFIX).await?) {
            tracing::info!(schema = %leftover, "dropping what an earlier rebuild left behind");
            drop_schema(&mut conn, &leftover).await?;
        }
        let shadow = format!("{SHADOW_PREFIX}{}", chrono::Utc::now().timestamp_millis());
        sqlx::query(&format!("CREATE SCHEMA {}", quoted(&shadow))).execute(&mut conn).await?;
        let pool = PgPoolOptions::new().max_connections(1).connect_with(options(database_url, Some(&shadow))?).await?;
        super::store::MIGRATOR.run(&pool).await.context("migrating the shadow schema")?;
        pool.close().await;
        // Unique indexes stay: they are arbiters of upserts, or rules the rows must keep.
        let deferred: Vec<(String, String)> = sqlx::query_as(
            "SELECT c.relname::text, pg_get_indexdef(i.indexrelid)
               FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = $1 AND NOT i.indisunique",
        )
        .bind(&shadow)
        .fetch_all(&mut conn)
        .await?;
        for (index, _) in &deferred {
            sqlx::query(&format!("DROP INDEX {}.{}", quoted(&shadow), quoted(index))).execute(&mut conn).await?;
        }
        Ok(Self { conn, shadow, deferred: deferred.into_iter().map(|(_, definition)| definition).collect() })
    }

    /// Creates the secondary indexes the shadow was built without.
    pub async fn create_deferred_indexes(&mut self) -> Result<(), sqlx::Error> {
        for definition in std::mem::take(&mut self.deferred) {
            sqlx::query(&definition).execute(&mut self.conn).await?;
        }
        Ok(())
    }

    /// The shadow's checkpoints of `projector`: topic → partition → next offset.
    pub async fn shadow_checkpoints(&mut self, projector: &str) -> Result<HashMap<String, HashMap<i32, i64>>, sqlx::Error> {
        let rows: Vec<(String, i32, i64)> = sqlx::query_as(&format!(
            "SELECT topic, partition, next_offset FROM {}.projector_checkpoints WHERE projector = $1",
            quoted(&self.shadow)
        ))
        .bind(projector)
        .fetch_all(&mut self.conn)
        .await?;
        let mut by_topic: HashMap<String, HashMap<i32, i64>> = HashMap::new();
        for (topic, partition, next) in rows {
            by_topic.entry(topic).or_default().insert(partition, next);
        }
        Ok(by_topic)
    }

    /// Swaps the shadow in. Served writes wait meanwhile; once the shadow holds at least what the
    /// served model holds, `stop_shadow` ends the shadow's writers (all of them, before a name
    /// changes), and the names swap. Returns the retired model's name.
    pub async fn swap<F: std::future::Future<Output = anyhow::Result<()>>>(&mut self, projector: &str, stop_shadow: F) -> anyhow::Result<String> {
        let retired = format!("{RETIRED_PREFIX}{}", chrono::Utc::now().timestamp_millis());
        let mut tx = self.conn.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))").bind(SWAP_LOCK).execute(&mut *tx).await?;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let behind = behind_served(&mut tx, &self.shadow, projector).await?;
            if behind.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                bail!("the rebuilt read model did not catch up with the served one: {}", behind.join(", "));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop_shadow.await.context("stopping the shadow's writers")?;
        copy_grants(&mut tx, &self.shadow).await?;
        sqlx::query(&format!("ALTER SCHEMA {} RENAME TO {}", quoted(SERVED), quoted(&retired))).execute(&mut *tx).await?;
        sqlx::query(&format!("ALTER SCHEMA {} RENAME TO {}", quoted(&self.shadow), quoted(SERVED))).execute(&mut *tx).await?;
        tx.commit().await?;
        tracing::info!(shadow = %self.shadow, %retired, "the rebuilt read model serves");
        Ok(retired)
    }

    /// Drops the retired model once the queries that started on it have had time to end.
    pub async fn retire(mut self, retired: &str) -> Result<(), sqlx::Error> {
        tokio::time::sleep(GRACE).await;
        drop_schema(&mut self.conn, retired).await
    }
}

/// `topic:partition` where the shadow's checkpoint is behind the served one's.
async fn behind_served(tx: &mut PgConnection, shadow: &str, projector: &str) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(&format!(
        "SELECT s.topic || ':' || s.partition
           FROM {served}.projector_checkpoints s
           LEFT JOIN {shadow}.projector_checkpoints b USING (projector, topic, partition)
          WHERE s.projector = $1 AND coalesce(b.next_offset, 0) < s.next_offset",
        served = quoted(SERVED),
        shadow = quoted(shadow),
    ))
    .bind(projector)
    .fetch_all(tx)
    .await
}

/// The served schema's and tables' grants to other roles, given on the shadow's (a reader role the
/// query API connects as keeps reading after the swap).
async fn copy_grants(tx: &mut PgConnection, shadow: &str) -> Result<(), sqlx::Error> {
    let grantee = "CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END";
    let on_schema: Vec<(String, String)> = sqlx::query_as(&format!(
        "SELECT a.privilege_type, {grantee} FROM pg_namespace n, aclexplode(n.nspacl) a
          WHERE n.nspname = $1 AND a.grantee <> n.nspowner"
    ))
    .bind(SERVED)
    .fetch_all(&mut *tx)
    .await?;
    for (privilege, to) in on_schema {
        sqlx::query(&format!("GRANT {privilege} ON SCHEMA {} TO {to}", quoted(shadow))).execute(&mut *tx).await?;
    }
    let on_tables: Vec<(String, String, String)> = sqlx::query_as(&format!(
        "SELECT quote_ident(c.relname), a.privilege_type, {grantee}
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(c.relacl) a
          WHERE n.nspname = $1 AND c.relkind IN ('r', 'v', 'm', 'S') AND a.grantee <> c.relowner
            AND EXISTS (SELECT 1 FROM pg_class t JOIN pg_namespace tn ON tn.oid = t.relnamespace
                         WHERE tn.nspname = $2 AND t.relname = c.relname)"
    ))
    .bind(SERVED)
    .bind(shadow)
    .fetch_all(&mut *tx)
    .await?;
    for (table, privilege, to) in on_tables {
        sqlx::query(&format!("GRANT {privilege} ON {}.{table} TO {to}", quoted(shadow))).execute(&mut *tx).await?;
    }
    Ok(())
}

async fn schemas_named(conn: &mut PgConnection, prefix: &str) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT nspname::text FROM pg_namespace WHERE starts_with(nspname, $1) ORDER BY nspname").bind(prefix).fetch_all(conn).await
}

async fn drop_schema(conn: &mut PgConnection, schema: &str) -> Result<(), sqlx::Error> {
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {} CASCADE", quoted(schema))).execute(conn).await.map(drop)
}

/// Schema names here are ours (a prefix and digits), quoted all the same.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_swap_found_in_a_write_is_recognised_through_the_error_chain() {
        let write = anyhow::Error::new(sqlx::Error::Configuration(Box::new(Swapped))).context("writing the read model");
        assert!(is_swapped(&write));
        assert!(!is_swapped(&anyhow::anyhow!("connection refused")));
        assert_eq!(quoted("vtag_shadow_1"), "\"vtag_shadow_1\"");
    }
}
