//! One billing row's values, checked: what a FOCUS row says, in vtag's terms.

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use vtag_domain::Provider;

/// FOCUS 1.0 ChargeCategory values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChargeCategory {
    Usage,
    Purchase,
    Tax,
    Credit,
    Adjustment,
}

impl ChargeCategory {
    pub const ALL: [ChargeCategory; 5] = [Self::Usage, Self::Purchase, Self::Tax, Self::Credit, Self::Adjustment];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Usage => "Usage",
            Self::Purchase => "Purchase",
            Self::Tax => "Tax",
            Self::Credit => "Credit",
            Self::Adjustment => "Adjustment",
        }
    }

    /// Case-insensitive: exports disagree on case, and the meaning does not.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str().eq_ignore_ascii_case(raw.trim()))
    }
}

/// Which of vtag's clouds a FOCUS provider name means. Costs of other providers (SaaS, marketplace
/// sellers) are kept, as unallocatable pools: vtag has no resources of theirs to tag.
pub fn cloud_of(provider_name: &str) -> Option<Provider> {
    let name = provider_name.trim().to_ascii_lowercase();
    match name.as_str() {
        "aws" | "amazon web services" | "amazon" => Some(Provider::Aws),
        "microsoft" | "azure" | "microsoft azure" => Some(Provider::Azure),
        "google cloud" | "google" | "gcp" | "google cloud platform" => Some(Provider::Gcp),
        _ => None,
    }
}

/// An ISO 4217 currency code.
pub fn is_currency(raw: &str) -> bool {
    raw.len() == 3 && raw.bytes().all(|b| b.is_ascii_uppercase())
}

/// The instant a FOCUS date-time column names, as UTC. FOCUS asks for ISO 8601 in UTC
/// (`2026-10-01T00:00:00Z`); exports also write an offset, no zone (taken as UTC), a space for the
/// `T`, fractional seconds, or a bare date.
pub fn parse_instant(raw: &str) -> Option<NaiveDateTime> {
    let raw = raw.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Some(t.naive_utc());
    }
    let spaced = raw.replacen(' ', "T", 1);
    let bare = spaced.trim_end_matches('Z');
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(bare, format) {
            return Some(t);
        }
    }
    if let Ok(t) = DateTime::parse_from_str(&spaced, "%Y-%m-%dT%H:%M:%S%.f%#z") {
        return Some(t.naive_utc());
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok().map(|d| d.and_hms_opt(0, 0, 0).expect("midnight exists"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_date_times_exports_write() {
        let midnight = NaiveDate::from_ymd_opt(2026, 10, 1).unwrap().and_hms_opt(0, 0, 0).unwrap();
        for raw in [
            "2026-10-01T00:00:00Z",
            "2026-10-01T00:00:00.000Z",
            "2026-10-01T02:00:00+02:00",
            "2026-10-01 00:00:00",
            "2026-10-01T00:00",
            "2026-10-01",
            "2026-10-01 00:00:00+00",
        ] {
            assert_eq!(parse_instant(raw), Some(midnight), "{raw}");
        }
        for bad in ["", "yesterday", "2026-13-01", "01/10/2026"] {
            assert_eq!(parse_instant(bad), None, "{bad}");
        }
    }

    #[test]
    fn maps_provider_names_to_clouds() {
        assert_eq!(cloud_of("AWS"), Some(Provider::Aws));
        assert_eq!(cloud_of("Microsoft"), Some(Provider::Azure));
        assert_eq!(cloud_of("Google Cloud"), Some(Provider::Gcp));
        assert_eq!(cloud_of("Snowflake"), None);
    }

    #[test]
    fn charge_categories_ignore_case() {
        assert_eq!(ChargeCategory::parse("usage"), Some(ChargeCategory::Usage));
        assert_eq!(ChargeCategory::parse("Refund"), None);
    }
}
