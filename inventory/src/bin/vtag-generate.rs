//! Writes a seeded synthetic inventory in the observe API's format; see `--help`.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::num::NonZeroUsize;
use std::ops::Range;
use std::process::ExitCode;
use std::sync::mpsc::{self, Receiver};
use std::thread;

use anyhow::{bail, Context};
use chrono::NaiveDate;
use flate2::write::GzEncoder;
use serde::Serialize;
use vtag_inventory::{format_amount, FocusConfig, FocusExport, Generator, GeneratorConfig};

const USAGE: &str = "\
vtag-generate: a seeded, deterministic synthetic AWS / Azure / GCP inventory for vtag

USAGE
    vtag-generate [--seed N] [--count N] [--format jsonl|observe-batches|focus] [--batch-size N]
                  [--truth FILE] [--accounts N] [--gzip] [focus options] [mess rates]

    --seed N          seed; the same seed gives byte-identical output (default 42)
    --count N         resources to generate (default 1000); resource i does not depend on N
    --format F        jsonl: one observe item per line (default)
                      observe-batches: one {\"resources\":[...]} request body per line, ready to
                      POST to /api/v1/resources/observe
                      focus: a FOCUS billing export (CSV) of resources 0..count, day by day;
                      its row count and exact totals go to standard error
    --batch-size N    resources per batch, 1 to 5000 (default 5000)
    --truth FILE      also write the ground truth, one {\"resource_id\", \"provider\", \"truth\"}
                      per line, in the same order
    --accounts N      AWS accounts, Azure subscriptions and GCP projects together (default 12)
    --gzip            gzip the output (the truth file stays plain)

  focus options:
    --first-day D     the first day billed, YYYY-MM-DD (default 2026-10-01)
    --days N          days billed (default 30); a range across months has a billing period each
    --billing-only N  also bill resources count..count+N, which the inventory never shows
                      (default 0)

  mess rates (probabilities, 0 to 1):
    --untagged R      a resource carries none of the taxonomy's tags (default 0.08)
    --missing R       a tag is missing (default 0.3)
    --messy-keys R    a key is spelled non-canonically (default 0.6)
    --messy-values R  a value is spelled non-canonically (default 0.5)
    --wrong R         a value is wrong or a placeholder (default 0.03)

    -h, --help        this text
";

/// The API refuses larger observe batches.
const MAX_BATCH: usize = 5000;

enum Format {
    Jsonl,
    ObserveBatches,
    Focus,
}

struct Args {
    config: GeneratorConfig,
    count: usize,
    format: Format,
    batch_size: usize,
    truth: Option<String>,
    gzip: bool,
    first_day: NaiveDate,
    days: u32,
    billing_only: usize,
}

#[derive(Serialize)]
struct TruthLine<'a> {
    resource_id: &'a str,
    provider: &'a str,
    truth: &'a std::collections::BTreeMap<String, String>,
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("vtag-generate: {e:#} (see --help)");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        // `vtag-generate | head` is a normal way to peek: a closed pipe is no failure
        Err(e) if e.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe) => {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vtag-generate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// None: help was asked for.
fn parse(mut raw: impl Iterator<Item = String>) -> anyhow::Result<Option<Args>> {
    let mut args = Args {
        config: GeneratorConfig::new(42),
        count: 1000,
        format: Format::Jsonl,
        batch_size: MAX_BATCH,
        truth: None,
        gzip: false,
        first_day: NaiveDate::from_ymd_opt(2026, 10, 1).expect("a valid date"),
        days: 30,
        billing_only: 0,
    };
    while let Some(arg) = raw.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(None);
        }
        // the one flag without a value
        if arg == "--gzip" {
            args.gzip = true;
            continue;
        }
        // both `--flag value` and `--flag=value`
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
            None => (arg, None),
        };
        let Some(value) = inline.or_else(|| raw.next()) else {
            bail!("{flag} needs a value");
        };
        let number = || value.parse::<u64>().with_context(|| format!("{flag}: {value:?} is not a whole number"));
        let rate = || value.parse::<f64>().with_context(|| format!("{flag}: {value:?} is not a number"));
        let mess = &mut args.config.mess;
        match flag.as_str() {
            "--seed" => args.config.seed = number()?,
            "--count" => args.count = number()? as usize,
            "--accounts" => args.config.accounts = number()? as usize,
            "--batch-size" => args.batch_size = number()? as usize,
            "--format" => {
                args.format = match value.as_str() {
                    "jsonl" => Format::Jsonl,
                    "observe-batches" => Format::ObserveBatches,
                    "focus" => Format::Focus,
                    other => bail!("--format: {other:?} is none of jsonl, observe-batches and focus"),
                }
            }
            "--truth" => args.truth = Some(value),
            "--first-day" => {
                args.first_day = NaiveDate::parse_from_str(&value, "%Y-%m-%d")
                    .with_context(|| format!("{flag}: {value:?} is not a YYYY-MM-DD date"))?
            }
            "--days" => args.days = u32::try_from(number()?).with_context(|| format!("{flag}: {value} is too many"))?,
            "--billing-only" => args.billing_only = number()? as usize,
            "--untagged" => mess.untagged = rate()?,
            "--missing" => mess.missing = rate()?,
            "--messy-keys" => mess.messy_keys = rate()?,
            "--messy-values" => mess.messy_values = rate()?,
            "--wrong" => mess.wrong = rate()?,
            other => bail!("unknown option {other}"),
        }
    }
    if !(1..=MAX_BATCH).contains(&args.batch_size) {
        bail!("--batch-size must be between 1 and {MAX_BATCH}");
    }
    if matches!(args.format, Format::Focus) && args.truth.is_some() {
        bail!("--truth goes with the inventory formats, not with focus");
    }
    Ok(Some(args))
}

/// Resources per unit of work: big enough to amortize the hand-over, small enough to keep memory flat.
const CHUNK: usize = 4096;

/// A run of consecutive resources, rendered.
struct Chunk {
    items: Vec<u8>,
    truth: Vec<u8>,
}

/// Every resource is a pure function of its index, so chunks are rendered on all cores and
/// written in order; each worker has at most two chunks waiting, which bounds memory.
fn run(args: Args) -> anyhow::Result<()> {
    let generator = Generator::new(args.config.clone())?;
    let mut out = Output::stdout(args.gzip);
    if let Format::Focus = args.format {
        return focus(&generator, &args, out);
    }
    let mut truth = match &args.truth {
        Some(path) => Some(BufWriter::new(File::create(path).with_context(|| format!("creating {path}"))?)),
        None => None,
    };
    let workers = thread::available_parallelism().map_or(1, NonZeroUsize::get);
    thread::scope(|scope| -> anyhow::Result<()> {
        let chunks: Vec<Receiver<Chunk>> = (0..workers)
            .map(|w| {
                let (tx, rx) = mpsc::sync_channel(2);
                let (generator, args) = (&generator, &args);
                scope.spawn(move || {
                    for start in (w * CHUNK..args.count).step_by(workers * CHUNK) {
                        // a send fails only when the writer gave up (closed pipe): stop quietly
                        if tx.send(render(generator, args, start..args.count.min(start + CHUNK))).is_err() {
                            return;
                        }
                    }
                });
                rx
            })
            .collect();
        for k in 0..args.count.div_ceil(CHUNK) {
            let chunk = chunks[k % workers].recv().context("a generator thread died")?;
            out.write_all(&chunk.items)?;
            if let Some(t) = &mut truth {
                t.write_all(&chunk.truth)?;
            }
        }
        Ok(())
    })?;
    out.finish()?;
    if let Some(mut t) = truth {
        t.flush().context("writing the truth file")?;
    }
    Ok(())
}

/// The export streams from one thread: each billing account's tax follows from all of its
/// resources' charges, and it writes fast enough as it is.
fn focus(generator: &Generator, args: &Args, mut out: Output) -> anyhow::Result<()> {
    let (resources, billing_only, first_day, days) = (args.count, args.billing_only, args.first_day, args.days);
    let config = FocusConfig { resources, billing_only, first_day, days };
    let totals = FocusExport::new(generator, config)?.write_csv(&mut out)?;
    out.finish()?;
    eprintln!(
        "vtag-generate: {} FOCUS rows; billed {} USD (effective {}, list {}, without a resource {})",
        totals.rows,
        format_amount(totals.billed),
        format_amount(totals.effective),
        format_amount(totals.list),
        format_amount(totals.unallocatable_billed),
    );
    Ok(())
}

/// Standard output, buffered, gzipped or not.
enum Output {
    Plain(BufWriter<io::StdoutLock<'static>>),
    Gzip(GzEncoder<BufWriter<io::StdoutLock<'static>>>),
}

impl Output {
    fn stdout(gzip: bool) -> Self {
        let plain = BufWriter::with_capacity(1 << 20, io::stdout().lock());
        // the fastest level: a benchmark file compresses about as well, in a fraction of the time
        if gzip {
            Self::Gzip(GzEncoder::new(plain, flate2::Compression::fast()))
        } else {
            Self::Plain(plain)
        }
    }

    /// Flushes, and writes gzip's trailer (which dropping would write without reporting errors).
    fn finish(self) -> io::Result<()> {
        match self {
            Self::Plain(mut w) => w.flush(),
            Self::Gzip(w) => w.finish()?.flush(),
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(w) => w.write(buf),
            Self::Gzip(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(w) => w.flush(),
            Self::Gzip(w) => w.flush(),
        }
    }
}

fn render(generator: &Generator, args: &Args, indexes: Range<usize>) -> Chunk {
    let mut chunk = Chunk { items: Vec::with_capacity(indexes.len() * 600), truth: Vec::new() };
    for i in indexes {
        let r = generator.resource(i as u64);
        let items = &mut chunk.items;
        match args.format {
            Format::Jsonl => {
                serde_json::to_writer(&mut *items, &r.observed).expect("serializing to memory");
                items.push(b'\n');
            }
            Format::ObserveBatches => {
                let first = i % args.batch_size == 0;
                let last = (i + 1) % args.batch_size == 0 || i + 1 == args.count;
                items.extend_from_slice(if first { b"{\"resources\":[" } else { b"," });
                serde_json::to_writer(&mut *items, &r.observed).expect("serializing to memory");
                if last {
                    items.extend_from_slice(b"]}\n");
                }
            }
            Format::Focus => unreachable!("FOCUS exports are not rendered per resource"),
        }
        if args.truth.is_some() {
            let line = TruthLine { resource_id: &r.observed.resource_id, provider: r.observed.provider, truth: &r.truth };
            serde_json::to_writer(&mut chunk.truth, &line).expect("serializing to memory");
            chunk.truth.push(b'\n');
        }
    }
    chunk
}
