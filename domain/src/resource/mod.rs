//! The `Resource` aggregate: one cloud resource of one tenant, keyed by tenant + provider + cloud id.
//!
//! It records what collectors observed and which virtual tags people and processes applied or
//! removed. `decide` turns a command into events (or a refusal); `evolve` folds an event into state.

mod command;
mod decide;
mod error;
mod event;
mod state;

pub use command::{ApplyVirtualTag, ObserveResource, RecordMonthlyCost, RemoveVirtualTag, ResourceCommand, BILLING_SOURCE};
pub use decide::{decide, evolve};
pub use error::ResourceError;
pub use event::{
    DerivedChange, MonthlyCostChanged, NativeTagsChanged, PreviousTag, ResourceEvent, ResourceObserved, VirtualTagApplied,
    VirtualTagRemoved, VirtualTagsDerived,
};
pub use state::{AppliedTag, ResourceState};

#[cfg(test)]
mod tests;
