use std::collections::BTreeMap;

use crate::fingerprint::Fingerprint;
use crate::values::{Confidence, Provider, TagKey, TagSource, TagValue};

#[derive(Debug, Clone, PartialEq)]
pub struct AppliedTag {
    pub value: TagValue,
    pub source: TagSource,
    pub confidence: Confidence,
}

/// What the command side must remember about a resource to decide the next command. Deliberately
/// small (fingerprints instead of full descriptions): the command processor holds one per resource.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResourceState {
    /// 0 until the first event.
    pub version: u64,
    pub provider: Option<Provider>,
    pub description: Fingerprint,
    pub native_tags: Fingerprint,
    pub virtual_tags: BTreeMap<TagKey, AppliedTag>,
}

impl ResourceState {
    pub fn exists(&self) -> bool {
        self.version > 0
    }
}
