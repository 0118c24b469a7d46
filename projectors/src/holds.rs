//! Holding an aggregate back behind its dead letter, and retrying it (ADR 0011).
//!
//! When a projector cannot apply a resource event, it parks it on the dead-letter topic — and parks
//! every later event of the same aggregate too (`held`): applying them over a missing event would
//! fold a state the log never had. Other aggregates go on. The dead-letter topic is the memory of
//! what is held: each projector folds it at the start of a pass (a key is held from its first parked
//! offset until a `released` record).
//!
//! `vtag dead-letters retry` appends a `retry` request. A projector that sees one (at the start of a
//! pass, or polling while it runs) starts its pass again from the first held offset of each
//! partition with nothing held: the held events are decoded and applied in log order, the other
//! aggregates' events are skipped by the version guards. Once the pass is back where it was, it
//! appends `released` for every aggregate that applied and a `retried` answer with the counts; an
//! event that still cannot be applied holds its aggregate again. A crash mid-way leaves the request
//! unanswered, so the next pass does it again (every step is idempotent).

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use crate::dead_letter::{kind, DeadLetters, Letter, LetterReader};
use crate::source::LogRecord;

/// How often a running pass looks for a retry request.
const POLL: Duration = Duration::from_secs(2);

type Key = (i32, Vec<u8>);

/// What the dead-letter topic says about one projector of one topic.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Ledger {
    /// Held aggregates: (partition, key) → (first held offset, last offset parked).
    pub held: HashMap<Key, (i64, i64)>,
    /// A retry request not answered yet.
    pub retry_pending: bool,
}

impl Ledger {
    /// Folds dead letters in order, keeping what concerns `projector` reading `topic`.
    pub fn fold<'a>(&mut self, projector: &str, topic: &str, letters: impl IntoIterator<Item = &'a Letter>) {
        for l in letters {
            if l.source_topic != topic {
                continue;
            }
            match l.kind.as_str() {
                _ if l.asks_retry_of(projector, topic) => self.retry_pending = true,
                _ if l.projector != projector => {}
                kind::RETRIED => self.retry_pending = false,
                kind::RELEASED => {
                    self.held.remove(&(l.source_partition, l.source_key.clone()));
                }
                kind::POISON | kind::HELD if !l.source_key.is_empty() => {
                    let at = self.held.entry((l.source_partition, l.source_key.clone())).or_insert((l.source_offset, l.source_offset));
                    at.0 = at.0.min(l.source_offset);
                    at.1 = at.1.max(l.source_offset);
                }
                _ => {}
            }
        }
    }
}

/// A retry under way: the aggregates it releases and where the pass was when it began.
struct Retry {
    keys: HashMap<Key, (i64, i64)>,
    until: HashMap<i32, i64>,
}

/// The holds of one projector on one topic, for one pass.
pub struct Holds {
    dead_letters: DeadLetters,
    /// Reads the dead-letter topic; None for a topic whose records are not an aggregate's history.
    reader: Option<LetterReader>,
    ledger: Ledger,
    /// Dead letters read so far (the next offset of the dead-letter topic).
    read: i64,
    /// Whether this pass answers retries (a rebuild's shadow only keeps the holds).
    answers: bool,
    retry: Option<Retry>,
    polled: Instant,
}

impl Holds {
    /// Reads the dead-letter topic to its end for what `dead_letters`' projector holds.
    pub async fn load(brokers: &str, dead_letters: DeadLetters, answers: bool) -> anyhow::Result<Self> {
        let reader = LetterReader::new(brokers, dead_letters.topic.clone())?;
        let letters = reader.read(0).await?;
        let mut ledger = Ledger::default();
        ledger.fold(&dead_letters.projector, &dead_letters.source_topic, &letters);
        let read = letters.last().map_or(0, |l| l.offset + 1);
        Ok(Self { dead_letters, reader: Some(reader), ledger, read, answers, retry: None, polled: Instant::now() })
    }

    /// For a topic whose records are not an aggregate's history (compliance decisions): poison is
    /// parked, nothing is held, no retry is answered.
    pub fn none(dead_letters: DeadLetters) -> Self {
        Self { dead_letters, reader: None, ledger: Ledger::default(), read: 0, answers: false, retry: None, polled: Instant::now() }
    }

    /// Where the pass starts: the checkpoints, or — answering a retry — each partition's first held
    /// offset when earlier, with nothing held until the pass is back at the checkpoints.
    pub async fn start(&mut self, checkpoints: &HashMap<i32, i64>) -> anyhow::Result<HashMap<i32, i64>> {
        if !(self.answers && self.ledger.retry_pending) {
            return Ok(checkpoints.clone());
        }
        let keys = std::mem::take(&mut self.ledger.held);
        let mut start = checkpoints.clone();
        for ((partition, _), (first, _)) in &keys {
            let at = start.entry(*partition).or_insert(0);
            *at = (*at).min(*first);
        }
        tracing::info!(projector = %self.dead_letters.projector, aggregates = keys.len(), ?start, "retrying held aggregates");
        self.retry = Some(Retry { keys, until: checkpoints.clone() });
        self.settle(&start).await?;
        Ok(start)
    }

    /// Decodes the batch's records past `checkpoints`; parks the ones that cannot be decoded (their
    /// aggregate is held from there) and the later ones of held aggregates. Returns the decoded
    /// records and the next offsets past the batch per partition.
    pub async fn decode_or_park<'a, T, Fut>(
        &mut self,
        records: &'a [LogRecord],
        checkpoints: &HashMap<i32, i64>,
        decode: impl Fn(&'a [u8]) -> Fut,
    ) -> anyhow::Result<(Vec<(&'a LogRecord, T)>, HashMap<i32, i64>)>
    where
        Fut: Future<Output = Result<T, vtag_eventlog::DecodeError>>,
    {
        let (mut decoded, mut next) = (Vec::new(), HashMap::new());
        for record in records {
            if record.offset < checkpoints.get(&record.partition).copied().unwrap_or(0) {
                continue;
            }
            next.insert(record.partition, record.offset + 1);
            let key = (record.partition, record.key.clone());
            if let Some(&(first, last)) = self.ledger.held.get(&key) {
                if record.offset >= first {
                    if record.offset > last {
                        let why = format!("held: an earlier event of this aggregate (offset {first}) could not be applied");
                        self.dead_letters.send(record, kind::HELD, &why).await?;
                        self.ledger.held.insert(key, (first, record.offset));
                    }
                    continue;
                }
            }
            match crate::postgres::decode_with_retry(|| decode(&record.payload)).await {
                Ok(value) => decoded.push((record, value)),
                Err(reason) => {
                    let projector = &self.dead_letters.projector;
                    tracing::error!(partition = record.partition, offset = record.offset, %projector, %reason, "dead-lettering a record");
                    // Parked already (read again after a crash, or by a retry): not parked twice.
                    let parked = self.retry.as_ref().and_then(|r| r.keys.get(&key)).map_or(-1, |&(_, last)| last);
                    if record.offset > parked {
                        self.dead_letters.park(record, &reason).await?;
                    }
                    if self.reader.is_some() && !record.key.is_empty() {
                        self.ledger.held.insert(key, (record.offset, record.offset.max(parked)));
                    }
                }
            }
        }
        Ok((decoded, next))
    }

    /// After a batch committed at `checkpoints`: a retry back where it began releases what applied
    /// and answers.
    pub async fn settle(&mut self, checkpoints: &HashMap<i32, i64>) -> anyhow::Result<()> {
        let Some(retry) = &self.retry else { return Ok(()) };
        if !retry.until.iter().all(|(p, end)| checkpoints.get(p).copied().unwrap_or(0) >= *end) {
            return Ok(());
        }
        let retry = self.retry.take().expect("checked above");
        let (mut released, mut still) = (0, 0);
        for (partition, key) in retry.keys.keys() {
            if self.ledger.held.contains_key(&(*partition, key.clone())) {
                still += 1;
                continue;
            }
            let record = LogRecord { partition: *partition, offset: -1, key: key.clone(), payload: Vec::new() };
            self.dead_letters.send(&record, kind::RELEASED, "").await?;
            released += 1;
        }
        let answer = LogRecord { partition: -1, offset: -1, key: Vec::new(), payload: Vec::new() };
        self.dead_letters.send(&answer, kind::RETRIED, &format!("released {released} aggregates; {still} still held")).await?;
        self.ledger.retry_pending = false;
        tracing::info!(projector = %self.dead_letters.projector, released, still, "retry done");
        Ok(())
    }

    /// Whether a retry was asked for since the pass began (reads the dead-letter topic at most every
    /// two seconds, and only what is new).
    pub async fn retry_requested(&mut self) -> anyhow::Result<bool> {
        let Some(reader) = &self.reader else { return Ok(false) };
        if !self.answers || self.retry.is_some() || self.polled.elapsed() < POLL {
            return Ok(false);
        }
        self.polled = Instant::now();
        let letters = reader.read(self.read).await?;
        if let Some(last) = letters.last() {
            self.read = last.offset + 1;
        }
        Ok(letters.iter().any(|l| l.asks_retry_of(&self.dead_letters.projector, &self.dead_letters.source_topic)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dead_letter::EVERY_PROJECTOR;

    fn letter(offset: i64, kind: &str, projector: &str, partition: i32, source_offset: i64, key: &str) -> Letter {
        Letter {
            offset,
            kind: kind.into(),
            projector: projector.into(),
            source_topic: "t".into(),
            source_partition: partition,
            source_offset,
            source_key: key.as_bytes().to_vec(),
            note: String::new(),
        }
    }

    #[test]
    fn an_aggregate_is_held_from_its_first_parked_event_until_released() {
        let letters = [
            letter(0, kind::POISON, "postgres", 1, 10, "a"),
            letter(1, kind::HELD, "postgres", 1, 14, "a"),
            letter(2, kind::POISON, "postgres", 2, 5, "b"),
            letter(3, kind::POISON, "neo4j", 1, 10, "a"),
            letter(4, kind::POISON, "postgres", 0, 3, ""),
        ];
        let mut ledger = Ledger::default();
        ledger.fold("postgres", "t", &letters);
        assert_eq!(ledger.held.get(&(1, b"a".to_vec())), Some(&(10, 14)));
        assert_eq!(ledger.held.len(), 2, "another projector's and keyless letters hold nothing here");
        assert!(!ledger.retry_pending);

        ledger.fold("postgres", "t", &[letter(5, kind::RETRY, EVERY_PROJECTOR, -1, -1, "")]);
        assert!(ledger.retry_pending);
        ledger.fold("postgres", "t", &[letter(6, kind::RELEASED, "postgres", 1, -1, "a"), letter(7, kind::RETRIED, "postgres", -1, -1, "")]);
        assert_eq!(ledger.held.keys().collect::<Vec<_>>(), [&(2, b"b".to_vec())]);
        assert!(!ledger.retry_pending);

        let mut other = Ledger::default();
        other.fold("postgres", "elsewhere", &letters);
        assert!(other.held.is_empty(), "letters of another topic");
    }
}
