use std::collections::BTreeMap;

use crate::tagging::Origin;
use crate::values::{CloudResourceId, Confidence, Provider, ResourceDescription, TagKey, TagSource, TagValue};

/// First sight of a resource, or a change of its descriptive attributes: a full snapshot of what
/// the collector reported, native tags included.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceObserved {
    pub provider: Provider,
    pub cloud_id: CloudResourceId,
    pub description: ResourceDescription,
    pub native_tags: BTreeMap<String, String>,
}

/// Only the native tags moved; carries the complete new set (not a diff) so a consumer never needs
/// the previous event to know the current tags.
#[derive(Debug, Clone, PartialEq)]
pub struct NativeTagsChanged {
    pub native_tags: BTreeMap<String, String>,
}

/// What a key carried before a change, so the audit trail and "why" queries need no look-back.
#[derive(Debug, Clone, PartialEq)]
pub struct PreviousTag {
    pub value: TagValue,
    pub source: TagSource,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VirtualTagApplied {
    pub key: TagKey,
    pub value: TagValue,
    pub source: TagSource,
    pub confidence: Confidence,
    pub previous: Option<PreviousTag>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VirtualTagRemoved {
    pub key: TagKey,
    pub previous: PreviousTag,
}

/// One key's change in a derivation.
#[derive(Debug, Clone, PartialEq)]
pub struct DerivedChange {
    pub key: TagKey,
    /// `None`: nothing derives a value for the key any more, and the derived tag is removed.
    pub value: Option<TagValue>,
    /// `native` or `rule_based` for a new value; for a removal, the source of the removed value.
    pub source: TagSource,
    /// Why the key has its new value (`None` for a removal).
    pub origin: Option<Origin>,
    pub previous: Option<PreviousTag>,
}

/// Derivation (normalized native tags and rules) changed some of a resource's virtual tags. One
/// event per resource and decision, however many keys moved: a rule edit over a million resources
/// writes one event per affected resource, not per tag.
#[derive(Debug, Clone, PartialEq)]
pub struct VirtualTagsDerived {
    /// The tagging configuration version the values were derived under.
    pub rule_set_version: u64,
    pub changes: Vec<DerivedChange>,
}

/// The resource's monthly cost changed: billed cost over the trailing 30 charge days of the
/// latest billing import (scaled to 30 days when fewer are billed), to the cent.
#[derive(Debug, Clone, PartialEq)]
pub struct MonthlyCostChanged {
    pub cents: i64,
    pub currency: String,
    /// The last charge day covered.
    pub as_of: chrono::NaiveDate,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ResourceEvent {
    ResourceObserved(ResourceObserved),
    NativeTagsChanged(NativeTagsChanged),
    VirtualTagApplied(VirtualTagApplied),
    VirtualTagRemoved(VirtualTagRemoved),
    VirtualTagsDerived(VirtualTagsDerived),
    MonthlyCostChanged(MonthlyCostChanged),
}

impl ResourceEvent {
    /// Stable event type names: they are Avro record names and audit actions, never rename.
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::ResourceObserved(_) => "ResourceObserved",
            Self::NativeTagsChanged(_) => "NativeTagsChanged",
            Self::VirtualTagApplied(_) => "VirtualTagApplied",
            Self::VirtualTagRemoved(_) => "VirtualTagRemoved",
            Self::VirtualTagsDerived(_) => "VirtualTagsDerived",
            Self::MonthlyCostChanged(_) => "MonthlyCostChanged",
        }
    }
}
