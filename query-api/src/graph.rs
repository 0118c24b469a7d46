//! Questions about ownership, over the graph read model (Neo4j over Bolt): what a team owns (with its
//! monthly cost), which teams share a project, and which resources have conflicting ownership
//! (their tags name two teams). REST under `/api/v1/graph/…` and the same answers in GraphQL.
//!
//! Every query reads the generation the model node names at that moment and is confined to the
//! caller's tenant. While no generation is served (the first build) the answer is 503.

use std::collections::{BTreeMap, HashMap};

use async_graphql::SimpleObject;
use axum::extract::{Path, State};
use axum::Json;
use neo4rs::{query, ConfigBuilder, Graph, Query, Row};
use serde::Serialize;
pub use vtag_service::read_models::BoltSettings;
use vtag_service::{read_models, Caller, Problem, Role};

use crate::state::AppState;

/// The graph read model's client.
#[derive(Clone)]
pub struct GraphModel {
    graph: Graph,
    model: String,
}

#[derive(Debug, Clone, Serialize, SimpleObject)]
pub struct TeamResources {
    pub team: String,
    pub resources: Vec<OwnedResource>,
    /// Monthly cost of the team's resources, one total per currency.
    pub monthly_cost: Vec<CostTotal>,
}

#[derive(Debug, Clone, Serialize, SimpleObject)]
pub struct OwnedResource {
    pub resource_id: String,
    pub name: String,
    pub provider: String,
    pub account: String,
    pub resource_type: String,
    /// The tags that name the team (`team`, `owner`).
    pub via: Vec<String>,
    pub monthly_cost_cents: Option<i64>,
    pub currency: Option<String>,
}

#[derive(Debug, Clone, Serialize, SimpleObject)]
pub struct CostTotal {
    pub currency: String,
    pub cents: i64,
}

#[derive(Debug, Clone, Serialize, SimpleObject)]
pub struct SharedProject {
    pub project: String,
    pub teams: Vec<TeamShare>,
}

#[derive(Debug, Clone, Serialize, SimpleObject)]
pub struct TeamShare {
    pub team: String,
    pub resources: i64,
}

#[derive(Debug, Clone, Serialize, SimpleObject)]
pub struct OwnershipConflict {
    pub resource_id: String,
    pub name: String,
    pub owners: Vec<Owner>,
}

#[derive(Debug, Clone, Serialize, SimpleObject)]
pub struct Owner {
    pub team: String,
    /// The tag that names it.
    pub via: String,
}

#[derive(Debug, Serialize)]
pub struct SharedProjects {
    pub projects: Vec<SharedProject>,
}

#[derive(Debug, Serialize)]
pub struct OwnershipConflicts {
    pub resources: Vec<OwnershipConflict>,
}

impl GraphModel {
    /// The client connects lazily: the query API starts whether or not the graph server is up.
    pub fn connect(settings: &BoltSettings, topic_prefix: &str) -> anyhow::Result<Self> {
        let config = ConfigBuilder::default()
            .uri(settings.url.as_str())
            .user(settings.user.as_str())
            .password(settings.password.as_str())
            .db(settings.database.as_str())
            .max_connections(8)
            .build()?;
        Ok(Self { graph: Graph::connect(config)?, model: read_models::graph_model(topic_prefix) })
    }

    async fn rows(&self, q: Query) -> Result<Vec<Row>, Problem> {
        let unavailable = |e: neo4rs::Error| match e {
            // A refused query is ours to fix, not the client's to retry.
            neo4rs::Error::Neo4j(ref n) if !n.code().starts_with("Neo.TransientError") => Problem::internal(e),
            e => {
                tracing::warn!(error = %e, "graph server unavailable");
                Problem::unavailable("the graph read model is unavailable; retry shortly")
            }
        };
        let mut stream = self.graph.execute(q).await.map_err(unavailable)?;
        let mut rows = Vec::new();
        while let Some(row) = stream.next().await.map_err(unavailable)? {
            rows.push(row);
        }
        Ok(rows)
    }

    /// The generation queries read now (None while the first one is being built).
    async fn serving(&self) -> Result<Option<String>, Problem> {
        let rows = self.rows(query("MATCH (m:GraphModel {uid: $model}) RETURN m.serving AS serving").param("model", self.model.as_str())).await?;
        Ok(rows.first().and_then(|r| r.get::<Option<String>>("serving").ok().flatten()))
    }

    async fn served(&self) -> Result<String, Problem> {
        self.serving().await?.ok_or_else(|| Problem::unavailable("the graph is being built from the event log; retry shortly"))
    }

    /// The served generation's checkpoint of `topic` (next offset per partition); None while none
    /// is served.
    pub async fn checkpoints(&self, topic: &str) -> Result<Option<HashMap<i32, i64>>, Problem> {
        let Some(generation) = self.serving().await? else { return Ok(None) };
        let uid = read_models::graph_uid(&generation, "-", &["checkpoint", topic]);
        let rows = self.rows(query("MATCH (c:Checkpoint {uid: $uid}) RETURN c.offsets AS offsets").param("uid", uid)).await?;
        let offsets = rows.first().and_then(|r| r.get::<String>("offsets").ok());
        Ok(Some(offsets.and_then(|o| serde_json::from_str(&o).ok()).unwrap_or_default()))
    }

    pub async fn team_resources(&self, tenant: &str, team: &str) -> Result<TeamResources, Problem> {
        let generation = self.served().await?;
        let team = team.trim().to_lowercase();
        let q = query(
            "MATCH (t:Team {uid: $uid})<-[o:OWNED_BY]-(r:Resource) \
             RETURN r.id AS id, r.name AS name, r.provider AS provider, r.account AS account, r.type AS type, \
             r.cost_cents AS cents, r.currency AS currency, o.via AS via",
        )
        .param("uid", read_models::graph_uid(&generation, tenant, &["team", &team]));
        let mut by_id: BTreeMap<String, OwnedResource> = BTreeMap::new();
        for row in self.rows(q).await? {
            let text = |k: &str| row.get::<Option<String>>(k).ok().flatten().unwrap_or_default();
            let via = text("via");
            let r = by_id.entry(text("id")).or_insert_with(|| OwnedResource {
                resource_id: text("id"),
                name: text("name"),
                provider: text("provider"),
                account: text("account"),
                resource_type: text("type"),
                via: Vec::new(),
                monthly_cost_cents: row.get::<Option<i64>>("cents").ok().flatten(),
                currency: row.get::<Option<String>>("currency").ok().flatten(),
            });
            r.via.push(via);
            r.via.sort();
        }
        let mut resources: Vec<OwnedResource> = by_id.into_values().collect();
        resources.sort_by(|a, b| (a.name.to_lowercase(), &a.resource_id).cmp(&(b.name.to_lowercase(), &b.resource_id)));
        let mut totals: BTreeMap<String, i64> = BTreeMap::new();
        for r in &resources {
            if let (Some(cents), Some(currency)) = (r.monthly_cost_cents, &r.currency) {
                *totals.entry(currency.clone()).or_default() += cents;
            }
        }
        let monthly_cost = totals.into_iter().map(|(currency, cents)| CostTotal { currency, cents }).collect();
        Ok(TeamResources { team, resources, monthly_cost })
    }

    /// Projects whose resources more than one team owns.
    pub async fn shared_projects(&self, tenant: &str) -> Result<Vec<SharedProject>, Problem> {
        let generation = self.served().await?;
        let q = query(
            "MATCH (p:Project)<-[:PART_OF]-(r:Resource)-[:OWNED_BY]->(t:Team) \
             WHERE p.gen = $gen AND p.tenant = $tenant \
             RETURN p.name AS project, t.name AS team, r.id AS id",
        )
        .param("gen", generation)
        .param("tenant", tenant);
        let mut projects: BTreeMap<String, BTreeMap<String, std::collections::BTreeSet<String>>> = BTreeMap::new();
        for row in self.rows(q).await? {
            let text = |k: &str| row.get::<String>(k).unwrap_or_default();
            projects.entry(text("project")).or_default().entry(text("team")).or_default().insert(text("id"));
        }
        Ok(projects
            .into_iter()
            .filter(|(_, teams)| teams.len() > 1)
            .map(|(project, teams)| SharedProject {
                project,
                teams: teams.into_iter().map(|(team, ids)| TeamShare { team, resources: ids.len() as i64 }).collect(),
            })
            .collect())
    }

    /// Resources whose tags name more than one team.
    pub async fn ownership_conflicts(&self, tenant: &str) -> Result<Vec<OwnershipConflict>, Problem> {
        let generation = self.served().await?;
        let q = query(
            "MATCH (r:Resource)-[o:OWNED_BY]->(t:Team) \
             WHERE r.gen = $gen AND r.tenant = $tenant AND r.conflict = true \
             RETURN r.id AS id, r.name AS name, t.name AS team, o.via AS via",
        )
        .param("gen", generation)
        .param("tenant", tenant);
        let mut by_id: BTreeMap<String, OwnershipConflict> = BTreeMap::new();
        for row in self.rows(q).await? {
            let text = |k: &str| row.get::<String>(k).unwrap_or_default();
            let c = by_id.entry(text("id")).or_insert_with(|| OwnershipConflict { resource_id: text("id"), name: text("name"), owners: Vec::new() });
            c.owners.push(Owner { team: text("team"), via: text("via") });
            c.owners.sort_by(|a, b| a.via.cmp(&b.via));
        }
        let mut all: Vec<OwnershipConflict> = by_id.into_values().collect();
        all.sort_by(|a, b| (a.name.to_lowercase(), &a.resource_id).cmp(&(b.name.to_lowercase(), &b.resource_id)));
        Ok(all)
    }
}

/// `GET /api/v1/graph/teams/{team}/resources`
pub async fn team_resources(State(state): State<AppState>, caller: Caller, Path(team): Path<String>) -> Result<Json<TeamResources>, Problem> {
    caller.require(Role::Viewer)?;
    if team.trim().is_empty() {
        return Err(Problem::invalid_field("team", "required", "must name a team"));
    }
    Ok(Json(state.graph.team_resources(caller.tenant.as_str(), &team).await?))
}

/// `GET /api/v1/graph/projects/shared`
pub async fn shared_projects(State(state): State<AppState>, caller: Caller) -> Result<Json<SharedProjects>, Problem> {
    caller.require(Role::Viewer)?;
    Ok(Json(SharedProjects { projects: state.graph.shared_projects(caller.tenant.as_str()).await? }))
}

/// `GET /api/v1/graph/ownership-conflicts`
pub async fn ownership_conflicts(State(state): State<AppState>, caller: Caller) -> Result<Json<OwnershipConflicts>, Problem> {
    caller.require(Role::Viewer)?;
    Ok(Json(OwnershipConflicts { resources: state.graph.ownership_conflicts(caller.tenant.as_str()).await? }))
}
