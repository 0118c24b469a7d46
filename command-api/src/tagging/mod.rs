//! Tenants' tagging configurations on the command side: every instance keeps all of them in memory
//! (tailing the `tagging-config` topic), derives with them in every decision, and one instance — the
//! holder of resource partition 0's lease — writes configuration changes.
//!
//! - [`registry`]: the current configuration of each tenant, compiled, and change notifications.
//! - [`tail`]: follows the configuration topic into the registry.
//! - [`publish`]: decides and appends configuration changes (the single writer).

pub mod publish;
pub mod registry;
pub mod tail;

pub use publish::{ConfigChange, ConfigOutcome, PublishError};
pub use registry::{ConfigRegistry, TenantConfig};
