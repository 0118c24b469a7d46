//! Compliance over the virtual tag layer: policies (the seed's required tags, value validation,
//! conditional requirements and cost thresholds), the pure evaluation of one resource against
//! them, and the violation lifecycle (pending through a grace period, due, escalated, resolved)
//! decided from an injected clock.
//!
//! Map:
//! - `policy`: what a policy says, checked ([`Policy`], [`Check`], [`Severity`], [`Scope`]).
//! - `evaluate`: one resource against one policy ([`evaluate`], [`Finding`]) and its score.
//! - `lifecycle`: findings and time into violation transitions ([`reconcile`], [`advance`]).
//! - `remediation`: values that would fix a violation, ranked ([`suggest`]).
//! - `book`: one evaluator's resources, open violations and policies, deciding what to record
//!   ([`ComplianceBook`]).

mod book;
mod evaluate;
mod lifecycle;
mod policy;
mod remediation;

pub use book::{Change, ComplianceBook, Decision, Judgement, Selection, TenantPolicies, Verdict};
pub use evaluate::{applies, evaluate, holds, score, Finding, Problem, Subject, TagLookup};
pub use lifecycle::{advance, apply, reconcile, OpenViolation, OpenViolations, Resolution, Stage, Transition};
pub use remediation::{satisfies, suggest, PeerEvidence, Suggestion, SuggestionSource, MAX_SUGGESTIONS};
pub use policy::{Check, Escalation, Policy, Requirement, Scope, Severity, TagCondition, Validation, ValueRule};

#[cfg(test)]
mod tests;
