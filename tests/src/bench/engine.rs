//! The tagging engine's own throughput: `vtag_domain::tagging::derive_each` (what a decision runs)
//! over generated resources under a rule set, on one core and on all of them, against two raw
//! baselines measured in the same run — reading the same facts (a hash over every string
//! derivation looks at) and normalization alone (the same derivation under the same schema with no
//! rules: normalizing and promoting native tags).

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use chrono::Utc;
use vtag_domain::tagging::{derive_each, ResourceFacts, RuleSet, TaggingConfig};

/// One unit of engine work on a resource (returns something so it cannot be optimized away).
pub type Work<'a> = &'a (dyn Fn(&ResourceFacts) -> usize + Sync);

/// Resources per second of `work` over `facts`, split across `threads` scoped threads.
pub fn throughput(facts: &[ResourceFacts], threads: usize, work: Work<'_>) -> (f64, usize) {
    let started = Instant::now();
    let chunk = facts.len().div_ceil(threads.max(1));
    let produced: usize = std::thread::scope(|s| {
        let handles: Vec<_> = facts.chunks(chunk).map(|part| s.spawn(move || part.iter().map(work).sum::<usize>())).collect();
        handles.into_iter().map(|h| h.join().expect("bench thread")).sum()
    });
    (facts.len() as f64 / secs(started.elapsed()), produced)
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64().max(1e-9)
}

/// Reads every string derivation reads, and nothing else: the floor any engine pays.
pub fn read_facts(f: &ResourceFacts) -> usize {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (&f.name, &f.account, &f.region, &f.resource_type, &f.provider).hash(&mut h);
    for (k, v) in &f.native_tags {
        (k, v).hash(&mut h);
    }
    (h.finish() & 1) as usize
}

/// Derivation under the same schema with no rules: normalizing and promoting native tags.
pub fn normalize_only(config: &TaggingConfig) -> impl Fn(&ResourceFacts) -> usize + Sync {
    derive_all(TaggingConfig { version: config.version, schema: config.schema.clone(), rules: RuleSet::default() })
}

/// What a decision runs: every derived tag visited, borrowed (see `derive_each`); counts them.
pub fn derive_all<C: Borrow<TaggingConfig> + Sync>(config: C) -> impl Fn(&ResourceFacts) -> usize + Sync {
    let people = BTreeMap::new();
    let at = Utc::now();
    move |f| {
        let mut tags = 0;
        derive_each(config.borrow(), f, &people, at, |_| tags += 1);
        tags
    }
}
