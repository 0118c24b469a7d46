use crate::envelope::{CommandContext, Recorded};
use crate::fingerprint::{Fingerprint, FingerprintBuilder};
use crate::values::{ResourceDescription, ResourceId};

use super::command::{ApplyVirtualTag, ObserveResource, RemoveVirtualTag, ResourceCommand};
use super::error::ResourceError;
use super::event::{
    NativeTagsChanged, PreviousTag, ResourceEvent, ResourceObserved, VirtualTagApplied, VirtualTagRemoved,
};
use super::state::{AppliedTag, ResourceState};

type Decision = Result<Vec<Recorded<ResourceEvent>>, ResourceError>;

/// Decides what a command means for a resource in `state`. Pure: same inputs, same events (ids included).
pub fn decide(state: &ResourceState, id: ResourceId, command: &ResourceCommand, ctx: &CommandContext) -> Decision {
    let events = match command {
        ResourceCommand::Observe(observe) => observe_resource(state, observe),
        ResourceCommand::ApplyVirtualTag(apply) => apply_virtual_tag(state, apply)?,
        ResourceCommand::RemoveVirtualTag(remove) => remove_virtual_tag(state, remove)?,
    };
    Ok(events
        .into_iter()
        .enumerate()
        .map(|(i, event)| Recorded { envelope: ctx.envelope(id, state.version + 1 + i as u64, i), event })
        .collect())
}

/// Folds one recorded event into the state.
pub fn evolve(mut state: ResourceState, recorded: &Recorded<ResourceEvent>) -> ResourceState {
    state.version = recorded.envelope.aggregate_version;
    match &recorded.event {
        ResourceEvent::ResourceObserved(e) => {
            state.provider = Some(e.provider);
            state.description = description_fingerprint(&e.description);
            state.native_tags = tags_fingerprint(&e.native_tags);
        }
        ResourceEvent::NativeTagsChanged(e) => state.native_tags = tags_fingerprint(&e.native_tags),
        ResourceEvent::VirtualTagApplied(e) => {
            state.virtual_tags.insert(
                e.key.clone(),
                AppliedTag { value: e.value.clone(), source: e.source, confidence: e.confidence },
            );
        }
        ResourceEvent::VirtualTagRemoved(e) => {
            state.virtual_tags.remove(&e.key);
        }
    }
    state
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
    Ok(vec![ResourceEvent::VirtualTagRemoved(VirtualTagRemoved {
        key: cmd.key.clone(),
        previous: PreviousTag { value: current.value.clone(), source: current.source },
    })])
}
