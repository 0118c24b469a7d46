//! Configuration documents people keep in a repository and edit by hand (tagging configuration,
//! compliance policies): YAML read with the position of every node, and errors that say where
//! (path, and in YAML line and column), which rule was broken and what to do about it — one 422
//! problem+json entry each.

pub mod codec;
pub mod errors;
pub mod yaml;

pub use errors::{DocError, Errors};
