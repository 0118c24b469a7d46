//! Inspecting the graph read model over Bolt: its generations, whether it has caught up with the
//! log, and a snapshot of every resource's virtual tags (from its HAS_TAG relationships)
//! comparable with the other read models'.

use std::collections::{BTreeMap, BTreeSet};

use neo4rs::{query, Graph, Query, Row};
use vtag_projectors::graph::store::{GraphStore, LABELS};
use vtag_service::read_models;

use crate::harness::TestEnv;
use crate::search::TagSnapshot;

pub struct GraphServer {
    pub graph: Graph,
    /// The projector's own reads of the layout (generations, model node, checkpoints).
    pub store: GraphStore,
    pub model: String,
}

impl GraphServer {
    pub fn of(env: &TestEnv) -> Self {
        let graph = vtag_projectors::graph::store::connect(&env.stack.bolt).expect("graph server settings");
        let model = read_models::graph_model(&env.prefix);
        Self { store: GraphStore::new(graph.clone(), model.clone()), graph, model }
    }

    pub async fn rows(&self, q: Query) -> Vec<Row> {
        let mut stream = self.graph.execute(q).await.expect("graph query");
        let mut rows = Vec::new();
        while let Some(row) = stream.next().await.expect("graph rows") {
            rows.push(row);
        }
        rows
    }

    /// The generation queries read.
    pub async fn serving(&self) -> Option<String> {
        self.store.serving().await.expect("the graph's model node")
    }

    /// Every generation of this model, served or not, oldest first.
    pub async fn generations(&self) -> Vec<String> {
        self.store.generations().await.expect("the graph's generations")
    }

    /// Nodes of any label carrying this generation (a dropped generation has none).
    pub async fn nodes_of(&self, generation: &str) -> i64 {
        let mut total = 0;
        for label in LABELS {
            let q = query(&format!("MATCH (n:{label}) WHERE n.gen = $gen RETURN count(n) AS n")).param("gen", generation);
            total += self.rows(q).await.first().and_then(|r| r.get::<i64>("n").ok()).unwrap_or(0);
        }
        total
    }

    /// Next offsets the serving generation recorded for `topic`.
    pub async fn checkpoints(&self, topic: &str) -> BTreeMap<i32, i64> {
        let Some(generation) = self.serving().await else { return BTreeMap::new() };
        self.checkpoints_of(&generation, topic).await
    }

    /// Next offsets `generation` recorded for `topic`, served or not.
    pub async fn checkpoints_of(&self, generation: &str, topic: &str) -> BTreeMap<i32, i64> {
        self.store.checkpoints(generation, topic).await.expect("checkpoint offsets").into_iter().collect()
    }

    /// Serving, and every partition of the resource topic folded to its end.
    pub async fn caught_up(&self, env: &TestEnv) -> bool {
        let topic = env.topic();
        let ends = vtag_eventlog::ends_of(&env.stack.brokers, std::slice::from_ref(&topic)).await.expect("watermarks");
        let done = self.checkpoints(&topic).await;
        let folded = ends.get(&topic).into_iter().flatten().all(|(p, end)| done.get(p).copied().unwrap_or(0) >= *end);
        folded && self.serving().await.is_some()
    }

    /// Every resource of the served generation with its version and its HAS_TAG relationships.
    pub async fn tag_snapshot(&self) -> TagSnapshot {
        let generation = self.serving().await.expect("a served graph");
        let mut out = TagSnapshot::new();
        let q = query("MATCH (r:Resource) WHERE r.gen = $gen RETURN r.id AS id, r.version AS version").param("gen", generation.as_str());
        for row in self.rows(q).await {
            let id: String = row.get("id").unwrap();
            let previous = out.insert(id.clone(), (row.get::<i64>("version").unwrap(), BTreeSet::new()));
            assert!(previous.is_none(), "resource {id} has two nodes");
        }
        let q = query("MATCH (r:Resource)-[e:HAS_TAG]->(t:Tag) WHERE r.gen = $gen RETURN r.id AS id, t.key AS key, t.value AS value, e.source AS source")
            .param("gen", generation.as_str());
        for row in self.rows(q).await {
            let get = |k: &str| row.get::<String>(k).unwrap();
            let tags = &mut out.get_mut(&get("id")).expect("a tag of a known resource").1;
            assert!(tags.insert((get("key"), get("value"), get("source"))), "a HAS_TAG drawn twice");
        }
        out
    }
}
