//! Reading a FOCUS Parquet export into ledgers, through the very row checks CSV goes through: each
//! cell is rendered as the text a CSV export would hold for it (decimals exactly, dates and times
//! as ISO 8601 UTC, a Tags map as a JSON object, null as an empty cell), so both formats accept and
//! refuse alike. Only the columns vtag reads are decoded, a batch of rows at a time.

use std::io::{Read, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};

use ::parquet::basic::{Compression, ConvertedType, LogicalType, Repetition, TimeUnit, Type as Physical};
use ::parquet::column::reader::{ColumnReader, ColumnReaderImpl};
use ::parquet::data_type::{
    BoolType, ByteArray, ByteArrayType, DoubleType, FixedLenByteArray, FixedLenByteArrayType, FloatType, Int32Type, Int64Type, Int96,
    Int96Type,
};
use ::parquet::errors::ParquetError;
use ::parquet::file::metadata::ParquetMetaData;
use ::parquet::file::reader::{FileReader, RowGroupReader, SerializedFileReader};
use ::parquet::schema::types::{ColumnDescriptor, SchemaDescriptor, Type};
use bytes::Bytes;
use chrono::{DateTime, NaiveDate, TimeDelta};

use crate::columns::{Column, Layout};
use crate::error::ImportError;
use crate::read::{io_error, read_focus_csv, BillingFile, Folder, Record};

/// What a Parquet file starts (and ends) with.
const MAGIC: &[u8] = b"PAR1";

/// Rows decoded at a time: bounds memory whatever the size of a file's row groups.
const BATCH: usize = 4096;

/// Reads a FOCUS export in whichever format it is — Parquet when it starts with Parquet's magic
/// bytes, CSV (plain or gzip) otherwise — from a stream: clients' content types vary too much to
/// trust. CSV is read as it streams; a Parquet file is collected first.
pub fn read_focus(mut input: impl Read + Send, progress: impl FnMut(u64)) -> Result<BillingFile, ImportError> {
    let mut magic = [0u8; 4];
    let mut got = 0;
    while got < magic.len() {
        match input.read(&mut magic[got..]).map_err(io_error)? {
            0 => break,
            n => got += n,
        }
    }
    let head = &magic[..got];
    if head == MAGIC {
        // Parquet's footer comes last: the file is needed whole.
        let mut all = head.to_vec();
        input.read_to_end(&mut all).map_err(io_error)?;
        return read_focus_parquet(Bytes::from(all), progress);
    }
    read_focus_csv(head.chain(input), progress)
}

/// Reads a FOCUS Parquet export: the columns are found by the names of the schema's top-level
/// fields, as CSV's by its header. Rows are numbered from 1 across row groups. `progress` is
/// called now and then with the count of rows read so far.
pub fn read_focus_parquet(bytes: Bytes, mut progress: impl FnMut(u64)) -> Result<BillingFile, ImportError> {
    // parquet has panicked on corrupt input where it should have returned an error (its decoders
    // trust the lengths and offsets a file states); an uploaded file must be refused, not take the
    // importing task down. Nothing outlives a failed read, so no broken state can be observed.
    catch_unwind(AssertUnwindSafe(|| read(bytes, &mut progress))).unwrap_or_else(|panic| {
        let why = panic.downcast_ref::<&str>().map(|s| (*s).to_owned()).or_else(|| panic.downcast_ref::<String>().cloned());
        Err(corrupt(why.unwrap_or_else(|| "the reader failed".to_owned())))
    })
}

fn read(bytes: Bytes, progress: &mut dyn FnMut(u64)) -> Result<BillingFile, ImportError> {
    let file = SerializedFileReader::new(bytes).map_err(|e| ImportError::file("parquet", format!("the file is not valid Parquet: {e}")))?;
    let metadata = file.metadata();
    let schema = metadata.file_metadata().schema_descr();
    let fields = schema.root_schema().get_fields();
    let layout = Layout::from_header(fields.iter().map(|f| f.name()))?;
    let mut used: Vec<usize> = READ.iter().filter_map(|c| layout.position(*c)).collect();
    used.sort_unstable();
    let plans: Vec<Plan> = used.iter().map(|&field| plan(schema, field)).collect::<Result<_, _>>()?;
    check_codecs(metadata, &plans)?;

    let mut folder = Folder::new(layout);
    let mut cells = RowCells { cells: vec![Vec::new(); fields.len()] };
    let mut row = 0u64;
    for group in 0..metadata.num_row_groups() {
        let reader = file.get_row_group(group).map_err(parquet_error)?;
        let mut sources: Vec<Source> = plans.iter().map(|p| p.open(&*reader)).collect::<Result<_, _>>()?;
        let mut left = usize::try_from(metadata.row_group(group).num_rows())
            .map_err(|_| corrupt(format!("row group {} has a negative row count", group + 1)))?;
        while left > 0 {
            let n = left.min(BATCH);
            for source in &mut sources {
                source.read(n).map_err(|why| corrupt(format!("row group {}, column {}: {why}", group + 1, source.name)))?;
            }
            for _ in 0..n {
                row += 1;
                for source in &mut sources {
                    let cell = &mut cells.cells[source.field];
                    cell.clear();
                    source.next(cell).map_err(|(rule, why)| cell_error(row, &source.name, rule, why))?;
                }
                folder.fold(&cells, row, None)?;
                if row.is_multiple_of(65_536) {
                    progress(row);
                }
            }
            left -= n;
        }
    }
    progress(row);
    if row == 0 {
        return Err(ImportError::file("empty", "the file has no rows"));
    }
    Ok(folder.finish(row))
}

/// Every column the row checks may read: only these are decoded. `Layout` keeps its own list to
/// itself; the exhaustive match in `place` (tests) stops the build when a column is added, and
/// its test then fails until the column is listed here too.
const READ: [Column; 20] = [
    Column::BilledCost,
    Column::EffectiveCost,
    Column::ListCost,
    Column::BillingCurrency,
    Column::BillingAccountId,
    Column::BillingAccountName,
    Column::BillingPeriodStart,
    Column::BillingPeriodEnd,
    Column::ChargePeriodStart,
    Column::ChargePeriodEnd,
    Column::ChargeCategory,
    Column::ChargeDescription,
    Column::Provider,
    Column::ResourceId,
    Column::ResourceName,
    Column::ResourceType,
    Column::RegionId,
    Column::ServiceName,
    Column::SubAccountId,
    Column::Tags,
];

/// Where a column is in [`READ`].
#[cfg(test)]
fn place(column: Column) -> usize {
    use Column::*;
    match column {
        BilledCost => 0,
        EffectiveCost => 1,
        ListCost => 2,
        BillingCurrency => 3,
        BillingAccountId => 4,
        BillingAccountName => 5,
        BillingPeriodStart => 6,
        BillingPeriodEnd => 7,
        ChargePeriodStart => 8,
        ChargePeriodEnd => 9,
        ChargeCategory => 10,
        ChargeDescription => 11,
        Provider => 12,
        ResourceId => 13,
        ResourceName => 14,
        ResourceType => 15,
        RegionId => 16,
        ServiceName => 17,
        SubAccountId => 18,
        Tags => 19,
    }
}

fn corrupt(why: impl std::fmt::Display) -> ImportError {
    ImportError::file("parquet", format!("the Parquet file is corrupt: {why}"))
}

fn parquet_error(e: ParquetError) -> ImportError {
    corrupt(e)
}

fn cell_error(row: u64, column: &str, rule: &'static str, message: String) -> ImportError {
    // Parquet rows have no line.
    ImportError { line: None, ..ImportError::cell(row, 0, column, rule, message) }
}

/// One row's cells, rendered as text, at the positions of the schema's top-level fields (those
/// vtag does not read stay empty).
struct RowCells {
    cells: Vec<Vec<u8>>,
}

impl Record for RowCells {
    fn cell(&self, i: usize) -> &[u8] {
        self.cells.get(i).map_or(&[], Vec::as_slice)
    }
}

/// How a primitive column's values are written as text.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Text {
    /// Bytes as they are (strings, JSON, enums; checked as UTF-8 like a CSV cell).
    Raw,
    Bool,
    Int,
    /// Unsigned integers, stored in INT32/INT64 bits.
    UInt,
    /// Shortest text that reads back as the same float.
    Float,
    /// An exact decimal of that scale.
    Decimal(i32),
    /// Days since 1970-01-01.
    Date,
    /// Since 1970-01-01T00:00:00, taken as UTC as a CSV date-time without a zone is.
    Timestamp(TimeUnit),
    /// Legacy (Spark, Hive, Impala) nanosecond timestamps: Julian day and nanoseconds of the day.
    Int96,
}

/// How one top-level field becomes a cell.
struct Plan {
    field: usize,
    name: String,
    shape: Shape,
}

enum Shape {
    /// One value or null per row.
    Flat { leaf: usize, text: Text },
    /// A MAP<string, string> (Tags), written as a JSON object. `present` is the definition level
    /// of a map that is not null, `entry` that of a map entry.
    Map { keys: usize, values: usize, present: i16, entry: i16 },
}

fn plan(schema: &SchemaDescriptor, field: usize) -> Result<Plan, ImportError> {
    let root = &schema.root_schema().get_fields()[field];
    let name = root.name().to_owned();
    let leaves: Vec<usize> = (0..schema.num_columns()).filter(|&i| schema.get_column_root_idx(i) == field).collect();
    let unreadable = |what: String| ImportError::column(&name, "type", format!("column {name} {what}"));
    let shape = if root.is_primitive() {
        let descr = schema.column(leaves[0]);
        if descr.max_rep_level() > 0 {
            return Err(unreadable("repeats its values: vtag reads one value per row".to_owned()));
        }
        let Some(text) = text_of(&descr) else {
            return Err(unreadable(format!("has the Parquet type {}, which vtag cannot read", type_name(&descr))));
        };
        Shape::Flat { leaf: leaves[0], text }
    } else {
        let Some(map) = map_shape(schema, root, &leaves) else {
            return Err(unreadable("is nested: vtag reads only text, numbers, dates and maps of strings".to_owned()));
        };
        map
    };
    Ok(Plan { field, name, shape })
}

/// The text a primitive column is read as, or None for types FOCUS does not use for the columns
/// vtag reads (times of day, intervals, UUIDs, …).
fn text_of(descr: &ColumnDescriptor) -> Option<Text> {
    use Physical::*;
    let physical = descr.physical_type();
    // Writers since format 2.4 state a logical type; older ones only a converted type.
    if let Some(logical) = descr.logical_type_ref() {
        return match (physical, logical) {
            (BYTE_ARRAY, LogicalType::String | LogicalType::Json | LogicalType::Enum) => Some(Text::Raw),
            (INT32 | INT64 | BYTE_ARRAY | FIXED_LEN_BYTE_ARRAY, LogicalType::Decimal(d)) => Some(Text::Decimal(d.scale)),
            (INT32 | INT64, LogicalType::Integer(i)) => Some(if i.is_signed { Text::Int } else { Text::UInt }),
            (INT32, LogicalType::Date) => Some(Text::Date),
            (INT64, LogicalType::Timestamp(t)) => Some(Text::Timestamp(t.unit)),
            _ => None,
        };
    }
    use ConvertedType as C;
    match (physical, descr.converted_type()) {
        (BYTE_ARRAY, C::NONE | C::UTF8 | C::JSON | C::ENUM) => Some(Text::Raw),
        (BOOLEAN, C::NONE) => Some(Text::Bool),
        (INT32 | INT64, C::NONE | C::INT_8 | C::INT_16 | C::INT_32 | C::INT_64) => Some(Text::Int),
        (INT32 | INT64, C::UINT_8 | C::UINT_16 | C::UINT_32 | C::UINT_64) => Some(Text::UInt),
        (INT32 | INT64 | BYTE_ARRAY | FIXED_LEN_BYTE_ARRAY, C::DECIMAL) => Some(Text::Decimal(descr.type_scale())),
        (INT32, C::DATE) => Some(Text::Date),
        (INT64, C::TIMESTAMP_MILLIS) => Some(Text::Timestamp(TimeUnit::MILLIS)),
        (INT64, C::TIMESTAMP_MICROS) => Some(Text::Timestamp(TimeUnit::MICROS)),
        (INT96, C::NONE) => Some(Text::Int96),
        (FLOAT | DOUBLE, C::NONE) => Some(Text::Float),
        _ => None,
    }
}

fn type_name(descr: &ColumnDescriptor) -> String {
    match descr.logical_type_ref() {
        Some(logical) => format!("{} ({logical:?})", descr.physical_type()),
        None if descr.converted_type() != ConvertedType::NONE => format!("{} ({})", descr.physical_type(), descr.converted_type()),
        None => descr.physical_type().to_string(),
    }
}

/// A top-level MAP of string keys to string values, as Parquet's spec lays it out (a repeated
/// `key_value` group of a required key and a value), whatever the writer named its parts.
fn map_shape(schema: &SchemaDescriptor, root: &Type, leaves: &[usize]) -> Option<Shape> {
    let info = root.get_basic_info();
    let annotated = info.logical_type_ref() == Some(&LogicalType::Map)
        || matches!(info.converted_type(), ConvertedType::MAP | ConvertedType::MAP_KEY_VALUE);
    let [entries] = root.get_fields() else { return None };
    let [key, value] = entries.get_fields() else { return None };
    let (&[k, v], true) = (leaves, annotated && entries.get_basic_info().repetition() == Repetition::REPEATED) else { return None };
    if !key.is_primitive() || !value.is_primitive() || key.get_basic_info().repetition() != Repetition::REQUIRED {
        return None;
    }
    let strings = |descr: &ColumnDescriptor| descr.physical_type() == Physical::BYTE_ARRAY && text_of(descr) == Some(Text::Raw);
    let (keys, values) = (schema.column(k), schema.column(v));
    if !strings(&keys) || !strings(&values) {
        return None;
    }
    let present = i16::from(info.repetition() == Repetition::OPTIONAL);
    // The levels `next_map` walks: one repetition, a key defined at the entry's level.
    if keys.max_rep_level() != 1 || keys.max_def_level() != present + 1 {
        return None;
    }
    Some(Shape::Map { keys: k, values: v, present, entry: present + 1 })
}

/// Refuses, before reading anything, column chunks compressed with a codec this build leaves out
/// (those that need C libraries): naming the codec says how to re-export the file.
fn check_codecs(metadata: &ParquetMetaData, plans: &[Plan]) -> Result<(), ImportError> {
    for group in metadata.row_groups() {
        for plan in plans {
            let leaves = match plan.shape {
                Shape::Flat { leaf, .. } => [leaf, leaf],
                Shape::Map { keys, values, .. } => [keys, values],
            };
            for leaf in leaves {
                let codec = match group.column(leaf).compression() {
                    Compression::ZSTD(_) => "Zstandard",
                    Compression::BROTLI(_) => "Brotli",
                    Compression::LZO => "LZO",
                    _ => continue,
                };
                let name = &plan.name;
                let message = format!(
                    "column {name} is compressed with {codec}, which vtag does not read: export with Snappy, gzip, LZ4 or \
                     no compression"
                );
                return Err(ImportError::column(name, "compression", message));
            }
        }
    }
    Ok(())
}

impl Plan {
    fn open(&self, group: &dyn RowGroupReader) -> Result<Source, ImportError> {
        let leaf = |i: usize| -> Result<Leaf, ImportError> {
            let max_def = group.metadata().column(i).column_descr().max_def_level();
            let values = Box::new(Values::from(group.get_column_reader(i).map_err(parquet_error)?));
            Ok(Leaf { values, def: Vec::new(), rep: Vec::new(), max_def, level: 0, value: 0 })
        };
        let shape = match self.shape {
            Shape::Flat { leaf: i, text } => Reading::Flat(leaf(i)?, text),
            Shape::Map { keys, values, present, entry } => Reading::Map { keys: leaf(keys)?, values: leaf(values)?, present, entry },
        };
        Ok(Source { field: self.field, name: self.name.clone(), reading: shape })
    }
}

/// A top-level field being read in one row group.
struct Source {
    field: usize,
    name: String,
    reading: Reading,
}

enum Reading {
    Flat(Leaf, Text),
    Map { keys: Leaf, values: Leaf, present: i16, entry: i16 },
}

type CellError = (&'static str, String);

impl Source {
    /// Decodes the next `n` rows.
    fn read(&mut self, n: usize) -> Result<(), String> {
        match &mut self.reading {
            Reading::Flat(leaf, _) => leaf.read(n),
            Reading::Map { keys, values, .. } => keys.read(n).and_then(|()| values.read(n)),
        }
    }

    /// Writes the next row's cell to `out`.
    fn next(&mut self, out: &mut Vec<u8>) -> Result<(), CellError> {
        match &mut self.reading {
            Reading::Flat(leaf, text) => match leaf.next_value()? {
                Some(v) => leaf.values.render(v, *text, out),
                None => Ok(()),
            },
            Reading::Map { keys, values, present, entry } => next_map(keys, values, *present, *entry, out),
        }
    }
}

/// A row's map, from the levels of its keys and values (one level each per entry, or one for an
/// empty or null map), as a JSON object; a null map is an empty cell.
fn next_map(keys: &mut Leaf, values: &mut Leaf, present: i16, entry: i16, out: &mut Vec<u8>) -> Result<(), CellError> {
    let mut map = serde_json::Map::new();
    let mut first = true;
    while keys.level < keys.def.len() && (first || keys.rep[keys.level] != 0) {
        let def = keys.def[keys.level];
        first = false;
        if def < present {
            keys.skip_level();
            values.skip_level();
            return Ok(());
        }
        if def < entry {
            keys.skip_level();
            values.skip_level();
            break;
        }
        let Some(k) = keys.next_value()? else { return Err(("json", "a map key is null".to_owned())) };
        let key = keys.values.string(k)?;
        let value = match values.next_value()? {
            Some(v) => serde_json::Value::String(values.values.string(v)?),
            None => serde_json::Value::Null,
        };
        map.insert(key, value);
    }
    serde_json::to_writer(out, &map).map_err(|e| ("json", e.to_string()))
}

/// One leaf column of a row group: its reader and the current batch's levels and values.
struct Leaf {
    /// Boxed: a column reader is large, and a map has two.
    values: Box<Values>,
    def: Vec<i16>,
    rep: Vec<i16>,
    max_def: i16,
    /// Cursors into the batch.
    level: usize,
    value: usize,
}

impl Leaf {
    fn read(&mut self, n: usize) -> Result<(), String> {
        self.def.clear();
        self.rep.clear();
        self.level = 0;
        self.value = 0;
        let records = self.values.read(n, &mut self.def, &mut self.rep).map_err(|e| e.to_string())?;
        if records != n {
            return Err(format!("{records} rows where the row group states {n} more"));
        }
        if self.max_def > 0 && self.def.len() < n {
            return Err("missing definition levels".to_owned());
        }
        Ok(())
    }

    /// The index of the next level's value, None when it is null.
    fn next_value(&mut self) -> Result<Option<usize>, CellError> {
        let present = self.max_def == 0 || self.def.get(self.level).is_some_and(|d| *d == self.max_def);
        self.level += 1;
        if !present {
            return Ok(None);
        }
        let v = self.value;
        self.value += 1;
        if v >= self.values.len() {
            return Err(("parquet", "the column has fewer values than its levels state".to_owned()));
        }
        Ok(Some(v))
    }

    fn skip_level(&mut self) {
        self.level += 1;
    }
}

/// A typed column reader and the values of the current batch.
enum Values {
    Bool(ColumnReaderImpl<BoolType>, Vec<bool>),
    Int32(ColumnReaderImpl<Int32Type>, Vec<i32>),
    Int64(ColumnReaderImpl<Int64Type>, Vec<i64>),
    Int96(ColumnReaderImpl<Int96Type>, Vec<Int96>),
    Float(ColumnReaderImpl<FloatType>, Vec<f32>),
    Double(ColumnReaderImpl<DoubleType>, Vec<f64>),
    Bytes(ColumnReaderImpl<ByteArrayType>, Vec<ByteArray>),
    Fixed(ColumnReaderImpl<FixedLenByteArrayType>, Vec<FixedLenByteArray>),
}

impl From<ColumnReader> for Values {
    fn from(reader: ColumnReader) -> Self {
        match reader {
            ColumnReader::BoolColumnReader(r) => Self::Bool(r, Vec::new()),
            ColumnReader::Int32ColumnReader(r) => Self::Int32(r, Vec::new()),
            ColumnReader::Int64ColumnReader(r) => Self::Int64(r, Vec::new()),
            ColumnReader::Int96ColumnReader(r) => Self::Int96(r, Vec::new()),
            ColumnReader::FloatColumnReader(r) => Self::Float(r, Vec::new()),
            ColumnReader::DoubleColumnReader(r) => Self::Double(r, Vec::new()),
            ColumnReader::ByteArrayColumnReader(r) => Self::Bytes(r, Vec::new()),
            ColumnReader::FixedLenByteArrayColumnReader(r) => Self::Fixed(r, Vec::new()),
        }
    }
}

impl Values {
    /// Reads `n` whole rows, replacing the batch; returns how many there were.
    fn read(&mut self, n: usize, def: &mut Vec<i16>, rep: &mut Vec<i16>) -> Result<usize, ParquetError> {
        macro_rules! read {
            ($reader:expr, $values:expr) => {{
                $values.clear();
                $reader.read_records(n, Some(def), Some(rep), $values).map(|(records, _, _)| records)
            }};
        }
        match self {
            Self::Bool(r, v) => read!(r, v),
            Self::Int32(r, v) => read!(r, v),
            Self::Int64(r, v) => read!(r, v),
            Self::Int96(r, v) => read!(r, v),
            Self::Float(r, v) => read!(r, v),
            Self::Double(r, v) => read!(r, v),
            Self::Bytes(r, v) => read!(r, v),
            Self::Fixed(r, v) => read!(r, v),
        }
    }

    fn len(&self) -> usize {
        match self {
            Self::Bool(_, v) => v.len(),
            Self::Int32(_, v) => v.len(),
            Self::Int64(_, v) => v.len(),
            Self::Int96(_, v) => v.len(),
            Self::Float(_, v) => v.len(),
            Self::Double(_, v) => v.len(),
            Self::Bytes(_, v) => v.len(),
            Self::Fixed(_, v) => v.len(),
        }
    }

    /// Value `v` as `text` says, as a CSV cell would hold it.
    fn render(&self, v: usize, text: Text, out: &mut Vec<u8>) -> Result<(), CellError> {
        let written = match (self, text) {
            (Self::Bytes(_, b), Text::Raw) => {
                out.extend_from_slice(b[v].data());
                Ok(())
            }
            (Self::Bool(_, b), Text::Bool) => write!(out, "{}", b[v]),
            (Self::Int32(_, x), Text::Int) => write!(out, "{}", x[v]),
            (Self::Int64(_, x), Text::Int) => write!(out, "{}", x[v]),
            (Self::Int32(_, x), Text::UInt) => write!(out, "{}", x[v] as u32),
            (Self::Int64(_, x), Text::UInt) => write!(out, "{}", x[v] as u64),
            // Display gives the shortest digits that read back as the same float, never an exponent.
            (Self::Float(_, x), Text::Float) => write!(out, "{}", x[v]),
            (Self::Double(_, x), Text::Float) => write!(out, "{}", x[v]),
            (Self::Int32(_, x), Text::Decimal(scale)) => decimal(i128::from(x[v]), scale, out),
            (Self::Int64(_, x), Text::Decimal(scale)) => decimal(i128::from(x[v]), scale, out),
            (Self::Bytes(_, b), Text::Decimal(scale)) => decimal(big_endian(b[v].data())?, scale, out),
            (Self::Fixed(_, b), Text::Decimal(scale)) => decimal(big_endian(b[v].data())?, scale, out),
            (Self::Int32(_, x), Text::Date) => return date(x[v], out),
            (Self::Int64(_, x), Text::Timestamp(unit)) => return timestamp(x[v], unit, out),
            (Self::Int96(_, x), Text::Int96) => return int96(&x[v], out),
            _ => return Err(("type", format!("{text:?} values cannot be read from this column's Parquet type"))),
        };
        written.map_err(|e| ("parquet", e.to_string()))
    }

    /// Value `v` of a string column.
    fn string(&self, v: usize) -> Result<String, CellError> {
        let Self::Bytes(_, b) = self else { return Err(("type", "a map must hold strings".to_owned())) };
        String::from_utf8(b[v].data().to_vec()).map_err(|_| ("encoding", "a map entry is not valid UTF-8".to_owned()))
    }
}

/// A decimal's unscaled value from its big-endian two's complement bytes, when it fits 128 bits
/// (38 digits, more than an amount can hold anyway).
fn big_endian(bytes: &[u8]) -> Result<i128, CellError> {
    let negative = bytes.first().is_some_and(|b| b & 0x80 != 0);
    let fill = if negative { 0xff } else { 0 };
    let extra = bytes.len().saturating_sub(16);
    let (high, low) = bytes.split_at(extra);
    // Bytes beyond sixteen may only repeat the sign, and the sign must survive dropping them.
    let fits = high.iter().all(|b| *b == fill) && (extra == 0 || (low[0] & 0x80 != 0) == negative);
    if !fits {
        return Err(("number", "the decimal is out of range".to_owned()));
    }
    let mut buf = [fill; 16];
    buf[16 - low.len()..].copy_from_slice(low);
    Ok(i128::from_be_bytes(buf))
}

/// `unscaled` × 10^-`scale`, exactly, without an exponent where the scale is positive.
fn decimal(unscaled: i128, scale: i32, out: &mut Vec<u8>) -> std::io::Result<()> {
    let sign = if unscaled < 0 { "-" } else { "" };
    let digits = unscaled.unsigned_abs().to_string();
    let Ok(scale) = usize::try_from(scale) else {
        // A negative scale (allowed by some writers) multiplies: the exponent says it exactly.
        return write!(out, "{sign}{digits}e{}", -i64::from(scale));
    };
    if scale == 0 {
        return write!(out, "{sign}{digits}");
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    write!(out, "{sign}{int}.{frac}")
}

fn date(days: i32, out: &mut Vec<u8>) -> Result<(), CellError> {
    let day = NaiveDate::from_ymd_opt(1970, 1, 1).and_then(|epoch| epoch.checked_add_signed(TimeDelta::days(days.into())));
    let day = day.ok_or_else(|| ("date", format!("{days} days after 1970-01-01 is not a representable date")))?;
    write!(out, "{}", day.format("%Y-%m-%d")).map_err(|e| ("date", e.to_string()))
}

fn timestamp(value: i64, unit: TimeUnit, out: &mut Vec<u8>) -> Result<(), CellError> {
    let instant = match unit {
        TimeUnit::MILLIS => DateTime::from_timestamp_millis(value),
        TimeUnit::MICROS => DateTime::from_timestamp_micros(value),
        TimeUnit::NANOS => Some(DateTime::from_timestamp_nanos(value)),
    };
    let instant = instant.ok_or_else(|| ("date", format!("timestamp {value} ({unit:?}) is not a representable date-time")))?;
    instant_text(instant, out)
}

/// Julian day 2440588 is 1970-01-01.
const UNIX_EPOCH_JULIAN_DAY: i64 = 2_440_588;

fn int96(value: &Int96, out: &mut Vec<u8>) -> Result<(), CellError> {
    let [low, high, julian_day] = *value.data() else { return Err(("date", "an INT96 timestamp has three words".to_owned())) };
    let nanos_of_day = (u64::from(high) << 32) | u64::from(low);
    let seconds = (i64::from(julian_day) - UNIX_EPOCH_JULIAN_DAY) * 86_400 + (nanos_of_day / 1_000_000_000) as i64;
    let instant = DateTime::from_timestamp(seconds, (nanos_of_day % 1_000_000_000) as u32);
    instant_text(instant.ok_or_else(|| ("date", "the INT96 timestamp is not a representable date-time".to_owned()))?, out)
}

/// `2026-10-01T00:00:00Z`, with as many fractional digits as the instant has (none when whole).
fn instant_text(instant: DateTime<chrono::Utc>, out: &mut Vec<u8>) -> Result<(), CellError> {
    write!(out, "{}", instant.format("%Y-%m-%dT%H:%M:%S%.fZ")).map_err(|e| ("date", e.to_string()))
}

#[cfg(test)]
#[path = "parquet_tests.rs"]
mod tests;
