//! Validated value types ("parse, don't validate"): once a value exists, it is valid.
//!
//! Limits follow the strictest common ground of the three clouds where it matters for virtual tags
//! (AWS: key 128, value 256) and the most permissive for native tags, which we only record: a
//! collector must never lose an observation because a cloud allowed something we would not.

use std::collections::BTreeMap;
use std::fmt;

use uuid::Uuid;

/// Why a raw input was refused. `rule` is a stable machine-readable name; `message` is for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ValidationError {
    pub rule: &'static str,
    pub message: String,
}

impl ValidationError {
    pub fn new(rule: &'static str, message: impl Into<String>) -> Self {
        Self { rule, message: message.into() }
    }
}

fn has_control_chars(s: &str) -> bool {
    s.chars().any(char::is_control)
}

fn bounded_text(raw: &str, what: &str, max: usize) -> Result<(), ValidationError> {
    if raw.trim().is_empty() {
        return Err(ValidationError::new("required", format!("{what} must not be empty")));
    }
    if raw.chars().count() > max {
        return Err(ValidationError::new(
            "max_length",
            format!("{what} must be at most {max} characters"),
        ));
    }
    if has_control_chars(raw) {
        return Err(ValidationError::new("charset", format!("{what} must not contain control characters")));
    }
    Ok(())
}

macro_rules! string_value {
    ($(#[$doc:meta])* $name:ident) => {
        string_value!($(#[$doc])* $name(String));
    };
    ($(#[$doc:meta])* $name:ident($inner:ty)) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name($inner);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        // Ordering and hashing are the inner string's, so maps keyed by it can be read by `&str`.
        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
    };
}

string_value!(
    /// A tenant (an organisation using vtag). Every aggregate, event and row belongs to exactly one.
    /// Shared, not copied: every decision and record of a million-resource sweep names it.
    TenantId(std::sync::Arc<str>)
);

impl TenantId {
    pub const MAX_LEN: usize = 64;

    /// Tenants come from verified credentials, but they also end up in keys and ids, so the charset
    /// is kept boring: ASCII letters, digits, `-` and `_`.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        bounded_text(raw, "tenant", Self::MAX_LEN)?;
        if !raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(ValidationError::new("charset", "tenant may contain only ASCII letters, digits, '-' and '_'"));
        }
        Ok(Self(raw.into()))
    }
}

string_value!(
    /// Who did something: a user's subject, a service account, or a system process such as `collector:aws`.
    Actor
);

impl Actor {
    pub const MAX_LEN: usize = 200;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        bounded_text(raw, "actor", Self::MAX_LEN)?;
        Ok(Self(raw.to_owned()))
    }
}

/// The clouds vtag understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Provider {
    Aws,
    Azure,
    Gcp,
}

impl Provider {
    pub const ALL: [Provider; 3] = [Provider::Aws, Provider::Azure, Provider::Gcp];

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        match raw {
            "aws" => Ok(Provider::Aws),
            "azure" => Ok(Provider::Azure),
            "gcp" => Ok(Provider::Gcp),
            _ => Err(ValidationError::new("one_of", "provider must be one of: aws, azure, gcp")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Aws => "aws",
            Provider::Azure => "azure",
            Provider::Gcp => "gcp",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

string_value!(
    /// The cloud's own id of a resource: an AWS ARN, an Azure resource id, a GCP resource name.
    CloudResourceId
);

impl CloudResourceId {
    pub const MAX_LEN: usize = 2048;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        bounded_text(raw, "resource id", Self::MAX_LEN)?;
        if raw.trim() != raw {
            return Err(ValidationError::new("trimmed", "resource id must not start or end with whitespace"));
        }
        Ok(Self(raw.to_owned()))
    }
}

/// vtag's id of a resource aggregate: a name-based UUID (v5) of tenant, provider and cloud id, so
/// every component computes the same id, and the same cloud resource seen by two tenants stays two
/// separate aggregates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourceId(Uuid);

impl ResourceId {
    /// Fixed namespace for resource ids. Changing it would re-key every aggregate: never do.
    const NAMESPACE: Uuid = Uuid::from_u128(0x6c1f_2a57_93d4_4b0e_a8f1_0d5e_7c3b_9a21);

    pub fn derive(tenant: &TenantId, provider: Provider, cloud_id: &CloudResourceId) -> Self {
        let name = format!("{}\u{1f}{}\u{1f}{}", tenant.as_str(), provider.as_str(), cloud_id.as_str());
        Self(Uuid::new_v5(&Self::NAMESPACE, name.as_bytes()))
    }

    pub fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

string_value!(
    /// A virtual tag key, e.g. `environment`, `cost-center`, `aws:createdBy`.
    TagKey
);

impl TagKey {
    pub const MAX_LEN: usize = 128;

    /// Keys become column values, search fields, graph labels and URL segments, so they are held to
    /// the AWS character set (letters, digits and `_ . : / = + - @`) and must start alphanumeric.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        if raw.is_empty() {
            return Err(ValidationError::new("required", "tag key must not be empty"));
        }
        if raw.chars().count() > Self::MAX_LEN {
            return Err(ValidationError::new(
                "max_length",
                format!("tag key must be at most {} characters", Self::MAX_LEN),
            ));
        }
        let mut chars = raw.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
        let rest_ok = raw.chars().all(|c| c.is_ascii_alphanumeric() || "_.:/=+-@".contains(c));
        if !first_ok || !rest_ok {
            return Err(ValidationError::new(
                "charset",
                "tag key must start with a letter or digit and contain only letters, digits and _ . : / = + - @",
            ));
        }
        Ok(Self(raw.to_owned()))
    }
}

string_value!(
    /// A virtual tag value.
    TagValue
);

impl TagValue {
    pub const MAX_LEN: usize = 256;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        bounded_text(raw, "tag value", Self::MAX_LEN)?;
        if raw.trim() != raw {
            return Err(ValidationError::new("trimmed", "tag value must not start or end with whitespace"));
        }
        Ok(Self(raw.to_owned()))
    }
}

/// Where a virtual tag value came from. Precedence when several sources disagree is the tagging
/// engine's business; here it is recorded faithfully.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TagSource {
    /// A native cloud tag, normalized through the tag schema.
    Native,
    Inferred,
    RuleBased,
    AiSuggested,
    UserConfirmed,
    Manual,
}

impl TagSource {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        match raw {
            "native" => Ok(Self::Native),
            "inferred" => Ok(Self::Inferred),
            "rule_based" => Ok(Self::RuleBased),
            "ai_suggested" => Ok(Self::AiSuggested),
            "user_confirmed" => Ok(Self::UserConfirmed),
            "manual" => Ok(Self::Manual),
            _ => Err(ValidationError::new(
                "one_of",
                "source must be one of: native, inferred, rule_based, ai_suggested, user_confirmed, manual",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::Inferred => "inferred",
            Self::RuleBased => "rule_based",
            Self::AiSuggested => "ai_suggested",
            Self::UserConfirmed => "user_confirmed",
            Self::Manual => "manual",
        }
    }
}

impl TagSource {
    /// Set by people: derivation never overrides these.
    pub fn is_people(self) -> bool {
        matches!(self, Self::Manual | Self::UserConfirmed)
    }

    /// Owned by derivation: it sets, changes and removes these as rules and native tags change.
    pub fn is_derived(self) -> bool {
        matches!(self, Self::Native | Self::RuleBased)
    }
}

impl fmt::Display for TagSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A probability in [0, 1]. People's own actions carry 1.0.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Confidence(f64);

impl Confidence {
    pub const CERTAIN: Confidence = Confidence(1.0);

    pub fn parse(raw: f64) -> Result<Self, ValidationError> {
        if !raw.is_finite() || !(0.0..=1.0).contains(&raw) {
            return Err(ValidationError::new("range", "confidence must be a number between 0 and 1"));
        }
        Ok(Self(raw))
    }

    pub fn value(self) -> f64 {
        self.0
    }
}

/// Tags (or metadata) exactly as the cloud reported them. They are facts about the cloud, kept only
/// as input to normalization and rules; no query endpoint ever returns them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct NativeTags(BTreeMap<String, String>);

impl NativeTags {
    pub const MAX_ENTRIES: usize = 200;
    pub const MAX_KEY_LEN: usize = 512;
    pub const MAX_VALUE_LEN: usize = 256;

    /// Native tags are messy by nature (that is the product's reason to exist), so only what would
    /// break storage is refused: empty or over-long keys, over-long values, control characters.
    /// Returns the offending key with the error so callers can name the field.
    pub fn parse(raw: BTreeMap<String, String>) -> Result<Self, (Option<String>, ValidationError)> {
        if raw.len() > Self::MAX_ENTRIES {
            return Err((
                None,
                ValidationError::new("max_items", format!("at most {} tags per resource", Self::MAX_ENTRIES)),
            ));
        }
        for (k, v) in &raw {
            if k.trim().is_empty() {
                return Err((Some(k.clone()), ValidationError::new("required", "tag key must not be empty")));
            }
            if k.chars().count() > Self::MAX_KEY_LEN {
                return Err((
                    Some(k.clone()),
                    ValidationError::new("max_length", format!("tag key must be at most {} characters", Self::MAX_KEY_LEN)),
                ));
            }
            if v.chars().count() > Self::MAX_VALUE_LEN {
                return Err((
                    Some(k.clone()),
                    ValidationError::new(
                        "max_length",
                        format!("tag value must be at most {} characters", Self::MAX_VALUE_LEN),
                    ),
                ));
            }
            if has_control_chars(k) || has_control_chars(v) {
                return Err((
                    Some(k.clone()),
                    ValidationError::new("charset", "tags must not contain control characters"),
                ));
            }
        }
        Ok(Self(raw))
    }

    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    pub fn into_map(self) -> BTreeMap<String, String> {
        self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Descriptive attributes of a resource as the cloud reports them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceDescription {
    pub account: String,
    pub region: String,
    pub resource_type: String,
    pub name: String,
    /// Flat string attributes (instance type, SKU, …) useful to rules and inference.
    pub metadata: BTreeMap<String, String>,
}

impl ResourceDescription {
    pub const MAX_ACCOUNT_LEN: usize = 128;
    pub const MAX_REGION_LEN: usize = 64;
    pub const MAX_TYPE_LEN: usize = 128;
    pub const MAX_NAME_LEN: usize = 512;
    pub const MAX_METADATA_ENTRIES: usize = 100;
    pub const MAX_METADATA_VALUE_LEN: usize = 1024;

    /// Checks every attribute; on failure names the attribute (`account`, `metadata.<key>`, …).
    pub fn parse(
        account: String,
        region: String,
        resource_type: String,
        name: String,
        metadata: BTreeMap<String, String>,
    ) -> Result<Self, (String, ValidationError)> {
        let field = |f: &str, e| (f.to_owned(), e);
        bounded_text(&account, "account", Self::MAX_ACCOUNT_LEN).map_err(|e| field("account", e))?;
        // Some resources are global (IAM, CDN): an empty region is legitimate.
        if region.chars().count() > Self::MAX_REGION_LEN || has_control_chars(&region) {
            return Err(field(
                "region",
                ValidationError::new("max_length", format!("region must be at most {} characters", Self::MAX_REGION_LEN)),
            ));
        }
        bounded_text(&resource_type, "type", Self::MAX_TYPE_LEN).map_err(|e| field("type", e))?;
        bounded_text(&name, "name", Self::MAX_NAME_LEN).map_err(|e| field("name", e))?;
        if metadata.len() > Self::MAX_METADATA_ENTRIES {
            return Err(field(
                "metadata",
                ValidationError::new("max_items", format!("at most {} metadata entries", Self::MAX_METADATA_ENTRIES)),
            ));
        }
        for (k, v) in &metadata {
            let path = format!("metadata.{k}");
            bounded_text(k, "metadata key", 128).map_err(|e| (path.clone(), e))?;
            if v.chars().count() > Self::MAX_METADATA_VALUE_LEN || has_control_chars(v) {
                return Err((
                    path,
                    ValidationError::new(
                        "max_length",
                        format!("metadata values must be at most {} printable characters", Self::MAX_METADATA_VALUE_LEN),
                    ),
                ));
            }
        }
        Ok(Self { account, region, resource_type, name, metadata })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_keys_follow_the_aws_charset() {
        assert!(TagKey::parse("environment").is_ok());
        assert!(TagKey::parse("cost-center").is_ok());
        assert!(TagKey::parse("aws:createdBy").is_ok());
        assert_eq!(TagKey::parse("").unwrap_err().rule, "required");
        assert_eq!(TagKey::parse("-env").unwrap_err().rule, "charset");
        assert_eq!(TagKey::parse("env ironment").unwrap_err().rule, "charset");
        assert_eq!(TagKey::parse(&"k".repeat(129)).unwrap_err().rule, "max_length");
        assert!(TagKey::parse(&"k".repeat(128)).is_ok());
    }

    #[test]
    fn tag_values_are_non_blank_trimmed_and_bounded() {
        assert!(TagValue::parse("production").is_ok());
        assert!(TagValue::parse("Team Platform").is_ok());
        assert_eq!(TagValue::parse("").unwrap_err().rule, "required");
        assert_eq!(TagValue::parse("   ").unwrap_err().rule, "required");
        assert_eq!(TagValue::parse(" prod").unwrap_err().rule, "trimmed");
        assert_eq!(TagValue::parse("a\nb").unwrap_err().rule, "charset");
        assert_eq!(TagValue::parse(&"v".repeat(257)).unwrap_err().rule, "max_length");
    }

    #[test]
    fn providers_are_the_three_clouds() {
        assert_eq!(Provider::parse("aws"), Ok(Provider::Aws));
        assert_eq!(Provider::parse("gcp"), Ok(Provider::Gcp));
        assert_eq!(Provider::parse("AWS").unwrap_err().rule, "one_of");
        assert_eq!(Provider::parse("oracle").unwrap_err().rule, "one_of");
    }

    #[test]
    fn confidence_is_a_probability() {
        assert!(Confidence::parse(0.0).is_ok());
        assert!(Confidence::parse(1.0).is_ok());
        assert!(Confidence::parse(1.01).is_err());
        assert!(Confidence::parse(f64::NAN).is_err());
    }

    #[test]
    fn resource_ids_are_stable_and_tenant_scoped() {
        let cloud = CloudResourceId::parse("arn:aws:ec2:us-east-1:123456789012:instance/i-1").unwrap();
        let a = TenantId::parse("acme").unwrap();
        let b = TenantId::parse("globex").unwrap();
        assert_eq!(ResourceId::derive(&a, Provider::Aws, &cloud), ResourceId::derive(&a, Provider::Aws, &cloud));
        assert_ne!(ResourceId::derive(&a, Provider::Aws, &cloud), ResourceId::derive(&b, Provider::Aws, &cloud));
        assert_ne!(ResourceId::derive(&a, Provider::Aws, &cloud), ResourceId::derive(&a, Provider::Gcp, &cloud));
    }

    #[test]
    fn native_tags_accept_mess_but_not_breakage() {
        let mut raw = BTreeMap::new();
        raw.insert("Env".to_owned(), " PROD ".to_owned());
        raw.insert("cost_center".to_owned(), String::new());
        assert!(NativeTags::parse(raw.clone()).is_ok());
        raw.insert("k".repeat(513), "x".to_owned());
        let (key, err) = NativeTags::parse(raw).unwrap_err();
        assert_eq!(err.rule, "max_length");
        assert_eq!(key.unwrap().len(), 513);
    }
}
