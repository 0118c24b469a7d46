//! The append-only JSON-lines journal that makes the registry durable.
//!
//! Every state change is one line, written and fsynced before the HTTP response, and the
//! whole state is rebuilt by replaying the lines on start. A crash mid-write can only
//! leave a torn *last* line (we never write after a failed write without first cutting
//! it off), so replay drops an unreadable last line and truncates the file to the last
//! good line; an unreadable line followed by good ones is real corruption and refuses
//! to start rather than silently losing registrations.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::compatibility::CompatibilityLevel;

pub const JOURNAL_FILE: &str = "journal.jsonl";

/// One durable state change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Entry {
    /// A new version of a subject. `schema` is the text stored for `id`, repeated on
    /// every line so each line can be applied on its own.
    Register {
        subject: String,
        version: u32,
        id: u32,
        schema: String,
    },
    /// A compatibility level set (`Some`) or cleared (`None`); `subject: None` is global.
    Config {
        subject: Option<String>,
        compatibility: Option<CompatibilityLevel>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: line {line} is corrupt and is not the last line: {reason}")]
    Corrupt {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("{path}: line {line} cannot be applied: {reason}")]
    Inconsistent {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("an earlier journal write failed and could not be rolled back; restart the registry")]
    Poisoned,
}

/// The open journal, positioned for appending.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
    /// Length of the durable, well-formed prefix; a failed append is cut back to it.
    len: u64,
    poisoned: bool,
}

impl Journal {
    /// Opens (creating if needed) the journal in `data_dir` and returns it with every
    /// entry in it, in order. A torn last line is dropped from the file.
    pub fn open(data_dir: &Path) -> Result<(Self, Vec<(usize, Entry)>), JournalError> {
        let path = data_dir.join(JOURNAL_FILE);
        let io_err = |source| JournalError::Io {
            path: path.clone(),
            source,
        };
        fs::create_dir_all(data_dir).map_err(io_err)?;
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io_err)?;
        if !existed {
            // A new file's directory entry is only durable once the directory is synced.
            sync_dir(data_dir).map_err(io_err)?;
        }

        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io_err)?;
        let (entries, good_len) = parse(&bytes, &path)?;
        if good_len < bytes.len() as u64 {
            tracing::warn!(
                path = %path.display(),
                dropped_bytes = bytes.len() as u64 - good_len,
                "dropping a torn last journal line (interrupted write)"
            );
            file.set_len(good_len).map_err(io_err)?;
            file.sync_all().map_err(io_err)?;
        }
        Ok((
            Self {
                path,
                file,
                len: good_len,
                poisoned: false,
            },
            entries,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry and fsyncs it. Only after `Ok` may the change be acknowledged.
    pub fn append(&mut self, entry: &Entry) -> Result<(), JournalError> {
        if self.poisoned {
            return Err(JournalError::Poisoned);
        }
        let mut line = serde_json::to_vec(entry).expect("journal entries always serialise");
        line.push(b'\n');
        let result = self
            .file
            .write_all(&line)
            .and_then(|()| self.file.sync_data());
        match result {
            Ok(()) => {
                self.len += line.len() as u64;
                Ok(())
            }
            Err(source) => {
                // Cut off whatever part of the line made it, so the next append does not
                // glue a good line onto a torn one (which replay would call corruption).
                if self.file.set_len(self.len).is_err() {
                    self.poisoned = true;
                }
                Err(JournalError::Io {
                    path: self.path.clone(),
                    source,
                })
            }
        }
    }
}

/// Splits the journal into entries; returns them with the byte length of the good prefix.
fn parse(bytes: &[u8], path: &Path) -> Result<(Vec<(usize, Entry)>, u64), JournalError> {
    let mut entries = Vec::new();
    let mut offset = 0usize;
    let mut line_no = 0usize;
    while offset < bytes.len() {
        line_no += 1;
        let (line, next, complete) = match bytes[offset..].iter().position(|b| *b == b'\n') {
            Some(i) => (&bytes[offset..offset + i], offset + i + 1, true),
            None => (&bytes[offset..], bytes.len(), false),
        };
        let is_last = next >= bytes.len();
        // An unterminated line was never fully written, even if it happens to parse.
        let parsed = if complete {
            parse_line(line)
        } else {
            Err("line has no terminating newline".to_owned())
        };
        match parsed {
            Ok(Some(entry)) => entries.push((line_no, entry)),
            Ok(None) => {} // blank line
            Err(_) if is_last => return Ok((entries, offset as u64)),
            Err(reason) => {
                return Err(JournalError::Corrupt {
                    path: path.to_owned(),
                    line: line_no,
                    reason,
                })
            }
        }
        offset = next;
    }
    Ok((entries, offset as u64))
}

fn parse_line(line: &[u8]) -> Result<Option<Entry>, String> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(line)
        .map(Some)
        .map_err(|e| e.to_string())
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    // Directories can be opened and fsynced on Unix; elsewhere this is best effort.
    match File::open(dir) {
        Ok(d) => d.sync_all().or(Ok(())),
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(version: u32) -> Entry {
        Entry::Register {
            subject: "s".into(),
            version,
            id: version,
            schema: "\"string\"".into(),
        }
    }

    fn line(e: &Entry) -> String {
        format!("{}\n", serde_json::to_string(e).unwrap())
    }

    #[test]
    fn torn_last_line_is_dropped_and_the_rest_kept() {
        let text = format!("{}{}{{\"op\":\"regi", line(&entry(1)), line(&entry(2)));
        let (entries, good) = parse(text.as_bytes(), Path::new("j")).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(good as usize, text.rfind("{\"op\":\"regi").unwrap());
    }

    #[test]
    fn an_unterminated_but_parsable_last_line_is_still_torn() {
        let text = format!("{}{}", line(&entry(1)), line(&entry(2)).trim_end());
        let (entries, _) = parse(text.as_bytes(), Path::new("j")).unwrap();
        assert_eq!(entries.len(), 1);
    }

    #[test]
    fn corruption_in_the_middle_is_an_error() {
        let text = format!("{}garbage\n{}", line(&entry(1)), line(&entry(2)));
        assert!(matches!(
            parse(text.as_bytes(), Path::new("j")),
            Err(JournalError::Corrupt { line: 2, .. })
        ));
    }
}
