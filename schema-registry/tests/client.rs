//! The real Rust client (`schema_registry_converter`, async + easy Avro) against the registry.

mod common;

use apache_avro::types::Value as Avro;
use apache_avro::Schema;
use common::{fresh_data_dir, Server};
use schema_registry_converter::async_impl::easy_avro::{EasyAvroDecoder, EasyAvroEncoder};
use schema_registry_converter::async_impl::schema_registry::{
    get_schema_by_id, get_schema_by_subject, post_schema, SrSettings,
};
use schema_registry_converter::avro_common::get_supplied_schema;
use schema_registry_converter::schema_registry_common::{
    SchemaType, SubjectNameStrategy, SuppliedSchema,
};
use serde_json::json;

const TOPIC: &str = "vtag.resource-events";
const RECORD: &str = "vtag.events.VirtualTagApplied";
/// TopicRecordNameStrategy: "<topic>-<record fullname>", full of dots and dashes.
const SUBJECT: &str = "vtag.resource-events-vtag.events.VirtualTagApplied";

const V1: &str = r#"{
  "type": "record", "name": "VirtualTagApplied", "namespace": "vtag.events",
  "fields": [
    {"name": "resource_id", "type": "string"},
    {"name": "tag", "type": "string"},
    {"name": "applied_at", "type": {"type": "long", "logicalType": "timestamp-micros"}}
  ]
}"#;

fn supplied(text: &str) -> SuppliedSchema {
    SuppliedSchema {
        name: Some(RECORD.to_owned()),
        schema_type: SchemaType::Avro,
        schema: text.to_owned(),
        references: vec![],
        properties: None,
        tags: None,
    }
}

fn strategy(text: &str) -> SubjectNameStrategy {
    SubjectNameStrategy::TopicRecordNameStrategyWithSchema(TOPIC.to_owned(), supplied(text))
}

#[tokio::test]
async fn converter_registers_encodes_and_decodes() {
    let server = Server::start(&fresh_data_dir("client")).await;
    let sr = SrSettings::new(server.base.clone());

    // Register, then register the same schema again: same id, no new version.
    let first = post_schema(&sr, SUBJECT.to_owned(), supplied(V1))
        .await
        .unwrap();
    let again = post_schema(&sr, SUBJECT.to_owned(), supplied(V1))
        .await
        .unwrap();
    assert_eq!(first.id, again.id);
    // The client's own serialisation of the parsed schema is the same schema, too.
    let reserialised = get_supplied_schema(&Schema::parse_str(V1).unwrap());
    let third = post_schema(&sr, SUBJECT.to_owned(), reserialised)
        .await
        .unwrap();
    assert_eq!(first.id, third.id);
    assert_eq!(
        server.get(&format!("/subjects/{SUBJECT}/versions")).await,
        (200, json!([1]))
    );

    // What the encoder does first: resolve subject → id via the strategy.
    let by_subject = get_schema_by_subject(&sr, &strategy(V1)).await.unwrap();
    assert_eq!(by_subject.id, first.id);
    let by_id = get_schema_by_id(first.id, &sr).await.unwrap();
    assert_eq!(by_id.schema, V1);

    // Encode → Confluent wire format (magic byte + id) → decode.
    let encoder = EasyAvroEncoder::new(SrSettings::new(server.base.clone()));
    let decoder = EasyAvroDecoder::new(SrSettings::new(server.base.clone()));
    let fields = vec![
        ("resource_id", Avro::String("vm-42".to_owned())),
        ("tag", Avro::String("env=prod".to_owned())),
        ("applied_at", Avro::TimestampMicros(1_700_000_000_000_000)),
    ];
    let bytes = encoder.encode(fields.clone(), strategy(V1)).await.unwrap();
    assert_eq!(bytes[0], 0, "Confluent magic byte");
    assert_eq!(
        u32::from_be_bytes(bytes[1..5].try_into().unwrap()),
        first.id
    );
    let decoded = decoder.decode(Some(&bytes)).await.unwrap();
    assert_eq!(decoded.name.unwrap().fullname(None), RECORD);
    assert_eq!(
        decoded.value,
        Avro::Record(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    );

    // The subject came through the URL intact, dots and dashes included.
    assert_eq!(server.get("/subjects").await, (200, json!([SUBJECT])));
    let (status, latest) = server
        .get(&format!("/subjects/{SUBJECT}/versions/latest"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        latest,
        json!({"subject": SUBJECT, "version": 1, "id": first.id, "schema": V1})
    );

    // A compatible evolution through the client: optional field with a default.
    let v2 = V1.replace(
        r#"{"name": "tag", "type": "string"},"#,
        r#"{"name": "tag", "type": "string"},
           {"name": "actor", "type": ["null", "string"], "default": null},"#,
    );
    let second = post_schema(&sr, SUBJECT.to_owned(), supplied(&v2))
        .await
        .unwrap();
    assert_ne!(second.id, first.id);
    // The encoder caches schema+id per subject, so a new schema version needs a new encoder
    // (as a producer restarted with the new schema would have).
    let encoder = EasyAvroEncoder::new(SrSettings::new(server.base.clone()));
    let bytes = encoder
        .encode(
            vec![
                ("resource_id", Avro::String("vm-42".to_owned())),
                ("tag", Avro::String("env=dev".to_owned())),
                (
                    "actor",
                    Avro::Union(1, Box::new(Avro::String("alice".to_owned()))),
                ),
                ("applied_at", Avro::TimestampMicros(1)),
            ],
            strategy(&v2),
        )
        .await
        .unwrap();
    assert_eq!(
        u32::from_be_bytes(bytes[1..5].try_into().unwrap()),
        second.id
    );
    assert!(decoder.decode(Some(&bytes)).await.is_ok());

    // An incompatible one is refused, and the client surfaces the error.
    let v3 = V1.replace(
        r#"{"name": "tag", "type": "string"},"#,
        r#"{"name": "tag", "type": "string"}, {"name": "required", "type": "int"},"#,
    );
    let err = post_schema(&sr, SUBJECT.to_owned(), supplied(&v3))
        .await
        .unwrap_err();
    assert!(!err.retriable, "{err:?}");
    assert!(format!("{err:?}").contains("409"), "{err:?}");
    assert_eq!(
        server.get(&format!("/subjects/{SUBJECT}/versions")).await,
        (200, json!([1, 2]))
    );

    server.stop().await;
}
