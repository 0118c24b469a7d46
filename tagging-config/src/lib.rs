//! A tenant's tagging configuration — tag schema, mappings, rules and per-key defaults — as one
//! document.
//!
//! Why one document rather than rows per rule and mapping:
//! - **GitOps.** Teams keep their tagging policy in a repository as one YAML file, review it in
//!   pull requests and import it; exporting gives the same file back. Errors point at the file's
//!   lines, because that is what people fix.
//! - **One event carries the whole configuration.** Every change, from a whole import to one rule
//!   toggled through the REST API, publishes a complete new version, stored verbatim as JSON in the
//!   configuration event. Replaying the log never has to merge partial changes, every derived tag
//!   names a version that can be shown in full, and a version either compiles as a whole or is
//!   never published.
//! - **Rules depend on each other and on the schema** (a rule reading `tag.cost-center`, a value
//!   checked against the key's allowed values), so they are validated together.
//!
//! Map:
//! - `document`: the serde types (the public, versioned format, `format_version: 1`), re-exported
//!   here.
//! - `codec`: JSON and YAML in and out ([`ConfigDocument::from_json`], [`ConfigDocument::from_yaml`],
//!   [`ConfigDocument::compile_yaml`], [`ConfigDocument::to_json`], [`ConfigDocument::to_yaml`]).
//! - `compile`: document → the domain's [`TaggingConfig`](vtag_domain::tagging::TaggingConfig),
//!   reporting every error at once ([`ConfigDocument::compile`]).
//! - `edit`: the changes behind the command API's CRUD endpoints ([`ConfigDocument::upsert_rule`], …).
//! - `errors` and `yaml` (from `vtag-documents`): [`DocError`], one 422 problem+json entry each,
//!   and YAML with node positions, so every error has a line.

mod codec;
mod compile;
mod document;
mod edit;
// Shared with every hand-edited document (see vtag-documents).
pub(crate) use vtag_documents::{errors, yaml};

pub use document::{
    ConditionDoc, ConfigDocument, KeyDoc, LookupDoc, MappingDoc, NameCaptureDoc, PriorityDoc, RuleDoc, SchemaDoc,
    FORMAT_VERSION,
};
pub use errors::DocError;

#[cfg(test)]
mod tests;
