//! Re-derivation jobs: `GET /api/v1/rederivations/{job_id}`. A job runs once per log partition;
//! the projector keeps one `rederivation_progress` row per (job, partition) from the progress
//! markers, so the job's state is the sum of its rows, and it is done when every one of its
//! partitions has reported done (a done row means that partition's events are already here).

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;
use vtag_domain::TenantId;
use vtag_service::{Caller, Problem, Role};

use crate::consistency::{self, ConsistencyToken};
use crate::rfc3339;
use crate::state::{db_error, AppState};

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct PartitionProgress {
    #[sqlx(rename = "log_partition")]
    pub partition: i32,
    #[serde(skip)]
    pub rule_set_version: i64,
    /// How many partitions the job covers (the same on every row).
    #[serde(skip)]
    pub partitions: i32,
    pub processed: i64,
    pub total: i64,
    pub changed: i64,
    pub done: bool,
    #[serde(skip)]
    pub actor: String,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub updated_at: DateTime<Utc>,
}

impl PartitionProgress {
    /// Finished share of this partition, 0–1.
    fn fraction(&self) -> f64 {
        match (self.done, self.total) {
            (true, _) => 1.0,
            (false, t) if t > 0 => (self.processed as f64 / t as f64).clamp(0.0, 1.0),
            _ => 0.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobBody {
    pub job_id: Uuid,
    pub rule_set_version: i64,
    pub partitions: i32,
    pub partitions_done: i32,
    pub processed: i64,
    pub total: i64,
    pub changed: i64,
    pub done: bool,
    pub percent: f64,
    pub started_by: String,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub updated_at: DateTime<Utc>,
    pub per_partition: Vec<PartitionProgress>,
}

/// Sums a job's rows; `None` without rows (unknown job, or one of another tenant).
pub fn summarize(job_id: Uuid, rows: Vec<PartitionProgress>) -> Option<JobBody> {
    let first = rows.first()?;
    // Partitions that have not reported yet count as 0 %: averaging over the rows alone would
    // show 100 % as soon as the first partition finished.
    let partitions = rows.iter().map(|r| r.partitions).max().unwrap_or(0).max(rows.len() as i32);
    let partitions_done = rows.iter().filter(|r| r.done).count() as i32;
    let done = partitions_done >= partitions;
    let percent = if done {
        100.0
    } else {
        let finished: f64 = rows.iter().map(PartitionProgress::fraction).sum();
        // One decimal, and never a rounded-up 100 for a job still running.
        ((finished / f64::from(partitions.max(1))) * 1000.0).floor().min(999.0) / 10.0
    };
    Some(JobBody {
        job_id,
        rule_set_version: first.rule_set_version,
        partitions,
        partitions_done,
        processed: rows.iter().map(|r| r.processed).sum(),
        total: rows.iter().map(|r| r.total).sum(),
        changed: rows.iter().map(|r| r.changed).sum(),
        done,
        percent,
        started_by: first.actor.clone(),
        updated_at: rows.iter().map(|r| r.updated_at).max().unwrap_or(first.updated_at),
        per_partition: rows,
    })
}

pub async fn load(pool: &PgPool, tenant: &TenantId, job_id: Uuid) -> Result<Option<JobBody>, Problem> {
    let rows: Vec<PartitionProgress> = sqlx::query_as(
        "SELECT log_partition, rule_set_version, partitions, processed, total, changed, done, actor, updated_at
           FROM rederivation_progress
          WHERE tenant = $1 AND job_id = $2
          ORDER BY log_partition",
    )
    .bind(tenant.as_str())
    .bind(job_id)
    .fetch_all(pool)
    .await
    .map_err(db_error)?;
    Ok(summarize(job_id, rows))
}

/// `GET /api/v1/rederivations/{job_id}`. The consistency token is honoured too: the markers are
/// on the resource topic, after the events they count.
#[tracing::instrument(skip_all, fields(tenant = %caller.tenant))]
pub async fn rederivation(
    State(state): State<AppState>,
    caller: Caller,
    token: ConsistencyToken,
    job_id: Result<Path<String>, PathRejection>,
) -> Result<Json<JobBody>, Problem> {
    caller.require(Role::Viewer)?;
    let Path(raw) = job_id.map_err(|e| Problem::malformed(format!("the job id could not be read: {e}")))?;
    let job_id = Uuid::parse_str(raw.trim())
        .map_err(|_| Problem::invalid_field("job_id", "uuid", "must be the job id the command API returned"))?;
    consistency::wait_until_visible(&state.pool, &state.consistency, &token).await?;
    load(&state.pool, &caller.tenant, job_id)
        .await?
        .map(Json)
        .ok_or_else(|| Problem::not_found("no such re-derivation job"))
}

/// `GET /api/v1/compliance/jobs/{job_id}`: a recheck, or the pass after a policies change (its
/// id is in the policies write's answer). Same shape as a re-derivation, with the job's `kind`
/// and the `policies_version` it judges under.
#[tracing::instrument(skip_all, fields(tenant = %caller.tenant))]
pub async fn compliance_job(
    State(state): State<AppState>,
    caller: Caller,
    job_id: Result<Path<String>, PathRejection>,
) -> Result<Json<serde_json::Value>, Problem> {
    caller.require(Role::Viewer)?;
    let Path(raw) = job_id.map_err(|e| Problem::malformed(format!("the job id could not be read: {e}")))?;
    let job_id = Uuid::parse_str(raw.trim())
        .map_err(|_| Problem::invalid_field("job_id", "uuid", "must be the job id the command API returned"))?;
    let rows: Vec<(String, PartitionProgress)> = sqlx::query_as::<_, (String, i32, i64, i32, i64, i64, i64, bool, String, DateTime<Utc>)>(
        "SELECT kind, log_partition, policies_version, partitions, processed, total, changed, done, actor, updated_at
           FROM compliance_job_progress
          WHERE tenant = $1 AND job_id = $2
          ORDER BY log_partition",
    )
    .bind(caller.tenant.as_str())
    .bind(job_id)
    .fetch_all(&state.pool)
    .await
    .map_err(db_error)?
    .into_iter()
    .map(|(kind, partition, version, partitions, processed, total, changed, done, actor, updated_at)| {
        (kind, PartitionProgress { partition, rule_set_version: version, partitions, processed, total, changed, done, actor, updated_at })
    })
    .collect();
    let kind = rows.first().map(|(k, _)| k.clone());
    let job = summarize(job_id, rows.into_iter().map(|(_, p)| p).collect()).ok_or_else(|| {
        Problem::not_found("no such compliance job (yet: the evaluator reports a job once it starts it)")
    })?;
    let version = job.rule_set_version;
    let mut body = serde_json::to_value(job).map_err(|e| Problem::internal(e.to_string()))?;
    if let Some(fields) = body.as_object_mut() {
        fields.remove("rule_set_version");
        fields.insert("kind".into(), kind.into());
        fields.insert("policies_version".into(), version.into());
    }
    Ok(Json(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(partition: i32, processed: i64, total: i64, done: bool) -> PartitionProgress {
        PartitionProgress {
            partition,
            rule_set_version: 4,
            partitions: 3,
            processed,
            total,
            changed: processed / 2,
            done,
            actor: "alice@example.com".into(),
            updated_at: rfc3339::parse(&format!("2025-11-17T10:00:0{partition}Z")).unwrap(),
        }
    }

    #[test]
    fn a_job_is_done_only_when_every_partition_is() {
        let job = summarize(Uuid::nil(), vec![row(0, 10, 10, true), row(2, 5, 20, false)]).unwrap();
        assert_eq!((job.partitions, job.partitions_done, job.done), (3, 1, false));
        assert_eq!((job.processed, job.total, job.changed), (15, 30, 7));
        // (1 + 0.25 + 0 for the silent partition) / 3
        assert_eq!(job.percent, 41.6);
        assert_eq!(job.updated_at, rfc3339::parse("2025-11-17T10:00:02Z").unwrap());
        let job = summarize(Uuid::nil(), vec![row(0, 10, 10, true), row(1, 0, 0, true), row(2, 20, 20, true)]).unwrap();
        assert_eq!((job.done, job.percent), (true, 100.0));
        let almost = summarize(Uuid::nil(), vec![row(0, 9999, 10000, false)]).unwrap();
        assert!(almost.percent < 100.0);
        assert!(summarize(Uuid::nil(), vec![]).is_none());
    }

    #[test]
    fn partitions_print_without_the_job_wide_fields() {
        let v = serde_json::to_value(row(1, 1, 2, false)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"partition": 1, "processed": 1, "total": 2, "changed": 0, "done": false,
                               "updated_at": "2025-11-17T10:00:01Z"})
        );
    }
}
