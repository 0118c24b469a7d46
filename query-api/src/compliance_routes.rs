//! Compliance reads (docs/adr/0007): the tenant's compliance status — rate, open violations by
//! stage, severity, policy, provider and team, the top issues, a 30-day trend — and the violations
//! themselves. A resource is judged once a policy applies to it; it is compliant when it breaks
//! none (a violation still in its grace period counts: it is shown, only not alerted).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;
use vtag_domain::TenantId;
use vtag_service::{Caller, Problem, Role};

use crate::rest::unreadable_query;
use crate::state::{db_error, AppState};

/// Days of the trend.
const TREND_DAYS: i64 = 30;

#[derive(Debug, Serialize)]
pub struct StatusBody {
    resources_judged: i64,
    compliant: i64,
    /// Percent of judged resources that break no policy (100 when none is judged).
    compliance_rate: f64,
    open_violations: Stages,
    by_severity: Vec<Count>,
    by_policy: Vec<PolicyCount>,
    by_provider: Vec<Share>,
    by_team: Vec<Share>,
    top_issues: Vec<Issue>,
    trend: Vec<Day>,
}

#[derive(Debug, Default, Serialize)]
struct Stages {
    pending: i64,
    due: i64,
    escalated: i64,
}

#[derive(Debug, Serialize, sqlx::FromRow)]
struct Count {
    severity: String,
    open: i64,
}

#[derive(Debug, Serialize, sqlx::FromRow)]
struct PolicyCount {
    policy_id: String,
    open: i64,
    resources: i64,
}

#[derive(Debug, Serialize, sqlx::FromRow)]
struct Share {
    /// The provider, or the team (`null`: resources without a team tag).
    name: Option<String>,
    judged: i64,
    compliant: i64,
    compliance_rate: f64,
}

#[derive(Debug, Serialize, sqlx::FromRow)]
struct Issue {
    policy_id: String,
    tag_key: String,
    open: i64,
    /// One of the messages, as an example.
    example: String,
}

#[derive(Debug, Serialize, sqlx::FromRow)]
struct Day {
    date: NaiveDate,
    /// Violations open at the end of the day.
    open_violations: i64,
    non_compliant_resources: i64,
}

/// `GET /api/v1/compliance/status`.
#[tracing::instrument(skip_all, fields(tenant = %caller.tenant))]
pub async fn status(State(state): State<AppState>, caller: Caller) -> Result<Json<StatusBody>, Problem> {
    caller.require(Role::Viewer)?;
    Ok(Json(compute(&state.pool, &caller.tenant, Utc::now()).await?))
}

pub async fn compute(pool: &PgPool, tenant: &TenantId, now: DateTime<Utc>) -> Result<StatusBody, Problem> {
    let t = tenant.as_str();
    // One snapshot for every figure: the projector commits between statements otherwise, and the
    // rate could disagree with the violations counted next to it.
    let mut tx = pool.begin().await.map_err(db_error)?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ").execute(&mut *tx).await.map_err(db_error)?;
    let (judged, compliant): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE cardinality(violated_policies) = 0)
           FROM resource_compliance WHERE tenant = $1 AND cardinality(applicable_policies) > 0",
    )
    .bind(t)
    .fetch_one(&mut *tx)
    .await
    .map_err(db_error)?;
    let stages: Vec<(String, i64)> =
        sqlx::query_as("SELECT stage, count(*) FROM violations WHERE tenant = $1 AND resolved_at IS NULL GROUP BY stage")
            .bind(t)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_error)?;
    let mut open_violations = Stages::default();
    for (stage, n) in stages {
        match stage.as_str() {
            "pending" => open_violations.pending = n,
            "due" => open_violations.due = n,
            _ => open_violations.escalated += n,
        }
    }
    let by_severity: Vec<Count> = sqlx::query_as(
        "SELECT severity, count(*) AS open FROM violations WHERE tenant = $1 AND resolved_at IS NULL
          GROUP BY severity ORDER BY array_position(ARRAY['critical','high','medium','low'], severity)",
    )
    .bind(t)
    .fetch_all(&mut *tx)
    .await
    .map_err(db_error)?;
    let by_policy: Vec<PolicyCount> = sqlx::query_as(
        "SELECT policy_id, count(*) AS open, count(DISTINCT resource_id) AS resources FROM violations
          WHERE tenant = $1 AND resolved_at IS NULL GROUP BY policy_id ORDER BY open DESC, policy_id",
    )
    .bind(t)
    .fetch_all(&mut *tx)
    .await
    .map_err(db_error)?;
    let share = |group: &str| {
        format!(
            "SELECT {group} AS name, count(*) AS judged,
                    count(*) FILTER (WHERE cardinality(c.violated_policies) = 0) AS compliant,
                    (100.0 * count(*) FILTER (WHERE cardinality(c.violated_policies) = 0) / count(*))::float8 AS compliance_rate
               FROM resource_compliance c
               JOIN resources r ON r.tenant = c.tenant AND r.id = c.resource_id
               LEFT JOIN virtual_tags v ON v.tenant = c.tenant AND v.resource_id = c.resource_id AND v.tag_key = 'team'
              WHERE c.tenant = $1 AND cardinality(c.applicable_policies) > 0
              GROUP BY 1 ORDER BY compliance_rate, 1"
        )
    };
    let by_provider: Vec<Share> = sqlx::query_as(&share("r.provider")).bind(t).fetch_all(&mut *tx).await.map_err(db_error)?;
    let by_team: Vec<Share> = sqlx::query_as(&share("v.tag_value")).bind(t).fetch_all(&mut *tx).await.map_err(db_error)?;
    let top_issues: Vec<Issue> = sqlx::query_as(
        "SELECT policy_id, tag_key, count(*) AS open, min(message) AS example FROM violations
          WHERE tenant = $1 AND resolved_at IS NULL GROUP BY policy_id, tag_key ORDER BY open DESC, policy_id, tag_key LIMIT 10",
    )
    .bind(t)
    .fetch_all(&mut *tx)
    .await
    .map_err(db_error)?;
    let today = now.date_naive();
    let trend: Vec<Day> = sqlx::query_as(
        "SELECT d::date AS date,
                count(v.*) AS open_violations,
                count(DISTINCT v.resource_id) AS non_compliant_resources
           FROM generate_series($2::date, $3::date, interval '1 day') AS d
           LEFT JOIN violations v ON v.tenant = $1 AND v.opened_at < d + interval '1 day'
                                 AND (v.resolved_at IS NULL OR v.resolved_at >= d + interval '1 day')
          GROUP BY d ORDER BY d",
    )
    .bind(t)
    .bind(today - Duration::days(TREND_DAYS - 1))
    .bind(today)
    .fetch_all(&mut *tx)
    .await
    .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    Ok(StatusBody {
        resources_judged: judged,
        compliant,
        compliance_rate: if judged == 0 { 100.0 } else { 100.0 * compliant as f64 / judged as f64 },
        open_violations,
        by_severity,
        by_policy,
        by_provider,
        by_team,
        top_issues,
        trend,
    })
}

#[derive(Debug, Deserialize)]
pub struct ViolationParams {
    resource_id: Option<Uuid>,
    policy_id: Option<String>,
    /// `open` (default: pending, due, escalated), one stage, `resolved` or `all`.
    stage: Option<String>,
    limit: Option<i64>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ViolationBody {
    pub(crate) resource_id: Uuid,
    pub(crate) policy_id: String,
    pub(crate) tag_key: String,
    pub(crate) severity: String,
    pub(crate) problem: String,
    pub(crate) message: String,
    pub(crate) remediation: String,
    pub(crate) stage: String,
    pub(crate) opened_at: DateTime<Utc>,
    pub(crate) due_at: DateTime<Utc>,
    pub(crate) escalate_to: Option<String>,
    pub(crate) escalate_at: Option<DateTime<Utc>>,
    pub(crate) became_due_at: Option<DateTime<Utc>>,
    pub(crate) escalated_at: Option<DateTime<Utc>>,
    pub(crate) resolved_at: Option<DateTime<Utc>>,
    pub(crate) resolution: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ViolationsBody {
    violations: Vec<ViolationBody>,
}

/// `GET /api/v1/compliance/violations[?resource_id=&policy_id=&stage=&limit=]`: newest first.
#[tracing::instrument(skip_all, fields(tenant = %caller.tenant))]
pub async fn violations(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<ViolationParams>, QueryRejection>,
) -> Result<Json<ViolationsBody>, Problem> {
    caller.require(Role::Viewer)?;
    let Query(p) = params.map_err(unreadable_query)?;
    let stage = p.stage.unwrap_or_else(|| "open".to_owned());
    const STAGES: [&str; 6] = ["open", "pending", "due", "escalated", "resolved", "all"];
    if !STAGES.contains(&stage.as_str()) {
        return Err(Problem::invalid_field("stage", "one_of", format!("must be one of {}", STAGES.join(", "))));
    }
    let limit = p.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Problem::invalid_field("limit", "range", "must be 1 to 1000"));
    }
    let rows: Vec<ViolationBody> = sqlx::query_as(
        "SELECT resource_id, policy_id, tag_key, severity, problem, message, remediation, stage, opened_at, due_at, escalate_to,
                escalate_at, became_due_at, escalated_at, resolved_at, resolution
           FROM violations
          WHERE tenant = $1 AND ($2::uuid IS NULL OR resource_id = $2) AND ($3::text IS NULL OR policy_id = $3)
            AND CASE $4 WHEN 'all' THEN true WHEN 'open' THEN resolved_at IS NULL ELSE stage = $4 END
          ORDER BY opened_at DESC, resource_id, opened_version DESC LIMIT $5",
    )
    .bind(caller.tenant.as_str())
    .bind(p.resource_id)
    .bind(&p.policy_id)
    .bind(&stage)
    .bind(limit)
    .fetch_all(&state.pool)
    .await
    .map_err(db_error)?;
    Ok(Json(ViolationsBody { violations: rows }))
}

/// One resource's compliance (GraphQL `Resource.complianceStatus`).
pub struct ResourceStatus {
    pub is_compliant: bool,
    /// Open violations, oldest first.
    pub violations: Vec<ViolationBody>,
    pub score: f64,
    pub last_checked: DateTime<Utc>,
}

/// Where a resource stands: its judgement (100 and compliant when no policy applies) and its open
/// violations. `last_checked`: when its judgement last changed — the evaluator judges a resource
/// on every change and records only what differs — or, never judged, when the resource last changed.
pub async fn resource_status(pool: &PgPool, tenant: &TenantId, resource: Uuid) -> Result<ResourceStatus, Problem> {
    let judged: Option<(f64, DateTime<Utc>)> =
        sqlx::query_as("SELECT score, changed_at FROM resource_compliance WHERE tenant = $1 AND resource_id = $2")
            .bind(tenant.as_str())
            .bind(resource)
            .fetch_optional(pool)
            .await
            .map_err(db_error)?;
    let violations: Vec<ViolationBody> = sqlx::query_as(
        "SELECT resource_id, policy_id, tag_key, severity, problem, message, remediation, stage, opened_at, due_at, escalate_to,
                escalate_at, became_due_at, escalated_at, resolved_at, resolution
           FROM violations WHERE tenant = $1 AND resource_id = $2 AND resolved_at IS NULL ORDER BY opened_at, policy_id, tag_key",
    )
    .bind(tenant.as_str())
    .bind(resource)
    .fetch_all(pool)
    .await
    .map_err(db_error)?;
    let (score, last_checked) = match judged {
        Some(j) => j,
        None => {
            let changed: Option<DateTime<Utc>> =
                sqlx::query_scalar("SELECT last_changed_at FROM resources WHERE tenant = $1 AND id = $2")
                    .bind(tenant.as_str())
                    .bind(resource)
                    .fetch_optional(pool)
                    .await
                    .map_err(db_error)?;
            (100.0, changed.unwrap_or_else(Utc::now))
        }
    };
    Ok(ResourceStatus { is_compliant: violations.is_empty(), violations, score, last_checked })
}
