//! Domain events ⇄ Kafka record values in Confluent wire format (magic byte, schema id, Avro body),
//! through `schema_registry_converter`. Schemas are looked up by id on decode (cached), so a reader
//! can always read events written with any registered version.

use schema_registry_converter::async_impl::avro::AvroDecoder;
use schema_registry_converter::async_impl::easy_avro::EasyAvroEncoder;
use schema_registry_converter::async_impl::schema_registry::{get_schema_by_id, post_schema, SrSettings};
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::SubjectNameStrategy;
use vtag_domain::{Recorded, ResourceEvent};

use crate::avro_value::{from_value, to_value, InvalidField};
use crate::records::{self, ConfigRecord, DocumentKind, LogRecord, ProgressMarker};
use crate::avro_wire::{self, Wire};
use crate::{compliance, cost};
use crate::schemas::{self, TopicKind, COMPLIANCE_NAMESPACE, CONFIG_NAMESPACE, COST_NAMESPACE, JOB_NAMESPACE, NAMESPACE};
use vtag_billing::{CostEvent, CostRecord, CostSplitsChanged};

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
    kind: TopicKind,
    settings: SrSettings,
    encoder: EasyAvroEncoder,
    /// Remembers failed lookups too (an unknown id is not asked again) until told to forget them.
    decoder: std::sync::Arc<AvroDecoder<'static>>,
    lines_schema_id: std::sync::Arc<tokio::sync::OnceCell<u32>>,
    decisions_schema_id: std::sync::Arc<tokio::sync::OnceCell<u32>>,
    /// Writer schema ids of compliance records: whether each is this build's decisions schema.
    decision_ids: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<u32, Option<Direct>>>>,
}

impl EventCodec {
    /// A codec for the resource topic (resource events and job markers).
    pub fn new(registry_url: &str, topic: impl Into<String>) -> Result<Self, SRCError> {
        Self::for_topic(registry_url, topic, TopicKind::Resources)
    }

    /// A codec for the tagging-configuration topic.
    pub fn for_config(registry_url: &str, topic: impl Into<String>) -> Result<Self, SRCError> {
        Self::for_topic(registry_url, topic, TopicKind::TaggingConfig)
    }

    /// A codec for the compliance-policies topic.
    pub fn for_policies(registry_url: &str, topic: impl Into<String>) -> Result<Self, SRCError> {
        Self::for_topic(registry_url, topic, TopicKind::CompliancePolicies)
    }

    /// A codec for the compliance-events topic.
    pub fn for_compliance(registry_url: &str, topic: impl Into<String>) -> Result<Self, SRCError> {
        Self::for_topic(registry_url, topic, TopicKind::ComplianceEvents)
    }

    /// A codec for the cost topic.
    pub fn for_costs(registry_url: &str, topic: impl Into<String>) -> Result<Self, SRCError> {
        Self::for_topic(registry_url, topic, TopicKind::Costs)
    }

    /// Forgets the schema lookups that failed, so that a schema registered since is found (a
    /// projector retrying the events it held behind an unknown schema id).
    pub fn forget_failed_lookups(&self) {
        self.decoder.remove_errors_from_cache();
    }

    fn for_topic(registry_url: &str, topic: impl Into<String>, kind: TopicKind) -> Result<Self, SRCError> {
        let settings = SrSettings::new_builder(registry_url.to_owned())
            .set_timeout(std::time::Duration::from_secs(5))
            .build()?;
        Ok(Self {
            topic: topic.into(),
            kind,
            encoder: EasyAvroEncoder::new(settings.clone()),
            decoder: std::sync::Arc::new(AvroDecoder::new(settings.clone())),
            lines_schema_id: Default::default(),
            decisions_schema_id: Default::default(),
            decision_ids: Default::default(),
            settings,
        })
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Registers the schemas of every event type for this topic (idempotent).
    pub async fn register_schemas(&self) -> Result<Vec<(String, u32)>, SRCError> {
        schemas::register_all(&self.settings, &self.topic, self.kind).await
    }

    pub async fn encode(&self, recorded: &Recorded<ResourceEvent>) -> Result<Vec<u8>, EncodeError> {
        let strategy = SubjectNameStrategy::TopicRecordNameStrategy(
            self.topic.clone(),
            schemas::full_name(recorded.event.event_type()),
        );
        self.encoder.encode_value(to_value(recorded), &strategy).await.map_err(|e| EncodeError(e.to_string()))
    }

    pub async fn encode_progress(&self, marker: &ProgressMarker) -> Result<Vec<u8>, EncodeError> {
        let strategy = SubjectNameStrategy::TopicRecordNameStrategy(
            self.topic.clone(),
            schemas::full_name_in(JOB_NAMESPACE, schemas::PROGRESS_SCHEMA.0),
        );
        let value = records::progress_to_value(marker);
        self.encoder.encode_value(value, &strategy).await.map_err(|e| EncodeError(e.to_string()))
    }

    pub async fn encode_config(&self, record: &ConfigRecord) -> Result<Vec<u8>, EncodeError> {
        let strategy = SubjectNameStrategy::TopicRecordNameStrategy(
            self.topic.clone(),
            schemas::full_name_in(CONFIG_NAMESPACE, schemas::CONFIG_SCHEMA.0),
        );
        let value = records::config_to_value(record, DocumentKind::TAGGING_CONFIG);
        self.encoder.encode_value(value, &strategy).await.map_err(|e| EncodeError(e.to_string()))
    }

    pub async fn encode_cost(&self, event: &CostEvent) -> Result<Vec<u8>, EncodeError> {
        if let CostEvent::Lines(lines) = event {
            // The bulk of an import: written directly (see `avro_wire`).
            let id = self.lines_schema_id().await?;
            let mut wire = Wire::framed(id, 64 + 96 * (lines.resource_lines.len() + lines.pool_lines.len()));
            avro_wire::lines(&mut wire, lines);
            return Ok(wire.into_bytes());
        }
        let (record, value) = cost::to_value(event);
        let strategy =
            SubjectNameStrategy::TopicRecordNameStrategy(self.topic.clone(), schemas::full_name_in(COST_NAMESPACE, record));
        self.encoder.encode_value(value, &strategy).await.map_err(|e| EncodeError(e.to_string()))
    }

    pub async fn encode_splits(&self, record: &CostSplitsChanged) -> Result<Vec<u8>, EncodeError> {
        let strategy =
            SubjectNameStrategy::TopicRecordNameStrategy(self.topic.clone(), schemas::full_name_in(COST_NAMESPACE, cost::SPLITS));
        self.encoder.encode_value(cost::splits_value(record), &strategy).await.map_err(|e| EncodeError(e.to_string()))
    }

    /// The registry id of this build's `CostLinesRecorded` schema (registering it is idempotent
    /// and answers the id), asked once.
    async fn lines_schema_id(&self) -> Result<u32, EncodeError> {
        let text = schemas::COST_SCHEMAS.iter().find(|(r, _)| *r == cost::LINES).expect("CostLinesRecorded is a cost schema").1;
        self.schema_id(&self.lines_schema_id, COST_NAMESPACE, cost::LINES, text).await
    }

    /// A schema's registry id under this topic, asked once per codec (for the records written
    /// directly, without `apache_avro`).
    async fn schema_id(&self, cell: &tokio::sync::OnceCell<u32>, namespace: &str, record: &str, text: &str) -> Result<u32, EncodeError> {
        cell.get_or_try_init(|| async {
            let subject = format!("{}-{}", self.topic, schemas::full_name_in(namespace, record));
            post_schema(&self.settings, subject, schemas::supplied_in(namespace, record, text))
                .await
                .map(|r| r.id)
                .map_err(|e| EncodeError(e.to_string()))
        })
        .await
        .copied()
    }

    /// Decodes a record of the cost topic.
    pub async fn decode_cost(&self, bytes: &[u8]) -> Result<CostRecord, DecodeError> {
        let (namespace, name, value) = self.decode_raw(bytes).await?;
        if namespace.as_deref() != Some(COST_NAMESPACE) {
            return Err(DecodeError::Poison(format!("not a cost record: {name}")));
        }
        cost::from_value(&name, value).map_err(|e| DecodeError::Poison(e.to_string()))
    }

    /// Decodes a record of the resource topic: a resource event or a job marker.
    pub async fn decode(&self, bytes: &[u8]) -> Result<LogRecord, DecodeError> {
        let (namespace, name, value) = self.decode_raw(bytes).await?;
        let poison = |e: InvalidField| DecodeError::Poison(e.to_string());
        match namespace.as_deref() {
            Some(NAMESPACE) => from_value(&name, value).map(LogRecord::Resource).map_err(poison),
            Some(JOB_NAMESPACE) if name == schemas::PROGRESS_SCHEMA.0 => {
                records::progress_from_value(value).map(LogRecord::Progress).map_err(poison)
            }
            _ => Err(DecodeError::Poison(format!("not a resource-topic record: {name}"))),
        }
    }

    /// Decodes a record of the tagging-configuration topic.
    pub async fn decode_config(&self, bytes: &[u8]) -> Result<ConfigRecord, DecodeError> {
        let (namespace, name, value) = self.decode_raw(bytes).await?;
        if namespace.as_deref() != Some(CONFIG_NAMESPACE) || name != schemas::CONFIG_SCHEMA.0 {
            return Err(DecodeError::Poison(format!("not a tagging-configuration record: {name}")));
        }
        records::config_from_value(value, DocumentKind::TAGGING_CONFIG).map_err(|e| DecodeError::Poison(e.to_string()))
    }

    /// Encodes a change of a tenant's compliance policies.
    pub async fn encode_policies(&self, record: &ConfigRecord) -> Result<Vec<u8>, EncodeError> {
        let strategy = SubjectNameStrategy::TopicRecordNameStrategy(
            self.topic.clone(),
            schemas::full_name_in(COMPLIANCE_NAMESPACE, schemas::POLICIES_SCHEMA.0),
        );
        let value = records::config_to_value(record, DocumentKind::COMPLIANCE_POLICIES);
        self.encoder.encode_value(value, &strategy).await.map_err(|e| EncodeError(e.to_string()))
    }

    /// Encodes an evaluation job's progress on one partition.
    pub async fn encode_job_progress(&self, progress: &compliance::JobProgress) -> Result<Vec<u8>, EncodeError> {
        let strategy =
            SubjectNameStrategy::TopicRecordNameStrategy(self.topic.clone(), schemas::full_name_in(COMPLIANCE_NAMESPACE, compliance::PROGRESS));
        self.encoder.encode_value(compliance::progress_to_value(progress), &strategy).await.map_err(|e| EncodeError(e.to_string()))
    }

    /// Encodes a batch of an evaluator's decisions, packed (written directly: see `avro_wire`).
    pub async fn encode_decisions(&self, batch: &compliance::DecisionBatch) -> Result<Vec<u8>, EncodeError> {
        let id = self.schema_id(&self.decisions_schema_id, COMPLIANCE_NAMESPACE, compliance::PACKED, packed_schema_text()).await?;
        let mut wire = Wire::framed(id, 1024 + 48 * batch.decisions.len());
        avro_wire::packed(&mut wire, batch);
        Ok(wire.into_bytes())
    }

    /// Decodes a record of the compliance-events topic: decisions (a batch, packed or plain, or one
    /// decision as the first evaluators wrote them) or a job's progress.
    pub async fn decode_compliance_log(&self, bytes: &[u8]) -> Result<compliance::ComplianceLog, DecodeError> {
        // Batches written with this build's schemas are read directly (they come by the thousand
        // decisions); anything else through the registry's schema and `apache_avro`.
        let poisoned = |e: InvalidField| DecodeError::Poison(e.to_string());
        if let [0, a, b, c, d, body @ ..] = bytes {
            let batch = match self.direct_decisions(u32::from_be_bytes([*a, *b, *c, *d])).await? {
                Some(Direct::Packed) => Some(avro_wire::read_packed(body).map_err(poisoned)?),
                Some(Direct::Plain) => Some(avro_wire::read_decisions(body).map_err(poisoned)?),
                None => None,
            };
            if let Some(batch) = batch {
                return Ok(compliance::ComplianceLog::Decisions(batch.records()));
            }
        }
        let (namespace, name, value) = self.decode_raw(bytes).await?;
        if namespace.as_deref() != Some(COMPLIANCE_NAMESPACE) {
            return Err(DecodeError::Poison(format!("not a compliance record: {name}")));
        }
        match name.as_str() {
            compliance::PROGRESS => compliance::progress_from_value(value).map(compliance::ComplianceLog::Progress).map_err(poisoned),
            compliance::DECISIONS => {
                compliance::batch_from_value(value).map(|b| compliance::ComplianceLog::Decisions(b.records())).map_err(poisoned)
            }
            compliance::PACKED => {
                // Another version of the packed schema: resolved to this build's, then read as ours.
                let ours = &*PACKED_SCHEMA;
                let resolved = value.resolve(ours).map_err(|e| DecodeError::Poison(format!("packed decisions: {e}")))?;
                let body = apache_avro::to_avro_datum(ours, resolved).map_err(|e| DecodeError::Poison(format!("packed decisions: {e}")))?;
                let batch = avro_wire::read_packed(&body).map_err(poisoned)?;
                Ok(compliance::ComplianceLog::Decisions(batch.records()))
            }
            _ => compliance::from_value(&name, value).map(|d| compliance::ComplianceLog::Decisions(vec![d])).map_err(poisoned),
        }
    }

    /// Encodes a recheck request.
    pub async fn encode_recheck(&self, request: &compliance::RecheckRequest) -> Result<Vec<u8>, EncodeError> {
        let strategy =
            SubjectNameStrategy::TopicRecordNameStrategy(self.topic.clone(), schemas::full_name_in(COMPLIANCE_NAMESPACE, compliance::RECHECK));
        self.encoder.encode_value(compliance::recheck_to_value(request), &strategy).await.map_err(|e| EncodeError(e.to_string()))
    }

    /// Whether the writer's schema `id` is one of this build's decision batch schemas, read directly
    /// (looked up once per id, read-only, and compared in canonical form).
    async fn direct_decisions(&self, id: u32) -> Result<Option<Direct>, DecodeError> {
        if let Some(known) = self.decision_ids.lock().expect("not poisoned").get(&id) {
            return Ok(*known);
        }
        let writer = get_schema_by_id(id, &self.settings).await.map_err(|e| {
            if e.retriable {
                DecodeError::Unavailable(e.to_string())
            } else {
                DecodeError::Poison(e.to_string())
            }
        })?;
        static PLAIN: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            let text = schemas::COMPLIANCE_JOB_SCHEMAS.iter().find(|(r, _)| *r == compliance::DECISIONS).expect("a compliance schema").1;
            apache_avro::Schema::parse_str(text).expect("our schema parses").canonical_form()
        });
        static PACKED: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| PACKED_SCHEMA.canonical_form());
        let direct = match apache_avro::Schema::parse_str(&writer.schema).map(|s| s.canonical_form()) {
            Ok(form) if form == *PACKED => Some(Direct::Packed),
            Ok(form) if form == *PLAIN => Some(Direct::Plain),
            _ => None,
        };
        self.decision_ids.lock().expect("not poisoned").insert(id, direct);
        Ok(direct)
    }

    /// Decodes a record of the compliance-policies topic: a policies version or a recheck request.
    pub async fn decode_policies_log(&self, bytes: &[u8]) -> Result<compliance::PoliciesLog, DecodeError> {
        let (namespace, name, value) = self.decode_raw(bytes).await?;
        let poison = |e: InvalidField| DecodeError::Poison(e.to_string());
        match (namespace.as_deref(), name.as_str()) {
            (Some(COMPLIANCE_NAMESPACE), n) if n == schemas::POLICIES_SCHEMA.0 => records::config_from_value(value, DocumentKind::COMPLIANCE_POLICIES)
                .map(compliance::PoliciesLog::Policies)
                .map_err(poison),
            (Some(COMPLIANCE_NAMESPACE), compliance::RECHECK) => {
                compliance::recheck_from_value(value).map(compliance::PoliciesLog::Recheck).map_err(poison)
            }
            _ => Err(DecodeError::Poison(format!("not a compliance-policies record: {name}"))),
        }
    }

    async fn decode_raw(&self, bytes: &[u8]) -> Result<(Option<String>, String, apache_avro::types::Value), DecodeError> {
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
        Ok((name.namespace, name.name, decoded.value))
    }
}

/// Decision batches this build reads without `apache_avro`.
#[derive(Debug, Clone, Copy)]
enum Direct {
    Packed,
    Plain,
}

fn packed_schema_text() -> &'static str {
    schemas::COMPLIANCE_JOB_SCHEMAS.iter().find(|(r, _)| *r == compliance::PACKED).expect("a compliance schema").1
}

static PACKED_SCHEMA: std::sync::LazyLock<apache_avro::Schema> =
    std::sync::LazyLock::new(|| apache_avro::Schema::parse_str(packed_schema_text()).expect("our schema parses"));
