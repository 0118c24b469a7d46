//! Compatibility levels and the check that enforces them.
//!
//! Vocabulary (Confluent's): BACKWARD means consumers using the *new* schema can read
//! data written with the old one(s), i.e. the new schema is the Avro *reader* and the old
//! schema the *writer*. FORWARD is the reverse (old consumers read new data). FULL is
//! both. `_TRANSITIVE` checks against every registered version instead of only the latest.

use std::fmt;
use std::str::FromStr;

use apache_avro::schema_compatibility::SchemaCompatibility;
use apache_avro::Schema;
use serde::{Deserialize, Serialize};

use crate::error::RegistryError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CompatibilityLevel {
    None,
    Backward,
    BackwardTransitive,
    Forward,
    ForwardTransitive,
    Full,
    FullTransitive,
}

impl CompatibilityLevel {
    pub const ALL: [CompatibilityLevel; 7] = [
        Self::None,
        Self::Backward,
        Self::BackwardTransitive,
        Self::Forward,
        Self::ForwardTransitive,
        Self::Full,
        Self::FullTransitive,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::Backward => "BACKWARD",
            Self::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Self::Forward => "FORWARD",
            Self::ForwardTransitive => "FORWARD_TRANSITIVE",
            Self::Full => "FULL",
            Self::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    fn is_transitive(self) -> bool {
        matches!(
            self,
            Self::BackwardTransitive | Self::ForwardTransitive | Self::FullTransitive
        )
    }

    fn checks_backward(self) -> bool {
        matches!(
            self,
            Self::Backward | Self::BackwardTransitive | Self::Full | Self::FullTransitive
        )
    }

    fn checks_forward(self) -> bool {
        matches!(
            self,
            Self::Forward | Self::ForwardTransitive | Self::Full | Self::FullTransitive
        )
    }
}

impl fmt::Display for CompatibilityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CompatibilityLevel {
    type Err = RegistryError;

    /// Case-insensitive, because Confluent accepts `backward` as well as `BACKWARD`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|level| level.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| RegistryError::InvalidCompatibilityLevel(s.to_owned()))
    }
}

/// Checks `new` against the registered versions of a subject, oldest first, as the
/// registration path does. Returns human-readable reasons; empty means compatible.
pub fn check_against_history(
    level: CompatibilityLevel,
    new: &Schema,
    history: &[(u32, &Schema)],
) -> Vec<String> {
    let relevant = if level.is_transitive() {
        history
    } else {
        // Non-transitive levels only promise compatibility with the latest version.
        &history[history.len().saturating_sub(1)..]
    };
    relevant
        .iter()
        .flat_map(|(version, old)| check_pair(level, new, old, *version))
        .collect()
}

/// Checks `new` against one registered version, in the direction(s) `level` asks for.
pub fn check_pair(
    level: CompatibilityLevel,
    new: &Schema,
    old: &Schema,
    old_version: u32,
) -> Vec<String> {
    let mut messages = Vec::new();
    if level.checks_backward() {
        if let Err(e) = SchemaCompatibility::can_read(old, new) {
            messages.push(format!(
                "the new schema cannot read data written with version {old_version} \
                 (backward): {e}"
            ));
        }
    }
    if level.checks_forward() {
        if let Err(e) = SchemaCompatibility::can_read(new, old) {
            messages.push(format!(
                "version {old_version} cannot read data written with the new schema \
                 (forward): {e}"
            ));
        }
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(fields: &str) -> Schema {
        Schema::parse_str(&format!(
            r#"{{"type":"record","name":"R","namespace":"t","fields":[{fields}]}}"#
        ))
        .unwrap()
    }

    #[test]
    fn parses_levels_case_insensitively() {
        assert_eq!(
            "full_transitive".parse::<CompatibilityLevel>().unwrap(),
            CompatibilityLevel::FullTransitive
        );
        assert!("SIDEWAYS".parse::<CompatibilityLevel>().is_err());
    }

    #[test]
    fn removing_a_required_field_is_backward_but_not_forward() {
        let old = record(r#"{"name":"a","type":"string"},{"name":"b","type":"int"}"#);
        let new = record(r#"{"name":"a","type":"string"}"#);
        let history = [(1, &old)];
        assert!(check_against_history(CompatibilityLevel::Backward, &new, &history).is_empty());
        assert_eq!(
            check_against_history(CompatibilityLevel::Forward, &new, &history).len(),
            1
        );
        assert_eq!(
            check_against_history(CompatibilityLevel::Full, &new, &history).len(),
            1
        );
        assert!(check_against_history(CompatibilityLevel::None, &new, &history).is_empty());
    }
}
