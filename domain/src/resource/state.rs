use std::collections::BTreeMap;
use std::sync::Arc;

use crate::fingerprint::Fingerprint;
use crate::tagging::ResourceFacts;
use crate::values::{Confidence, Provider, TagKey, TagSource, TagValue, TenantId};

#[derive(Debug, Clone, PartialEq)]
pub struct AppliedTag {
    pub value: TagValue,
    pub source: TagSource,
    pub confidence: Confidence,
    /// For rule-based values: the rule that set it (a different rule taking over is a change).
    pub rule_id: Option<String>,
}

/// What the command side must remember about a resource to decide the next command: fingerprints
/// to recognise an unchanged observation, and the facts derivation reads (name, account, type,
/// native tags — not the free-form metadata).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResourceState {
    /// 0 until the first event.
    pub version: u64,
    /// Whose resource it is (its id derives from the tenant; kept so a command naming another
    /// tenant's id finds nothing there).
    pub tenant: Option<TenantId>,
    pub provider: Option<Provider>,
    pub description: Fingerprint,
    pub native_tags: Fingerprint,
    pub virtual_tags: BTreeMap<TagKey, AppliedTag>,
    /// Only billing has described the resource so far (no collector has observed it).
    pub billing_only: bool,
    /// The latest monthly cost a billing import measured: cents, currency, last charge day covered.
    pub monthly_cost: Option<(i64, String, chrono::NaiveDate)>,
    /// What derivation reads (shared: states are cloned per decision).
    pub facts: Option<Arc<ResourceFacts>>,
}

impl ResourceState {
    pub fn exists(&self) -> bool {
        self.version > 0
    }
}
