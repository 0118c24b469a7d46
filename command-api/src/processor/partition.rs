//! What the single writer of one partition remembers: the state of each aggregate in it, and the
//! outcome of recent commands so a re-sent command is answered, not re-applied.

use std::collections::{HashMap, VecDeque};

use uuid::Uuid;
use vtag_domain::{evolve, Recorded, ResourceEvent, ResourceId, ResourceState, TenantId};
use vtag_eventlog::ProgressMarker;

/// The answer to a command that was recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub resource_id: ResourceId,
    /// The aggregate version after the command.
    pub version: u64,
    /// How many events the command recorded (0: nothing had changed).
    pub events: usize,
    /// (partition, offset) of the last event recorded, for the read-your-writes token.
    pub position: Option<(i32, i64)>,
}

#[derive(Default)]
pub struct PartitionState {
    pub aggregates: HashMap<ResourceId, ResourceState>,
    /// Each tenant's resources in this partition, in order of first sight (re-derivation walks these).
    pub by_tenant: HashMap<TenantId, Vec<ResourceId>>,
    /// Per tenant: the configuration version a re-derivation job has completed on this partition.
    pub completed: HashMap<TenantId, u64>,
    recent: HashMap<Uuid, Outcome>,
    recent_order: VecDeque<Uuid>,
    /// False after a write whose fate is unknown: the in-memory state may differ from the log, so
    /// the partition is rebuilt from the log before it decides anything else.
    pub trusted: bool,
    /// The offset after the last record this state reflects (every record below it was read or
    /// written, and acknowledged, by this instance).
    pub log_end: i64,
    /// Set when the lease is (re)gained: another instance may have appended since `log_end`, so
    /// those records are read before the next decision. Usually there are none — a rebalance that
    /// hands the partition straight back costs one watermark lookup, not a rebuild.
    pub behind: bool,
    /// Whether this instance holds the partition's lease (see `ownership`).
    pub owned: bool,
}

/// How many command outcomes each partition remembers for de-duplication. Clients retry within
/// seconds; this covers far more than that at any realistic rate.
const RECENT_COMMANDS: usize = 100_000;

impl PartitionState {
    /// An empty state, to be filled by replaying the partition; it keeps the ownership it replaces.
    pub fn replaying(owned: bool) -> Self {
        Self { trusted: true, owned, ..Default::default() }
    }

    pub fn apply(&mut self, recorded: &Recorded<ResourceEvent>) {
        let id = recorded.envelope.aggregate_id;
        let state = match self.aggregates.remove(&id) {
            Some(s) => s,
            None => {
                self.by_tenant.entry(recorded.envelope.tenant.clone()).or_default().push(id);
                ResourceState::default()
            }
        };
        self.aggregates.insert(id, evolve(state, recorded));
    }

    /// A re-derivation marker: a finished job means every resource of the tenant here was brought
    /// to that configuration version.
    pub fn note_progress(&mut self, marker: &ProgressMarker) {
        if marker.done {
            let v = self.completed.entry(marker.tenant.clone()).or_default();
            *v = (*v).max(marker.rule_set_version);
        }
    }

    /// Records that the log holds everything up to `offset` (inclusive) as this state knows it.
    pub fn reached(&mut self, offset: i64) {
        self.log_end = self.log_end.max(offset + 1);
    }

    pub fn outcome_of(&self, command_id: &Uuid) -> Option<&Outcome> {
        self.recent.get(command_id)
    }

    pub fn remember(&mut self, command_id: Uuid, outcome: Outcome) {
        if self.recent.insert(command_id, outcome).is_none() {
            self.recent_order.push_back(command_id);
            if self.recent_order.len() > RECENT_COMMANDS {
                if let Some(old) = self.recent_order.pop_front() {
                    self.recent.remove(&old);
                }
            }
        }
    }
}
