//! Projects the compliance-events topic (docs/adr/0007) into `violations` and
//! `resource_compliance`. Records are applied in their partition's order (a resource's records are
//! in one partition), one transaction per batch with the partitions' checkpoints.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use sqlx::PgPool;
use vtag_domain::compliance::{Change, Transition};
use vtag_eventlog::compliance::ComplianceRecord;
use vtag_eventlog::EventCodec;

use crate::source::BatchSource;

pub struct ViolationProjection {
    pool: PgPool,
    projector: String,
    codec: EventCodec,
    source: BatchSource,
}

impl ViolationProjection {
    pub async fn start(pool: PgPool, projector: &str, brokers: &str, codec: EventCodec, partitions: i32) -> anyhow::Result<Self> {
        let rows: Vec<(i32, i64)> = sqlx::query_as("SELECT partition, next_offset FROM projector_checkpoints WHERE projector = $1 AND topic = $2")
            .bind(projector)
            .bind(codec.topic())
            .fetch_all(&pool)
            .await?;
        let checkpoints: HashMap<i32, i64> = rows.into_iter().collect();
        let source = BatchSource::assign(brokers, "vtag-projector-postgres-compliance", codec.topic(), partitions, &checkpoints)?;
        Ok(Self { pool, projector: projector.to_owned(), codec, source })
    }

    pub async fn run(self) -> anyhow::Result<()> {
        loop {
            let batch = self.source.next_batch(2000, Duration::from_millis(20)).await?;
            let mut records = Vec::with_capacity(batch.len());
            let mut next: HashMap<i32, i64> = HashMap::new();
            for r in &batch {
                next.insert(r.partition, r.offset + 1);
                match super::decode_with_retry(|| self.codec.decode_compliance(&r.payload)).await {
                    Ok(c) => records.push(c),
                    Err(reason) => tracing::error!(partition = r.partition, offset = r.offset, %reason, "skipping an undecodable compliance record"),
                }
            }
            self.write(&records, &next).await.context("writing violations")?;
        }
    }

    async fn write(&self, records: &[ComplianceRecord], next: &HashMap<i32, i64>) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        for r in records {
            let (tenant, resource, at) = (r.envelope.tenant.as_str(), r.envelope.aggregate_id.as_uuid(), r.envelope.recorded_at);
            let open = "WHERE tenant = $1 AND resource_id = $2 AND policy_id = $3 AND tag_key = $4 AND resolved_at IS NULL";
            match &r.change {
                Change::Transition(Transition::Opened { policy_id, key, severity, problem, message, remediation, due_at, escalation }) => {
                    sqlx::query(
                        "INSERT INTO violations (tenant, resource_id, opened_version, policy_id, tag_key, severity, problem, message,
                                                 remediation, stage, opened_at, due_at, escalate_to, escalate_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', $10, $11, $12, $13)
                         ON CONFLICT (tenant, resource_id, opened_version) DO NOTHING",
                    )
                    .bind(tenant)
                    .bind(resource)
                    .bind(r.envelope.aggregate_version as i64)
                    .bind(policy_id)
                    .bind(key)
                    .bind(severity.as_str())
                    .bind(problem.as_str())
                    .bind(message)
                    .bind(remediation)
                    .bind(at)
                    .bind(due_at)
                    .bind(escalation.as_ref().map(|(to, _)| to.as_str()))
                    .bind(escalation.as_ref().map(|(_, when)| *when))
                    .execute(&mut *tx)
                    .await?;
                }
                Change::Transition(Transition::BecameDue { policy_id, key }) => {
                    sqlx::query(&format!("UPDATE violations SET stage = 'due', became_due_at = $5 {open}"))
                        .bind(tenant)
                        .bind(resource)
                        .bind(policy_id)
                        .bind(key)
                        .bind(at)
                        .execute(&mut *tx)
                        .await?;
                }
                Change::Transition(Transition::Escalated { policy_id, key, .. }) => {
                    sqlx::query(&format!("UPDATE violations SET stage = 'escalated', escalated_at = $5 {open}"))
                        .bind(tenant)
                        .bind(resource)
                        .bind(policy_id)
                        .bind(key)
                        .bind(at)
                        .execute(&mut *tx)
                        .await?;
                }
                Change::Transition(Transition::Resolved { policy_id, key, reason }) => {
                    sqlx::query(&format!("UPDATE violations SET stage = 'resolved', resolved_at = $5, resolution = $6 {open}"))
                        .bind(tenant)
                        .bind(resource)
                        .bind(policy_id)
                        .bind(key)
                        .bind(at)
                        .bind(reason.as_str())
                        .execute(&mut *tx)
                        .await?;
                }
                Change::Judged(j) => {
                    sqlx::query(
                        "INSERT INTO resource_compliance (tenant, resource_id, applicable_policies, violated_policies, score,
                                                          policies_version, changed_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7)
                         ON CONFLICT (tenant, resource_id) DO UPDATE SET applicable_policies = EXCLUDED.applicable_policies,
                           violated_policies = EXCLUDED.violated_policies, score = EXCLUDED.score,
                           policies_version = EXCLUDED.policies_version, changed_at = EXCLUDED.changed_at",
                    )
                    .bind(tenant)
                    .bind(resource)
                    .bind(&j.applicable)
                    .bind(&j.violated)
                    .bind(j.score)
                    .bind(r.policies_version as i64)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        let (partitions, offsets): (Vec<i32>, Vec<i64>) = next.iter().map(|(p, o)| (*p, *o)).unzip();
        sqlx::query(
            "INSERT INTO projector_checkpoints (projector, topic, partition, next_offset, updated_at)
             SELECT $1, $2, p, o, now() FROM UNNEST($3::int4[], $4::int8[]) AS u(p, o)
             ON CONFLICT (projector, topic, partition) DO UPDATE
               SET next_offset = EXCLUDED.next_offset, updated_at = now()
               WHERE projector_checkpoints.next_offset < EXCLUDED.next_offset",
        )
        .bind(&self.projector)
        .bind(self.codec.topic())
        .bind(&partitions)
        .bind(&offsets)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }
}
