use crate::values::TagKey;

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
}
