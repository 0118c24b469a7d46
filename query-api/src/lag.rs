//! `GET /api/v1/read-models/lag`: how far each read model is behind the log, per topic and
//! partition — its own checkpoint (the next offset it will fold) against the partition's high
//! watermark (DESIGN-NOTES rule 10). Offsets only, no tenant data; still admin-only, since the
//! log's volume is everyone's activity.

use std::collections::HashMap;

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use vtag_eventlog::EventTopics;
use vtag_service::{Caller, Problem, Role};

use crate::state::{db_error, AppState};

#[derive(Debug, Serialize)]
pub struct LagBody {
    pub read_models: Vec<ReadModelLag>,
}

#[derive(Debug, Serialize)]
pub struct ReadModelLag {
    pub name: &'static str,
    /// `serving`, `building` (the search index or the graph is being built from the log: its
    /// queries answer 503),
    /// or `unavailable` (its store does not answer).
    pub status: &'static str,
    /// Records of the log not folded yet, over every topic it reads.
    pub lag: i64,
    pub topics: Vec<TopicLag>,
}

#[derive(Debug, Serialize)]
pub struct TopicLag {
    pub topic: String,
    pub lag: i64,
    pub partitions: Vec<PartitionLag>,
}

#[derive(Debug, Serialize)]
pub struct PartitionLag {
    pub partition: i32,
    pub checkpoint: i64,
    pub high_watermark: i64,
    pub lag: i64,
}

pub async fn lag(State(state): State<AppState>, caller: Caller) -> Result<Json<LagBody>, Problem> {
    caller.require(Role::Admin)?;
    let topics = EventTopics::new(state.topic_prefix.clone(), 0);
    let postgres_topics =
        [topics.resource_events(), topics.tagging_config(), topics.cost_events(), topics.compliance_policies(), topics.compliance_events()];
    let ends = vtag_eventlog::ends_of(&state.brokers, &postgres_topics)
        .await
        .map_err(|e| Problem::unavailable(format!("the event log does not answer: {e}")))?;

    let rows: Vec<(String, i32, i64)> =
        sqlx::query_as("SELECT topic, partition, next_offset FROM projector_checkpoints WHERE projector = 'postgres'")
            .fetch_all(&state.pool)
            .await
            .map_err(db_error)?;
    let mut pg: HashMap<String, HashMap<i32, i64>> = HashMap::new();
    for (topic, partition, next) in rows {
        pg.entry(topic).or_default().insert(partition, next);
    }
    let postgres = read_model("postgres", "serving", &postgres_topics, &ends, |t| pg.get(t).cloned().unwrap_or_default());

    let search_topics = [topics.resource_events(), topics.compliance_events()];
    let search = match state.search.checkpoints(&search_topics).await {
        Ok(Some(done)) => read_model("opensearch", "serving", &search_topics, &ends, |t| done.get(t).cloned().unwrap_or_default()),
        Ok(None) => read_model("opensearch", "building", &search_topics, &ends, |_| HashMap::new()),
        Err(reason) => {
            tracing::warn!(%reason, "search server unavailable for the lag report");
            read_model("opensearch", "unavailable", &search_topics, &ends, |_| HashMap::new())
        }
    };
    let graph_topics = [topics.resource_events()];
    let graph = match state.graph.checkpoints(&graph_topics[0]).await {
        Ok(Some(done)) => read_model("neo4j", "serving", &graph_topics, &ends, |_| done.clone()),
        Ok(None) => read_model("neo4j", "building", &graph_topics, &ends, |_| HashMap::new()),
        Err(problem) => {
            tracing::warn!(detail = ?problem.detail, "graph server unavailable for the lag report");
            read_model("neo4j", "unavailable", &graph_topics, &ends, |_| HashMap::new())
        }
    };
    Ok(Json(LagBody { read_models: vec![postgres, search, graph] }))
}

fn read_model(
    name: &'static str,
    status: &'static str,
    topics: &[String],
    ends: &HashMap<String, HashMap<i32, i64>>,
    checkpoints: impl Fn(&str) -> HashMap<i32, i64>,
) -> ReadModelLag {
    let topics: Vec<TopicLag> = topics
        .iter()
        .map(|topic| {
            let done = checkpoints(topic);
            let mut partitions: Vec<PartitionLag> = ends
                .get(topic)
                .into_iter()
                .flatten()
                .map(|(p, high)| {
                    let checkpoint = done.get(p).copied().unwrap_or(0);
                    PartitionLag { partition: *p, checkpoint, high_watermark: *high, lag: (high - checkpoint).max(0) }
                })
                .collect();
            partitions.sort_by_key(|p| p.partition);
            TopicLag { topic: topic.clone(), lag: partitions.iter().map(|p| p.lag).sum(), partitions }
        })
        .collect();
    ReadModelLag { name, status, lag: topics.iter().map(|t| t.lag).sum(), topics }
}
