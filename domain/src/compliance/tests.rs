use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use regex::Regex;

use super::*;
use crate::values::Provider;

fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn subject<'a>(tags: &'a BTreeMap<String, String>, cost: Option<(i64, &'a str)>) -> Subject<'a> {
    Subject { provider: Provider::Aws, account: "111111111111", resource_type: "ec2:instance", tags, monthly_cost: cost }
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
}

fn policy(id: &str, severity: Severity, check: Check) -> Policy {
    Policy {
        id: id.into(),
        name: id.to_owned(),
        description: String::new(),
        enabled: true,
        severity,
        grace_period_hours: 0,
        escalation: None,
        scope: Scope::default(),
        check,
    }
}

fn validated(key: &str, rule: ValueRule, message: &str) -> Requirement {
    Requirement::new(key, Some(Validation { rule, message: Some(message.to_owned()) }))
}

/// Appendix C, example 1: production resources need a well-formed cost center, an owner email,
/// a backup schedule and a data classification.
fn production_standard() -> Policy {
    let mut p = policy(
        "prod-tagging-standard",
        Severity::Critical,
        Check::ConditionalRequirement {
            when: TagCondition::Equals { key: "environment".into(), value: "production".into(), ignore_case: false },
            require: vec![
                validated("cost-center", ValueRule::Regex(Regex::new("^[A-Z]{3}-[0-9]{3}$").unwrap()), "Cost center must be format: ABC-123"),
                validated("owner", ValueRule::Email, "Owner must be valid email address"),
                validated(
                    "backup",
                    ValueRule::OneOf { allowed: vec!["daily".into(), "hourly".into(), "weekly".into()], case_sensitive: true },
                    "Backup must be daily, hourly, or weekly",
                ),
                validated(
                    "data-classification",
                    ValueRule::OneOf {
                        allowed: vec!["public".into(), "internal".into(), "confidential".into(), "restricted".into()],
                        case_sensitive: true,
                    },
                    "Invalid data classification",
                ),
            ],
        },
    );
    p.grace_period_hours = 24;
    p
}

/// Appendix C, example 2: resources above $500 a month need justification tags.
fn high_cost_governance() -> Policy {
    let mut p = policy(
        "high-cost-governance",
        Severity::High,
        Check::CostThreshold {
            above_cents: 50_000,
            currency: "USD".into(),
            require: vec![
                Requirement::present("business-unit"),
                Requirement::present("project-justification"),
                validated("approval-id", ValueRule::Regex(Regex::new("^JIRA-[0-9]{4,}$").unwrap()), "Approval ID must reference JIRA ticket"),
                validated("review-date", ValueRule::Date { max_age_days: Some(90), must_be_future: false }, "Review date must be within last 90 days"),
            ],
        },
    );
    p.escalation = Some(Escalation { to: "finance-team@company.com".into(), after_hours: 48 });
    p
}

fn keys(findings: &[Finding]) -> Vec<(&str, Problem)> {
    findings.iter().map(|f| (&*f.key, f.problem)).collect()
}

#[test]
fn production_resources_need_the_full_standard() {
    let p = production_standard();
    let broken = tags(&[
        ("environment", "production"),
        ("cost-center", "eng-1"),
        ("owner", "platform team"),
        ("backup", "monthly"),
        ("data-classification", "internal"),
    ]);
    let found = evaluate(&p, &subject(&broken, None), today());
    assert_eq!(keys(&found), [("cost-center", Problem::Invalid), ("owner", Problem::Invalid), ("backup", Problem::Invalid)]);
    assert_eq!(&*found[0].message, "cost-center: Cost center must be format: ABC-123 (is 'eng-1')");
    assert!(found[0].remediation.contains("^[A-Z]{3}-[0-9]{3}$"), "{}", found[0].remediation);
    assert!(found.iter().all(|f| &*f.policy_id == "prod-tagging-standard"));

    let missing = tags(&[("environment", "production")]);
    let found = evaluate(&p, &subject(&missing, None), today());
    assert_eq!(found.len(), 4);
    assert!(found.iter().all(|f| f.problem == Problem::Missing));

    let good = tags(&[
        ("environment", "production"),
        ("cost-center", "ENG-001"),
        ("owner", "ana@example.com"),
        ("backup", "daily"),
        ("data-classification", "restricted"),
    ]);
    assert!(evaluate(&p, &subject(&good, None), today()).is_empty());
    // The condition does not hold elsewhere.
    let staging = tags(&[("environment", "staging")]);
    assert!(!applies(&p, &subject(&staging, None)));
    assert!(evaluate(&p, &subject(&staging, None), today()).is_empty());
}

#[test]
fn expensive_resources_need_justification() {
    let p = high_cost_governance();
    let bare = tags(&[]);
    assert!(evaluate(&p, &subject(&bare, Some((50_000, "USD"))), today()).is_empty(), "exactly $500 is not above it");
    assert!(evaluate(&p, &subject(&bare, None), today()).is_empty(), "no cost measured yet");
    assert!(evaluate(&p, &subject(&bare, Some((90_000, "EUR"))), today()).is_empty(), "other currencies are not converted");
    assert_eq!(evaluate(&p, &subject(&bare, Some((50_001, "USD"))), today()).len(), 4);

    let justified = tags(&[
        ("business-unit", "retail"),
        ("project-justification", "checkout rewrite"),
        ("approval-id", "JIRA-1234"),
        ("review-date", "2026-09-01"),
    ]);
    assert!(evaluate(&p, &subject(&justified, Some((120_000, "USD"))), today()).is_empty());
    let stale = tags(&[
        ("business-unit", "retail"),
        ("project-justification", "checkout rewrite"),
        ("approval-id", "TICKET-9"),
        ("review-date", "2026-08-01"),
    ]);
    let found = evaluate(&p, &subject(&stale, Some((120_000, "USD"))), today());
    assert_eq!(keys(&found), [("approval-id", Problem::Invalid), ("review-date", Problem::Invalid)]);
    assert_eq!(&*found[1].message, "review-date: Review date must be within last 90 days (is '2026-08-01')");
}

#[test]
fn dates_are_checked_against_the_injected_day() {
    let rule = |future| Requirement::new("expires", Some(Validation { rule: ValueRule::Date { max_age_days: None, must_be_future: future }, message: None }));
    let p = policy("expiry", Severity::Medium, Check::RequiredTags { when: None, require: vec![rule(true)] });
    let on = |value: &str| evaluate(&p, &subject(&tags(&[("expires", value)]), None), today());
    assert!(on("2026-11-24").is_empty());
    assert_eq!(&*on("2026-11-23")[0].message, "expires is '2026-11-23': must be after 2026-11-23");
    assert_eq!(&*on("23/11/2026")[0].message, "expires is '23/11/2026': is not a date (YYYY-MM-DD)");
    let any_date = policy("dated", Severity::Low, Check::RequiredTags { when: None, require: vec![rule(false)] });
    assert!(evaluate(&any_date, &subject(&tags(&[("expires", "2001-01-01")]), None), today()).is_empty());
}

#[test]
fn required_tags_count_empty_values_as_missing() {
    let p = policy(
        "basics",
        Severity::Critical,
        Check::RequiredTags { when: None, require: vec![Requirement::present("cost-center"), Requirement::present("owner")] },
    );
    let found = evaluate(&p, &subject(&tags(&[("cost-center", " "), ("team", "web")]), None), today());
    assert_eq!(keys(&found), [("cost-center", Problem::Missing), ("owner", Problem::Missing)]);
    assert_eq!(&*found[1].message, "owner is required");
    // The seed's required-tags policy with a condition (`tags.environment == 'production'`).
    let prod_only = policy(
        "req-tags-prod",
        Severity::Critical,
        Check::RequiredTags {
            when: Some(TagCondition::Equals { key: "environment".into(), value: "production".into(), ignore_case: false }),
            require: vec![Requirement::present("backup")],
        },
    );
    assert!(evaluate(&prod_only, &subject(&tags(&[("environment", "test")]), None), today()).is_empty());
    assert_eq!(evaluate(&prod_only, &subject(&tags(&[("environment", "production")]), None), today()).len(), 1);
}

#[test]
fn value_validation_judges_present_values_only() {
    let allowed: Vec<String> = ["production", "staging", "development", "sandbox", "test"].map(String::from).into();
    let loose = policy("validate-env", Severity::High, Check::ValueValidation { key: "environment".into(), allowed: allowed.clone(), case_sensitive: false });
    let on = |p: &Policy, value: Option<&str>| {
        let t = value.map(|v| tags(&[("environment", v)])).unwrap_or_default();
        evaluate(p, &subject(&t, None), today())
    };
    assert!(on(&loose, Some("Production")).is_empty());
    assert!(on(&loose, None).is_empty(), "a missing key is a required-tags matter");
    let found = on(&loose, Some("prod"));
    assert_eq!(keys(&found), [("environment", Problem::Invalid)]);
    assert_eq!(&*found[0].message, "environment is 'prod'; allowed: production, staging, development, sandbox, test");
    let strict = policy("validate-env", Severity::High, Check::ValueValidation { key: "environment".into(), allowed, case_sensitive: true });
    assert_eq!(on(&strict, Some("Production")).len(), 1);
}

#[test]
fn conditions_combine() {
    let t = tags(&[("environment", "Production"), ("team", "payments-core")]);
    let eq = |ignore_case| TagCondition::Equals { key: "environment".into(), value: "production".into(), ignore_case };
    assert!(!holds(&eq(false), &t));
    assert!(holds(&eq(true), &t));
    let matches = TagCondition::Matches { key: "team".into(), pattern: Regex::new("^payments-").unwrap() };
    assert!(holds(&TagCondition::All(vec![eq(true), matches.clone()]), &t));
    assert!(holds(&TagCondition::Any(vec![eq(false), matches]), &t));
    assert!(holds(&TagCondition::NotEquals { key: "environment".into(), value: "test".into(), ignore_case: true }, &t));
    assert!(holds(&TagCondition::NotEquals { key: "owner".into(), value: "x".into(), ignore_case: false }, &t), "absent is not equal");
    assert!(holds(&TagCondition::Missing { key: "owner".into() }, &t));
    assert!(holds(&TagCondition::Exists { key: "team".into() }, &t));
    assert!(holds(&TagCondition::In { key: "environment".into(), values: vec!["staging".into(), "production".into()], ignore_case: true }, &t));
}

#[test]
fn scope_and_enablement_narrow_what_is_judged() {
    let mut p = policy("basics", Severity::Low, Check::RequiredTags { when: None, require: vec![Requirement::present("owner")] });
    let none = tags(&[]);
    let s = subject(&none, None);
    assert!(applies(&p, &s));
    p.scope = Scope { providers: vec![Provider::Gcp], ..Scope::default() };
    assert!(!applies(&p, &s));
    p.scope = Scope { resource_types: vec!["ec2:*".into()], accounts: vec!["111111111111".into()], ..Scope::default() };
    assert!(applies(&p, &s));
    p.scope = Scope { resource_types: vec!["rds:db".into()], ..Scope::default() };
    assert!(!applies(&p, &s));
    p.scope = Scope::default();
    p.enabled = false;
    assert!(evaluate(&p, &s, today()).is_empty());
}

#[test]
fn the_score_weighs_policies_by_severity() {
    let critical = policy("c", Severity::Critical, Check::RequiredTags { when: None, require: vec![] });
    let low = policy("l", Severity::Low, Check::RequiredTags { when: None, require: vec![] });
    assert_eq!(score(&[], &[]), 100.0);
    assert_eq!(score(&[&critical, &low], &[]), 100.0);
    assert!((score(&[&critical, &low], &[&low]) - 100.0 * 8.0 / 9.0).abs() < 1e-9);
    assert!((score(&[&critical, &low], &[&critical]) - 100.0 / 9.0).abs() < 1e-9);
    assert_eq!(score(&[&critical, &low], &[&critical, &low]), 0.0);
}

fn at(hours: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap() + Duration::hours(hours)
}

fn policies(list: Vec<Policy>) -> BTreeMap<std::sync::Arc<str>, Policy> {
    list.into_iter().map(|p| (p.id.clone(), p)).collect()
}

/// Runs transitions into the open violations, as the evaluator's state would.
fn run(open: &mut OpenViolations, transitions: &[Transition], now: DateTime<Utc>) {
    for t in transitions {
        apply(open, t, now);
    }
}

fn names(transitions: &[Transition]) -> Vec<String> {
    transitions
        .iter()
        .map(|t| match t {
            Transition::Opened { key, .. } => format!("opened {key}"),
            Transition::BecameDue { key, .. } => format!("due {key}"),
            Transition::Escalated { key, to, .. } => format!("escalated {key} to {to}"),
            Transition::Resolved { key, reason, .. } => format!("resolved {key} ({})", reason.as_str()),
        })
        .collect()
}

#[test]
fn a_violation_waits_out_its_grace_period_then_escalates_then_resolves() {
    let mut p = production_standard();
    p.escalation = Some(Escalation { to: "platform-leads@example.com".into(), after_hours: 48 });
    let all = policies(vec![p.clone()]);
    let t = tags(&[
        ("environment", "production"),
        ("cost-center", "ENG-001"),
        ("owner", "ana@example.com"),
        ("backup", "daily"),
    ]);
    let findings = evaluate(&p, &subject(&t, None), today());
    let mut open = OpenViolations::default();

    let opened = reconcile(&open, findings.clone(), &all, at(0));
    assert_eq!(names(&opened), ["opened data-classification"]);
    let Transition::Opened { due_at, escalation, severity, .. } = &opened[0] else { unreachable!() };
    assert_eq!((*due_at, *severity), (at(24), Severity::Critical));
    assert_eq!(escalation.as_ref().map(|(_, when)| *when), Some(at(72)));
    run(&mut open, &opened, at(0));

    // Found again inside the grace period: nothing new (no second alert).
    assert!(reconcile(&open, findings.clone(), &all, at(5)).is_empty());
    assert!(advance(&open, at(23)).is_empty());
    let due = advance(&open, at(24));
    assert_eq!(names(&due), ["due data-classification"]);
    run(&mut open, &due, at(24));
    assert!(advance(&open, at(71)).is_empty());
    let escalated = advance(&open, at(72));
    assert_eq!(names(&escalated), ["escalated data-classification to platform-leads@example.com"]);
    run(&mut open, &escalated, at(72));
    assert!(advance(&open, at(500)).is_empty(), "each transition happens once");

    let resolved = reconcile(&open, vec![], &all, at(80));
    assert_eq!(names(&resolved), ["resolved data-classification (fixed)"]);
    run(&mut open, &resolved, at(80));
    assert!(open.is_empty());
}

#[test]
fn without_a_grace_period_a_violation_is_due_at_once() {
    let p = high_cost_governance();
    let all = policies(vec![p.clone()]);
    let bare = tags(&[]);
    let findings = evaluate(&p, &subject(&bare, Some((60_000, "USD"))), today());
    let transitions = reconcile(&OpenViolations::default(), findings.clone(), &all, at(0));
    assert_eq!(
        names(&transitions),
        [
            "opened business-unit",
            "due business-unit",
            "opened project-justification",
            "due project-justification",
            "opened approval-id",
            "due approval-id",
            "opened review-date",
            "due review-date",
        ]
    );
}

#[test]
fn without_a_grace_period_or_escalation_delay_a_violation_escalates_at_once() {
    let mut p = high_cost_governance();
    p.escalation = Some(Escalation { to: "finops-lead@example.com".into(), after_hours: 0 });
    let all = policies(vec![p.clone()]);
    let bare = tags(&[("business-unit", "retail"), ("project-justification", "x"), ("approval-id", "JIRA-1234")]);
    let findings = evaluate(&p, &subject(&bare, Some((60_000, "USD"))), today());
    let transitions = reconcile(&OpenViolations::default(), findings, &all, at(0));
    assert_eq!(names(&transitions), ["opened review-date", "due review-date", "escalated review-date to finops-lead@example.com"]);
    let mut open = OpenViolations::default();
    run(&mut open, &transitions, at(0));
    assert_eq!(open.iter().map(|v| v.stage).collect::<Vec<_>>(), [Stage::Escalated]);
}

#[test]
fn withdrawing_a_policy_resolves_its_violations() {
    let p = production_standard();
    let missing = tags(&[("environment", "production")]);
    let findings = evaluate(&p, &subject(&missing, None), today());
    let mut open = OpenViolations::default();
    let opened = reconcile(&open, findings.clone(), &policies(vec![p.clone()]), at(0));
    run(&mut open, &opened, at(0));
    assert_eq!(open.len(), 4);

    let mut disabled = p;
    disabled.enabled = false;
    let resolved = reconcile(&open, vec![], &policies(vec![disabled]), at(1));
    assert_eq!(resolved.len(), 4);
    assert!(names(&resolved).iter().all(|n| n.ends_with("(policy_withdrawn)")), "{resolved:?}");
    let deleted = reconcile(&open, vec![], &BTreeMap::new(), at(1));
    assert!(names(&deleted).iter().all(|n| n.ends_with("(policy_withdrawn)")));
}

#[test]
fn suggestions_fix_the_violation_and_say_why() {
    let p = production_standard();
    let peers = |value: &str, basis: &str, agreeing: u32, seen: u32| PeerEvidence { value: value.into(), basis: basis.into(), agreeing, seen };
    // A case-sensitive enum: 'Daily' is one letter off, 'd' abbreviates it.
    let s = suggest(&p, "backup", Some("Daily"), &[], today());
    assert_eq!((s[0].value.as_str(), s[0].confidence, s[0].source), ("daily", 0.95, SuggestionSource::Policy));
    assert_eq!(s.len(), 3, "every allowed value, the close one first: {s:?}");
    assert!(s[1].confidence < 0.2);
    // Peers: a cost center most of the account carries; a malformed one is never suggested, even
    // from many peers, and neither is the value the resource already has.
    let evidence = [peers("ENG-001", "account 123", 38, 40), peers("eng-1", "account 123", 2, 40), peers("FIN-002", "team=finance", 3, 3)];
    let s = suggest(&p, "cost-center", None, &evidence, today());
    let values: Vec<&str> = s.iter().map(|s| s.value.as_str()).collect();
    assert_eq!(values, ["ENG-001", "FIN-002"]);
    assert_eq!(s[0].confidence, 0.9, "38/40 shrunk by 40/42");
    assert_eq!(s[0].reasoning, "38 of 40 resources with account 123 have cost-center=ENG-001");
    assert_eq!(s[1].confidence, 0.6, "3 of 3 is weaker evidence");
    assert!(suggest(&p, "cost-center", Some("ENG-001"), &evidence[..1], today()).is_empty());
    // Two reasons for one value add up (but never to certainty).
    let both = [peers("ops@example.com", "account 123", 9, 10), peers("ops@example.com", "team=ops", 5, 5)];
    let s = suggest(&p, "owner", None, &both, today());
    assert_eq!(s.len(), 1);
    assert!(s[0].confidence > 0.75 && s[0].confidence < 0.99, "{s:?}");
    assert!(s[0].reasoning.contains("team=ops") && s[0].reasoning.contains("account 123"));
    // Dates must satisfy the policy on the injected day.
    let h = high_cost_governance();
    let s = suggest(&h, "review-date", Some("2024-01-01"), &[peers("2026-10-01", "account 9", 4, 4), peers("2020-01-01", "account 9", 4, 4)], today());
    assert_eq!(s.iter().map(|s| s.value.as_str()).collect::<Vec<_>>(), ["2026-10-01"]);
    assert!(satisfies(&h, "business-unit", "retail", today()) && !satisfies(&h, "business-unit", " ", today()));
}

mod book {
    use std::collections::BTreeMap;

    use chrono::{TimeZone, Utc};
    use uuid::Uuid;

    use super::{at, production_standard};
    use crate::compliance::*;
    use crate::envelope::{CommandContext, Recorded};
    use crate::resource::*;
    use crate::tagging::{RuleSet, TagSchema, TaggingConfig};
    use crate::values::*;

    fn tenant() -> TenantId {
        TenantId::parse("acme").unwrap()
    }

    /// A resource's life as the command side records it: decided by the domain, one command at a time.
    struct Estate {
        states: BTreeMap<ResourceId, ResourceState>,
        seen: u128,
    }

    impl Estate {
        fn new() -> Self {
            Self { states: BTreeMap::new(), seen: 0 }
        }

        fn run(&mut self, name: &str, command: ResourceCommand) -> Vec<Recorded<ResourceEvent>> {
            let cloud = CloudResourceId::parse(&format!("arn:aws:ec2:us-east-1:123456789012:instance/{name}")).unwrap();
            let id = ResourceId::derive(&tenant(), Provider::Aws, &cloud);
            self.seen += 1;
            let moment = Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap();
            let ctx = CommandContext {
                command_id: Uuid::from_u128(self.seen),
                tenant: tenant(),
                actor: Actor::parse("ana@example.com").unwrap(),
                correlation_id: Uuid::from_u128(7),
                occurred_at: moment,
                recorded_at: moment,
            };
            let config = TaggingConfig { version: 0, schema: TagSchema::new(Vec::new()), rules: RuleSet::default() };
            let state = self.states.remove(&id).unwrap_or_default();
            let events = decide(&state, id, &command, &ctx, &config).unwrap();
            let state = events.iter().fold(state, evolve);
            self.states.insert(id, state);
            events
        }

        fn observe(&mut self, name: &str) -> Vec<Recorded<ResourceEvent>> {
            let cloud = CloudResourceId::parse(&format!("arn:aws:ec2:us-east-1:123456789012:instance/{name}")).unwrap();
            let description = ResourceDescription::parse("123456789012".into(), "us-east-1".into(), "ec2:instance".into(), name.into(), BTreeMap::new()).unwrap();
            let observe = ObserveResource { provider: Provider::Aws, cloud_id: cloud, description, native_tags: NativeTags::parse(BTreeMap::new()).unwrap(), observed_at: Utc::now() };
            self.run(name, ResourceCommand::Observe(observe))
        }

        fn tag(&mut self, name: &str, key: &str, value: &str) -> Vec<Recorded<ResourceEvent>> {
            let apply = ApplyVirtualTag {
                key: TagKey::parse(key).unwrap(),
                value: TagValue::parse(value).unwrap(),
                source: TagSource::Manual,
                confidence: Confidence::CERTAIN,
                expected_version: None,
            };
            self.run(name, ResourceCommand::ApplyVirtualTag(apply))
        }
    }

    fn feed(book: &mut ComplianceBook, events: Vec<Recorded<ResourceEvent>>, hour: i64) -> Vec<String> {
        events.iter().flat_map(|e| book.resource_event(e, at(hour))).map(describe).collect()
    }

    fn describe(d: Decision) -> String {
        match d.change {
            Change::Transition(Transition::Opened { key, .. }) => format!("opened {key}"),
            Change::Transition(Transition::BecameDue { key, .. }) => format!("due {key}"),
            Change::Transition(Transition::Escalated { key, .. }) => format!("escalated {key}"),
            Change::Transition(Transition::Resolved { key, reason, .. }) => format!("resolved {key} ({})", reason.as_str()),
            Change::Judged(j) => format!("judged {:?} {:?} {:.0}", j.applicable, j.violated, j.score),
        }
    }

    fn standard() -> TenantPolicies {
        TenantPolicies::new(1, vec![production_standard()])
    }

    #[test]
    fn tag_changes_open_and_resolve_violations() {
        let mut estate = Estate::new();
        let mut book = ComplianceBook::new();
        book.policies_changed(&tenant(), standard(), at(0));
        assert!(feed(&mut book, estate.observe("web-1"), 0).is_empty(), "no policy judges it yet: nothing to record");
        assert_eq!(
            feed(&mut book, estate.tag("web-1", "environment", "production"), 1),
            [
                "opened cost-center",
                "opened owner",
                "opened backup",
                "opened data-classification",
                "judged [\"prod-tagging-standard\"] [\"prod-tagging-standard\"] 0",
            ]
        );
        // Still broken: nothing new to record.
        assert!(feed(&mut book, estate.tag("web-1", "cost-center", "eng"), 2).is_empty());
        assert_eq!(feed(&mut book, estate.tag("web-1", "cost-center", "ENG-001"), 3), ["resolved cost-center (fixed)"]);
        assert!(book.tick(at(24)).is_empty(), "grace runs from the opening at hour 1");
        assert_eq!(book.tick(at(25)).into_iter().map(describe).collect::<Vec<_>>(), ["due backup", "due data-classification", "due owner"]);
        assert!(book.tick(at(500)).is_empty(), "no escalation configured, nothing more happens");
        assert_eq!(
            feed(&mut book, estate.tag("web-1", "environment", "staging"), 30),
            ["resolved backup (fixed)", "resolved data-classification (fixed)", "resolved owner (fixed)", "judged [] [] 100"]
        );
    }

    #[test]
    fn a_policy_change_rejudges_every_resource_and_a_rebuilt_book_decides_nothing_twice() {
        let mut estate = Estate::new();
        let mut book = ComplianceBook::new();
        let mut recorded = Vec::new();
        for name in ["a", "b", "c"] {
            for e in estate.observe(name).into_iter().chain(estate.tag(name, "environment", "production")) {
                recorded.push(e.clone());
                book.resource_event(&e, at(0));
            }
        }
        // No policies yet: everything complies. Then the standard arrives, retroactively.
        let decided = book.policies_changed(&tenant(), standard(), at(1));
        assert_eq!(decided.iter().filter(|d| matches!(d.change, Change::Transition(Transition::Opened { .. }))).count(), 12);
        // Disabling it withdraws every violation.
        let mut off = production_standard();
        off.enabled = false;
        let withdrawn = book.policies_changed(&tenant(), TenantPolicies::new(2, vec![off]), at(2));
        let resolved = withdrawn.iter().filter(|d| matches!(d.change, Change::Transition(Transition::Resolved { reason: Resolution::PolicyWithdrawn, .. }))).count();
        assert_eq!(resolved, 12);

        // A book rebuilt from the resource events and its own records decides nothing again.
        let mut rebuilt = ComplianceBook::new();
        for e in &recorded {
            rebuilt.resource_event(e, at(0));
        }
        rebuilt.restore_policies(&tenant(), standard());
        for d in &decided {
            rebuilt.restore(d, at(1));
        }
        assert!(rebuilt.rejudge(|_| true, at(1)).is_empty());
        assert_eq!(rebuilt.tick(at(25)).len(), 12, "and time moves it on like the original");
    }

    #[test]
    fn a_recheck_selects_one_resource_or_what_a_scope_covers_and_only_of_its_tenant() {
        let mut estate = Estate::new();
        let mut book = ComplianceBook::new();
        for name in ["a", "b"] {
            for e in estate.observe(name).into_iter().chain(estate.tag(name, "environment", "production")) {
                book.resource_event(&e, at(0));
            }
        }
        let everything = book.select(&tenant(), &Selection::default());
        assert_eq!(everything.len(), 2);
        let one = Selection { resource: Some(everything[1]), scope: Scope::default() };
        assert_eq!(book.select(&tenant(), &one), [everything[1]]);
        let ec2 = |types: &[&str]| Selection { resource: None, scope: Scope { resource_types: types.iter().map(|t| t.to_string()).collect(), ..Scope::default() } };
        assert_eq!(book.select(&tenant(), &ec2(&["ec2:*"])).len(), 2);
        assert!(book.select(&tenant(), &ec2(&["s3:bucket"])).is_empty());
        let azure = Selection { resource: None, scope: Scope { providers: vec![Provider::Azure], ..Scope::default() } };
        assert!(book.select(&tenant(), &azure).is_empty());
        let other = TenantId::parse("globex").unwrap();
        assert!(book.select(&other, &Selection::default()).is_empty());
        assert!(book.select(&other, &one).is_empty(), "another tenant's resource id selects nothing");
        // Judging them again with nothing changed records nothing.
        book.restore_policies(&tenant(), standard());
        assert!(!book.judge_all(&everything, at(1)).is_empty(), "the policies arrived: judged");
        assert!(book.judge_all(&everything, at(2)).is_empty(), "and again: nothing new");
    }

    #[test]
    fn verdicts_taken_in_parts_settle_into_the_same_decisions() {
        // The evaluator takes a chunk's verdicts on several threads and settles them in order.
        let build = || {
            let mut estate = Estate::new();
            let mut book = ComplianceBook::new();
            for (i, name) in ["a", "b", "c", "d", "e"].into_iter().enumerate() {
                let env = if i % 2 == 0 { "production" } else { "staging" };
                for e in estate.observe(name).into_iter().chain(estate.tag(name, "environment", env)).chain(estate.tag(name, "owner", "x@example.com")) {
                    book.resource_event(&e, at(0));
                }
            }
            book.restore_policies(&tenant(), standard());
            book
        };
        let mut whole = build();
        let ids = whole.resources_of(|_| true);
        let at_once = whole.judge_all(&ids, at(1));
        let mut split = build();
        let (left, right) = ids.split_at(2);
        let mut verdicts = split.verdicts(left, at(1));
        verdicts.extend(split.verdicts(right, at(1)));
        let in_parts = split.settle(verdicts, at(1));
        assert_eq!(in_parts, at_once);
        assert_eq!(at_once.iter().filter(|d| matches!(d.change, Change::Judged(_))).count(), 3, "the production ones");
        assert!(split.judge_all(&ids, at(2)).is_empty(), "the book settled the parts' verdicts like its own");
    }

    #[test]
    fn resources_judged_alike_share_one_judgement_until_the_policies_change() {
        let mut estate = Estate::new();
        let mut book = ComplianceBook::new();
        for name in ["a", "b", "c"] {
            for e in estate.observe(name).into_iter().chain(estate.tag(name, "environment", "production")) {
                book.resource_event(&e, at(0));
            }
        }
        let judged = |decided: &[Decision]| -> Vec<std::sync::Arc<Judgement>> {
            decided.iter().filter_map(|d| if let Change::Judged(j) = &d.change { Some(j.clone()) } else { None }).collect()
        };
        let first = judged(&book.policies_changed(&tenant(), standard(), at(1)));
        assert_eq!(first.len(), 3);
        assert!(first.iter().all(|j| std::sync::Arc::ptr_eq(j, &first[0])), "three resources judged alike: one judgement");

        // New policies (the same rules, a new version): judged again alike, but not with the old
        // judgement's places; nothing changed for the resources, so nothing is recorded.
        assert!(book.policies_changed(&tenant(), TenantPolicies::new(2, vec![production_standard()]), at(2)).is_empty());
        // Two resources move out of the policy's reach, one at a time: they share their new
        // judgement, not the old one.
        let a = judged(&book.resource_event(&estate.tag("a", "environment", "staging")[0], at(3)));
        let b = judged(&book.resource_event(&estate.tag("b", "environment", "staging")[0], at(3)));
        assert_eq!((a.len(), b.len()), (1, 1));
        assert!(std::sync::Arc::ptr_eq(&a[0], &b[0]) && !std::sync::Arc::ptr_eq(&a[0], &first[0]));
        assert_eq!(a[0].score, 100.0);
        let others = judged(&book.policies_changed(&tenant(), TenantPolicies::new(3, vec![]), at(4)));
        assert_eq!(others.len(), 1, "c, the one the withdrawn policy still judged");
        assert!(others[0].applicable.is_empty() && !std::sync::Arc::ptr_eq(&others[0], &a[0]), "under new policies, judged anew");
    }
}
