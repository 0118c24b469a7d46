//! Dry runs of a proposed tagging configuration: what publishing it would change, computed by the
//! very decision a publish triggers (`Rederive` under the proposed configuration) against the
//! current state of every resource, with nothing written. Preview and publish cannot disagree
//! because they are the same code.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use uuid::Uuid;
use vtag_domain::tagging::{rule_hits, TaggingConfig};
use vtag_domain::{decide, Actor, CommandContext, ResourceCommand, ResourceEvent, TenantId};

use super::CommandProcessor;

/// (key, value before, value after); `None` is "no value".
type Transition = (String, Option<String>, Option<String>);

/// Samples kept per (key, before, after).
const SAMPLES: usize = 5;

#[derive(Debug, Serialize)]
pub struct PreviewReport {
    pub resources_evaluated: u64,
    /// Resources at least one of whose tags would change.
    pub resources_changing: u64,
    /// Per key and value transition: how many resources, and a few of them.
    pub changes: Vec<TagChangeCount>,
    /// Every rule of the proposed configuration: how many resources it matches and wins.
    pub rules: Vec<RuleStats>,
    /// Rules that match resources but never win them: earlier rules take all their resources.
    pub shadowed_rules: Vec<String>,
    /// The preview covers the partitions this instance owns (all of them on a single instance).
    pub partitions_covered: usize,
    pub partitions_total: usize,
}

#[derive(Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct TagChangeCount {
    pub key: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub resources: u64,
    pub samples: Vec<Uuid>,
}

#[derive(Debug, Serialize)]
pub struct RuleStats {
    pub id: String,
    pub key: String,
    pub matched: u64,
    pub won: u64,
}

impl CommandProcessor {
    pub async fn preview(&self, tenant: &TenantId, proposed: &TaggingConfig) -> PreviewReport {
        let now = chrono::Utc::now();
        let ctx = CommandContext {
            command_id: Uuid::nil(),
            tenant: tenant.clone(),
            actor: Actor::parse("system:preview").expect("valid actor"),
            correlation_id: Uuid::nil(),
            occurred_at: now,
            recorded_at: now,
        };
        let mut transitions: BTreeMap<Transition, (u64, Vec<Uuid>)> = BTreeMap::new();
        let mut stats: BTreeMap<&str, (u64, u64)> = proposed.rules.rules().iter().map(|r| (r.id.as_str(), (0, 0))).collect();
        let (mut evaluated, mut changing, mut covered) = (0u64, 0u64, 0usize);
        for partition in self.partitions.iter() {
            let state = partition.lock().await;
            if !state.owned {
                continue;
            }
            covered += 1;
            for id in state.by_tenant.get(tenant).into_iter().flatten() {
                let Some(current) = state.aggregates.get(id) else { continue };
                evaluated += 1;
                let Ok(events) = decide(current, *id, &ResourceCommand::Rederive, &ctx, proposed) else { continue };
                if let Some(ResourceEvent::VirtualTagsDerived(d)) = events.first().map(|e| &e.event) {
                    changing += 1;
                    for c in &d.changes {
                        let from = c.previous.as_ref().map(|p| p.value.as_str().to_owned());
                        let to = c.value.as_ref().map(|v| v.as_str().to_owned());
                        let entry = transitions.entry((c.key.as_str().to_owned(), from, to)).or_default();
                        entry.0 += 1;
                        if entry.1.len() < SAMPLES {
                            entry.1.push(id.as_uuid());
                        }
                    }
                }
                if let Some(facts) = current.facts.as_deref() {
                    let people = current
                        .virtual_tags
                        .iter()
                        .filter(|(_, t)| t.source.is_people())
                        .map(|(k, t)| (k.as_str().to_owned(), t.value.as_str().to_owned()))
                        .collect();
                    for hit in rule_hits(proposed, facts, &people, now) {
                        if let Some(s) = stats.get_mut(hit.rule_id.as_str()) {
                            s.0 += 1;
                            s.1 += u64::from(hit.won);
                        }
                    }
                }
            }
        }
        let keys: BTreeMap<&str, &str> = proposed.rules.rules().iter().map(|r| (r.id.as_str(), r.key.as_str())).collect();
        let rules: Vec<RuleStats> = stats
            .into_iter()
            .map(|(id, (matched, won))| RuleStats { id: id.to_owned(), key: keys[id].to_owned(), matched, won })
            .collect();
        let shadowed_rules: BTreeSet<String> = rules.iter().filter(|r| r.matched > 0 && r.won == 0).map(|r| r.id.clone()).collect();
        PreviewReport {
            resources_evaluated: evaluated,
            resources_changing: changing,
            changes: transitions
                .into_iter()
                .map(|((key, from, to), (resources, samples))| TagChangeCount { key, from, to, resources, samples })
                .collect(),
            rules,
            shadowed_rules: shadowed_rules.into_iter().collect(),
            partitions_covered: covered,
            partitions_total: self.partitions.len(),
        }
    }
}
