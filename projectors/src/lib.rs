//! Projectors fold the event log into read models.
//!
//! Each read model has one projector (one writer). Its checkpoint — the next offset per partition —
//! is stored in the read model itself and written in the same transaction as the rows it covers,
//! so a crash at any instant leaves rows and checkpoint consistent: on restart the projector seeks
//! to the checkpoint and nothing is lost or applied twice. Version guards make a replayed or
//! duplicated event harmless on top of that.
//!
//! - [`source`]: reading batches of records from explicitly assigned partitions.
//! - [`dead_letter`]: the dead-letter topic: parking events that can never be applied (so the
//!   pipeline goes on), and reading it back.
//! - [`holds`]: holding an aggregate's later events behind its dead letter, and retrying them.
//! - [`postgres`]: the Postgres read model (`resources`, `virtual_tags`, `tag_audit`).
//! - [`search`]: the OpenSearch read model (one document per resource, behind an alias).
//! - [`graph`]: the Neo4j read model (resources, tags, teams, cost centers, projects, accounts).

pub mod command_line;
pub mod dead_letter;
pub mod holds;
mod generations;
pub mod graph;
pub mod postgres;
pub mod search;
pub mod settings;
pub mod source;

pub use settings::{LogSettings, Settings};
