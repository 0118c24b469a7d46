//! Parquet files written in-test with parquet's low-level writer, read back against the CSV of the
//! same charges: both formats must give the very same `BillingFile` and name the same cells.

use std::sync::Arc;

use ::parquet::basic::{Compression, GzipLevel, ZstdLevel};
use ::parquet::file::metadata::ColumnChunkMetaData;
use ::parquet::data_type::{ByteArray, ByteArrayType, DoubleType, FixedLenByteArrayType, Int32Type, Int64Type, Int96Type};
use ::parquet::file::properties::WriterProperties;
use ::parquet::file::writer::{SerializedColumnWriter, SerializedFileWriter};
use ::parquet::schema::parser::parse_message_type;
use chrono::NaiveDate;

use super::*;
use crate::Amount;

/// One charge, as the tests of the CSV reader write it: billed (= effective) cost, charge day,
/// category, resource id ("" for none), Tags JSON ("" for none).
type Charge = (&'static str, u32, &'static str, &'static str, &'static str);

const SAMPLE: [Charge; 7] = [
    ("1.0000000001", 1, "Usage", "i-1", r#"{"Env":"prod"}"#),
    ("2.5", 1, "Usage", "i-1", r#"{"Env":"prod"}"#),
    ("0.25", 2, "Usage", "i-1", r#"{"Env":"production","Team":"web"}"#),
    ("3", 1, "Usage", "i-2", "{}"),
    ("-0.5", 1, "Credit", "i-2", "{}"),
    ("0.75", 1, "Tax", "", ""),
    ("0.05", 2, "Tax", "", ""),
];

const NAMES: [&str; 18] = [
    "BilledCost",
    "EffectiveCost",
    "ListCost",
    "BillingCurrency",
    "BillingAccountId",
    "BillingPeriodStart",
    "BillingPeriodEnd",
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "ChargeCategory",
    "ProviderName",
    "ResourceId",
    "ResourceName",
    "ResourceType",
    "RegionId",
    "ServiceName",
    "SubAccountId",
    "Tags",
];

/// A charge's cells, in the order of [`NAMES`].
fn cells((billed, day, category, resource, tags): Charge) -> Vec<String> {
    let (start, end) = (format!("2026-10-{day:02}T00:00:00Z"), format!("2026-10-{:02}T00:00:00Z", day + 1));
    [billed, billed, "", "USD", "999", "2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z", &start, &end, category, "AWS", resource]
        .into_iter()
        .chain(["web", "ec2:instance", "us-east-1", "Amazon EC2", "111", tags])
        .map(str::to_owned)
        .collect()
}

fn csv(rows: &[Vec<String>]) -> String {
    let quoted = |cell: &String| format!("\"{}\"", cell.replace('"', "\"\""));
    let lines = rows.iter().map(|r| r.iter().map(quoted).collect::<Vec<_>>().join(","));
    std::iter::once(NAMES.join(",")).chain(lines).map(|l| l + "\n").collect()
}

fn from_csv(rows: &[Vec<String>]) -> BillingFile {
    read_focus_csv(csv(rows).as_bytes(), |_| {}).unwrap()
}

fn read_parquet(bytes: Vec<u8>) -> Result<BillingFile, ImportError> {
    read_focus_parquet(Bytes::from(bytes), |_| {})
}

/// A column's values for the writer, None for null.
enum Written {
    Text(Vec<Option<Vec<u8>>>),
    Int32(Vec<Option<i32>>),
    Int64(Vec<Option<i64>>),
    Double(Vec<Option<f64>>),
    Fixed(Vec<Option<Vec<u8>>>),
    Int96(Vec<Option<[u32; 3]>>),
    /// A LIST of doubles, one element a row.
    List(Vec<f64>),
    /// A MAP<string, string> column (two leaves): each row's entries, None for a null map.
    Map(Vec<Option<Entries>>),
}

/// A map's entries; a value may be null.
type Entries = Vec<(String, Option<String>)>;

/// A Parquet file of `schema` (message-type syntax) holding row groups of columns, in order.
fn write(schema: &str, compression: Compression, groups: Vec<Vec<Written>>) -> Vec<u8> {
    let schema = Arc::new(parse_message_type(schema).unwrap());
    let properties = Arc::new(WriterProperties::builder().set_compression(compression).build());
    let mut out = Vec::new();
    let mut writer = SerializedFileWriter::new(&mut out, schema, properties).unwrap();
    for group in groups {
        let mut group_writer = writer.next_row_group().unwrap();
        for column in group {
            if let Written::Map(rows) = column {
                let (keys, values) = map_leaves(&rows);
                for (leaf, (data, def, rep)) in [keys, values].into_iter().enumerate() {
                    let mut writer = group_writer.next_column().unwrap().unwrap();
                    writer.typed::<ByteArrayType>().write_batch(&data, Some(&def), Some(&rep)).unwrap();
                    writer.close().unwrap_or_else(|e| panic!("map leaf {leaf}: {e}"));
                }
                continue;
            }
            let mut writer = group_writer.next_column().unwrap().unwrap();
            write_flat(&mut writer, column);
            writer.close().unwrap();
        }
        group_writer.close().unwrap();
    }
    writer.close().unwrap();
    out
}

fn write_flat(writer: &mut SerializedColumnWriter<'_>, column: Written) {
    macro_rules! put {
        ($type:ty, $rows:expr, $convert:expr) => {{
            let typed = writer.typed::<$type>();
            let optional = typed.get_descriptor().max_def_level() > 0;
            let def: Vec<i16> = $rows.iter().map(|v| i16::from(v.is_some())).collect();
            let data: Vec<_> = $rows.into_iter().flatten().map($convert).collect();
            typed.write_batch(&data, optional.then_some(&def[..]), None).unwrap();
        }};
    }
    match column {
        Written::Text(rows) => put!(ByteArrayType, rows, ByteArray::from),
        Written::Int32(rows) => put!(Int32Type, rows, |v| v),
        Written::Int64(rows) => put!(Int64Type, rows, |v| v),
        Written::Double(rows) => put!(DoubleType, rows, |v| v),
        Written::Fixed(rows) => put!(FixedLenByteArrayType, rows, FixedLenByteArray::from),
        Written::Int96(rows) => put!(Int96Type, rows, |v: [u32; 3]| Int96::from(v.to_vec())),
        Written::List(rows) => {
            let (def, rep) = (vec![3; rows.len()], vec![0; rows.len()]);
            writer.typed::<DoubleType>().write_batch(&rows, Some(&def), Some(&rep)).unwrap();
        }
        Written::Map(_) => unreachable!("maps have two leaves"),
    }
}

type Leaf = (Vec<ByteArray>, Vec<i16>, Vec<i16>);

/// The key and value leaves of an optional map of optional values: levels 0 null map, 1 empty
/// map, 2 an entry (3 with a value).
fn map_leaves(rows: &[Option<Entries>]) -> (Leaf, Leaf) {
    let (mut keys, mut values): (Leaf, Leaf) = Default::default();
    for row in rows {
        match row.as_deref() {
            None | Some([]) => {
                let def = i16::from(row.is_some());
                for leaf in [&mut keys, &mut values] {
                    leaf.1.push(def);
                    leaf.2.push(0);
                }
            }
            Some(entries) => {
                for (i, (key, value)) in entries.iter().enumerate() {
                    let rep = i16::from(i > 0);
                    keys.0.push(ByteArray::from(key.as_str()));
                    keys.1.push(2);
                    keys.2.push(rep);
                    values.1.push(if value.is_some() { 3 } else { 2 });
                    values.2.push(rep);
                    values.0.extend(value.as_deref().map(ByteArray::from));
                }
            }
        }
    }
    (keys, values)
}

/// Every FOCUS column as a string (Tags as JSON text), an empty optional cell as null, and a
/// nested column vtag does not read.
const STRINGS: &str = "message focus {
    required binary BilledCost (UTF8);
    required binary EffectiveCost (UTF8);
    optional binary ListCost (UTF8);
    required binary BillingCurrency (UTF8);
    required binary BillingAccountId (UTF8);
    required binary BillingPeriodStart (UTF8);
    required binary BillingPeriodEnd (UTF8);
    required binary ChargePeriodStart (UTF8);
    required binary ChargePeriodEnd (UTF8);
    required binary ChargeCategory (UTF8);
    required binary ProviderName (UTF8);
    optional binary ResourceId (UTF8);
    optional binary ResourceName (UTF8);
    optional binary ResourceType (UTF8);
    optional binary RegionId (UTF8);
    optional binary ServiceName (UTF8);
    optional binary SubAccountId (UTF8);
    optional binary Tags (JSON);
    optional group x_Discounts (LIST) { repeated group list { optional double element; } }
}";

fn string_columns(rows: &[Vec<String>]) -> Vec<Written> {
    let mut columns: Vec<Written> = (0..NAMES.len())
        .map(|i| {
            let optional = [2, 11, 12, 13, 14, 15, 16, 17].contains(&i);
            Written::Text(rows.iter().map(|r| Some(r[i].clone().into_bytes()).filter(|c| !(optional && c.is_empty()))).collect())
        })
        .collect();
    columns.push(Written::List(vec![0.5; rows.len()]));
    columns
}

fn strings(rows: &[Vec<String>], compression: Compression) -> Vec<u8> {
    write(STRINGS, compression, vec![string_columns(rows)])
}

fn sample_rows() -> Vec<Vec<String>> {
    SAMPLE.into_iter().map(cells).collect()
}

#[test]
fn string_columns_read_as_the_csv_of_the_same_charges() {
    let rows = sample_rows();
    let expected = from_csv(&rows);
    assert_eq!(expected.ledgers[0].total.billed, Amount::parse("7.0500000001").unwrap().amount);
    for compression in [Compression::UNCOMPRESSED, Compression::SNAPPY, Compression::GZIP(GzipLevel::default()), Compression::LZ4_RAW] {
        assert_eq!(read_parquet(strings(&rows, compression)).unwrap(), expected, "{compression:?}");
    }
}

fn days(date: &str) -> i32 {
    let day = NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap();
    (day - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()).num_days() as i32
}

fn units(amount: &str) -> i128 {
    Amount::parse(amount).unwrap().amount.units()
}

/// Typed columns as exporters write them: decimal and float amounts, an integer account, a
/// DATE, INT96 and timestamps of three units, an enum, and Tags as a MAP.
const TYPED: &str = "message focus {
    required int64 BilledCost (DECIMAL(18,10));
    required double EffectiveCost;
    optional fixed_len_byte_array(16) ListCost (DECIMAL(38,10));
    required binary BillingCurrency (STRING);
    required int64 BillingAccountId;
    required int32 BillingPeriodStart (DATE);
    required int96 BillingPeriodEnd;
    required int64 ChargePeriodStart (TIMESTAMP(MICROS,true));
    required int64 ChargePeriodEnd (TIMESTAMP(NANOS,false));
    required binary ChargeCategory (ENUM);
    required binary ServiceProviderName (STRING);
    optional binary ResourceId (STRING);
    optional binary ResourceName (STRING);
    optional binary ResourceType (STRING);
    optional binary RegionId (STRING);
    optional binary ServiceName (STRING);
    optional int32 SubAccountId (INTEGER(32,false));
    optional group Tags (MAP) {
        repeated group key_value {
            required binary key (STRING);
            optional binary value (STRING);
        }
    }
}";

fn typed_columns(charges: &[Charge]) -> Vec<Written> {
    let each = |f: &dyn Fn(&Charge) -> Option<Vec<u8>>| Written::Text(charges.iter().map(f).collect());
    let text = |s: &str| Some(s.as_bytes().to_vec());
    let micros = |day: u32| i64::from(days(&format!("2026-10-{day:02}"))) * 86_400_000_000;
    vec![
        Written::Int64(charges.iter().map(|c| Some(units(c.0) as i64)).collect()),
        Written::Double(charges.iter().map(|c| Some(c.0.parse().unwrap())).collect()),
        // ListCost only on the first row: nulls read as empty cells, zero.
        Written::Fixed(charges.iter().enumerate().map(|(i, c)| (i == 0).then(|| units(c.0).to_be_bytes().to_vec())).collect()),
        each(&|_| text("USD")),
        Written::Int64(vec![Some(999); charges.len()]),
        Written::Int32(vec![Some(days("2026-10-01")); charges.len()]),
        Written::Int96(vec![Some([0, 0, (days("2026-11-01") + 2_440_588) as u32]); charges.len()]),
        Written::Int64(charges.iter().map(|c| Some(micros(c.1))).collect()),
        Written::Int64(charges.iter().map(|c| Some(micros(c.1 + 1) * 1000)).collect()),
        each(&|c| text(c.2)),
        each(&|_| text("AWS")),
        each(&|c| Some(c.3.as_bytes().to_vec()).filter(|r| !r.is_empty())),
        each(&|_| text("web")),
        each(&|_| text("ec2:instance")),
        each(&|_| text("us-east-1")),
        each(&|_| text("Amazon EC2")),
        Written::Int32(vec![Some(111); charges.len()]),
        Written::Map(charges.iter().map(|c| tag_map(c.4)).collect()),
    ]
}

/// The Tags JSON as map entries; "" is a null map.
fn tag_map(json: &str) -> Option<Entries> {
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(Some(json).filter(|j| !j.is_empty())?).unwrap();
    Some(map.into_iter().map(|(k, v)| (k, v.as_str().map(str::to_owned))).collect())
}

#[test]
fn typed_columns_read_as_the_csv_of_the_same_charges() {
    let mut rows = sample_rows();
    rows[0][2] = rows[0][0].clone();
    let bytes = write(TYPED, Compression::SNAPPY, vec![typed_columns(&SAMPLE)]);
    assert_eq!(read_parquet(bytes).unwrap(), from_csv(&rows));
}

#[test]
fn rows_are_numbered_across_row_groups() {
    let (first, second) = SAMPLE.split_at(3);
    // BilledCost as text, "1e" on the second row of the second group.
    let texts = |charges: &[Charge], bad: Option<usize>| {
        let mut columns = typed_columns(charges);
        let billed = charges.iter().enumerate().map(|(i, c)| Some(if Some(i) == bad { "1e" } else { c.0 }.as_bytes().to_vec()));
        columns[0] = Written::Text(billed.collect());
        columns
    };
    let schema = TYPED.replace("required int64 BilledCost (DECIMAL(18,10))", "required binary BilledCost (STRING)");
    let bytes = write(&schema, Compression::UNCOMPRESSED, vec![texts(first, None), texts(second, Some(1))]);
    let err = read_parquet(bytes).unwrap_err();
    assert_eq!((err.rule, err.column.as_deref(), err.row, err.line), ("number", Some("BilledCost"), Some(5), None));
    assert!(err.to_string().starts_with("row 5, column BilledCost: '1e'"), "{err}");

    let whole = write(TYPED, Compression::UNCOMPRESSED, vec![typed_columns(first), typed_columns(second)]);
    assert_eq!(read_parquet(whole).unwrap().rows, 7);
}

#[test]
fn a_bad_number_names_row_and_column() {
    let mut rows = sample_rows();
    rows[3][1] = "3.0.1".to_owned();
    let err = read_parquet(strings(&rows, Compression::SNAPPY)).unwrap_err();
    assert_eq!((err.rule, err.column.as_deref(), err.row, err.line), ("number", Some("EffectiveCost"), Some(4), None));
    assert!(err.to_string().starts_with("row 4, column EffectiveCost: '3.0.1'"), "{err}");
    let csv_err = read_focus_csv(csv(&rows).as_bytes(), |_| {}).unwrap_err();
    assert_eq!((csv_err.rule, &csv_err.message), (err.rule, &err.message), "the same refusal as CSV");
}

#[test]
fn bad_tags_name_row_and_column() {
    let mut rows = sample_rows();
    rows[5] = cells(("1", 3, "Usage", "i-3", r#"{"Env": prod}"#));
    let err = read_parquet(strings(&rows, Compression::UNCOMPRESSED)).unwrap_err();
    assert_eq!((err.rule, err.column.as_deref(), err.row), ("json", Some("Tags"), Some(6)));

    // A map entry without a value is refused as CSV refuses `{"Env": null}`.
    let mut charges = SAMPLE.to_vec();
    charges[2].4 = r#"{"Env":null}"#;
    let err = read_parquet(write(TYPED, Compression::UNCOMPRESSED, vec![typed_columns(&charges)])).unwrap_err();
    assert_eq!((err.rule, err.column.as_deref(), err.row), ("json", Some("Tags"), Some(3)));
    assert!(err.message.contains("must be a string"), "{err}");
}

#[test]
fn a_cell_that_is_not_utf8_names_row_and_column() {
    let mut columns = string_columns(&sample_rows());
    let Written::Text(regions) = &mut columns[14] else { unreachable!() };
    regions[0] = Some(vec![0xff, 0xfe]);
    let err = read_parquet(write(STRINGS, Compression::UNCOMPRESSED, vec![columns])).unwrap_err();
    assert_eq!((err.rule, err.column.as_deref(), err.row), ("encoding", Some("RegionId"), Some(1)), "{err}");
}

#[test]
fn a_missing_required_column_is_named() {
    let schema = STRINGS.replace("required binary EffectiveCost (UTF8);", "");
    let mut columns = string_columns(&sample_rows());
    columns.remove(1);
    let err = read_parquet(write(&schema, Compression::UNCOMPRESSED, vec![columns])).unwrap_err();
    assert_eq!((err.rule, err.column.as_deref(), err.row), ("required_column", Some("EffectiveCost"), None));
}

#[test]
fn a_nested_focus_column_is_refused_by_name() {
    let schema = STRINGS.replace(
        "optional binary RegionId (UTF8);",
        "optional group RegionId (LIST) { repeated group list { optional double element; } }",
    );
    let mut columns = string_columns(&sample_rows());
    columns[14] = Written::List(vec![1.0; SAMPLE.len()]);
    let err = read_parquet(write(&schema, Compression::UNCOMPRESSED, vec![columns])).unwrap_err();
    assert_eq!((err.rule, err.column.as_deref()), ("type", Some("RegionId")), "{err}");
    let timed = STRINGS.replace("optional binary RegionId (UTF8);", "optional int64 RegionId (TIME(MICROS,true));");
    let mut columns = string_columns(&sample_rows());
    columns[14] = Written::Int64(vec![None; SAMPLE.len()]);
    let err = read_parquet(write(&timed, Compression::UNCOMPRESSED, vec![columns])).unwrap_err();
    assert_eq!((err.rule, err.column.as_deref()), ("type", Some("RegionId")), "{err}");
}

#[test]
fn what_is_not_parquet_is_refused_cleanly() {
    let err = read_focus(&b"PAR1 is where the resemblance ends"[..], |_| {}).unwrap_err();
    assert_eq!((err.rule, err.row), ("parquet", None), "{err}");
    let mut truncated = strings(&sample_rows(), Compression::SNAPPY);
    truncated.truncate(truncated.len() - 9);
    assert_eq!(read_parquet(truncated).unwrap_err().rule, "parquet");
    let empty = write(STRINGS, Compression::UNCOMPRESSED, Vec::new());
    assert_eq!(read_parquet(empty).unwrap_err().rule, "empty");
}

#[test]
fn corrupt_pages_are_refused_not_panicked_on() {
    let good = strings(&sample_rows(), Compression::SNAPPY);
    let footer = good.len() - 8 - u32::from_le_bytes(good[good.len() - 8..good.len() - 4].try_into().unwrap()) as usize;
    // Damage the data (not the footer), a byte at a time: whatever the reader makes of it, it
    // returns, and a refusal is either a cell's or the file's (parquet 60 panics on some of these).
    let mut refused = 0;
    for at in (4..footer).step_by(3) {
        let mut bad = good.clone();
        bad[at] ^= 0x5a;
        if let Err(e) = read_parquet(bad) {
            assert!(e.row.is_some() || e.rule == "parquet", "{e:?}");
            refused += 1;
        }
    }
    assert!(refused > 0);
}

#[test]
fn a_codec_left_out_of_the_build_is_named_before_reading() {
    // This build cannot write Zstandard either: the footer of a Snappy file is made to say it.
    let file = SerializedFileReader::new(Bytes::from(strings(&sample_rows(), Compression::SNAPPY))).unwrap();
    let mut builder = file.metadata().clone().into_builder();
    let zstd = |(i, column): (usize, &ColumnChunkMetaData)| match i {
        11 => column.clone().into_builder().set_compression(Compression::ZSTD(ZstdLevel::default())).build().unwrap(),
        _ => column.clone(),
    };
    let groups = builder.take_row_groups().into_iter().map(|g| {
        let columns = g.columns().iter().enumerate().map(zstd).collect();
        g.into_builder().set_column_metadata(columns).build().unwrap()
    });
    let metadata = builder.set_row_groups(groups.collect()).build();
    let schema = metadata.file_metadata().schema_descr();
    let plans: Vec<Plan> = (0..NAMES.len()).map(|field| plan(schema, field).unwrap()).collect();
    let err = check_codecs(&metadata, &plans).unwrap_err();
    assert_eq!((err.rule, err.column.as_deref()), ("compression", Some("ResourceId")));
    assert!(err.message.contains("compressed with Zstandard"), "{err}");
}

#[test]
fn read_focus_tells_the_formats_apart() {
    let rows = sample_rows();
    let expected = from_csv(&rows);
    assert_eq!(read_focus(&strings(&rows, Compression::SNAPPY)[..], |_| {}).unwrap(), expected);
    assert_eq!(read_focus(csv(&rows).as_bytes(), |_| {}).unwrap(), expected);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, csv(&rows).as_bytes()).unwrap();
    assert_eq!(read_focus(&gz.finish().unwrap()[..], |_| {}).unwrap(), expected);
}

#[test]
fn progress_counts_every_row() {
    let mut seen = Vec::new();
    read_focus_parquet(Bytes::from(strings(&sample_rows(), Compression::UNCOMPRESSED)), |n| seen.push(n)).unwrap();
    assert_eq!(seen.last(), Some(&7));
}

fn rendered(values: Result<(), CellError>, out: Vec<u8>) -> String {
    values.unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn decimals_are_written_exactly() {
    let text = |unscaled: i128, scale: i32| {
        let mut out = Vec::new();
        decimal(unscaled, scale, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    };
    assert_eq!(text(12345, 2), "123.45");
    assert_eq!(text(-5, 3), "-0.005");
    assert_eq!(text(417, 10), "0.0000000417");
    assert_eq!(text(7, 0), "7");
    assert_eq!(text(5, -2), "5e2");
    assert_eq!(text(i128::MIN, 10), "-17014118346046923173168730371.5884105728");
    assert_eq!(big_endian(&[0xff, 0x85]), Ok(-123));
    assert_eq!(big_endian(&[]), Ok(0));
    let mut wide = vec![0xff; 4];
    wide.extend((-2i128).to_be_bytes());
    assert_eq!(big_endian(&wide), Ok(-2));
    assert!(big_endian(&[&[0][..], &[0xff; 16]].concat()).is_err(), "2^128 - 1 does not fit");
    assert!(big_endian(&[&[1][..], &[0; 16]].concat()).is_err());
}

#[test]
fn instants_are_written_as_iso_8601_utc() {
    let mut out = Vec::new();
    assert_eq!(rendered(timestamp(1_790_812_800_000, TimeUnit::MILLIS, &mut out), out), "2026-10-01T00:00:00Z");
    let mut out = Vec::new();
    assert_eq!(rendered(timestamp(1_790_812_800_000_000_001, TimeUnit::NANOS, &mut out), out), "2026-10-01T00:00:00.000000001Z");
    let mut out = Vec::new();
    assert_eq!(rendered(int96(&Int96::from(vec![0, 0, 2_440_588]), &mut out), out), "1970-01-01T00:00:00Z");
    let mut out = Vec::new();
    assert_eq!(rendered(date(days("2026-10-01"), &mut out), out), "2026-10-01");
    assert_eq!(timestamp(i64::MAX, TimeUnit::MILLIS, &mut Vec::new()).unwrap_err().0, "date");
    assert_eq!(date(i32::MAX, &mut Vec::new()).unwrap_err().0, "date");
    assert_eq!(crate::charge::parse_instant("2026-10-01T00:00:00.000000001Z").map(|t| t.and_utc().timestamp_subsec_nanos()), Some(1));
}

#[test]
fn every_column_the_checks_read_is_decoded() {
    for (i, column) in READ.into_iter().enumerate() {
        assert_eq!(place(column), i, "{column:?}");
    }
}
