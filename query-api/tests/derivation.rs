//! Derived tags against a real Postgres: provenance on current tags, tags as of an instant,
//! explain, the tagging configuration (schema, rules, YAML export, history, X-Config-Version),
//! re-derivation progress, and audit paging across a derivation event's several rows. Rows are
//! inserted the way the projector writes them (see projectors/src/postgres/fold.rs).

mod support;

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use support::{encode, insert_resource, Api, Server, WAIT};
use uuid::Uuid;
use vtag_tagging_config::{ConfigDocument, RuleDoc};

const ARN: &str = "arn:aws:ec2:eu-west-1:123456789012:instance/i-0derived";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn derived_tags_history_and_configuration() {
    support::with_database(scenario).await;
}

/// What the seed wrote, for the assertions.
struct Seed {
    r: Uuid,
    globex_r: Uuid,
    t0: DateTime<Utc>,
    /// Correlation ids of the re-derivations of configuration versions 1 and 2.
    c1: Uuid,
    c2: Uuid,
    /// The (event_id, change_index) of every audit row of `r`, in log order.
    audit: Vec<(Uuid, i32)>,
    v1: ConfigDocument,
    v2: ConfigDocument,
    running_job: Uuid,
    finished_job: Uuid,
}

async fn scenario(url: String, pool: PgPool) {
    let seed = seed(&pool).await;
    let server = Server::start(&url).await;
    let api = &server.api;

    current_tags(api, &seed).await;
    as_of(api, &seed).await;
    explain(api, &seed).await;
    configuration(api, &seed).await;
    config_version(api, &pool).await;
    rederivations(api, &seed).await;
    audit_paging(api, &seed).await;
    graphql(api, &seed).await;
    tokens_are_required(api, &seed).await;

    server.stop().await;
}

fn tags_path(id: Uuid) -> String {
    format!("/api/v1/resources/{id}/virtual-tags")
}

fn explain_path(id: Uuid, key: &str) -> String {
    format!("/api/v1/resources/{id}/virtual-tags/{key}/explain")
}

fn at(seed: &Seed, seconds: i64) -> String {
    encode(&(seed.t0 + chrono::Duration::seconds(seconds)).to_rfc3339())
}

fn keys(body: &Value) -> Vec<&str> {
    body["virtual_tags"].as_array().unwrap().iter().map(|t| t["key"].as_str().unwrap()).collect()
}

fn tag<'a>(body: &'a Value, key: &str) -> &'a Value {
    body["virtual_tags"].as_array().unwrap().iter().find(|t| t["key"] == key).unwrap_or(&Value::Null)
}

async fn current_tags(api: &Api, seed: &Seed) {
    let acme = api.token("acme");
    let (status, body) = api.get(&tags_path(seed.r), Some(&acme)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(keys(&body), ["environment", "owner", "team"]);
    assert_eq!(
        *tag(&body, "team"),
        json!({
            "id": format!("{}:team", seed.r), "key": "team", "value": "data", "source": "rule_based", "confidence": 1.0,
            "created_at": "2025-11-17T10:01:00Z", "updated_at": "2025-11-17T10:03:00Z",
            "created_by": "deriver", "updated_by": "deriver", "version": 4,
            "origin": "rule", "rule_id": "team-by-name", "rule_set_version": 2
        })
    );
    assert_eq!(tag(&body, "environment")["origin"], "native");
    assert_eq!(tag(&body, "environment")["source"], "native");
    // People's values have no provenance, and the native tag itself is never served here.
    let owner = tag(&body, "owner").as_object().unwrap();
    assert!(!owner.contains_key("origin") && !owner.contains_key("rule_id") && !owner.contains_key("rule_set_version"));
    assert!(!body.to_string().contains("PROD"), "native values only appear in explain");
}

async fn as_of(api: &Api, seed: &Seed) {
    let acme = api.token("acme");
    let get = |seconds: i64| {
        let path = format!("{}?as_of={}", tags_path(seed.r), at(seed, seconds));
        let token = acme.clone();
        async move { api.get(&path, Some(&token)).await }
    };

    // Before the resource existed: it exists now, so 200 with nothing.
    let (status, body) = get(-3600).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!((body["virtual_tags"].clone(), body["version"].clone()), (json!([]), json!(0)));
    assert_eq!(body["as_of"], "2025-11-17T09:00:00Z");

    // After the first derivation: three derived values, each with its provenance.
    let (_, body) = get(90).await;
    assert_eq!(keys(&body), ["cost-center", "environment", "team"]);
    assert_eq!(body["version"], 2);
    assert_eq!(tag(&body, "cost-center")["origin"], "default");
    assert_eq!(tag(&body, "team")["value"], "platform");
    assert_eq!(tag(&body, "team")["rule_id"], "team-by-account");
    assert_eq!(tag(&body, "team")["rule_set_version"], 1);

    // After alice's manual tag and the second derivation: cost-center removed, team changed (but
    // created when it was first set).
    let (_, body) = get(210).await;
    assert_eq!(keys(&body), ["environment", "owner", "team"]);
    assert_eq!(tag(&body, "owner")["updated_by"], "alice@example.com");
    assert!(tag(&body, "owner").get("origin").is_none());
    assert_eq!(
        (&tag(&body, "team")["value"], &tag(&body, "team")["created_at"], &tag(&body, "team")["updated_at"]),
        (&json!("data"), &json!("2025-11-17T10:01:00Z"), &json!("2025-11-17T10:03:00Z"))
    );

    // After the removal of owner: absent.
    let (_, body) = get(270).await;
    assert_eq!(keys(&body), ["environment", "team"]);

    // Exactly at an event's recorded time, the event counts (recorded_at <= as_of).
    let (_, body) = get(300).await;
    assert_eq!(tag(&body, "owner")["value"], "bob@example.com");

    // Today: the same tags as the current read, rebuilt from the audit trail alone.
    let (_, now) = api.get(&tags_path(seed.r), Some(&acme)).await;
    let (_, later) = get(86_400).await;
    assert_eq!(later["virtual_tags"], now["virtual_tags"]);
    assert_eq!(tag(&later, "owner")["created_by"], "bob@example.com", "re-created after the removal");

    // Errors: an unparsable instant (422 naming it), an unknown resource (404), another tenant (404).
    let (status, problem) = api.get(&format!("{}?as_of=yesterday", tags_path(seed.r)), Some(&acme)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!((&problem["errors"][0]["field"], &problem["errors"][0]["rule"]), (&json!("as_of"), &json!("rfc3339")));
    let (status, _) = api.get(&format!("{}?as_of={}", tags_path(Uuid::new_v4()), at(seed, 90)), Some(&acme)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let globex = api.token("globex");
    let (status, _) = api.get(&format!("{}?as_of={}", tags_path(seed.r), at(seed, 90)), Some(&globex)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // By cloud id too.
    let (status, body) = api.get(&format!("{}?as_of={}", tags_path_cloud(), at(seed, 90)), Some(&acme)).await;
    assert_eq!((status, body["version"].clone()), (StatusCode::OK, json!(2)));
}

fn tags_path_cloud() -> String {
    format!("/api/v1/resources/{}/virtual-tags", encode(ARN))
}

async fn explain(api: &Api, seed: &Seed) {
    let acme = api.token("acme");

    // A native value: the native tag, how its key and value were mapped, then the event.
    let (status, body) = api.get(&explain_path(seed.r, "environment"), Some(&acme)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let derived_1 = seed.audit[1].0;
    assert_eq!(
        body,
        json!({
            "resource_id": seed.r, "key": "environment", "value": "production", "source": "native", "origin": "native",
            "chain": [
                {"step": "native_tag", "native_key": "Env", "native_value": " PROD "},
                {"step": "key_mapping", "kind": "alias", "from": "Env", "to": "environment"},
                {"step": "value_mapping", "kind": "alias", "from": " PROD ", "to": "production"},
                {"step": "recorded", "event_id": derived_1, "actor": "deriver", "at": "2025-11-17T10:01:00Z",
                 "aggregate_version": 2}
            ],
            "history": [
                {"event_id": derived_1, "change_index": 0, "aggregate_version": 2, "action": "VirtualTagsDerived",
                 "old_value": null, "new_value": "production", "source": "native", "origin": "native",
                 "rule_set_version": 1, "native_key": "Env", "native_value": " PROD ", "key_mapping": "alias",
                 "value_mapping": "alias", "actor": "deriver", "at": "2025-11-17T10:01:00Z"}
            ]
        })
    );

    // A rule value: the rule as the version that derived it has it; history newest first.
    let (_, body) = api.get(&explain_path(seed.r, "team"), Some(&acme)).await;
    let team_by_name = serde_json::to_value(&seed.v2.rules[0]).unwrap();
    assert_eq!(
        body["chain"][0],
        json!({"step": "rule", "rule_id": "team-by-name", "rule_set_version": 2, "rule": team_by_name})
    );
    assert_eq!(body["chain"][1]["step"], "recorded");
    let history: Vec<(Value, Value)> =
        body["history"].as_array().unwrap().iter().map(|c| (c["old_value"].clone(), c["new_value"].clone())).collect();
    assert_eq!(history, [(json!("platform"), json!("data")), (Value::Null, json!("platform"))]);

    // As of before the second derivation: the first rule, from version 1's document.
    let (_, body) = api.get(&format!("{}?as_of={}", explain_path(seed.r, "team"), at(seed, 90)), Some(&acme)).await;
    assert_eq!(body["chain"][0]["rule"], serde_json::to_value(&seed.v1.rules[0]).unwrap());
    assert_eq!(body["as_of"], "2025-11-17T10:01:30Z");
    assert_eq!(body["history"].as_array().unwrap().len(), 1, "history stops at as_of");

    // A default, as of when it existed; gone now.
    let (_, body) =
        api.get(&format!("{}?as_of={}", explain_path(seed.r, "cost-center"), at(seed, 90)), Some(&acme)).await;
    assert_eq!(body["chain"][0], json!({"step": "default", "rule_set_version": 1}));
    let (status, problem) = api.get(&explain_path(seed.r, "cost-center"), Some(&acme)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");

    // A person's value: who set it, and the removal and re-creation in the history.
    let (_, body) = api.get(&format!("{}?history=2", explain_path(seed.r, "owner")), Some(&acme)).await;
    assert_eq!(
        body["chain"][0],
        json!({"step": "set_by", "actor": "bob@example.com", "source": "manual", "at": "2025-11-17T10:05:00Z"})
    );
    assert!(body.get("origin").is_none());
    let actions: Vec<&str> =
        body["history"].as_array().unwrap().iter().map(|c| c["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["VirtualTagApplied", "VirtualTagRemoved"]);

    // Errors and tenancy.
    for (path, status, field) in [
        (explain_path(seed.r, "missing"), StatusCode::NOT_FOUND, None),
        (explain_path(Uuid::new_v4(), "team"), StatusCode::NOT_FOUND, None),
        (explain_path(seed.r, "bad%20key"), StatusCode::UNPROCESSABLE_ENTITY, Some("key")),
        (format!("{}?history=21", explain_path(seed.r, "team")), StatusCode::UNPROCESSABLE_ENTITY, Some("history")),
        (format!("{}?as_of=soon", explain_path(seed.r, "team")), StatusCode::UNPROCESSABLE_ENTITY, Some("as_of")),
    ] {
        let (got, problem) = api.get(&path, Some(&acme)).await;
        assert_eq!(got, status, "{path}: {problem}");
        if let Some(field) = field {
            assert_eq!(problem["errors"][0]["field"], field, "{path}");
        }
    }
    let (status, _) = api.get(&explain_path(seed.r, "team"), Some(&api.token("globex"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn configuration(api: &Api, seed: &Seed) {
    let acme = api.token("acme");
    let globex = api.token("globex");
    let initial = ConfigDocument::initial();

    // The schema: the latest version's, or the initial one for a tenant that never published.
    let (status, body) = api.get("/api/v1/tag-schema", Some(&acme)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["version"], 2);
    assert_eq!(body["keys"], serde_json::to_value(&seed.v2.schema).unwrap()["keys"]);
    let (_, body) = api.get("/api/v1/tag-schema", Some(&globex)).await;
    assert_eq!(body["version"], 0);
    assert_eq!(body["keys"], serde_json::to_value(&initial.schema).unwrap()["keys"]);

    // Rules and defaults as JSON.
    let (_, body) = api.get("/api/v1/rules", Some(&acme)).await;
    assert_eq!(body, json!({"version": 2, "rules": serde_json::to_value(&seed.v2.rules).unwrap(), "defaults": {}}));
    let (_, body) = api.get("/api/v1/rules", Some(&globex)).await;
    assert_eq!(body, json!({"version": 0, "rules": [], "defaults": {}}));

    // The GitOps export: the whole document as YAML, by parameter or by Accept; it reads back equal.
    for (path, headers) in
        [("/api/v1/rules?format=yaml", vec![]), ("/api/v1/rules", vec![("accept", "application/yaml")])]
    {
        let (status, h, text) = api.get_with(path, Some(&acme), &headers).await;
        assert_eq!(status, StatusCode::OK, "{path}: {text}");
        assert_eq!(h["content-type"], "application/yaml");
        assert_eq!(ConfigDocument::from_yaml(&text).unwrap(), seed.v2, "{text}");
    }
    let (status, problem) = api.get("/api/v1/rules?format=xml", Some(&acme)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["errors"][0]["field"], "format");

    // The whole document with its version as ETag; a matching If-None-Match is a 304.
    let (status, h, text) = api.get_with("/api/v1/tagging-config", Some(&acme), &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h["etag"], "\"2\"");
    assert_eq!(ConfigDocument::from_json(text.as_bytes()).unwrap(), seed.v2);
    let (status, h, text) = api.get_with("/api/v1/tagging-config", Some(&acme), &[("if-none-match", "\"2\"")]).await;
    assert_eq!((status, h["etag"].to_str().unwrap(), text.as_str()), (StatusCode::NOT_MODIFIED, "\"2\"", ""));
    let (_, h, text) = api.get_with("/api/v1/tagging-config?format=yaml", Some(&globex), &[]).await;
    assert_eq!(h["etag"], "\"0\"");
    assert_eq!(ConfigDocument::from_yaml(&text).unwrap(), initial);

    // History: newest first, no documents, paged.
    let (_, page) = api.get("/api/v1/tagging-config/history?limit=1", Some(&acme)).await;
    assert_eq!(
        page["items"],
        json!([{"version": 2, "change": "team by name; no cost-center default", "change_kind": "replace",
                "rule_ids": ["team-by-name"], "actor": "admin@example.com", "event_id": page["items"][0]["event_id"],
                "recorded_at": "2025-11-17T10:02:30Z"}])
    );
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let (_, page) = api.get(&format!("/api/v1/tagging-config/history?limit=1&cursor={cursor}"), Some(&acme)).await;
    assert_eq!(page["items"][0]["version"], 1);
    assert_eq!(page["next_cursor"], Value::Null);
    let (_, page) = api.get("/api/v1/tagging-config/history", Some(&globex)).await;
    assert_eq!(page, json!({"items": [], "next_cursor": null}));
    for (query, field) in [("limit=201", "limit"), ("limit=0", "limit"), ("cursor=abc", "cursor")] {
        let (status, problem) = api.get(&format!("/api/v1/tagging-config/history?{query}"), Some(&acme)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert_eq!(problem["errors"][0]["field"], field, "{query}");
    }
}

async fn config_version(api: &Api, pool: &PgPool) {
    let acme = api.token("acme");
    let globex = api.token("globex");
    let wanting = |v: &'static str| [("x-config-version", v)];

    // Already there: no wait.
    let (status, _, _) = api.get_with("/api/v1/tag-schema", Some(&acme), &wanting("2")).await;
    assert_eq!(status, StatusCode::OK);

    // Not yet: version 1 of globex arrives after 200 ms; the answer waits for it and shows it.
    let started = Instant::now();
    let publish = {
        let pool = pool.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            insert_config(&pool, "globex", 1, &ConfigDocument::initial(), "first", &[], Utc::now()).await;
        })
    };
    let (status, _, text) = api.get_with("/api/v1/rules", Some(&globex), &wanting("1")).await;
    publish.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(started.elapsed() >= Duration::from_millis(200), "answered before the version existed");
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap()["version"], 1);

    // Never within the bound: the same 503 as the consistency token; one tenant's version is not
    // another's.
    for (path, token) in [("/api/v1/tagging-config", &acme), ("/api/v1/tagging-config/history", &globex)] {
        let started = Instant::now();
        let (status, h, text) = api.get_with(path, Some(token), &wanting("3")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert!(started.elapsed() >= WAIT);
        assert!(h.contains_key("retry-after"));
        let problem: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(problem["type"], "https://vtag.dev/problems/not-yet-consistent");
        assert_eq!(problem["config_version"], 3);
    }
    let (status, _, text) = api.get_with("/api/v1/tag-schema", Some(&acme), &wanting("two")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(text.contains("X-Config-Version"), "{text}");
}

async fn rederivations(api: &Api, seed: &Seed) {
    let acme = api.token("acme");
    let path = |id: Uuid| format!("/api/v1/rederivations/{id}");

    let (status, job) = api.get(&path(seed.running_job), Some(&acme)).await;
    assert_eq!(status, StatusCode::OK, "{job}");
    assert_eq!(
        job,
        json!({
            "job_id": seed.running_job, "rule_set_version": 2, "partitions": 3, "partitions_done": 2,
            "processed": 25, "total": 30, "changed": 7, "done": false, "percent": 83.3,
            "started_by": "admin@example.com", "updated_at": "2025-11-17T10:03:02Z",
            "per_partition": [
                {"partition": 0, "processed": 10, "total": 10, "changed": 3, "done": true, "updated_at": "2025-11-17T10:03:00Z"},
                {"partition": 1, "processed": 10, "total": 10, "changed": 2, "done": true, "updated_at": "2025-11-17T10:03:01Z"},
                {"partition": 2, "processed": 5, "total": 10, "changed": 2, "done": false, "updated_at": "2025-11-17T10:03:02Z"}
            ]
        })
    );
    let (_, job) = api.get(&path(seed.finished_job), Some(&acme)).await;
    assert_eq!((&job["done"], &job["percent"], &job["partitions_done"]), (&json!(true), &json!(100.0), &json!(2)));

    let (status, _) = api.get(&path(seed.running_job), Some(&api.token("globex"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another tenant's job is unknown");
    let (status, _) = api.get(&path(Uuid::new_v4()), Some(&acme)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, problem) = api.get("/api/v1/rederivations/job-1", Some(&acme)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["errors"][0]["field"], "job_id");
}

async fn audit_paging(api: &Api, seed: &Seed) {
    let acme = api.token("acme");

    // Pages of 2 end inside the 3-row and the 2-row derivation events: every row exactly once, in
    // (recorded_at, event_id, change_index) order, both ways.
    for order in ["asc", "desc"] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut url = format!("/api/v1/audit-trail?resource_id={}&limit=2&order={order}", seed.r);
            if let Some(c) = &cursor {
                url.push_str(&format!("&cursor={c}"));
            }
            let (status, page) = api.get(&url, Some(&acme)).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            for item in page["items"].as_array().unwrap() {
                seen.push((
                    item["event_id"].as_str().unwrap().parse::<Uuid>().unwrap(),
                    item["change_index"].as_i64().unwrap() as i32,
                ));
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        let mut expected = seed.audit.clone();
        if order == "desc" {
            expected.reverse();
        }
        assert_eq!(seen, expected, "{order}");
    }

    // Provenance on the rows, nulls left out.
    let (_, page) =
        api.get(&format!("/api/v1/audit-trail?resource_id={}&order=asc&limit=3", seed.r), Some(&acme)).await;
    let native = &page["items"][1];
    assert_eq!(
        (&native["change_index"], &native["origin"], &native["native_key"], &native["key_mapping"]),
        (&json!(0), &json!("native"), &json!("Env"), &json!("alias"))
    );
    assert_eq!(page["items"][2]["rule_id"], "team-by-account");
    assert!(page["items"][0].get("origin").is_none(), "{}", page["items"][0]);

    // Everything a configuration change caused.
    let (_, page) = api.get(&format!("/api/v1/audit-trail?correlation_id={}", seed.c2), Some(&acme)).await;
    let changes: Vec<(&str, &Value)> =
        page["items"].as_array().unwrap().iter().map(|i| (i["tag_key"].as_str().unwrap(), &i["new_value"])).collect();
    // Newest first, so the event's later change comes first.
    assert_eq!(changes, [("cost-center", &Value::Null), ("team", &json!("data"))]);
    let (_, page) = api.get(&format!("/api/v1/audit-trail?correlation_id={}", seed.c1), Some(&acme)).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 3);
    let (_, page) =
        api.get(&format!("/api/v1/audit-trail?correlation_id={}", seed.c1), Some(&api.token("globex"))).await;
    let theirs: Vec<&Value> = page["items"].as_array().unwrap().iter().map(|i| &i["new_value"]).collect();
    assert_eq!(theirs, [&json!("theirs")], "each tenant sees only its own rows of a correlation id");
    let (status, problem) = api.get("/api/v1/audit-trail?correlation_id=cmd-1", Some(&acme)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["errors"][0]["field"], "correlation_id");
}

async fn graphql(api: &Api, seed: &Seed) {
    let acme = api.token("acme");
    let query = format!(
        r#"{{
          resource(id: "{r}") {{
            virtualTags {{ key source origin ruleId ruleSetVersion }}
            then: virtualTags(asOf: "2025-11-17T10:01:30Z") {{ key value origin }}
            before: virtualTags(asOf: "2025-11-17T09:00:00Z") {{ key }}
            explain(key: "team") 
          }}
          auditTrail(correlationId: "{c1}", order: ASC) {{ items {{ changeIndex tagKey origin ruleId ruleSetVersion }} }}
        }}"#,
        r = seed.r,
        c1 = seed.c1
    );
    let (status, body) = api.graphql(&query, Some(&acme)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.get("errors").is_none(), "{body}");
    let r = &body["data"]["resource"];
    assert_eq!(
        r["virtualTags"],
        json!([
            {"key": "environment", "source": "NATIVE", "origin": "NATIVE", "ruleId": null, "ruleSetVersion": 1},
            {"key": "owner", "source": "MANUAL", "origin": null, "ruleId": null, "ruleSetVersion": null},
            {"key": "team", "source": "RULE_BASED", "origin": "RULE", "ruleId": "team-by-name", "ruleSetVersion": 2}
        ])
    );
    assert_eq!(
        r["then"],
        json!([
            {"key": "cost-center", "value": "shared", "origin": "DEFAULT"},
            {"key": "environment", "value": "production", "origin": "NATIVE"},
            {"key": "team", "value": "platform", "origin": "RULE"}
        ])
    );
    assert_eq!(r["before"], json!([]));
    assert_eq!(r["explain"]["chain"][0]["rule_id"], "team-by-name");
    let (_, rest) = api.get(&explain_path(seed.r, "team"), Some(&acme)).await;
    assert_eq!(r["explain"], rest, "GraphQL explains like REST");
    assert_eq!(
        body["data"]["auditTrail"]["items"],
        json!([
            {"changeIndex": 0, "tagKey": "environment", "origin": "NATIVE", "ruleId": null, "ruleSetVersion": 1},
            {"changeIndex": 1, "tagKey": "team", "origin": "RULE", "ruleId": "team-by-account", "ruleSetVersion": 1},
            {"changeIndex": 2, "tagKey": "cost-center", "origin": "DEFAULT", "ruleId": null, "ruleSetVersion": 1}
        ])
    );

    // Another tenant sees nothing of it.
    let (_, body) =
        api.graphql(&format!(r#"{{ resource(id: "{}") {{ id }} }}"#, seed.r), Some(&api.token("globex"))).await;
    assert_eq!(body["data"]["resource"], Value::Null);
    let (_, body) = api
        .graphql(&format!(r#"{{ resource(id: "{}") {{ explain(key: "environment") }} }}"#, seed.globex_r), Some(&acme))
        .await;
    assert_eq!(body["data"]["resource"], Value::Null);
}

async fn tokens_are_required(api: &Api, seed: &Seed) {
    for path in [
        format!("{}?as_of={}", tags_path(seed.r), at(seed, 90)),
        explain_path(seed.r, "team"),
        "/api/v1/tag-schema".to_owned(),
        "/api/v1/rules".to_owned(),
        "/api/v1/rules?format=yaml".to_owned(),
        "/api/v1/tagging-config".to_owned(),
        "/api/v1/tagging-config/history".to_owned(),
        format!("/api/v1/rederivations/{}", seed.running_job),
        format!("/api/v1/audit-trail?correlation_id={}", seed.c1),
    ] {
        let (status, h, _) = api.get_with(&path, None, &[]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(h["content-type"], "application/problem+json", "{path}");
        // The token is checked before anything else, even a wait the client asked for.
        let (status, _, _) = api.get_with(&path, Some("not-a-jwt"), &[("x-config-version", "99")]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
}

// ---------------------------------------------------------------------------------------- seed

/// Resource `r` of acme, in log order (t0 = 2025-11-17T10:00:00Z):
/// - v1 t0: observed.
/// - configuration 1 at t0+30s: rule team-by-account, default cost-center=shared.
/// - v2 t0+60s: derivation (correlation c1): environment=production (native, from Env=" PROD "),
///   team=platform (rule team-by-account), cost-center=shared (default).
/// - v3 t0+120s: alice sets owner=alice@example.com (manual).
/// - configuration 2 at t0+150s: rule team-by-name, no default.
/// - v4 t0+180s: derivation (correlation c2): team platform → data, cost-center removed.
/// - v5 t0+240s: owner removed. v6 t0+300s: bob sets owner=bob@example.com.
async fn seed(pool: &PgPool) -> Seed {
    let t0 = Utc.with_ymd_and_hms(2025, 11, 17, 10, 0, 0).unwrap();
    let s = |n: i64| t0 + chrono::Duration::seconds(n);
    let r = Uuid::new_v4();
    let globex_r = Uuid::new_v4();
    insert_resource(pool, "acme", r, "aws", ARN, "data-pipeline-prod", 6, t0).await;
    insert_resource(pool, "globex", globex_r, "aws", ARN, "theirs", 1, t0).await;

    let v1 = config(
        vec![rule("team-by-account", "platform")],
        [("cost-center".to_owned(), "shared".to_owned())].into(),
        false,
    );
    let v2 = config(vec![rule("team-by-name", "data")], Default::default(), true);
    insert_config(pool, "acme", 1, &v1, "team by account; cost-center default", &["team-by-account"], s(30)).await;
    insert_config(pool, "acme", 2, &v2, "team by name; no cost-center default", &["team-by-name"], s(150)).await;

    let (c1, c2) = (Uuid::new_v4(), Uuid::new_v4());
    let native = Prov { origin: "native", rule_id: None, native: Some(("Env", " PROD ")), version: 1 };
    let by_account = Prov { origin: "rule", rule_id: Some("team-by-account"), native: None, version: 1 };
    let default = Prov { origin: "default", rule_id: None, native: None, version: 1 };
    let by_name = Prov { origin: "rule", rule_id: Some("team-by-name"), native: None, version: 2 };

    let mut audit = Vec::new();
    let event = |version: i64, at: DateTime<Utc>, correlation: Option<Uuid>, actor: &'static str| Event {
        id: Uuid::now_v7(),
        version,
        at,
        correlation: correlation.unwrap_or_else(Uuid::new_v4),
        actor,
    };
    let e1 = event(1, t0, None, "collector");
    audit.push(e1.row(pool, "acme", r, 0, "ResourceObserved", None, None, None, None).await);
    let e2 = event(2, s(60), Some(c1), "deriver");
    let derived = "VirtualTagsDerived";
    audit.push(e2.row(pool, "acme", r, 0, derived, Some("environment"), None, Some("production"), Some(&native)).await);
    audit.push(e2.row(pool, "acme", r, 1, derived, Some("team"), None, Some("platform"), Some(&by_account)).await);
    audit.push(e2.row(pool, "acme", r, 2, derived, Some("cost-center"), None, Some("shared"), Some(&default)).await);
    let e3 = event(3, s(120), None, "alice@example.com");
    audit.push(
        e3.row(pool, "acme", r, 0, "VirtualTagApplied", Some("owner"), None, Some("alice@example.com"), None).await,
    );
    let e4 = event(4, s(180), Some(c2), "deriver");
    audit.push(e4.row(pool, "acme", r, 0, derived, Some("team"), Some("platform"), Some("data"), Some(&by_name)).await);
    audit.push(e4.row(pool, "acme", r, 1, derived, Some("cost-center"), Some("shared"), None, Some(&default)).await);
    let e5 = event(5, s(240), None, "alice@example.com");
    audit.push(
        e5.row(pool, "acme", r, 0, "VirtualTagRemoved", Some("owner"), Some("alice@example.com"), None, None).await,
    );
    let e6 = event(6, s(300), None, "bob@example.com");
    audit.push(
        e6.row(pool, "acme", r, 0, "VirtualTagApplied", Some("owner"), None, Some("bob@example.com"), None).await,
    );
    // Another tenant's event with the same correlation id must not leak through the filter.
    let g = event(1, s(60), Some(c1), "deriver");
    g.row(pool, "globex", globex_r, 0, derived, Some("team"), None, Some("theirs"), Some(&by_account)).await;

    // The current tags, as the projector leaves them after v6.
    insert_tag(pool, r, "environment", "production", "native", (&e2, &e2), Some(&native)).await;
    insert_tag(pool, r, "team", "data", "rule_based", (&e2, &e4), Some(&by_name)).await;
    insert_tag(pool, r, "owner", "bob@example.com", "manual", (&e6, &e6), None).await;

    let running_job = Uuid::new_v4();
    let finished_job = Uuid::new_v4();
    for (p, processed, total, changed, done) in [(0, 10, 10, 3, true), (1, 10, 10, 2, true), (2, 5, 10, 2, false)] {
        insert_progress(pool, "acme", running_job, 3, p, processed, total, changed, done, s(180 + i64::from(p))).await;
    }
    for p in 0..2 {
        insert_progress(pool, "acme", finished_job, 2, p, 4, 4, 1, true, s(200)).await;
    }
    Seed { r, globex_r, t0, c1, c2, audit, v1, v2, running_job, finished_job }
}

fn rule(id: &str, team: &str) -> RuleDoc {
    RuleDoc::from_json(
        json!({"id": id, "key": "team", "priority": 10, "description": format!("team {team}"), "set": team})
            .to_string()
            .as_bytes(),
    )
    .unwrap()
}

fn config(
    rules: Vec<RuleDoc>,
    defaults: std::collections::BTreeMap<String, String>,
    extra_alias: bool,
) -> ConfigDocument {
    let mut doc = ConfigDocument::initial();
    doc.rules = rules;
    doc.defaults = defaults;
    if extra_alias {
        let team = doc.schema.keys.iter_mut().find(|k| k.key == "team").unwrap();
        team.aliases.push("owning-team".into());
    }
    doc
}

#[allow(clippy::too_many_arguments)]
async fn insert_config(
    pool: &PgPool,
    tenant: &str,
    version: i64,
    doc: &ConfigDocument,
    change: &str,
    rule_ids: &[&str],
    at: DateTime<Utc>,
) {
    let document: Value = serde_json::from_slice(&doc.to_json()).unwrap();
    sqlx::query(
        "INSERT INTO tagging_configs (tenant, version, document, change, change_kind, rule_ids, actor, event_id, recorded_at)
         VALUES ($1, $2, $3, $4, 'replace', $5, 'admin@example.com', $6, $7)",
    )
    .bind(tenant)
    .bind(version)
    .bind(document)
    .bind(change)
    .bind(rule_ids.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    .bind(Uuid::now_v7())
    .bind(at)
    .execute(pool)
    .await
    .unwrap();
}

/// Provenance of a derived value, as the projector records it.
struct Prov {
    origin: &'static str,
    rule_id: Option<&'static str>,
    native: Option<(&'static str, &'static str)>,
    version: i64,
}

struct Event {
    id: Uuid,
    version: i64,
    at: DateTime<Utc>,
    correlation: Uuid,
    actor: &'static str,
}

impl Event {
    /// One `tag_audit` row of this event; returns its (event_id, change_index).
    #[allow(clippy::too_many_arguments)]
    async fn row(
        &self,
        pool: &PgPool,
        tenant: &str,
        resource: Uuid,
        change_index: i32,
        action: &str,
        key: Option<&str>,
        old: Option<&str>,
        new: Option<&str>,
        prov: Option<&Prov>,
    ) -> (Uuid, i32) {
        let source = match (key, prov.map(|p| p.origin)) {
            (None, _) => None,
            (Some(_), Some("native")) => Some("native"),
            (Some(_), Some(_)) => Some("rule_based"),
            (Some(_), None) => Some("manual"),
        };
        sqlx::query(
            "INSERT INTO tag_audit (event_id, change_index, tenant, resource_id, aggregate_version, action, tag_key,
                                    old_value, new_value, source, confidence, performed_by, causation_id, correlation_id,
                                    occurred_at, recorded_at, log_partition, log_offset, origin, rule_id,
                                    rule_set_version, native_key, native_value, key_mapping, value_mapping)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15, 1, $5, $16, $17, $18, $19,
                     $20, $21, $21)",
        )
        .bind(self.id)
        .bind(change_index)
        .bind(tenant)
        .bind(resource)
        .bind(self.version)
        .bind(action)
        .bind(key)
        .bind(old)
        .bind(new)
        .bind(source)
        .bind(new.map(|_| 1.0))
        .bind(self.actor)
        .bind(self.correlation)
        .bind(self.correlation)
        .bind(self.at)
        .bind(prov.map(|p| p.origin))
        .bind(prov.and_then(|p| p.rule_id))
        .bind(prov.map(|p| p.version))
        .bind(prov.and_then(|p| p.native.map(|n| n.0)))
        .bind(prov.and_then(|p| p.native.map(|n| n.1)))
        .bind(prov.and_then(|p| p.native.map(|_| "alias")))
        .execute(pool)
        .await
        .unwrap();
        (self.id, change_index)
    }
}

/// A `virtual_tags` row created by `events.0` and last set by `events.1`.
async fn insert_tag(
    pool: &PgPool,
    resource: Uuid,
    key: &str,
    value: &str,
    source: &str,
    (created, updated): (&Event, &Event),
    prov: Option<&Prov>,
) {
    sqlx::query(
        "INSERT INTO virtual_tags (tenant, resource_id, tag_key, tag_value, source, confidence, created_by, updated_by,
                                   created_at, updated_at, version, event_id, origin, rule_id, rule_set_version,
                                   native_key, native_value, key_mapping, value_mapping)
         VALUES ('acme', $1, $2, $3, $4, 1.0, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16)",
    )
    .bind(resource)
    .bind(key)
    .bind(value)
    .bind(source)
    .bind(created.actor)
    .bind(updated.actor)
    .bind(created.at)
    .bind(updated.at)
    .bind(updated.version)
    .bind(updated.id)
    .bind(prov.map(|p| p.origin))
    .bind(prov.and_then(|p| p.rule_id))
    .bind(prov.map(|p| p.version))
    .bind(prov.and_then(|p| p.native.map(|n| n.0)))
    .bind(prov.and_then(|p| p.native.map(|n| n.1)))
    .bind(prov.and_then(|p| p.native.map(|_| "alias")))
    .execute(pool)
    .await
    .unwrap();
}

#[allow(clippy::too_many_arguments)]
async fn insert_progress(
    pool: &PgPool,
    tenant: &str,
    job: Uuid,
    partitions: i32,
    partition: i32,
    processed: i64,
    total: i64,
    changed: i64,
    done: bool,
    at: DateTime<Utc>,
) {
    sqlx::query(
        "INSERT INTO rederivation_progress (tenant, job_id, rule_set_version, log_partition, partitions, processed,
                                            total, changed, done, actor, updated_at)
         VALUES ($1, $2, 2, $3, $4, $5, $6, $7, $8, 'admin@example.com', $9)",
    )
    .bind(tenant)
    .bind(job)
    .bind(partition)
    .bind(partitions)
    .bind(processed)
    .bind(total)
    .bind(changed)
    .bind(done)
    .bind(at)
    .execute(pool)
    .await
    .unwrap();
}
