use std::collections::BTreeMap;

use super::normalize::{KeyMapping, ValueMapping};
use super::*;

fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn normalized(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    normalize(&TagSchema::seed_default(), &tags(pairs)).into_iter().map(|(k, t)| (k, t.value)).collect()
}

#[test]
fn the_seed_environment_examples() {
    // AWS {"env":"prod"}, GCP {"Environment":"PROD"}, Azure {"Env":"Production"}
    for native in [("env", "prod"), ("Environment", "PROD"), ("Env", "Production")] {
        assert_eq!(normalized(&[native]), tags(&[("environment", "production")]), "{native:?}");
    }
}

#[test]
fn the_seed_cost_center_and_team_examples() {
    for native in [("CostCenter", "ENG"), ("cost_center", "eng"), ("costcenter", "ENG-001")] {
        assert_eq!(normalized(&[native]), tags(&[("cost-center", "engineering")]), "{native:?}");
    }
    assert_eq!(normalized(&[("Team", "PLATFORM")]), tags(&[("team", "platform")]));
    assert_eq!(normalized(&[("team", "Platform")]), tags(&[("team", "platform")]));
}

#[test]
fn key_forms() {
    assert_eq!(key_form("CostCenter"), "cost-center");
    assert_eq!(key_form("cost_center"), "cost-center");
    assert_eq!(key_form("  Cost   Center "), "cost-center");
    assert_eq!(key_form("environment_name"), "environment-name");
    assert_eq!(key_form("APIKey"), "api-key");
    assert_eq!(key_form("aws:cloudformation:stack-name"), "cloudformation-stack-name");
    assert_eq!(key_form("ms:Env"), "env");
    assert_eq!(key_form("aws:"), "aws");
    assert_eq!(key_form(" - "), "");
}

#[test]
fn aliases_prefixes_and_stray_whitespace() {
    assert_eq!(normalized(&[("environment_name", " prod ")]), tags(&[("environment", "production")]));
    assert_eq!(normalized(&[("ms:Env", "Production")]), tags(&[("environment", "production")]));
    assert_eq!(normalized(&[("APP", " Web  API ")]), tags(&[("application", "web api")]));
}

#[test]
fn unknown_keys_are_kept_normalized_in_form_only() {
    assert_eq!(normalized(&[("Cost Centre Code", "  X  Y ")]), tags(&[("cost-centre-code", "X Y")]));
    let t = &normalize(&TagSchema::seed_default(), &tags(&[("Cost Centre Code", "X")]))["cost-centre-code"];
    assert_eq!(t.key_mapping, KeyMapping::Unknown);
}

#[test]
fn provenance_says_which_native_tag_and_mapping() {
    let out = normalize(&TagSchema::seed_default(), &tags(&[("Env", "PROD")]));
    let t = &out["environment"];
    assert_eq!((t.native_key.as_str(), t.native_value.as_str()), ("Env", "PROD"));
    assert_eq!(t.key_mapping, KeyMapping::Alias);
    assert_eq!(t.value_mapping, ValueMapping::Alias);
    let t = &normalize(&TagSchema::seed_default(), &tags(&[("Environment", "staging")]))["environment"];
    assert_eq!((t.key_mapping.clone(), t.value_mapping.clone()), (KeyMapping::Canonical, ValueMapping::Kept));
}

#[test]
fn the_canonical_spelling_wins_a_conflict() {
    assert_eq!(normalized(&[("env", "dev"), ("Environment", "prod")]), tags(&[("environment", "production")]));
    assert_eq!(normalized(&[("Env", "dev"), ("stage", "prod")]), tags(&[("environment", "development")]));
}

#[test]
fn values_outside_the_allowed_set_are_flagged_not_dropped() {
    let out = normalize(&TagSchema::seed_default(), &tags(&[("env", "Banana"), ("owner", "")]));
    assert_eq!(out["environment"].value, "banana");
    assert!(!out["environment"].allowed);
    assert!(!out.contains_key("owner"), "empty values carry nothing");
}

/// A small deterministic generator of messy tag sets, in the ways real exports are messy.
struct Messy(u64);

impl Messy {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, options: &[&'a str]) -> &'a str {
        options[(self.next() % options.len() as u64) as usize]
    }

    fn mess(&mut self, s: &str) -> String {
        let mut out: String = s
            .chars()
            .map(|c| match self.next() % 4 {
                0 => c.to_ascii_uppercase(),
                1 if c == '-' => '_',
                2 if c == '-' => ' ',
                _ => c,
            })
            .collect();
        if self.next().is_multiple_of(3) {
            out = format!("  {out} ");
        }
        if self.next().is_multiple_of(5) {
            out = format!("{}{out}", self.pick(&["aws:", "ms:", "gcp:"]));
        }
        out
    }

    fn tag_set(&mut self) -> BTreeMap<String, String> {
        let keys = ["env", "environment", "cost-center", "costcenter", "team", "owner", "app", "project", "stack-name", "Data Class"];
        let values = ["prod", "Production", "ENG-001", "eng", "platform", "a b  c", "qa", "", "X", "web-api"];
        (0..self.next() % 6)
            .map(|_| {
                let (k, v) = (self.pick(&keys), self.pick(&values));
                (self.mess(k), self.mess(v))
            })
            .collect()
    }
}

#[test]
fn normalizing_twice_equals_normalizing_once() {
    let schema = TagSchema::seed_default();
    let mut gen = Messy(0x9e37_79b9_7f4a_7c15);
    for _ in 0..5_000 {
        let native = gen.tag_set();
        let once = normalize(&schema, &native);
        let as_native: BTreeMap<String, String> = once.values().map(|t| (t.key.clone(), t.value.clone())).collect();
        let twice = normalize(&schema, &as_native);
        let values = |m: &BTreeMap<String, NormalizedTag>| m.values().map(|t| (t.key.clone(), t.value.clone())).collect::<Vec<_>>();
        assert_eq!(values(&once), values(&twice), "native: {native:?}");
        assert_eq!(once, normalize(&schema, &native), "deterministic for the same input");
    }
}

#[test]
fn key_form_is_idempotent() {
    let mut gen = Messy(42);
    for _ in 0..5_000 {
        let base = gen.pick(&["CostCenter", "cost-center", "APIKey", "a.b/c:d", "Env", "x"]);
        let raw = gen.mess(base);
        assert_eq!(key_form(&key_form(&raw)), key_form(&raw), "{raw:?}");
        assert_eq!(value_form(&value_form(&raw)), value_form(&raw));
    }
}

/// Rules over generated resources: derivation depends on the inputs only — not on the order rules
/// were listed in, nor on repetition.
#[test]
fn derivation_is_deterministic_for_the_same_inputs() {
    use chrono::Utc;
    use regex::Regex;
    let mut gen = Messy(7);
    let names = ["web-server-prod-001", "payments-api-stg", "etl-worker-dev-03", "analytics-db-prod", "batch"];
    let app = Regex::new(r"^(?P<app>[a-z]+)-").unwrap();
    let mut rules = Vec::new();
    for i in 0..60u32 {
        let key = gen.pick(&["environment", "team", "owner", "application", "cost-center"]).to_owned();
        let field = match gen.next() % 4 {
            0 => Field::Name,
            1 => Field::Account,
            2 => Field::NativeTag("team".into()),
            _ => Field::ResourceType,
        };
        let operator = match gen.next() % 4 {
            0 => Operator::Contains(gen.pick(&["prod", "api", "db", "-"]).into()),
            1 => Operator::Equals(gen.pick(&["111", "222", "platform", "ec2"]).into()),
            2 => Operator::Matches(Regex::new(gen.pick(&["^web", "[0-9]+$", "stg"])).unwrap()),
            _ => Operator::Exists,
        };
        let action = if gen.next().is_multiple_of(5) {
            Action::NameCapture { pattern: app.clone(), group: "app".into() }
        } else {
            Action::Set(format!("v{}", gen.next() % 7))
        };
        rules.push(Rule {
            id: format!("r{i:03}"),
            key,
            priority: (gen.next() % 10) as u32,
            enabled: !gen.next().is_multiple_of(7),
            condition: Condition::Test { field, operator, ignore_case: gen.next().is_multiple_of(2) },
            action,
            effective_from: None,
            effective_to: None,
        });
    }
    let defaults = BTreeMap::from([("cost-center".to_owned(), "unallocated".to_owned())]);
    let config = TaggingConfig { version: 3, schema: TagSchema::seed_default(), rules: RuleSet::new(3, rules.clone(), defaults.clone()).unwrap() };
    rules.reverse();
    let reversed = TaggingConfig { version: 3, schema: TagSchema::seed_default(), rules: RuleSet::new(3, rules, defaults).unwrap() };
    let at = Utc::now();
    for i in 0..2_000 {
        let facts = ResourceFacts {
            provider: "aws".into(),
            account: gen.pick(&["111", "222", "333"]).into(),
            region: "us-east-1".into(),
            resource_type: gen.pick(&["ec2", "rds", "s3"]).into(),
            name: names[i % names.len()].into(),
            native_tags: gen.tag_set(),
            monthly_cost: None,
        };
        let once = derive(&config, &facts, &BTreeMap::new(), at);
        assert_eq!(once, derive(&config, &facts, &BTreeMap::new(), at), "{facts:?}");
        assert_eq!(once, derive(&reversed, &facts, &BTreeMap::new(), at), "rule listing order must not matter: {facts:?}");
    }
}

#[test]
fn native_tags_fill_keys_no_rule_sets_and_rules_beat_them() {
    use chrono::Utc;
    let rule = Rule {
        id: "prod-by-name".into(),
        key: "environment".into(),
        priority: 1,
        enabled: true,
        condition: Condition::Test { field: Field::Name, operator: Operator::Contains("prod".into()), ignore_case: false },
        action: Action::Set("production".into()),
        effective_from: None,
        effective_to: None,
    };
    let defaults = BTreeMap::from([("environment".to_owned(), "unallocated".to_owned()), ("owner".to_owned(), "unallocated".to_owned())]);
    let config = TaggingConfig { version: 1, schema: TagSchema::seed_default(), rules: RuleSet::new(1, vec![rule], defaults).unwrap() };
    let facts = |name: &str, native: &[(&str, &str)]| ResourceFacts {
        provider: "aws".into(),
        account: "1".into(),
        region: "r".into(),
        resource_type: "ec2".into(),
        name: name.into(),
        native_tags: tags(native),
        monthly_cost: None,
    };
    let d = derive(&config, &facts("web-prod-1", &[("Env", "dev"), ("Owner", "ann"), ("stack", "x")]), &BTreeMap::new(), Utc::now());
    assert_eq!(d["environment"].origin, Origin::Rule { rule_id: "prod-by-name".into() });
    assert!(matches!(&d["owner"].origin, Origin::Native { native_key, .. } if native_key == "Owner"));
    assert!(!d.contains_key("stack"), "keys outside the schema never become virtual tags");
    let d = derive(&config, &facts("web-1", &[("Env", "DEV")]), &BTreeMap::new(), Utc::now());
    assert_eq!(d["environment"].value, "development");
    assert_eq!(d["owner"], DerivedTag { value: "unallocated".into(), origin: Origin::Default });
}
