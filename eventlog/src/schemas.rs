//! The Avro contract: the files in `schemas/avro/` are compiled in, so a binary always encodes with
//! the schema its code was written for, and registered at start-up under TopicRecordNameStrategy
//! (`<topic>-<record full name>`), several event types sharing one topic.

use schema_registry_converter::async_impl::schema_registry::{post_schema, SrSettings};
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::{SchemaType, SuppliedSchema};

pub const NAMESPACE: &str = "vtag.events.resource";

/// (record name, schema text) for every event type of the `Resource` aggregate.
pub const RESOURCE_EVENT_SCHEMAS: [(&str, &str); 4] = [
    ("ResourceObserved", include_str!("../../schemas/avro/ResourceObserved.avsc")),
    ("NativeTagsChanged", include_str!("../../schemas/avro/NativeTagsChanged.avsc")),
    ("VirtualTagApplied", include_str!("../../schemas/avro/VirtualTagApplied.avsc")),
    ("VirtualTagRemoved", include_str!("../../schemas/avro/VirtualTagRemoved.avsc")),
];

pub fn full_name(record: &str) -> String {
    format!("{NAMESPACE}.{record}")
}

pub fn subject(topic: &str, record: &str) -> String {
    format!("{topic}-{}", full_name(record))
}

pub fn supplied(record: &str, schema: &str) -> SuppliedSchema {
    SuppliedSchema {
        name: Some(full_name(record)),
        schema_type: SchemaType::Avro,
        schema: schema.to_owned(),
        references: Vec::new(),
        properties: None,
        tags: None,
    }
}

/// Registers every event schema for `topic`. Registering an unchanged schema is a no-op; a schema
/// the registry finds incompatible (BACKWARD_TRANSITIVE) fails start-up rather than writing events
/// old readers cannot read.
pub async fn register_all(settings: &SrSettings, topic: &str) -> Result<Vec<(String, u32)>, SRCError> {
    let mut ids = Vec::new();
    for (record, schema) in RESOURCE_EVENT_SCHEMAS {
        let subject = subject(topic, record);
        let registered = post_schema(settings, subject.clone(), supplied(record, schema)).await?;
        ids.push((subject, registered.id));
    }
    Ok(ids)
}
