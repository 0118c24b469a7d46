//! What every vtag HTTP service shares.
//!
//! - [`auth`]: bearer tokens (HS256 JWT) → an authenticated [`auth::Caller`] with tenant and role.
//! - [`problem`]: RFC 9457 problem+json errors naming the field and the rule.
//! - [`json`]: a JSON body extractor whose errors are problems with the exact field path.
//! - [`telemetry`]: tracing set-up.
//! - [`shutdown`]: the signal future every binary passes to `serve`.

pub mod auth;
pub mod json;
pub mod problem;
pub mod read_models;
pub mod shutdown;
pub mod telemetry;

pub use auth::{Authenticator, Caller, Role};
pub use json::ValidJson;
pub use problem::{FieldError, Problem};
