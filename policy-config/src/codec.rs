//! Documents in and out: JSON (REST bodies and the event that stores the policies verbatim) and
//! YAML (GitOps import and export). Every reading error carries its path; YAML ones also their line.

use vtag_documents::codec::{self, from_json};
use vtag_documents::DocError;
use vtag_domain::compliance::Policy;

use crate::document::{PoliciesDocument, PolicyDoc};

impl PoliciesDocument {
    /// Reads a document from JSON. Checks its shape only; [`compile`](Self::compile) checks the rest.
    pub fn from_json(bytes: &[u8]) -> Result<Self, Vec<DocError>> {
        from_json(bytes)
    }

    /// Reads and compiles a YAML document; every error carries the line and column of its node.
    pub fn compile_yaml(text: &str) -> Result<(Self, Vec<Policy>), Vec<DocError>> {
        codec::compile_yaml(text, Self::compile)
    }

    /// The stored form: what the policies event carries.
    pub fn to_json(&self) -> Vec<u8> {
        codec::to_json(self)
    }

    /// The export form; reading it back gives an equal document.
    pub fn to_yaml(&self) -> String {
        codec::to_yaml(self)
    }
}

impl PolicyDoc {
    /// Reads one policy (the body of a policy endpoint, exactly the seed's policy JSON).
    pub fn from_json(bytes: &[u8]) -> Result<Self, Vec<DocError>> {
        from_json(bytes)
    }
}
