//! The Avro contract is guarded by the registry: an incompatible change to a real event schema is
//! refused (409) under BACKWARD_TRANSITIVE, a compatible one is accepted.

use schema_registry_converter::async_impl::schema_registry::{post_schema, SrSettings};
use vtag_eventlog::schemas::{subject, supplied, RESOURCE_EVENT_SCHEMAS};
use vtag_tests::harness::Stack;

#[tokio::test]
async fn incompatible_event_schema_changes_are_refused() {
    let stack = Stack::from_env();
    let settings = SrSettings::new(stack.registry_url.clone());
    let topic = format!("t{}.resource-events", uuid::Uuid::new_v4().simple());
    let (record, schema) = RESOURCE_EVENT_SCHEMAS[2];
    let original = post_schema(&settings, subject(&topic, record), supplied(record, schema)).await.expect("register v1");

    let mut doc: serde_json::Value = serde_json::from_str(schema).unwrap();
    let fields = doc["fields"].as_array_mut().unwrap();
    fields.push(serde_json::json!({"name": "reviewed_by", "type": "string"}));
    let breaking = doc.to_string();
    let refused = post_schema(&settings, subject(&topic, record), supplied(record, &breaking)).await;
    let err = refused.expect_err("a required field without default breaks old events");
    assert!(err.to_string().contains("409") || err.error.contains("409") || format!("{err:?}").contains("409"), "{err:?}");

    let mut doc: serde_json::Value = serde_json::from_str(schema).unwrap();
    doc["fields"].as_array_mut().unwrap().push(serde_json::json!({"name": "reviewed_by", "type": ["null", "string"], "default": null}));
    let compatible = post_schema(&settings, subject(&topic, record), supplied(record, &doc.to_string())).await.expect("optional field");
    assert_ne!(compatible.id, original.id);

    // Re-registering the unchanged contract is a no-op, never a new version.
    let again = post_schema(&settings, subject(&topic, record), supplied(record, schema)).await.expect("same schema");
    assert_eq!(again.id, original.id);
}
