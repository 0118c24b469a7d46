//! Projects the versioned-document topics — tagging configuration into `tagging_configs`,
//! compliance policies into `compliance_policies` — every version of every tenant's document, with
//! what changed and who changed it. The query API serves the tag schema, rules, policies and their
//! history from here.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use sqlx::PgPool;
use vtag_eventlog::compliance::PoliciesLog;
use vtag_eventlog::{ConfigRecord, EventCodec};

use crate::source::BatchSource;
use super::swap::Target;

/// Which document a topic carries, and where its versions go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Documents {
    TaggingConfig,
    CompliancePolicies,
}

impl Documents {
    fn client_id(self) -> &'static str {
        match self {
            Self::TaggingConfig => "vtag-projector-postgres-config",
            Self::CompliancePolicies => "vtag-projector-postgres-policies",
        }
    }

    fn insert(self) -> &'static str {
        match self {
            Self::TaggingConfig => {
                "INSERT INTO tagging_configs (tenant, version, document, change, change_kind, rule_ids, actor, event_id, recorded_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (tenant, version) DO NOTHING"
            }
            Self::CompliancePolicies => {
                "INSERT INTO compliance_policies (tenant, version, document, change, change_kind, policy_ids, actor, event_id, recorded_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (tenant, version) DO NOTHING"
            }
        }
    }

    /// The document version a record carries; `None` for the other records of its topic
    /// (recheck requests share the policies topic; the evaluator acts on them, not the read model).
    async fn decode(self, codec: &EventCodec, bytes: &[u8]) -> Result<Option<ConfigRecord>, vtag_eventlog::DecodeError> {
        match self {
            Self::TaggingConfig => codec.decode_config(bytes).await.map(Some),
            Self::CompliancePolicies => codec.decode_policies_log(bytes).await.map(|r| match r {
                PoliciesLog::Policies(c) => Some(c),
                PoliciesLog::Recheck(_) => None,
            }),
        }
    }
}

pub struct ConfigProjection {
    target: Target,
    projector: String,
    codec: EventCodec,
    source: BatchSource,
    documents: Documents,
}

impl ConfigProjection {
    pub async fn start(target: Target, projector: &str, brokers: &str, codec: EventCodec, documents: Documents) -> anyhow::Result<Self> {
        let source = single_partition_source(target.pool(), projector, brokers, documents.client_id(), codec.topic()).await?;
        Ok(Self { target, projector: projector.to_owned(), codec, source, documents })
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
                match super::decode_with_retry(|| self.documents.decode(&self.codec, &r.payload)).await {
                    Ok(Some(c)) => records.push(c),
                    Ok(None) => {}
                    Err(reason) => tracing::error!(offset = r.offset, %reason, documents = ?self.documents, "skipping an undecodable document record"),
                }
            }
            self.write(&records, next).await.with_context(|| format!("writing {:?} versions", self.documents))?;
        }
    }

    async fn write(&self, records: &[ConfigRecord], next_offset: i64) -> Result<(), sqlx::Error> {
        let mut tx = self.target.begin().await?;
        for c in records {
            let document: serde_json::Value = serde_json::from_str(&c.document).unwrap_or(serde_json::Value::Null);
            sqlx::query(self.documents.insert())
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

/// A reader of a single-partition topic, from the projector's checkpoint for it.
pub(crate) async fn single_partition_source(
    pool: &PgPool,
    projector: &str,
    brokers: &str,
    client_id: &str,
    topic: &str,
) -> anyhow::Result<BatchSource> {
    partition_source(pool, projector, brokers, client_id, topic, 1).await
}

/// A reader of every partition of a topic, each from the projector's checkpoint for it.
pub(crate) async fn partition_source(
    pool: &PgPool,
    projector: &str,
    brokers: &str,
    client_id: &str,
    topic: &str,
    partitions: i32,
) -> anyhow::Result<BatchSource> {
    let rows: Vec<(i32, i64)> = sqlx::query_as("SELECT partition, next_offset FROM projector_checkpoints WHERE projector = $1 AND topic = $2")
        .bind(projector)
        .bind(topic)
        .fetch_all(pool)
        .await?;
    let checkpoints: HashMap<i32, i64> = rows.into_iter().collect();
    Ok(BatchSource::assign(brokers, client_id, topic, partitions, &checkpoints)?)
}

/// The next offset of a single-partition topic, in the transaction of the rows it covers.
pub(crate) async fn save_checkpoint(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    projector: &str,
    topic: &str,
    next_offset: i64,
) -> Result<(), sqlx::Error> {
    save_checkpoints(tx, projector, topic, &HashMap::from([(0, next_offset)])).await
}

/// The next offset of each partition, in the transaction of the rows it covers (never moved
/// backwards by a replayed batch).
pub(crate) async fn save_checkpoints(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    projector: &str,
    topic: &str,
    next_offsets: &HashMap<i32, i64>,
) -> Result<(), sqlx::Error> {
    let (partitions, offsets): (Vec<i32>, Vec<i64>) = next_offsets.iter().map(|(p, o)| (*p, *o)).unzip();
    sqlx::query(
        "INSERT INTO projector_checkpoints (projector, topic, partition, next_offset, updated_at)
         SELECT $1, $2, p, o, now() FROM UNNEST($3::int4[], $4::int8[]) AS u(p, o)
         ON CONFLICT (projector, topic, partition) DO UPDATE
           SET next_offset = EXCLUDED.next_offset, updated_at = now()
           WHERE projector_checkpoints.next_offset < EXCLUDED.next_offset",
    )
    .bind(projector)
    .bind(topic)
    .bind(&partitions)
    .bind(&offsets)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
