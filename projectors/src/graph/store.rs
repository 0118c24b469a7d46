//! The graph read model over Bolt (`neo4rs`): what the projector reads and writes, in Cypher that
//! Neo4j and ArcadeDB's Bolt plugin both run.
//!
//! Layout. Every node carries `gen` (its generation) and a `uid` that starts with it
//! ([`graph_uid`]); uniqueness constraints on `uid` per label give MERGE its index. A
//! `(:Generation {uid, model})` node exists per generation, a `(:Checkpoint {uid, gen, topic,
//! offsets})` per generation and topic, and one `(:GraphModel {uid: model, serving})` names the
//! generation queries read. A batch's nodes, relationships and checkpoint are one transaction.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use neo4rs::{query, BoltType, ConfigBuilder, Graph, Query};
pub use vtag_service::read_models::BoltSettings;
use vtag_service::read_models::{graph_uid, is_graph_generation};

use super::model::Shape;
use crate::search::doc::ResourceDoc;

/// Labels of a generation's nodes (dropping a generation deletes each).
const LABELS: [&str; 7] = ["Resource", "Tag", "Team", "CostCenter", "Project", "Account", "Checkpoint"];

/// A client of the graph server (connections are opened lazily, up to four).
pub fn connect(settings: &BoltSettings) -> Result<Graph, neo4rs::Error> {
    let config = ConfigBuilder::default()
        .uri(settings.url.as_str())
        .user(settings.user.as_str())
        .password(settings.password.as_str())
        .db(settings.database.as_str())
        .max_connections(4)
        .build()?;
    Graph::connect(config)
}

/// Why a call failed: the server did not answer (retry), or it refused (stop).
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("graph server unavailable: {0}")]
    Unavailable(String),
    #[error("graph server refused: {0}")]
    Refused(String),
}

impl From<neo4rs::Error> for GraphError {
    fn from(e: neo4rs::Error) -> Self {
        match e {
            neo4rs::Error::IOError { .. } | neo4rs::Error::ConnectionError | neo4rs::Error::IncompleteBoltExchange => {
                GraphError::Unavailable(e.to_string())
            }
            // Deadlocks and concurrent changes to the same page (ArcadeDB's optimistic
            // transactions see other generations' writers too): the transaction was rolled back
            // and is run again.
            neo4rs::Error::Neo4j(ref n) if n.code().starts_with("Neo.TransientError") => GraphError::Unavailable(e.to_string()),
            other => GraphError::Refused(other.to_string()),
        }
    }
}

impl From<neo4rs::DeError> for GraphError {
    fn from(e: neo4rs::DeError) -> Self {
        GraphError::Refused(format!("unexpected answer: {e}"))
    }
}

pub struct GraphStore {
    graph: Graph,
    model: String,
}

impl GraphStore {
    pub fn new(graph: Graph, model: String) -> Self {
        Self { graph, model }
    }

    /// Uniqueness on every label's uid (MERGE's index), and an index on `gen` (a generation's
    /// queries and its drop filter on it). Idempotent.
    pub async fn ensure_schema(&self) -> Result<(), GraphError> {
        for label in LABELS.iter().chain(&["Generation", "GraphModel"]) {
            let name = label.to_lowercase();
            self.graph.run(query(&format!("CREATE CONSTRAINT {name}_uid IF NOT EXISTS FOR (n:{label}) REQUIRE n.uid IS UNIQUE"))).await?;
        }
        for label in LABELS {
            let name = label.to_lowercase();
            self.graph.run(query(&format!("CREATE INDEX {name}_gen IF NOT EXISTS FOR (n:{label}) ON (n.gen)"))).await?;
        }
        Ok(())
    }

    /// The generation queries read, if any.
    pub async fn serving(&self) -> Result<Option<String>, GraphError> {
        let q = query("MATCH (m:GraphModel {uid: $model}) RETURN m.serving AS serving").param("model", self.model.as_str());
        let rows = self.rows(q).await?;
        Ok(rows.first().and_then(|r| r.get::<Option<String>>("serving").ok().flatten()))
    }

    /// This model's generations, oldest first.
    pub async fn generations(&self) -> Result<Vec<String>, GraphError> {
        let q = query("MATCH (g:Generation {model: $model}) RETURN g.uid AS uid").param("model", self.model.as_str());
        let mut all: Vec<String> = self
            .rows(q)
            .await?
            .iter()
            .filter_map(|r| r.get::<String>("uid").ok())
            .filter(|g| is_graph_generation(&self.model, g))
            .collect();
        all.sort();
        Ok(all)
    }

    pub async fn exists(&self, generation: &str) -> Result<bool, GraphError> {
        Ok(self.generations().await?.iter().any(|g| g == generation))
    }

    pub async fn create_generation(&self) -> Result<String, GraphError> {
        let millis = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
        let generation = format!("{}-{millis}", self.model);
        let q = query("MERGE (g:Generation {uid: $uid}) SET g.model = $model").param("uid", generation.as_str()).param("model", self.model.as_str());
        self.graph.run(q).await?;
        Ok(generation)
    }

    /// Points queries at `generation` (one write: they see the old one or the new one).
    pub async fn swap_to(&self, generation: &str) -> Result<(), GraphError> {
        let q = query("MERGE (m:GraphModel {uid: $model}) SET m.serving = $generation")
            .param("model", self.model.as_str())
            .param("generation", generation);
        self.graph.run(q).await?;
        Ok(())
    }

    /// Deletes a generation's nodes and relationships, a slice at a time (a big generation in one
    /// transaction would hold the server's memory), its Generation node last.
    pub async fn drop_generation(&self, generation: &str) -> Result<(), GraphError> {
        for label in LABELS {
            loop {
                let q = query(&format!("MATCH (n:{label}) WHERE n.gen = $gen WITH n LIMIT 2000 DETACH DELETE n RETURN count(*) AS deleted"))
                    .param("gen", generation);
                let deleted = self.rows(q).await?.first().and_then(|r| r.get::<i64>("deleted").ok()).unwrap_or(0);
                if deleted == 0 {
                    break;
                }
            }
        }
        self.graph.run(query("MATCH (g:Generation {uid: $uid}) DETACH DELETE g").param("uid", generation)).await?;
        Ok(())
    }

    /// Next offset per partition of `topic` folded into `generation` (empty: none yet).
    pub async fn checkpoints(&self, generation: &str, topic: &str) -> Result<HashMap<i32, i64>, GraphError> {
        let uid = graph_uid(generation, "-", &["checkpoint", topic]);
        let rows = self.rows(query("MATCH (c:Checkpoint {uid: $uid}) RETURN c.offsets AS offsets").param("uid", uid)).await?;
        let Some(offsets) = rows.first().and_then(|r| r.get::<String>("offsets").ok()) else { return Ok(HashMap::new()) };
        serde_json::from_str(&offsets).map_err(|e| GraphError::Refused(format!("checkpoint of {topic} in {generation} unreadable: {e}")))
    }

    /// The folded state of these resources in `generation`, by resource id.
    pub async fn fetch(&self, generation: &str, tenants_and_ids: &[(String, String)]) -> Result<HashMap<String, ResourceDoc>, GraphError> {
        if tenants_and_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let uids: Vec<String> = tenants_and_ids.iter().map(|(tenant, id)| graph_uid(generation, tenant, &["resource", id])).collect();
        let q = query("UNWIND $uids AS uid MATCH (r:Resource {uid: uid}) RETURN r.state AS state").param("uids", uids);
        let mut docs = HashMap::new();
        for row in self.rows(q).await? {
            let state: String = row.get("state")?;
            let doc: ResourceDoc =
                serde_json::from_str(&state).map_err(|e| GraphError::Refused(format!("a resource's state is unreadable: {e}")))?;
            docs.insert(doc.resource_id.clone(), doc);
        }
        Ok(docs)
    }

    /// Writes the changed resources (node, then its relationships drawn anew) and the topic's
    /// checkpoints in one transaction.
    pub async fn write(&self, generation: &str, changed: &[&ResourceDoc], topic: &str, offsets: &HashMap<i32, i64>) -> Result<(), GraphError> {
        let batch = Batch::of(generation, changed);
        let mut txn = self.graph.start_txn().await?;
        for q in batch.queries(generation) {
            txn.run(q).await?;
        }
        let offsets = serde_json::to_string(offsets).map_err(|e| GraphError::Refused(e.to_string()))?;
        let checkpoint = query("MERGE (c:Checkpoint {uid: $uid}) SET c.gen = $gen, c.topic = $topic, c.offsets = $offsets")
            .param("uid", graph_uid(generation, "-", &["checkpoint", topic]))
            .param("gen", generation)
            .param("topic", topic)
            .param("offsets", offsets);
        txn.run(checkpoint).await?;
        txn.commit().await?;
        Ok(())
    }

    async fn rows(&self, q: Query) -> Result<Vec<neo4rs::Row>, GraphError> {
        let mut stream = self.graph.execute(q).await?;
        let mut rows = Vec::new();
        while let Some(row) = stream.next().await? {
            rows.push(row);
        }
        Ok(rows)
    }
}

/// A batch's rows, one list per statement (UNWIND makes each statement one round trip).
#[derive(Default)]
struct Batch {
    resources: Vec<BoltType>,
    uids: Vec<String>,
    tags: Vec<BoltType>,
    owners: Vec<BoltType>,
    cost_centers: Vec<BoltType>,
    projects: Vec<BoltType>,
    accounts: Vec<BoltType>,
}

fn row<const N: usize>(fields: [(&str, BoltType); N]) -> BoltType {
    BoltType::from(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect::<HashMap<String, BoltType>>())
}

impl Batch {
    fn of(generation: &str, docs: &[&ResourceDoc]) -> Self {
        let mut b = Batch::default();
        for doc in docs {
            let tenant = doc.tenant.as_str();
            let uid = graph_uid(generation, tenant, &["resource", &doc.resource_id]);
            let shape = Shape::of(doc);
            let state = serde_json::to_string(doc).expect("a document serializes");
            b.resources.push(row([
                ("uid", uid.clone().into()),
                ("tenant", tenant.into()),
                ("id", doc.resource_id.as_str().into()),
                ("name", doc.resource_name.as_str().into()),
                ("provider", doc.provider.as_str().into()),
                ("account", doc.account.as_str().into()),
                ("region", doc.region.as_str().into()),
                ("type", doc.resource_type.as_str().into()),
                ("version", (doc.version as i64).into()),
                ("cost_cents", doc.monthly_cost_cents.into()),
                ("currency", doc.currency.clone().into()),
                ("conflict", shape.ownership_conflict.into()),
                ("state", state.into()),
            ]));
            let link = |to: String, name: &str| [("from", BoltType::from(uid.clone())), ("to", to.into()), ("tenant", tenant.into()), ("name", name.into())];
            for (key, value, source, confidence) in &shape.tags {
                let [from, to, tenant, _] = link(graph_uid(generation, tenant, &["tag", key, value]), key);
                b.tags.push(row([from, to, tenant, ("key", key.as_str().into()), ("value", value.as_str().into()), ("source", source.as_str().into()), ("confidence", (*confidence).into())]));
            }
            for (team, via) in &shape.owners {
                let [from, to, tenant, name] = link(graph_uid(generation, tenant, &["team", team]), team);
                b.owners.push(row([from, to, tenant, name, ("via", (*via).into())]));
            }
            if let Some(cc) = &shape.cost_center {
                b.cost_centers.push(row(link(graph_uid(generation, tenant, &["cost-center", cc]), cc)));
            }
            if let Some(project) = &shape.project {
                b.projects.push(row(link(graph_uid(generation, tenant, &["project", project]), project)));
            }
            if !doc.account.is_empty() {
                let [from, to, tenant, name] = link(graph_uid(generation, tenant, &["account", &doc.provider, &doc.account]), &doc.account);
                b.accounts.push(row([from, to, tenant, name, ("provider", doc.provider.as_str().into())]));
            }
            b.uids.push(uid);
        }
        b
    }

    fn queries(self, generation: &str) -> Vec<Query> {
        let on = |text: &str, list: &str, rows: Vec<BoltType>| query(text).param(list, rows).param("gen", generation);
        let mut qs = vec![
            on(
                "UNWIND $rows AS row MERGE (r:Resource {uid: row.uid}) \
                 SET r.gen = $gen, r.tenant = row.tenant, r.id = row.id, r.name = row.name, r.provider = row.provider, \
                 r.account = row.account, r.region = row.region, r.type = row.type, r.version = row.version, \
                 r.cost_cents = row.cost_cents, r.currency = row.currency, r.conflict = row.conflict, r.state = row.state",
                "rows",
                self.resources,
            ),
            // The resource's relationships are drawn anew from its shape.
            query("UNWIND $uids AS uid MATCH (r:Resource {uid: uid})-[e]->() DELETE e").param("uids", self.uids),
        ];
        let links = [
            ("Tag", "HAS_TAG", "t.key = l.key, t.value = l.value", "{source: l.source, confidence: l.confidence}", self.tags),
            ("Team", "OWNED_BY", "t.name = l.name", "{via: l.via}", self.owners),
            ("CostCenter", "BELONGS_TO", "t.name = l.name", "", self.cost_centers),
            ("Project", "PART_OF", "t.name = l.name", "", self.projects),
            ("Account", "IN_ACCOUNT", "t.name = l.name, t.provider = l.provider", "", self.accounts),
        ];
        for (label, rel, props, rel_props, rows) in links {
            if rows.is_empty() {
                continue;
            }
            qs.push(on(
                &format!(
                    "UNWIND $links AS l MATCH (r:Resource {{uid: l.from}}) \
                     MERGE (t:{label} {{uid: l.to}}) ON CREATE SET t.gen = $gen, t.tenant = l.tenant, {props} \
                     CREATE (r)-[:{rel} {rel_props}]->(t)"
                ),
                "links",
                rows,
            ));
        }
        qs
    }
}
