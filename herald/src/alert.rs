//! From compliance records to alerts: the openings folded in memory (a due, escalated or resolved
//! record names only its policy and tag key; severity, message and remediation come from the
//! violation's `ViolationOpened` earlier in the same partition), the alert every channel is sent
//! (the webhook's JSON body as is, stored in the ledger), and how Slack and email say it.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use vtag_domain::compliance::{Change, Transition};
use vtag_eventlog::compliance::ComplianceRecord;

use crate::config::Alertable;

/// What a violation's opening said.
#[derive(Debug, Clone, PartialEq)]
pub struct Opening {
    pub severity: String,
    pub problem: String,
    pub message: String,
    pub remediation: String,
    pub opened_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub escalate_to: Option<String>,
}

/// An alertable transition read from the log, with its violation's opening (None when the
/// opening was never read: an undecodable record).
#[derive(Debug, Clone, PartialEq)]
pub struct Noted {
    pub event_id: Uuid,
    pub tenant: String,
    pub resource_id: Uuid,
    pub compliance_version: u64,
    pub policy_id: String,
    pub tag_key: String,
    pub transition: Alertable,
    pub occurred_at: DateTime<Utc>,
    pub opening: Option<Opening>,
    pub escalated_to: Option<String>,
    pub resolution: Option<String>,
}

type ViolationId = (Uuid, String, String);

/// The open violations' openings, folded from the compliance-events topic (every partition read
/// from its start when the herald starts). Only open violations are kept.
#[derive(Debug, Default)]
pub struct Openings {
    open: HashMap<ViolationId, Opening>,
}

impl Openings {
    pub fn len(&self) -> usize {
        self.open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// Folds one record; returns it as an alertable transition when it is one.
    pub fn fold(&mut self, r: &ComplianceRecord) -> Option<Noted> {
        let Change::Transition(t) = &r.change else { return None };
        let resource = r.envelope.aggregate_id.as_uuid();
        let (policy_id, key, transition, escalated_to, resolution) = match t {
            Transition::Opened { policy_id, key, severity, problem, message, remediation, due_at, escalation } => {
                let opening = Opening {
                    severity: severity.as_str().to_owned(),
                    problem: problem.as_str().to_owned(),
                    message: message.to_string(),
                    remediation: remediation.to_string(),
                    opened_at: r.envelope.occurred_at,
                    due_at: *due_at,
                    escalate_to: escalation.as_ref().map(|(to, _)| to.to_string()),
                };
                self.open.insert((resource, policy_id.to_string(), key.to_string()), opening);
                return None;
            }
            Transition::BecameDue { policy_id, key } => (policy_id, key, Alertable::Due, None, None),
            Transition::Escalated { policy_id, key, to } => (policy_id, key, Alertable::Escalated, Some(to.to_string()), None),
            Transition::Resolved { policy_id, key, reason } => (policy_id, key, Alertable::Resolved, None, Some(reason.as_str().to_owned())),
        };
        let id = (resource, policy_id.to_string(), key.to_string());
        let opening = if transition == Alertable::Resolved { self.open.remove(&id) } else { self.open.get(&id).cloned() };
        Some(Noted {
            event_id: r.envelope.event_id,
            tenant: r.envelope.tenant.to_string(),
            resource_id: resource,
            compliance_version: r.envelope.aggregate_version,
            policy_id: policy_id.to_string(),
            tag_key: key.to_string(),
            transition,
            occurred_at: r.envelope.occurred_at,
            opening,
            escalated_to,
            resolution,
        })
    }
}

/// The resource as the read model knows it when the alert is dispatched.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceInfo {
    pub name: Option<String>,
    pub provider: Option<String>,
    pub cloud_resource_id: Option<String>,
    pub account_id: Option<String>,
    /// The `team` virtual tag.
    pub team: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceRef {
    pub id: Uuid,
    pub name: Option<String>,
    pub provider: Option<String>,
    pub cloud_resource_id: Option<String>,
    pub account_id: Option<String>,
}

/// One delivery's content: the webhook body (signed as serialized), and what Slack and email
/// render. Stored with the delivery, so a retry sends exactly this again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub delivery_id: Uuid,
    pub event_id: Uuid,
    /// `violation.due`, `violation.escalated`, `violation.resolved`.
    #[serde(rename = "type")]
    pub event_type: String,
    pub transition: String,
    pub tenant: String,
    pub channel: String,
    pub resource: ResourceRef,
    pub team: Option<String>,
    pub policy_id: String,
    pub tag_key: String,
    pub severity: Option<String>,
    pub problem: Option<String>,
    pub message: Option<String>,
    pub remediation: Option<String>,
    pub opened_at: Option<DateTime<Utc>>,
    pub due_at: Option<DateTime<Utc>>,
    /// Who is told when the violation stays open (the policy's escalation).
    pub escalate_to: Option<String>,
    /// Escalated: to whom.
    pub escalated_to: Option<String>,
    /// Resolved: `fixed` or `policy_withdrawn`.
    pub resolution: Option<String>,
    pub occurred_at: DateTime<Utc>,
    /// The resource's compliance version this transition is.
    pub compliance_version: u64,
}

impl Alert {
    pub fn new(noted: &Noted, delivery_id: Uuid, channel: &str, info: &ResourceInfo) -> Self {
        let o = noted.opening.as_ref();
        Self {
            delivery_id,
            event_id: noted.event_id,
            event_type: format!("violation.{}", noted.transition.as_str()),
            transition: noted.transition.as_str().to_owned(),
            tenant: noted.tenant.clone(),
            channel: channel.to_owned(),
            resource: ResourceRef {
                id: noted.resource_id,
                name: info.name.clone(),
                provider: info.provider.clone(),
                cloud_resource_id: info.cloud_resource_id.clone(),
                account_id: info.account_id.clone(),
            },
            team: info.team.clone(),
            policy_id: noted.policy_id.clone(),
            tag_key: noted.tag_key.clone(),
            severity: o.map(|o| o.severity.clone()),
            problem: o.map(|o| o.problem.clone()),
            message: o.map(|o| o.message.clone()),
            remediation: o.map(|o| o.remediation.clone()),
            opened_at: o.map(|o| o.opened_at),
            due_at: o.map(|o| o.due_at),
            escalate_to: o.and_then(|o| o.escalate_to.clone()),
            escalated_to: noted.escalated_to.clone(),
            resolution: noted.resolution.clone(),
            occurred_at: noted.occurred_at,
            compliance_version: noted.compliance_version,
        }
    }

    fn resource_name(&self) -> String {
        self.resource.name.clone().unwrap_or_else(|| self.resource.id.to_string())
    }

    /// "Violation due", "Violation escalated to x", "Violation resolved (fixed)".
    fn what(&self) -> String {
        match (self.transition.as_str(), &self.escalated_to, &self.resolution) {
            ("escalated", Some(to), _) => format!("Violation escalated to {to}"),
            ("resolved", _, Some(how)) => format!("Violation resolved ({})", how.replace('_', " ")),
            (t, _, _) => format!("Violation {t}"),
        }
    }

    fn severity_label(&self) -> String {
        self.severity.as_deref().unwrap_or("unknown severity").to_ascii_uppercase()
    }

    /// The email subject (one line).
    pub fn subject(&self) -> String {
        format!("[vtag] [{}] {}: {}/{} on {}", self.severity_label(), self.what(), self.policy_id, self.tag_key, self.resource_name())
    }

    /// The email body: plain text, short lines.
    pub fn text(&self) -> String {
        let mut lines = vec![format!("{}: policy {}, tag {}", self.what(), self.policy_id, self.tag_key), String::new()];
        let mut field = |name: &str, value: Option<String>| {
            if let Some(v) = value {
                lines.push(format!("{name}: {v}"));
            }
        };
        field("Resource", Some(self.resource_name()));
        field("Resource id", Some(self.resource.id.to_string()));
        field("Cloud id", self.resource.cloud_resource_id.clone());
        field("Provider", self.resource.provider.clone());
        field("Account", self.resource.account_id.clone());
        field("Tenant", Some(self.tenant.clone()));
        field("Team", self.team.clone());
        field("Severity", self.severity.clone());
        field("Problem", self.message.clone());
        field("Remediation", self.remediation.clone());
        field("Opened", self.opened_at.map(|t| t.to_rfc3339()));
        field("Due", self.due_at.map(|t| t.to_rfc3339()));
        field("Escalates to", self.escalate_to.clone());
        field("Transition at", Some(self.occurred_at.to_rfc3339()));
        lines.push(String::new());
        lines.push(format!("Delivery {}", self.delivery_id));
        lines.push(format!("Event {}", self.event_id));
        let mut text = lines.join("\r\n");
        text.push_str("\r\n");
        text
    }

    /// A Slack incoming-webhook message: mrkdwn text, and the same as blocks.
    pub fn slack(&self) -> serde_json::Value {
        let icon = match self.transition.as_str() {
            "resolved" => ":white_check_mark:",
            "escalated" => ":rotating_light:",
            _ => ":warning:",
        };
        let mut text = format!(
            "{icon} *[{}] {}*: `{}` / `{}` on *{}*",
            self.severity_label(),
            self.what(),
            self.policy_id,
            self.tag_key,
            escape_mrkdwn(&self.resource_name())
        );
        if let Some(team) = &self.team {
            text.push_str(&format!(" (team {})", escape_mrkdwn(team)));
        }
        if let Some(m) = &self.message {
            text.push_str(&format!("\n> {}", escape_mrkdwn(m)));
        }
        if let Some(r) = self.remediation.as_ref().filter(|_| self.transition != "resolved") {
            text.push_str(&format!("\nRemediation: {}", escape_mrkdwn(r)));
        }
        let context = format!("tenant {} · resource {} · delivery {}", self.tenant, self.resource.id, self.delivery_id);
        serde_json::json!({
            "text": text,
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": text}},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]}
            ]
        })
    }
}

/// Slack's three control characters.
fn escape_mrkdwn(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use vtag_domain::compliance::{Judgement, Problem, Resolution, Severity};
    use vtag_domain::{Actor, EventEnvelope, ResourceId, TenantId};

    use super::*;

    fn record(version: u64, change: Change) -> ComplianceRecord {
        let at = Utc.with_ymd_and_hms(2026, 11, 23, 5, 0, 0).unwrap();
        ComplianceRecord {
            envelope: EventEnvelope {
                event_id: Uuid::from_u128(version as u128),
                tenant: TenantId::parse("acme").unwrap(),
                aggregate_id: ResourceId::from_uuid(Uuid::from_u128(9)),
                aggregate_version: version,
                actor: Actor::parse("vtag-compliance").unwrap(),
                causation_id: Uuid::nil(),
                correlation_id: Uuid::nil(),
                occurred_at: at,
                recorded_at: at,
            },
            source_offset: 3,
            policies_version: 1,
            change,
        }
    }

    #[test]
    fn later_transitions_carry_what_the_opening_said() {
        let at = Utc.with_ymd_and_hms(2026, 11, 23, 5, 0, 0).unwrap();
        let (p, k) = (std::sync::Arc::<str>::from("owner"), std::sync::Arc::<str>::from("owner"));
        let mut openings = Openings::default();
        let opened = Change::Transition(Transition::Opened {
            policy_id: p.clone(),
            key: k.clone(),
            severity: Severity::High,
            problem: Problem::Missing,
            message: "owner is required".into(),
            remediation: "set the owner tag".into(),
            due_at: at,
            escalation: Some(("leads@acme.test".into(), at)),
        });
        assert_eq!(openings.fold(&record(1, opened)), None, "an opening is never alerted");
        let due = openings.fold(&record(2, Change::Transition(Transition::BecameDue { policy_id: p.clone(), key: k.clone() }))).unwrap();
        assert_eq!((due.transition, due.compliance_version, due.event_id), (Alertable::Due, 2, Uuid::from_u128(2)));
        let o = due.opening.as_ref().unwrap();
        assert_eq!((o.severity.as_str(), o.message.as_str(), o.escalate_to.as_deref()), ("high", "owner is required", Some("leads@acme.test")));
        let up = Change::Transition(Transition::Escalated { policy_id: p.clone(), key: k.clone(), to: "leads@acme.test".into() });
        assert_eq!(openings.fold(&record(3, up)).unwrap().escalated_to.as_deref(), Some("leads@acme.test"));
        assert_eq!(openings.fold(&record(4, Change::Judged(std::sync::Arc::new(Judgement { applicable: vec![], violated: vec![], score: 1.0 })))), None);
        let fixed = Change::Transition(Transition::Resolved { policy_id: p.clone(), key: k.clone(), reason: Resolution::Fixed });
        let resolved = openings.fold(&record(5, fixed.clone())).unwrap();
        assert_eq!((resolved.resolution.as_deref(), resolved.opening.is_some()), (Some("fixed"), true));
        assert!(openings.is_empty(), "a resolved violation is forgotten");
        assert_eq!(openings.fold(&record(5, fixed)).unwrap().opening, None, "a duplicate record has no details left");

        let alert = Alert::new(&resolved, Uuid::from_u128(77), "hook", &ResourceInfo { name: Some("web-1".into()), team: Some("payments".into()), ..Default::default() });
        assert_eq!(alert.subject(), "[vtag] [HIGH] Violation resolved (fixed): owner/owner on web-1");
        let json = serde_json::to_value(&alert).unwrap();
        assert_eq!((json["type"].as_str(), json["team"].as_str(), json["resource"]["name"].as_str()), (Some("violation.resolved"), Some("payments"), Some("web-1")));
        assert_eq!(serde_json::from_value::<Alert>(json).unwrap(), alert, "stored and read back unchanged");
        let slack = alert.slack();
        assert!(slack["text"].as_str().unwrap().starts_with(":white_check_mark: *[HIGH] Violation resolved (fixed)*: `owner` / `owner` on *web-1* (team payments)"), "{slack}");
        assert!(alert.text().contains("Team: payments\r\n"));
    }
}
