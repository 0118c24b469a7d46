//! Log positions and the read-your-writes token.
//!
//! The command API answers every write with the offsets it reached; the query API waits (bounded)
//! until its read model's checkpoints have passed them. The token is small and readable on purpose:
//! `3:1204,5:77` means "partition 3 up to offset 1204 and partition 5 up to offset 77".

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogPosition(BTreeMap<i32, i64>);

impl LogPosition {
    /// Remembers that `offset` of `partition` was written (keeps the highest per partition).
    pub fn record(&mut self, partition: i32, offset: i64) {
        let e = self.0.entry(partition).or_insert(offset);
        *e = (*e).max(offset);
    }

    pub fn merge(&mut self, other: &LogPosition) {
        for (p, o) in &other.0 {
            self.record(*p, *o);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn partitions(&self) -> impl Iterator<Item = (i32, i64)> + '_ {
        self.0.iter().map(|(p, o)| (*p, *o))
    }
}

impl fmt::Display for LogPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (p, o) in &self.0 {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            write!(f, "{p}:{o}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("consistency token must look like '3:1204,5:77' (partition:offset pairs)")]
pub struct InvalidToken;

impl FromStr for LogPosition {
    type Err = InvalidToken;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut pos = LogPosition::default();
        if s.trim().is_empty() {
            return Ok(pos);
        }
        // A token names at most one offset per partition; more pairs than that is garbage.
        for pair in s.split(',').take(10_000) {
            let (p, o) = pair.split_once(':').ok_or(InvalidToken)?;
            let p: i32 = p.trim().parse().map_err(|_| InvalidToken)?;
            let o: i64 = o.trim().parse().map_err(|_| InvalidToken)?;
            if p < 0 || o < 0 {
                return Err(InvalidToken);
            }
            pos.record(p, o);
        }
        Ok(pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_keeps_the_highest_offset() {
        let mut p = LogPosition::default();
        p.record(5, 77);
        p.record(3, 1204);
        p.record(5, 12);
        assert_eq!(p.to_string(), "3:1204,5:77");
        assert_eq!("3:1204,5:77".parse::<LogPosition>().unwrap(), p);
        assert!("3-1204".parse::<LogPosition>().is_err());
        assert!("x:1".parse::<LogPosition>().is_err());
        assert!("".parse::<LogPosition>().unwrap().is_empty());
    }
}
