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

/// The engine as first written — maps cloned per resource, every test evaluated as spelled, rule
/// after rule — kept to check the compiled evaluation against.
/// What rules read of `facts`, with the given native (normalized) and virtual tags.
fn view<'a>(facts: &'a ResourceFacts, native: &'a BTreeMap<String, String>, virtual_tags: &'a BTreeMap<String, String>) -> Facts<'a> {
    Facts {
        name: &facts.name,
        provider: &facts.provider,
        account: &facts.account,
        region: &facts.region,
        resource_type: &facts.resource_type,
        native,
        virtual_tags,
        monthly_cost: facts.monthly_cost,
    }
}

mod reference {
    use std::borrow::Cow;
    use std::collections::BTreeMap;

    use chrono::{DateTime, Utc};

    use crate::tagging::*;

    const PROVIDER_PREFIXES: [&str; 5] = ["aws:", "azure:", "ms:", "gcp:", "goog-"];

    pub fn key_form(raw: &str) -> String {
        let trimmed = raw.trim();
        let lower_prefix = trimmed.to_ascii_lowercase();
        let unprefixed = PROVIDER_PREFIXES
            .iter()
            .find(|p| lower_prefix.starts_with(*p) && trimmed.len() > p.len())
            .map_or(trimmed, |p| &trimmed[p.len()..]);
        let chars: Vec<char> = unprefixed.chars().collect();
        let mut out = String::new();
        for (i, &c) in chars.iter().enumerate() {
            if c.is_alphanumeric() {
                let prev = i.checked_sub(1).map(|j| chars[j]);
                let next = chars.get(i + 1);
                let boundary = c.is_uppercase()
                    && prev.is_some_and(|p| p.is_lowercase() || p.is_ascii_digit() || (p.is_uppercase() && next.is_some_and(|n| n.is_lowercase())));
                if boundary && !out.is_empty() && !out.ends_with('-') {
                    out.push('-');
                }
                out.extend(c.to_lowercase());
            } else if !out.is_empty() && !out.ends_with('-') {
                out.push('-');
            }
        }
        while out.ends_with('-') {
            out.pop();
        }
        out
    }

    pub fn value_form(raw: &str) -> String {
        raw.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    pub fn lookup<'s>(schema: &'s TagSchema, form: &str) -> Option<&'s CanonicalKey> {
        let keys = schema.keys();
        keys.iter().find(|k| key_form(&k.key) == form).or_else(|| keys.iter().find(|k| k.key_aliases.iter().any(|a| key_form(a) == form)))
    }

    pub fn normalize(schema: &TagSchema, native: &BTreeMap<String, String>) -> BTreeMap<String, NormalizedTag> {
        let mut out: BTreeMap<String, (u8, NormalizedTag)> = BTreeMap::new();
        for (native_key, native_value) in native {
            let value = value_form(native_value);
            let form = key_form(native_key);
            if value.is_empty() || form.is_empty() {
                continue;
            }
            let tag = match lookup(schema, &form) {
                Some(canonical) => canonical_tag(canonical, native_key, native_value, &form, value),
                None => NormalizedTag {
                    key: form,
                    value,
                    native_key: native_key.clone(),
                    native_value: native_value.clone(),
                    key_mapping: KeyMapping::Unknown,
                    value_mapping: ValueMapping::Kept,
                    allowed: true,
                },
            };
            let rank = u8::from(tag.key_mapping != KeyMapping::Canonical);
            match out.get(&tag.key) {
                Some((existing, _)) if *existing <= rank => {}
                _ => {
                    out.insert(tag.key.clone(), (rank, tag));
                }
            }
        }
        out.into_iter().map(|(k, (_, t))| (k, t)).collect()
    }

    fn canonical_tag(canonical: &CanonicalKey, native_key: &str, native_value: &str, form: &str, value: String) -> NormalizedTag {
        let key_mapping = if form == key_form(&canonical.key) { KeyMapping::Canonical } else { KeyMapping::Alias };
        let lower = value.to_lowercase();
        let (value, value_mapping) = if let Some(v) = canonical.value_aliases.get(&lower) {
            (v.clone(), if *v == value { ValueMapping::Kept } else { ValueMapping::Alias })
        } else if let Some(v) = canonical.allowed_values.iter().find(|a| a.to_lowercase() == lower) {
            (v.clone(), if *v == value { ValueMapping::Kept } else { ValueMapping::Case })
        } else if canonical.lowercase_values && lower != value {
            (lower, ValueMapping::Case)
        } else {
            (value, ValueMapping::Kept)
        };
        let allowed = canonical.allowed_values.is_empty() || canonical.allowed_values.contains(&value);
        NormalizedTag {
            key: canonical.key.clone(),
            value,
            native_key: native_key.to_owned(),
            native_value: native_value.to_owned(),
            key_mapping,
            value_mapping,
            allowed,
        }
    }

    fn text<'f>(facts: &Facts<'f>, field: &Field) -> Option<Cow<'f, str>> {
        match field {
            Field::Name => Some(Cow::Borrowed(facts.name)),
            Field::Provider => Some(Cow::Borrowed(facts.provider)),
            Field::Account => Some(Cow::Borrowed(facts.account)),
            Field::Region => Some(Cow::Borrowed(facts.region)),
            Field::ResourceType => Some(Cow::Borrowed(facts.resource_type)),
            Field::NativeTag(k) => facts.native.get(k).map(|v| Cow::Borrowed(v.as_str())),
            Field::VirtualTag(k) => facts.virtual_tags.get(k).map(|v| Cow::Borrowed(v.as_str())),
            Field::MonthlyCost => facts.monthly_cost.map(|c| Cow::Owned(c.to_string())),
        }
    }

    pub fn holds(condition: &Condition, facts: &Facts<'_>) -> bool {
        match condition {
            Condition::Always => true,
            Condition::All(cs) => cs.iter().all(|c| holds(c, facts)),
            Condition::Any(cs) => cs.iter().any(|c| holds(c, facts)),
            Condition::Not(c) => !holds(c, facts),
            Condition::Test { field, operator, ignore_case } => test(facts, field, operator, *ignore_case),
        }
    }

    fn test(facts: &Facts<'_>, field: &Field, operator: &Operator, ignore_case: bool) -> bool {
        let fold = |s: &str| if ignore_case { s.to_lowercase() } else { s.to_owned() };
        let number = || match field {
            Field::MonthlyCost => facts.monthly_cost,
            other => text(facts, other).and_then(|t| t.trim().parse().ok()),
        };
        match operator {
            Operator::Exists => text(facts, field).is_some(),
            Operator::GreaterThan(n) => number().is_some_and(|v| v > *n),
            Operator::GreaterOrEqual(n) => number().is_some_and(|v| v >= *n),
            Operator::LessThan(n) => number().is_some_and(|v| v < *n),
            Operator::LessOrEqual(n) => number().is_some_and(|v| v <= *n),
            Operator::Matches(re) => text(facts, field).is_some_and(|v| re.is_match(&v)),
            text_op => {
                let Some(raw) = text(facts, field) else { return false };
                let value = fold(&raw);
                match text_op {
                    Operator::Equals(s) => value == fold(s),
                    Operator::In(list) => list.iter().any(|s| value == fold(s)),
                    Operator::Contains(s) => value.contains(&fold(s)),
                    Operator::StartsWith(s) => value.starts_with(&fold(s)),
                    Operator::EndsWith(s) => value.ends_with(&fold(s)),
                    _ => unreachable!("handled above"),
                }
            }
        }
    }

    pub fn evaluate(rule: &Rule, facts: &Facts<'_>, at: DateTime<Utc>) -> Option<String> {
        let in_effect = rule.enabled && rule.effective_from.is_none_or(|f| at >= f) && rule.effective_to.is_none_or(|t| at < t);
        if !in_effect || !holds(&rule.condition, facts) {
            return None;
        }
        match &rule.action {
            Action::Set(v) => Some(v.clone()),
            Action::NameCapture { pattern, group } => pattern.captures(facts.name).and_then(|c| c.name(group)).map(|m| m.as_str().to_owned()),
            Action::Lookup { field, table } => text(facts, field).and_then(|v| table.get(v.as_ref()).cloned()),
        }
    }

    /// Derivation and the rules that matched on the way.
    pub fn derive(
        config: &TaggingConfig,
        facts: &ResourceFacts,
        people: &BTreeMap<String, String>,
        at: DateTime<Utc>,
    ) -> (BTreeMap<String, DerivedTag>, Vec<RuleHit>) {
        let normalized = normalize(&config.schema, &facts.native_tags);
        let native: BTreeMap<String, String> = normalized.iter().map(|(k, t)| (k.clone(), t.value.clone())).collect();
        let mut out: BTreeMap<String, DerivedTag> = normalized
            .into_values()
            .filter(|t| t.key_mapping != KeyMapping::Unknown)
            .map(|t| {
                let origin = Origin::Native {
                    native_key: t.native_key,
                    native_value: t.native_value,
                    key_mapping: t.key_mapping,
                    value_mapping: t.value_mapping,
                };
                (t.key, DerivedTag { value: t.value, origin })
            })
            .collect();
        let mut effective = native.clone();
        effective.extend(people.iter().map(|(k, v)| (k.clone(), v.clone())));
        let mut hits = Vec::new();
        for (key, rules) in config.rules.plan() {
            let view = super::view(facts, &native, &effective);
            let mut winner = None;
            for rule in rules {
                if let Some(value) = evaluate(rule, &view, at) {
                    hits.push(RuleHit { rule_id: rule.id.clone(), won: winner.is_none() });
                    winner.get_or_insert((value, rule));
                }
            }
            let chosen = match winner {
                Some((value, rule)) => Some(DerivedTag { value, origin: Origin::Rule { rule_id: rule.id.clone() } }),
                None if out.contains_key(key) => None,
                None => config.rules.defaults().get(key).map(|v| DerivedTag { value: v.clone(), origin: Origin::Default }),
            };
            if let Some(tag) = chosen {
                if !people.contains_key(key) {
                    effective.insert(key.to_owned(), tag.value.clone());
                }
                out.insert(key.to_owned(), tag);
            }
        }
        (out, hits)
    }
}

/// Texts as inventories hold them, with the non-ASCII and line-broken ones every fast path must
/// hand over to the general one (`K` is the Kelvin sign, which matches `k` ignoring case).
const TEXTS: [&str; 13] = [
    "web-server-prod-001",
    "api-web-1",
    "WEB-Prod-2",
    "payments-api-stg",
    "etl_worker_dev_03",
    "analytics-db-prod",
    "batch",
    "\u{212A}elvin-web-1",
    "ÄRGER-db-prod",
    "line\nweb-x",
    "",
    " padded prod ",
    "ΣΑΣ-eu",
];

const OPERANDS: [&str; 22] = [
    "prod", "production", "Production", "web", "WEB-", "111", "222", "eu", "EU-", "ec2", "RDS", "platform", "Platform", "eng",
    "engineering", "ärger", "\u{212A}", "-", "", "aws", "σας-eu", "5",
];

/// Keys rules derive; a key's rules read only the virtual tags of keys before it (no cycles).
const RULE_KEYS: [&str; 6] = ["environment", "team", "cost-center", "business-unit", "owner", "x-flag"];

impl Messy {
    fn chance(&mut self, one_in: u64) -> bool {
        self.next().is_multiple_of(one_in)
    }

    fn operand(&mut self) -> String {
        let s = self.pick(&OPERANDS);
        if self.chance(4) {
            s.to_uppercase()
        } else {
            s.to_owned()
        }
    }

    fn field(&mut self, key: usize) -> Field {
        match self.next() % 10 {
            0 | 1 => Field::Name,
            2 => Field::Provider,
            3 => Field::Account,
            4 => Field::Region,
            5 => Field::ResourceType,
            6 => Field::MonthlyCost,
            7 => Field::NativeTag(self.pick(&["environment", "team", "cost-center", "created-by", "owner"]).into()),
            _ => {
                let readable: Vec<&str> = RULE_KEYS[..key].iter().copied().chain(["project", "application"]).collect();
                Field::VirtualTag(self.pick(&readable).into())
            }
        }
    }

    fn regex(&mut self) -> regex::Regex {
        let pattern = self.pick(&["^web", "^WEB-", "prod", "^pay", "[0-9]+$", "^ärger", "^k", "^line", "(?m)^web", "^σας", "^web-(batch|etl)-1", "^pay|prod", "^ww?eb", "^a\\|b"]);
        let mut builder = regex::RegexBuilder::new(pattern);
        builder.case_insensitive(self.chance(2));
        // Flags the pattern does not show: a multi-line `^` also matches after a line terminator.
        if self.chance(4) {
            builder.multi_line(true).line_terminator(*self.pick(&["\n", "-", "x", "_"]).as_bytes().first().unwrap());
        }
        builder.build().unwrap()
    }

    fn operator(&mut self) -> Operator {
        match self.next() % 11 {
            0 | 1 => Operator::Equals(self.operand()),
            2 => Operator::In((0..1 + self.next() % 3).map(|_| self.operand()).collect()),
            3 => Operator::Contains(self.operand()),
            4 => Operator::StartsWith(self.operand()),
            5 => Operator::EndsWith(self.operand()),
            6 => Operator::Matches(self.regex()),
            7 => Operator::Exists,
            8 => Operator::GreaterThan(*self.pick_f64(&[0.0, 5.0, 100.0, 620.0])),
            9 => Operator::LessOrEqual(*self.pick_f64(&[0.0, 5.0, 100.0, 620.0])),
            _ => Operator::GreaterOrEqual(*self.pick_f64(&[5.0, 12.5])),
        }
    }

    fn pick_f64<'a>(&mut self, options: &'a [f64]) -> &'a f64 {
        &options[(self.next() % options.len() as u64) as usize]
    }

    fn test(&mut self, key: usize) -> Condition {
        Condition::Test { field: self.field(key), operator: self.operator(), ignore_case: self.chance(2) }
    }

    fn condition(&mut self, key: usize, depth: u32) -> Condition {
        let several = |gen: &mut Self| (0..1 + gen.next() % 3).map(|_| gen.condition(key, depth - 1)).collect();
        match self.next() % 9 {
            0 if depth > 0 => Condition::All(several(self)),
            1 if depth > 0 => Condition::Any(several(self)),
            2 if depth > 0 => Condition::Not(Box::new(self.condition(key, depth - 1))),
            3 if self.chance(3) => Condition::Always,
            _ => self.test(key),
        }
    }

    fn action(&mut self, key: usize) -> Action {
        match self.next() % 6 {
            0 => Action::NameCapture { pattern: regex::Regex::new(r"^(?P<app>[a-z]+)-").unwrap(), group: "app".into() },
            1 => {
                let table = (0..3).map(|i| (self.operand(), format!("looked-up-{i}"))).collect();
                Action::Lookup { field: self.field(key), table }
            }
            _ => Action::Set(self.pick(&["production", "staging", "platform", "v1", "unallocated"]).into()),
        }
    }

    fn rule(&mut self, id: usize, key: usize, priority: u32, condition: Condition, at: chrono::DateTime<chrono::Utc>) -> Rule {
        let hour = chrono::Duration::hours(1);
        let action = self.action(key);
        Rule {
            id: format!("r{id:04}"),
            key: RULE_KEYS[key].into(),
            priority,
            enabled: !self.chance(9),
            condition,
            action,
            effective_from: self.chance(6).then(|| if self.chance(2) { at - hour } else { at + hour }),
            effective_to: self.chance(6).then(|| if self.chance(2) { at } else { at + hour }),
        }
    }

    /// A rule set as they grow: scattered rules, chains of `equals`/`in` on one field (which the
    /// engine indexes), runs sharing a test (which it evaluates once), all interleaved by priority.
    fn rule_set(&mut self, at: chrono::DateTime<chrono::Utc>) -> Vec<Rule> {
        let mut rules = Vec::new();
        for _ in 0..30 {
            let key = (self.next() % RULE_KEYS.len() as u64) as usize;
            let condition = self.condition(key, 2);
            let priority = (self.next() % 40) as u32;
            rules.push(self.rule(rules.len(), key, priority, condition, at));
        }
        for _ in 0..5 {
            let key = (self.next() % RULE_KEYS.len() as u64) as usize;
            let (field, other, ignore_case, shared) = (self.field(key), self.field(key), self.chance(3), self.test(key));
            let (base, guarded, prefixes) = ((self.next() % 40) as u32, self.chance(4), self.chance(3));
            for step in 0..4 + self.next() % 6 {
                let chained = |gen: &mut Self, field: &Field| {
                    let operator = match gen.next() % 4 {
                        0 => Operator::In((0..gen.next() % 3).map(|_| gen.operand()).collect()),
                        _ if prefixes => Operator::StartsWith(gen.operand()),
                        _ => Operator::Equals(gen.operand()),
                    };
                    Condition::Test { field: field.clone(), operator, ignore_case: ignore_case != gen.chance(9) }
                };
                let condition = match self.next() % 4 {
                    _ if guarded => Condition::All(vec![self.condition(key, 1), shared.clone()]),
                    0 => Condition::All(vec![self.test(key), chained(self, &field)]),
                    1 => Condition::Any(vec![chained(self, &field), chained(self, &other)]),
                    _ => chained(self, &field),
                };
                rules.push(self.rule(rules.len(), key, base + step as u32, condition, at));
            }
        }
        rules
    }

    fn resource(&mut self) -> ResourceFacts {
        let mut native_tags = self.tag_set();
        if self.chance(5) {
            native_tags.insert(self.pick(&["Ümgebung", "ÉQUIPE", "Team"]).into(), self.pick(&TEXTS).into());
        }
        ResourceFacts {
            provider: self.pick(&["aws", "gcp", "Azure"]).into(),
            account: self.pick(&["111", "222", "333", " 5 "]).into(),
            region: self.pick(&["eu-west-1", "us-east-1", "EU-central-1", "europe-west4"]).into(),
            resource_type: self.pick(&["ec2", "rds", "S3", "Rds"]).into(),
            name: self.pick(&TEXTS).into(),
            native_tags,
            monthly_cost: [None, Some(5.0), Some(620.0), Some(12.5)][(self.next() % 4) as usize],
        }
    }

    fn people(&mut self) -> BTreeMap<String, String> {
        match self.next() % 6 {
            0 => tags(&[("team", "platform")]),
            1 => tags(&[("environment", "Staging"), ("project", "web")]),
            _ => BTreeMap::new(),
        }
    }
}

/// A schema whose value aliases, allowed values and case rules overlap, beside the seed's.
fn overlapping_schema() -> TagSchema {
    let mut tier = CanonicalKey::new("tier", Priority::Low).allowed(&["Gold", "silver", "GOLD", "Straße"]).value_alias("silver", &["gold", "ag"]);
    tier.lowercase_values = false;
    TagSchema::new(vec![
        tier,
        CanonicalKey::new("team", Priority::High).aliases(&["squad", "tier"]).lowercase(),
        CanonicalKey::new("Environment", Priority::Critical).aliases(&["env", "team"]).allowed(&["production", "ärger"]),
        CanonicalKey::new("owner", Priority::Critical),
    ])
}

#[test]
fn compiled_evaluation_equals_the_reference() {
    use chrono::{TimeZone, Utc};
    let at = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
    let mut gen = Messy(0x5eed_cafe);
    let (mut hits_seen, mut indexed_wins, mut runs) = (0, 0, [0, 0]);
    for set in 0..60 {
        let rules = gen.rule_set(at);
        let defaults = if set % 2 == 0 { tags(&[("cost-center", "unallocated"), ("x-flag", "none")]) } else { BTreeMap::new() };
        let schema = if set % 3 == 0 { overlapping_schema() } else { TagSchema::seed_default() };
        let config = TaggingConfig { version: 1, schema, rules: RuleSet::new(1, rules, defaults).expect("acyclic by construction") };
        let compiled = format!("{:?}", config.rules);
        runs[0] += compiled.matches("Index {").count();
        runs[1] += compiled.matches("Guard {").count();
        for _ in 0..100 {
            let (facts, people) = (gen.resource(), gen.people());
            let (expected, expected_hits) = reference::derive(&config, &facts, &people, at);
            assert_eq!(derive(&config, &facts, &people, at), expected, "{facts:?} {people:?}");
            let hits = rule_hits(&config, &facts, &people, at);
            assert_eq!(hits, expected_hits, "{facts:?} {people:?}");
            hits_seen += hits.len();
            indexed_wins += hits.iter().filter(|h| h.won && h.rule_id.as_str() >= "r0030").count();
        }
    }
    // The generated rules do match, chained ones too, and runs were indexed and guarded: the
    // comparison is not vacuous.
    assert!(hits_seen > 10_000 && indexed_wins > 300, "{hits_seen} hits, {indexed_wins} won by chained rules");
    assert!(runs[0] > 60 && runs[1] > 10, "{} indexed runs, {} guarded runs", runs[0], runs[1]);
}

#[test]
fn public_rule_evaluation_equals_the_reference() {
    use chrono::{TimeZone, Utc};
    let at = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
    let mut gen = Messy(99);
    for _ in 0..20 {
        let rules = gen.rule_set(at);
        for _ in 0..30 {
            let facts = gen.resource();
            let virtual_tags = gen.people();
            let native: BTreeMap<String, String> =
                normalize(&TagSchema::seed_default(), &facts.native_tags).into_iter().map(|(k, t)| (k, t.value)).collect();
            let view = view(&facts, &native, &virtual_tags);
            for rule in &rules {
                assert_eq!(rule.condition.holds(&view), reference::holds(&rule.condition, &view), "{rule:?} {facts:?}");
                assert_eq!(rule.evaluate(&view, at), reference::evaluate(rule, &view, at), "{rule:?} {facts:?}");
            }
        }
    }
}

#[test]
fn fast_normalization_equals_the_reference() {
    let schemas = [TagSchema::seed_default(), overlapping_schema()];
    let mut gen = Messy(0xfeed);
    let unicode = [
        "Ümgebung", "ÉQUIPE", "CostÇenter", "ΣΑΣ", "Straße", "ärger", "\u{212A}ey", "a\u{a0}b", "x\t y", "\u{3000}z ", "goog-gke-node", "goog-",
        "-a", "a--b", "a-", "cost-center", "team",
    ];
    for i in 0..5_000 {
        let mut native = gen.tag_set();
        if gen.chance(3) {
            let (k, v) = (gen.pick(&unicode), gen.pick(&unicode));
            native.insert(gen.mess(k), gen.mess(v));
        }
        let schema = &schemas[i % 2];
        assert_eq!(normalize(schema, &native), reference::normalize(schema, &native), "{native:?}");
        for (k, v) in &native {
            assert_eq!(key_form(k), reference::key_form(k), "{k:?}");
            assert_eq!(value_form(v), reference::value_form(v), "{v:?}");
            assert_eq!(schema.lookup(k).map(|c| &c.key), reference::lookup(schema, &reference::key_form(k)).map(|c| &c.key), "{k:?}");
        }
    }
}

/// Regexes anchored on a literal are skipped for texts without it: under every flag the pattern
/// does not show (case, multi-line with any line terminator), exactly when the regex cannot match.
#[test]
fn regexes_skipped_by_their_literal_could_not_have_matched() {
    let patterns = [
        "^web", "^WEB-", "^web-(batch|etl)-1", "^pay|prod", "^ww?eb", "^k", "^line", "^a\\|b", "^api-WEB", "(^|[-_])prod([-_0-9]|$)",
        "web-", "\\x41PI", "\\x{41}pi-", "(?i)web", "x?web", "\\bweb\\b",
    ];
    let texts = TEXTS.iter().copied().chain(["x-web-2", "linex", "pay", "a|b", "API-web", "\u{212A}", "Api-x", "a_prod_1", "PROD", "xweb"]);
    let empty = BTreeMap::new();
    for pattern in patterns {
        for (ignore_case, terminator) in [(false, None), (true, None), (false, Some(b'\n')), (true, Some(b'-')), (false, Some(b'x')), (true, Some(b'_'))] {
            let mut builder = regex::RegexBuilder::new(pattern);
            builder.case_insensitive(ignore_case);
            if let Some(t) = terminator {
                builder.multi_line(true).line_terminator(t);
            }
            let condition = Condition::Test { field: Field::Name, operator: Operator::Matches(builder.build().unwrap()), ignore_case };
            for name in texts.clone() {
                let facts = Facts {
                    name,
                    provider: "aws",
                    account: "1",
                    region: "r",
                    resource_type: "t",
                    native: &empty,
                    virtual_tags: &empty,
                    monthly_cost: None,
                };
                assert_eq!(condition.holds(&facts), reference::holds(&condition, &facts), "{pattern} {ignore_case} {terminator:?} {name:?}");
            }
        }
    }
}

/// The literals of every regex on a field are found in one pass: overlapping and nested literals,
/// case and non-ASCII texts answer as each regex would alone.
#[test]
fn literals_found_together_equal_the_reference() {
    use chrono::{TimeZone, Utc};
    let at = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
    let patterns = ["^web", "eb-a", "b-api", "(?i)API", "web-api-[0-9]", "^pay", "ay-", "(^|-)prod(-|$)", "\\bk8s\\b"];
    let rules: Vec<Rule> = patterns
        .iter()
        .enumerate()
        .map(|(i, pattern)| Rule {
            id: format!("re{i}"),
            key: if i % 2 == 0 { "team".into() } else { "project".into() },
            priority: i as u32,
            enabled: true,
            condition: Condition::Test { field: Field::Name, operator: Operator::Matches(regex::Regex::new(pattern).unwrap()), ignore_case: false },
            action: Action::Set(format!("v{i}")),
            effective_from: None,
            effective_to: None,
        })
        .collect();
    let config = TaggingConfig { version: 1, schema: TagSchema::seed_default(), rules: RuleSet::new(1, rules, BTreeMap::new()).unwrap() };
    let names = ["web-api-1", "WEB-API-1", "xweb-ap", "pay-prod", "PAY-x", "k8s-web", "\u{212A}8s web", "wëb-api-2", "b-apiweb", "", "eb-api"];
    for name in names {
        let facts = ResourceFacts {
            provider: "aws".into(),
            account: "1".into(),
            region: "r".into(),
            resource_type: "t".into(),
            name: name.into(),
            native_tags: BTreeMap::new(),
            monthly_cost: None,
        };
        let (expected, expected_hits) = reference::derive(&config, &facts, &BTreeMap::new(), at);
        assert_eq!(derive(&config, &facts, &BTreeMap::new(), at), expected, "{name:?}");
        assert_eq!(rule_hits(&config, &facts, &BTreeMap::new(), at), expected_hits, "{name:?}");
    }
}

/// Rule sets reading more tag keys and regex literals than a resource keeps inline.
#[test]
fn wide_rule_sets_equal_the_reference() {
    use chrono::{TimeZone, Utc};
    let at = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
    let mut rules = Vec::new();
    for i in 0..90 {
        let condition = Condition::Any(vec![
            Condition::Test { field: Field::NativeTag(format!("k{}", i % 40)), operator: Operator::Equals(format!("v{i}")), ignore_case: false },
            Condition::Test { field: Field::VirtualTag(format!("k{}", (i + 7) % 40)), operator: Operator::Exists, ignore_case: false },
            Condition::Test { field: Field::Name, operator: Operator::Matches(regex::Regex::new(&format!("^n{i}-")).unwrap()), ignore_case: false },
        ]);
        let key = if i % 3 == 0 { "team" } else { "environment" };
        rules.push(Rule {
            id: format!("w{i:03}"),
            key: key.into(),
            priority: i,
            enabled: true,
            condition,
            action: Action::Set(format!("s{i}")),
            effective_from: None,
            effective_to: None,
        });
    }
    let config = TaggingConfig { version: 1, schema: TagSchema::seed_default(), rules: RuleSet::new(1, rules, BTreeMap::new()).unwrap() };
    for i in 0..200 {
        let facts = ResourceFacts {
            provider: "aws".into(),
            account: "1".into(),
            region: "r".into(),
            resource_type: "t".into(),
            name: format!("n{}-x", i % 97),
            native_tags: [(format!("k{}", i % 43), format!("v{}", i % 91)), ("project".to_owned(), "p".to_owned())].into_iter().collect(),
            monthly_cost: None,
        };
        let people = if i % 5 == 0 { tags(&[(&format!("k{}", i % 40), "x")]) } else { BTreeMap::new() };
        let (expected, expected_hits) = reference::derive(&config, &facts, &people, at);
        assert_eq!(derive(&config, &facts, &people, at), expected, "{facts:?}");
        assert_eq!(rule_hits(&config, &facts, &people, at), expected_hits, "{facts:?}");
    }
}

/// What normalization remembers per thread is bounded — in schemas and in keys per schema — and
/// forgetting changes no answer.
#[test]
fn normalization_beyond_what_is_remembered_equals_the_reference() {
    let schemas: Vec<TagSchema> = (0..80).map(|i| if i % 2 == 0 { TagSchema::seed_default() } else { overlapping_schema() }).collect();
    let mut gen = Messy(5);
    for round in 0..3 {
        for schema in &schemas {
            let native = gen.tag_set();
            assert_eq!(normalize(schema, &native), reference::normalize(schema, &native), "round {round}: {native:?}");
        }
    }
    let schema = TagSchema::seed_default();
    for i in 0..3_000 {
        let native = tags(&[(&format!("Key{i}_{}", i % 7), "v"), ("ENV", "prod"), (&format!("team{}", i % 3), "x")]);
        assert_eq!(normalize(&schema, &native), reference::normalize(&schema, &native), "{native:?}");
    }
}
