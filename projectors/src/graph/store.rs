//! The graph read model over Bolt (`neo4rs`): what the projector reads and writes, in Cypher that
//! Neo4j and ArcadeDB's Bolt plugin both run.
//!
//! Layout. Every node carries `gen` (its generation) and a `uid` that starts with it
//! ([`graph_uid`]); uniqueness constraints on `uid` per label give MERGE its index. A
//! `(:Generation {uid, model})` node exists per generation, a `(:Checkpoint {uid, gen, topic,
//! offsets})` per generation and topic, and one `(:GraphModel {uid: model, serving})` names the
//! generation queries read. A batch's nodes, relationships and checkpoint are one transaction.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{SystemTime, UNIX_EPOCH};

use neo4rs::{query, BoltType, ConfigBuilder, Graph, Query, Txn};
pub use vtag_service::read_models::BoltSettings;
use vtag_service::read_models::{graph_checkpoint_uid, graph_uid, is_graph_generation, GRAPH_CHECKPOINT, GRAPH_SERVING};

use super::model::Shape;
use crate::search::doc::ResourceDoc;

/// Labels of a generation's nodes (dropping a generation deletes each).
pub const LABELS: [&str; 7] = ["Resource", "Tag", "Team", "CostCenter", "Project", "Account", "Checkpoint"];

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
        let mut statements: Vec<String> = LABELS
            .iter()
            .chain(&["Generation", "GraphModel"])
            .map(|label| format!("CREATE CONSTRAINT {}_uid IF NOT EXISTS FOR (n:{label}) REQUIRE n.uid IS UNIQUE", label.to_lowercase()))
            .collect();
        statements.extend(LABELS.iter().map(|label| format!("CREATE INDEX {}_gen IF NOT EXISTS FOR (n:{label}) ON (n.gen)", label.to_lowercase())));
        for statement in statements {
            // Projectors of several prefixes may create the schema at once on a new database:
            // the one that loses a race finds it made on its next try.
            let mut tries = 0;
            loop {
                match self.graph.run(query(&statement)).await {
                    Ok(_) => break,
                    Err(e) if tries < 3 => {
                        tries += 1;
                        tracing::warn!(error = %e, %statement, "creating the graph's schema; trying again");
                        tokio::time::sleep(std::time::Duration::from_millis(200 * tries)).await;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }

    /// The generation queries read, if any.
    pub async fn serving(&self) -> Result<Option<String>, GraphError> {
        let q = query(GRAPH_SERVING).param("model", self.model.as_str());
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
        let rows = self.rows(query(GRAPH_CHECKPOINT).param("uid", graph_checkpoint_uid(generation, topic))).await?;
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
    /// checkpoints in one transaction. `existing`: the resource ids [`fetch`](Self::fetch) found.
    pub async fn write(
        &self,
        generation: &str,
        changed: &[&ResourceDoc],
        existing: &HashSet<String>,
        topic: &str,
        offsets: &HashMap<i32, i64>,
    ) -> Result<(), GraphError> {
        let mut txn = self.graph.start_txn().await?;
        Batch::of(generation, changed, existing).run(&mut txn, generation).await?;
        let offsets = serde_json::to_string(offsets).map_err(|e| GraphError::Refused(e.to_string()))?;
        let checkpoint = query("MERGE (c:Checkpoint {uid: $uid}) SET c.gen = $gen, c.topic = $topic, c.offsets = $offsets")
            .param("uid", graph_checkpoint_uid(generation, topic))
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
///
/// No MERGE: over ArcadeDB's Bolt plugin it ran at ~2k rows/s where MATCH by uid ran at ~12k and
/// CREATE at ~27k (`vtag-bench-graph`, the same server answering MERGE over HTTP at ~35k). The one
/// writer of a generation knows what is in it — the resources it just read, the targets it looks
/// up — so it matches what exists and creates what does not.
#[derive(Default)]
struct Batch {
    /// Resources new to the generation.
    created: Vec<BoltType>,
    /// Resources already in it; their relationships are drawn anew.
    updated: Vec<BoltType>,
    redrawn: Vec<String>,
    links: [Links; 5],
}

/// The nodes of one label that a batch links to (by uid: each once) and the relationships to them.
#[derive(Default)]
struct Links {
    targets: BTreeMap<String, BoltType>,
    rows: Vec<BoltType>,
}

/// Per target label: its relationship type, the properties a new node gets from its row, and the
/// relationship's properties.
const LINKS: [(&str, &str, &str, &str); 5] = [
    ("Tag", "HAS_TAG", "t.key = n.key, t.value = n.value", "{source: l.source, confidence: l.confidence}"),
    ("Team", "OWNED_BY", "t.name = n.name", "{via: l.via}"),
    ("CostCenter", "BELONGS_TO", "t.name = n.name", ""),
    ("Project", "PART_OF", "t.name = n.name", ""),
    ("Account", "IN_ACCOUNT", "t.name = n.name, t.provider = n.provider", ""),
];
const TAG: usize = 0;
const TEAM: usize = 1;
const COST_CENTER: usize = 2;
const PROJECT: usize = 3;
const ACCOUNT: usize = 4;

fn row<const N: usize>(fields: [(&str, BoltType); N]) -> BoltType {
    BoltType::from(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect::<HashMap<String, BoltType>>())
}

impl Links {
    fn link(&mut self, from: &str, to: String, node: impl FnOnce() -> BoltType, props: Vec<(&str, BoltType)>) {
        self.targets.entry(to.clone()).or_insert_with(node);
        let mut fields: HashMap<String, BoltType> = props.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        fields.insert("from".to_owned(), from.into());
        fields.insert("to".to_owned(), to.into());
        self.rows.push(BoltType::from(fields));
    }
}

impl Batch {
    /// `existing`: the resource ids the generation already holds.
    fn of(generation: &str, docs: &[&ResourceDoc], existing: &HashSet<String>) -> Self {
        let mut b = Batch::default();
        for doc in docs {
            let tenant = doc.tenant.as_str();
            let uid = graph_uid(generation, tenant, &["resource", &doc.resource_id]);
            let shape = Shape::of(doc);
            let state = serde_json::to_string(doc).expect("a document serializes");
            let resource = row([
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
            ]);
            if existing.contains(&doc.resource_id) {
                b.updated.push(resource);
                b.redrawn.push(uid.clone());
            } else {
                b.created.push(resource);
            }
            let named = |uid: &str, name: &str| row([("uid", uid.into()), ("tenant", tenant.into()), ("name", name.into())]);
            for (key, value, source, confidence) in &shape.tags {
                let to = graph_uid(generation, tenant, &["tag", key, value]);
                let node = || row([("uid", to.as_str().into()), ("tenant", tenant.into()), ("key", key.as_str().into()), ("value", value.as_str().into())]);
                b.links[TAG].link(&uid, to.clone(), node, vec![("source", source.as_str().into()), ("confidence", (*confidence).into())]);
            }
            for (team, via) in &shape.owners {
                let to = graph_uid(generation, tenant, &["team", team]);
                b.links[TEAM].link(&uid, to.clone(), || named(&to, team), vec![("via", (*via).into())]);
            }
            if let Some(cc) = &shape.cost_center {
                let to = graph_uid(generation, tenant, &["cost-center", cc]);
                b.links[COST_CENTER].link(&uid, to.clone(), || named(&to, cc), Vec::new());
            }
            if let Some(project) = &shape.project {
                let to = graph_uid(generation, tenant, &["project", project]);
                b.links[PROJECT].link(&uid, to.clone(), || named(&to, project), Vec::new());
            }
            if !doc.account.is_empty() {
                let to = graph_uid(generation, tenant, &["account", &doc.provider, &doc.account]);
                let node = || row([("uid", to.as_str().into()), ("tenant", tenant.into()), ("name", doc.account.as_str().into()), ("provider", doc.provider.as_str().into())]);
                b.links[ACCOUNT].link(&uid, to.clone(), node, Vec::new());
            }
        }
        b
    }

    /// Runs the batch's statements in `txn`.
    async fn run(self, txn: &mut Txn, generation: &str) -> Result<(), GraphError> {
        const SET: &str = "r.tenant = row.tenant, r.id = row.id, r.name = row.name, r.provider = row.provider, \
             r.account = row.account, r.region = row.region, r.type = row.type, r.version = row.version, \
             r.cost_cents = row.cost_cents, r.currency = row.currency, r.conflict = row.conflict, r.state = row.state";
        if !self.created.is_empty() {
            let q = format!("UNWIND $rows AS row CREATE (r:Resource {{uid: row.uid}}) SET r.gen = $gen, {SET}");
            txn.run(query(&q).param("rows", self.created).param("gen", generation)).await?;
        }
        if !self.updated.is_empty() {
            txn.run(query(&format!("UNWIND $rows AS row MATCH (r:Resource {{uid: row.uid}}) SET {SET}")).param("rows", self.updated)).await?;
            // Their relationships are drawn anew from their shapes.
            txn.run(query("UNWIND $uids AS uid MATCH (r:Resource {uid: uid})-[e]->() DELETE e").param("uids", self.redrawn)).await?;
        }
        for (links, (label, rel, props, rel_props)) in self.links.into_iter().zip(LINKS) {
            if links.rows.is_empty() {
                continue;
            }
            let uids: Vec<String> = links.targets.keys().cloned().collect();
            let mut found = txn.execute(query(&format!("UNWIND $uids AS uid MATCH (t:{label} {{uid: uid}}) RETURN t.uid AS uid")).param("uids", uids)).await?;
            let mut there = HashSet::new();
            while let Some(r) = found.next(txn.handle()).await? {
                there.insert(r.get::<String>("uid")?);
            }
            let missing: Vec<BoltType> = links.targets.into_iter().filter(|(uid, _)| !there.contains(uid)).map(|(_, node)| node).collect();
            if !missing.is_empty() {
                let q = format!("UNWIND $nodes AS n CREATE (t:{label} {{uid: n.uid}}) SET t.gen = $gen, t.tenant = n.tenant, {props}");
                txn.run(query(&q).param("nodes", missing).param("gen", generation)).await?;
            }
            let q = format!("UNWIND $links AS l MATCH (r:Resource {{uid: l.from}}) MATCH (t:{label} {{uid: l.to}}) CREATE (r)-[:{rel} {rel_props}]->(t)");
            txn.run(query(&q).param("links", links.rows)).await?;
        }
        Ok(())
    }
}
