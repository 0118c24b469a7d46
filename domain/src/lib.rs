//! The vtag domain: what a resource is, which commands it accepts and which facts (events) it records.
//!
//! Architecture invariant: this crate performs no I/O and knows nothing of Kafka, Avro, HTTP or SQL.
//! Clocks and ids come in through [`CommandContext`]; everything here is deterministic, so the same
//! commands over the same history always decide the same events (that is what makes replay and
//! re-delivered commands safe).
//!
//! Map:
//! - [`values`]: validated value types (tag keys and values, providers, confidence, …).
//! - [`resource`]: the `Resource` aggregate — commands, events, state, `decide` and `evolve`.
//! - [`envelope`]: the metadata every recorded event carries.
//! - [`compliance`]: policies over the virtual tags, the evaluation of a resource against them and
//!   the violation lifecycle.
//! - [`tagging`]: the tag schema, normalization of native tags and ordered business rules (pure
//!   building blocks of the tagging engine; not wired to the services yet).

pub mod compliance;
pub mod envelope;
pub mod fingerprint;
pub mod resource;
pub mod tagging;
pub mod values;

pub use envelope::{CommandContext, EventEnvelope, Recorded};
pub use resource::{decide, evolve, ResourceCommand, ResourceError, ResourceEvent, ResourceState};
pub use values::*;
