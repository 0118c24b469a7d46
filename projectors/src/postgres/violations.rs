//! Projects the compliance-events topic (docs/adr/0007) into `violations` and
//! `resource_compliance`. Records are applied in their partition's order (a resource's records are
//! in one partition), one transaction per batch with the partitions' checkpoints.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use sqlx::PgPool;
use vtag_domain::compliance::{Change, Transition};
use vtag_eventlog::compliance::{ComplianceLog, JobProgress};
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
        let source =
            super::configs::partition_source(&pool, projector, brokers, "vtag-projector-postgres-compliance", codec.topic(), partitions).await?;
        Ok(Self { pool, projector: projector.to_owned(), codec, source })
    }

    pub async fn run(self) -> anyhow::Result<()> {
        loop {
            let batch = self.source.next_batch(2000, Duration::from_millis(20)).await?;
            let mut records = Vec::with_capacity(batch.len());
            let mut next: HashMap<i32, i64> = HashMap::new();
            for r in &batch {
                next.insert(r.partition, r.offset + 1);
                match super::decode_with_retry(|| self.codec.decode_compliance_log(&r.payload)).await {
                    Ok(c) => records.push(c),
                    Err(reason) => tracing::error!(partition = r.partition, offset = r.offset, %reason, "skipping an undecodable compliance record"),
                }
            }
            self.write(&records, &next).await.context("writing violations")?;
        }
    }

    async fn write(&self, records: &[ComplianceLog], next: &HashMap<i32, i64>) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        for r in records {
            let r = match r {
                ComplianceLog::Decision(d) => d,
                ComplianceLog::Progress(p) => {
                    progress(&mut tx, p).await?;
                    continue;
                }
            };
            let (tenant, resource, at) = (r.envelope.tenant.as_str(), r.envelope.aggregate_id.as_uuid(), r.envelope.recorded_at);
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
                Change::Transition(t @ (Transition::BecameDue { .. } | Transition::Escalated { .. } | Transition::Resolved { .. })) => {
                    // Each later transition sets the stage and stamps its own column.
                    let (policy_id, key, stage, column, resolution) = match t {
                        Transition::BecameDue { policy_id, key } => (policy_id, key, "due", "became_due_at", None),
                        Transition::Escalated { policy_id, key, .. } => (policy_id, key, "escalated", "escalated_at", None),
                        Transition::Resolved { policy_id, key, reason } => (policy_id, key, "resolved", "resolved_at", Some(reason.as_str())),
                        Transition::Opened { .. } => unreachable!("matched above"),
                    };
                    sqlx::query(&format!(
                        "UPDATE violations SET stage = $5, {column} = $6, resolution = coalesce($7, resolution)
                          WHERE tenant = $1 AND resource_id = $2 AND policy_id = $3 AND tag_key = $4 AND resolved_at IS NULL"
                    ))
                    .bind(tenant)
                    .bind(resource)
                    .bind(policy_id)
                    .bind(key)
                    .bind(stage)
                    .bind(at)
                    .bind(resolution)
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
        super::configs::save_checkpoints(&mut tx, &self.projector, self.codec.topic(), next).await?;
        tx.commit().await
    }
}

/// A job's progress on one partition: the latest marker wins (a job run again after a crash
/// reports from the start and ends done).
async fn progress(tx: &mut sqlx::PgConnection, p: &JobProgress) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO compliance_job_progress (tenant, job_id, kind, policies_version, log_partition, partitions, processed,
                                             total, changed, done, actor, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (tenant, job_id, log_partition) DO UPDATE SET processed = EXCLUDED.processed, total = EXCLUDED.total,
           changed = EXCLUDED.changed, done = EXCLUDED.done, policies_version = EXCLUDED.policies_version,
           updated_at = EXCLUDED.updated_at",
    )
    .bind(p.tenant.as_str())
    .bind(p.job_id)
    .bind(p.kind.as_str())
    .bind(p.policies_version as i64)
    .bind(p.partition)
    .bind(p.partitions)
    .bind(p.processed as i64)
    .bind(p.total as i64)
    .bind(p.changed as i64)
    .bind(p.done)
    .bind(p.actor.as_str())
    .bind(p.recorded_at)
    .execute(tx)
    .await?;
    Ok(())
}
