//! The herald end to end (ADR 0007 §5, docs/herald.md): policies published through the command
//! API, violations decided by the real evaluator, alerts sent by the herald to receivers the tests
//! start themselves — an HTTP server checking webhook signatures (webhook and Slack), a real SMTP
//! server (aiosmtpd) — and the delivery ledger in Postgres: routing by severity, team and
//! transition; retries with backoff until a delivery is dead (and its replay); a herald killed in
//! the middle of a batch sending nothing twice except, with the same delivery id, what was in flight.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;
use vtag_service::auth::Role;
use vtag_tests::alerts::{due_event_ids, herald_settings, write_config, Answer, Receiver, SmtpServer};
use vtag_tests::harness::{eventually, Service, TestEnv, Worker};
use vtag_tests::http::{observe_batch, Api};

struct World {
    env: TestEnv,
    commands: Service,
    projector: Worker,
    evaluator: Worker,
    admin: Api,
    pool: PgPool,
}

async fn world() -> World {
    let env = TestEnv::new().await;
    let commands = env.start_command_api().await;
    let projector = env.start_projector();
    let evaluator = env.start_compliance(Duration::from_millis(200));
    let admin = Api::new(commands.url(""), Some(env.token("acme", "gov@acme.test", Role::Admin)));
    let pool = env.pool().await;
    World { env, commands, projector, evaluator, admin, pool }
}

impl World {
    async fn observe(&self, from: usize, n: usize) -> Vec<String> {
        let observed = self.admin.post("/api/v1/resources/observe", &observe_batch(from, n)).await;
        assert_eq!(observed.status, 200, "{:?}", observed.body);
        observed.body["results"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect()
    }

    async fn tag(&self, id: &str, key: &str, value: &str) {
        let r = self.admin.post("/api/v1/virtual-tags/apply", &json!({"resource_id": id, "key": key, "value": value})).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }

    async fn policy(&self, policy: Value) {
        let r = self.admin.post("/api/v1/policies", &policy).await;
        assert_eq!(r.status, 201, "{:?}", r.body);
    }

    /// The ledger: (delivery id, event id, channel, status, attempts, last error, escalation contact).
    async fn deliveries(&self) -> Vec<Delivery> {
        sqlx::query_as(
            "SELECT delivery_id, event_id, channel_id, status, attempts, last_error, escalation_contact, payload::text AS payload
               FROM herald.deliveries ORDER BY seq",
        )
        .fetch_all(&self.pool)
        .await
        .unwrap_or_default()
    }

    /// Transitions the herald read: (policy, key, transition, resource, channels routed to).
    async fn transitions(&self) -> Vec<(String, String, String, Uuid, i32)> {
        sqlx::query_as("SELECT policy_id, tag_key, transition, resource_id, deliveries FROM herald.transitions ORDER BY log_partition, log_offset")
            .fetch_all(&self.pool)
            .await
            .unwrap_or_default()
    }

    /// Waits until the projector has written `n` resources (names and teams come from the read model).
    async fn projected(&self, n: i64) {
        eventually(Duration::from_secs(30), "the resources in the read model", || async {
            let got: i64 = sqlx::query_scalar("SELECT count(*) FROM resources").fetch_one(&self.pool).await.ok()?;
            (got == n).then_some(())
        })
        .await;
    }

    async fn stop(self) {
        self.evaluator.stop().await;
        self.projector.stop().await;
        self.commands.stop().await;
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct Delivery {
    delivery_id: Uuid,
    event_id: Uuid,
    channel_id: String,
    status: String,
    attempts: i32,
    last_error: Option<String>,
    escalation_contact: Option<String>,
    payload: String,
}

fn required(policy_id: &str, key: &str, severity: &str) -> Value {
    json!({"policy_id": policy_id, "policy_name": format!("{key} is required"), "policy_type": "required_tags",
           "rules": {"required_tags": [key], "severity": severity}})
}

fn hook_config(receiver: &Receiver) -> String {
    format!(
        "channels:\n  - {{id: hook, tenant: acme, kind: webhook, url: \"{}\", secret_env: HOOK_SECRET}}\nroutes:\n  - {{tenant: acme, channels: [hook]}}\n",
        receiver.url("/hook")
    )
}

#[tokio::test]
async fn due_violations_reach_the_channels_their_routes_name_signed() {
    let w = world().await;
    let receiver = Receiver::start(&[("/hook", "hook-secret-1"), ("/globex", "globex-secret")], Answer::Ok).await;
    let config = format!(
        r#"
channels:
  - {{id: hook, tenant: acme, kind: webhook, url: "{hook}", secret_env: HOOK_SECRET}}
  - {{id: chat, tenant: acme, kind: slack, url_env: SLACK_URL}}
  - {{id: globex-hook, tenant: globex, kind: webhook, url: "{globex}", secret_env: GLOBEX_SECRET}}
routes:
  - name: urgent
    tenant: acme
    match: {{severities: [critical, high]}}
    channels: [hook]
  - name: payments team
    tenant: acme
    match: {{teams: [payments], transitions: [due, resolved]}}
    channels: [chat]
  - {{tenant: globex, channels: [globex-hook]}}
"#,
        hook = receiver.url("/hook"),
        globex = receiver.url("/globex"),
    );
    let path = write_config(&w.env, &config);
    let slack_url = receiver.url("/slack");
    let herald = w.env.start_herald(|s| {
        s.config_path = Some(path);
        s.secrets.insert("HOOK_SECRET".into(), "hook-secret-1".into());
        s.secrets.insert("GLOBEX_SECRET".into(), "globex-secret".into());
        s.secrets.insert("SLACK_URL".into(), slack_url);
    });

    // Two resources, one of team payments (in the read model before any policy judges it).
    let ids = w.observe(0, 2).await;
    w.tag(&ids[0], "team", "payments").await;
    eventually(Duration::from_secs(30), "the team tag in the read model", || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM virtual_tags WHERE tag_key = 'team'").fetch_one(&w.pool).await.ok()?;
        (n == 1).then_some(())
    })
    .await;
    w.projected(2).await;
    // No grace period: both violations of each policy are due at once.
    w.policy(required("owner", "owner", "high")).await;
    w.policy(required("cost-center", "cost-center", "low")).await;
    eventually(Duration::from_secs(60), "the due alerts", || async {
        (receiver.received("/hook").len() >= 2 && receiver.received("/slack").len() >= 2).then_some(())
    })
    .await;
    // Fixing the owner of the payments resource resolves its violation: only the team route asks for that.
    w.tag(&ids[0], "owner", "ana@acme.test").await;
    eventually(Duration::from_secs(60), "the resolution's alert", || async { (receiver.received("/slack").len() >= 3).then_some(()) }).await;
    eventually(Duration::from_secs(30), "every transition recorded and sent", || async {
        let t = w.transitions().await;
        let d = w.deliveries().await;
        (t.len() == 5 && d.len() == 5 && d.iter().all(|d| d.status == "sent")).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The webhook: the two high-severity violations, once each, signed, with the alert's fields.
    let hooks = receiver.received("/hook");
    assert_eq!(hooks.len(), 2, "{hooks:#?}");
    let ledger = w.deliveries().await;
    let mut resources = BTreeSet::new();
    for h in &hooks {
        assert_eq!(h.signature_valid, Some(true));
        assert!(h.header("x-vtag-signature").unwrap().starts_with("sha256="));
        let ts: i64 = h.header("x-vtag-timestamp").unwrap().parse().unwrap();
        assert!((chrono::Utc::now().timestamp() - ts).abs() < 120);
        assert_eq!(h.header("content-type"), Some("application/json"));
        let body = h.json();
        let delivery: Uuid = h.header("x-vtag-delivery-id").unwrap().parse().unwrap();
        assert_eq!(body["delivery_id"], json!(delivery));
        let event: Uuid = body["event_id"].as_str().unwrap().parse().unwrap();
        assert_eq!(delivery, vtag_herald::delivery_id(event, "hook"), "delivery id = UUIDv5(event id, channel)");
        let row = ledger.iter().find(|d| d.delivery_id == delivery).expect("a ledger row per delivery");
        assert_eq!((row.status.as_str(), row.attempts, row.event_id, row.payload.as_bytes()), ("sent", 1, event, &h.body[..]));
        assert_eq!(
            (&body["type"], &body["transition"], &body["tenant"], &body["channel"], &body["policy_id"], &body["tag_key"]),
            (&json!("violation.due"), &json!("due"), &json!("acme"), &json!("hook"), &json!("owner"), &json!("owner"))
        );
        assert_eq!((&body["severity"], &body["problem"], &body["message"]), (&json!("high"), &json!("missing"), &json!("owner is required")), "{body}");
        assert!(body["remediation"].as_str().is_some_and(|r| !r.is_empty()), "{body}");
        assert!(body["opened_at"].is_string() && body["due_at"].is_string() && body["occurred_at"].is_string());
        let resource = body["resource"]["id"].as_str().unwrap().to_owned();
        let team = if resource == ids[0] { json!("payments") } else { Value::Null };
        assert_eq!(body["team"], team, "{body}");
        assert!(body["resource"]["name"].as_str().unwrap().starts_with("web-server-prod-"), "{body}");
        assert_eq!(body["resource"]["provider"], "aws");
        resources.insert(resource);
    }
    assert_eq!(resources, ids.iter().cloned().collect(), "one alert per resource");

    // Slack: the payments resource's due violations (the low one too: its route has no severity
    // filter), then the owner's resolution.
    let slack: Vec<Value> = receiver.received("/slack").iter().map(|r| r.json()).collect();
    assert_eq!(slack.len(), 3, "{slack:#?}");
    let texts: Vec<&str> = slack.iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert!(texts.iter().all(|t| t.contains("web-server-prod-000") && t.contains("(team payments)")), "{texts:#?}");
    assert!(texts.iter().any(|t| t.starts_with(":warning: *[HIGH] Violation due*: `owner` / `owner`")), "{texts:#?}");
    assert!(texts.iter().any(|t| t.starts_with(":warning: *[LOW] Violation due*: `cost-center` / `cost-center`")), "{texts:#?}");
    assert!(texts.iter().any(|t| t.starts_with(":white_check_mark: *[HIGH] Violation resolved (fixed)*: `owner` / `owner`")), "{texts:#?}");
    assert!(slack.iter().all(|m| m["blocks"][0]["text"]["type"] == "mrkdwn" && m["blocks"][1]["type"] == "context"));
    // Nothing crossed to the other tenant's channel.
    assert!(receiver.received("/globex").is_empty());

    // The low-severity violation of the resource without a team went nowhere, but was read.
    let transitions = w.transitions().await;
    let r1: Uuid = ids[1].parse().unwrap();
    let routed = |policy: &str, transition: &str, resource: Uuid| {
        transitions.iter().find(|t| t.0 == policy && t.2 == transition && t.3 == resource).map(|t| t.4)
    };
    assert_eq!(routed("cost-center", "due", r1), Some(0), "{transitions:#?}");
    assert_eq!(routed("owner", "due", r1), Some(1));
    assert_eq!(routed("owner", "due", ids[0].parse().unwrap()), Some(2));
    assert_eq!(routed("owner", "resolved", ids[0].parse().unwrap()), Some(1));

    herald.stop().await;
    receiver.stop();
    w.stop().await;
}

#[tokio::test]
async fn escalations_are_emailed_with_the_escalation_contact() {
    let w = world().await;
    let smtp = SmtpServer::start(&w.env).await;
    let config = format!(
        r#"
channels:
  - id: governance-mail
    tenant: acme
    kind: email
    smtp: {{host: 127.0.0.1, port: {port}}}
    from: "vtag alerts <vtag@acme.test>"
    to: [governance@acme.test]
routes:
  - tenant: acme
    match: {{severities: [critical], transitions: [due, escalated]}}
    channels: [governance-mail]
    to_escalation_contact: true
"#,
        port = smtp.port
    );
    let path = write_config(&w.env, &config);
    let herald = w.env.start_herald(|s| s.config_path = Some(path));
    let ids = w.observe(0, 1).await;
    w.projected(1).await;
    // Without a grace period and escalating after 0 hours: opened, due and escalated at once.
    w.policy(json!({"policy_id": "owner", "policy_name": "Owner", "policy_type": "required_tags",
                    "rules": {"required_tags": ["owner"], "severity": "critical", "escalation": {"to": "leads@acme.test", "after_hours": 0}}}))
        .await;

    let mails = eventually(Duration::from_secs(60), "two emails", || async {
        let m = smtp.messages();
        (m.len() >= 2).then_some(m)
    })
    .await;
    let ledger = eventually(Duration::from_secs(30), "both deliveries sent", || async {
        let d = w.deliveries().await;
        (d.len() == 2 && d.iter().all(|d| d.status == "sent")).then_some(d)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(smtp.messages().len(), 2);

    let by_id: BTreeMap<String, _> = mails.iter().map(|m| (m.headers["message-id"].clone(), m)).collect();
    for d in &ledger {
        let mail = by_id.get(&format!("<{}@vtag>", d.delivery_id)).unwrap_or_else(|| panic!("no email with Message-ID <{}@vtag>: {mails:#?}", d.delivery_id));
        let alert: Value = serde_json::from_str(&d.payload).unwrap();
        let transition = alert["transition"].as_str().unwrap();
        assert!(mail.headers["from"].contains("vtag alerts") && mail.headers["from"].ends_with("<vtag@acme.test>"), "{mail:#?}");
        assert!(mail.headers["to"].contains("governance@acme.test"), "{mail:#?}");
        assert!(mail.body.contains("Problem: owner is required"), "{}", mail.body);
        assert!(mail.body.contains(&format!("Resource id: {}", ids[0])), "{}", mail.body);
        assert!(mail.body.contains(&format!("Delivery {}", d.delivery_id)), "{}", mail.body);
        match transition {
            "due" => {
                assert_eq!(mail.headers["subject"], "[vtag] [CRITICAL] Violation due: owner/owner on web-server-prod-000");
                assert_eq!(mail.headers["x-rcptto"], "governance@acme.test");
                assert_eq!(d.escalation_contact, None);
            }
            "escalated" => {
                assert_eq!(mail.headers["subject"], "[vtag] [CRITICAL] Violation escalated to leads@acme.test: owner/owner on web-server-prod-000");
                assert_eq!(mail.headers["x-rcptto"], "governance@acme.test, leads@acme.test");
                assert!(mail.headers["to"].contains("leads@acme.test"));
                assert_eq!(d.escalation_contact.as_deref(), Some("leads@acme.test"));
            }
            other => panic!("unexpected transition {other}"),
        }
        assert_eq!((d.attempts, d.channel_id.as_str()), (1, "governance-mail"));
    }

    herald.stop().await;
    smtp.stop().await;
    w.stop().await;
}

#[tokio::test]
async fn a_failing_webhook_is_retried_with_backoff_until_dead_and_can_be_replayed() {
    let w = world().await;
    let receiver = Receiver::start(&[("/hook", "hook-secret-2")], Answer::Fail(500)).await;
    let path = write_config(&w.env, &hook_config(&receiver));
    let herald = w.env.start_herald(|s| {
        s.config_path = Some(path);
        s.secrets.insert("HOOK_SECRET".into(), "hook-secret-2".into());
        s.retry_base = Duration::from_millis(100);
        s.retry_max = Duration::from_millis(400);
        s.max_attempts = 4;
    });
    w.policy(required("owner", "owner", "medium")).await;
    w.observe(0, 1).await;

    let dead = eventually(Duration::from_secs(60), "the delivery to die", || async {
        let d = w.deliveries().await;
        d.first().filter(|d| d.status == "dead").cloned()
    })
    .await;
    assert_eq!(dead.attempts, 4);
    assert!(dead.last_error.as_deref().is_some_and(|e| e.starts_with("HTTP 500")), "{dead:?}");
    let next: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT next_attempt_at FROM herald.deliveries WHERE delivery_id = $1").bind(dead.delivery_id).fetch_one(&w.pool).await.unwrap();
    assert_eq!(next, None, "a dead delivery is not retried");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let tries = receiver.received("/hook");
    assert_eq!(tries.len(), 4, "one request per attempt, none after the last");
    assert!(tries.iter().all(|t| t.signature_valid == Some(true) && t.header("x-vtag-delivery-id") == Some(&dead.delivery_id.to_string()[..])));
    assert!(tries.iter().all(|t| t.body == tries[0].body), "every attempt sends the same body");
    // Backoff: 100, 200, 400 ms (the max) between attempts.
    for (i, expected) in [100u64, 200, 400].into_iter().enumerate() {
        let gap = tries[i + 1].at - tries[i].at;
        assert!(gap >= Duration::from_millis(expected), "gap {i}: {gap:?} < {expected} ms");
        assert!(gap < Duration::from_millis(expected + 2_000), "gap {i}: {gap:?}");
    }

    // Replayed by hand (docs/herald.md) once the receiver works again: sent once, same id.
    receiver.answer(Answer::Ok);
    let replayed = sqlx::query("UPDATE herald.deliveries SET status = 'failed', attempts = 0, next_attempt_at = now() WHERE status = 'dead'")
        .execute(&w.pool)
        .await
        .unwrap();
    assert_eq!(replayed.rows_affected(), 1);
    let sent = eventually(Duration::from_secs(30), "the replay", || async {
        w.deliveries().await.into_iter().find(|d| d.status == "sent")
    })
    .await;
    assert_eq!((sent.delivery_id, sent.attempts), (dead.delivery_id, 1));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let tries = receiver.received("/hook");
    assert_eq!(tries.len(), 5);
    assert_eq!(tries[4].header("x-vtag-delivery-id"), Some(&dead.delivery_id.to_string()[..]));

    herald.stop().await;
    receiver.stop();
    w.stop().await;
}

#[tokio::test]
async fn a_herald_killed_mid_batch_sends_every_alert_and_repeats_only_the_one_in_flight() {
    let w = world().await;
    // A slow receiver: each request takes 150 ms, so the herald is in the middle of the batch.
    let receiver = Receiver::start(&[("/hook", "hook-secret-3")], Answer::Slow(Duration::from_millis(150))).await;
    let path = write_config(&w.env, &hook_config(&receiver));
    let mut settings = herald_settings(&w.env);
    settings.config_path = Some(path.clone());
    settings.secrets.insert("HOOK_SECRET".into(), "hook-secret-3".into());
    let crashing = tokio::spawn(vtag_herald::run(settings, std::future::pending()));

    w.policy(required("owner", "owner", "high")).await;
    let ids = w.observe(0, 30).await;
    assert_eq!(ids.len(), 30);
    eventually(Duration::from_secs(60), "a third of the alerts", || async { (receiver.received("/hook").len() >= 10).then_some(()) }).await;
    // A crash: the task is dropped wherever it is (a request in flight, a ledger write pending).
    crashing.abort();
    assert!(crashing.await.unwrap_err().is_cancelled());
    let before = receiver.received("/hook").len();
    let unsent = w.deliveries().await.iter().filter(|d| d.status != "sent").count();
    eprintln!("killed after {before} requests, {unsent} recorded deliveries not sent");
    assert!(before < 30, "the herald was stopped before it sent everything ({before} received)");

    let herald = w.env.start_herald(|s| {
        s.config_path = Some(path);
        s.secrets.insert("HOOK_SECRET".into(), "hook-secret-3".into());
    });
    let expected: BTreeSet<Uuid> = eventually(Duration::from_secs(60), "30 violations due on the log", || async {
        let due = due_event_ids(&w.env).await;
        (due.len() == 30).then(|| due.into_iter().map(|e| vtag_herald::delivery_id(e, "hook")).collect())
    })
    .await;
    eventually(Duration::from_secs(90), "every delivery sent", || async {
        let d = w.deliveries().await;
        (d.len() == 30 && d.iter().all(|d| d.status == "sent")).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut counts: BTreeMap<Uuid, usize> = BTreeMap::new();
    for r in receiver.received("/hook") {
        assert_eq!(r.signature_valid, Some(true));
        let id: Uuid = r.header("x-vtag-delivery-id").unwrap().parse().unwrap();
        assert_eq!(r.json()["delivery_id"], json!(id), "the body names the same delivery");
        *counts.entry(id).or_default() += 1;
    }
    let received: BTreeSet<Uuid> = counts.keys().copied().collect();
    assert_eq!(received, expected, "no delivery missing, none unknown");
    let repeated: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    eprintln!("{} requests for {} deliveries; sent twice: {repeated:?}", counts.values().sum::<usize>(), counts.len());
    assert!(repeated.len() <= 1 && repeated.iter().all(|(_, n)| **n == 2), "only the request in flight is sent again, with its id: {repeated:?}");
    let ledger = w.deliveries().await;
    assert_eq!(ledger.iter().map(|d| d.delivery_id).collect::<BTreeSet<_>>(), expected);
    assert!(ledger.iter().all(|d| d.attempts == 1), "attempts count known outcomes: {ledger:#?}");

    herald.stop().await;
    receiver.stop();
    w.stop().await;
}
