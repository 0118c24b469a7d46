//! Compliance policies as events, end to end (ADR 0007): the seed's Appendix C policies are
//! published through the command API (one at a time, and as a whole YAML document), read back from
//! the query API unchanged, versioned with optimistic concurrency; bad policies are refused whole
//! with a 422 naming path and rule; viewers and editors cannot change them; another tenant sees
//! none of them.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use vtag_service::auth::Role;
use vtag_tests::harness::{eventually, TestEnv};
use vtag_tests::http::Api;

fn production_standard() -> Value {
    json!({
      "policy_id": "prod-tagging-standard",
      "policy_name": "Production Environment Tagging Standard",
      "description": "All production resources must have comprehensive tagging",
      "policy_type": "conditional_requirement",
      "enabled": true,
      "rules": {
        "if_condition": {"field": "tags.environment", "operator": "equals", "value": "production"},
        "then_require": [
          {"tag_key": "cost-center", "validation": {"type": "regex", "pattern": "^[A-Z]{3}-[0-9]{3}$", "message": "Cost center must be format: ABC-123"}},
          {"tag_key": "owner", "validation": {"type": "email", "message": "Owner must be valid email address"}},
          {"tag_key": "backup", "validation": {"type": "enum", "allowed_values": ["daily", "hourly", "weekly"], "message": "Backup must be daily, hourly, or weekly"}},
          {"tag_key": "data-classification", "validation": {"type": "enum", "allowed_values": ["public", "internal", "confidential", "restricted"], "message": "Invalid data classification"}}
        ],
        "severity": "critical",
        "grace_period_hours": 24,
        "auto_remediate": false
      }
    })
}

fn high_cost() -> Value {
    json!({
      "policy_id": "high-cost-governance",
      "policy_name": "High Cost Resource Governance",
      "description": "Resources exceeding $500/month require detailed justification",
      "policy_type": "cost_threshold",
      "enabled": true,
      "rules": {
        "cost_threshold": {"amount": 500, "currency": "USD", "period": "monthly"},
        "required_tags": ["business-unit", "project-justification", "approval-id", "review-date"],
        "validation": {
          "approval-id": {"type": "regex", "pattern": "^JIRA-[0-9]{4,}$", "message": "Approval ID must reference JIRA ticket"},
          "review-date": {"type": "date", "format": "YYYY-MM-DD", "must_be_future": false, "max_age_days": 90, "message": "Review date must be within last 90 days"}
        },
        "severity": "high",
        "escalation": {"to": "finance-team@company.com", "after_hours": 48}
      }
    })
}

/// Polls the query API until the policies document reaches `version`.
async fn policies_at(read: &Api, version: u64) -> Value {
    eventually(Duration::from_secs(30), "the policies to be projected", || async {
        let r = read.get("/api/v1/policies").await;
        let etag = r.headers.get("etag").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        (r.status == 200 && etag == format!("\"{version}\"")).then_some(r.body)
    })
    .await
}

#[tokio::test]
async fn policies_are_versioned_documents_published_as_events() {
    let env = TestEnv::new().await;
    let commands = env.start_command_api().await;
    let _projector = env.start_projector();
    let queries = env.start_query_api().await;
    let admin = Api::new(commands.url(""), Some(env.token("acme", "gov@acme.test", Role::Admin)));
    let editor = Api::new(commands.url(""), Some(env.token("acme", "ed@acme.test", Role::Editor)));
    let read = Api::new(queries.url(""), Some(env.token("acme", "viewer@acme.test", Role::Viewer)));
    let other = Api::new(queries.url(""), Some(env.token("globex", "viewer@globex.test", Role::Viewer)));

    // Nothing yet: version 0, no policies (once the projector has created its tables).
    let none = eventually(Duration::from_secs(60), "the read model", || async {
        let r = read.get("/api/v1/policies").await;
        (r.status != 500).then_some(r)
    })
    .await;
    assert_eq!((none.status.as_u16(), none.body["policies"].as_array().map(Vec::len)), (200, Some(0)), "{:?}", none.body);

    // The seed's two policies, one at a time.
    let first = admin.post("/api/v1/policies", &production_standard()).await;
    assert_eq!((first.status.as_u16(), first.body["version"].as_u64()), (201, Some(1)), "{:?}", first.body);
    let second = admin.post("/api/v1/policies", &high_cost()).await;
    assert_eq!((second.status.as_u16(), second.body["version"].as_u64()), (201, Some(2)), "{:?}", second.body);
    let taken = admin.post("/api/v1/policies", &high_cost()).await;
    assert_eq!(taken.status.as_u16(), 409, "{:?}", taken.body);

    let doc = policies_at(&read, 2).await;
    assert_eq!(doc["policies"][0], production_standard(), "read back exactly as written");
    assert_eq!(doc["policies"][1], high_cost());
    let one = read.get("/api/v1/policies/high-cost-governance").await;
    assert_eq!((one.status.as_u16(), one.body["version"].as_u64(), &one.body["rules"]["escalation"]["after_hours"]), (200, Some(2), &json!(48)));
    assert_eq!(read.get("/api/v1/policies/nope").await.status, 404);
    assert_eq!(other.get("/api/v1/policies").await.body["policies"], json!([]), "tenants never see each other's policies");

    // Saving the same policy again changes nothing; disabling is a new version.
    let same = admin.send(Method::PUT, "/api/v1/policies/high-cost-governance", Some(&high_cost()), &[]).await;
    assert_eq!((same.status.as_u16(), same.body["changed"].as_bool()), (200, Some(false)), "{:?}", same.body);
    let off = admin.send(Method::POST, "/api/v1/policies/high-cost-governance/disable", None, &[("if-match", "2")]).await;
    assert_eq!((off.status.as_u16(), off.body["version"].as_u64()), (202, Some(3)), "{:?}", off.body);
    let stale = admin.send(Method::DELETE, "/api/v1/policies/high-cost-governance", None, &[("if-match", "2")]).await;
    assert_eq!((stale.status.as_u16(), stale.body["current_version"].as_u64()), (409, Some(3)), "{:?}", stale.body);
    assert_eq!(policies_at(&read, 3).await["policies"][1]["enabled"], false);

    // Bad input: refused whole, naming path and rule; nothing published.
    let mut bad = production_standard();
    bad["rules"]["then_require"][0]["validation"]["pattern"] = json!("([");
    bad["rules"]["severity"] = json!("urgent");
    let refused = admin.send(Method::PUT, "/api/v1/policies/prod-tagging-standard", Some(&bad), &[]).await;
    assert_eq!(refused.status.as_u16(), 422, "{:?}", refused.body);
    let errors: Vec<(String, String)> = refused.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["field"].as_str().unwrap().to_owned(), e["rule"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        errors,
        [("rules.severity".to_owned(), "one_of".to_owned()), ("rules.then_require[0].validation.pattern".to_owned(), "regex".to_owned())]
    );
    let unknown = admin.send(Method::POST, "/api/v1/policies", Some(&json!({"policy_id": "x", "policy_name": "X", "policy_type": "required_tags", "rules": {"required": ["owner"]}})), &[]).await;
    assert_eq!((unknown.status.as_u16(), unknown.body["errors"][0]["rule"].as_str()), (422, Some("unknown_field")), "{:?}", unknown.body);
    assert_eq!(editor.post("/api/v1/policies", &production_standard()).await.status, 403, "only admins change policies");

    // The whole document as YAML (GitOps): the export imports back as the same policies.
    let yaml = reqwest::Client::new()
        .get(queries.url("/api/v1/policies?format=yaml"))
        .bearer_auth(env.token("acme", "viewer@acme.test", Role::Viewer))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(yaml.contains("policy_id: prod-tagging-standard"), "{yaml}");
    let imported = admin.send_bytes(Method::PUT, "/api/v1/policies", yaml.replace("enabled: false", "enabled: true").into_bytes(), "application/yaml").await;
    assert_eq!((imported.status.as_u16(), imported.body["version"].as_u64()), (202, Some(4)), "{:?}", imported.body);
    let broken = admin.send_bytes(Method::PUT, "/api/v1/policies", b"policies:\n  - policy_id: p\n    policy_name: P\n    policy_type: required_tags\n    rules:\n      required_tags: [owner]\n      severity: urgent\n".to_vec(), "application/yaml").await;
    assert_eq!((broken.status.as_u16(), broken.body["errors"][0]["line"].as_u64()), (422, Some(7)), "{:?}", broken.body);
    let doc = policies_at(&read, 4).await;
    assert_eq!(doc["policies"][1], high_cost());
}
