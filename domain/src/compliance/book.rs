//! What one evaluator knows (ADR 0007): the resources of the partitions it owns, as their events
//! left them, each with its open violations and its last judgement, and every tenant's policies.
//! It decides what to record when a resource changes, when a tenant's policies change (every
//! resource of the tenant re-judged: retroactive, like rules), and when time passes (grace periods
//! ending, escalations); and it is rebuilt from what it recorded ([`ComplianceBook::restore`]).
//!
//! Deciding applies the decisions to the book at once: the caller appends them, and if an append
//! fails it rebuilds the book from the log (as the command API does with its write model).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::evaluate::{applies, evaluate, score, Subject};
use super::lifecycle::{advance, apply, reconcile, OpenViolation, Stage, Transition, ViolationKey};
use super::policy::{Policy, Scope};
use crate::envelope::Recorded;
use crate::resource::{evolve, ResourceEvent, ResourceState};
use crate::values::{ResourceId, TenantId};

/// A tenant's policies in force, by id.
#[derive(Debug, Clone, Default)]
pub struct TenantPolicies {
    /// The policies document's version (0: none yet).
    pub version: u64,
    pub policies: BTreeMap<String, Policy>,
}

impl TenantPolicies {
    pub fn new(version: u64, policies: Vec<Policy>) -> Self {
        Self { version, policies: policies.into_iter().map(|p| (p.id.clone(), p)).collect() }
    }
}

/// Where a resource stands: which policies judge it, which it breaks, and its score. Recorded only
/// when it changes (a policy edit that changes nothing for a resource records nothing for it).
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    pub applicable: Vec<String>,
    pub violated: Vec<String>,
    pub score: f64,
}

impl Judgement {
    /// Where a resource stands before any policy judges it.
    pub fn unjudged() -> Self {
        Self { applicable: Vec::new(), violated: Vec::new(), score: 100.0 }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Transition(Transition),
    Judged(Judgement),
}

/// The resources a recheck looks at: one, or those of the tenant a scope covers (all of them when
/// the scope is empty).
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub resource: Option<ResourceId>,
    pub scope: Scope,
}

/// Something to record about one resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub tenant: TenantId,
    pub resource: ResourceId,
    /// Its place in the resource's compliance stream (gapless from 1), set when it is decided.
    pub version: u64,
    pub change: Change,
}

struct Watched {
    tenant: TenantId,
    state: ResourceState,
    open: BTreeMap<ViolationKey, OpenViolation>,
    judged: Option<Judgement>,
    /// Decisions recorded about the resource so far (its compliance stream's version).
    recorded: u64,
}

#[derive(Default)]
pub struct ComplianceBook {
    resources: HashMap<ResourceId, Watched>,
    policies: HashMap<TenantId, Arc<TenantPolicies>>,
    /// Resources with a violation that time will move on (pending or due with an escalation).
    waiting: HashSet<ResourceId>,
}

impl ComplianceBook {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn resources(&self) -> usize {
        self.resources.len()
    }

    /// A resource event: the resource is re-judged against its tenant's policies.
    pub fn resource_event(&mut self, recorded: &Recorded<ResourceEvent>, now: DateTime<Utc>) -> Vec<Decision> {
        self.fold(recorded);
        self.judge(recorded.envelope.aggregate_id, now)
    }

    /// A resource event folded in without judging (rebuilding: what it led to is in the log).
    pub fn fold(&mut self, recorded: &Recorded<ResourceEvent>) {
        let watched = self.resources.entry(recorded.envelope.aggregate_id).or_insert_with(|| Watched {
            tenant: recorded.envelope.tenant.clone(),
            state: ResourceState::default(),
            open: BTreeMap::new(),
            judged: None,
            recorded: 0,
        });
        watched.state = evolve(std::mem::take(&mut watched.state), recorded);
    }

    /// How many decisions have been recorded about a resource (the version of its next one is
    /// this plus one, once [`restore`](Self::restore)d or decided).
    pub fn recorded(&self, id: &ResourceId) -> u64 {
        self.resources.get(id).map_or(0, |w| w.recorded)
    }

    /// The tenant's policies version in force here (0: none).
    pub fn policies_version(&self, tenant: &TenantId) -> u64 {
        self.policies.get(tenant).map_or(0, |p| p.version)
    }

    /// A tenant's policies changed (or a recheck was asked for): every resource of the tenant is
    /// judged again under them.
    pub fn policies_changed(&mut self, tenant: &TenantId, policies: TenantPolicies, now: DateTime<Utc>) -> Vec<Decision> {
        self.policies.insert(tenant.clone(), Arc::new(policies));
        self.rejudge(|t| t == tenant, now)
    }

    /// Judges again every resource of the tenants `which` selects (a recheck; the daily pass that
    /// ages dates).
    pub fn rejudge(&mut self, which: impl Fn(&TenantId) -> bool, now: DateTime<Utc>) -> Vec<Decision> {
        let mut ids: Vec<ResourceId> = self.resources.iter().filter(|(_, w)| which(&w.tenant)).map(|(id, _)| *id).collect();
        // A stable order: the same book decides the same records in the same order.
        ids.sort_unstable();
        self.judge_all(&ids, now)
    }

    /// The tenant's resources `which` selects, in a stable order (a job judges them in chunks).
    pub fn select(&self, tenant: &TenantId, which: &Selection) -> Vec<ResourceId> {
        let covered = |w: &Watched| match (w.state.provider, w.state.facts.as_ref()) {
            (Some(provider), Some(facts)) => which.scope.covers(provider, &facts.account, &facts.resource_type),
            // Not observed yet (only tags applied ahead of an inventory): nothing to judge it by.
            _ => false,
        };
        let mut ids: Vec<ResourceId> = match which.resource {
            Some(id) => self.resources.get(&id).filter(|w| &w.tenant == tenant && covered(w)).map(|_| id).into_iter().collect(),
            None => self.resources.iter().filter(|(_, w)| &w.tenant == tenant && covered(w)).map(|(id, _)| *id).collect(),
        };
        ids.sort_unstable();
        ids
    }

    /// Judges these resources again (a recheck, or a chunk of the pass after a policies change).
    pub fn judge_all(&mut self, ids: &[ResourceId], now: DateTime<Utc>) -> Vec<Decision> {
        ids.iter().flat_map(|id| self.judge(*id, now)).collect()
    }

    /// What time alone does by `now`: grace periods ending, escalations.
    pub fn tick(&mut self, now: DateTime<Utc>) -> Vec<Decision> {
        let mut ids: Vec<ResourceId> = self.waiting.iter().copied().collect();
        ids.sort_unstable();
        let mut decisions = Vec::new();
        for id in ids {
            let Some(w) = self.resources.get(&id) else { continue };
            let mut moved: Vec<Decision> = advance(&w.open, now)
                .into_iter()
                .map(|t| Decision { tenant: w.tenant.clone(), resource: id, version: 0, change: Change::Transition(t) })
                .collect();
            for d in &mut moved {
                self.record(d, now);
            }
            decisions.extend(moved);
        }
        decisions
    }

    /// Sets a tenant's policies without judging anything (rebuilding: what they decided is in the log).
    pub fn restore_policies(&mut self, tenant: &TenantId, policies: TenantPolicies) {
        self.policies.insert(tenant.clone(), Arc::new(policies));
    }

    /// Applies a decision just taken and gives it its version.
    fn record(&mut self, d: &mut Decision, at: DateTime<Utc>) {
        self.restore(d, at);
        d.version = self.recorded(&d.resource);
    }

    /// Folds a recorded decision in (deciding does this itself; rebuilding from the log calls it).
    pub fn restore(&mut self, d: &Decision, at: DateTime<Utc>) {
        let Some(w) = self.resources.get_mut(&d.resource) else { return };
        w.recorded += 1;
        match &d.change {
            Change::Transition(t) => apply(&mut w.open, t, at),
            Change::Judged(j) => w.judged = Some(j.clone()),
        }
        let waits = w.open.values().any(|v| v.stage == Stage::Pending || (v.stage == Stage::Due && v.escalation.is_some()));
        if waits {
            self.waiting.insert(d.resource);
        } else {
            self.waiting.remove(&d.resource);
        }
    }

    /// Judges one resource at `now` and applies what it decides.
    fn judge(&mut self, id: ResourceId, now: DateTime<Utc>) -> Vec<Decision> {
        let Some(w) = self.resources.get(&id) else { return Vec::new() };
        let empty = TenantPolicies::default();
        let policies = self.policies.get(&w.tenant).cloned();
        let policies: &TenantPolicies = policies.as_deref().unwrap_or(&empty);
        let (Some(provider), Some(facts)) = (w.state.provider, w.state.facts.as_ref()) else { return Vec::new() };
        let subject = Subject {
            provider,
            account: &facts.account,
            resource_type: &facts.resource_type,
            tags: &w.state.virtual_tags,
            monthly_cost: w.state.monthly_cost.as_ref().map(|(cents, currency, _)| (*cents, currency.as_str())),
        };
        let today = now.date_naive();
        let mut findings = Vec::new();
        let mut applicable: Vec<&Policy> = Vec::new();
        let mut violated: Vec<&Policy> = Vec::new();
        for p in policies.policies.values() {
            if !applies(p, &subject) {
                continue;
            }
            applicable.push(p);
            let found = evaluate(p, &subject, today);
            if !found.is_empty() {
                violated.push(p);
            }
            findings.extend(found);
        }
        let judgement = Judgement {
            applicable: applicable.iter().map(|p| p.id.clone()).collect(),
            violated: violated.iter().map(|p| p.id.clone()).collect(),
            score: score(&applicable, &violated),
        };
        let tenant = w.tenant.clone();
        let mut decisions: Vec<Decision> = reconcile(&w.open, &findings, &policies.policies, now)
            .into_iter()
            .map(|t| Decision { tenant: tenant.clone(), resource: id, version: 0, change: Change::Transition(t) })
            .collect();
        // A resource no policy judges needs no record until one does.
        let before = w.judged.clone().unwrap_or_else(Judgement::unjudged);
        if before != judgement {
            decisions.push(Decision { tenant, resource: id, version: 0, change: Change::Judged(judgement) });
        }
        for d in &mut decisions {
            self.record(d, now);
        }
        decisions
    }
}
