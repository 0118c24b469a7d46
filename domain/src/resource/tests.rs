//! Given/when/then: given past events, when a command arrives, then these events (or this refusal).

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use uuid::Uuid;

use super::*;
use crate::envelope::{CommandContext, Recorded};
use crate::tagging::{RuleSet, TagSchema, TaggingConfig};
use crate::values::*;

struct Scenario {
    id: ResourceId,
    state: ResourceState,
    commands_seen: u128,
    config: TaggingConfig,
}

/// A configuration that derives nothing: these scenarios are about the aggregate's own commands.
fn no_derivation() -> TaggingConfig {
    TaggingConfig { version: 0, schema: TagSchema::new(Vec::new()), rules: RuleSet::default() }
}

fn tenant() -> TenantId {
    TenantId::parse("acme").unwrap()
}

fn cloud_id() -> CloudResourceId {
    CloudResourceId::parse("arn:aws:ec2:us-east-1:123456789012:instance/i-0abc").unwrap()
}

fn ctx(n: u128) -> CommandContext {
    let at = Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap() + chrono::Duration::seconds(n as i64);
    CommandContext {
        command_id: Uuid::from_u128(n + 1),
        tenant: tenant(),
        actor: Actor::parse("alice@example.com").unwrap(),
        correlation_id: Uuid::from_u128(999),
        occurred_at: at,
        recorded_at: at,
    }
}

fn observe(name: &str, tags: &[(&str, &str)]) -> ResourceCommand {
    let tags: BTreeMap<String, String> = tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    ResourceCommand::Observe(ObserveResource {
        provider: Provider::Aws,
        cloud_id: cloud_id(),
        description: ResourceDescription::parse(
            "123456789012".into(),
            "us-east-1".into(),
            "ec2:instance".into(),
            name.into(),
            BTreeMap::new(),
        )
        .unwrap(),
        native_tags: NativeTags::parse(tags).unwrap(),
        observed_at: Utc::now(),
    })
}

fn apply(key: &str, value: &str, expected_version: Option<u64>) -> ResourceCommand {
    ResourceCommand::ApplyVirtualTag(ApplyVirtualTag {
        key: TagKey::parse(key).unwrap(),
        value: TagValue::parse(value).unwrap(),
        source: TagSource::Manual,
        confidence: Confidence::CERTAIN,
        expected_version,
    })
}

fn remove(key: &str, expected_version: Option<u64>) -> ResourceCommand {
    ResourceCommand::RemoveVirtualTag(RemoveVirtualTag { key: TagKey::parse(key).unwrap(), expected_version })
}

impl Scenario {
    fn given(commands: &[ResourceCommand]) -> Self {
        let mut s = Scenario { id: ResourceId::derive(&tenant(), Provider::Aws, &cloud_id()), state: ResourceState::default(), commands_seen: 0, config: no_derivation() };
        for c in commands {
            s.when(c).expect("given commands must succeed");
        }
        s
    }

    fn when(&mut self, command: &ResourceCommand) -> Result<Vec<Recorded<ResourceEvent>>, ResourceError> {
        let context = ctx(self.commands_seen);
        self.commands_seen += 1;
        let events = decide(&self.state, self.id, command, &context, &self.config)?;
        self.state = events.iter().fold(self.state.clone(), evolve);
        Ok(events)
    }

    fn then_types(&mut self, command: &ResourceCommand) -> Vec<&'static str> {
        self.when(command).unwrap().iter().map(|e| e.event.event_type()).collect()
    }
}

#[test]
fn first_observation_records_a_full_snapshot() {
    let mut s = Scenario::given(&[]);
    let events = s.when(&observe("web-server-prod-001", &[("env", "prod")])).unwrap();
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e.envelope.aggregate_version, 1);
    assert_eq!(e.envelope.tenant, tenant());
    assert_eq!(e.envelope.causation_id, Uuid::from_u128(1));
    match &e.event {
        ResourceEvent::ResourceObserved(o) => {
            assert_eq!(o.description.name, "web-server-prod-001");
            assert_eq!(o.native_tags.get("env").map(String::as_str), Some("prod"));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn re_observing_an_unchanged_resource_records_nothing() {
    let mut s = Scenario::given(&[observe("web", &[("env", "prod")])]);
    assert!(s.when(&observe("web", &[("env", "prod")])).unwrap().is_empty());
    assert_eq!(s.state.version, 1);
}

#[test]
fn changed_native_tags_alone_record_native_tags_changed() {
    let mut s = Scenario::given(&[observe("web", &[("env", "prod")])]);
    assert_eq!(s.then_types(&observe("web", &[("env", "prod"), ("team", "x")])), ["NativeTagsChanged"]);
    assert_eq!(s.state.version, 2);
}

#[test]
fn a_changed_description_records_a_new_snapshot() {
    let mut s = Scenario::given(&[observe("web", &[("env", "prod")])]);
    assert_eq!(s.then_types(&observe("web-renamed", &[("env", "dev")])), ["ResourceObserved"]);
}

#[test]
fn applying_a_tag_records_it_with_its_previous_value() {
    let mut s = Scenario::given(&[observe("web", &[]), apply("environment", "staging", None)]);
    let events = s.when(&apply("environment", "production", Some(2))).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].envelope.aggregate_version, 3);
    match &events[0].event {
        ResourceEvent::VirtualTagApplied(a) => {
            assert_eq!(a.value.as_str(), "production");
            assert_eq!(a.previous.as_ref().map(|p| p.value.as_str()), Some("staging"));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn applying_the_same_tag_again_records_nothing() {
    let mut s = Scenario::given(&[observe("web", &[]), apply("environment", "production", None)]);
    assert!(s.when(&apply("environment", "production", None)).unwrap().is_empty());
}

#[test]
fn a_stale_expected_version_is_a_conflict() {
    let mut s = Scenario::given(&[observe("web", &[]), apply("team", "a", None)]);
    assert_eq!(
        s.when(&apply("team", "b", Some(1))).unwrap_err(),
        ResourceError::VersionConflict { expected: 1, actual: 2 }
    );
    // nothing changed
    assert_eq!(s.state.version, 2);
}

#[test]
fn even_an_idempotent_apply_with_a_stale_version_is_a_conflict() {
    // Concurrent writers with the same expected version: exactly one wins, whatever they wrote.
    let mut s = Scenario::given(&[observe("web", &[])]);
    assert!(s.when(&apply("team", "a", Some(1))).is_ok());
    assert!(matches!(s.when(&apply("team", "a", Some(1))), Err(ResourceError::VersionConflict { .. })));
}

#[test]
fn tags_cannot_be_applied_to_unknown_resources() {
    let mut s = Scenario::given(&[]);
    assert_eq!(s.when(&apply("team", "a", None)).unwrap_err(), ResourceError::UnknownResource);
}

#[test]
fn another_tenants_resource_is_unknown_to_a_tenant() {
    let s = Scenario::given(&[observe("web", &[]), apply("team", "a", None)]);
    let mut intruder = ctx(9);
    intruder.tenant = TenantId::parse("globex").unwrap();
    for command in [apply("team", "b", None), remove("team", None), observe("web", &[])] {
        let refused = decide(&s.state, s.id, &command, &intruder, &s.config);
        assert_eq!(refused.unwrap_err(), ResourceError::UnknownResource, "{command:?}");
    }
}

#[test]
fn removing_a_tag_records_what_it_was() {
    let mut s = Scenario::given(&[observe("web", &[]), apply("team", "a", None)]);
    let events = s.when(&remove("team", Some(2))).unwrap();
    match &events[0].event {
        ResourceEvent::VirtualTagRemoved(r) => assert_eq!(r.previous.value.as_str(), "a"),
        other => panic!("unexpected {other:?}"),
    }
    assert!(s.state.virtual_tags.is_empty());
}

#[test]
fn removing_an_absent_tag_is_refused() {
    let mut s = Scenario::given(&[observe("web", &[])]);
    assert_eq!(
        s.when(&remove("team", None)).unwrap_err(),
        ResourceError::TagNotPresent { key: TagKey::parse("team").unwrap() }
    );
}

#[test]
fn deciding_twice_gives_identical_events() {
    let s = Scenario::given(&[observe("web", &[])]);
    let c = apply("team", "a", None);
    let first = decide(&s.state, s.id, &c, &ctx(7), &s.config).unwrap();
    let second = decide(&s.state, s.id, &c, &ctx(7), &s.config).unwrap();
    assert_eq!(first, second);
    let other = decide(&s.state, s.id, &c, &ctx(8), &s.config).unwrap();
    assert_ne!(first[0].envelope.event_id, other[0].envelope.event_id);
}

#[test]
fn state_rebuilt_from_events_equals_state_decided_along() {
    let mut s = Scenario::given(&[]);
    let mut log = Vec::new();
    for c in [observe("a", &[]), apply("team", "x", None), observe("a", &[("k", "v")]), remove("team", None)] {
        log.extend(s.when(&c).unwrap());
    }
    let rebuilt = log.iter().fold(ResourceState::default(), evolve);
    assert_eq!(rebuilt, s.state);
    assert_eq!(rebuilt.version, 4);
}

mod derivation {
    use super::*;
    use crate::tagging::{Action, Condition, Field, Operator, Origin, Rule};

    fn rule(id: &str, key: &str, priority: u32, name_contains: &str, value: &str) -> Rule {
        Rule {
            id: id.into(),
            key: key.into(),
            priority,
            enabled: true,
            condition: Condition::Test { field: Field::Name, operator: Operator::Contains(name_contains.into()), ignore_case: false },
            action: Action::Set(value.into()),
            effective_from: None,
            effective_to: None,
        }
    }

    fn seeded(version: u64, rules: Vec<Rule>) -> TaggingConfig {
        TaggingConfig { version, schema: TagSchema::seed_default(), rules: RuleSet::new(version, rules, BTreeMap::new()).unwrap() }
    }

    fn derived(events: &[Recorded<ResourceEvent>]) -> &VirtualTagsDerived {
        events
            .iter()
            .find_map(|e| match &e.event {
                ResourceEvent::VirtualTagsDerived(d) => Some(d),
                _ => None,
            })
            .expect("a derivation")
    }

    fn with(config: TaggingConfig) -> Scenario {
        let mut s = Scenario::given(&[]);
        s.config = config;
        s
    }

    #[test]
    fn an_observation_derives_normalized_native_tags_in_the_same_decision() {
        let mut s = with(seeded(1, vec![]));
        let events = s.when(&observe("batch-7", &[("Env", " PROD "), ("CostCenter", "ENG-001"), ("stack", "x")])).unwrap();
        assert_eq!(events.iter().map(|e| e.event.event_type()).collect::<Vec<_>>(), ["ResourceObserved", "VirtualTagsDerived"]);
        let d = derived(&events);
        assert_eq!(d.rule_set_version, 1);
        let env = d.changes.iter().find(|c| c.key.as_str() == "environment").unwrap();
        assert_eq!(env.value.as_ref().unwrap().as_str(), "production");
        assert_eq!(env.source, TagSource::Native);
        assert!(matches!(&env.origin, Some(Origin::Native { native_key, native_value, .. }) if native_key == "Env" && native_value == " PROD "));
        assert_eq!(d.changes.len(), 2, "stack is not in the schema");
        assert!(s.when(&observe("batch-7", &[("Env", " PROD "), ("CostCenter", "ENG-001"), ("stack", "x")])).unwrap().is_empty());
    }

    #[test]
    fn a_rule_change_rederives_with_the_previous_value() {
        let mut s = with(seeded(1, vec![rule("r1", "team", 1, "pay", "payments")]));
        s.when(&observe("payments-api", &[])).unwrap();
        assert_eq!(s.state.virtual_tags[&TagKey::parse("team").unwrap()].value.as_str(), "payments");
        assert!(s.when(&ResourceCommand::Rederive).unwrap().is_empty(), "same config: nothing to do");
        s.config = seeded(2, vec![rule("r1", "team", 2, "pay", "payments"), rule("r2", "team", 1, "api", "platform")]);
        let events = s.when(&ResourceCommand::Rederive).unwrap();
        let change = &derived(&events).changes[0];
        assert_eq!(change.value.as_ref().unwrap().as_str(), "platform");
        assert_eq!(change.origin, Some(Origin::Rule { rule_id: "r2".into() }));
        assert_eq!(change.previous.as_ref().unwrap().value.as_str(), "payments");
        // The rule goes away: so does the tag it derived.
        s.config = seeded(3, vec![]);
        let events = s.when(&ResourceCommand::Rederive).unwrap();
        let change = &derived(&events).changes[0];
        assert_eq!((change.value.as_ref(), change.previous.as_ref().unwrap().value.as_str()), (None, "platform"));
        assert!(s.state.virtual_tags.is_empty());
    }

    #[test]
    fn people_win_and_the_rule_returns_when_they_step_back() {
        let mut s = with(seeded(1, vec![rule("r1", "team", 1, "pay", "payments")]));
        s.when(&observe("payments-api", &[])).unwrap();
        let applied = s.when(&apply("team", "billing", None)).unwrap();
        assert_eq!(applied.len(), 1, "a manual value overrides; nothing to derive");
        assert!(s.when(&ResourceCommand::Rederive).unwrap().is_empty(), "derivation leaves people's tags alone");
        let events = s.when(&remove("team", None)).unwrap();
        assert_eq!(events.iter().map(|e| e.event.event_type()).collect::<Vec<_>>(), ["VirtualTagRemoved", "VirtualTagsDerived"]);
        assert_eq!(s.state.virtual_tags[&TagKey::parse("team").unwrap()].value.as_str(), "payments");
    }

    #[test]
    fn changes_are_listed_by_key_whatever_the_evaluation_order() {
        // `application` reads `tag.team`, so team is evaluated first; the event lists by key.
        let mut reads_team = rule("r-app", "application", 1, "", "checkout");
        reads_team.condition = Condition::Test { field: Field::VirtualTag("team".into()), operator: Operator::Equals("payments".into()), ignore_case: false };
        let mut s = with(seeded(1, vec![rule("r-team", "team", 1, "pay", "payments"), reads_team]));
        let events = s.when(&observe("payments-api", &[("Env", "prod")])).unwrap();
        let keys: Vec<&str> = derived(&events).changes.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(keys, ["application", "environment", "team"]);
    }

    #[test]
    fn a_value_the_tag_model_cannot_hold_derives_nothing_and_clears_the_old_one() {
        let mut s = with(seeded(1, vec![rule("r1", "team", 1, "pay", "payments")]));
        s.when(&observe("payments-api", &[])).unwrap();
        s.config = seeded(2, vec![rule("r1", "team", 1, "pay", &"x".repeat(TagValue::MAX_LEN + 1))]);
        let events = s.when(&ResourceCommand::Rederive).unwrap();
        let change = &derived(&events).changes[0];
        assert_eq!((change.key.as_str(), change.value.as_ref()), ("team", None));
        assert!(s.state.virtual_tags.is_empty());
    }

    #[test]
    fn derived_tags_cannot_be_removed_or_applied_by_hand() {
        let mut s = with(seeded(1, vec![rule("r1", "team", 1, "pay", "payments")]));
        s.when(&observe("payments-api", &[])).unwrap();
        assert!(matches!(s.when(&remove("team", None)), Err(ResourceError::DerivedTag { .. })));
        let mut cmd = apply("team", "x", None);
        if let ResourceCommand::ApplyVirtualTag(a) = &mut cmd {
            a.source = TagSource::RuleBased;
        }
        assert_eq!(s.when(&cmd), Err(ResourceError::DerivedSource(TagSource::RuleBased)));
    }
}

fn billed(name: &str, tags: &[(&str, &str)]) -> ResourceCommand {
    let ResourceCommand::Observe(mut o) = observe(name, tags) else { unreachable!() };
    o.description.metadata.insert(BILLING_SOURCE.0.to_owned(), BILLING_SOURCE.1.to_owned());
    ResourceCommand::ObserveFromBilling(o)
}

#[test]
fn billing_creates_resources_no_collector_reported_and_keeps_them_current() {
    let mut s = Scenario::given(&[]);
    assert_eq!(s.then_types(&billed("logs", &[("env", "prod")])), ["ResourceObserved"]);
    assert!(s.state.billing_only);
    assert!(s.then_types(&billed("logs", &[("env", "prod")])).is_empty(), "unchanged billing rows record nothing");
    assert_eq!(s.then_types(&billed("logs", &[("env", "dev")])), ["NativeTagsChanged"]);
}

#[test]
fn a_collectors_observation_outranks_billing() {
    let mut s = Scenario::given(&[billed("logs", &[("env", "prod")])]);
    assert_eq!(s.then_types(&observe("logs", &[("Env", "PROD")])), ["ResourceObserved"]);
    assert!(!s.state.billing_only);
    assert!(s.then_types(&billed("logs", &[("env", "dev")])).is_empty(), "billing does not override a collector");
    let mut collected_first = Scenario::given(&[observe("web", &[])]);
    assert!(collected_first.then_types(&billed("web", &[("env", "prod")])).is_empty());
}

fn monthly(cents: i64) -> ResourceCommand {
    monthly_as_of(cents, 31)
}

fn monthly_as_of(cents: i64, day: u32) -> ResourceCommand {
    ResourceCommand::RecordMonthlyCost(RecordMonthlyCost {
        cents,
        currency: "USD".into(),
        as_of: chrono::NaiveDate::from_ymd_opt(2026, 10, day).unwrap(),
    })
}

#[test]
fn a_monthly_cost_is_recorded_when_it_changes_and_feeds_derivation() {
    let mut s = Scenario::given(&[observe("web", &[])]);
    assert_eq!(s.then_types(&monthly(62_000)), ["MonthlyCostChanged"]);
    assert!(s.then_types(&monthly(62_000)).is_empty(), "the same bill again records nothing");
    assert_eq!(s.state.facts.as_ref().unwrap().monthly_cost, Some(620.0));
    // A new description keeps the measured cost for rules to read.
    s.when(&observe("web-renamed", &[])).unwrap();
    assert_eq!(s.state.facts.as_ref().unwrap().monthly_cost, Some(620.0));
    assert_eq!(s.then_types(&monthly(100)), ["MonthlyCostChanged"]);
    assert!(s.then_types(&monthly_as_of(999, 30)).is_empty(), "an older period's cost does not roll the current one back");
    assert_eq!(Scenario::given(&[]).when(&monthly(1)).unwrap_err(), ResourceError::UnknownResource);
}
