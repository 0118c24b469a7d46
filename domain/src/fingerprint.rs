//! Stable fingerprints of observed attributes.
//!
//! The command side keeps only a fingerprint of what a collector last reported (not the whole
//! description), which is enough to tell "nothing changed" and keeps memory flat at millions of
//! resources. The hash must be identical across processes and Rust releases because state is rebuilt
//! from the log, so it is FNV-1a over an unambiguous encoding, not `std`'s unspecified hasher.

use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Fingerprint(pub u64);

#[derive(Debug, Clone)]
pub struct FingerprintBuilder(u64);

impl Default for FingerprintBuilder {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl FingerprintBuilder {
    fn bytes(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// Length-prefixed so that ("ab","c") and ("a","bc") differ.
    pub fn str(mut self, s: &str) -> Self {
        self.bytes(&(s.len() as u64).to_le_bytes());
        self.bytes(s.as_bytes());
        self
    }

    pub fn map(mut self, m: &BTreeMap<String, String>) -> Self {
        self.bytes(&(m.len() as u64).to_le_bytes());
        m.iter().fold(self, |acc, (k, v)| acc.str(k).str(v))
    }

    pub fn finish(self) -> Fingerprint {
        Fingerprint(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_matter() {
        let a = FingerprintBuilder::default().str("ab").str("c").finish();
        let b = FingerprintBuilder::default().str("a").str("bc").finish();
        assert_ne!(a, b);
    }

    #[test]
    fn known_value_never_changes() {
        // Pinned: a change here silently breaks "unchanged re-observation records nothing" after upgrade.
        let f = FingerprintBuilder::default().str("vtag").finish();
        assert_eq!(f, Fingerprint(0x532c_6303_1af8_01c3));
    }
}
