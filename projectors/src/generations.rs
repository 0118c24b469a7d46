//! What the projectors that build their read model in generations share (search: ADR 0008, graph:
//! ADR 0009): the two kinds of pass, when a build has caught up with the log, and the reader tasks
//! a pass owns.

use std::collections::HashMap;

/// What a pass does: keep the served generation up to date (building one when none is served), or
/// build a new one beside it and swap (a rebuild; the callback hears records folded of those due).
pub(crate) enum Mode<'a> {
    Serve,
    Shadow(&'a (dyn Fn(i64, i64) + Send + Sync)),
}

/// Every partition's checkpoint at or past its target (the high watermark when building began).
pub(crate) fn reached(checkpoints: &HashMap<i32, i64>, targets: Option<&HashMap<i32, i64>>) -> bool {
    targets.into_iter().flatten().all(|(p, high)| checkpoints.get(p).copied().unwrap_or(0) >= *high)
}

/// Records between the checkpoints and the log's `ends`, over every partition.
pub(crate) fn behind(checkpoints: &HashMap<i32, i64>, ends: Option<&HashMap<i32, i64>>) -> i64 {
    ends.into_iter().flatten().map(|(p, end)| (end - checkpoints.get(p).copied().unwrap_or(0)).max(0)).sum()
}

/// A pass's reader tasks, stopped with it.
pub(crate) struct Readers(pub Vec<tokio::task::JoinHandle<()>>);

impl Readers {
    /// One stopped without a word (a panic): its topic would silently stop being folded.
    pub fn any_stopped(&self) -> bool {
        self.0.iter().any(tokio::task::JoinHandle::is_finished)
    }
}

impl Drop for Readers {
    fn drop(&mut self) {
        self.0.iter().for_each(|h| h.abort());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_build_has_caught_up_when_every_partition_is_past_its_target() {
        let targets = HashMap::from([(0, 10), (1, 0)]);
        assert!(reached(&HashMap::from([(0, 10)]), Some(&targets)));
        assert!(!reached(&HashMap::from([(0, 9), (1, 5)]), Some(&targets)));
        assert!(reached(&HashMap::new(), None), "a topic with no partitions yet");
        assert_eq!(behind(&HashMap::from([(0, 7)]), Some(&HashMap::from([(0, 10), (1, 4)]))), 7);
        assert_eq!(behind(&HashMap::from([(0, 12)]), Some(&HashMap::from([(0, 10)]))), 0);
    }
}
