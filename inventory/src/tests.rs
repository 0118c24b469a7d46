use std::collections::{BTreeMap, BTreeSet};

use vtag_domain::tagging::{normalize, TagSchema};

use super::*;
use crate::messy::is_gcp_label;

fn generator(seed: u64) -> Generator {
    Generator::new(GeneratorConfig::new(seed)).unwrap()
}

fn jsonl(seed: u64, count: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for r in generator(seed).resources(count) {
        serde_json::to_writer(&mut out, &r.observed).unwrap();
        out.push(b'\n');
    }
    out
}

fn sample() -> Vec<GeneratedResource> {
    generator(42).resources(5000).collect()
}

/// FNV-1a: a stable fingerprint of bytes, independent of std's hasher.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3))
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    assert_eq!(jsonl(42, 2000), jsonl(42, 2000));
    assert_ne!(jsonl(42, 2000), jsonl(43, 2000));
}

const PINNED_SEED_42_FIRST_1000: u64 = 143_166_729_819_421_333;

#[test]
fn output_is_pinned() {
    // Seeded inventories must not drift between versions (benchmarks and scores compare across
    // them). Change this only for a deliberate change of the generated data, and say so.
    assert_eq!(fnv1a(&jsonl(42, 1000)), PINNED_SEED_42_FIRST_1000, "seed 42 no longer generates the same inventory");
}

#[test]
fn a_resource_does_not_depend_on_how_many_are_generated() {
    let g = generator(7);
    let few: Vec<_> = g.resources(50).collect();
    let many: Vec<_> = g.resources(500).collect();
    assert_eq!(few[..], many[..50]);
    assert_eq!(g.resource(437), many[437]);
    // and not on the generator instance either
    assert_eq!(generator(7).resource(437), many[437]);
}

#[test]
fn cloud_ids_have_each_providers_shape() {
    let mut ids = BTreeSet::new();
    let mut providers = BTreeSet::new();
    for r in sample() {
        let o = &r.observed;
        providers.insert(o.provider);
        assert!(ids.insert(o.resource_id.clone()), "duplicate id {}", o.resource_id);
        match o.provider {
            "aws" => {
                assert!(o.account_id.len() == 12 && o.account_id.bytes().all(|b| b.is_ascii_digit()), "{}", o.account_id);
                let parts: Vec<&str> = o.resource_id.splitn(6, ':').collect();
                assert_eq!(parts.len(), 6, "{}", o.resource_id);
                assert_eq!(parts[..2], ["arn", "aws"]);
                let service = match o.resource_type {
                    "ec2" | "ebs-volume" => "ec2",
                    "elb" => "elasticloadbalancing",
                    other => other,
                };
                assert_eq!(parts[2], service, "{}", o.resource_id);
                if o.resource_type == "s3" {
                    assert_eq!(o.resource_id, format!("arn:aws:s3:::{}", o.name));
                } else {
                    assert_eq!((parts[3], parts[4]), (o.region.as_str(), o.account_id.as_str()), "{}", o.resource_id);
                }
                if o.resource_type == "ec2" {
                    let id = parts[5].strip_prefix("instance/i-0").unwrap();
                    assert!(id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()), "{}", o.resource_id);
                }
            }
            "azure" => {
                uuid::Uuid::parse_str(&o.account_id).unwrap();
                let prefix = format!("/subscriptions/{}/resourceGroups/rg-", o.account_id);
                assert!(o.resource_id.starts_with(&prefix), "{}", o.resource_id);
                assert!(o.resource_id.contains("/providers/Microsoft."), "{}", o.resource_id);
                assert!(o.resource_id.ends_with(&format!("/{}", o.name)), "{}", o.resource_id);
                if o.resource_type == "storage-account" {
                    assert!((3..=24).contains(&o.name.len()), "{}", o.name);
                    assert!(o.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()), "{}", o.name);
                }
            }
            "gcp" => {
                let p = &o.account_id;
                assert!((6..=30).contains(&p.len()) && is_gcp_label(p) && !p.contains('_'), "project id {p}");
                assert!(o.resource_id.starts_with("//") && o.resource_id.contains(".googleapis.com/projects/"));
                assert!(o.resource_id.ends_with(&format!("/{}", o.name)), "{}", o.resource_id);
                if o.resource_type == "gcs-bucket" {
                    assert_eq!(o.resource_id, format!("//storage.googleapis.com/projects/_/buckets/{}", o.name));
                } else {
                    assert!(o.resource_id.contains(&format!("/projects/{p}/")), "{}", o.resource_id);
                }
                if o.resource_type == "compute-instance" {
                    assert!(o.resource_id.contains(&format!("/zones/{}/instances/", o.region)), "{}", o.resource_id);
                }
            }
            other => panic!("provider {other}"),
        }
    }
    assert_eq!(providers.len(), 3);
}

#[test]
fn every_item_is_one_the_observe_endpoint_accepts() {
    for r in sample() {
        let o = r.observed.clone();
        vtag_domain::Provider::parse(o.provider).unwrap();
        vtag_domain::CloudResourceId::parse(&o.resource_id).unwrap();
        vtag_domain::ResourceDescription::parse(o.account_id, o.region, o.resource_type.to_owned(), o.name, o.metadata)
            .unwrap();
        vtag_domain::NativeTags::parse(o.native_tags).unwrap();
        let json = serde_json::to_value(&r.observed).unwrap();
        let fields: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(fields, ["account_id", "metadata", "name", "native_tags", "provider", "region", "resource_id", "resource_type"]);
    }
}

#[test]
fn tags_obey_each_clouds_rules() {
    for r in sample() {
        for (k, v) in &r.observed.native_tags {
            match r.observed.provider {
                // GCP labels: keys start with a lower-case letter; keys and values are lower-case
                // letters, digits, `_` and `-`, at most 63 characters
                "gcp" => {
                    assert!(is_gcp_label(k), "label key {k:?}");
                    assert!(v.is_empty() || is_gcp_label(&format!("a{v}")), "label value {v:?}");
                }
                "aws" => {
                    let ok = |s: &str| s.chars().all(|c| c.is_alphanumeric() || " _.:/=+-@".contains(c));
                    assert!(k.len() <= 128 && ok(k) && v.len() <= 256 && ok(v), "{k:?}={v:?}");
                }
                _ => assert!(!k.contains(['<', '>', '%', '&', '\\', '?', '/']), "azure key {k:?}"),
            }
        }
    }
}

#[test]
fn a_measurable_share_of_tags_is_messy_or_missing() {
    let schema = TagSchema::seed_default();
    let (mut truth_tags, mut found, mut keys, mut messy_keys, mut values, mut messy_values) = (0, 0, 0, 0, 0, 0);
    let mut untagged = 0;
    let resources = sample();
    for r in &resources {
        let native = &r.observed.native_tags;
        let mapped: Vec<(&String, &String, String)> = native
            .iter()
            .filter_map(|(k, v)| schema.lookup(k).map(|c| (k, v, c.key.clone())))
            .collect();
        untagged += usize::from(mapped.is_empty());
        truth_tags += r.truth.len();
        found += r.truth.keys().filter(|t| mapped.iter().any(|(_, _, c)| c == *t)).count();
        for (k, v, canonical) in mapped {
            keys += 1;
            messy_keys += usize::from(*k != canonical);
            values += 1;
            messy_values += usize::from(*v != r.truth[&canonical]);
        }
    }
    let share = |part: usize, whole: usize| part as f64 / whole as f64;
    let missing = 1.0 - share(found, truth_tags);
    assert!((0.3..0.6).contains(&missing), "missing {missing}");
    assert!(share(messy_keys, keys) > 0.4, "messy keys {}", share(messy_keys, keys));
    assert!(share(messy_values, values) > 0.3, "messy values {}", share(messy_values, values));
    assert!((0.05..0.15).contains(&share(untagged, resources.len())), "untagged {}", share(untagged, resources.len()));
}

/// The heart of the crate's promise: every native tag of the taxonomy, in whatever spelling,
/// normalizes with the seed schema to the truth — except the few deliberately wrong ones.
#[test]
fn every_messy_spelling_normalizes_to_the_truth() {
    let schema = TagSchema::seed_default();
    let (mut mapped, mut wrong) = (0, 0);
    for r in sample() {
        for (k, v) in &r.observed.native_tags {
            let one = BTreeMap::from([(k.clone(), v.clone())]);
            let Some(tag) = normalize(&schema, &one).into_values().next() else { continue };
            if schema.lookup(k).is_none() {
                continue; // a tooling tag or the `Name` tag
            }
            mapped += 1;
            let truth = r.truth.get(&tag.key).unwrap_or_else(|| panic!("{k}={v:?} maps to {} not in the truth", tag.key));
            if r.wrong_tags.contains(k) {
                wrong += 1;
                assert_ne!(&tag.value, truth, "{k}={v:?} is marked wrong but normalizes to the truth");
            } else {
                assert_eq!(&tag.value, truth, "{k}={v:?} on {}", r.observed.resource_id);
            }
        }
        // all together too: where several spellings of one key meet, the normalizer picks one
        let together = normalize(&schema, &r.observed.native_tags);
        for (key, truth) in &r.truth {
            if let Some(tag) = together.get(key).filter(|t| !r.wrong_tags.contains(&t.native_key)) {
                assert_eq!(&tag.value, truth, "{key} on {}", r.observed.resource_id);
            }
        }
    }
    let share = wrong as f64 / mapped as f64;
    assert!((0.015..0.05).contains(&share), "wrong share {share} (configured 0.03)");
}

#[test]
fn without_mess_the_native_tags_are_the_truth() {
    let mut config = GeneratorConfig::new(3);
    config.mess = Mess { untagged: 0.0, missing: 0.0, messy_keys: 0.0, messy_values: 0.0, wrong: 0.0, duplicates: 0.0, tooling: 0.0 };
    for r in Generator::new(config).unwrap().resources(500) {
        // habit still leaves some keys out (and GCP labels cannot hold an owner's e-mail address):
        // what is there is exactly the truth
        for (k, v) in r.observed.native_tags.iter().filter(|(k, _)| *k != "Name") {
            assert_eq!(r.truth.get(k), Some(v), "{k}");
        }
    }
}

#[test]
fn names_carry_the_true_environment_when_they_carry_one() {
    let shorts = ["prod", "stg", "dev", "sbx", "test"];
    let short = |canonical: &str| match canonical {
        "production" => "prod",
        "staging" => "stg",
        "development" => "dev",
        "sandbox" => "sbx",
        _ => "test",
    };
    let mut with_env = 0;
    for r in sample() {
        let expected = short(&r.truth["environment"]);
        let found: Vec<&str> = r.observed.name.split(['-', '_']).filter(|t| shorts.contains(t)).collect();
        assert!(found.iter().all(|t| *t == expected), "{} is {}", r.observed.name, r.truth["environment"]);
        with_env += usize::from(!found.is_empty());
    }
    assert!(with_env > 3000, "only {with_env} of 5000 names carry an environment");
}

#[test]
fn accounts_mostly_belong_to_one_team_and_owner() {
    let g = generator(42);
    assert_eq!(g.accounts().len(), 12);
    let providers: BTreeSet<_> = g.accounts().iter().map(|a| a.provider()).collect();
    assert_eq!(providers.len(), 3);
    let (mut same_owner, mut same_team, mut total) = (0, 0, 0);
    for r in g.resources(5000) {
        let a = g.accounts().iter().find(|a| a.id() == r.observed.account_id).unwrap();
        total += 1;
        same_owner += usize::from(r.truth["owner"] == a.owner());
        same_team += usize::from(r.truth["team"] == a.team());
        assert!(r.observed.metadata["account_name"] == a.name());
    }
    assert!(same_team as f64 / total as f64 > 0.85, "{same_team}/{total}");
    assert!(same_owner as f64 / total as f64 > 0.75, "{same_owner}/{total}");
}

#[test]
fn the_truth_uses_the_seed_taxonomy() {
    let schema = TagSchema::seed_default();
    let mut keys = BTreeSet::new();
    for r in sample() {
        for (k, v) in &r.truth {
            let canonical = schema.lookup(k).unwrap();
            assert_eq!(&canonical.key, k);
            assert!(canonical.allowed_values.is_empty() || canonical.allowed_values.contains(v), "{k}={v}");
            keys.insert(k.clone());
        }
        assert!(["environment", "cost-center", "owner", "team", "application"].iter().all(|k| r.truth.contains_key(*k)));
    }
    assert_eq!(keys.len(), schema.keys().len(), "every key of the taxonomy occurs: {keys:?}");
}

#[test]
fn bad_configurations_are_refused() {
    let mut c = GeneratorConfig::new(1);
    c.accounts = 0;
    assert!(Generator::new(c).is_err());
    let mut c = GeneratorConfig::new(1);
    c.mess.wrong = 1.5;
    assert!(Generator::new(c).is_err());
}
