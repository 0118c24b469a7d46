//! Reading documents: JSON (REST bodies, stored events) and YAML already parsed with positions
//! (`yaml::parse`) into serde types, every error carrying its path (and line where known).

use serde::de::DeserializeOwned;
use serde_json::error::Category;

use crate::errors::{from_serde, DocError};
use crate::yaml;

/// Reads a `T` from JSON. Checks its shape only.
pub fn from_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Vec<DocError>> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        vec![json_error(path, e.into_inner())]
    })?;
    de.end().map_err(|e| vec![json_error(String::new(), e)])?;
    Ok(value)
}

fn json_error(path: String, e: serde_json::Error) -> DocError {
    // serde_json appends the position to its messages; we keep it in fields of its own.
    let text = e.to_string();
    let message = text.strip_suffix(&format!(" at line {} column {}", e.line(), e.column())).unwrap_or(&text).to_owned();
    let mut error = match e.classify() {
        Category::Data => from_serde(path, message),
        Category::Syntax | Category::Eof | Category::Io => {
            DocError::new(if path == "." { String::new() } else { path }, "json", message)
        }
    };
    if e.line() > 0 {
        error.line = Some(e.line());
        error.column = Some(e.column());
    }
    error
}

/// Reads a `T` from a YAML document's value; errors carry the line of their node.
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value, positions: &yaml::Positions) -> Result<T, Vec<DocError>> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let mut error = from_serde(e.path().to_string(), e.into_inner().to_string());
        positions.locate(&mut error);
        vec![error]
    })
}

/// Reads a YAML document into `D` and compiles it; every error, whether found while reading or
/// while compiling, carries the line and column of the node it is about.
pub fn compile_yaml<D: DeserializeOwned, T>(text: &str, compile: impl FnOnce(&D) -> Result<T, Vec<DocError>>) -> Result<(D, T), Vec<DocError>> {
    let (value, positions) = yaml::parse(text)?;
    let doc: D = from_value(value, &positions)?;
    match compile(&doc) {
        Ok(compiled) => Ok((doc, compiled)),
        Err(mut errors) => {
            errors.iter_mut().for_each(|e| positions.locate(e));
            Err(errors)
        }
    }
}

/// The stored form of a document (what its event carries).
pub fn to_json<D: serde::Serialize>(doc: &D) -> Vec<u8> {
    serde_json::to_vec(doc).expect("documents serialize: string keys, finite numbers")
}

/// The export form of a document; reading it back gives an equal document.
pub fn to_yaml<D: serde::Serialize>(doc: &D) -> String {
    yaml::emit(&serde_json::to_string(doc).expect("documents serialize: string keys, finite numbers"))
}
