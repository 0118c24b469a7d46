//! Parsing submitted schema text and deciding when two schemas are "the same".

use apache_avro::Schema;

use crate::error::RegistryError;

/// A validated Avro schema as the registry keeps it.
#[derive(Debug)]
pub struct AvroSchema {
    /// The text as first submitted; this is what GET endpoints hand back, so clients
    /// get exactly what they registered (doc strings, custom attributes, formatting).
    pub text: String,
    /// Identity key: two submissions with the same key are the same schema and share an id.
    pub identity: String,
    pub parsed: Schema,
}

impl AvroSchema {
    pub fn parse(text: &str) -> Result<Self, RegistryError> {
        let parsed =
            Schema::parse_str(text).map_err(|e| RegistryError::InvalidSchema(e.to_string()))?;
        // Not the Avro "Parsing Canonical Form": it strips `default`, `aliases` and `doc`,
        // so adding a default to a field would look like re-registering the same schema
        // and never get a new version, although defaults decide compatibility. Like
        // Confluent (which keys on Java's `Schema.toString()`), we key on the full
        // schema re-serialised from the parsed form: whitespace, key order and
        // `"string"` vs `{"type":"string"}` no longer matter, defaults do.
        let identity = serde_json::to_string(&parsed)
            .map_err(|e| RegistryError::InvalidSchema(e.to_string()))?;
        Ok(Self {
            text: text.to_owned(),
            identity,
            parsed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_does_not_change_identity_but_defaults_do() {
        let a = AvroSchema::parse(
            r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"}]}"#,
        )
        .unwrap();
        let b = AvroSchema::parse(
            r#"{ "fields": [ {"type": {"type":"string"}, "name": "a"} ],
                 "name": "R", "type": "record" }"#,
        )
        .unwrap();
        let c = AvroSchema::parse(
            r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string","default":"x"}]}"#,
        )
        .unwrap();
        assert_eq!(a.identity, b.identity);
        assert_ne!(a.identity, c.identity);
    }

    #[test]
    fn garbage_is_an_invalid_schema() {
        assert!(matches!(
            AvroSchema::parse("{not json"),
            Err(RegistryError::InvalidSchema(_))
        ));
        assert!(matches!(
            AvroSchema::parse(
                r#"{"type":"record","name":"R","fields":[{"name":"a","type":"Nope"}]}"#
            ),
            Err(RegistryError::InvalidSchema(_))
        ));
    }
}
