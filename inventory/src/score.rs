//! Scoring derived virtual tags against the ground truth, per key: how much of what was derived is
//! right (precision), how much of the truth was found (recall), and how many resources ended up
//! exactly right for the key, counting "rightly absent" (accuracy).

use std::collections::BTreeMap;

/// Outcomes for one key over a set of resources.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyScore {
    /// Derived, and equal to the truth.
    pub correct: u64,
    /// Derived, but the truth has another value.
    pub wrong: u64,
    /// In the truth, not derived.
    pub missed: u64,
    /// Derived where the truth has no such tag.
    pub spurious: u64,
    /// Neither in the truth nor derived.
    pub absent: u64,
}

impl KeyScore {
    /// Share of derived values that are right; None when nothing was derived.
    pub fn precision(&self) -> Option<f64> {
        ratio(self.correct, self.correct + self.wrong + self.spurious)
    }

    /// Share of true values that were derived right; None when the truth has none.
    pub fn recall(&self) -> Option<f64> {
        ratio(self.correct, self.correct + self.wrong + self.missed)
    }

    /// Share of resources where the key ends up exactly as the truth has it, present or absent.
    pub fn accuracy(&self) -> Option<f64> {
        ratio(self.correct + self.absent, self.resources())
    }

    pub fn resources(&self) -> u64 {
        self.correct + self.wrong + self.missed + self.spurious + self.absent
    }

    fn add(&mut self, other: &KeyScore) {
        self.correct += other.correct;
        self.wrong += other.wrong;
        self.missed += other.missed;
        self.spurious += other.spurious;
        self.absent += other.absent;
    }
}

fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// Per-key scores, accumulated one resource at a time (so a million resources need no memory).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Score {
    resources: u64,
    /// Counts without `absent`, which follows from the number of resources.
    keys: BTreeMap<String, KeyScore>,
}

impl Score {
    /// Adds one resource: its truth and the virtual tags derived for it. Values compare exactly:
    /// derived tags are meant to be canonical.
    pub fn add(&mut self, truth: &BTreeMap<String, String>, derived: &BTreeMap<String, String>) {
        self.resources += 1;
        for (key, value) in truth {
            let s = self.keys.entry(key.clone()).or_default();
            match derived.get(key) {
                Some(d) if d == value => s.correct += 1,
                Some(_) => s.wrong += 1,
                None => s.missed += 1,
            }
        }
        for key in derived.keys().filter(|k| !truth.contains_key(*k)) {
            self.keys.entry(key.clone()).or_default().spurious += 1;
        }
    }

    pub fn resources(&self) -> u64 {
        self.resources
    }

    /// Every key seen in a truth or a derivation, in key order.
    pub fn keys(&self) -> impl Iterator<Item = (&str, KeyScore)> + '_ {
        self.keys.iter().map(|(k, s)| (k.as_str(), self.with_absent(s)))
    }

    /// One key's score (all `absent` if the key was never seen).
    pub fn key(&self, key: &str) -> KeyScore {
        self.with_absent(self.keys.get(key).unwrap_or(&KeyScore::default()))
    }

    /// All keys together (micro-averaged: every resource × key counts once).
    pub fn overall(&self) -> KeyScore {
        let mut total = KeyScore::default();
        for (_, s) in self.keys() {
            total.add(&s);
        }
        total
    }

    fn with_absent(&self, s: &KeyScore) -> KeyScore {
        KeyScore { absent: self.resources - (s.correct + s.wrong + s.missed + s.spurious), ..*s }
    }
}

/// Scores many resources at once: pairs of (truth, derived).
pub fn score<'a>(pairs: impl IntoIterator<Item = (&'a BTreeMap<String, String>, &'a BTreeMap<String, String>)>) -> Score {
    let mut score = Score::default();
    for (truth, derived) in pairs {
        score.add(truth, derived);
    }
    score
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn counts_each_outcome() {
        let truths = [tags(&[("environment", "production"), ("team", "web")]), tags(&[("environment", "staging")])];
        let derived = [tags(&[("environment", "production"), ("owner", "x@y.io")]), tags(&[("environment", "production")])];
        let s = score(truths.iter().zip(&derived));
        assert_eq!(s.resources(), 2);
        let env = s.key("environment");
        assert_eq!((env.correct, env.wrong, env.missed, env.spurious, env.absent), (1, 1, 0, 0, 0));
        assert_eq!(env.precision(), Some(0.5));
        assert_eq!(env.recall(), Some(0.5));
        assert_eq!(env.accuracy(), Some(0.5));
        let team = s.key("team");
        assert_eq!((team.missed, team.absent), (1, 1));
        assert_eq!(team.precision(), None);
        assert_eq!(team.accuracy(), Some(0.5));
        let owner = s.key("owner");
        assert_eq!((owner.spurious, owner.absent), (1, 1));
        assert_eq!(owner.recall(), None);
        assert_eq!(s.key("backup").absent, 2);
        assert_eq!(s.keys().map(|(k, _)| k).collect::<Vec<_>>(), ["environment", "owner", "team"]);
        let all = s.overall();
        assert_eq!(all.resources(), 6);
        assert_eq!(all.correct + all.absent, 3);
    }
}
