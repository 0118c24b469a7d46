//! Inspecting a Postgres read model: progress and a full, comparable snapshot.

use sqlx::PgPool;

/// Sum of the postgres projector's checkpoints: how many records of the log (every topic it reads)
/// it has folded.
pub async fn folded(pool: &PgPool) -> i64 {
    folded_in(pool, None).await
}

/// How many records of `topic` the postgres projector has folded.
pub async fn folded_of(pool: &PgPool, topic: &str) -> i64 {
    folded_in(pool, Some(topic)).await
}

async fn folded_in(pool: &PgPool, topic: Option<&str>) -> i64 {
    sqlx::query_scalar::<_, i64>(
        "SELECT coalesce(sum(next_offset), 0)::int8 FROM projector_checkpoints
          WHERE projector = 'postgres' AND ($1::text IS NULL OR topic = $1)",
    )
    .bind(topic)
    .fetch_one(pool)
    .await
    .unwrap_or(0)
}

/// Every row of the read model's tables, as JSON, in a stable order.
pub async fn snapshot(pool: &PgPool) -> Vec<(String, Vec<serde_json::Value>)> {
    let mut out = Vec::new();
    for (table, order) in [
        ("resources", "tenant, id"),
        ("virtual_tags", "tenant, resource_id, tag_key"),
        ("tag_audit", "event_id, change_index"),
    ] {
        let rows: Vec<serde_json::Value> =
            sqlx::query_scalar(&format!("SELECT to_jsonb(t) FROM {table} t ORDER BY {order}")).fetch_all(pool).await.expect("snapshot");
        out.push((table.to_owned(), rows));
    }
    out
}
