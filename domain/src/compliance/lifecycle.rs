//! A violation's life: opened when an evaluation first finds it, pending through the policy's
//! grace period (shown, not alerted), due when the grace period is over (alerted), escalated when
//! it stays open past the escalation delay, resolved when an evaluation no longer finds it. Every
//! transition is an event; alerts are sent per transition, so the transitions must be decided
//! exactly once — here, from the violation's state, the findings and an injected clock.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use super::evaluate::{Finding, Problem};
use super::policy::{Policy, Severity};

/// A resource's open violations, each identified by its policy and the tag key it is about, in
/// that order. A resource has a handful: a sorted vector holds them in one small allocation (an
/// ordered map's first node is a couple of kilobytes, per resource, a million times over).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenViolations(Vec<OpenViolation>);

impl OpenViolations {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// In (policy, key) order.
    pub fn iter(&self) -> std::slice::Iter<'_, OpenViolation> {
        self.0.iter()
    }

    pub fn get(&self, policy: &str, key: &str) -> Option<&OpenViolation> {
        self.position(policy, key).ok().map(|i| &self.0[i])
    }

    fn get_mut(&mut self, policy: &str, key: &str) -> Option<&mut OpenViolation> {
        self.position(policy, key).ok().map(|i| &mut self.0[i])
    }

    /// Opens (or replaces) the violation of its policy and key.
    fn insert(&mut self, v: OpenViolation) {
        match self.position(&v.policy_id, &v.key) {
            Ok(i) => self.0[i] = v,
            Err(i) => self.0.insert(i, v),
        }
    }

    fn remove(&mut self, policy: &str, key: &str) {
        if let Ok(i) = self.position(policy, key) {
            self.0.remove(i);
        }
    }

    fn position(&self, policy: &str, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|v| (&*v.policy_id, &*v.key).cmp(&(policy, key)))
    }
}

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
    pub policy_id: Arc<str>,
    pub key: Arc<str>,
    pub severity: Severity,
    pub opened_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    /// Where and when it escalates, if the policy escalates.
    pub escalation: Option<(Arc<str>, DateTime<Utc>)>,
    pub stage: Stage,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    Opened {
        policy_id: Arc<str>,
        key: Arc<str>,
        severity: Severity,
        problem: Problem,
        message: Arc<str>,
        remediation: Arc<str>,
        /// When the grace period ends (`opened_at` itself without one: due at once).
        due_at: DateTime<Utc>,
        escalation: Option<(Arc<str>, DateTime<Utc>)>,
    },
    BecameDue { policy_id: Arc<str>, key: Arc<str> },
    Escalated { policy_id: Arc<str>, key: Arc<str>, to: Arc<str> },
    Resolved { policy_id: Arc<str>, key: Arc<str>, reason: Resolution },
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
    open: &OpenViolations,
    findings: Vec<Finding>,
    policies: &BTreeMap<Arc<str>, Policy>,
    now: DateTime<Utc>,
) -> Vec<Transition> {
    let mut transitions = Vec::new();
    let still_found: Vec<bool> = open.iter().map(|v| findings.iter().any(|f| f.policy_id == v.policy_id && f.key == v.key)).collect();
    for f in findings {
        if open.get(&f.policy_id, &f.key).is_some() {
            continue;
        }
        let Some(policy) = policies.get(&*f.policy_id) else { continue };
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
    for (v, found) in open.iter().zip(still_found) {
        if found {
            advance_one(v, now, &mut transitions);
            continue;
        }
        let withdrawn = policies.get(&*v.policy_id).is_none_or(|p| !p.enabled);
        let reason = if withdrawn { Resolution::PolicyWithdrawn } else { Resolution::Fixed };
        transitions.push(Transition::Resolved { policy_id: v.policy_id.clone(), key: v.key.clone(), reason });
    }
    transitions
}

/// What time alone does to open violations at `now`: a pending one whose grace period is over
/// becomes due; a due one past its escalation time escalates.
pub fn advance(open: &OpenViolations, now: DateTime<Utc>) -> Vec<Transition> {
    let mut out = Vec::new();
    for v in open.iter() {
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
pub fn apply(open: &mut OpenViolations, t: &Transition, at: DateTime<Utc>) {
    match t {
        Transition::Opened { policy_id, key, severity, due_at, escalation, .. } => {
            open.insert(OpenViolation {
                policy_id: policy_id.clone(),
                key: key.clone(),
                severity: *severity,
                opened_at: at,
                due_at: *due_at,
                escalation: escalation.clone(),
                stage: Stage::Pending,
            });
        }
        Transition::BecameDue { policy_id, key } => {
            if let Some(v) = open.get_mut(policy_id, key) {
                v.stage = Stage::Due;
            }
        }
        Transition::Escalated { policy_id, key, .. } => {
            if let Some(v) = open.get_mut(policy_id, key) {
                v.stage = Stage::Escalated;
            }
        }
        Transition::Resolved { policy_id, key, .. } => open.remove(policy_id, key),
    }
}
