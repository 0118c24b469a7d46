use std::collections::BTreeMap;
use std::sync::Arc;

use crate::envelope::{CommandContext, Recorded};
use crate::fingerprint::{Fingerprint, FingerprintBuilder};
use crate::tagging::{derive_each, Origin, OriginRef, ResourceFacts, TaggingConfig};
use crate::values::{Confidence, ResourceDescription, ResourceId, TagKey, TagSource, TagValue};

use super::command::{ApplyVirtualTag, ObserveResource, RecordMonthlyCost, RemoveVirtualTag, ResourceCommand, BILLING_SOURCE};
use super::error::ResourceError;
use super::event::{
    DerivedChange, MonthlyCostChanged, NativeTagsChanged, PreviousTag, ResourceEvent, ResourceObserved, VirtualTagApplied,
    VirtualTagRemoved, VirtualTagsDerived,
};
use super::state::{AppliedTag, ResourceState};

type Decision = Result<Vec<Recorded<ResourceEvent>>, ResourceError>;

/// Decides what a command means for a resource in `state` under the tenant's tagging `config`.
/// Pure: same inputs, same events (ids included).
///
/// Every decision ends with a derivation over the resulting state: an observation with new native
/// tags, a manual value removed (the rule's value returns), or a newer configuration all re-derive
/// the same way, and a change shows up as one `VirtualTagsDerived` event.
pub fn decide(
    state: &ResourceState,
    id: ResourceId,
    command: &ResourceCommand,
    ctx: &CommandContext,
    config: &TaggingConfig,
) -> Decision {
    // Tenants never see each other: another tenant's resource id is as unknown as a made-up one.
    if state.tenant.as_ref().is_some_and(|owner| *owner != ctx.tenant) {
        return Err(ResourceError::UnknownResource);
    }
    let mut events = match command {
        ResourceCommand::Observe(observe) => observe_resource(state, observe),
        ResourceCommand::ObserveFromBilling(observe) if !state.exists() || state.billing_only => {
            observe_resource(state, observe)
        }
        ResourceCommand::ObserveFromBilling(_) => Vec::new(),
        ResourceCommand::RecordMonthlyCost(cost) => record_monthly_cost(state, cost)?,
        ResourceCommand::ApplyVirtualTag(apply) => apply_virtual_tag(state, apply)?,
        ResourceCommand::RemoveVirtualTag(remove) => remove_virtual_tag(state, remove)?,
        ResourceCommand::Rederive => Vec::new(),
    };
    // Nothing to fold (a re-derivation): derive over the state as it is, without copying it.
    let derived = if events.is_empty() {
        rederive(state, config, ctx)
    } else {
        rederive(&events.iter().fold(state.clone(), apply_event), config, ctx)
    };
    if let Some(derived) = derived {
        events.push(ResourceEvent::VirtualTagsDerived(derived));
    }
    Ok(events
        .into_iter()
        .enumerate()
        .map(|(i, event)| Recorded { envelope: ctx.envelope(id, state.version + 1 + i as u64, i), event })
        .collect())
}

/// Folds one recorded event into the state.
pub fn evolve(state: ResourceState, recorded: &Recorded<ResourceEvent>) -> ResourceState {
    let mut state = apply_event(state, &recorded.event);
    state.version = recorded.envelope.aggregate_version;
    if state.tenant.is_none() {
        state.tenant = Some(recorded.envelope.tenant.clone());
    }
    state
}

fn apply_event(mut state: ResourceState, event: &ResourceEvent) -> ResourceState {
    state.version += 1;
    match event {
        ResourceEvent::ResourceObserved(e) => {
            state.provider = Some(e.provider);
            state.billing_only = e.description.metadata.get(BILLING_SOURCE.0).map(String::as_str) == Some(BILLING_SOURCE.1);
            state.description = description_fingerprint(&e.description);
            state.native_tags = tags_fingerprint(&e.native_tags);
            state.facts = Some(Arc::new(ResourceFacts {
                provider: e.provider.as_str().to_owned(),
                account: e.description.account.clone(),
                region: e.description.region.clone(),
                resource_type: e.description.resource_type.clone(),
                name: e.description.name.clone(),
                native_tags: e.native_tags.clone(),
                // A new description keeps the cost billing measured.
                monthly_cost: state.monthly_cost.as_ref().map(|(cents, _, _)| *cents as f64 / 100.0),
            }));
        }
        ResourceEvent::NativeTagsChanged(e) => {
            state.native_tags = tags_fingerprint(&e.native_tags);
            if let Some(facts) = state.facts.as_mut() {
                Arc::make_mut(facts).native_tags = e.native_tags.clone();
            }
        }
        ResourceEvent::VirtualTagApplied(e) => {
            state.virtual_tags.insert(
                e.key.clone(),
                AppliedTag { value: e.value.clone(), source: e.source, confidence: e.confidence, rule_id: None },
            );
        }
        ResourceEvent::VirtualTagRemoved(e) => {
            state.virtual_tags.remove(&e.key);
        }
        ResourceEvent::MonthlyCostChanged(e) => {
            state.monthly_cost = Some((e.cents, e.currency.clone(), e.as_of));
            if let Some(facts) = state.facts.as_mut() {
                Arc::make_mut(facts).monthly_cost = Some(e.cents as f64 / 100.0);
            }
        }
        ResourceEvent::VirtualTagsDerived(e) => {
            for c in &e.changes {
                match &c.value {
                    Some(value) => {
                        let rule_id = match &c.origin {
                            Some(Origin::Rule { rule_id }) => Some(rule_id.clone()),
                            _ => None,
                        };
                        let tag = AppliedTag { value: value.clone(), source: c.source, confidence: Confidence::CERTAIN, rule_id };
                        state.virtual_tags.insert(c.key.clone(), tag);
                    }
                    None => {
                        state.virtual_tags.remove(&c.key);
                    }
                }
            }
        }
    }
    state
}

/// The changes that bring a resource's derived tags in line with `config`, if any. People's tags
/// are never touched; inferred ones give way to a derived value but stay when nothing derives one.
fn rederive(state: &ResourceState, config: &TaggingConfig, ctx: &CommandContext) -> Option<VirtualTagsDerived> {
    let facts = state.facts.as_deref()?;
    let people: BTreeMap<String, String> = state
        .virtual_tags
        .iter()
        .filter(|(_, t)| t.source.is_people())
        .map(|(k, t)| (k.as_str().to_owned(), t.value.as_str().to_owned()))
        .collect();
    let mut changes = Vec::new();
    // The resource's keys derived again (the others lose their derived value).
    let mut wanted: Vec<&TagKey> = Vec::new();
    derive_each(config, facts, &people, ctx.recorded_at, |tag| {
        let current = state.virtual_tags.get_key_value(tag.key);
        let source = match tag.origin {
            OriginRef::Native { .. } => TagSource::Native,
            OriginRef::Rule { .. } | OriginRef::Default => TagSource::RuleBased,
        };
        // The common case, without copying anything: people hold the key, or the resource already
        // carries this value from the same place.
        if let Some((held, _)) = current.filter(|(_, t)| {
            t.source.is_people() || (t.value.as_str() == tag.value && t.source == source && t.rule_id.as_deref() == tag.origin.rule_id())
        }) {
            wanted.push(held);
            return;
        }
        // A value the tag model cannot hold (a capture too long, a key of odd form) derives nothing.
        let (Ok(key), Ok(value)) = (TagKey::parse(tag.key), TagValue::parse(tag.value)) else { return };
        if let Some((held, _)) = current {
            wanted.push(held);
        }
        changes.push(DerivedChange {
            key,
            value: Some(value),
            source,
            origin: Some(tag.origin.to_origin()),
            previous: current.map(|(_, t)| PreviousTag { value: t.value.clone(), source: t.source }),
        });
    });
    // Keys are derived in evaluation order; events list changes by key.
    changes.sort_by(|a, b| a.key.cmp(&b.key));
    for (key, t) in &state.virtual_tags {
        if t.source.is_derived() && !wanted.contains(&key) {
            changes.push(DerivedChange {
                key: key.clone(),
                value: None,
                source: t.source,
                origin: None,
                previous: Some(PreviousTag { value: t.value.clone(), source: t.source }),
            });
        }
    }
    (!changes.is_empty()).then_some(VirtualTagsDerived { rule_set_version: config.version, changes })
}

fn description_fingerprint(d: &ResourceDescription) -> Fingerprint {
    FingerprintBuilder::default()
        .str(&d.account)
        .str(&d.region)
        .str(&d.resource_type)
        .str(&d.name)
        .map(&d.metadata)
        .finish()
}

fn tags_fingerprint(tags: &std::collections::BTreeMap<String, String>) -> Fingerprint {
    FingerprintBuilder::default().map(tags).finish()
}

/// Only a change of the measured cost is recorded (a re-import of the same bill records nothing),
/// and never one measured over an older period than the cost held (a corrected file for last year
/// must not roll this month's cost back).
fn record_monthly_cost(state: &ResourceState, cmd: &RecordMonthlyCost) -> Result<Vec<ResourceEvent>, ResourceError> {
    if !state.exists() {
        return Err(ResourceError::UnknownResource);
    }
    if let Some((cents, currency, as_of)) = &state.monthly_cost {
        if *as_of > cmd.as_of || (*cents == cmd.cents && *currency == cmd.currency) {
            return Ok(Vec::new());
        }
    }
    Ok(vec![ResourceEvent::MonthlyCostChanged(MonthlyCostChanged { cents: cmd.cents, currency: cmd.currency.clone(), as_of: cmd.as_of })])
}

/// Re-observing an unchanged resource records nothing: collectors sweep every few hours and the log
/// must hold changes, not heartbeats.
fn observe_resource(state: &ResourceState, cmd: &ObserveResource) -> Vec<ResourceEvent> {
    let described_anew = !state.exists() || description_fingerprint(&cmd.description) != state.description;
    let snapshot = || {
        ResourceEvent::ResourceObserved(ResourceObserved {
            provider: cmd.provider,
            cloud_id: cmd.cloud_id.clone(),
            description: cmd.description.clone(),
            native_tags: cmd.native_tags.as_map().clone(),
        })
    };
    if described_anew {
        return vec![snapshot()];
    }
    if tags_fingerprint(cmd.native_tags.as_map()) != state.native_tags {
        return vec![ResourceEvent::NativeTagsChanged(NativeTagsChanged {
            native_tags: cmd.native_tags.as_map().clone(),
        })];
    }
    Vec::new()
}

fn check_expected_version(state: &ResourceState, expected: Option<u64>) -> Result<(), ResourceError> {
    match expected {
        Some(expected) if expected != state.version => {
            Err(ResourceError::VersionConflict { expected, actual: state.version })
        }
        _ => Ok(()),
    }
}

fn apply_virtual_tag(state: &ResourceState, cmd: &ApplyVirtualTag) -> Result<Vec<ResourceEvent>, ResourceError> {
    if cmd.source.is_derived() {
        return Err(ResourceError::DerivedSource(cmd.source));
    }
    if !state.exists() {
        return Err(ResourceError::UnknownResource);
    }
    check_expected_version(state, cmd.expected_version)?;
    let current = state.virtual_tags.get(&cmd.key);
    if let Some(t) = current {
        if t.value == cmd.value && t.source == cmd.source && t.confidence == cmd.confidence {
            return Ok(Vec::new());
        }
    }
    Ok(vec![ResourceEvent::VirtualTagApplied(VirtualTagApplied {
        key: cmd.key.clone(),
        value: cmd.value.clone(),
        source: cmd.source,
        confidence: cmd.confidence,
        previous: current.map(|t| PreviousTag { value: t.value.clone(), source: t.source }),
    })])
}

fn remove_virtual_tag(state: &ResourceState, cmd: &RemoveVirtualTag) -> Result<Vec<ResourceEvent>, ResourceError> {
    if !state.exists() {
        return Err(ResourceError::UnknownResource);
    }
    check_expected_version(state, cmd.expected_version)?;
    let current = state
        .virtual_tags
        .get(&cmd.key)
        .ok_or_else(|| ResourceError::TagNotPresent { key: cmd.key.clone() })?;
    if current.source.is_derived() {
        return Err(ResourceError::DerivedTag { key: cmd.key.clone(), derived_as: current.source });
    }
    Ok(vec![ResourceEvent::VirtualTagRemoved(VirtualTagRemoved {
        key: cmd.key.clone(),
        previous: PreviousTag { value: current.value.clone(), source: current.source },
    })])
}
