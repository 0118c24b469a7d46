//! Projects the tagging-config topic into `tagging_configs`: every version of every tenant's
//! configuration document, with what changed and who changed it. The query API serves the tag
//! schema, the rules and the configuration history from here.

use std::time::Duration;

use anyhow::Context;
use sqlx::PgPool;
use vtag_eventlog::{ConfigRecord, DecodeError, EventCodec};

use crate::source::BatchSource;

pub struct ConfigProjection {
    pool: PgPool,
    projector: String,
    codec: EventCodec,
    source: BatchSource,
}

impl ConfigProjection {
    pub async fn start(pool: PgPool, projector: &str, brokers: &str, codec: EventCodec) -> anyhow::Result<Self> {
        let next: Option<i64> = sqlx::query_scalar(
            "SELECT next_offset FROM projector_checkpoints WHERE projector = $1 AND topic = $2 AND partition = 0",
        )
        .bind(projector)
        .bind(codec.topic())
        .fetch_optional(&pool)
        .await?;
        let checkpoints = next.map(|o| (0, o)).into_iter().collect();
        let source = BatchSource::assign(brokers, "vtag-projector-postgres-config", codec.topic(), 1, &checkpoints)?;
        Ok(Self { pool, projector: projector.to_owned(), codec, source })
    }

    /// Runs until the process ends (the caller drops the future on shutdown; a batch is one
    /// transaction, so dropping it mid-way commits nothing).
    pub async fn run(self) -> anyhow::Result<()> {
        loop {
            let batch = self.source.next_batch(500, Duration::from_millis(50)).await?;
            let mut records = Vec::with_capacity(batch.len());
            let mut next = 0;
            for r in &batch {
                next = r.offset + 1;
                match self.decode(&r.payload).await {
                    Ok(c) => records.push(c),
                    Err(reason) => tracing::error!(offset = r.offset, %reason, "skipping an undecodable configuration record"),
                }
            }
            self.write(&records, next).await.context("writing tagging configurations")?;
        }
    }

    async fn decode(&self, payload: &[u8]) -> Result<ConfigRecord, String> {
        loop {
            match self.codec.decode_config(payload).await {
                Ok(c) => return Ok(c),
                Err(DecodeError::Poison(e)) => return Err(e),
                Err(DecodeError::Unavailable(e)) => {
                    tracing::warn!(error = %e, "schema registry unavailable; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    async fn write(&self, records: &[ConfigRecord], next_offset: i64) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        for c in records {
            let document: serde_json::Value = serde_json::from_str(&c.document).unwrap_or(serde_json::Value::Null);
            sqlx::query(
                "INSERT INTO tagging_configs (tenant, version, document, change, change_kind, rule_ids, actor, event_id, recorded_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (tenant, version) DO NOTHING",
            )
            .bind(c.tenant.as_str())
            .bind(c.version as i64)
            .bind(document)
            .bind(&c.change)
            .bind(&c.change_kind)
            .bind(&c.rule_ids)
            .bind(c.actor.as_str())
            .bind(c.event_id)
            .bind(c.recorded_at)
            .execute(&mut *tx)
            .await?;
        }
        save_checkpoint(&mut tx, &self.projector, self.codec.topic(), next_offset).await?;
        tx.commit().await
    }
}

/// The next offset of a single-partition topic, in the transaction of the rows it covers (never
/// moved backwards by a replayed batch).
pub(crate) async fn save_checkpoint(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    projector: &str,
    topic: &str,
    next_offset: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO projector_checkpoints (projector, topic, partition, next_offset, updated_at)
         VALUES ($1, $2, 0, $3, now())
         ON CONFLICT (projector, topic, partition) DO UPDATE
           SET next_offset = EXCLUDED.next_offset, updated_at = now()
           WHERE projector_checkpoints.next_offset < EXCLUDED.next_offset",
    )
    .bind(projector)
    .bind(topic)
    .bind(next_offset)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
