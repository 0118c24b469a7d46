//! REST behaviour: evolution rules, config, lookups and Confluent error bodies.

mod common;

use common::{fresh_data_dir, record, Server};
use serde_json::{json, Value};

fn id_of(resp: &(u16, Value)) -> u64 {
    assert_eq!(resp.0, 200, "{resp:?}");
    resp.1["id"].as_u64().unwrap()
}

#[tokio::test]
async fn evolution_follows_backward_semantics() {
    let server = Server::start(&fresh_data_dir("evolution")).await;
    let s = "vtag.tags-vtag.test.Tag";
    let v1 = record(
        "Tag",
        json!([
            {"name": "id", "type": "string"},
            {"name": "label", "type": "string"},
        ]),
    );
    let id1 = id_of(&server.register(s, &v1).await);

    // Whitespace/key order do not make a new schema.
    let reordered: Value = serde_json::from_str(
        r#"{"fields":[{"type":"string","name":"id"},{"name":"label","type":{"type":"string"}}],
            "namespace":"vtag.test","name":"Tag","type":"record"}"#,
    )
    .unwrap();
    assert_eq!(id_of(&server.register(s, &reordered).await), id1);

    // Adding an optional field with a default: new readers fill it in for old data.
    let v2 = record(
        "Tag",
        json!([
            {"name": "id", "type": "string"},
            {"name": "label", "type": "string"},
            {"name": "color", "type": ["null", "string"], "default": null},
        ]),
    );
    let id2 = id_of(&server.register(s, &v2).await);
    assert_ne!(id1, id2);

    // Adding a required field without default: new readers cannot read old data.
    let bad = record(
        "Tag",
        json!([
            {"name": "id", "type": "string"},
            {"name": "label", "type": "string"},
            {"name": "color", "type": ["null", "string"], "default": null},
            {"name": "owner", "type": "string"},
        ]),
    );
    let compat = server
        .post(
            &format!("/compatibility/subjects/{s}/versions/latest"),
            &json!({"schema": bad.to_string()}),
        )
        .await;
    assert_eq!(compat.0, 200);
    assert_eq!(compat.1["is_compatible"], json!(false));
    assert!(!compat.1["messages"].as_array().unwrap().is_empty());
    let (status, body) = server.register(s, &bad).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error_code"], json!(409));
    assert!(
        body["message"].as_str().unwrap().contains("owner"),
        "{body}"
    );
    assert_eq!(
        server.get(&format!("/subjects/{s}/versions")).await,
        (200, json!([1, 2]))
    );

    // Removing a field is BACKWARD-compatible: the new reader just ignores it in old data.
    let v3 = record(
        "Tag",
        json!([
            {"name": "id", "type": "string"},
            {"name": "color", "type": ["null", "string"], "default": null},
        ]),
    );
    let ok = server
        .post(
            &format!("/compatibility/subjects/{s}/versions/latest"),
            &json!({"schema": v3.to_string()}),
        )
        .await;
    assert_eq!(ok, (200, json!({"is_compatible": true})));
    id_of(&server.register(s, &v3).await);
    assert_eq!(
        server.get(&format!("/subjects/{s}/versions")).await,
        (200, json!([1, 2, 3]))
    );

    // ...but not FORWARD-compatible when the field had no default: old readers need it.
    let f = "vtag.tags-vtag.test.Forward";
    assert_eq!(
        server
            .put(
                &format!("/config/{f}"),
                &json!({"compatibility": "FORWARD"})
            )
            .await,
        (200, json!({"compatibility": "FORWARD"}))
    );
    id_of(&server.register(f, &v1).await);
    let without_label = record("Tag", json!([{"name": "id", "type": "string"}]));
    assert_eq!(server.register(f, &without_label).await.0, 409);
    // FORWARD does allow adding a required field (old readers ignore it).
    let with_owner = record(
        "Tag",
        json!([
            {"name": "id", "type": "string"},
            {"name": "label", "type": "string"},
            {"name": "owner", "type": "string"},
        ]),
    );
    id_of(&server.register(f, &with_owner).await);

    // NONE accepts anything that parses.
    let n = "vtag.tags-vtag.test.None";
    server
        .put(&format!("/config/{n}"), &json!({"compatibility": "none"}))
        .await;
    id_of(&server.register(n, &v1).await);
    id_of(&server.register(n, &json!("string")).await);

    server.stop().await;
}

#[tokio::test]
async fn backward_transitive_checks_every_version_not_just_latest() {
    let server = Server::start(&fresh_data_dir("transitive")).await;
    // v1 has `x: string`; v2 drops it; v3 brings `x` back as an int with a default.
    // v3 reads v2 data (x missing → default) but not v1 data (string is not an int).
    let v1 = record(
        "T",
        json!([{"name": "id", "type": "string"}, {"name": "x", "type": "string"}]),
    );
    let v2 = record("T", json!([{"name": "id", "type": "string"}]));
    let v3 = record(
        "T",
        json!([
            {"name": "id", "type": "string"},
            {"name": "x", "type": "int", "default": 0},
        ]),
    );

    // Default global level is BACKWARD_TRANSITIVE.
    assert_eq!(
        server.get("/config").await,
        (200, json!({"compatibilityLevel": "BACKWARD_TRANSITIVE"}))
    );
    let t = "transitive-vtag.test.T";
    id_of(&server.register(t, &v1).await);
    id_of(&server.register(t, &v2).await);
    // Against version 2 alone v3 is fine; against the subject's history it is not.
    let vs2 = server
        .post(
            &format!("/compatibility/subjects/{t}/versions/2"),
            &json!({"schema": v3.to_string()}),
        )
        .await;
    assert_eq!(vs2, (200, json!({"is_compatible": true})));
    let vs1 = server
        .post(
            &format!("/compatibility/subjects/{t}/versions/1"),
            &json!({"schema": v3.to_string()}),
        )
        .await;
    assert_eq!(vs1.1["is_compatible"], json!(false));
    let (status, body) = server.register(t, &v3).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("version 1"),
        "{body}"
    );
    assert_eq!(
        server.get(&format!("/subjects/{t}/versions")).await,
        (200, json!([1, 2]))
    );

    // Under plain BACKWARD only the latest counts, so the same v3 is accepted.
    let b = "plain-vtag.test.T";
    server
        .put(
            &format!("/config/{b}"),
            &json!({"compatibility": "BACKWARD"}),
        )
        .await;
    let ids = [
        id_of(&server.register(b, &v1).await),
        id_of(&server.register(b, &v2).await),
        id_of(&server.register(b, &v3).await),
    ];
    assert_eq!(
        server.get(&format!("/subjects/{b}/versions")).await,
        (200, json!([1, 2, 3]))
    );

    // Ids are global: the same schemas under two subjects share ids.
    let (_, t_v1) = server.get(&format!("/subjects/{t}/versions/1")).await;
    assert_eq!(t_v1["id"].as_u64().unwrap(), ids[0]);

    server.stop().await;
}

#[tokio::test]
async fn lookup_config_and_confluent_error_bodies() {
    let server = Server::start(&fresh_data_dir("errors")).await;
    assert_eq!(server.get("/").await, (200, json!({})));
    assert_eq!(server.get("/health").await.0, 200);

    let s = "lookups-vtag.test.L";
    let v1 = record("L", json!([{"name": "a", "type": "long"}]));
    let id = id_of(&server.register(s, &v1).await);

    // POST /subjects/{subject}: found, schema not found, subject not found.
    let found = server
        .post(
            &format!("/subjects/{s}?deleted=false"),
            &json!({"schema": v1.to_string()}),
        )
        .await;
    assert_eq!(
        found,
        (
            200,
            json!({"subject": s, "version": 1, "id": id, "schema": v1.to_string()})
        )
    );
    let other = record("L", json!([{"name": "b", "type": "long"}]));
    let missing = server
        .post(
            &format!("/subjects/{s}"),
            &json!({"schema": other.to_string()}),
        )
        .await;
    assert_eq!(
        (missing.0, missing.1["error_code"].clone()),
        (404, json!(40403))
    );
    let no_subject = server
        .post("/subjects/nope", &json!({"schema": v1.to_string()}))
        .await;
    assert_eq!(
        (no_subject.0, no_subject.1["error_code"].clone()),
        (404, json!(40401))
    );

    // GET by id / subject / version.
    assert_eq!(
        server.get(&format!("/schemas/ids/{id}?deleted=true")).await,
        (200, json!({"schema": v1.to_string()}))
    );
    let code = |r: (u16, Value)| (r.0, r.1["error_code"].as_u64().unwrap());
    assert_eq!(code(server.get("/schemas/ids/999").await), (404, 40403));
    assert_eq!(
        code(server.get("/subjects/nope/versions").await),
        (404, 40401)
    );
    assert_eq!(
        code(server.get("/subjects/nope/versions/latest").await),
        (404, 40401)
    );
    assert_eq!(
        code(server.get(&format!("/subjects/{s}/versions/7")).await),
        (404, 40402)
    );
    assert_eq!(
        code(server.get(&format!("/subjects/{s}/versions/abc")).await),
        (422, 42202)
    );
    assert_eq!(
        server.get(&format!("/subjects/{s}/versions/-1")).await.1["version"],
        json!(1)
    );

    // Unparsable schemas: not JSON, and JSON that is not Avro.
    for bad in [
        "{\"type\": \"record\", ",
        r#"{"type":"record","name":"X","fields":[{"name":"a","type":"Nope"}]}"#,
    ] {
        let r = server
            .post(&format!("/subjects/{s}/versions"), &json!({"schema": bad}))
            .await;
        assert_eq!(code(r), (422, 42201));
    }
    // Not a JSON body at all.
    let r = reqwest::Client::new()
        .post(server.url(&format!("/subjects/{s}/versions")))
        .body("nonsense")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Plain application/json bodies are accepted too.
    let r = reqwest::Client::new()
        .post(server.url(&format!("/subjects/{s}/versions")))
        .json(&json!({"schema": v1.to_string()}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"id": id}));

    // Config: subject level unset → 40408 unless defaultToGlobal; set; clear; bad level.
    assert_eq!(
        code(server.get(&format!("/config/{s}")).await),
        (404, 40408)
    );
    assert_eq!(
        server
            .get(&format!("/config/{s}?defaultToGlobal=true"))
            .await,
        (200, json!({"compatibilityLevel": "BACKWARD_TRANSITIVE"}))
    );
    assert_eq!(
        server
            .put("/config", &json!({"compatibility": "FULL"}))
            .await,
        (200, json!({"compatibility": "FULL"}))
    );
    assert_eq!(
        server.get("/config").await,
        (200, json!({"compatibilityLevel": "FULL"}))
    );
    server
        .put(&format!("/config/{s}"), &json!({"compatibility": "NONE"}))
        .await;
    assert_eq!(
        server.get(&format!("/config/{s}")).await,
        (200, json!({"compatibilityLevel": "NONE"}))
    );
    assert_eq!(
        code(
            server
                .put("/config", &json!({"compatibility": "SIDEWAYS"}))
                .await
        ),
        (422, 42203)
    );
    let deleted = server
        .send(reqwest::Method::DELETE, &format!("/config/{s}"), &json!({}))
        .await;
    assert_eq!(deleted, (200, json!({"compatibilityLevel": "NONE"})));
    assert_eq!(
        code(server.get(&format!("/config/{s}")).await),
        (404, 40408)
    );

    // Only self-contained AVRO.
    let proto = server
        .post(
            &format!("/subjects/{s}/versions"),
            &json!({"schema": "syntax = \"proto3\";", "schemaType": "PROTOBUF"}),
        )
        .await;
    assert_eq!(code(proto), (422, 42201));

    assert_eq!(code(server.get("/no/such/route").await), (404, 404));
    server.stop().await;
}
