//! Projects the compliance-events topic (docs/adr/0007) into `violations`, `resource_compliance`
//! and `compliance_job_progress`. Decisions arrive in batches (a sweep is millions of them), so a
//! batch of records is folded in memory first — a violation opened and made due in the same batch
//! is one row, a resource judged twice keeps its last judgement — and written with a few set-based
//! statements, in one transaction with the partitions' checkpoints.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use uuid::Uuid;
use vtag_domain::compliance::{Change, Transition};
use vtag_eventlog::compliance::{ComplianceLog, ComplianceRecord, JobProgress};
use vtag_eventlog::EventCodec;

use crate::source::BatchSource;
use super::swap::Target;

/// Records per transaction: a record is one decision or a batch of up to a few thousand.
const RECORDS_PER_WRITE: usize = 40;

pub struct ViolationProjection {
    target: Target,
    projector: String,
    codec: EventCodec,
    source: BatchSource,
}

impl ViolationProjection {
    pub async fn start(target: Target, projector: &str, brokers: &str, codec: EventCodec, partitions: i32) -> anyhow::Result<Self> {
        let source =
            super::configs::partition_source(target.pool(), projector, brokers, "vtag-projector-postgres-compliance", codec.topic(), partitions).await?;
        Ok(Self { target, projector: projector.to_owned(), codec, source })
    }

    pub async fn run(self) -> anyhow::Result<()> {
        loop {
            let batch = self.source.next_batch(RECORDS_PER_WRITE, Duration::from_millis(20)).await?;
            let mut fold = Fold::default();
            let mut next: HashMap<i32, i64> = HashMap::new();
            for r in &batch {
                next.insert(r.partition, r.offset + 1);
                match super::decode_with_retry(|| self.codec.decode_compliance_log(&r.payload)).await {
                    Ok(ComplianceLog::Decisions(records)) => records.into_iter().for_each(|d| fold.decision(d)),
                    Ok(ComplianceLog::Progress(p)) => fold.progress.push(p),
                    Err(reason) => tracing::error!(partition = r.partition, offset = r.offset, %reason, "skipping an undecodable compliance record"),
                }
            }
            self.write(fold, &next).await.context("writing violations")?;
        }
    }

    async fn write(&self, fold: Fold, next: &HashMap<i32, i64>) -> Result<(), sqlx::Error> {
        let mut tx = self.target.begin().await?;
        // Rows already in the table first: their `resolved_at IS NULL` must not match the rows this
        // batch opens (a violation resolved and opened again within it).
        fold.update_existing(&mut tx).await?;
        fold.insert_opened(&mut tx).await?;
        fold.upsert_judgements(&mut tx).await?;
        for p in &fold.progress {
            progress(&mut tx, p).await?;
        }
        super::configs::save_checkpoints(&mut tx, &self.projector, self.codec.topic(), next).await?;
        tx.commit().await
    }
}

/// A violation's identity while open: (tenant, resource, policy, tag key).
type Open = (String, Uuid, String, String);

/// A violation opened in this batch, with whatever happened to it since.
struct NewRow {
    tenant: String,
    resource: Uuid,
    opened_version: i64,
    policy_id: String,
    tag_key: String,
    severity: &'static str,
    problem: &'static str,
    message: String,
    remediation: String,
    opened_at: DateTime<Utc>,
    due_at: DateTime<Utc>,
    escalate_to: Option<String>,
    escalate_at: Option<DateTime<Utc>>,
    later: Later,
}

/// What later transitions set on a violation.
#[derive(Default)]
struct Later {
    stage: Option<&'static str>,
    became_due_at: Option<DateTime<Utc>>,
    escalated_at: Option<DateTime<Utc>>,
    resolved_at: Option<DateTime<Utc>>,
    resolution: Option<&'static str>,
}

impl Later {
    /// Applies a later transition; true when it resolved the violation.
    fn apply(&mut self, t: &Transition, at: DateTime<Utc>) -> bool {
        match t {
            Transition::BecameDue { .. } => {
                self.stage = Some("due");
                self.became_due_at = Some(at);
            }
            Transition::Escalated { .. } => {
                self.stage = Some("escalated");
                self.escalated_at = Some(at);
            }
            Transition::Resolved { reason, .. } => {
                self.stage = Some("resolved");
                self.resolved_at = Some(at);
                self.resolution = Some(reason.as_str());
                return true;
            }
            Transition::Opened { .. } => {}
        }
        false
    }
}

struct Judged {
    applicable: String,
    violated: String,
    score: f64,
    policies_version: i64,
    at: DateTime<Utc>,
}

#[derive(Default)]
struct Fold {
    opened: Vec<NewRow>,
    /// Opened in this batch and still open: index into `opened`.
    open_new: HashMap<Open, usize>,
    /// Rows from earlier batches that this batch moves on, by identity (while still open).
    existing: HashMap<Open, Later>,
    judged: HashMap<(String, Uuid), Judged>,
    progress: Vec<JobProgress>,
}

impl Fold {
    fn decision(&mut self, r: ComplianceRecord) {
        let (tenant, resource, at) = (r.envelope.tenant.as_str().to_owned(), r.envelope.aggregate_id.as_uuid(), r.envelope.recorded_at);
        match r.change {
            Change::Transition(Transition::Opened { policy_id, key, severity, problem, message, remediation, due_at, escalation }) => {
                let id = (tenant.clone(), resource, policy_id.to_string(), key.to_string());
                self.opened.push(NewRow {
                    tenant,
                    resource,
                    opened_version: r.envelope.aggregate_version as i64,
                    policy_id: policy_id.to_string(),
                    tag_key: key.to_string(),
                    severity: severity.as_str(),
                    problem: problem.as_str(),
                    message: message.to_string(),
                    remediation: remediation.to_string(),
                    opened_at: at,
                    due_at,
                    escalate_to: escalation.as_ref().map(|(to, _)| to.to_string()),
                    escalate_at: escalation.map(|(_, when)| when),
                    later: Later::default(),
                });
                self.open_new.insert(id, self.opened.len() - 1);
            }
            Change::Transition(t) => {
                let (Transition::BecameDue { policy_id, key } | Transition::Escalated { policy_id, key, .. } | Transition::Resolved { policy_id, key, .. }) = &t
                else {
                    unreachable!("matched above")
                };
                let id = (tenant, resource, policy_id.to_string(), key.to_string());
                if let Some(i) = self.open_new.get(&id).copied() {
                    if self.opened[i].later.apply(&t, at) {
                        self.open_new.remove(&id);
                    }
                } else {
                    self.existing.entry(id).or_default().apply(&t, at);
                }
            }
            Change::Judged(j) => {
                let judged = Judged { applicable: j.applicable.join(","), violated: j.violated.join(","), score: j.score, policies_version: r.policies_version as i64, at };
                self.judged.insert((tenant, resource), judged);
            }
        }
    }

    async fn update_existing(&self, tx: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
        if self.existing.is_empty() {
            return Ok(());
        }
        let n = self.existing.len();
        let (mut tenants, mut resources, mut policies, mut keys) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
        let (mut stages, mut due, mut escalated, mut resolved, mut resolutions) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
        for ((tenant, resource, policy, key), later) in &self.existing {
            tenants.push(tenant.as_str());
            resources.push(*resource);
            policies.push(policy.as_str());
            keys.push(key.as_str());
            stages.push(later.stage.unwrap_or("pending"));
            due.push(later.became_due_at);
            escalated.push(later.escalated_at);
            resolved.push(later.resolved_at);
            resolutions.push(later.resolution);
        }
        sqlx::query(
            "UPDATE violations v SET stage = p.stage, became_due_at = coalesce(p.became_due_at, v.became_due_at),
                    escalated_at = coalesce(p.escalated_at, v.escalated_at), resolved_at = p.resolved_at,
                    resolution = coalesce(p.resolution, v.resolution)
               FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[],
                           $8::timestamptz[], $9::text[])
                    AS p(tenant, resource_id, policy_id, tag_key, stage, became_due_at, escalated_at, resolved_at, resolution)
              WHERE v.tenant = p.tenant AND v.resource_id = p.resource_id AND v.policy_id = p.policy_id
                AND v.tag_key = p.tag_key AND v.resolved_at IS NULL",
        )
        .bind(&tenants)
        .bind(&resources)
        .bind(&policies)
        .bind(&keys)
        .bind(&stages)
        .bind(&due)
        .bind(&escalated)
        .bind(&resolved)
        .bind(&resolutions)
        .execute(tx)
        .await?;
        Ok(())
    }

    async fn insert_opened(&self, tx: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
        if self.opened.is_empty() {
            return Ok(());
        }
        let rows = &self.opened;
        let col = |f: fn(&NewRow) -> &str| rows.iter().map(f).collect::<Vec<&str>>();
        sqlx::query(
            "INSERT INTO violations (tenant, resource_id, opened_version, policy_id, tag_key, severity, problem, message, remediation,
                                     stage, opened_at, due_at, escalate_to, escalate_at, became_due_at, escalated_at, resolved_at,
                                     resolution)
             SELECT * FROM unnest($1::text[], $2::uuid[], $3::int8[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                                  $9::text[], $10::text[], $11::timestamptz[], $12::timestamptz[], $13::text[], $14::timestamptz[],
                                  $15::timestamptz[], $16::timestamptz[], $17::timestamptz[], $18::text[])
             ON CONFLICT (tenant, resource_id, opened_version) DO NOTHING",
        )
        .bind(col(|r| &r.tenant))
        .bind(rows.iter().map(|r| r.resource).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.opened_version).collect::<Vec<_>>())
        .bind(col(|r| &r.policy_id))
        .bind(col(|r| &r.tag_key))
        .bind(col(|r| r.severity))
        .bind(col(|r| r.problem))
        .bind(col(|r| &r.message))
        .bind(col(|r| &r.remediation))
        .bind(rows.iter().map(|r| r.later.stage.unwrap_or("pending")).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.opened_at).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.due_at).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.escalate_to.as_deref()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.escalate_at).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.later.became_due_at).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.later.escalated_at).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.later.resolved_at).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.later.resolution).collect::<Vec<_>>())
        .execute(tx)
        .await?;
        Ok(())
    }

    async fn upsert_judgements(&self, tx: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
        if self.judged.is_empty() {
            return Ok(());
        }
        let rows: Vec<(&(String, Uuid), &Judged)> = self.judged.iter().collect();
        sqlx::query(
            "INSERT INTO resource_compliance (tenant, resource_id, applicable_policies, violated_policies, score, policies_version, changed_at)
             SELECT tenant, resource_id, string_to_array(applicable, ','), string_to_array(violated, ','), score, policies_version, changed_at
               FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::float8[], $6::int8[], $7::timestamptz[])
                    AS j(tenant, resource_id, applicable, violated, score, policies_version, changed_at)
             ON CONFLICT (tenant, resource_id) DO UPDATE SET applicable_policies = EXCLUDED.applicable_policies,
               violated_policies = EXCLUDED.violated_policies, score = EXCLUDED.score,
               policies_version = EXCLUDED.policies_version, changed_at = EXCLUDED.changed_at",
        )
        .bind(rows.iter().map(|((t, _), _)| t.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|((_, r), _)| *r).collect::<Vec<_>>())
        .bind(rows.iter().map(|(_, j)| j.applicable.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|(_, j)| j.violated.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|(_, j)| j.score).collect::<Vec<_>>())
        .bind(rows.iter().map(|(_, j)| j.policies_version).collect::<Vec<_>>())
        .bind(rows.iter().map(|(_, j)| j.at).collect::<Vec<_>>())
        .execute(tx)
        .await?;
        Ok(())
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
