//! Read-your-writes. The command API answers a write with the log position it reached
//! (`3:1204,5:77`); a client that sends that token back is not answered from a read model that has
//! not yet folded those events. The projector writes its checkpoint (next offset per partition) in
//! the same transaction as the rows, so "checkpoint > offset" means "those rows are visible".

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, Uri};
use sqlx::PgPool;
use tokio::time::Instant;
use vtag_eventlog::LogPosition;
use vtag_service::Problem;

use crate::state::db_error;

pub const HEADER: &str = "x-consistency-token";
/// For clients that cannot set headers (links, EventSource).
pub const QUERY_PARAM: &str = "consistency_token";
/// The projector that owns the Postgres read model (its name in `projector_checkpoints`).
pub const PROJECTOR: &str = "postgres";
const POLL_EVERY: Duration = Duration::from_millis(10);

/// Where to look and how long to wait; built once from the settings.
#[derive(Debug, Clone)]
pub struct Consistency {
    topic: String,
    max_wait: Duration,
}

impl Consistency {
    pub fn new(topic: String, max_wait: Duration) -> Self {
        Self { topic, max_wait }
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn max_wait(&self) -> Duration {
        self.max_wait
    }
}

/// One bounded wait, shared by every read-your-writes check so they all poll and give up alike.
pub(crate) struct Deadline {
    started: Instant,
    deadline: Instant,
}

impl Deadline {
    pub(crate) fn start(max_wait: Duration) -> Self {
        let started = Instant::now();
        Self { started, deadline: started + max_wait }
    }

    /// Sleeps until the next poll; `false` once the bound has passed (nothing left to wait for).
    pub(crate) async fn next_poll(&self) -> bool {
        let now = Instant::now();
        if now >= self.deadline {
            return false;
        }
        tokio::time::sleep(POLL_EVERY.min(self.deadline - now)).await;
        true
    }

    /// Called once the wait is over: only waits that actually slept are worth a log line.
    pub(crate) fn caught_up(&self, what: &str) {
        if self.started.elapsed() > POLL_EVERY {
            tracing::debug!(
                waited_ms = self.started.elapsed().as_millis() as u64,
                "read model caught up with the {what}"
            );
        }
    }
}

/// The caller's token, if any. A malformed token is refused up front (422): silently ignoring it
/// would hand back stale data to a client that asked not to get any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsistencyToken(pub Option<LogPosition>);

impl<S: Send + Sync> FromRequestParts<S> for ConsistencyToken {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parse(&parts.headers, &parts.uri).map(ConsistencyToken)
    }
}

/// Header and query parameter are merged (highest offset per partition wins), so a client sending
/// both is never answered before either is satisfied.
fn parse(headers: &HeaderMap, uri: &Uri) -> Result<Option<LogPosition>, Problem> {
    let bad =
        |field: &str| Problem::invalid_field(field, "format", "must look like '3:1204,5:77' (partition:offset pairs)");
    let mut position = LogPosition::default();
    for value in headers.get_all(HEADER) {
        let raw = value.to_str().map_err(|_| bad("X-Consistency-Token"))?;
        position.merge(&raw.parse().map_err(|_| bad("X-Consistency-Token"))?);
    }
    if uri.query().is_some() {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(uri)
            .map_err(|e| Problem::malformed(format!("the query string could not be read: {e}")))?;
        for (_, raw) in pairs.iter().filter(|(k, _)| k == QUERY_PARAM) {
            position.merge(&raw.parse().map_err(|_| bad(QUERY_PARAM))?);
        }
    }
    Ok((!position.is_empty()).then_some(position))
}

/// Waits until the read model has folded every event named by `token`, polling the projector's
/// checkpoints; gives up after the configured bound with a 503 the client may retry.
pub async fn wait_until_visible(
    pool: &PgPool,
    consistency: &Consistency,
    token: &ConsistencyToken,
) -> Result<(), Problem> {
    let Some(position) = &token.0 else { return Ok(()) };
    let deadline = Deadline::start(consistency.max_wait);
    let mut pending: Vec<(i32, i64)> = position.partitions().collect();
    loop {
        let partitions: Vec<i32> = pending.iter().map(|(p, _)| *p).collect();
        let reached = checkpoints(pool, &consistency.topic, &partitions).await?;
        pending = unreached(&pending, &reached);
        if pending.is_empty() {
            deadline.caught_up("token");
            return Ok(());
        }
        if !deadline.next_poll().await {
            return Err(not_yet_consistent(&pending, consistency.max_wait));
        }
    }
}

/// The pairs whose events are not yet visible: no checkpoint yet, or one not past the offset.
fn unreached(wanted: &[(i32, i64)], reached: &HashMap<i32, i64>) -> Vec<(i32, i64)> {
    wanted
        .iter()
        .copied()
        .filter(|(partition, offset)| reached.get(partition).is_none_or(|next| next <= offset))
        .collect()
}

const UNDEFINED_TABLE: &str = "42P01";

/// Checkpoints are per log partition, not per tenant: they carry no tenant data, so this is the one
/// read that is not tenant-filtered.
async fn checkpoints(pool: &PgPool, topic: &str, partitions: &[i32]) -> Result<HashMap<i32, i64>, Problem> {
    let rows: Result<Vec<(i32, i64)>, sqlx::Error> = sqlx::query_as(
        "SELECT partition, next_offset FROM projector_checkpoints
          WHERE projector = $1 AND topic = $2 AND partition = ANY($3)",
    )
    .bind(PROJECTOR)
    .bind(topic)
    .bind(partitions)
    .fetch_all(pool)
    .await;
    match rows {
        Ok(rows) => Ok(rows.into_iter().collect()),
        // The projector creates the read model on its first start; until then nothing is visible yet.
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(UNDEFINED_TABLE) => Ok(HashMap::new()),
        Err(e) => Err(db_error(e)),
    }
}

fn not_yet_consistent(pending: &[(i32, i64)], waited: Duration) -> Problem {
    let mut still = LogPosition::default();
    for (p, o) in pending {
        still.record(*p, *o);
    }
    not_yet(format!(
        "waited {} ms for the read model to reach {still}; retry the request with the same token",
        waited.as_millis()
    ))
    .with("pending", still.to_string())
}

/// The one "not there yet" answer of every read-your-writes wait: 503, so clients retry.
pub(crate) fn not_yet(detail: String) -> Problem {
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "not-yet-consistent",
        "The read model has not caught up with your writes yet",
    )
    .detail(detail)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn uri(s: &str) -> Uri {
        s.parse().unwrap()
    }

    #[test]
    fn no_token_means_no_wait() {
        assert_eq!(parse(&HeaderMap::new(), &uri("/x?limit=3")).unwrap(), None);
        assert_eq!(parse(&HeaderMap::new(), &uri("/x")).unwrap(), None);
    }

    #[test]
    fn header_and_query_parameter_are_merged() {
        let mut headers = HeaderMap::new();
        headers.insert(HEADER, HeaderValue::from_static("3:1204,5:77"));
        let got = parse(&headers, &uri("/x?consistency_token=5%3A90%2C7%3A1")).unwrap().unwrap();
        assert_eq!(got.to_string(), "3:1204,5:90,7:1");
    }

    #[test]
    fn bad_tokens_name_where_they_came_from() {
        let mut headers = HeaderMap::new();
        headers.insert(HEADER, HeaderValue::from_static("3-1204"));
        let p = parse(&headers, &uri("/x")).unwrap_err();
        assert_eq!(p.status, 422);
        assert_eq!(p.errors[0].field, "X-Consistency-Token");
        let p = parse(&HeaderMap::new(), &uri("/x?consistency_token=banana")).unwrap_err();
        assert_eq!(p.errors[0].field, "consistency_token");
    }

    #[test]
    fn a_pair_is_reached_only_when_the_checkpoint_has_passed_its_offset() {
        let reached = HashMap::from([(3, 1205), (5, 77)]);
        // 3:1204 is visible (next offset 1205); 5:77 is not (77 itself not yet folded); 9 has no checkpoint.
        assert_eq!(unreached(&[(3, 1204), (5, 77), (9, 0)], &reached), vec![(5, 77), (9, 0)]);
    }

    #[test]
    fn the_timeout_is_a_retryable_problem_naming_what_is_missing() {
        let p = not_yet_consistent(&[(5, 77)], Duration::from_millis(5000));
        assert_eq!(p.status, 503);
        assert!(p.kind.ends_with("/not-yet-consistent"));
        assert_eq!(p.extensions["pending"], "5:77");
    }
}
