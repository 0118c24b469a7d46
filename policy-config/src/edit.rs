//! The changes behind the command API's policy endpoints, each giving a whole new document (which
//! is then compiled whole before anything is published).

use crate::document::{PoliciesDocument, PolicyDoc};

impl PoliciesDocument {
    pub fn policy(&self, id: &str) -> Option<&PolicyDoc> {
        self.policies.iter().find(|p| p.policy_id == id)
    }

    /// The document with `policy` in place of the one of the same id, or added last.
    pub fn with_policy(&self, policy: PolicyDoc) -> Self {
        let mut next = self.clone();
        match next.policies.iter_mut().find(|p| p.policy_id == policy.policy_id) {
            Some(slot) => *slot = policy,
            None => next.policies.push(policy),
        }
        next
    }

    /// The document without policy `id` (`None` when there is no such policy).
    pub fn without_policy(&self, id: &str) -> Option<Self> {
        self.policy(id)?;
        let mut next = self.clone();
        next.policies.retain(|p| p.policy_id != id);
        Some(next)
    }

    /// The document with policy `id` enabled or disabled (`None` when there is no such policy).
    pub fn with_enabled(&self, id: &str, enabled: bool) -> Option<Self> {
        let mut next = self.clone();
        next.policies.iter_mut().find(|p| p.policy_id == id)?.enabled = enabled;
        Some(next)
    }
}
