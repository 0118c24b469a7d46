//! The command line, read by hand: two words of command, then flags and one file.

use std::path::PathBuf;

use anyhow::{bail, Context};

pub const USAGE: &str = "\
vtag: the vtag command line

USAGE
    vtag import focus FILE [options]   upload a FOCUS billing export to the command API
    vtag replay --read-model MODEL     rebuild a read model from the event log beside the one
                                       that serves, then swap (MODEL: postgres, opensearch or
                                       neo4j)
    vtag dead-letters retry [--projector P]
                                       retry the events projectors hold behind a dead letter
    vtag --help                        this text (also: vtag import focus --help)
    vtag --version

ENVIRONMENT
    VTAG_COMMAND_API_URL   the command API (default http://127.0.0.1:18080)
    VTAG_TOKEN             the bearer token sent with every request

EXIT CODES
    0  done     1  refused: fix the request, the file or the command line
    2  the server failed or could not be reached
";

pub const IMPORT_FOCUS_USAGE: &str = "\
vtag import focus: upload a FOCUS billing export (CSV, gzip CSV or Parquet) to vtag

USAGE
    vtag import focus FILE [--api URL] [--token TOKEN] [--source NAME]
                           [--idempotency-key KEY] [--quiet] [--json]

    The file is sent as it is, read as it goes (never held whole in memory); the server checks
    all of it before recording anything, so a bad cell refuses the whole file and names its row
    and column. Each ledger (billing account x billing period) whose content changed replaces
    the one recorded; re-sending the same file records nothing.

    --api URL               the command API (default: $VTAG_COMMAND_API_URL, else
                            http://127.0.0.1:18080)
    --token TOKEN           bearer token with the editor role (default: $VTAG_TOKEN)
    --source NAME           the name kept with the import in the history (default: the file's name)
    --idempotency-key KEY   1 to 200 visible ASCII characters: a retry with the same key is the
                            same request
    --quiet                 no progress bar (there is none either when standard error is not
                            a terminal)
    --json                  print the server's JSON answer (or problem) instead of a summary
    -h, --help              this text

    The body's type follows the file's name: .csv text/csv, .gz application/gzip,
    .parquet application/vnd.apache.parquet, anything else application/octet-stream.

EXIT CODES
    0  imported, or nothing changed
    1  refused (a bad cell, no token, not allowed, ...): re-sending the same file fails the same way
    2  the server failed or could not be reached
";

pub const REPLAY_USAGE: &str = "\
vtag replay: rebuild a read model from the event log

USAGE
    vtag replay --read-model postgres
    vtag replay --read-model opensearch
    vtag replay --read-model neo4j

    Builds a new copy of the read model from offset 0 beside the one that serves, with progress,
    and swaps it in one step once it has caught up with the log: queries use the old one until
    then and never see a half-built one. Postgres: a shadow schema swapped with `public` by
    renaming both in one transaction; OpenSearch: a new index generation the alias moves to; the
    graph: a new generation its model node names. Runs vtag-projector --rebuild
    (vtag-projector-search, vtag-projector-graph) from the directory of this program, with the
    services' VTAG_* settings (VTAG_DATABASE_URL, VTAG_OPENSEARCH_URL, VTAG_BOLT_URL,
    VTAG_BOLT_PASSWORD, VTAG_KAFKA_BROKERS, VTAG_TOPIC_PREFIX, ...).

EXIT CODES
    0  rebuilt and serving    1  refused (unknown read model)
    2  the rebuild failed
";

pub const RETRY_USAGE: &str = "\
vtag dead-letters retry: retry the events the projectors hold behind a dead letter

USAGE
    vtag dead-letters retry                     every projector (postgres, opensearch, neo4j)
    vtag dead-letters retry --projector NAME    one of them

    A resource event a projector cannot apply is parked on the dead-letter topic, and so are the
    later events of the same resource (applying them over a missing one would be wrong); other
    resources go on. Once the cause is fixed (a schema registered, a projector upgraded), this asks
    the running projectors to apply the held events in log order. Each answers with how many
    resources it released and how many are still held (an event that still fails holds its
    resource again). Runs vtag-projector --retry-held from the directory of this program, with the
    services' VTAG_* settings (VTAG_KAFKA_BROKERS, VTAG_TOPIC_PREFIX, ...).

EXIT CODES
    0  every projector asked answered    1  refused (unknown projector or option)
    2  a projector did not answer within 2 minutes (not running?) or the broker failed
";

#[derive(Debug, PartialEq)]
pub enum Invocation {
    /// Print this text and stop.
    Help(&'static str),
    Version,
    ImportFocus(ImportFocus),
    Replay { read_model: String },
    /// None: every projector.
    RetryHeld { projector: Option<String> },
}

/// `vtag import focus` as typed: defaults from the environment are applied later (`Settings`).
#[derive(Debug, Default, PartialEq)]
pub struct ImportFocus {
    pub file: PathBuf,
    pub api: Option<String>,
    pub token: Option<String>,
    pub source: Option<String>,
    pub idempotency_key: Option<String>,
    pub quiet: bool,
    pub json: bool,
}

/// The arguments after the program's name.
pub fn parse(raw: impl IntoIterator<Item = String>) -> anyhow::Result<Invocation> {
    let mut raw = raw.into_iter().peekable();
    let mut words = Vec::new();
    // the command's words come first; a flag before them can only be a top-level one
    while let Some(arg) = raw.next_if(|a| !a.starts_with('-')) {
        words.push(arg);
        if words.len() == 2 {
            break;
        }
    }
    match words.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] => match raw.next().as_deref() {
            Some("-h" | "--help") => Ok(Invocation::Help(USAGE)),
            Some("-V" | "--version") => Ok(Invocation::Version),
            Some(other) => bail!("unknown option {other:?}"),
            None => bail!("no command given"),
        },
        ["help"] => Ok(Invocation::Help(USAGE)),
        ["help", "import", ..] => Ok(Invocation::Help(IMPORT_FOCUS_USAGE)),
        ["import"] if raw.peek().is_some_and(|a| a == "-h" || a == "--help") => Ok(Invocation::Help(IMPORT_FOCUS_USAGE)),
        ["import"] => bail!("`vtag import` needs what to import: `vtag import focus FILE`"),
        ["import", "focus"] => import_focus(raw),
        ["import", other] => bail!("cannot import {other:?}: only `focus` (a FOCUS billing export) can be"),
        ["replay"] => replay(raw),
        ["dead-letters", "retry"] => retry_held(raw),
        ["dead-letters", ..] => bail!("what to do with the dead letters? `vtag dead-letters retry`"),
        [other, ..] => bail!("unknown command {other:?}"),
    }
}

/// The read models (and their projectors) by the names the commands take.
const READ_MODELS: [&str; 3] = ["postgres", "opensearch", "neo4j"];

/// The words after `vtag replay`.
fn replay(raw: impl Iterator<Item = String>) -> anyhow::Result<Invocation> {
    let Some(read_model) = only_option(raw, "--read-model")? else { return Ok(Invocation::Help(REPLAY_USAGE)) };
    let read_model = read_model.context("which read model? `vtag replay --read-model opensearch`")?;
    match read_model.as_str() {
        m if READ_MODELS.contains(&m) => Ok(Invocation::Replay { read_model }),
        other => bail!("unknown read model {other:?}: postgres, opensearch or neo4j"),
    }
}

/// The words after `vtag dead-letters retry`.
fn retry_held(raw: impl Iterator<Item = String>) -> anyhow::Result<Invocation> {
    let Some(projector) = only_option(raw, "--projector")? else { return Ok(Invocation::Help(RETRY_USAGE)) };
    match projector.as_deref() {
        None => Ok(Invocation::RetryHeld { projector }),
        Some(p) if READ_MODELS.contains(&p) => Ok(Invocation::RetryHeld { projector }),
        Some(other) => bail!("unknown projector {other:?}: postgres, opensearch or neo4j"),
    }
}

/// The value of a command's one option (`--name value` or `--name=value`): None when help was
/// asked for, Some(None) when the option was not given.
fn only_option(mut raw: impl Iterator<Item = String>, name: &str) -> anyhow::Result<Option<Option<String>>> {
    let mut value = None;
    while let Some(arg) = raw.next() {
        match arg.split_once('=') {
            Some((flag, v)) if flag == name => value = Some(v.to_owned()),
            _ if arg == name => value = Some(raw.next().with_context(|| format!("{name} needs a value"))?),
            _ if arg == "-h" || arg == "--help" => return Ok(None),
            _ => bail!("unknown option {arg:?}"),
        }
    }
    Ok(Some(value))
}

/// The words after `vtag import focus`.
fn import_focus(mut raw: impl Iterator<Item = String>) -> anyhow::Result<Invocation> {
    let mut args = ImportFocus::default();
    let mut file = None;
    let mut only_files = false;
    while let Some(arg) = raw.next() {
        // after `--` a name that starts with '-' is a file
        if only_files || !arg.starts_with('-') {
            if file.is_some() {
                bail!("one file at a time: {arg:?} is a second one");
            }
            file = Some(PathBuf::from(arg));
            continue;
        }
        match arg.as_str() {
            "--" => {
                only_files = true;
                continue;
            }
            "-h" | "--help" => return Ok(Invocation::Help(IMPORT_FOCUS_USAGE)),
            "-q" | "--quiet" => {
                args.quiet = true;
                continue;
            }
            "--json" => {
                args.json = true;
                continue;
            }
            _ => {}
        }
        // both `--flag value` and `--flag=value`
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
            None => (arg, None),
        };
        let slot = match flag.as_str() {
            "--api" => &mut args.api,
            "--token" => &mut args.token,
            "--source" => &mut args.source,
            "--idempotency-key" => &mut args.idempotency_key,
            _ => bail!("unknown option {flag:?}"),
        };
        let value = inline.or_else(|| raw.next()).with_context(|| format!("{flag} needs a value"))?;
        *slot = Some(value);
    }
    args.file = file.context("which file? `vtag import focus FILE`")?;
    if let Some(key) = &args.idempotency_key {
        // the server's rule, checked before gigabytes are sent for nothing
        if key.is_empty() || key.len() > 200 || !key.bytes().all(|b| b.is_ascii_graphic()) {
            bail!("--idempotency-key must be 1 to 200 visible ASCII characters");
        }
    }
    Ok(Invocation::ImportFocus(args))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(line: &str) -> anyhow::Result<Invocation> {
        parse(line.split_whitespace().map(str::to_owned))
    }

    fn import(line: &str) -> ImportFocus {
        match parse_words(line).unwrap() {
            Invocation::ImportFocus(args) => args,
            other => panic!("{line}: {other:?}"),
        }
    }

    fn error(line: &str) -> String {
        format!("{:#}", parse_words(line).unwrap_err())
    }

    #[test]
    fn replay_names_a_read_model_that_can_be_rebuilt() {
        let replay = |line: &str| parse_words(line);
        assert_eq!(replay("replay --read-model opensearch").unwrap(), Invocation::Replay { read_model: "opensearch".into() });
        assert_eq!(replay("replay --read-model=opensearch").unwrap(), Invocation::Replay { read_model: "opensearch".into() });
        assert_eq!(replay("replay --help").unwrap(), Invocation::Help(REPLAY_USAGE));
        assert!(error("replay").contains("which read model"));
        assert_eq!(replay("replay --read-model neo4j").unwrap(), Invocation::Replay { read_model: "neo4j".into() });
        assert_eq!(replay("replay --read-model postgres").unwrap(), Invocation::Replay { read_model: "postgres".into() });
        assert!(error("replay --read-model mysql").contains("unknown read model"));
        assert!(error("replay --read-model opensearch --fast").contains("unknown option"));
    }

    #[test]
    fn dead_letters_retry_names_a_projector_or_every_one() {
        assert_eq!(parse_words("dead-letters retry").unwrap(), Invocation::RetryHeld { projector: None });
        assert_eq!(parse_words("dead-letters retry --projector neo4j").unwrap(), Invocation::RetryHeld { projector: Some("neo4j".into()) });
        assert_eq!(parse_words("dead-letters retry --projector=postgres").unwrap(), Invocation::RetryHeld { projector: Some("postgres".into()) });
        assert!(error("dead-letters retry --projector mysql").contains("unknown projector"));
        assert!(error("dead-letters").contains("dead-letters retry"));
        assert_eq!(parse_words("dead-letters retry --help").unwrap(), Invocation::Help(RETRY_USAGE));
    }

    #[test]
    fn help_and_version() {
        assert_eq!(parse_words("--help").unwrap(), Invocation::Help(USAGE));
        assert_eq!(parse_words("-h").unwrap(), Invocation::Help(USAGE));
        assert_eq!(parse_words("help").unwrap(), Invocation::Help(USAGE));
        assert_eq!(parse_words("--version").unwrap(), Invocation::Version);
        assert_eq!(parse_words("-V").unwrap(), Invocation::Version);
        for line in ["import focus --help", "import focus bill.csv -h", "import --help", "help import focus"] {
            assert_eq!(parse_words(line).unwrap(), Invocation::Help(IMPORT_FOCUS_USAGE), "{line}");
        }
    }

    #[test]
    fn import_focus_with_every_flag_in_both_spellings() {
        let args = import(
            "import focus --api http://h:1 --token=t0k --source oct.csv bill.csv --idempotency-key=k-1 --quiet --json",
        );
        assert_eq!(
            args,
            ImportFocus {
                file: "bill.csv".into(),
                api: Some("http://h:1".into()),
                token: Some("t0k".into()),
                source: Some("oct.csv".into()),
                idempotency_key: Some("k-1".into()),
                quiet: true,
                json: true,
            }
        );
    }

    #[test]
    fn import_focus_defaults_are_left_to_the_environment() {
        let args = import("import focus bill.csv.gz");
        assert_eq!(args, ImportFocus { file: "bill.csv.gz".into(), ..ImportFocus::default() });
    }

    #[test]
    fn a_file_named_like_a_flag_after_double_dash() {
        assert_eq!(import("import focus --quiet -- --odd.csv").file, PathBuf::from("--odd.csv"));
        // a value that starts with '-' is still a value
        assert_eq!(import("import focus f.csv --source -x").source.as_deref(), Some("-x"));
    }

    #[test]
    fn refusals_say_what_is_wrong() {
        assert!(error("").contains("no command"));
        assert!(error("frobnicate").contains("unknown command \"frobnicate\""));
        assert!(error("--frob").contains("unknown option \"--frob\""));
        assert!(error("import").contains("vtag import focus FILE"));
        assert!(error("import cur x.csv").contains("only `focus`"));
        assert!(error("import focus").contains("which file?"));
        assert!(error("import focus a.csv b.csv").contains("\"b.csv\" is a second one"));
        assert!(error("import focus a.csv --token").contains("--token needs a value"));
        assert!(error("import focus a.csv --tokn x").contains("unknown option \"--tokn\""));
        let long = "k".repeat(201);
        assert!(error(&format!("import focus a.csv --idempotency-key {long}")).contains("1 to 200 visible ASCII"));
        assert!(error("import focus a.csv --idempotency-key=").contains("1 to 200 visible ASCII"));
    }
}
