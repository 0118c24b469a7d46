//! `GET /api/v1/compliance/remediations`: the non-compliant resources, worst first, each open
//! violation with its current (virtual) value and ranked suggested values — from the policy and
//! from peers (`vtag_domain::compliance::suggest`). The reviewer applies what they accept with
//! `POST /api/v1/compliance/remediations` on the command API; the evaluator re-judges on those tag
//! events and resolves the violations.

use std::collections::{BTreeMap, HashMap};

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;
use vtag_domain::compliance::{suggest, PeerEvidence, Policy, Suggestion};
use vtag_domain::TenantId;
use vtag_policy_config::PoliciesDocument;
use vtag_service::{Caller, Problem, Role};

use crate::rest::unreadable_query;
use crate::state::{db_error, AppState};

/// Tags whose value says who a resource belongs to: resources sharing one tend to share the rest
/// of their ownership tags (one team, one cost center). Broad tags such as `environment` make poor
/// peers and a costly join, so they are not used as a basis.
const PEER_BASES: [&str; 8] = ["team", "project", "application", "service", "owner", "cost-center", "business-unit", "product"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemediationParams {
    policy_id: Option<String>,
    severity: Option<String>,
    resource_id: Option<Uuid>,
    /// Resources per page (default 50, at most 500).
    limit: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct SuggestionBody {
    value: String,
    confidence: f64,
    source: &'static str,
    reasoning: String,
}

impl From<Suggestion> for SuggestionBody {
    fn from(s: Suggestion) -> Self {
        Self { value: s.value, confidence: s.confidence, source: s.source.as_str(), reasoning: s.reasoning }
    }
}

#[derive(Debug, Serialize)]
pub struct OpenViolation {
    policy_id: String,
    tag_key: String,
    severity: String,
    stage: String,
    problem: String,
    message: String,
    remediation: String,
    current_value: Option<String>,
    opened_at: DateTime<Utc>,
    suggestions: Vec<SuggestionBody>,
}

#[derive(Debug, Serialize)]
pub struct ResourceRemediation {
    resource_id: Uuid,
    name: String,
    provider: String,
    account_id: String,
    resource_type: String,
    violations: Vec<OpenViolation>,
}

#[derive(Debug, Serialize)]
pub struct RemediationsBody {
    resources: Vec<ResourceRemediation>,
    /// Where to send the accepted values.
    apply_with: &'static str,
}

#[derive(sqlx::FromRow)]
struct Row {
    resource_id: Uuid,
    name: String,
    provider: String,
    account_id: String,
    resource_type: String,
    policy_id: String,
    tag_key: String,
    severity: String,
    stage: String,
    problem: String,
    message: String,
    remediation: String,
    opened_at: DateTime<Utc>,
}

const SEVERITIES: [&str; 4] = ["critical", "high", "medium", "low"];

#[tracing::instrument(skip_all, fields(tenant = %caller.tenant))]
pub async fn remediations(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<RemediationParams>, QueryRejection>,
) -> Result<Json<RemediationsBody>, Problem> {
    caller.require(Role::Viewer)?;
    let Query(p) = params.map_err(unreadable_query)?;
    if let Some(s) = p.severity.as_deref().filter(|s| !SEVERITIES.contains(s)) {
        return Err(Problem::invalid_field("severity", "one_of", format!("'{s}' is not one of {}", SEVERITIES.join(", "))));
    }
    let limit = p.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(Problem::invalid_field("limit", "range", "must be 1 to 500"));
    }
    let resources = compute(&state.pool, &caller.tenant, &p, limit, Utc::now()).await?;
    Ok(Json(RemediationsBody { resources, apply_with: "POST /api/v1/compliance/remediations (command API)" }))
}

async fn compute(pool: &PgPool, tenant: &TenantId, p: &RemediationParams, limit: i64, now: DateTime<Utc>) -> Result<Vec<ResourceRemediation>, Problem> {
    // The worst first: the most severe open violation, then the oldest.
    let rows: Vec<Row> = sqlx::query_as(
        "WITH page AS (
             SELECT resource_id
               FROM violations
              WHERE tenant = $1 AND resolved_at IS NULL AND ($2::text IS NULL OR policy_id = $2)
                AND ($3::text IS NULL OR severity = $3) AND ($4::uuid IS NULL OR resource_id = $4)
              GROUP BY resource_id
              ORDER BY min(array_position(ARRAY['critical','high','medium','low'], severity)), min(opened_at), resource_id
              LIMIT $5)
         SELECT v.resource_id, r.name, r.provider, r.account_id, r.resource_type, v.policy_id, v.tag_key, v.severity, v.stage,
                v.problem, v.message, v.remediation, v.opened_at
           FROM page JOIN violations v ON v.tenant = $1 AND v.resource_id = page.resource_id AND v.resolved_at IS NULL
           JOIN resources r ON r.tenant = $1 AND r.id = v.resource_id
          WHERE ($2::text IS NULL OR v.policy_id = $2) AND ($3::text IS NULL OR v.severity = $3)
          ORDER BY array_position(ARRAY['critical','high','medium','low'], v.severity), v.opened_at, v.resource_id, v.policy_id, v.tag_key",
    )
    .bind(tenant.as_str())
    .bind(&p.policy_id)
    .bind(&p.severity)
    .bind(p.resource_id)
    .bind(limit)
    .fetch_all(pool)
    .await
    .map_err(db_error)?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let policies = policies(pool, tenant).await?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.resource_id).collect();
    let tags = tags_of(pool, tenant, &ids).await?;
    let keys: Vec<String> = rows.iter().map(|r| r.tag_key.clone()).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    let accounts: Vec<String> = rows.iter().map(|r| r.account_id.clone()).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    let by_account = account_peers(pool, tenant, &accounts, &keys).await?;
    let by_tag = tag_peers(pool, tenant, &tags, &keys).await?;

    let today = now.date_naive();
    let mut out: Vec<ResourceRemediation> = Vec::new();
    for r in rows {
        let own = tags.get(&r.resource_id);
        let current = own.and_then(|t| t.get(&r.tag_key)).cloned();
        let mut evidence: Vec<PeerEvidence> = by_account.get(&(r.account_id.clone(), r.tag_key.clone())).cloned().unwrap_or_default();
        evidence.iter_mut().for_each(|e| e.basis = format!("account {}", r.account_id));
        for (k, v) in own.into_iter().flatten().filter(|(k, _)| PEER_BASES.contains(&k.as_str()) && **k != r.tag_key) {
            evidence.extend(by_tag.get(&(k.clone(), v.clone(), r.tag_key.clone())).cloned().unwrap_or_default());
        }
        // The resource counts itself among its peers when it already has a value: take it out.
        if let Some(c) = &current {
            for e in evidence.iter_mut() {
                e.seen = e.seen.saturating_sub(1);
                if &e.value == c {
                    e.agreeing = e.agreeing.saturating_sub(1);
                }
            }
            evidence.retain(|e| e.agreeing > 0);
        }
        let suggestions = match policies.get(&r.policy_id) {
            Some(policy) => suggest(policy, &r.tag_key, current.as_deref(), &evidence, today).into_iter().map(Into::into).collect(),
            None => Vec::new(),
        };
        let violation = OpenViolation {
            policy_id: r.policy_id,
            tag_key: r.tag_key,
            severity: r.severity,
            stage: r.stage,
            problem: r.problem,
            message: r.message,
            remediation: r.remediation,
            current_value: current,
            opened_at: r.opened_at,
            suggestions,
        };
        match out.iter_mut().find(|x| x.resource_id == r.resource_id) {
            Some(x) => x.violations.push(violation),
            None => out.push(ResourceRemediation {
                resource_id: r.resource_id,
                name: r.name,
                provider: r.provider,
                account_id: r.account_id,
                resource_type: r.resource_type,
                violations: vec![violation],
            }),
        }
    }
    Ok(out)
}

/// The tenant's policies in force, by id (a document this build cannot read suggests nothing).
async fn policies(pool: &PgPool, tenant: &TenantId) -> Result<HashMap<String, Policy>, Problem> {
    let Some((_, document)) = crate::config::latest_document(pool, "compliance_policies", tenant).await? else { return Ok(HashMap::new()) };
    let compiled = PoliciesDocument::from_json(document.as_bytes()).and_then(|d| d.compile());
    Ok(compiled.map(|ps| ps.into_iter().map(|p| (p.id.to_string(), p)).collect()).unwrap_or_default())
}

async fn tags_of(pool: &PgPool, tenant: &TenantId, ids: &[Uuid]) -> Result<HashMap<Uuid, BTreeMap<String, String>>, Problem> {
    let rows: Vec<(Uuid, String, String)> =
        sqlx::query_as("SELECT resource_id, tag_key, tag_value FROM virtual_tags WHERE tenant = $1 AND resource_id = ANY($2)")
            .bind(tenant.as_str())
            .bind(ids)
            .fetch_all(pool)
            .await
            .map_err(db_error)?;
    let mut out: HashMap<Uuid, BTreeMap<String, String>> = HashMap::new();
    for (id, k, v) in rows {
        out.entry(id).or_default().insert(k, v);
    }
    Ok(out)
}

/// Per (account, key): the values the account's resources carry, with how many agree and how many
/// carry the key at all.
async fn account_peers(pool: &PgPool, tenant: &TenantId, accounts: &[String], keys: &[String]) -> Result<HashMap<(String, String), Vec<PeerEvidence>>, Problem> {
    let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT r.account_id, vt.tag_key, vt.tag_value, count(*)
           FROM virtual_tags vt JOIN resources r ON r.tenant = vt.tenant AND r.id = vt.resource_id
          WHERE vt.tenant = $1 AND vt.tag_key = ANY($2) AND r.account_id = ANY($3)
          GROUP BY 1, 2, 3",
    )
    .bind(tenant.as_str())
    .bind(keys)
    .bind(accounts)
    .fetch_all(pool)
    .await
    .map_err(db_error)?;
    Ok(evidence(rows.into_iter().map(|(a, k, v, n)| ((a, k), v, n))))
}

/// Per (basis key, basis value, key): what resources sharing that ownership tag carry for the key.
async fn tag_peers(
    pool: &PgPool,
    tenant: &TenantId,
    tags: &HashMap<Uuid, BTreeMap<String, String>>,
    keys: &[String],
) -> Result<HashMap<(String, String, String), Vec<PeerEvidence>>, Problem> {
    let bases: std::collections::BTreeSet<(String, String)> = tags
        .values()
        .flatten()
        .filter(|(k, _)| PEER_BASES.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if bases.is_empty() {
        return Ok(HashMap::new());
    }
    let (basis_keys, basis_values): (Vec<String>, Vec<String>) = bases.into_iter().unzip();
    let rows: Vec<(String, String, String, String, i64)> = sqlx::query_as(
        "SELECT a.tag_key, a.tag_value, b.tag_key, b.tag_value, count(*)
           FROM unnest($2::text[], $3::text[]) AS basis(tag_key, tag_value)
           JOIN virtual_tags a ON a.tenant = $1 AND a.tag_key = basis.tag_key AND a.tag_value = basis.tag_value
           JOIN virtual_tags b ON b.tenant = $1 AND b.resource_id = a.resource_id AND b.tag_key = ANY($4) AND b.tag_key <> a.tag_key
          GROUP BY 1, 2, 3, 4",
    )
    .bind(tenant.as_str())
    .bind(&basis_keys)
    .bind(&basis_values)
    .bind(keys)
    .fetch_all(pool)
    .await
    .map_err(db_error)?;
    let mut out = evidence(rows.into_iter().map(|(bk, bv, k, v, n)| ((bk, bv, k), v, n)));
    for ((bk, bv, _), list) in out.iter_mut() {
        list.iter_mut().for_each(|e| e.basis = format!("{bk}={bv}"));
    }
    Ok(out)
}

/// Groups value counts into evidence: each value with the group's total as `seen`.
fn evidence<G: std::hash::Hash + Eq>(rows: impl Iterator<Item = (G, String, i64)>) -> HashMap<G, Vec<PeerEvidence>> {
    let mut out: HashMap<G, Vec<PeerEvidence>> = HashMap::new();
    for (group, value, n) in rows {
        out.entry(group).or_default().push(PeerEvidence { value, basis: String::new(), agreeing: n as u32, seen: 0 });
    }
    for list in out.values_mut() {
        let seen: u32 = list.iter().map(|e| e.agreeing).sum();
        list.iter_mut().for_each(|e| e.seen = seen);
    }
    out
}
