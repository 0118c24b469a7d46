use chrono::{DateTime, Utc};

use crate::values::{CloudResourceId, Confidence, NativeTags, Provider, ResourceDescription, ResourceId, TagKey, TagSource, TagValue, TenantId};

/// A collector saw a resource (with its native tags) at `observed_at`.
#[derive(Debug, Clone, PartialEq)]
pub struct ObserveResource {
    pub provider: Provider,
    pub cloud_id: CloudResourceId,
    pub description: ResourceDescription,
    pub native_tags: NativeTags,
    pub observed_at: DateTime<Utc>,
}

/// Someone (a person, a rule, a model) sets a virtual tag on a resource.
#[derive(Debug, Clone, PartialEq)]
pub struct ApplyVirtualTag {
    pub key: TagKey,
    pub value: TagValue,
    pub source: TagSource,
    pub confidence: Confidence,
    /// Optimistic concurrency: refuse if the resource has moved on since the caller read it.
    pub expected_version: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RemoveVirtualTag {
    pub key: TagKey,
    pub expected_version: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ResourceCommand {
    Observe(ObserveResource),
    /// A billing export names the resource (FOCUS import). It creates resources no collector has
    /// reported and keeps those up to date; a collector's observation is authoritative for the
    /// resources it sees (its tags are current, billing's are as of a charge day), so for those
    /// this records nothing.
    ObserveFromBilling(ObserveResource),
    ApplyVirtualTag(ApplyVirtualTag),
    RemoveVirtualTag(RemoveVirtualTag),
    /// A billing import measured the resource's monthly cost (rules and policies read it).
    RecordMonthlyCost(RecordMonthlyCost),
    /// Bring derived tags up to the tenant's current tagging configuration (a re-derivation job
    /// sends this to every resource after a rule change; unchanged resources record nothing).
    Rederive,
}

/// The resource's monthly cost as a billing import measured it (see `MonthlyCostChanged`).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordMonthlyCost {
    pub cents: i64,
    pub currency: String,
    pub as_of: chrono::NaiveDate,
}

/// The metadata entry that marks a resource described by billing rather than by a collector.
pub const BILLING_SOURCE: (&str, &str) = ("vtag:source", "billing");

impl ObserveResource {
    pub fn resource_id(&self, tenant: &TenantId) -> ResourceId {
        ResourceId::derive(tenant, self.provider, &self.cloud_id)
    }
}

impl ResourceCommand {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Observe(_) => "ObserveResource",
            Self::ObserveFromBilling(_) => "ObserveFromBilling",
            Self::ApplyVirtualTag(_) => "ApplyVirtualTag",
            Self::RemoveVirtualTag(_) => "RemoveVirtualTag",
            Self::RecordMonthlyCost(_) => "RecordMonthlyCost",
            Self::Rederive => "Rederive",
        }
    }
}
