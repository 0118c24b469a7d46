use crate::values::{TagKey, TagSource};

/// A command the aggregate refuses. Each variant says which HTTP status the API maps it to.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ResourceError {
    /// 409 Conflict: the caller decided on a stale read.
    #[error("expected version {expected} but the resource is at version {actual}")]
    VersionConflict { expected: u64, actual: u64 },
    /// 404 Not Found: tags can only be applied to resources vtag has observed.
    #[error("resource has never been observed")]
    UnknownResource,
    /// 404 Not Found: removing a key the resource does not carry.
    #[error("resource carries no virtual tag '{key}'")]
    TagNotPresent { key: TagKey },
    /// 409 Conflict: native and rule-based tags follow their inputs; removing one by hand would be
    /// undone by the next derivation. Change the rule, or apply a manual value instead.
    #[error("'{key}' is derived ({derived_as}); change the rule or tag schema, or apply a manual value to override it")]
    DerivedTag { key: TagKey, derived_as: TagSource },
    /// 422: only people's and models' sources can be applied through commands.
    #[error("source '{0}' is set by derivation only; apply manual, user_confirmed, inferred or ai_suggested")]
    DerivedSource(TagSource),
}
