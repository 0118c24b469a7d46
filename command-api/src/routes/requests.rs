//! Request bodies and their translation into domain commands. Every refusal names the field path
//! (`resources[3].native_tags.Env`) and the rule, and a request with any refusal records nothing.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;
use vtag_domain::resource::{ApplyVirtualTag, ObserveResource};
use vtag_domain::{
    CloudResourceId, Confidence, NativeTags, Provider, ResourceDescription, ResourceId, TagKey, TagSource, TagValue,
    TenantId, ValidationError,
};
use vtag_service::FieldError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObserveRequest {
    pub resources: Vec<ObservedResource>,
}

/// One resource as a collector saw it. `resource_id` is the cloud's id (ARN, Azure id, GCP name).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObservedResource {
    pub provider: String,
    pub resource_id: String,
    pub account_id: String,
    #[serde(default)]
    pub region: String,
    pub resource_type: String,
    pub name: String,
    #[serde(default)]
    pub native_tags: BTreeMap<String, String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    pub observed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplyRequest {
    /// vtag's resource id (UUID) — or, instead, `provider` + `cloud_resource_id`.
    pub resource_id: Option<String>,
    /// Bulk: the same tag on many resources (vtag ids).
    pub resource_ids: Option<Vec<String>>,
    pub provider: Option<String>,
    pub cloud_resource_id: Option<String>,
    pub key: String,
    pub value: String,
    pub source: Option<String>,
    pub confidence: Option<f64>,
    pub expected_version: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateRequest {
    pub value: String,
    pub source: Option<String>,
    pub confidence: Option<f64>,
    pub expected_version: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveQuery {
    pub expected_version: Option<u64>,
}

fn field(path: impl Into<String>, e: ValidationError) -> FieldError {
    FieldError::new(path, e.rule, e.message)
}

pub fn observe_commands(req: ObserveRequest, max: usize) -> Result<Vec<ObserveResource>, Vec<FieldError>> {
    if req.resources.is_empty() {
        return Err(vec![FieldError::new("resources", "min_items", "send at least one resource")]);
    }
    if req.resources.len() > max {
        return Err(vec![FieldError::new("resources", "max_items", format!("send at most {max} resources per request"))]);
    }
    let mut errors = Vec::new();
    let mut commands = Vec::with_capacity(req.resources.len());
    for (i, r) in req.resources.into_iter().enumerate() {
        match observe_command(r) {
            Ok(c) => commands.push(c),
            Err(e) => errors.push(FieldError { field: format!("resources[{i}].{}", e.field), ..e }),
        }
    }
    if errors.is_empty() {
        Ok(commands)
    } else {
        Err(errors)
    }
}

fn observe_command(r: ObservedResource) -> Result<ObserveResource, FieldError> {
    let provider = Provider::parse(&r.provider).map_err(|e| field("provider", e))?;
    let cloud_id = CloudResourceId::parse(&r.resource_id).map_err(|e| field("resource_id", e))?;
    let description = ResourceDescription::parse(r.account_id, r.region, r.resource_type, r.name, r.metadata)
        .map_err(|(f, e)| field(if f == "type" { "resource_type".to_owned() } else if f == "account" { "account_id".to_owned() } else { f }, e))?;
    let native_tags = NativeTags::parse(r.native_tags).map_err(|(key, e)| {
        field(key.map_or("native_tags".to_owned(), |k| format!("native_tags.{k}")), e)
    })?;
    Ok(ObserveResource { provider, cloud_id, description, native_tags, observed_at: r.observed_at.unwrap_or_else(Utc::now) })
}

pub struct TagFields {
    pub key: TagKey,
    pub value: TagValue,
    pub source: TagSource,
    pub confidence: Confidence,
}

/// Validates the tag part of a request, collecting every error rather than the first.
pub fn tag_fields(key: &str, value: &str, source: Option<&str>, confidence: Option<f64>) -> Result<TagFields, Vec<FieldError>> {
    let key = TagKey::parse(key).map_err(|e| field("key", e));
    let value = TagValue::parse(value).map_err(|e| field("value", e));
    let source = TagSource::parse(source.unwrap_or("manual")).map_err(|e| field("source", e));
    let confidence = Confidence::parse(confidence.unwrap_or(1.0)).map_err(|e| field("confidence", e));
    match (key, value, source, confidence) {
        (Ok(key), Ok(value), Ok(source), Ok(confidence)) => Ok(TagFields { key, value, source, confidence }),
        (key, value, source, confidence) => {
            Err([key.err(), value.err(), source.err(), confidence.err()].into_iter().flatten().collect())
        }
    }
}

impl TagFields {
    pub fn command(&self, expected_version: Option<u64>) -> ApplyVirtualTag {
        ApplyVirtualTag {
            key: self.key.clone(),
            value: self.value.clone(),
            source: self.source,
            confidence: self.confidence,
            expected_version,
        }
    }
}

pub fn resource_uuid(path: &str, raw: &str) -> Result<ResourceId, FieldError> {
    Uuid::parse_str(raw)
        .map(ResourceId::from_uuid)
        .map_err(|_| FieldError::new(path, "uuid", "must be a vtag resource id (UUID)"))
}

/// The resources an apply request targets: one id, many ids, or one cloud id with its provider.
pub fn apply_targets(req: &ApplyRequest, tenant: &TenantId, max: usize) -> Result<Vec<ResourceId>, Vec<FieldError>> {
    let by_cloud = req.provider.is_some() || req.cloud_resource_id.is_some();
    let given = [req.resource_id.is_some(), req.resource_ids.is_some(), by_cloud].iter().filter(|b| **b).count();
    if given != 1 {
        return Err(vec![FieldError::new(
            "resource_id",
            "one_of",
            "give exactly one of: resource_id, resource_ids, or provider + cloud_resource_id",
        )]);
    }
    if let Some(id) = &req.resource_id {
        return resource_uuid("resource_id", id).map(|id| vec![id]).map_err(|e| vec![e]);
    }
    if let Some(ids) = &req.resource_ids {
        if ids.is_empty() || ids.len() > max {
            return Err(vec![FieldError::new("resource_ids", "max_items", format!("give 1 to {max} resource ids"))]);
        }
        if req.expected_version.is_some() {
            return Err(vec![FieldError::new(
                "expected_version",
                "single_resource",
                "expected_version applies to one resource; omit it for bulk applies",
            )]);
        }
        let mut errors = Vec::new();
        let mut out = Vec::with_capacity(ids.len());
        for (i, raw) in ids.iter().enumerate() {
            match resource_uuid(&format!("resource_ids[{i}]"), raw) {
                Ok(id) => out.push(id),
                Err(e) => errors.push(e),
            }
        }
        return if errors.is_empty() { Ok(out) } else { Err(errors) };
    }
    let provider = Provider::parse(req.provider.as_deref().unwrap_or_default()).map_err(|e| vec![field("provider", e)])?;
    let cloud = CloudResourceId::parse(req.cloud_resource_id.as_deref().unwrap_or_default())
        .map_err(|e| vec![field("cloud_resource_id", e)])?;
    Ok(vec![ResourceId::derive(tenant, provider, &cloud)])
}

/// A virtual tag's id is `<resource uuid>:<key>`: a resource carries one value per key, so the pair
/// names the tag, and the command API can route it to its partition without a lookup.
pub fn parse_tag_id(raw: &str) -> Result<(ResourceId, TagKey), FieldError> {
    let (resource, key) = raw
        .split_once(':')
        .ok_or_else(|| FieldError::new("id", "format", "a virtual tag id looks like '<resource uuid>:<key>'"))?;
    let resource = resource_uuid("id", resource)?;
    let key = TagKey::parse(key).map_err(|e| field("id", e))?;
    Ok((resource, key))
}
