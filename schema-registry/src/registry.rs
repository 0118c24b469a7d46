//! The registry's state and the operations the REST layer exposes.
//!
//! Concurrency: the journal mutex serialises all writers (validate, append, apply happen
//! in that order under it), while readers only take the state lock, which a writer holds
//! just long enough to apply an already-durable change. So a slow fsync never blocks
//! reads, and nobody ever observes a change that is not on disk yet.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard};

use crate::avro_schema::AvroSchema;
use crate::compatibility::{self, CompatibilityLevel};
use crate::error::RegistryError;
use crate::journal::{Entry, Journal, JournalError};

/// Which version of a subject a request means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VersionSpec {
    Latest,
    Number(u32),
}

impl FromStr for VersionSpec {
    type Err = RegistryError;

    /// Confluent accepts "latest", -1 (also latest) and 1..=2^31-1.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "latest" || s == "-1" {
            return Ok(Self::Latest);
        }
        match s.parse::<u32>() {
            Ok(n) if n >= 1 && n <= i32::MAX as u32 => Ok(Self::Number(n)),
            _ => Err(RegistryError::InvalidVersion(s.to_owned())),
        }
    }
}

/// One version of one subject.
#[derive(Clone, Debug)]
pub struct SubjectVersion {
    pub subject: String,
    pub version: u32,
    pub id: u32,
    pub schema: Arc<AvroSchema>,
}

#[derive(Debug)]
pub struct Registry {
    state: RwLock<State>,
    journal: Mutex<Journal>,
}

#[derive(Debug)]
struct State {
    /// From the command line; used until someone PUTs a global level (which is journaled
    /// and then wins, also across restarts, as an explicit operator decision).
    default_level: CompatibilityLevel,
    global_level: Option<CompatibilityLevel>,
    subject_levels: HashMap<String, CompatibilityLevel>,
    schemas: HashMap<u32, Arc<AvroSchema>>,
    ids_by_identity: HashMap<String, u32>,
    /// Schema id of each version; version n is at index n-1 (versions are never deleted).
    subjects: BTreeMap<String, Vec<u32>>,
    next_id: u32,
}

impl Registry {
    /// Opens the journal in `data_dir` and replays it.
    pub fn open(data_dir: &Path, default_level: CompatibilityLevel) -> Result<Self, JournalError> {
        let (journal, entries) = Journal::open(data_dir)?;
        let mut state = State {
            default_level,
            global_level: None,
            subject_levels: HashMap::new(),
            schemas: HashMap::new(),
            ids_by_identity: HashMap::new(),
            subjects: BTreeMap::new(),
            next_id: 1,
        };
        let count = entries.len();
        for (line, entry) in entries {
            state
                .replay(entry)
                .map_err(|reason| JournalError::Inconsistent {
                    path: journal.path().to_owned(),
                    line,
                    reason,
                })?;
        }
        tracing::info!(
            journal = %journal.path().display(),
            entries = count,
            subjects = state.subjects.len(),
            schemas = state.schemas.len(),
            "journal replayed"
        );
        Ok(Self {
            state: RwLock::new(state),
            journal: Mutex::new(journal),
        })
    }

    /// Registers `text` under `subject` and returns its global id. An identical schema
    /// already in the subject returns its id without creating a version.
    pub fn register(&self, subject: &str, text: &str) -> Result<u32, RegistryError> {
        let candidate = AvroSchema::parse(text)?;
        let mut journal = self.lock_journal();

        let entry = {
            let state = self.read();
            let known_id = state.ids_by_identity.get(&candidate.identity).copied();
            let versions = state
                .subjects
                .get(subject)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            if let Some(id) = known_id.filter(|id| versions.contains(id)) {
                return Ok(id);
            }
            let level = state.effective_level(subject);
            let history: Vec<(u32, &apache_avro::Schema)> = versions
                .iter()
                .zip(1..)
                .map(|(id, version)| (version, &state.schemas[id].parsed))
                .collect();
            let messages = compatibility::check_against_history(level, &candidate.parsed, &history);
            if !messages.is_empty() {
                tracing::warn!(subject, %level, ?messages, "incompatible schema refused");
                return Err(RegistryError::Incompatible {
                    subject: subject.to_owned(),
                    messages,
                });
            }
            let (id, schema) = match known_id {
                // Ids are global: the same schema under another subject keeps its id and text.
                Some(id) => (id, state.schemas[&id].text.clone()),
                None => (state.next_id, candidate.text.clone()),
            };
            Entry::Register {
                subject: subject.to_owned(),
                version: versions.len() as u32 + 1,
                id,
                schema,
            }
        };

        journal.append(&entry)?;
        let Entry::Register { version, id, .. } = entry else {
            unreachable!("built as a Register entry above")
        };
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        let schema = state
            .schemas
            .get(&id)
            .cloned()
            .unwrap_or_else(|| Arc::new(candidate));
        state
            .apply_register(subject, version, id, schema)
            .map_err(RegistryError::Internal)?;
        tracing::info!(subject, version, id, "schema registered");
        Ok(id)
    }

    /// Finds `text` among the versions of `subject`.
    pub fn lookup(&self, subject: &str, text: &str) -> Result<SubjectVersion, RegistryError> {
        let candidate = AvroSchema::parse(text)?;
        let state = self.read();
        let versions = state.versions(subject)?;
        let id = state
            .ids_by_identity
            .get(&candidate.identity)
            .ok_or(RegistryError::SchemaNotFound)?;
        let index = versions
            .iter()
            .position(|v| v == id)
            .ok_or(RegistryError::SchemaNotFound)?;
        Ok(state.subject_version(subject, index as u32 + 1, *id))
    }

    pub fn schema_by_id(&self, id: u32) -> Result<Arc<AvroSchema>, RegistryError> {
        self.read()
            .schemas
            .get(&id)
            .cloned()
            .ok_or(RegistryError::SchemaIdNotFound(id))
    }

    pub fn subjects(&self) -> Vec<String> {
        self.read().subjects.keys().cloned().collect()
    }

    pub fn versions(&self, subject: &str) -> Result<Vec<u32>, RegistryError> {
        let state = self.read();
        Ok((1..=state.versions(subject)?.len() as u32).collect())
    }

    pub fn version(
        &self,
        subject: &str,
        spec: VersionSpec,
    ) -> Result<SubjectVersion, RegistryError> {
        let state = self.read();
        let versions = state.versions(subject)?;
        let version = match spec {
            VersionSpec::Latest => versions.len() as u32,
            VersionSpec::Number(n) => n,
        };
        let id =
            versions
                .get(version as usize - 1)
                .ok_or_else(|| RegistryError::VersionNotFound {
                    subject: subject.to_owned(),
                    version,
                })?;
        Ok(state.subject_version(subject, version, *id))
    }

    /// Would `text` be accepted? Against "latest" this is exactly the registration check
    /// (all versions for transitive levels); against a numbered version, only that one.
    /// Returns the reasons it is incompatible (empty = compatible).
    pub fn check_compatibility(
        &self,
        subject: &str,
        spec: VersionSpec,
        text: &str,
    ) -> Result<Vec<String>, RegistryError> {
        let candidate = AvroSchema::parse(text)?;
        let state = self.read();
        let level = state.effective_level(subject);
        let versions = match (state.subjects.get(subject), spec) {
            (Some(v), _) => v,
            // Like Confluent: anything is compatible with a subject that does not exist yet.
            (None, VersionSpec::Latest) => return Ok(Vec::new()),
            (None, VersionSpec::Number(_)) => {
                return Err(RegistryError::SubjectNotFound(subject.to_owned()))
            }
        };
        match spec {
            VersionSpec::Latest => {
                let history: Vec<(u32, &apache_avro::Schema)> = versions
                    .iter()
                    .zip(1..)
                    .map(|(id, version)| (version, &state.schemas[id].parsed))
                    .collect();
                Ok(compatibility::check_against_history(
                    level,
                    &candidate.parsed,
                    &history,
                ))
            }
            VersionSpec::Number(n) => {
                let id =
                    versions
                        .get(n as usize - 1)
                        .ok_or_else(|| RegistryError::VersionNotFound {
                            subject: subject.to_owned(),
                            version: n,
                        })?;
                Ok(compatibility::check_pair(
                    level,
                    &candidate.parsed,
                    &state.schemas[id].parsed,
                    n,
                ))
            }
        }
    }

    pub fn global_level(&self) -> CompatibilityLevel {
        let state = self.read();
        state.global_level.unwrap_or(state.default_level)
    }

    /// The level configured on the subject itself, if any (no fallback to global).
    pub fn subject_level(&self, subject: &str) -> Option<CompatibilityLevel> {
        self.read().subject_levels.get(subject).copied()
    }

    /// The level that applies to `subject`: its own, else the global one.
    pub fn effective_level(&self, subject: &str) -> CompatibilityLevel {
        self.read().effective_level(subject)
    }

    /// Sets (`Some`) or clears (`None`) the level of `subject`, or the global level when
    /// `subject` is `None`. Durable before it returns.
    pub fn set_level(
        &self,
        subject: Option<&str>,
        level: Option<CompatibilityLevel>,
    ) -> Result<(), RegistryError> {
        let mut journal = self.lock_journal();
        let entry = Entry::Config {
            subject: subject.map(str::to_owned),
            compatibility: level,
        };
        journal.append(&entry)?;
        self.state
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .apply_config(subject, level);
        tracing::info!(subject, level = ?level, "compatibility level changed");
        Ok(())
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        // A panic elsewhere never leaves State half-applied (apply_* validate first), so
        // keep serving rather than turning every later request into a 500.
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_journal(&self) -> MutexGuard<'_, Journal> {
        self.journal.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    fn effective_level(&self, subject: &str) -> CompatibilityLevel {
        self.subject_levels
            .get(subject)
            .copied()
            .or(self.global_level)
            .unwrap_or(self.default_level)
    }

    fn versions(&self, subject: &str) -> Result<&[u32], RegistryError> {
        self.subjects
            .get(subject)
            .map(Vec::as_slice)
            .ok_or_else(|| RegistryError::SubjectNotFound(subject.to_owned()))
    }

    fn subject_version(&self, subject: &str, version: u32, id: u32) -> SubjectVersion {
        SubjectVersion {
            subject: subject.to_owned(),
            version,
            id,
            schema: self.schemas[&id].clone(),
        }
    }

    fn replay(&mut self, entry: Entry) -> Result<(), String> {
        match entry {
            Entry::Register {
                subject,
                version,
                id,
                schema,
            } => {
                let schema = match self.schemas.get(&id) {
                    Some(known) if known.text == schema => known.clone(),
                    Some(_) => return Err(format!("schema id {id} recorded with two texts")),
                    None => Arc::new(AvroSchema::parse(&schema).map_err(|e| e.to_string())?),
                };
                self.apply_register(&subject, version, id, schema)
            }
            Entry::Config {
                subject,
                compatibility,
            } => {
                self.apply_config(subject.as_deref(), compatibility);
                Ok(())
            }
        }
    }

    /// Validates before mutating anything, so a refused entry leaves the state untouched.
    fn apply_register(
        &mut self,
        subject: &str,
        version: u32,
        id: u32,
        schema: Arc<AvroSchema>,
    ) -> Result<(), String> {
        let expected = self.subjects.get(subject).map_or(0, Vec::len) as u32 + 1;
        if version != expected {
            return Err(format!(
                "subject '{subject}' version {version} recorded, expected {expected}"
            ));
        }
        match self.ids_by_identity.get(&schema.identity) {
            Some(known) if *known != id => {
                return Err(format!(
                    "schema recorded as id {id}, already has id {known}"
                ))
            }
            None if self.schemas.contains_key(&id) => {
                return Err(format!("schema id {id} reused for a different schema"))
            }
            _ => {}
        }
        self.ids_by_identity.insert(schema.identity.clone(), id);
        self.schemas.insert(id, schema);
        self.subjects
            .entry(subject.to_owned())
            .or_default()
            .push(id);
        self.next_id = self.next_id.max(id + 1);
        Ok(())
    }

    fn apply_config(&mut self, subject: Option<&str>, level: Option<CompatibilityLevel>) {
        match (subject, level) {
            (None, level) => self.global_level = level,
            (Some(s), Some(level)) => {
                self.subject_levels.insert(s.to_owned(), level);
            }
            (Some(s), None) => {
                self.subject_levels.remove(s);
            }
        }
    }
}
