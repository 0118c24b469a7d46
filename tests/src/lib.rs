//! Test harness: each test gets its own topics (a unique prefix), its own Postgres database and its
//! own signing secret, and starts the real services against the real local stack that `make test`
//! brought up. Nothing is mocked.

pub mod alerts;
pub mod derivation;
pub mod graph;
pub mod harness;
pub mod http;
pub mod log;
pub mod readmodel;
pub mod search;
pub mod bench;
