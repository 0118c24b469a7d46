//! Questions about ownership, over the graph read model (Neo4j over Bolt): what a team owns (with its
//! monthly cost), which teams share a project, and which resources have conflicting ownership
//! (their tags name two teams). REST under `/api/v1/graph/…` and the same answers in GraphQL.
//!
//! Every query reads the generation the model node names at that moment and is confined to the
//! caller's tenant. While no generation is served (the first build) the answer is 503.

use std::collections::{BTreeMap, HashMap};

use async_graphql::SimpleObject;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query as QueryString, State};
use axum::Json;
use neo4rs::{query, ConfigBuilder, Graph, Query, Row};
use serde::{Deserialize, Serialize};
pub use vtag_service::read_models::BoltSettings;
use vtag_service::{read_models, Caller, Problem, Role};

use crate::cursor;
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
    /// How many resources the team owns (all pages).
    pub resource_count: i64,
    /// Monthly cost of all the team's resources, one total per currency.
    pub monthly_cost: Vec<CostTotal>,
    /// This page, by name then id.
    pub resources: Vec<OwnedResource>,
    /// The cursor of the next page (`after`); null on the last.
    pub next: Option<String>,
}

/// A page of a team's resources: at most `limit`, after the `after` cursor.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub limit: usize,
    /// (lower-cased name, id) of the last resource of the previous page.
    pub after: Option<(String, String)>,
}

impl Page {
    pub const DEFAULT_LIMIT: usize = 200;
    pub const MAX_LIMIT: usize = 1_000;

    pub fn parse(limit: Option<i64>, after: Option<&str>) -> Result<Self, Problem> {
        let limit = match limit {
            None => Self::DEFAULT_LIMIT,
            Some(n) if (1..=Self::MAX_LIMIT as i64).contains(&n) => n as usize,
            Some(_) => return Err(Problem::invalid_field("limit", "range", format!("must be 1 to {}", Self::MAX_LIMIT))),
        };
        Ok(Self { limit, after: after.map(cursor::decode).transpose()? })
    }
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
        let rows = self.rows(query(read_models::GRAPH_SERVING).param("model", self.model.as_str())).await?;
        Ok(rows.first().and_then(|r| r.get::<Option<String>>("serving").ok().flatten()))
    }

    async fn served(&self) -> Result<String, Problem> {
        self.serving().await?.ok_or_else(|| Problem::unavailable("the graph is being built from the event log; retry shortly"))
    }

    /// The served generation's checkpoint of `topic` (next offset per partition); None while none
    /// is served.
    pub async fn checkpoints(&self, topic: &str) -> Result<Option<HashMap<i32, i64>>, Problem> {
        let Some(generation) = self.serving().await? else { return Ok(None) };
        let uid = read_models::graph_checkpoint_uid(&generation, topic);
        let rows = self.rows(query(read_models::GRAPH_CHECKPOINT).param("uid", uid)).await?;
        let offsets = rows.first().and_then(|r| r.get::<String>("offsets").ok());
        Ok(Some(offsets.and_then(|o| serde_json::from_str(&o).ok()).unwrap_or_default()))
    }

    pub async fn team_resources(&self, tenant: &str, team: &str, page: &Page) -> Result<TeamResources, Problem> {
        let generation = self.served().await?;
        let team = team.trim().to_lowercase();
        let uid = read_models::graph_uid(&generation, tenant, &["team", &team]);
        // Totals over every resource (a resource named by both `team` and `owner` counts once).
        let q = query(
            "MATCH (t:Team {uid: $uid})<-[:OWNED_BY]-(r:Resource) WITH DISTINCT r \
             RETURN r.currency AS currency, sum(r.cost_cents) AS cents, count(r) AS n",
        )
        .param("uid", uid.as_str());
        let (mut resource_count, mut monthly_cost) = (0, Vec::new());
        for row in self.rows(q).await? {
            resource_count += row.get::<i64>("n").unwrap_or(0);
            if let (Some(currency), Some(cents)) = (row.get::<Option<String>>("currency").ok().flatten(), row.get::<Option<i64>>("cents").ok().flatten()) {
                monthly_cost.push(CostTotal { currency, cents });
            }
        }
        monthly_cost.sort_by(|a, b| a.currency.cmp(&b.currency));
        let (after_name, after_id) = page.after.clone().unwrap_or_default();
        let q = query(
            "MATCH (t:Team {uid: $uid})<-[o:OWNED_BY]-(r:Resource) WITH r, collect(o.via) AS via \
             WHERE toLower(r.name) > $name OR (toLower(r.name) = $name AND r.id > $id) \
             RETURN r.id AS id, r.name AS name, r.provider AS provider, r.account AS account, r.type AS type, \
             r.cost_cents AS cents, r.currency AS currency, via ORDER BY toLower(r.name), r.id LIMIT $limit",
        )
        .param("uid", uid.as_str())
        .param("name", after_name)
        .param("id", after_id)
        .param("limit", page.limit as i64);
        let resources: Vec<OwnedResource> = self
            .rows(q)
            .await?
            .iter()
            .map(|row| {
                let text = |k: &str| row.get::<Option<String>>(k).ok().flatten().unwrap_or_default();
                let mut via = row.get::<Vec<String>>("via").unwrap_or_default();
                via.sort();
                OwnedResource {
                    resource_id: text("id"),
                    name: text("name"),
                    provider: text("provider"),
                    account: text("account"),
                    resource_type: text("type"),
                    via,
                    monthly_cost_cents: row.get::<Option<i64>>("cents").ok().flatten(),
                    currency: row.get::<Option<String>>("currency").ok().flatten(),
                }
            })
            .collect();
        let next = (resources.len() == page.limit)
            .then(|| resources.last().map(|r| cursor::encode(&r.name.to_lowercase(), &r.resource_id)))
            .flatten();
        Ok(TeamResources { team, resource_count, monthly_cost, resources, next })
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    limit: Option<i64>,
    after: Option<String>,
}

/// `GET /api/v1/graph/teams/{team}/resources?limit=&after=`
pub async fn team_resources(
    State(state): State<AppState>,
    caller: Caller,
    Path(team): Path<String>,
    params: Result<QueryString<PageParams>, QueryRejection>,
) -> Result<Json<TeamResources>, Problem> {
    caller.require(Role::Viewer)?;
    let QueryString(params) = params.map_err(crate::rest::unreadable_query)?;
    if team.trim().is_empty() {
        return Err(Problem::invalid_field("team", "required", "must name a team"));
    }
    let page = Page::parse(params.limit, params.after.as_deref())?;
    Ok(Json(state.graph.team_resources(caller.tenant.as_str(), &team, &page).await?))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_bounded_and_cursors_checked() {
        assert_eq!(Page::parse(None, None).unwrap(), Page { limit: Page::DEFAULT_LIMIT, after: None });
        assert_eq!(Page::parse(Some(5), Some(&cursor::encode("web-01", "r-1"))).unwrap().after, Some(("web-01".to_owned(), "r-1".to_owned())));
        let field = |p: Problem| serde_json::to_value(&p).unwrap()["errors"][0]["field"].as_str().unwrap().to_owned();
        assert_eq!(field(Page::parse(Some(0), None).unwrap_err()), "limit");
        assert_eq!(field(Page::parse(Some(1_001), None).unwrap_err()), "limit");
        assert_eq!(field(Page::parse(None, Some("nonsense")).unwrap_err()), "after");
    }
}
