//! A small, fast, deterministic hasher for the engine's lookup tables.
//!
//! The tables (tag key spellings, allowed values, rule operands, lookup tables) are built once per
//! configuration from what the tenant wrote and then only read, per resource, many millions of
//! times; the per-thread memos of native key spellings and capture slots also take inserts from
//! inventories, but are capped (1,024 keys, 256 rules), which bounds what a collision flood could
//! cost. std's SipHash guards against such floods at several times the cost for the short strings
//! looked up here.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

pub(crate) type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// The rustc "Fx" multiply-rotate hash, 8 bytes at a time.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.add(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        // hashbrown picks buckets with the low bits, which the multiply mixes least.
        self.0.rotate_left(26)
    }
}
