//! Documents in and out: JSON (REST bodies and the event that stores a configuration verbatim) and
//! YAML (GitOps import and export). Every reading error carries its path; YAML ones also their line.

use vtag_domain::tagging::TaggingConfig;

use crate::document::{ConfigDocument, MappingDoc, RuleDoc};
use crate::errors::DocError;
use crate::yaml;
use vtag_documents::codec::{self, from_json, from_value};

impl ConfigDocument {
    /// Reads a document from JSON. Checks its shape only; [`compile`](Self::compile) checks the rest.
    pub fn from_json(bytes: &[u8]) -> Result<Self, Vec<DocError>> {
        from_json(bytes)
    }

    /// Reads a document from YAML. Checks its shape only, with the line of every error; use
    /// [`compile_yaml`](Self::compile_yaml) to have the errors found by compiling located too.
    pub fn from_yaml(text: &str) -> Result<Self, Vec<DocError>> {
        let (value, positions) = yaml::parse(text)?;
        from_value(value, &positions)
    }

    /// Reads and compiles a YAML document; every error, whether found while reading or while
    /// compiling, carries the line and column of the node it is about.
    pub fn compile_yaml(text: &str, version: u64) -> Result<(Self, TaggingConfig), Vec<DocError>> {
        codec::compile_yaml(text, |doc: &Self| doc.compile(version))
    }

    /// The stored form: what the configuration event carries.
    pub fn to_json(&self) -> Vec<u8> {
        codec::to_json(self)
    }

    /// The export form; reading it back gives an equal document.
    pub fn to_yaml(&self) -> String {
        codec::to_yaml(self)
    }
}

impl RuleDoc {
    /// Reads one rule (the body of a rule endpoint); paths are relative to the rule (`when.regex`).
    pub fn from_json(bytes: &[u8]) -> Result<Self, Vec<DocError>> {
        from_json(bytes)
    }
}

impl MappingDoc {
    /// Reads one mapping (the body of `POST /api/v1/tag-mappings`).
    pub fn from_json(bytes: &[u8]) -> Result<Self, Vec<DocError>> {
        from_json(bytes)
    }
}
