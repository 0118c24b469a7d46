//! A violation's life: opened when an evaluation first finds it, pending through the policy's
//! grace period (shown, not alerted), due when the grace period is over (alerted), escalated when
//! it stays open past the escalation delay, resolved when an evaluation no longer finds it. Every
//! transition is an event; alerts are sent per transition, so the transitions must be decided
//! exactly once — here, from the violation's state, the findings and an injected clock.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use super::evaluate::{Finding, Problem};
use super::policy::{Policy, Severity};

/// Identifies a violation of one resource: the policy and the tag key it is about.
pub type ViolationKey = (String, String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Inside its grace period: shown, not alerted.
    Pending,
    /// Grace period over: alerted.
    Due,
    /// Still open past the escalation delay: escalated.
    Escalated,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Due => "due",
            Self::Escalated => "escalated",
        }
    }
}

/// An open violation, as its events left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenViolation {
    pub policy_id: String,
    pub key: String,
    pub severity: Severity,
    pub opened_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    /// Where and when it escalates, if the policy escalates.
    pub escalation: Option<(String, DateTime<Utc>)>,
    pub stage: Stage,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    Opened {
        policy_id: String,
        key: String,
        severity: Severity,
        problem: Problem,
        message: String,
        remediation: String,
        /// When the grace period ends (`opened_at` itself without one: due at once).
        due_at: DateTime<Utc>,
        escalation: Option<(String, DateTime<Utc>)>,
    },
    BecameDue { policy_id: String, key: String },
    Escalated { policy_id: String, key: String, to: String },
    Resolved { policy_id: String, key: String, reason: Resolution },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// An evaluation no longer finds it (the tag was set or corrected, the condition no longer holds).
    Fixed,
    /// Its policy was deleted or disabled, or no longer covers the resource.
    PolicyWithdrawn,
}

impl Resolution {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fixed => "fixed",
            Self::PolicyWithdrawn => "policy_withdrawn",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Fixed, Self::PolicyWithdrawn].into_iter().find(|r| r.as_str() == raw)
    }
}

/// The transitions of one resource's violations after an evaluation at `now`: new findings open
/// violations, open violations no longer found resolve (why: `policies` says whether their policy
/// still exists and is enabled), and time moves the rest on (see [`advance`]). The findings are
/// consumed: a new violation's message and remediation move into its `Opened` transition.
pub fn reconcile(
    open: &BTreeMap<ViolationKey, OpenViolation>,
    findings: Vec<Finding>,
    policies: &BTreeMap<String, Policy>,
    now: DateTime<Utc>,
) -> Vec<Transition> {
    let mut transitions = Vec::new();
    // A resource has a handful of open violations: scanning them beats building keys to look up.
    let is_open = |policy: &str, key: &str| open.keys().any(|(p, k)| p == policy && k == key);
    let mut still_found = vec![false; open.len()];
    for (i, (p, k)) in open.keys().enumerate() {
        still_found[i] = findings.iter().any(|f| f.policy_id == *p && f.key == *k);
    }
    for f in findings {
        if is_open(&f.policy_id, &f.key) {
            continue;
        }
        let Some(policy) = policies.get(&f.policy_id) else { continue };
        let due_at = now + Duration::hours(i64::from(policy.grace_period_hours));
        let escalation = policy.escalation.as_ref().map(|e| (e.to.clone(), due_at + Duration::hours(i64::from(e.after_hours))));
        // Without a grace period the violation is due the moment it opens (and escalates at once
        // when its escalation delay is zero too).
        let due_now = now >= due_at;
        let escalates_now = due_now && escalation.as_ref().is_some_and(|(_, at)| now >= *at);
        let (policy_id, key) = (f.policy_id, f.key);
        let became_due = due_now.then(|| Transition::BecameDue { policy_id: policy_id.clone(), key: key.clone() });
        let escalated = escalates_now.then(|| Transition::Escalated {
            policy_id: policy_id.clone(),
            key: key.clone(),
            to: escalation.as_ref().map(|(to, _)| to.clone()).unwrap_or_default(),
        });
        transitions.push(Transition::Opened {
            policy_id,
            key,
            severity: policy.severity,
            problem: f.problem,
            message: f.message,
            remediation: f.remediation,
            due_at,
            escalation,
        });
        transitions.extend(became_due);
        transitions.extend(escalated);
    }
    for ((_, v), found) in open.iter().zip(still_found) {
        if found {
            advance_one(v, now, &mut transitions);
            continue;
        }
        let withdrawn = policies.get(&v.policy_id).is_none_or(|p| !p.enabled);
        let reason = if withdrawn { Resolution::PolicyWithdrawn } else { Resolution::Fixed };
        transitions.push(Transition::Resolved { policy_id: v.policy_id.clone(), key: v.key.clone(), reason });
    }
    transitions
}

/// What time alone does to open violations at `now`: a pending one whose grace period is over
/// becomes due; a due one past its escalation time escalates.
pub fn advance(open: &BTreeMap<ViolationKey, OpenViolation>, now: DateTime<Utc>) -> Vec<Transition> {
    let mut out = Vec::new();
    for v in open.values() {
        advance_one(v, now, &mut out);
    }
    out
}

fn advance_one(v: &OpenViolation, now: DateTime<Utc>, out: &mut Vec<Transition>) {
    let mut stage = v.stage;
    if stage == Stage::Pending && now >= v.due_at {
        out.push(Transition::BecameDue { policy_id: v.policy_id.clone(), key: v.key.clone() });
        stage = Stage::Due;
    }
    if stage == Stage::Due {
        if let Some((to, at)) = &v.escalation {
            if now >= *at {
                out.push(Transition::Escalated { policy_id: v.policy_id.clone(), key: v.key.clone(), to: to.clone() });
            }
        }
    }
}

/// Folds a transition into the open violations (what a projector or the evaluator's own state does).
pub fn apply(open: &mut BTreeMap<ViolationKey, OpenViolation>, t: &Transition, at: DateTime<Utc>) {
    match t {
        Transition::Opened { policy_id, key, severity, due_at, escalation, .. } => {
            open.insert(
                (policy_id.clone(), key.clone()),
                OpenViolation {
                    policy_id: policy_id.clone(),
                    key: key.clone(),
                    severity: *severity,
                    opened_at: at,
                    due_at: *due_at,
                    escalation: escalation.clone(),
                    stage: Stage::Pending,
                },
            );
        }
        Transition::BecameDue { policy_id, key } => {
            if let Some(v) = find(open, policy_id, key) {
                v.stage = Stage::Due;
            }
        }
        Transition::Escalated { policy_id, key, .. } => {
            if let Some(v) = find(open, policy_id, key) {
                v.stage = Stage::Escalated;
            }
        }
        Transition::Resolved { policy_id, key, .. } => {
            open.retain(|(p, k), _| !(p == policy_id && k == key));
        }
    }
}

fn find<'a>(open: &'a mut BTreeMap<ViolationKey, OpenViolation>, policy: &str, key: &str) -> Option<&'a mut OpenViolation> {
    open.iter_mut().find(|((p, k), _)| p == policy && k == key).map(|(_, v)| v)
}
