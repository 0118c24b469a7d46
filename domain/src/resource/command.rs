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
    ApplyVirtualTag(ApplyVirtualTag),
    RemoveVirtualTag(RemoveVirtualTag),
    /// Bring derived tags up to the tenant's current tagging configuration (a re-derivation job
    /// sends this to every resource after a rule change; unchanged resources record nothing).
    Rederive,
}

impl ObserveResource {
    pub fn resource_id(&self, tenant: &TenantId) -> ResourceId {
        ResourceId::derive(tenant, self.provider, &self.cloud_id)
    }
}

impl ResourceCommand {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Observe(_) => "ObserveResource",
            Self::ApplyVirtualTag(_) => "ApplyVirtualTag",
            Self::RemoveVirtualTag(_) => "RemoveVirtualTag",
            Self::Rederive => "Rederive",
        }
    }
}
