//! The compliance evaluator end to end (ADR 0007): policies published through the command API,
//! virtual tags applied to observed resources, and the evaluator's records on the compliance-events
//! topic — a violation due at once without a grace period, pending ones inside it, a fix resolving
//! its violation, a policy change re-judging retroactively — and a restarted evaluator deciding
//! nothing twice.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use vtag_domain::compliance::{Change, Resolution, Transition};
use vtag_service::auth::Role;
use vtag_tests::harness::{eventually, TestEnv};
use vtag_tests::log::compliance_decisions;
use vtag_tests::http::{observe_batch, Api};

/// Every decision of the compliance-events topic: (resource, version, what).
async fn records(env: &TestEnv) -> Vec<(String, u64, String)> {
    let mut out: Vec<(String, u64, String)> = compliance_decisions(env)
        .await
        .into_iter()
        .map(|r| {
            let what = match r.change {
                Change::Transition(Transition::Opened { policy_id, key, .. }) => format!("opened {policy_id}/{key}"),
                Change::Transition(Transition::BecameDue { policy_id, key }) => format!("due {policy_id}/{key}"),
                Change::Transition(Transition::Escalated { policy_id, key, .. }) => format!("escalated {policy_id}/{key}"),
                Change::Transition(Transition::Resolved { policy_id, key, reason }) => format!("resolved {policy_id}/{key} ({})", reason.as_str()),
                Change::Judged(j) => format!("judged {} of {} violated", j.violated.len(), j.applicable.len()),
            };
            (r.envelope.aggregate_id.to_string(), r.envelope.aggregate_version, what)
        })
        .collect();
    out.sort();
    out
}

fn of(records: &[(String, u64, String)], resource: &str) -> Vec<String> {
    records.iter().filter(|(r, _, _)| r == resource).map(|(_, _, w)| w.clone()).collect()
}

#[tokio::test]
async fn violations_follow_tags_and_policies_as_events() {
    let env = TestEnv::new().await;
    let commands = env.start_command_api().await;
    let _projector = env.start_projector();
    let queries = env.start_query_api().await;
    let admin = Api::new(commands.url(""), Some(env.token("acme", "gov@acme.test", Role::Admin)));
    let read = Api::new(queries.url(""), Some(env.token("acme", "viewer@acme.test", Role::Viewer)));

    let owner_required = json!({"policy_id": "owner", "policy_name": "Every resource has an owner", "policy_type": "required_tags",
                                "rules": {"required_tags": ["owner"], "severity": "high"}});
    assert_eq!(admin.post("/api/v1/policies", &owner_required).await.status, 201);
    let production = json!({"policy_id": "prod", "policy_name": "Production needs a backup schedule", "policy_type": "conditional_requirement",
                            "rules": {"if_condition": "tags.environment == 'production'",
                                      "then_require": [{"tag_key": "backup", "validation": {"type": "enum", "allowed_values": ["daily", "weekly"]}}],
                                      "severity": "critical", "grace_period_hours": 24}});
    assert_eq!(admin.post("/api/v1/policies", &production).await.status, 201);

    // The evaluator starts with the policies in the log; a first resource shows it is following.
    let evaluator = env.start_compliance(Duration::from_millis(200));
    let canary = admin.post("/api/v1/resources/observe", &observe_batch(100, 1)).await;
    let canary = canary.body["results"][0]["id"].as_str().unwrap().to_owned();
    eventually(Duration::from_secs(60), "the evaluator to follow the log", || async {
        of(&records(&env).await, &canary).contains(&"due owner/owner".to_owned()).then_some(())
    })
    .await;

    let observed = admin.post("/api/v1/resources/observe", &observe_batch(0, 3)).await;
    assert_eq!(observed.status, 200, "{:?}", observed.body);
    let ids: Vec<String> = observed.body["results"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect();
    let apply = |id: &str, key: &str, value: &str| json!({"resource_id": id, "key": key, "value": value});
    for (id, key, value) in [(&ids[0], "owner", "ana@example.com"), (&ids[0], "environment", "production"), (&ids[2], "owner", "bo@example.com")] {
        assert_eq!(admin.post("/api/v1/virtual-tags/apply", &apply(id, key, value)).await.status, 200);
    }

    // Without a grace period a violation is due at once; inside one it stays pending.
    let seen = eventually(Duration::from_secs(60), "the evaluator's records", || async {
        let all = records(&env).await;
        let settled = of(&all, &ids[0]).last().is_some_and(|w| w == "judged 1 of 2 violated")
            && of(&all, &ids[1]).len() >= 3
            && of(&all, &ids[2]).last().is_some_and(|w| w == "judged 0 of 1 violated");
        settled.then_some(all)
    })
    .await;
    assert_eq!(of(&seen, &ids[1]), ["opened owner/owner", "due owner/owner", "judged 1 of 1 violated"]);
    // Observed before anyone tagged it, resource 0 broke the owner policy until its owner was set;
    // then production made the backup schedule required, pending through its grace period.
    assert_eq!(
        of(&seen, &ids[0]),
        [
            "opened owner/owner",
            "due owner/owner",
            "judged 1 of 1 violated",
            "resolved owner/owner (fixed)",
            "judged 0 of 1 violated",
            "opened prod/backup",
            "judged 1 of 2 violated",
        ]
    );
    assert_eq!(of(&seen, &ids[2]).last().map(String::as_str), Some("judged 0 of 1 violated"), "{:?}", of(&seen, &ids[2]));

    // A fix resolves the violation.
    assert_eq!(admin.post("/api/v1/virtual-tags/apply", &apply(&ids[1], "owner", "cy@example.com")).await.status, 200);
    let fixed = eventually(Duration::from_secs(30), "the violation to resolve", || async {
        let all = records(&env).await;
        of(&all, &ids[1]).last().is_some_and(|w| w == "judged 0 of 1 violated").then_some(all)
    })
    .await;
    assert_eq!(of(&fixed, &ids[1])[3..], ["resolved owner/owner (fixed)", "judged 0 of 1 violated"]);
    // A policy removed withdraws its violations, retroactively.
    let removed = admin.send(Method::DELETE, "/api/v1/policies/prod", None, &[]).await;
    assert_eq!(removed.status, 202, "{:?}", removed.body);
    let withdrawn = eventually(Duration::from_secs(30), "the withdrawal", || async {
        let all = records(&env).await;
        let withdrawn = of(&all, &ids[0]).contains(&format!("resolved prod/backup ({})", Resolution::PolicyWithdrawn.as_str()));
        (withdrawn && of(&all, &ids[0]).last().is_some_and(|w| w == "judged 0 of 1 violated")).then_some(all)
    })
    .await;
    assert!(withdrawn.len() > fixed.len());

    // Versions are gapless per resource.
    for id in &ids {
        let versions: Vec<u64> = withdrawn.iter().filter(|(r, _, _)| r == id).map(|(_, v, _)| *v).collect();
        assert_eq!(versions, (1..=versions.len() as u64).collect::<Vec<_>>(), "{id}");
    }

    // The read model: four resources judged by the owner policy, the canary still without an owner.
    let status = eventually(Duration::from_secs(30), "the violations to be projected", || async {
        let r = read.get("/api/v1/compliance/status").await;
        let settled = r.body["resources_judged"] == 4 && r.body["compliant"] == 3 && r.body["open_violations"]["due"] == 1;
        (r.status == 200 && settled).then_some(r.body)
    })
    .await;
    assert_eq!((status["compliant"].as_i64(), status["compliance_rate"].as_f64()), (Some(3), Some(75.0)), "{status}");
    assert_eq!(status["open_violations"], json!({"pending": 0, "due": 1, "escalated": 0}));
    assert_eq!(status["by_policy"], json!([{"policy_id": "owner", "open": 1, "resources": 1}]));
    assert_eq!(status["by_severity"], json!([{"severity": "high", "open": 1}]));
    assert_eq!(status["top_issues"][0]["tag_key"], "owner");
    assert_eq!(status["by_provider"][0]["judged"], 4);
    let trend = status["trend"].as_array().unwrap();
    assert_eq!((trend.len(), &trend[29]["open_violations"]), (30, &json!(1)), "today: the canary's violation");
    let history = read.get(&format!("/api/v1/compliance/violations?resource_id={}&stage=all", ids[1])).await;
    let rows = history.body["violations"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{:?}", history.body);
    assert_eq!((rows[0]["stage"].as_str(), rows[0]["resolution"].as_str(), rows[0]["message"].as_str()), (Some("resolved"), Some("fixed"), Some("owner is required")));
    let open = read.get(&format!("/api/v1/compliance/violations?resource_id={canary}")).await;
    assert_eq!(open.body["violations"][0]["stage"], "due", "{:?}", open.body);
    assert_eq!(read.get("/api/v1/compliance/violations?stage=closed").await.status.as_u16(), 422);
    // The seed's GraphQL ComplianceStatus.
    let status_of = |id: &str| {
        json!({"query": format!("{{ resource(id: \"{id}\") {{ complianceStatus {{ isCompliant score lastChecked violations {{ policyId tagKey stage severity message }} }} }} }}")})
    };
    let broken = read.post("/graphql", &status_of(&canary)).await;
    let c = &broken.body["data"]["resource"]["complianceStatus"];
    assert_eq!((&c["isCompliant"], &c["score"]), (&json!(false), &json!(0.0)), "{:?}", broken.body);
    assert_eq!(c["violations"], json!([{"policyId": "owner", "tagKey": "owner", "stage": "due", "severity": "high", "message": "owner is required"}]));
    let fine = read.post("/graphql", &status_of(&ids[1])).await;
    let c = &fine.body["data"]["resource"]["complianceStatus"];
    assert_eq!((&c["isCompliant"], &c["score"], &c["violations"]), (&json!(true), &json!(100.0), &json!([])), "{:?}", fine.body);
    assert!(c["lastChecked"].is_string());

    // A restarted evaluator rebuilds from the log and decides nothing again.
    evaluator.stop().await;
    let evaluator = env.start_compliance(Duration::from_millis(200));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(records(&env).await, withdrawn, "nothing decided twice");
    evaluator.stop().await;
}

/// Waits for a compliance job to finish and answers its body.
async fn finished_job(read: &Api, job: &str) -> serde_json::Value {
    eventually(Duration::from_secs(60), "the compliance job to finish", || async {
        let r = read.get(&format!("/api/v1/compliance/jobs/{job}")).await;
        (r.status == 200 && r.body["done"] == true).then_some(r.body)
    })
    .await
}

/// `POST /api/v1/compliance/recheck` for one resource, a filter, or everything, each a job whose
/// progress the query API shows; a policies change answers its own job, which counts what changed.
#[tokio::test]
async fn rechecks_and_policy_changes_run_as_jobs_with_progress() {
    let env = TestEnv::new().await;
    let commands = env.start_command_api().await;
    let _projector = env.start_projector();
    let queries = env.start_query_api().await;
    let admin = Api::new(commands.url(""), Some(env.token("acme", "gov@acme.test", Role::Admin)));
    let editor = Api::new(commands.url(""), Some(env.token("acme", "ed@acme.test", Role::Editor)));
    let viewer = Api::new(commands.url(""), Some(env.token("acme", "viewer@acme.test", Role::Viewer)));
    let read = Api::new(queries.url(""), Some(env.token("acme", "viewer@acme.test", Role::Viewer)));
    let other = Api::new(queries.url(""), Some(env.token("globex", "viewer@globex.test", Role::Viewer)));

    let observed = admin.post("/api/v1/resources/observe", &observe_batch(0, 3)).await;
    let ids: Vec<String> = observed.body["results"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect();
    let azure = json!({"resources": [{"provider": "azure", "resource_id": "/subscriptions/0000/resourceGroups/pay/providers/Microsoft.Compute/virtualMachines/pay-vm-1",
                       "account_id": "0000", "region": "westeurope", "resource_type": "vm", "name": "pay-vm-1", "native_tags": {}}]});
    assert_eq!(admin.post("/api/v1/resources/observe", &azure).await.status, 200);
    let evaluator = env.start_compliance(Duration::from_millis(200));

    // Bad requests are refused before anything is written; viewers may not ask.
    let bad = editor.post("/api/v1/compliance/recheck", &json!({"filter": {"providers": ["oracle"]}})).await;
    assert_eq!(bad.status, 422, "{:?}", bad.body);
    assert_eq!((bad.body["errors"][0]["field"].as_str(), bad.body["errors"][0]["rule"].as_str()), (Some("filter.providers[0]"), Some("one_of")));
    let neither = editor.post("/api/v1/compliance/recheck", &json!({})).await;
    assert_eq!((neither.status.as_u16(), neither.body["errors"][0]["rule"].as_str()), (422, Some("one_of")), "{:?}", neither.body);
    assert_eq!(editor.post("/api/v1/compliance/recheck", &json!({"everything": true})).await.status, 422);
    assert_eq!(viewer.post("/api/v1/compliance/recheck", &json!({"all": true})).await.status, 403);

    let recheck = |body: serde_json::Value| {
        let editor = &editor;
        async move {
            let r = editor.post("/api/v1/compliance/recheck", &body).await;
            assert_eq!(r.status, 202, "{:?}", r.body);
            assert_eq!(r.body["status_url"], format!("/api/v1/compliance/jobs/{}", r.body["job_id"].as_str().unwrap()));
            r.body["job_id"].as_str().unwrap().to_owned()
        }
    };
    let aws = finished_job(&read, &recheck(json!({"filter": {"providers": ["aws"], "resource_types": ["ec2:*"]}})).await).await;
    assert_eq!((aws["kind"].as_str(), aws["total"].as_i64(), aws["processed"].as_i64()), (Some("recheck"), Some(3), Some(3)), "{aws}");
    assert_eq!((aws["partitions"].as_i64(), aws["partitions_done"].as_i64()), (Some(env.partitions as i64), Some(env.partitions as i64)));
    assert_eq!((aws["percent"].as_f64(), aws["started_by"].as_str()), (Some(100.0), Some("ed@acme.test")));
    assert_eq!(aws["changed"], 0, "no policies yet: nothing to record");
    let one = finished_job(&read, &recheck(json!({"resource_id": ids[1]})).await).await;
    assert_eq!(one["total"], 1, "{one}");
    let all = finished_job(&read, &recheck(json!({"all": true})).await).await;
    assert_eq!(all["total"], 4, "{all}");
    // Tenants never see each other's jobs.
    let job = all["job_id"].as_str().unwrap();
    assert_eq!(other.get(&format!("/api/v1/compliance/jobs/{job}")).await.status.as_u16(), 404);
    assert_eq!(read.get("/api/v1/compliance/jobs/not-a-uuid").await.status.as_u16(), 422);

    // A new policy judges every resource retroactively; its answer names the job.
    let owner_required = json!({"policy_id": "owner", "policy_name": "Every resource has an owner", "policy_type": "required_tags",
                                "rules": {"required_tags": ["owner"], "severity": "high"}});
    let created = admin.post("/api/v1/policies", &owner_required).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let pass = finished_job(&read, created.body["job_id"].as_str().expect("a policies change names its job")).await;
    assert_eq!((pass["kind"].as_str(), pass["policies_version"].as_i64()), (Some("policies_changed"), Some(1)), "{pass}");
    assert_eq!((pass["total"].as_i64(), pass["changed"].as_i64()), (Some(4), Some(4)), "every resource lacks an owner: {pass}");
    // Their violations are in the read model by the time the job is done.
    let status = read.get("/api/v1/compliance/status").await;
    assert_eq!((status.body["resources_judged"].as_i64(), status.body["compliant"].as_i64()), (Some(4), Some(0)), "{:?}", status.body);
    // Unchanged, the document is not a new version and starts no job.
    let same = admin.send(Method::PUT, "/api/v1/policies/owner", Some(&owner_required), &[]).await;
    assert_eq!((same.status.as_u16(), same.body.get("job_id")), (200, None), "{:?}", same.body);
    evaluator.stop().await;
}
