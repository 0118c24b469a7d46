//! GraphQL: the seed's `resource(id)` query (with tags as of an instant and explain) and the audit
//! trail, over the same SQL as REST (`resources::find`, `history`, `explain`, `audit::fetch`). POST
//! needs a token; the GraphiQL page (GET) is static and public because it holds no data.

use async_graphql::{
    Context, EmptyMutation, EmptySubscription, Enum, ErrorExtensions, InputObject, InputValueError, InputValueResult, Json, Object,
    Scalar, ScalarType, Schema, SimpleObject, Value, ID,
};
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::extract::State;
use axum::response::Html;
use sqlx::PgPool;
use vtag_domain::{Provider, TagKey};
use vtag_service::{Caller, Problem, Role};

use std::sync::Arc;

use crate::allocation;
use crate::audit::{self, AuditEntry, AuditInput, GRAPHQL_NAMES};
use crate::cost_cache::CostCache;
use crate::cost_routes::{self, AllocationInput};
use crate::consistency::{self, ConsistencyToken};
use crate::explain::{self, Explanation};
use crate::graph::{GraphModel, OwnershipConflict, Page, SharedProject, TeamResources};
use crate::history;
use crate::resources::{self, VirtualTag as TagRow};
use crate::rfc3339;
use crate::state::AppState;

pub type QuerySchema = Schema<QueryRoot, EmptyMutation, EmptySubscription>;

/// Depth and complexity limits keep one request from fanning out into an expensive query.
pub fn schema(pool: PgPool, costs: Arc<CostCache>, graph: GraphModel) -> QuerySchema {
    Schema::build(QueryRoot, EmptyMutation, EmptySubscription)
        .data(pool)
        .data(costs)
        .data(graph)
        .limit_depth(10)
        .limit_complexity(500)
        .finish()
}

/// `POST /graphql`. The caller's writes are waited for once, before any resolver runs, so every
/// field of the response sees them.
#[tracing::instrument(skip_all, fields(tenant = %caller.tenant))]
pub async fn execute(
    State(state): State<AppState>,
    caller: Caller,
    token: ConsistencyToken,
    request: Result<GraphQLRequest, async_graphql_axum::rejection::GraphQLRejection>,
) -> Result<GraphQLResponse, Problem> {
    caller.require(Role::Viewer)?;
    let request = request.map_err(|e| Problem::malformed(format!("not a GraphQL request: {}", e.0)))?;
    consistency::wait_until_visible(&state.pool, &state.consistency, &token).await?;
    Ok(state.schema.execute(request.into_inner().data(caller)).await.into())
}

/// `GET /graphql`: GraphiQL, loaded from a CDN; paste a token into its Headers tab.
pub async fn graphiql() -> Html<&'static str> {
    Html(GRAPHIQL)
}

const GRAPHIQL: &str = r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>vtag GraphQL</title>
  <link rel="stylesheet" href="https://unpkg.com/graphiql@3/graphiql.min.css">
</head>
<body style="margin:0">
  <div id="graphiql" style="height:100vh"></div>
  <script crossorigin src="https://unpkg.com/react@18/umd/react.production.min.js"></script>
  <script crossorigin src="https://unpkg.com/react-dom@18/umd/react-dom.production.min.js"></script>
  <script crossorigin src="https://unpkg.com/graphiql@3/graphiql.min.js"></script>
  <script>
    const fetcher = GraphiQL.createFetcher({ url: window.location.pathname });
    ReactDOM.createRoot(document.getElementById('graphiql')).render(
      React.createElement(GraphiQL, {
        fetcher,
        defaultHeaders: '{"Authorization": "Bearer <token>"}',
        defaultQuery: 'query {\n  resource(id: "<uuid or cloud id>") {\n    id name provider type\n    virtualTags { key value source confidence updatedAt }\n  }\n}\n',
      }),
    );
  </script>
</body>
</html>
"#;

/// A problem as a GraphQL error: the same type, status and field errors, under `extensions`.
fn gql_error(p: Problem) -> async_graphql::Error {
    let message = p.detail.clone().unwrap_or_else(|| p.title.clone());
    async_graphql::Error::new(message).extend_with(|_, e| {
        e.set("type", p.kind.clone());
        e.set("status", p.status);
        if !p.errors.is_empty() {
            if let Ok(errors) = Value::from_json(serde_json::to_value(&p.errors).unwrap_or_default()) {
                e.set("errors", errors);
            }
        }
    })
}

/// The tenant comes from the verified token only; `execute` puts the caller into every request.
fn caller<'a>(ctx: &'a Context<'_>) -> async_graphql::Result<&'a Caller> {
    let caller =
        ctx.data::<Caller>().map_err(|_| gql_error(Problem::unauthorized("send Authorization: Bearer <token>")))?;
    caller.require(Role::Viewer).map_err(gql_error)?;
    Ok(caller)
}

/// RFC 3339 in UTC with `Z`, the same text as the REST API (async-graphql's own chrono scalar
/// prints `+00:00`).
#[derive(Debug, Clone, Copy)]
pub struct DateTime(pub chrono::DateTime<chrono::Utc>);

#[Scalar(name = "DateTime")]
impl ScalarType for DateTime {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => rfc3339::parse(s)
                .map(DateTime)
                .ok_or_else(|| InputValueError::custom("must be an RFC 3339 time, e.g. 2025-11-17T10:00:00Z")),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(rfc3339::format(&self.0))
    }
}

/// The seed's enum, plus NATIVE (last, so the seed's order stays): a native tag normalized
/// through the tag schema.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagSource {
    Inferred,
    RuleBased,
    AiSuggested,
    UserConfirmed,
    Manual,
    Native,
}

impl TagSource {
    fn from_stored(raw: &str) -> async_graphql::Result<Self> {
        use vtag_domain::TagSource as S;
        match S::parse(raw).map_err(|e| async_graphql::Error::new(format!("stored tag source '{raw}': {e}")))? {
            S::Inferred => Ok(Self::Inferred),
            S::RuleBased => Ok(Self::RuleBased),
            S::AiSuggested => Ok(Self::AiSuggested),
            S::UserConfirmed => Ok(Self::UserConfirmed),
            S::Manual => Ok(Self::Manual),
            S::Native => Ok(Self::Native),
        }
    }
}

/// How derivation produced a value; null for values set by people or models.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagOrigin {
    Native,
    Rule,
    Default,
}

impl TagOrigin {
    fn from_stored(raw: Option<&str>) -> async_graphql::Result<Option<Self>> {
        match raw {
            None => Ok(None),
            Some("native") => Ok(Some(Self::Native)),
            Some("rule") => Ok(Some(Self::Rule)),
            Some("default") => Ok(Some(Self::Default)),
            Some(other) => Err(async_graphql::Error::new(format!("stored tag origin '{other}' is unknown"))),
        }
    }
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloudProvider {
    Aws,
    Azure,
    Gcp,
}

impl From<CloudProvider> for Provider {
    fn from(p: CloudProvider) -> Self {
        match p {
            CloudProvider::Aws => Provider::Aws,
            CloudProvider::Azure => Provider::Azure,
            CloudProvider::Gcp => Provider::Gcp,
        }
    }
}

impl CloudProvider {
    fn from_stored(raw: &str) -> async_graphql::Result<Self> {
        match Provider::parse(raw).map_err(|e| async_graphql::Error::new(format!("stored provider '{raw}': {e}")))? {
            Provider::Aws => Ok(Self::Aws),
            Provider::Azure => Ok(Self::Azure),
            Provider::Gcp => Ok(Self::Gcp),
        }
    }
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuditOrder {
    Asc,
    #[default]
    Desc,
}

pub struct QueryRoot;

#[Object]
impl QueryRoot {
    /// What a team owns (its resources, from the graph read model) and their monthly cost. Page
    /// with `first` (1–1000, default 200) and `after: <next>`.
    async fn team_resources(&self, ctx: &Context<'_>, team: String, first: Option<i32>, after: Option<String>) -> async_graphql::Result<TeamResources> {
        let caller = caller(ctx)?;
        if team.trim().is_empty() {
            return Err(gql_error(Problem::invalid_field("team", "required", "must name a team")));
        }
        let page = Page::parse(first.map(i64::from), after.as_deref()).map_err(gql_error)?;
        ctx.data::<GraphModel>()?.team_resources(caller.tenant.as_str(), &team, &page).await.map_err(gql_error)
    }

    /// Projects whose resources more than one team owns.
    async fn shared_projects(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<SharedProject>> {
        let caller = caller(ctx)?;
        ctx.data::<GraphModel>()?.shared_projects(caller.tenant.as_str()).await.map_err(gql_error)
    }

    /// Resources whose tags name more than one owning team (`team` and `owner` disagree).
    async fn ownership_conflicts(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<OwnershipConflict>> {
        let caller = caller(ctx)?;
        ctx.data::<GraphModel>()?.ownership_conflicts(caller.tenant.as_str()).await.map_err(gql_error)
    }

    /// A resource by vtag UUID or by the cloud's id (ARN, Azure resource id, GCP name); null when
    /// there is none for your tenant. `provider` settles a cloud id that several providers share.
    async fn resource(
        &self,
        ctx: &Context<'_>,
        id: ID,
        provider: Option<CloudProvider>,
    ) -> async_graphql::Result<Option<Resource>> {
        let caller = caller(ctx)?;
        let pool = ctx.data::<PgPool>()?;
        let found = resources::find(pool, &caller.tenant, id.as_str(), provider.map(Provider::from))
            .await
            .map_err(gql_error)?;
        Ok(found.map(Resource))
    }

    /// Tag history, newest first unless `order: ASC`; `from` inclusive, `to` exclusive (recorded
    /// time). Page with `first` (1–1000, default 100) and `after: <nextCursor>`.
    #[allow(clippy::too_many_arguments)]
    async fn audit_trail(
        &self,
        ctx: &Context<'_>,
        resource_id: Option<ID>,
        key: Option<String>,
        actor: Option<String>,
        action: Option<String>,
        from: Option<DateTime>,
        to: Option<DateTime>,
        first: Option<i32>,
        after: Option<String>,
        #[graphql(default)] order: AuditOrder,
        correlation_id: Option<ID>,
    ) -> async_graphql::Result<AuditTrail> {
        let caller = caller(ctx)?;
        let pool = ctx.data::<PgPool>()?;
        let query = AuditInput {
            resource_id: resource_id.map(|id| id.0),
            correlation_id: correlation_id.map(|id| id.0),
            key,
            actor,
            action,
            from: from.map(|t| t.0),
            to: to.map(|t| t.0),
            limit: first.map(i64::from),
            cursor: after,
            order: match order {
                AuditOrder::Asc => audit::Order::Asc,
                AuditOrder::Desc => audit::Order::Desc,
            },
        }
        .check(GRAPHQL_NAMES, Vec::new())
        .map_err(gql_error)?;
        let page = audit::fetch(pool, &caller.tenant, &query).await.map_err(gql_error)?;
        Ok(AuditTrail { items: page.items.into_iter().map(AuditItem).collect(), next_cursor: page.next_cursor })
    }

    /// Cost by value of the virtual tag `tagKey` over `dateRange` (inclusive days, YYYY-MM-DD).
    /// Resources without the key come as one entry with `group: "untagged"`, cost without a
    /// resource (fees, support, tax) as `group: "unallocatable"`; all entries add up to the bill.
    /// `asOf`: as it was reported at that instant (the costs imported and the tags held then).
    async fn cost_allocation(
        &self,
        ctx: &Context<'_>,
        tag_key: String,
        date_range: DateRange,
        filters: Option<CostFilter>,
        as_of: Option<DateTime>,
    ) -> async_graphql::Result<Vec<CostAllocation>> {
        let caller = caller(ctx)?;
        let pool = ctx.data::<PgPool>()?;
        let cache = ctx.data::<Arc<CostCache>>()?;
        let f = filters.unwrap_or_default();
        let input = AllocationInput {
            tag_key: Some(tag_key),
            from: Some(date_range.start),
            to: Some(date_range.end),
            filters: allocation::CostFilters {
                provider: f.provider,
                account: f.account,
                region: f.region,
                resource_type: f.resource_type,
                service: f.service,
                charge_category: f.charge_category,
                tags: Vec::new(),
            },
            tags: f.tags.unwrap_or_default().into_iter().map(|t| (t.key, t.value)).collect(),
            as_of: as_of.map(|t| t.0),
        };
        let query = cost_routes::check(input).map_err(gql_error)?;
        let found = allocation::allocate(pool, cache, &caller.tenant, &query).await.map_err(gql_error)?;
        Ok(found.allocations.into_iter().map(CostAllocation::from).collect())
    }
}

/// Inclusive days, `YYYY-MM-DD`.
#[derive(InputObject)]
pub struct DateRange {
    pub start: String,
    pub end: String,
}

#[derive(InputObject, Default)]
pub struct CostFilter {
    /// aws, azure or gcp.
    pub provider: Option<String>,
    pub account: Option<String>,
    pub region: Option<String>,
    pub resource_type: Option<String>,
    pub service: Option<String>,
    /// Usage, Purchase, Tax, Credit or Adjustment.
    pub charge_category: Option<String>,
    /// Only resources carrying every one of these virtual tags.
    pub tags: Option<Vec<TagFilter>>,
}

#[derive(InputObject)]
pub struct TagFilter {
    pub key: String,
    pub value: String,
}

/// Amounts are exact decimal text in `currency` (summing floats would not add up to the bill).
#[derive(SimpleObject)]
pub struct CostAllocation {
    /// Null for the untagged and unallocatable groups.
    tag_value: Option<String>,
    /// value, untagged or unallocatable.
    group: String,
    currency: String,
    /// BilledCost.
    total_cost: String,
    billed_cost: String,
    effective_cost: String,
    /// The part of billedCost shared to this value by split rules.
    shared_cost: String,
    resource_count: i64,
    breakdown: Vec<CostDay>,
}

#[derive(SimpleObject)]
pub struct CostDay {
    date: String,
    cost: String,
    effective_cost: String,
}

impl From<allocation::Allocation> for CostAllocation {
    fn from(a: allocation::Allocation) -> Self {
        Self {
            tag_value: a.tag_value,
            group: a.group.as_str().to_owned(),
            currency: a.currency,
            total_cost: a.billed.to_string(),
            billed_cost: a.billed.to_string(),
            effective_cost: a.effective.to_string(),
            shared_cost: a.shared_billed.to_string(),
            resource_count: a.resource_count as i64,
            breakdown: a
                .daily
                .into_iter()
                .map(|d| CostDay { date: d.date.to_string(), cost: d.billed.to_string(), effective_cost: d.effective.to_string() })
                .collect(),
        }
    }
}

pub struct Resource(resources::Resource);

#[Object]
impl Resource {
    /// The vtag id (UUID).
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The cloud's own id.
    async fn resource_id(&self) -> &str {
        &self.0.cloud_resource_id
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn provider(&self) -> async_graphql::Result<CloudProvider> {
        CloudProvider::from_stored(&self.0.provider)
    }
    #[graphql(name = "type")]
    async fn resource_type(&self) -> &str {
        &self.0.resource_type
    }
    async fn account_id(&self) -> &str {
        &self.0.account_id
    }
    async fn region(&self) -> &str {
        &self.0.region
    }
    /// Aggregate version: send it as expected_version with the next write.
    async fn version(&self) -> i64 {
        self.0.version
    }
    /// Sorted by key. Only virtual tags: native cloud tags are never served. With `asOf`, the tags
    /// as they were at that instant (none before the resource existed).
    async fn virtual_tags(&self, ctx: &Context<'_>, as_of: Option<DateTime>) -> async_graphql::Result<Vec<VirtualTag>> {
        let tags = match as_of {
            None => self.0.virtual_tags.clone(),
            Some(at) => {
                let caller = caller(ctx)?;
                let pool = ctx.data::<PgPool>()?;
                history::tags_as_of(pool, &caller.tenant, self.0.id, at.0, None).await.map_err(gql_error)?
            }
        };
        Ok(tags.into_iter().map(|tag| VirtualTag { resource: self.0.id, tag }).collect())
    }

    /// Why `key` has its value (now, or at `asOf`), as the REST explain endpoint answers it; null
    /// when the key has no value. `history`: how many latest changes to list (0–20, default 20).
    async fn explain(
        &self,
        ctx: &Context<'_>,
        key: String,
        as_of: Option<DateTime>,
        #[graphql(name = "history")] changes: Option<i32>,
    ) -> async_graphql::Result<Option<Json<Explanation>>> {
        let caller = caller(ctx)?;
        let pool = ctx.data::<PgPool>()?;
        let key = TagKey::parse(&key).map_err(|e| gql_error(Problem::invalid_field("key", e.rule, e.message)))?;
        let limit = changes.map_or(history::MAX_CHANGES, i64::from);
        if !(0..=history::MAX_CHANGES).contains(&limit) {
            let message = format!("must be between 0 and {}", history::MAX_CHANGES);
            return Err(gql_error(Problem::invalid_field("history", "range", message)));
        }
        let found = explain::explain(pool, &caller.tenant, &self.0, key.as_str(), as_of.map(|t| t.0), limit)
            .await
            .map_err(gql_error)?;
        Ok(found.map(Json))
    }

    /// Where the resource stands against its tenant's compliance policies (seed `ComplianceStatus`).
    async fn compliance_status(&self, ctx: &Context<'_>) -> async_graphql::Result<ComplianceStatus> {
        let caller = caller(ctx)?;
        let pool = ctx.data::<PgPool>()?;
        let status = crate::compliance_routes::resource_status(pool, &caller.tenant, self.0.id).await.map_err(gql_error)?;
        Ok(ComplianceStatus(status))
    }
}

pub struct ComplianceStatus(crate::compliance_routes::ResourceStatus);

#[Object]
impl ComplianceStatus {
    /// No open violation (one still in its grace period counts).
    async fn is_compliant(&self) -> bool {
        self.0.is_compliant
    }
    async fn violations(&self) -> Vec<PolicyViolation> {
        self.0.violations.iter().map(|v| PolicyViolation(v.clone())).collect()
    }
    /// 0–100: the share of the applicable policies' severity weight the resource satisfies.
    async fn score(&self) -> f64 {
        self.0.score
    }
    /// When the evaluator's judgement of the resource last changed (it judges on every change).
    async fn last_checked(&self) -> DateTime {
        DateTime(self.0.last_checked)
    }
}

pub struct PolicyViolation(crate::compliance_routes::ViolationBody);

#[Object]
impl PolicyViolation {
    async fn policy_id(&self) -> &str {
        &self.0.policy_id
    }
    async fn tag_key(&self) -> &str {
        &self.0.tag_key
    }
    /// critical, high, medium or low.
    async fn severity(&self) -> &str {
        &self.0.severity
    }
    /// pending (inside its grace period), due or escalated.
    async fn stage(&self) -> &str {
        &self.0.stage
    }
    /// missing or invalid.
    async fn problem(&self) -> &str {
        &self.0.problem
    }
    async fn message(&self) -> &str {
        &self.0.message
    }
    /// What would fix it.
    async fn remediation(&self) -> &str {
        &self.0.remediation
    }
    async fn opened_at(&self) -> DateTime {
        DateTime(self.0.opened_at)
    }
    async fn due_at(&self) -> DateTime {
        DateTime(self.0.due_at)
    }
}

pub struct VirtualTag {
    resource: uuid::Uuid,
    tag: TagRow,
}

#[Object]
impl VirtualTag {
    /// `<resource uuid>:<key>`.
    async fn id(&self) -> ID {
        ID(self.tag.id(self.resource))
    }
    async fn key(&self) -> &str {
        &self.tag.key
    }
    async fn value(&self) -> &str {
        &self.tag.value
    }
    async fn source(&self) -> async_graphql::Result<TagSource> {
        TagSource::from_stored(&self.tag.source)
    }
    async fn confidence(&self) -> f64 {
        self.tag.confidence
    }
    async fn created_by(&self) -> &str {
        &self.tag.created_by
    }
    async fn updated_by(&self) -> &str {
        &self.tag.updated_by
    }
    async fn created_at(&self) -> DateTime {
        DateTime(self.tag.created_at)
    }
    async fn updated_at(&self) -> DateTime {
        DateTime(self.tag.updated_at)
    }
    async fn version(&self) -> i64 {
        self.tag.version
    }
    /// Derived values only.
    async fn origin(&self) -> async_graphql::Result<Option<TagOrigin>> {
        TagOrigin::from_stored(self.tag.provenance.origin.as_deref())
    }
    async fn rule_id(&self) -> Option<&str> {
        self.tag.provenance.rule_id.as_deref()
    }
    /// The configuration version the value was derived under.
    async fn rule_set_version(&self) -> Option<i64> {
        self.tag.provenance.rule_set_version
    }
}

#[derive(SimpleObject)]
pub struct AuditTrail {
    items: Vec<AuditItem>,
    /// Null on the last page.
    next_cursor: Option<String>,
}

pub struct AuditItem(AuditEntry);

#[Object]
impl AuditItem {
    async fn event_id(&self) -> ID {
        ID(self.0.event_id.to_string())
    }
    /// Which of the event's changes (a derivation event changes several keys).
    async fn change_index(&self) -> i32 {
        self.0.change_index
    }
    async fn resource_id(&self) -> ID {
        ID(self.0.resource_id.to_string())
    }
    async fn aggregate_version(&self) -> i64 {
        self.0.aggregate_version
    }
    /// The event type, e.g. `VirtualTagApplied`.
    async fn action(&self) -> &str {
        &self.0.action
    }
    async fn tag_key(&self) -> Option<&str> {
        self.0.tag_key.as_deref()
    }
    async fn old_value(&self) -> Option<&str> {
        self.0.old_value.as_deref()
    }
    async fn new_value(&self) -> Option<&str> {
        self.0.new_value.as_deref()
    }
    async fn source(&self) -> async_graphql::Result<Option<TagSource>> {
        self.0.source.as_deref().map(TagSource::from_stored).transpose()
    }
    async fn confidence(&self) -> Option<f64> {
        self.0.confidence
    }
    async fn origin(&self) -> async_graphql::Result<Option<TagOrigin>> {
        TagOrigin::from_stored(self.0.provenance.origin.as_deref())
    }
    async fn rule_id(&self) -> Option<&str> {
        self.0.provenance.rule_id.as_deref()
    }
    async fn rule_set_version(&self) -> Option<i64> {
        self.0.provenance.rule_set_version
    }
    async fn native_key(&self) -> Option<&str> {
        self.0.provenance.native_key.as_deref()
    }
    async fn native_value(&self) -> Option<&str> {
        self.0.provenance.native_value.as_deref()
    }
    async fn key_mapping(&self) -> Option<&str> {
        self.0.provenance.key_mapping.as_deref()
    }
    async fn value_mapping(&self) -> Option<&str> {
        self.0.provenance.value_mapping.as_deref()
    }
    async fn performed_by(&self) -> &str {
        &self.0.performed_by
    }
    async fn causation_id(&self) -> ID {
        ID(self.0.causation_id.to_string())
    }
    async fn correlation_id(&self) -> ID {
        ID(self.0.correlation_id.to_string())
    }
    async fn occurred_at(&self) -> DateTime {
        DateTime(self.0.occurred_at)
    }
    async fn recorded_at(&self) -> DateTime {
        DateTime(self.0.recorded_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sdl_has_the_seed_enums_and_our_timestamp() {
        let sdl = Schema::build(QueryRoot, EmptyMutation, EmptySubscription).finish().sdl();
        assert!(
            sdl.contains(
                "enum TagSource {\n\tINFERRED\n\tRULE_BASED\n\tAI_SUGGESTED\n\tUSER_CONFIRMED\n\tMANUAL\n\tNATIVE\n}"
            ),
            "{sdl}"
        );
        assert!(sdl.contains("scalar DateTime"), "{sdl}");
        assert!(sdl.contains("resource(id: ID!, provider: CloudProvider): Resource"), "{sdl}");
        assert!(sdl.contains("auditTrail("), "{sdl}");
        assert!(sdl.contains("virtualTags(asOf: DateTime): [VirtualTag!]!"), "{sdl}");
        assert!(sdl.contains("enum TagOrigin {\n\tNATIVE\n\tRULE\n\tDEFAULT\n}"), "{sdl}");
        assert!(!sdl.contains("nativeTags"), "native tags must never be queryable");
    }

    #[test]
    fn timestamps_print_with_z() {
        let t = rfc3339::parse("2025-11-17T10:00:00Z").unwrap();
        assert_eq!(DateTime(t).to_value(), Value::String("2025-11-17T10:00:00Z".into()));
        assert!(<DateTime as ScalarType>::parse(Value::String("nope".into())).is_err());
    }

    #[test]
    fn problems_keep_their_type_and_fields_as_extensions() {
        let e = gql_error(Problem::invalid_field("first", "range", "must be between 1 and 1000"));
        let ext = e.extensions.unwrap();
        assert_eq!(ext.get("status"), Some(&Value::from(422)));
        assert!(format!("{:?}", ext.get("errors")).contains("first"));
    }
}
