//! The query API against a real Postgres: a fresh database per run, the projector's migrations,
//! rows inserted the way the projector would, and the router on 127.0.0.1:0 (see `support`).
//! Derived tags, history and configurations are covered in `derivation.rs`.

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use support::{encode, insert_resource, rfc, Api, Server, PREFIX, WAIT};
use uuid::Uuid;

const ARN: &str = "arn:aws:ec2:us-east-1:123456789012:instance/i-0abc123";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_read_side_against_postgres() {
    support::with_database(scenario).await;
}

struct Seed {
    acme_r1: Uuid,
    acme_tagless: Uuid,
    globex_r1: Uuid,
    environment_events: Vec<Uuid>,
    base: DateTime<Utc>,
}

async fn scenario(url: String, pool: PgPool) {
    let seed = seed(&pool).await;
    let server = Server::start(&url).await;
    let api = &server.api;

    let health = api.get("/health", None).await;
    assert_eq!(health.0, StatusCode::OK);
    assert_eq!(health.1, json!({"status": "ok"}));

    // The service's own sessions cannot write, whatever a future handler tries.
    let service_pool = vtag_query_api::state::connect(&url).await.unwrap();
    let write = sqlx::query("DELETE FROM resources").execute(&service_pool).await;
    assert!(write.is_err_and(|e| e.to_string().contains("read-only")), "the query API's sessions must be read-only");
    service_pool.close().await;

    resources(api, &seed).await;
    audit_trail(api, &seed).await;
    read_your_writes(api, &pool, &seed).await;
    graphql(api, &seed).await;

    server.stop().await;
}

async fn resources(api: &Api, seed: &Seed) {
    let acme = api.token("acme");
    let globex = api.token("globex");
    let path = |id: &str| format!("/api/v1/resources/{id}/virtual-tags");

    // By vtag UUID: the seed's shape plus our extras, tags sorted by key, UTC with Z.
    let (status, body) = api.get(&path(&seed.acme_r1.to_string()), Some(&acme)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], seed.acme_r1.to_string());
    assert_eq!(body["resource_id"], ARN);
    assert_eq!(body["resource_name"], "web-server-prod-001");
    assert_eq!(body["provider"], "aws");
    assert_eq!(body["resource_type"], "ec2:instance");
    assert_eq!(body["account_id"], "123456789012");
    assert_eq!(body["region"], "us-east-1");
    assert_eq!(body["version"], 7);
    let keys: Vec<&str> = body["virtual_tags"].as_array().unwrap().iter().map(|t| t["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["cost-center", "environment", "team"]);
    let tag = &body["virtual_tags"][1];
    assert_eq!(
        *tag,
        json!({
            "id": format!("{}:environment", seed.acme_r1), "key": "environment", "value": "production",
            "source": "inferred", "confidence": 0.95,
            "created_at": "2025-11-17T10:00:00Z", "updated_at": "2025-11-17T10:00:00.250Z",
            "created_by": "inference:v3", "updated_by": "inference:v3", "version": 2
        })
    );
    assert!(body.get("native_tags").is_none());

    // By URL-encoded ARN: the same resource.
    let (status, by_arn) = api.get(&path(&encode(ARN)), Some(&acme)).await;
    assert_eq!(status, StatusCode::OK, "{by_arn}");
    assert_eq!(by_arn, body);
    let (status, _) = api.get(&format!("{}?provider=aws", path(&encode(ARN))), Some(&acme)).await;
    assert_eq!(status, StatusCode::OK);

    // A resource without tags has an empty list.
    let (status, tagless) = api.get(&path(&seed.acme_tagless.to_string()), Some(&acme)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(tagless["virtual_tags"], json!([]));

    // Tenancy: another tenant's UUID is a 404 exactly like a missing one; the same ARN is theirs.
    let (status, problem) = api.get(&path(&seed.acme_r1.to_string()), Some(&globex)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, missing) = api.get(&path(&Uuid::new_v4().to_string()), Some(&globex)).await;
    assert_eq!(problem, missing);
    let (status, theirs) = api.get(&path(&encode(ARN)), Some(&globex)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(theirs["id"], seed.globex_r1.to_string());
    assert_eq!(theirs["virtual_tags"][0]["value"], "staging");

    // No token / bad token: 401 problem+json.
    let res = api.http.get(format!("{}{}", api.base, path(&seed.acme_r1.to_string()))).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let (status, _) = api.get(&path(&seed.acme_r1.to_string()), Some("not-a-jwt")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // One cloud id, two providers: 409 until the provider is named.
    let (status, problem) = api.get(&path("shared-name"), Some(&acme)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem["providers"], json!(["aws", "gcp"]));
    let (status, gcp) = api.get(&format!("{}?provider=gcp", path("shared-name")), Some(&acme)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(gcp["provider"], "gcp");
    let (status, problem) = api.get(&format!("{}?provider=oracle", path("shared-name")), Some(&acme)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["errors"][0]["field"], "provider");
}

async fn audit_trail(api: &Api, seed: &Seed) {
    let acme = api.token("acme");
    let globex = api.token("globex");

    // 25 rows, 10 a page: 3 pages, no duplicates, no gaps, newest first; then the same ascending.
    for (order, newest_first) in [("desc", true), ("asc", false)] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = Vec::new();
        loop {
            let mut url = format!("/api/v1/audit-trail?key=environment&limit=10&order={order}");
            if let Some(c) = &cursor {
                url.push_str(&format!("&cursor={c}"));
            }
            let (status, page) = api.get(&url, Some(&acme)).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            let items = page["items"].as_array().unwrap();
            pages.push(items.len());
            for item in items {
                seen.push((
                    item["recorded_at"].as_str().unwrap().to_owned(),
                    item["event_id"].as_str().unwrap().parse::<Uuid>().unwrap(),
                ));
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        assert_eq!(pages, [10, 10, 5], "{order}");
        let ids: HashSet<Uuid> = seen.iter().map(|(_, id)| *id).collect();
        assert_eq!(ids.len(), 25, "no duplicates ({order})");
        assert_eq!(ids, seed.environment_events.iter().copied().collect::<HashSet<_>>(), "no gaps ({order})");
        let mut sorted = seen.clone();
        sorted.sort_by_key(|(at, id)| (rfc(at), *id));
        if newest_first {
            sorted.reverse();
        }
        assert_eq!(seen, sorted, "keyset order ({order})");
    }

    // The item shape.
    let (_, page) = api.get("/api/v1/audit-trail?key=environment&limit=1", Some(&acme)).await;
    let item = page["items"][0].as_object().unwrap();
    let mut fields: Vec<&str> = item.keys().map(String::as_str).collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            "action",
            "aggregate_version",
            "causation_id",
            "change_index",
            "confidence",
            "correlation_id",
            "event_id",
            "new_value",
            "occurred_at",
            "old_value",
            "performed_by",
            "recorded_at",
            "resource_id",
            "source",
            "tag_key"
        ]
    );
    assert!(item["recorded_at"].as_str().unwrap().ends_with('Z'));

    // Filters.
    let count = |v: &Value| v["items"].as_array().unwrap().len();
    let (_, all) = api.get(&format!("/api/v1/audit-trail?resource_id={}&limit=1000", seed.acme_r1), Some(&acme)).await;
    assert_eq!(count(&all), 30);
    let (_, alice) = api.get("/api/v1/audit-trail?key=environment&actor=alice%40example.com", Some(&acme)).await;
    assert_eq!(count(&alice), 13);
    let (_, removed) = api.get("/api/v1/audit-trail?action=VirtualTagRemoved", Some(&acme)).await;
    assert_eq!(count(&removed), 5);
    let from = encode(&(seed.base + chrono::Duration::seconds(2)).to_rfc3339());
    let to = encode(&(seed.base + chrono::Duration::seconds(5)).to_rfc3339());
    let (_, window) = api.get(&format!("/api/v1/audit-trail?key=environment&from={from}&to={to}"), Some(&acme)).await;
    assert_eq!(count(&window), 6, "from inclusive, to exclusive");
    let (_, theirs) = api.get("/api/v1/audit-trail?limit=1000", Some(&globex)).await;
    assert_eq!(count(&theirs), 5, "a tenant sees only its own history");
    let (_, nothing) = api.get(&format!("/api/v1/audit-trail?resource_id={}", seed.acme_r1), Some(&globex)).await;
    assert_eq!(count(&nothing), 0);

    // Bad parameters: 422 naming the parameter and the rule.
    for (query, field, rule) in [
        ("limit=0", "limit", "range"),
        ("limit=1001", "limit", "range"),
        ("from=yesterday", "from", "rfc3339"),
        ("cursor=garbage", "cursor", "cursor"),
        ("resource_id=i-123", "resource_id", "uuid"),
        ("order=sideways", "order", "one_of"),
    ] {
        let res =
            api.http.get(format!("{}/api/v1/audit-trail?{query}", api.base)).bearer_auth(&acme).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let problem: Value = res.json().await.unwrap();
        assert_eq!(problem["errors"][0]["field"], field, "{query}");
        assert_eq!(problem["errors"][0]["rule"], rule, "{query}");
    }
}

async fn read_your_writes(api: &Api, pool: &PgPool, seed: &Seed) {
    let acme = api.token("acme");
    let url = format!("{}/api/v1/resources/{}/virtual-tags", api.base, seed.acme_r1);

    // Already visible (checkpoint 1000 > 999): no wait.
    let res = api.http.get(&url).bearer_auth(&acme).header("X-Consistency-Token", "3:999").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // Not yet: the projector moves past offset 1204 after 200 ms; the answer comes after that.
    let started = Instant::now();
    let bump = {
        let pool = pool.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            sqlx::query("UPDATE projector_checkpoints SET next_offset = 1205, updated_at = now() WHERE projector = 'postgres' AND topic = $1 AND partition = 3")
                .bind(format!("{PREFIX}resource-events"))
                .execute(&pool)
                .await
                .unwrap();
        })
    };
    let res = api.http.get(&url).bearer_auth(&acme).header("X-Consistency-Token", "3:1204").send().await.unwrap();
    let waited = started.elapsed();
    bump.await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(waited >= Duration::from_millis(200), "answered after {waited:?}, before the projector got there");
    assert!(waited < WAIT, "answered after {waited:?}: the wait did not notice the checkpoint");

    // The query-parameter form, and GraphQL, honour it too.
    let res = api.http.get(format!("{url}?consistency_token=3%3A1204")).bearer_auth(&acme).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // Never reached within the bound (offset far ahead; a partition with no checkpoint): 503.
    for token in ["3:5000", "3:1,7:0"] {
        let started = Instant::now();
        let res = api.http.get(&url).bearer_auth(&acme).header("X-Consistency-Token", token).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "{token}");
        assert!(started.elapsed() >= WAIT);
        assert!(res.headers().contains_key("retry-after"));
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let problem: Value = res.json().await.unwrap();
        assert_eq!(problem["type"], "https://vtag.dev/problems/not-yet-consistent");
    }
    let res = api
        .http
        .post(format!("{}/graphql", api.base))
        .bearer_auth(&acme)
        .header("X-Consistency-Token", "3:5000")
        .json(&json!({"query": "{ resource(id: \"x\") { id } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);

    // A malformed token is refused, not ignored.
    let res = api.http.get(&url).bearer_auth(&acme).header("X-Consistency-Token", "3-1204").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "X-Consistency-Token");
}

async fn graphql(api: &Api, seed: &Seed) {
    let acme = api.token("acme");
    let globex = api.token("globex");
    let query = format!(
        r#"{{
          byArn: resource(id: "{ARN}") {{ id resourceId name provider type accountId region version
            virtualTags {{ id key value source confidence createdBy updatedBy createdAt updatedAt version }} }}
          byId: resource(id: "{}") {{ id }}
          auditTrail(key: "environment", first: 10) {{ items {{ eventId action source recordedAt }} nextCursor }}
        }}"#,
        seed.acme_r1
    );
    let (status, body) = api.graphql(&query, Some(&acme)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.get("errors").is_none(), "{body}");
    let r = &body["data"]["byArn"];
    assert_eq!(r["id"], seed.acme_r1.to_string());
    assert_eq!(body["data"]["byId"]["id"], seed.acme_r1.to_string());
    assert_eq!(
        (r["resourceId"].as_str(), r["provider"].as_str(), r["type"].as_str()),
        (Some(ARN), Some("AWS"), Some("ec2:instance"))
    );
    assert_eq!(r["version"], 7);
    let sources: Vec<&str> =
        r["virtualTags"].as_array().unwrap().iter().map(|t| t["source"].as_str().unwrap()).collect();
    assert_eq!(sources, ["USER_CONFIRMED", "INFERRED", "RULE_BASED"]);
    assert_eq!(r["virtualTags"][1]["updatedAt"], "2025-11-17T10:00:00.250Z");
    assert_eq!(body["data"]["auditTrail"]["items"].as_array().unwrap().len(), 10);

    // Paging through GraphQL gives the same cursors as REST (same SQL).
    let after = body["data"]["auditTrail"]["nextCursor"].as_str().unwrap();
    let (_, rest_page) = api.get("/api/v1/audit-trail?key=environment&limit=10", Some(&acme)).await;
    assert_eq!(rest_page["next_cursor"], after);

    // Another tenant: null, as for a missing resource.
    let (_, body) = api.graphql(&format!(r#"{{ resource(id: "{}") {{ id }} }}"#, seed.acme_r1), Some(&globex)).await;
    assert_eq!(body["data"]["resource"], Value::Null, "{body}");

    // Validation errors carry the argument name.
    let (_, body) = api.graphql(r#"{ auditTrail(first: 0) { nextCursor } }"#, Some(&acme)).await;
    assert_eq!(body["errors"][0]["extensions"]["errors"][0]["field"], "first", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["status"], 422);

    // Depth is bounded (introspection nests deeply).
    let deep = "{ __schema { types { fields { type { ofType { ofType { ofType { ofType { ofType { ofType { name } } } } } } } } } } }";
    let (_, body) = api.graphql(deep, Some(&acme)).await;
    assert!(body["errors"][0]["message"].as_str().unwrap_or_default().contains("too deep"), "{body}");

    // POST needs a token; the GraphiQL page does not.
    let (status, _) = api.graphql("{ resource(id: \"x\") { id } }", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let res = api.http.get(format!("{}/graphql", api.base)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("graphiql"));
}

// ---------------------------------------------------------------------------------------- seed

async fn seed(pool: &PgPool) -> Seed {
    let t0 = Utc.with_ymd_and_hms(2025, 11, 17, 10, 0, 0).unwrap();
    let acme_r1 = Uuid::new_v4();
    let acme_tagless = Uuid::new_v4();
    let globex_r1 = Uuid::new_v4();
    insert_resource(pool, "acme", acme_r1, "aws", ARN, "web-server-prod-001", 7, t0).await;
    insert_resource(pool, "acme", acme_tagless, "gcp", "projects/p/zones/z/instances/db-1", "db-1", 1, t0).await;
    insert_resource(pool, "acme", Uuid::new_v4(), "aws", "shared-name", "a", 1, t0).await;
    insert_resource(pool, "acme", Uuid::new_v4(), "gcp", "shared-name", "g", 1, t0).await;
    insert_resource(pool, "globex", globex_r1, "aws", ARN, "their-server", 3, t0).await;

    // Inserted out of order: the API sorts.
    let ms250 = t0 + chrono::Duration::milliseconds(250);
    insert_tag(pool, "acme", acme_r1, "team", "platform", "rule_based", 0.9, 5, t0, t0).await;
    insert_tag(pool, "acme", acme_r1, "environment", "production", "inferred", 0.95, 2, t0, ms250).await;
    insert_tag(pool, "acme", acme_r1, "cost-center", "engineering", "user_confirmed", 1.0, 7, t0, t0).await;
    insert_tag(pool, "globex", globex_r1, "environment", "staging", "manual", 1.0, 3, t0, t0).await;

    // 25 environment events, two per second so recorded_at ties and event_id must break them.
    let base = t0 + chrono::Duration::hours(1);
    let mut environment_events = Vec::new();
    for i in 0..25 {
        let actor = if i % 2 == 0 { "alice@example.com" } else { "bob@example.com" };
        let action = if i % 5 == 4 { "VirtualTagRemoved" } else { "VirtualTagApplied" };
        let at = base + chrono::Duration::seconds(i / 2);
        environment_events.push(insert_audit(pool, "acme", acme_r1, i + 1, action, "environment", actor, at).await);
    }
    for i in 0..5 {
        insert_audit(pool, "acme", acme_r1, 100 + i, "VirtualTagApplied", "team", "carol@example.com", base).await;
        insert_audit(pool, "globex", globex_r1, i + 1, "VirtualTagApplied", "environment", "alice@example.com", base)
            .await;
    }

    sqlx::query(
        "INSERT INTO projector_checkpoints (projector, topic, partition, next_offset) VALUES ('postgres', $1, 3, 1000)",
    )
    .bind(format!("{PREFIX}resource-events"))
    .execute(pool)
    .await
    .unwrap();
    Seed { acme_r1, acme_tagless, globex_r1, environment_events, base }
}

#[allow(clippy::too_many_arguments)]
async fn insert_tag(
    pool: &PgPool,
    tenant: &str,
    resource: Uuid,
    key: &str,
    value: &str,
    source: &str,
    confidence: f64,
    version: i64,
    created: DateTime<Utc>,
    updated: DateTime<Utc>,
) {
    let actor = if source == "inferred" { "inference:v3" } else { "alice@example.com" };
    sqlx::query(
        "INSERT INTO virtual_tags (tenant, resource_id, tag_key, tag_value, source, confidence, created_by, updated_by,
                                   created_at, updated_at, version, event_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9, $10, $11)",
    )
    .bind(tenant)
    .bind(resource)
    .bind(key)
    .bind(value)
    .bind(source)
    .bind(confidence)
    .bind(actor)
    .bind(created)
    .bind(updated)
    .bind(version)
    .bind(Uuid::now_v7())
    .execute(pool)
    .await
    .unwrap();
}

#[allow(clippy::too_many_arguments)]
async fn insert_audit(
    pool: &PgPool,
    tenant: &str,
    resource: Uuid,
    version: i64,
    action: &str,
    key: &str,
    actor: &str,
    at: DateTime<Utc>,
) -> Uuid {
    let event_id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO tag_audit (event_id, tenant, resource_id, aggregate_version, action, tag_key, old_value, new_value,
                                source, confidence, performed_by, causation_id, correlation_id, occurred_at, recorded_at,
                                log_partition, log_offset)
         VALUES ($1, $2, $3, $4, $5, $6, NULL, 'production', 'manual', 1.0, $7, $8, $8, $9, $9, 3, $4)",
    )
    .bind(event_id)
    .bind(tenant)
    .bind(resource)
    .bind(version)
    .bind(action)
    .bind(key)
    .bind(actor)
    .bind(Uuid::new_v4())
    .bind(at)
    .execute(pool)
    .await
    .unwrap();
    event_id
}
