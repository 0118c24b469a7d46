//! A tenant's compliance policies as one document, in the seed's policy format (Appendix C loads
//! unchanged), JSON or YAML. Like the tagging configuration, every change publishes a complete new
//! version, so replay never merges partial edits and a violation can name the version that judged
//! it; a version either compiles as a whole or is never published.
//!
//! Map:
//! - `document`: the serde types (`format_version: 1`).
//! - `codec`: JSON and YAML in and out.
//! - `edit`: the changes behind the policy endpoints (one policy saved, removed, enabled).
//! - `compile`: document → the domain's [`Policy`](vtag_domain::compliance::Policy) list,
//!   reporting every error at once with its path (and line, from YAML).

mod codec;
mod compile;
mod document;
mod edit;

pub use document::{EscalationDoc, PoliciesDocument, PolicyDoc, RulesDoc, ScopeDoc, ThresholdDoc, ValidationDoc, FORMAT_VERSION};
pub use vtag_documents::DocError;

#[cfg(test)]
mod tests;
