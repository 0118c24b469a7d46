//! The one timestamp format clients see: RFC 3339 in UTC with `Z` (as in the seed's examples),
//! sub-second digits only when present. chrono's `to_rfc3339` would print `+00:00`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serializer;

pub fn format(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

pub fn parse(raw: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw).ok().map(|t| t.with_timezone(&Utc))
}

pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format(t))
}

/// For optional fields; pair it with `skip_serializing_if = "Option::is_none"` to leave nulls out.
pub fn serialize_opt<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => serialize(t, s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_with_z_and_only_the_precision_there_is() {
        let t = parse("2025-11-17T12:30:00+02:00").unwrap();
        assert_eq!(format(&t), "2025-11-17T10:30:00Z");
        let t = parse("2025-11-17T10:30:00.123456Z").unwrap();
        assert_eq!(format(&t), "2025-11-17T10:30:00.123456Z");
        assert!(parse("2025-11-17").is_none());
        assert!(parse("yesterday").is_none());
    }
}
