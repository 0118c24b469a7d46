//! The tagging engine's pure parts: turning messy native tags into one clean, explainable tag layer.
//!
//! - [`schema`]: canonical keys, their priority, allowed values and aliases; the seed's default.
//! - [`normalize`]: native tags → canonical tags, each with the mapping that produced it.
//! - [`rules`]: ordered business rules (first match per key wins, defaults), validated as a set.
//! - [`derive`]: a resource's derived tags under a tenant's configuration, each with its origin.

pub mod derive;
mod eval;
mod fx;
pub mod normalize;
pub mod rules;
pub mod schema;

pub use derive::{derive, derive_each, rule_hits, DerivedRef, DerivedTag, Origin, OriginRef, ResourceFacts, RuleHit, TaggingConfig};
pub use normalize::{key_form, normalize, value_form, KeyMapping, NormalizedTag, ValueMapping};
pub use rules::{Action, Condition, Facts, Field, Operator, Rule, RuleSet, RuleSetError};
pub use schema::{CanonicalKey, Priority, TagSchema};

#[cfg(test)]
mod tests;
