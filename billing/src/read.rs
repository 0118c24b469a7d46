//! Reading a FOCUS CSV export (plain or gzip) into ledgers, and the row checks every format's
//! reader folds its rows through ([`Folder`], over any [`Record`]). The whole file is read and
//! checked before anything is returned, so a bad row anywhere refuses the whole file: an import is
//! all or nothing.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc::{self, Receiver, SyncSender};

use chrono::{NaiveDate, NaiveDateTime};
use csv::ByteRecord;
use vtag_domain::{CloudResourceId, NativeTags, Provider, ResourceDescription};
use flate2::bufread::MultiGzDecoder;

use crate::amount::Amount;
use crate::charge::{is_currency, parse_instant, ChargeCategory};
use crate::columns::{Column, Layout};
use crate::error::ImportError;
use crate::ledger::{BilledResource, Costs, FastMap, Ledger, LedgerBuilder, LedgerKey};

/// What a file held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingFile {
    /// In order of first appearance.
    pub ledgers: Vec<Ledger>,
    pub rows: u64,
    /// Amounts with more than ten fractional digits, rounded half to even.
    pub rounded_amounts: u64,
}

/// Records handed from the splitting thread to the folding one at a time: large enough that the
/// hand-over costs nothing per row, small enough that both threads start at once.
const BATCH: usize = 1024;

/// Batches in flight between the two threads (each holds its records' buffers for reuse).
const IN_FLIGHT: usize = 4;

/// A batch of records split from the file; `len` of them are this batch's (the rest are buffers
/// kept from earlier batches).
struct Batch {
    records: Vec<ByteRecord>,
    len: usize,
}

/// Reads a FOCUS CSV, gzip-compressed or not (told apart by the gzip magic bytes). `progress` is
/// called now and then with the count of rows read so far.
///
/// Two threads: one decompresses and splits the bytes into records, the other checks and folds
/// them — the two halves of the work cost about the same, and an import waits for both.
pub fn read_focus_csv(input: impl Read + Send, mut progress: impl FnMut(u64)) -> Result<BillingFile, ImportError> {
    let mut buffered = BufReader::with_capacity(1 << 16, input);
    let magic = buffered.fill_buf().map_err(io_error)?;
    let gzip = magic.starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn Read + Send> = if gzip { Box::new(MultiGzDecoder::new(buffered)) } else { Box::new(buffered) };
    let mut csv = csv::ReaderBuilder::new().has_headers(true).flexible(false).from_reader(reader);
    let header = csv.byte_headers().map_err(csv_error)?.clone();
    if header.is_empty() || (header.len() == 1 && header[0].is_empty()) {
        return Err(ImportError::file("empty", "the file is empty: expected a FOCUS header row"));
    }
    let names: Vec<&str> = header
        .iter()
        .map(std::str::from_utf8)
        .collect::<Result<_, _>>()
        .map_err(|_| ImportError::file("encoding", "the header row is not UTF-8"))?;
    let layout = Layout::from_header(names)?;

    let mut folder = Folder::new(layout);
    let rows = std::thread::scope(|scope| {
        let (full_tx, full_rx) = mpsc::sync_channel::<Result<Batch, ImportError>>(IN_FLIGHT);
        let (empty_tx, empty_rx) = mpsc::channel::<Batch>();
        scope.spawn(move || split_records(csv, &full_tx, &empty_rx));
        let mut row = 0u64;
        // A failure returns at once: dropping the receiver stops the splitting thread at its next
        // batch.
        for batch in full_rx {
            let batch = batch?;
            for record in &batch.records[..batch.len] {
                row += 1;
                let line = record.position().map_or(0, |p| p.line());
                folder.fold(record, row, Some(line))?;
            }
            if row % 65_536 < BATCH as u64 {
                progress(row);
            }
            let _ = empty_tx.send(batch);
        }
        Ok::<_, ImportError>(row)
    })?;
    progress(rows);
    if rows == 0 {
        return Err(ImportError::file("empty", "the file has a header but no rows"));
    }
    Ok(folder.finish(rows))
}

/// The splitting thread: records in batches until the file ends, a record is malformed, or the
/// folding side stops listening.
fn split_records<R: Read>(mut csv: csv::Reader<R>, full: &SyncSender<Result<Batch, ImportError>>, empty: &Receiver<Batch>) {
    loop {
        let mut batch = empty.try_recv().unwrap_or_else(|_| Batch { records: vec![ByteRecord::new(); BATCH], len: 0 });
        batch.len = 0;
        while batch.len < BATCH {
            match csv.read_byte_record(&mut batch.records[batch.len]) {
                Ok(true) => batch.len += 1,
                Ok(false) => {
                    let _ = full.send(Ok(batch));
                    return;
                }
                Err(e) => {
                    // The rows before the bad one are folded first: an earlier bad cell is the
                    // error to report.
                    if batch.len > 0 && full.send(Ok(batch)).is_err() {
                        return;
                    }
                    let _ = full.send(Err(csv_error(e)));
                    return;
                }
            }
        }
        if full.send(Ok(batch)).is_err() {
            return;
        }
    }
}

pub(crate) fn io_error(e: std::io::Error) -> ImportError {
    ImportError::file("unreadable", format!("the file could not be read: {e}"))
}

fn csv_error(e: csv::Error) -> ImportError {
    let (row, line) = e.position().map_or((None, None), |p| (Some(p.record()), Some(p.line())));
    let (rule, message) = match e.kind() {
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            ("field_count", format!("the row has {len} fields but the header has {expected_len}"))
        }
        csv::ErrorKind::Utf8 { .. } => ("encoding", "the row is not valid UTF-8".to_owned()),
        csv::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::InvalidInput || io.kind() == std::io::ErrorKind::InvalidData => {
            ("compression", format!("the gzip stream is corrupt: {io}"))
        }
        _ => ("csv", e.to_string()),
    };
    ImportError { row, line, column: None, rule, message }
}

/// A row's cells by their position in the header, whatever the file's format.
pub(crate) trait Record {
    /// The cell's bytes as the file holds them ("" past the row's end).
    fn cell(&self, i: usize) -> &[u8];
}

impl Record for ByteRecord {
    fn cell(&self, i: usize) -> &[u8] {
        self.get(i).unwrap_or_default()
    }
}

/// Checks rows and folds them into ledgers.
pub(crate) struct Folder {
    layout: Layout,
    instants: Instants,
    books: Books,
    rounded: u64,
}

#[derive(Default)]
struct Books {
    ledgers: Vec<LedgerBuilder>,
    index: FastMap<LedgerKey, usize>,
    /// Rows come grouped by account and period: most rows hit the previous row's ledger.
    last: Option<usize>,
}

/// The last date-time text seen in each of the four date columns, and what it meant.
#[derive(Default)]
struct Instants([Option<(String, NaiveDateTime)>; 4]);

impl Instants {
    fn slot(column: Column) -> usize {
        match column {
            Column::BillingPeriodStart => 0,
            Column::BillingPeriodEnd => 1,
            Column::ChargePeriodStart => 2,
            _ => 3,
        }
    }
}

/// One row being read, for errors that name its cells.
struct Cells<'r> {
    layout: &'r Layout,
    record: &'r dyn Record,
    row: u64,
    /// None where the format has no lines (Parquet).
    line: Option<u64>,
}

impl<'r> Cells<'r> {
    fn error(&self, column: Column, rule: &'static str, message: impl Into<String>) -> ImportError {
        ImportError { line: self.line, ..ImportError::cell(self.row, 0, self.layout.name(column), rule, message) }
    }

    /// The cell's bytes as the file holds them (empty for an absent optional column).
    fn raw(&self, column: Column) -> &'r [u8] {
        self.layout.position(column).map_or(&[], |i| self.record.cell(i))
    }

    /// The cell's text, trimmed ("" for an absent optional column).
    fn text(&self, column: Column) -> Result<&'r str, ImportError> {
        std::str::from_utf8(self.raw(column)).map(trim).map_err(|_| self.error(column, "encoding", "is not valid UTF-8"))
    }

    fn required(&self, column: Column) -> Result<&'r str, ImportError> {
        let text = self.text(column)?;
        if text.is_empty() {
            return Err(self.error(column, "required", format!("{} must not be empty", self.layout.name(column))));
        }
        Ok(text)
    }

    /// Consecutive rows mostly repeat their dates: the last text seen per column is remembered.
    fn instant(&self, column: Column, seen: &mut Instants) -> Result<NaiveDateTime, ImportError> {
        let text = self.required(column)?;
        let slot = &mut seen.0[Instants::slot(column)];
        if let Some((_, at)) = slot.as_ref().filter(|(raw, _)| raw == text) {
            return Ok(*at);
        }
        let at = parse_instant(text).ok_or_else(|| {
            self.error(column, "date", format!("'{text}' is not an ISO 8601 date-time (e.g. 2026-10-01T00:00:00Z)"))
        })?;
        *slot = Some((text.to_owned(), at));
        Ok(at)
    }

    fn amount(&self, column: Column, optional: bool, rounded: &mut u64) -> Result<Amount, ImportError> {
        let text = self.text(column)?;
        if text.is_empty() && optional {
            return Ok(Amount::ZERO);
        }
        if text.is_empty() {
            return Err(self.error(column, "required", format!("{} must not be empty", self.layout.name(column))));
        }
        let parsed = Amount::parse(text).map_err(|why| self.error(column, "number", format!("'{text}' {why}")))?;
        *rounded += u64::from(parsed.rounded);
        Ok(parsed.amount)
    }
}

impl Folder {
    pub(crate) fn new(layout: Layout) -> Self {
        Self { layout, instants: Instants::default(), books: Books::default(), rounded: 0 }
    }

    /// The ledgers of a file of `rows` rows, all folded.
    pub(crate) fn finish(self, rows: u64) -> BillingFile {
        let ledgers = self.books.ledgers.into_iter().map(LedgerBuilder::finish).collect();
        BillingFile { ledgers, rows, rounded_amounts: self.rounded }
    }

    /// Checks row `row` (1-based; `line` where it starts, for formats that have lines) and adds
    /// its charge to its ledger.
    pub(crate) fn fold(&mut self, record: &dyn Record, row: u64, line: Option<u64>) -> Result<(), ImportError> {
        let cells = Cells { layout: &self.layout, record, row, line };
        let provider_name = cells.required(Column::Provider)?;
        let account = cells.required(Column::BillingAccountId)?;
        let period_start = cells.instant(Column::BillingPeriodStart, &mut self.instants)?;
        let period_end = cells.instant(Column::BillingPeriodEnd, &mut self.instants)?;
        if period_end <= period_start {
            return Err(cells.error(Column::BillingPeriodEnd, "period", "BillingPeriodEnd must be after BillingPeriodStart"));
        }
        let charge_start = cells.instant(Column::ChargePeriodStart, &mut self.instants)?;
        let charge_end = cells.instant(Column::ChargePeriodEnd, &mut self.instants)?;
        if charge_end < charge_start {
            return Err(cells.error(Column::ChargePeriodEnd, "period", "ChargePeriodEnd must not be before ChargePeriodStart"));
        }
        let currency = cells.required(Column::BillingCurrency)?;
        if !is_currency(currency) {
            return Err(cells.error(Column::BillingCurrency, "currency", format!("'{currency}' is not an ISO 4217 currency code")));
        }
        let category_text = cells.required(Column::ChargeCategory)?;
        let category = ChargeCategory::parse(category_text).ok_or_else(|| {
            cells.error(
                Column::ChargeCategory,
                "one_of",
                format!("'{category_text}' is not one of Usage, Purchase, Tax, Credit, Adjustment"),
            )
        })?;
        let costs = Costs {
            billed: cells.amount(Column::BilledCost, false, &mut self.rounded)?,
            effective: cells.amount(Column::EffectiveCost, false, &mut self.rounded)?,
            list: cells.amount(Column::ListCost, true, &mut self.rounded)?,
        };
        let resource_id = cells.text(Column::ResourceId)?;
        let service_name = cells.text(Column::ServiceName)?;
        let sub_account = cells.text(Column::SubAccountId)?;
        let day = charge_start.date();

        let ledger = self.books.ledger(provider_name, account, period_start.date());
        let builder = &mut self.books.ledgers[ledger];
        if builder.rows == 0 {
            builder.period_end = Some(period_end.date());
            builder.currency = currency.to_owned();
            builder.billing_account_name = cells.text(Column::BillingAccountName)?.to_owned();
        } else {
            if builder.period_end != Some(period_end.date()) {
                return Err(cells.error(
                    Column::BillingPeriodEnd,
                    "period",
                    format!("rows of billing account {account} for the period starting {} disagree on its end", period_start.date()),
                ));
            }
            if builder.currency != currency {
                return Err(cells.error(
                    Column::BillingCurrency,
                    "currency",
                    format!("billing account {account} is billed in {} on earlier rows of this period, {currency} here", builder.currency),
                ));
            }
        }
        builder.rows += 1;
        let service = builder.service(service_name);

        match (resource_id.is_empty(), builder.cloud) {
            (true, _) => builder.add_pool(day, category, service, sub_account, "no resource id", costs),
            (false, None) => builder.add_pool(day, category, service, sub_account, "provider has no vtag resources", costs),
            (false, Some(provider)) => {
                let (slot, new) = builder.resource(resource_id, || BilledResource {
                    provider,
                    cloud_id: resource_id.to_owned(),
                    sub_account: sub_account.to_owned(),
                    region: String::new(),
                    resource_type: String::new(),
                    name: String::new(),
                    tags: BTreeMap::new(),
                    tags_as_of: day,
                });
                if new {
                    builder.resources[slot as usize] = described(&cells, provider, resource_id, sub_account, day)?;
                }
                // Most rows repeat their resource's Tags cell byte for byte: only a changed cell
                // is checked and parsed. The latest charge day's tags win.
                let slot_index = slot as usize;
                if cells.raw(Column::Tags) != builder.raw_tags[slot_index].as_bytes() {
                    let tags = cells.text(Column::Tags)?;
                    let parsed = parse_tags(tags).map_err(|why| cells.error(Column::Tags, "json", why))?;
                    let resource = &mut builder.resources[slot_index];
                    if day >= resource.tags_as_of {
                        if let Err((key, e)) = NativeTags::parse(parsed.clone()) {
                            let key = key.map(|k| format!("tag '{k}': ")).unwrap_or_default();
                            return Err(cells.error(Column::Tags, e.rule, format!("{key}{}", e.message)));
                        }
                        resource.tags = parsed;
                        resource.tags_as_of = day;
                        builder.raw_tags[slot_index] = String::from_utf8_lossy(cells.raw(Column::Tags)).into_owned();
                    }
                }
                if !builder.add_line(slot, day, category, service, costs) {
                    return Err(cells.error(
                        Column::BilledCost,
                        "range",
                        format!("{resource_id} costs more than {} on {day} (the most one resource can cost in a day)", Amount::LINE_LIMIT),
                    ));
                }
            }
        }
        Ok(())
    }
}

impl Books {
    fn ledger(&mut self, provider_name: &str, account: &str, period_start: NaiveDate) -> usize {
        if let Some(i) = self.last {
            let k = self.ledgers[i].key.as_ref().expect("keyed");
            if k.period_start == period_start && k.billing_account_id == account && k.provider_name == provider_name {
                return i;
            }
        }
        let key = LedgerKey {
            provider_name: provider_name.to_owned(),
            billing_account_id: account.to_owned(),
            period_start,
        };
        let i = match self.index.get(&key) {
            Some(i) => *i,
            None => {
                let i = self.ledgers.len();
                self.ledgers.push(LedgerBuilder::new(key.clone()));
                self.index.insert(key, i);
                i
            }
        };
        self.last = Some(i);
        i
    }
}

/// A resource first seen on this row, its attributes checked as an observation's would be.
fn described(cells: &Cells<'_>, provider: Provider, id: &str, sub_account: &str, day: NaiveDate) -> Result<BilledResource, ImportError> {
    CloudResourceId::parse(id).map_err(|e| cells.error(Column::ResourceId, e.rule, e.message))?;
    let region = cells.text(Column::RegionId)?;
    // Billing rows describe resources thinly; a resource known only from billing still needs a
    // type and a name to be listed and matched by rules.
    let resource_type = non_empty(cells.text(Column::ResourceType)?, "unknown");
    let name = non_empty(cells.text(Column::ResourceName)?, id.rsplit(['/', ':']).next().unwrap_or(id));
    let sub_account = non_empty(sub_account, cells.text(Column::BillingAccountId)?);
    let checked = ResourceDescription::parse(
        sub_account.to_owned(),
        region.to_owned(),
        resource_type.to_owned(),
        name.to_owned(),
        BTreeMap::new(),
    );
    if let Err((attribute, e)) = checked {
        let column = match attribute.as_str() {
            "account" => Column::SubAccountId,
            "region" => Column::RegionId,
            "type" => Column::ResourceType,
            _ => Column::ResourceName,
        };
        return Err(cells.error(column, e.rule, e.message));
    }
    Ok(BilledResource {
        provider,
        cloud_id: id.to_owned(),
        sub_account: sub_account.to_owned(),
        region: region.to_owned(),
        resource_type: resource_type.to_owned(),
        name: name.to_owned(),
        tags: BTreeMap::new(),
        tags_as_of: day,
    })
}

/// `str::trim`, with the common case (nothing to trim) decided on two bytes.
fn trim(text: &str) -> &str {
    match text.as_bytes() {
        [first, .., last] if first.is_ascii_graphic() && last.is_ascii_graphic() => text,
        _ => text.trim(),
    }
}

fn non_empty<'a>(text: &'a str, otherwise: &'a str) -> &'a str {
    if text.is_empty() {
        otherwise
    } else {
        text
    }
}

/// The Tags cell: a JSON object of string values (FOCUS). Empty means no tags.
fn parse_tags(text: &str) -> Result<BTreeMap<String, String>, String> {
    if text.is_empty() {
        return Ok(BTreeMap::new());
    }
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("Tags is not valid JSON: {e}"))?;
    let serde_json::Value::Object(map) = value else {
        return Err("Tags must be a JSON object of string values".to_owned());
    };
    map.into_iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => Ok((k, s)),
            other => Err(format!("Tags value of '{k}' must be a string, found {other}")),
        })
        .collect()
}
