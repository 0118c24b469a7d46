//! The Avro contract: the files in `schemas/avro/` are compiled in, so a binary always encodes with
//! the schema its code was written for, and registered at start-up under TopicRecordNameStrategy
//! (`<topic>-<record full name>`), several event types sharing one topic.

use schema_registry_converter::async_impl::schema_registry::{post_schema, SrSettings};
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::{SchemaType, SuppliedSchema};

pub const NAMESPACE: &str = "vtag.events.resource";
/// Markers of background jobs, written between resource events on the resource topic.
pub const JOB_NAMESPACE: &str = "vtag.events.job";
pub const CONFIG_NAMESPACE: &str = "vtag.events.config";
pub const COST_NAMESPACE: &str = "vtag.events.cost";
pub const COMPLIANCE_NAMESPACE: &str = "vtag.events.compliance";

/// (record name, schema text) for every event type of the `Resource` aggregate.
pub const RESOURCE_EVENT_SCHEMAS: [(&str, &str); 6] = [
    ("ResourceObserved", include_str!("../../schemas/avro/ResourceObserved.avsc")),
    ("NativeTagsChanged", include_str!("../../schemas/avro/NativeTagsChanged.avsc")),
    ("VirtualTagApplied", include_str!("../../schemas/avro/VirtualTagApplied.avsc")),
    ("VirtualTagRemoved", include_str!("../../schemas/avro/VirtualTagRemoved.avsc")),
    ("VirtualTagsDerived", include_str!("../../schemas/avro/VirtualTagsDerived.avsc")),
    ("MonthlyCostChanged", include_str!("../../schemas/avro/MonthlyCostChanged.avsc")),
];

pub const PROGRESS_SCHEMA: (&str, &str) =
    ("RederivationProgressed", include_str!("../../schemas/avro/RederivationProgressed.avsc"));

pub const CONFIG_SCHEMA: (&str, &str) = ("TaggingConfigChanged", include_str!("../../schemas/avro/TaggingConfigChanged.avsc"));

pub const POLICIES_SCHEMA: (&str, &str) =
    ("CompliancePoliciesChanged", include_str!("../../schemas/avro/CompliancePoliciesChanged.avsc"));

/// The compliance-events topic's single-decision records (ADR 0007), as the first evaluators wrote
/// them: still read, no longer written (decisions now travel in `ComplianceDecisionsRecorded`).
pub const COMPLIANCE_EVENT_SCHEMAS: [(&str, &str); 5] = [
    ("ViolationOpened", include_str!("../../schemas/avro/ViolationOpened.avsc")),
    ("ViolationBecameDue", include_str!("../../schemas/avro/ViolationBecameDue.avsc")),
    ("ViolationEscalated", include_str!("../../schemas/avro/ViolationEscalated.avsc")),
    ("ViolationResolved", include_str!("../../schemas/avro/ViolationResolved.avsc")),
    ("ResourceComplianceChanged", include_str!("../../schemas/avro/ResourceComplianceChanged.avsc")),
];

/// Besides the policies: recheck requests, ordered with the policy versions they run under.
pub const RECHECK_SCHEMA: (&str, &str) =
    ("ComplianceRecheckRequested", include_str!("../../schemas/avro/ComplianceRecheckRequested.avsc"));

/// Decisions in batches — packed (what evaluators write now) and plain (what they wrote before) —
/// and the evaluation jobs' progress markers.
pub const COMPLIANCE_JOB_SCHEMAS: [(&str, &str); 3] = [
    ("ComplianceDecisionsPacked", include_str!("../../schemas/avro/ComplianceDecisionsPacked.avsc")),
    ("ComplianceDecisionsRecorded", include_str!("../../schemas/avro/ComplianceDecisionsRecorded.avsc")),
    ("ComplianceJobProgressed", include_str!("../../schemas/avro/ComplianceJobProgressed.avsc")),
];

/// The cost topic's records: the cost ledger's events and split-rule changes.
pub const COST_SCHEMAS: [(&str, &str); 3] = [
    ("CostLinesRecorded", include_str!("../../schemas/avro/CostLinesRecorded.avsc")),
    ("CostPeriodImported", include_str!("../../schemas/avro/CostPeriodImported.avsc")),
    ("CostSplitsChanged", include_str!("../../schemas/avro/CostSplitsChanged.avsc")),
];

/// Which records a topic carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicKind {
    /// Resource events and job markers.
    Resources,
    /// Tagging configuration changes.
    TaggingConfig,
    /// Cost ledger imports.
    Costs,
    /// Compliance policy changes.
    CompliancePolicies,
    /// Compliance evaluators' decisions.
    ComplianceEvents,
}

impl TopicKind {
    fn schemas(self) -> Vec<(&'static str, &'static str, &'static str)> {
        match self {
            Self::Resources => RESOURCE_EVENT_SCHEMAS
                .iter()
                .map(|(r, s)| (NAMESPACE, *r, *s))
                .chain([(JOB_NAMESPACE, PROGRESS_SCHEMA.0, PROGRESS_SCHEMA.1)])
                .collect(),
            Self::TaggingConfig => vec![(CONFIG_NAMESPACE, CONFIG_SCHEMA.0, CONFIG_SCHEMA.1)],
            Self::Costs => COST_SCHEMAS.iter().map(|(r, s)| (COST_NAMESPACE, *r, *s)).collect(),
            Self::CompliancePolicies => [POLICIES_SCHEMA, RECHECK_SCHEMA].iter().map(|(r, s)| (COMPLIANCE_NAMESPACE, *r, *s)).collect(),
            Self::ComplianceEvents => {
                COMPLIANCE_EVENT_SCHEMAS.iter().chain(&COMPLIANCE_JOB_SCHEMAS).map(|(r, s)| (COMPLIANCE_NAMESPACE, *r, *s)).collect()
            }
        }
    }
}

pub fn full_name(record: &str) -> String {
    full_name_in(NAMESPACE, record)
}

pub fn full_name_in(namespace: &str, record: &str) -> String {
    format!("{namespace}.{record}")
}

pub fn subject(topic: &str, record: &str) -> String {
    format!("{topic}-{}", full_name(record))
}

pub fn supplied(record: &str, schema: &str) -> SuppliedSchema {
    supplied_in(NAMESPACE, record, schema)
}

pub fn supplied_in(namespace: &str, record: &str, schema: &str) -> SuppliedSchema {
    SuppliedSchema {
        name: Some(full_name_in(namespace, record)),
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
pub async fn register_all(settings: &SrSettings, topic: &str, kind: TopicKind) -> Result<Vec<(String, u32)>, SRCError> {
    let mut ids = Vec::new();
    for (namespace, record, schema) in kind.schemas() {
        let subject = format!("{topic}-{}", full_name_in(namespace, record));
        let registered = post_schema(settings, subject.clone(), supplied_in(namespace, record, schema)).await?;
        ids.push((subject, registered.id));
    }
    Ok(ids)
}
