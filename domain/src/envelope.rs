//! The metadata every recorded event carries (DESIGN-NOTES rule 2).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::values::{Actor, ResourceId, TenantId};

/// Everything about a command that is not its content: who, when, and which request chain it
/// belongs to. Built by the command API from the authenticated caller and the clock.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandContext {
    /// Unique per command. Re-sending a command with the same id must not record it twice.
    pub command_id: Uuid,
    pub tenant: TenantId,
    pub actor: Actor,
    pub correlation_id: Uuid,
    /// When the fact happened in the world (for observations: when the collector saw it).
    pub occurred_at: DateTime<Utc>,
    /// When vtag decided it.
    pub recorded_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EventEnvelope {
    pub event_id: Uuid,
    pub tenant: TenantId,
    pub aggregate_id: ResourceId,
    /// Gapless, starting at 1: the n-th event of this aggregate has version n.
    pub aggregate_version: u64,
    pub actor: Actor,
    /// The command that caused this event.
    pub causation_id: Uuid,
    pub correlation_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
}

/// An event together with its envelope: what goes into the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded<E> {
    pub envelope: EventEnvelope,
    pub event: E,
}

impl CommandContext {
    /// Event ids are derived from the command id, so deciding the same command twice yields the same
    /// ids and consumers can recognise a duplicate. They are still UUIDv7 (time-ordered by
    /// `recorded_at`), which keeps them index-friendly.
    pub fn event_id(&self, index: usize) -> Uuid {
        let seed = Uuid::new_v5(&self.command_id, &(index as u64).to_be_bytes());
        let mut random = [0u8; 10];
        random.copy_from_slice(&seed.as_bytes()[6..16]);
        let millis = self.recorded_at.timestamp_millis().max(0) as u64;
        uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid()
    }

    pub fn envelope(&self, aggregate_id: ResourceId, aggregate_version: u64, index: usize) -> EventEnvelope {
        EventEnvelope {
            event_id: self.event_id(index),
            tenant: self.tenant.clone(),
            aggregate_id,
            aggregate_version,
            actor: self.actor.clone(),
            causation_id: self.command_id,
            correlation_id: self.correlation_id,
            occurred_at: self.occurred_at,
            recorded_at: self.recorded_at,
        }
    }
}
