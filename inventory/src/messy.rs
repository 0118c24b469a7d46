//! Native tags as years of hand-tagging, scripts and tools leave them: keys and values in many
//! spellings, tags missing, now and then a stale or placeholder value, and tags of the tooling
//! that mean nothing to the taxonomy.
//!
//! Every spelling used here is one the seed schema (`TagSchema::seed_default()` in vtag-domain)
//! maps back to the truth; only values drawn by [`Mess::wrong`] cannot be recovered, and the
//! generator reports which those are. The crate's tests hold this promise against the real
//! normalizer.

use std::collections::{BTreeMap, BTreeSet};

use crate::clouds::{Provider, Shape};
use crate::prng::Rng;
use crate::taxonomy::Key;

/// How messy native tags are. Each rate is a probability in `0..=1`.
#[derive(Debug, Clone, PartialEq)]
pub struct Mess {
    /// A resource carries none of the taxonomy's tags (only its tooling's, if any).
    pub untagged: f64,
    /// A tag is missing. Scaled per key by how habitually teams set it: `environment` is missed
    /// least, `business-unit` most.
    pub missing: f64,
    /// A key is spelled other than canonically (`Env`, `cost_center`, `owned_by`, …).
    pub messy_keys: f64,
    /// A value is spelled other than canonically (`PROD`, `prd`, ` prod `, `ENG-001`, …).
    pub messy_values: f64,
    /// A value is wrong: copied from another environment, or a placeholder (`tbd`, `changeme`).
    pub wrong: f64,
    /// A tag is set a second time under another spelling (`env` next to `Environment`).
    pub duplicates: f64,
    /// Each tooling tag that applies (`aws:cloudformation:stack-name`, `created-by`, …) is present.
    pub tooling: f64,
}

impl Default for Mess {
    fn default() -> Self {
        Self {
            untagged: 0.08,
            missing: 0.3,
            messy_keys: 0.6,
            messy_values: 0.5,
            wrong: 0.03,
            duplicates: 0.05,
            tooling: 0.3,
        }
    }
}

impl Mess {
    pub(crate) fn rates(&self) -> [(&'static str, f64); 7] {
        [
            ("untagged", self.untagged),
            ("missing", self.missing),
            ("messy_keys", self.messy_keys),
            ("messy_values", self.messy_values),
            ("wrong", self.wrong),
            ("duplicates", self.duplicates),
            ("tooling", self.tooling),
        ]
    }
}

/// The share of messy keys that carry a cloud's reserved prefix (`aws:`, `ms:`), as tags copied
/// from the clouds' own end up doing.
const PREFIXED: f64 = 0.05;

/// How habitually a key is set, relative to `environment`.
fn habit(key: Key) -> f64 {
    match key {
        Key::Environment => 1.0,
        Key::CostCenter | Key::Team => 0.85,
        Key::Owner | Key::Application | Key::Compliance => 0.8,
        Key::DataClassification => 0.7,
        Key::Project | Key::Backup | Key::AutoStop => 0.6,
        Key::BusinessUnit => 0.5,
    }
}

/// Spellings of each key of the seed taxonomy, the canonical one first.
fn key_spellings(key: Key) -> &'static [&'static str] {
    match key {
        Key::Environment => &[
            "environment",
            "Environment",
            "env",
            "Env",
            "ENV",
            "ENVIRONMENT",
            "environment_name",
            "EnvironmentName",
            "Stage",
            "stage",
        ],
        Key::CostCenter => &[
            "cost-center",
            "CostCenter",
            "cost_center",
            "costcenter",
            "Cost Center",
            "COSTCENTER",
            "CostCentre",
            "cost_centre",
            "CC",
            "cost-code",
        ],
        Key::Owner => &["owner", "Owner", "OWNER", "owned_by", "OwnedBy", "Contact", "contact"],
        Key::Project => &["project", "Project", "project_name", "ProjectName", "proj", "Proj"],
        Key::Team => &["team", "Team", "TEAM", "squad", "Squad", "team_name", "TeamName"],
        Key::Application => &["application", "Application", "app", "App", "APP", "Service", "service", "app_name", "AppName"],
        Key::BusinessUnit => &["business-unit", "BusinessUnit", "business_unit", "BU", "bu", "businessunit", "Business Unit"],
        Key::DataClassification => &[
            "data-classification",
            "DataClassification",
            "data_classification",
            "Classification",
            "classification",
            "data_class",
            "DataClass",
        ],
        Key::Backup => &["backup", "Backup", "backup_policy", "BackupPolicy", "backup-policy"],
        Key::AutoStop => &["auto-stop", "AutoStop", "auto_stop", "autostop", "AutoShutdown", "auto-shutdown"],
        Key::Compliance => &["compliance", "Compliance", "compliance_framework", "ComplianceFramework"],
    }
}

/// Value spellings the seed schema declares as aliases.
fn value_aliases(key: Key, truth: &str) -> &'static [&'static str] {
    match (key, truth) {
        (Key::Environment, "production") => &["prod", "PROD", "Prod", "Production", "PRODUCTION", "prd", "PRD", "live", "Live"],
        (Key::Environment, "staging") => &["stg", "STG", "Staging", "STAGING", "stage", "Stage"],
        (Key::Environment, "development") => &["dev", "DEV", "Dev", "Development", "develop"],
        (Key::Environment, "sandbox") => &["sbx", "SBX", "Sandbox", "SANDBOX"],
        (Key::Environment, "test") => &["TEST", "Test", "tst", "qa", "QA"],
        (Key::CostCenter, "engineering") => &["eng", "ENG", "Eng", "ENG-001", "eng-001", "Engineering", "ENGINEERING", "R&D"],
        (Key::CostCenter, "marketing") => &["mkt", "MKT", "Marketing", "MARKETING"],
        _ => &[],
    }
}

/// Values that are never right: what people type when they do not know.
const PLACEHOLDERS: &[&str] = &["tbd", "unknown", "n-a", "changeme", "default", "misc", "todo"];

/// The resource being tagged, for the tooling tags that describe it.
pub(crate) struct Subject<'a> {
    pub provider: Provider,
    pub shape: Shape,
    pub app: &'a str,
    pub role: &'a str,
    pub env: &'a str,
    /// `YYYY-MM-DD`
    pub created: &'a str,
}

/// Native tags for a resource with the given truth, and the native keys whose value is wrong.
pub(crate) fn native_tags(
    rng: &mut Rng,
    mess: &Mess,
    subject: &Subject,
    truth: &[(Key, &str)],
) -> (BTreeMap<String, String>, BTreeSet<String>) {
    let provider = subject.provider;
    // a Vec first: a dozen tags sort into a map faster than they insert one by one
    let mut tags: Vec<(String, String)> = Vec::with_capacity(16);
    let mut wrong = BTreeSet::new();
    if !rng.chance(mess.untagged) {
        for &(key, value) in truth {
            if !rng.chance((1.0 - mess.missing) * habit(key)) {
                continue;
            }
            let native_key = spell_key(rng, mess, provider, key);
            let is_wrong = rng.chance(mess.wrong);
            let raw = if is_wrong {
                wrong_value(rng, key, value)
            } else if rng.chance(mess.messy_values) {
                messy_value(rng, key, value)
            } else {
                value.to_owned()
            };
            // a spelling the cloud refuses falls back to the plain truth, if the cloud takes that
            let fallback = || if is_wrong { None } else { fit(provider, value.to_owned()) };
            let Some(native_value) = fit(provider, raw).or_else(fallback) else {
                continue;
            };
            if is_wrong {
                wrong.insert(native_key.clone());
            } else if rng.chance(mess.duplicates) {
                let again = spell_key(rng, mess, provider, key);
                // Azure keys are case-insensitive: `Env` and `env` cannot both exist there
                let taken = tags.iter().map(|(k, _)| k).chain([&native_key]).any(|k| {
                    *k == again || (provider == Provider::Azure && k.eq_ignore_ascii_case(&again))
                });
                if let (false, Some(v)) = (taken, fit(provider, messy_value(rng, key, value))) {
                    tags.push((again, v));
                }
            }
            tags.push((native_key, native_value));
        }
    }
    tooling_tags(rng, mess, subject, &mut tags);
    (tags.into_iter().collect(), wrong)
}

fn spell_key(rng: &mut Rng, mess: &Mess, provider: Provider, key: Key) -> String {
    let spellings = key_spellings(key);
    if !rng.chance(mess.messy_keys) {
        return spellings[0].to_owned();
    }
    let messy = &spellings[1..];
    if provider == Provider::Gcp {
        let labels = messy.iter().filter(|s| is_gcp_label(s));
        let n = labels.clone().count();
        return (*labels.clone().nth(rng.below(n as u64) as usize).expect("every key has a label spelling")).to_owned();
    }
    let spelled = *rng.pick(messy);
    match provider {
        Provider::Aws if rng.chance(PREFIXED) => format!("aws:{spelled}"),
        Provider::Azure if rng.chance(PREFIXED) => format!("ms:{spelled}"),
        _ => spelled.to_owned(),
    }
}

fn messy_value(rng: &mut Rng, key: Key, truth: &str) -> String {
    let aliases = value_aliases(key, truth);
    let spelled = match key {
        _ if !aliases.is_empty() && rng.chance(0.8) => (*rng.pick(aliases)).to_owned(),
        // the seed schema compares these case-sensitively: only stray whitespace is safe
        Key::Owner | Key::Compliance => truth.to_owned(),
        _ => recase(rng, truth),
    };
    if spelled == truth || rng.chance(0.15) {
        pad(rng, &spelled)
    } else {
        spelled
    }
}

fn recase(rng: &mut Rng, value: &str) -> String {
    if rng.chance(0.4) {
        return value.to_uppercase();
    }
    // Title-Case each word: `sales-ops` → `Sales-Ops`
    let mut start = true;
    value
        .chars()
        .map(|c| {
            let out = if start { c.to_ascii_uppercase() } else { c };
            start = !c.is_alphanumeric();
            out
        })
        .collect()
}

fn pad(rng: &mut Rng, value: &str) -> String {
    match rng.below(3) {
        0 => format!(" {value}"),
        1 => format!("{value} "),
        _ => format!(" {value} "),
    }
}

fn wrong_value(rng: &mut Rng, key: Key, truth: &str) -> String {
    let other = |rng: &mut Rng, values: &[&str]| {
        let others: Vec<&str> = values.iter().copied().filter(|v| *v != truth).collect();
        (*rng.pick(&others)).to_owned()
    };
    match key {
        // copied from a resource of another environment
        Key::Environment if rng.chance(0.6) => {
            let envs = crate::org::Environment::ALL;
            let others: Vec<_> = envs.iter().filter(|e| e.canonical() != truth).collect();
            rng.pick(&others).short().to_owned()
        }
        Key::Environment => other(rng, &["uat", "preprod", "perf", "tbd"]),
        Key::DataClassification => other(rng, &["public", "internal", "confidential", "restricted", "sensitive"]),
        _ => other(rng, PLACEHOLDERS),
    }
}

/// The value as the cloud would store it, or None where the cloud refuses it.
fn fit(provider: Provider, value: String) -> Option<String> {
    match provider {
        // Labels: lower case letters, digits, `_` and `-`, at most 63. Anything else never got in.
        Provider::Gcp => {
            let is_label = |v: &str| v.len() <= 63 && v.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'));
            if is_label(&value) {
                return Some(value);
            }
            let label = value.trim().to_lowercase();
            is_label(&label).then_some(label)
        }
        // Letters, digits, spaces and `_ . : / = + - @`.
        Provider::Aws => value.chars().all(|c| c.is_alphanumeric() || " _.:/=+-@".contains(c)).then_some(value),
        Provider::Azure => Some(value),
    }
}

/// A valid GCP label key: starts with a lower-case letter; lower case letters, digits, `_`, `-`.
pub(crate) fn is_gcp_label(key: &str) -> bool {
    key.len() <= 63
        && key.starts_with(|c: char| c.is_ascii_lowercase())
        && key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// Tags that tools and the clouds put on resources; none of them is a key of the taxonomy.
fn tooling_tags(rng: &mut Rng, mess: &Mess, s: &Subject, tags: &mut Vec<(String, String)>) {
    let Subject { app, role, env, .. } = s;
    let mut add = |rng: &mut Rng, tag: &dyn Fn() -> (String, String)| {
        if rng.chance(mess.tooling) {
            tags.push(tag());
        }
    };
    match s.provider {
        Provider::Aws => {
            add(rng, &|| ("aws:cloudformation:stack-name".into(), format!("{app}-{env}-stack")));
            let tool = *rng.pick(&["terraform", "cdk", "console", "pulumi"]);
            add(rng, &|| ("created-by".into(), tool.into()));
            if s.shape == Shape::Ec2Instance {
                add(rng, &|| ("aws:autoscaling:groupName".into(), format!("{app}-{role}-{env}-asg")));
                add(rng, &|| (format!("kubernetes.io/cluster/{app}-k8s-{env}"), "owned".into()));
            }
        }
        Provider::Azure => {
            let tool = *rng.pick(&["terraform", "bicep", "portal"]);
            add(rng, &|| ("CreatedBy".into(), tool.into()));
            add(rng, &|| ("createdOn".into(), s.created.to_owned()));
        }
        Provider::Gcp => {
            let tool = *rng.pick(&["terraform", "deployment-manager"]);
            add(rng, &|| ("created_by".into(), tool.into()));
            if s.shape == Shape::ComputeInstance {
                add(rng, &|| ("goog-gke-node".into(), String::new()));
            }
        }
    }
}
