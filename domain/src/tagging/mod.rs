//! The tagging engine's pure parts (P2, in progress): turning messy native tags into one schema.
//!
//! - [`schema`]: canonical keys, their priority, allowed values and aliases; the seed's default.
//! - [`normalize`]: native tags → canonical tags, each with the mapping that produced it.
//! - [`rules`]: ordered business rules (first match per key wins, defaults) with provenance.

pub mod normalize;
pub mod rules;
pub mod schema;

pub use normalize::{key_form, normalize, value_form, NormalizedTag};
pub use rules::{Action, Condition, Derived, Facts, Field, Operator, Rule, RuleSet};
pub use schema::{CanonicalKey, Priority, TagSchema};

#[cfg(test)]
mod tests;
