//! Judging on every core. Taking verdicts only reads the book, so a chunk of resources is split
//! across threads; settling them (the lifecycle, versions, the book's own record) stays on one
//! thread, in the chunk's order, so the same book still decides the same records in the same order.

use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use vtag_domain::compliance::{ComplianceBook, Decision, Verdict};
use vtag_domain::ResourceId;

/// Below this, a thread costs more than it saves.
const MIN_PER_THREAD: usize = 2_000;

pub fn judge(book: &mut ComplianceBook, ids: &[ResourceId], now: DateTime<Utc>) -> Vec<Decision> {
    let threads = threads().min(ids.len() / MIN_PER_THREAD).max(1);
    let verdicts: Vec<Verdict> = if threads == 1 {
        book.verdicts(ids, now)
    } else {
        let shared: &ComplianceBook = book;
        let mut parts = ids.chunks(ids.len().div_ceil(threads));
        let first = parts.next().unwrap_or_default();
        std::thread::scope(|s| {
            let others: Vec<_> = parts.map(|part| s.spawn(move || shared.verdicts(part, now))).collect();
            // This thread judges the first part meanwhile.
            let mut verdicts = shared.verdicts(first, now);
            for other in others {
                verdicts.extend(other.join().expect("a judging thread panicked"));
            }
            verdicts
        })
    };
    book.settle(verdicts, now)
}

fn threads() -> usize {
    static THREADS: OnceLock<usize> = OnceLock::new();
    *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()).min(8))
}
