//! Domain events ⇄ Kafka record values in Confluent wire format (magic byte, schema id, Avro body),
//! through `schema_registry_converter`. Schemas are looked up by id on decode (cached), so a reader
//! can always read events written with any registered version.

use schema_registry_converter::async_impl::easy_avro::{EasyAvroDecoder, EasyAvroEncoder};
use schema_registry_converter::async_impl::schema_registry::SrSettings;
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::SubjectNameStrategy;
use vtag_domain::{Recorded, ResourceEvent};

use crate::avro_value::{from_value, to_value, InvalidField};
use crate::schemas::{self, NAMESPACE};

/// Why a record could not be turned back into an event. `Poison` is deterministic (the same bytes
/// will fail forever: dead-letter them); `Unavailable` is transient (retry in place).
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("undecodable event: {0}")]
    Poison(String),
    #[error("schema registry unavailable: {0}")]
    Unavailable(String),
}

#[derive(Debug, thiserror::Error)]
#[error("could not encode event: {0}")]
pub struct EncodeError(String);

#[derive(Clone)]
pub struct EventCodec {
    topic: String,
    settings: SrSettings,
    encoder: EasyAvroEncoder,
    decoder: EasyAvroDecoder,
}

impl EventCodec {
    pub fn new(registry_url: &str, topic: impl Into<String>) -> Result<Self, SRCError> {
        let settings = SrSettings::new_builder(registry_url.to_owned())
            .set_timeout(std::time::Duration::from_secs(5))
            .build()?;
        Ok(Self {
            topic: topic.into(),
            encoder: EasyAvroEncoder::new(settings.clone()),
            decoder: EasyAvroDecoder::new(settings.clone()),
            settings,
        })
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Registers the schemas of every event type for this topic (idempotent).
    pub async fn register_schemas(&self) -> Result<Vec<(String, u32)>, SRCError> {
        schemas::register_all(&self.settings, &self.topic).await
    }

    pub async fn encode(&self, recorded: &Recorded<ResourceEvent>) -> Result<Vec<u8>, EncodeError> {
        let strategy = SubjectNameStrategy::TopicRecordNameStrategy(
            self.topic.clone(),
            schemas::full_name(recorded.event.event_type()),
        );
        self.encoder.encode_value(to_value(recorded), &strategy).await.map_err(|e| EncodeError(e.to_string()))
    }

    pub async fn decode(&self, bytes: &[u8]) -> Result<Recorded<ResourceEvent>, DecodeError> {
        let decoded = self.decoder.decode(Some(bytes)).await.map_err(|e| {
            // The converter marks registry I/O failures retriable; malformed bytes and unknown
            // schema ids are not.
            if e.retriable {
                DecodeError::Unavailable(e.to_string())
            } else {
                DecodeError::Poison(e.to_string())
            }
        })?;
        let name = decoded.name.ok_or_else(|| DecodeError::Poison("record has no schema name".into()))?;
        if name.namespace.as_deref() != Some(NAMESPACE) {
            return Err(DecodeError::Poison(format!("not a resource event: {}", name.fullname(None))));
        }
        from_value(&name.name, decoded.value).map_err(|e: InvalidField| DecodeError::Poison(e.to_string()))
    }
}
