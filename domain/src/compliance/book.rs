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

use super::evaluate::{applies, breaches, score, Finding, Subject, TagLookup};
use super::lifecycle::{advance, apply, reconcile, OpenViolations, Stage, Transition};
use super::policy::{Policy, Scope};
use crate::envelope::Recorded;
use crate::resource::{evolve, ResourceEvent, ResourceState};
use crate::values::{ResourceId, TenantId};

/// A tenant's policies in force, by id.
#[derive(Debug, Clone, Default)]
pub struct TenantPolicies {
    /// The policies document's version (0: none yet).
    pub version: u64,
    pub policies: BTreeMap<Arc<str>, Policy>,
}

impl TenantPolicies {
    pub fn new(version: u64, policies: Vec<Policy>) -> Self {
        Self { version, policies: policies.into_iter().map(|p| (Arc::clone(&p.id), p)).collect() }
    }
}

/// Where a resource stands: which policies judge it, which it breaks, and its score. Recorded only
/// when it changes (a policy edit that changes nothing for a resource records nothing for it).
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    pub applicable: Vec<Arc<str>>,
    pub violated: Vec<Arc<str>>,
    pub score: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Transition(Transition),
    /// Shared with the book, which keeps every resource's last judgement.
    Judged(Arc<Judgement>),
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

/// What judging one resource found, before it is weighed against what the book recorded about it.
/// Taking verdicts only reads the book, so a sweep can take them on several threads and
/// [`settle`](ComplianceBook::settle) them in order on one.
pub struct Verdict {
    resource: ResourceId,
    findings: Vec<Finding>,
    /// The resource's new judgement; None when it is the one recorded last.
    judgement: Option<NewJudgement>,
}

enum NewJudgement {
    /// One already held for another resource judged the same way under the same policies.
    Shared(Arc<Judgement>),
    /// Built for this resource, with its key among the tenant's shared judgements (when it has one).
    Built(Judgement, Option<JudgementKey>),
}

/// Which of a tenant's policies (by place, when it has at most 64) apply to a resource, and which
/// it breaks: all a judgement depends on, the score included. Resources judged alike share one
/// [`Judgement`] — a million resources under the bench's 20 policies fall into 263 — so the book
/// holds each once and an encoder meets the same one again and again.
type JudgementKey = (u64, u64);

/// Ids of resources are UUIDs derived by hashing: a fast hash spreads them as well as SipHash.
type Fast = foldhash::fast::RandomState;

struct Watched {
    tenant: TenantId,
    state: ResourceState,
    open: OpenViolations,
    judged: Option<Arc<Judgement>>,
    /// Decisions recorded about the resource so far (its compliance stream's version).
    recorded: u64,
}

#[derive(Default)]
pub struct ComplianceBook {
    resources: HashMap<ResourceId, Watched, Fast>,
    policies: HashMap<TenantId, Arc<TenantPolicies>, Fast>,
    /// Resources with a violation that time will move on (pending or due with an escalation).
    waiting: HashSet<ResourceId, Fast>,
    /// Each tenant's judgements under its policies in force, shared by the resources judged alike.
    judgements: HashMap<TenantId, HashMap<JudgementKey, Arc<Judgement>, Fast>, Fast>,
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
            open: OpenViolations::default(),
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
        self.restore_policies(tenant, policies);
        self.rejudge(|t| t == tenant, now)
    }

    /// Judges again every resource of the tenants `which` selects (a recheck; the daily pass that
    /// ages dates).
    pub fn rejudge(&mut self, which: impl Fn(&TenantId) -> bool, now: DateTime<Utc>) -> Vec<Decision> {
        let ids = self.resources_of(which);
        self.judge_all(&ids, now)
    }

    /// The resources of the tenants `which` selects, in a stable order (the same book decides the
    /// same records in the same order).
    pub fn resources_of(&self, which: impl Fn(&TenantId) -> bool) -> Vec<ResourceId> {
        let mut ids: Vec<ResourceId> = self.resources.iter().filter(|(_, w)| which(&w.tenant)).map(|(id, _)| *id).collect();
        ids.sort_unstable();
        ids
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
        let verdicts = self.verdicts(ids, now);
        self.settle(verdicts, now)
    }

    /// Judges these resources at `now` without recording anything (see [`Verdict`]).
    pub fn verdicts(&self, ids: &[ResourceId], now: DateTime<Utc>) -> Vec<Verdict> {
        let mut scratch = Scratch::default();
        let mut verdicts = Vec::with_capacity(ids.len());
        verdicts.extend(ids.iter().filter_map(|id| self.verdict(*id, now, &mut scratch)));
        verdicts
    }

    /// Records what the verdicts change — violations opened, moved on or resolved, and new
    /// judgements — in the order given, and returns those decisions. Verdicts must be taken on the
    /// book as it is (no decision recorded in between).
    pub fn settle(&mut self, verdicts: Vec<Verdict>, now: DateTime<Utc>) -> Vec<Decision> {
        let mut decisions = Vec::new();
        for v in verdicts {
            self.settle_one(v, now, &mut decisions);
        }
        decisions
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
        // Keys are places among the policies: they mean something else under new ones.
        self.judgements.remove(tenant);
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
            Change::Judged(j) => w.judged = Some(Arc::clone(j)),
        }
        let waits = w.open.iter().any(|v| v.stage == Stage::Pending || (v.stage == Stage::Due && v.escalation.is_some()));
        if waits {
            self.waiting.insert(d.resource);
        } else {
            self.waiting.remove(&d.resource);
        }
    }

    /// Judges one resource at `now` and applies what it decides.
    fn judge(&mut self, id: ResourceId, now: DateTime<Utc>) -> Vec<Decision> {
        let mut decisions = Vec::new();
        if let Some(v) = self.verdict(id, now, &mut Scratch::default()) {
            self.settle_one(v, now, &mut decisions);
        }
        decisions
    }

    fn verdict<'a>(&'a self, id: ResourceId, now: DateTime<Utc>, scratch: &mut Scratch<'a>) -> Option<Verdict> {
        let w = self.resources.get(&id)?;
        let (Some(provider), Some(facts)) = (w.state.provider, w.state.facts.as_ref()) else { return None };
        let policies: &TenantPolicies = self.policies.get(&w.tenant).map_or(&NO_POLICIES, |p| p.as_ref());
        scratch.tags.fill(w.state.virtual_tags.iter().map(|(k, t)| (k.as_str(), t.value.as_str())));
        let subject = Subject {
            provider,
            account: &facts.account,
            resource_type: &facts.resource_type,
            tags: &scratch.tags,
            monthly_cost: w.state.monthly_cost.as_ref().map(|(cents, currency, _)| (*cents, currency.as_str())),
        };
        let today = now.date_naive();
        let mut findings = Vec::new();
        let (applicable, violated) = (&mut scratch.applicable, &mut scratch.violated);
        applicable.clear();
        violated.clear();
        let mut key: Option<JudgementKey> = (policies.policies.len() <= 64).then_some((0, 0));
        for (place, p) in policies.policies.values().enumerate() {
            if !applies(p, &subject) {
                continue;
            }
            applicable.push(p);
            let before = findings.len();
            breaches(p, &subject, today, &mut findings);
            let breaks = findings.len() > before;
            if breaks {
                violated.push(p);
            }
            if let Some((a, v)) = &mut key {
                *a |= 1 << place;
                *v |= u64::from(breaks) << place;
            }
        }
        let score = score(applicable, violated);
        let shared = key.and_then(|k| self.judgements.get(&w.tenant)?.get(&k));
        // Compared before it is built: a sweep that changes nothing allocates nothing for it.
        let unchanged = match (&w.judged, shared) {
            (Some(j), Some(s)) if Arc::ptr_eq(j, s) => true,
            (Some(j), _) => j.score == score && same_ids(&j.applicable, applicable) && same_ids(&j.violated, violated),
            // A resource no policy judges needs no record until one does.
            (None, _) => applicable.is_empty() && score == 100.0,
        };
        let judgement = match shared {
            _ if unchanged => None,
            Some(s) => Some(NewJudgement::Shared(Arc::clone(s))),
            None => Some(NewJudgement::Built(
                Judgement {
                    applicable: applicable.iter().map(|p| p.id.clone()).collect(),
                    violated: violated.iter().map(|p| p.id.clone()).collect(),
                    score,
                },
                key,
            )),
        };
        let verdict = Verdict { resource: id, findings, judgement };
        applicable.clear();
        violated.clear();
        Some(verdict)
    }

    fn settle_one(&mut self, v: Verdict, now: DateTime<Utc>, decisions: &mut Vec<Decision>) {
        let Some(w) = self.resources.get(&v.resource) else { return };
        let policies = self.policies.get(&w.tenant).cloned();
        let policies: &TenantPolicies = policies.as_deref().unwrap_or(&NO_POLICIES);
        let first = decisions.len();
        let tenant = w.tenant.clone();
        let transitions = reconcile(&w.open, v.findings, &policies.policies, now);
        decisions.extend(
            transitions.into_iter().map(|t| Decision { tenant: tenant.clone(), resource: v.resource, version: 0, change: Change::Transition(t) }),
        );
        if let Some(j) = v.judgement {
            let j = match j {
                NewJudgement::Shared(j) => j,
                NewJudgement::Built(j, Some(key)) => {
                    // Another resource of this chunk may have been judged alike first.
                    let shared = self.judgements.entry(tenant.clone()).or_default();
                    Arc::clone(shared.entry(key).or_insert_with(|| Arc::new(j)))
                }
                NewJudgement::Built(j, None) => Arc::new(j),
            };
            decisions.push(Decision { tenant, resource: v.resource, version: 0, change: Change::Judged(j) });
        }
        for d in &mut decisions[first..] {
            self.record(d, now);
        }
    }
}

static NO_POLICIES: TenantPolicies = TenantPolicies { version: 0, policies: BTreeMap::new() };

/// Buffers one thread reuses from resource to resource.
#[derive(Default)]
struct Scratch<'a> {
    tags: TagView<'a>,
    applicable: Vec<&'a Policy>,
    violated: Vec<&'a Policy>,
}

/// A resource's tags laid out for the few dozen lookups its policies make: a linear scan over a
/// word per tag (length and first bytes) finds a key with one full comparison, where the ordered
/// map calls a string comparison at every step (a quarter of the sweep's profile samples before).
#[derive(Default)]
struct TagView<'a>(Vec<(u64, &'a str, &'a str)>);

impl<'a> TagView<'a> {
    fn fill(&mut self, tags: impl Iterator<Item = (&'a str, &'a str)>) {
        self.0.clear();
        self.0.extend(tags.map(|(k, v)| (sketch(k), k, v)));
    }
}

impl TagLookup for TagView<'_> {
    fn tag(&self, key: &str) -> Option<&str> {
        let wanted = sketch(key);
        self.0.iter().find(|(s, k, _)| *s == wanted && *k == key).map(|(_, _, v)| *v)
    }
}

/// A key's length and first seven bytes in one word: equal keys have equal sketches.
fn sketch(key: &str) -> u64 {
    let mut word = [0u8; 8];
    let head = &key.as_bytes()[..key.len().min(7)];
    word[..head.len()].copy_from_slice(head);
    word[7] = key.len().min(255) as u8;
    u64::from_le_bytes(word)
}

fn same_ids(ids: &[Arc<str>], policies: &[&Policy]) -> bool {
    ids.len() == policies.len() && ids.iter().zip(policies).all(|(id, p)| Arc::ptr_eq(id, &p.id) || id == &p.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_view_finds_exactly_the_key_asked_for() {
        let tags = [("cost-center", "ENG-001"), ("cost-centre", "typo"), ("environment", "production"), ("env", "prod"), ("", "blank key")];
        let mut view = TagView::default();
        view.fill(tags.iter().map(|(k, v)| (*k, *v)));
        for (k, v) in tags {
            assert_eq!(view.tag(k), Some(v), "{k}");
        }
        for absent in ["cost-cente", "cost-centers", "environmen", "Environment", "owner"] {
            assert_eq!(view.tag(absent), None, "{absent}");
        }
        assert!(sketch("cost-center") == sketch("cost-centre"), "same length and first bytes: the full comparison decides");
    }
}
