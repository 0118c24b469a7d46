use std::collections::BTreeMap;

use chrono::NaiveDate;
use vtag_domain::compliance::{evaluate, Check, Problem, Severity, Subject};
use vtag_domain::Provider;

use crate::{PoliciesDocument, PolicyDoc};

/// The seed's Appendix C, example 1, verbatim.
const PRODUCTION_STANDARD: &str = r#"{
  "policy_id": "prod-tagging-standard",
  "policy_name": "Production Environment Tagging Standard",
  "description": "All production resources must have comprehensive tagging",
  "policy_type": "conditional_requirement",
  "enabled": true,
  "rules": {
    "if_condition": {
      "field": "tags.environment",
      "operator": "equals",
      "value": "production"
    },
    "then_require": [
      {
        "tag_key": "cost-center",
        "validation": {
          "type": "regex",
          "pattern": "^[A-Z]{3}-[0-9]{3}$",
          "message": "Cost center must be format: ABC-123"
        }
      },
      {
        "tag_key": "owner",
        "validation": {
          "type": "email",
          "message": "Owner must be valid email address"
        }
      },
      {
        "tag_key": "backup",
        "validation": {
          "type": "enum",
          "allowed_values": ["daily", "hourly", "weekly"],
          "message": "Backup must be daily, hourly, or weekly"
        }
      },
      {
        "tag_key": "data-classification",
        "validation": {
          "type": "enum",
          "allowed_values": ["public", "internal", "confidential", "restricted"],
          "message": "Invalid data classification"
        }
      }
    ],
    "severity": "critical",
    "grace_period_hours": 24,
    "auto_remediate": false
  }
}"#;

/// The seed's Appendix C, example 2, verbatim.
const HIGH_COST: &str = r#"{
  "policy_id": "high-cost-governance",
  "policy_name": "High Cost Resource Governance",
  "description": "Resources exceeding $500/month require detailed justification",
  "policy_type": "cost_threshold",
  "enabled": true,
  "rules": {
    "cost_threshold": {
      "amount": 500,
      "currency": "USD",
      "period": "monthly"
    },
    "required_tags": [
      "business-unit",
      "project-justification",
      "approval-id",
      "review-date"
    ],
    "validation": {
      "approval-id": {
        "type": "regex",
        "pattern": "^JIRA-[0-9]{4,}$",
        "message": "Approval ID must reference JIRA ticket"
      },
      "review-date": {
        "type": "date",
        "format": "YYYY-MM-DD",
        "must_be_future": false,
        "max_age_days": 90,
        "message": "Review date must be within last 90 days"
      }
    },
    "severity": "high",
    "escalation": {
      "to": "finance-team@company.com",
      "after_hours": 48
    }
  }
}"#;

/// The seed's short forms (Compliance Framework section): text conditions, plain tag lists.
const SHORT_FORMS: &str = r#"{"policies": [
  {"policy_id": "req-tags-prod", "policy_name": "Required Tags for Production", "policy_type": "required_tags",
   "rules": {"condition": "tags.environment == 'production'", "required_tags": ["cost-center", "owner", "backup"], "severity": "critical"}},
  {"policy_id": "validate-env", "policy_name": "Environment Value Validation", "policy_type": "value_validation",
   "rules": {"tag_key": "environment", "allowed_values": ["production", "staging", "development", "sandbox", "test"], "case_sensitive": false, "severity": "high"}},
  {"policy_id": "prod-backup-req", "policy_name": "Production Resources Need Backup Tags", "policy_type": "conditional_requirement",
   "rules": {"if_condition": "tags.environment == 'production'", "then_require": ["backup", "data-classification"], "severity": "high"}},
  {"policy_id": "high-cost-tagging", "policy_name": "High Cost Resources Require Detailed Tagging", "policy_type": "cost_threshold",
   "rules": {"threshold": 500, "period": "monthly", "required_tags": ["business-unit", "project-justification", "cost-center"], "severity": "critical"}}
]}"#;

fn appendix_c() -> PoliciesDocument {
    let policies = [PRODUCTION_STANDARD, HIGH_COST].map(|p| PolicyDoc::from_json(p.as_bytes()).unwrap()).to_vec();
    PoliciesDocument { policies, ..PoliciesDocument::default() }
}

fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
}

#[test]
fn the_seeds_appendix_c_loads_unchanged_in_meaning() {
    let policies = appendix_c().compile().unwrap();
    let (prod, cost) = (&policies[0], &policies[1]);
    assert_eq!((&*prod.id, prod.severity, prod.grace_period_hours, prod.enabled), ("prod-tagging-standard", Severity::Critical, 24, true));
    assert_eq!((cost.severity, cost.escalation.as_ref().map(|e| (&*e.to, e.after_hours))), (Severity::High, Some(("finance-team@company.com", 48))));
    let Check::CostThreshold { above_cents, currency, require } = &cost.check else { panic!("{:?}", cost.check) };
    assert_eq!((*above_cents, currency.as_str(), require.len()), (50_000, "USD", 4));

    let subject = |t, cost| Subject { provider: Provider::Aws, account: "1", resource_type: "ec2:instance", tags: t, monthly_cost: cost };
    let bad = tags(&[("environment", "production"), ("cost-center", "ENG-1"), ("owner", "ana@example.com"), ("backup", "daily")]);
    let found = evaluate(prod, &subject(&bad, None), today());
    let keys: Vec<(&str, Problem)> = found.iter().map(|f| (&*f.key, f.problem)).collect();
    assert_eq!(keys, [("cost-center", Problem::Invalid), ("data-classification", Problem::Missing)]);
    assert_eq!(&*found[0].message, "cost-center: Cost center must be format: ABC-123 (is 'ENG-1')");

    let costly = tags(&[("business-unit", "retail"), ("project-justification", "x"), ("approval-id", "JIRA-12"), ("review-date", "2026-10-01")]);
    let found = evaluate(cost, &subject(&costly, Some((50_001, "USD"))), today());
    assert_eq!(found.iter().map(|f| &*f.key).collect::<Vec<_>>(), ["approval-id"]);
    assert!(evaluate(cost, &subject(&costly, Some((50_000, "USD"))), today()).is_empty());
}

#[test]
fn the_seeds_short_forms_load_too() {
    let policies = PoliciesDocument::from_json(SHORT_FORMS.as_bytes()).unwrap().compile().unwrap();
    assert_eq!(policies.iter().map(|p| p.check.type_name()).collect::<Vec<_>>(), ["required_tags", "value_validation", "conditional_requirement", "cost_threshold"]);
    let subject = |t| Subject { provider: Provider::Gcp, account: "p", resource_type: "compute:instance", tags: t, monthly_cost: Some((70_000, "USD")) };
    let prod = tags(&[("environment", "production"), ("cost-center", "ENG-001")]);
    let found: Vec<(String, String)> = policies.iter().flat_map(|p| evaluate(p, &subject(&prod), today())).map(|f| (f.policy_id.to_string(), f.key.to_string())).collect();
    let expected = [
        ("req-tags-prod", "owner"),
        ("req-tags-prod", "backup"),
        ("prod-backup-req", "backup"),
        ("prod-backup-req", "data-classification"),
        ("high-cost-tagging", "business-unit"),
        ("high-cost-tagging", "project-justification"),
    ];
    assert_eq!(found, expected.map(|(p, k)| (p.to_owned(), k.to_owned())));
    let Check::CostThreshold { currency, .. } = &policies[3].check else { unreachable!() };
    assert_eq!(currency, "USD", "the short form is in dollars");
}

#[test]
fn yaml_round_trips_and_compiles_the_same() {
    let doc = appendix_c();
    let yaml = doc.to_yaml();
    let (back, policies) = PoliciesDocument::compile_yaml(&yaml).unwrap();
    assert_eq!(back, doc);
    assert_eq!(policies.len(), 2);
    assert_eq!(PoliciesDocument::from_json(&doc.to_json()).unwrap(), doc);
}

fn errors_of(json: &str) -> Vec<(String, &'static str)> {
    let doc = PoliciesDocument::from_json(json.as_bytes()).unwrap_or_else(|e| panic!("{e:?}"));
    doc.compile().unwrap_err().into_iter().map(|e| (e.path, e.rule)).collect()
}

#[test]
fn bad_policies_name_path_and_rule() {
    let errors = errors_of(
        r#"{"policies": [
          {"policy_id": "a", "policy_name": "A", "policy_type": "conditional_requirement",
           "rules": {"if_condition": {"field": "environment", "operator": "equals", "value": "production"},
                     "then_require": [{"tag_key": "owner", "validation": {"type": "regex", "pattern": "(["}}, "Bad Key!"],
                     "severity": "urgent", "tag_key": "x"}},
          {"policy_id": "a", "policy_name": "B", "policy_type": "cost_threshold",
           "rules": {"cost_threshold": {"amount": -5, "currency": "usd", "period": "weekly"}, "required_tags": ["owner"],
                     "validation": {"team": {"type": "email"}}}},
          {"policy_id": "c", "policy_name": "C", "policy_type": "tag_rules", "rules": {}},
          {"policy_id": "d", "policy_name": "D", "policy_type": "value_validation", "rules": {"tag_key": "environment"}},
          {"policy_id": "e", "policy_name": "E", "policy_type": "required_tags",
           "rules": {"condition": "tags.environment = production", "required_tags": ["owner"]}}
        ]}"#,
    );
    let expected = [
        ("policies[0].rules.severity", "one_of"),
        ("policies[0].rules.tag_key", "unknown_field"),
        ("policies[0].rules.if_condition.field", "field"),
        ("policies[0].rules.then_require[0].validation.pattern", "regex"),
        ("policies[0].rules.then_require[1]", "charset"),
        ("policies[1].policy_id", "duplicate"),
        ("policies[1].rules.cost_threshold.amount", "range"),
        ("policies[1].rules.period", "one_of"),
        ("policies[1].rules.cost_threshold.currency", "currency"),
        ("policies[1].rules.validation.team", "not_found"),
        ("policies[2].policy_type", "one_of"),
        ("policies[3].rules.allowed_values", "required"),
        ("policies[4].rules.condition", "condition"),
    ];
    assert_eq!(errors, expected.map(|(p, r)| (p.to_owned(), r)));
}

#[test]
fn shape_errors_are_reported_with_their_line_in_yaml() {
    let yaml = "policies:\n  - policy_id: p\n    policy_name: P\n    policy_type: required_tags\n    rules:\n      required_tags: [owner]\n      severity: high\n      grace_hours: 3\n";
    let errors = PoliciesDocument::compile_yaml(yaml).unwrap_err();
    assert_eq!((errors[0].rule, errors[0].line), ("unknown_field", Some(8)), "{errors:?}");
    let yaml = "policies:\n  - policy_id: p\n    policy_name: P\n    policy_type: required_tags\n    rules:\n      required_tags: [owner]\n      severity: urgent\n";
    let errors = PoliciesDocument::compile_yaml(yaml).unwrap_err();
    assert_eq!((errors[0].path.as_str(), errors[0].rule, errors[0].line), ("policies[0].rules.severity", "one_of", Some(7)), "{errors:?}");
}
