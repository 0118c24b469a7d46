use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use chrono::NaiveDate;

use super::*;

fn generator(seed: u64) -> Generator {
    Generator::new(GeneratorConfig::new(seed)).unwrap()
}

fn config(resources: usize, first_day: (i32, u32, u32), days: u32) -> FocusConfig {
    let (y, m, d) = first_day;
    FocusConfig { resources, billing_only: 0, first_day: NaiveDate::from_ymd_opt(y, m, d).unwrap(), days }
}

fn csv_bytes(seed: u64, config: FocusConfig) -> (Vec<u8>, FocusTotals) {
    let g = generator(seed);
    let mut out = Vec::new();
    let totals = FocusExport::new(&g, config).unwrap().write_csv(&mut out).unwrap();
    (out, totals)
}

/// Every record of the CSV, as column name → cell.
fn records(csv: &[u8]) -> Vec<BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_reader(csv);
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
    reader
        .records()
        .map(|r| header.iter().cloned().zip(r.unwrap().iter().map(str::to_owned)).collect())
        .collect()
}

/// An exact decimal in units of 10^-10, as a consumer must read them (never through f64).
fn units(text: &str) -> i128 {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    assert!(fraction.len() <= 10 && !whole.is_empty(), "{text:?}");
    let magnitude = whole.parse::<i128>().unwrap() * AMOUNT_SCALE + format!("{fraction:0<10}").parse::<i128>().unwrap();
    if negative {
        -magnitude
    } else {
        magnitude
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3))
}

#[test]
fn same_inputs_same_bytes() {
    let c = config(300, (2026, 10, 1), 5);
    assert_eq!(csv_bytes(42, c.clone()).0, csv_bytes(42, c.clone()).0);
    assert_ne!(csv_bytes(42, c.clone()).0, csv_bytes(43, c.clone()).0);
    assert_ne!(csv_bytes(42, c.clone()).0, csv_bytes(42, FocusConfig { days: 6, ..c }).0);
}

const PINNED_SEED_42_300_RESOURCES_5_DAYS: u64 = 18_245_299_290_884_188_155;

#[test]
fn output_is_pinned() {
    // Benchmarks compare billing exports across versions: change this only for a deliberate
    // change of the generated charges, and say so.
    let (csv, _) = csv_bytes(42, config(300, (2026, 10, 1), 5));
    assert_eq!(fnv1a(&csv), PINNED_SEED_42_300_RESOURCES_5_DAYS, "seed 42 no longer generates the same export");
}

#[test]
fn the_header_is_focus() {
    let (csv, _) = csv_bytes(1, config(10, (2026, 10, 1), 1));
    let header = csv.split(|b| *b == b'\n').next().unwrap();
    assert_eq!(
        std::str::from_utf8(header).unwrap(),
        "BilledCost,BillingAccountId,BillingAccountName,BillingCurrency,BillingPeriodEnd,BillingPeriodStart,\
         ChargeCategory,ChargeDescription,ChargePeriodEnd,ChargePeriodStart,EffectiveCost,ListCost,ProviderName,\
         RegionId,ResourceId,ResourceName,ResourceType,ServiceCategory,ServiceName,SubAccountId,Tags"
    );
}

#[test]
fn resource_rows_describe_the_observed_resources() {
    let g = generator(42);
    let (resources, billing_only) = (400, 40);
    let export = FocusExport::new(&g, FocusConfig { billing_only, ..config(resources, (2026, 10, 1), 7) }).unwrap();
    let mut out = Vec::new();
    export.write_csv(&mut out).unwrap();
    let observed: BTreeMap<String, ObservedItem> =
        g.resources(resources).map(|r| (r.observed.resource_id.clone(), r.observed)).collect();
    let unobserved: BTreeMap<String, ObservedItem> = (resources..resources + billing_only)
        .map(|i| g.resource(i as u64).observed)
        .map(|o| (o.resource_id.clone(), o))
        .collect();
    let accounts: BTreeMap<&str, &BillingAccount> =
        export.billing_accounts().iter().map(|a| (a.provider.as_str(), a)).collect();
    let (mut seen, mut seen_unobserved) = (BTreeSet::new(), BTreeSet::new());
    for row in records(&out) {
        let id = &row["ResourceId"];
        if id.is_empty() {
            continue;
        }
        let o = match observed.get(id) {
            Some(o) => {
                seen.insert(id.clone());
                o
            }
            None => {
                seen_unobserved.insert(id.clone());
                unobserved.get(id).unwrap_or_else(|| panic!("{id} is neither observed nor billing-only"))
            }
        };
        assert_eq!(row["SubAccountId"], o.account_id);
        assert_eq!(row["RegionId"], o.region);
        assert_eq!(row["ResourceName"], o.name);
        assert_eq!(row["ResourceType"], o.resource_type);
        let tags: BTreeMap<String, String> = serde_json::from_str(&row["Tags"]).unwrap();
        assert_eq!(tags, o.native_tags, "{id}");
        let provider = match o.provider {
            "aws" => "AWS",
            "azure" => "Microsoft",
            _ => "Google Cloud",
        };
        assert_eq!(row["ProviderName"], provider);
        assert_eq!(row["BillingAccountId"], accounts[o.provider].id);
        assert_eq!(row["BillingCurrency"], "USD");
        assert!(!row["ServiceName"].is_empty() && !row["ServiceCategory"].is_empty());
    }
    // a resource idle on every one of 7 days is rare enough not to happen in 400
    assert_eq!(seen.len(), resources);
    assert_eq!(seen_unobserved.len(), billing_only);
}

#[test]
fn totals_are_the_exact_sums_of_the_written_amounts() {
    let g = generator(5);
    let export = FocusExport::new(&g, FocusConfig { billing_only: 20, ..config(500, (2026, 10, 20), 20) }).unwrap();
    let mut out = Vec::new();
    let totals = export.write_csv(&mut out).unwrap();
    let mut parsed = FocusTotals::default();
    for row in records(&out) {
        parsed.rows += 1;
        parsed.billed += units(&row["BilledCost"]);
        parsed.effective += units(&row["EffectiveCost"]);
        parsed.list += units(&row["ListCost"]);
        if row["ResourceId"].is_empty() {
            parsed.unallocatable_billed += units(&row["BilledCost"]);
        }
    }
    assert_eq!(totals, parsed);
    assert_eq!(export.totals(), totals);
    assert!(totals.unallocatable_billed > 0 && totals.unallocatable_billed < totals.billed);

    let by_resource = export.billed_by_resource();
    assert_eq!(by_resource.values().sum::<i128>(), totals.billed - totals.unallocatable_billed);
}

#[test]
fn rows_are_what_the_csv_holds() {
    let g = generator(9);
    let export = FocusExport::new(&g, FocusConfig { billing_only: 5, ..config(100, (2026, 12, 30), 3) }).unwrap();
    let mut out = Vec::new();
    export.write_csv(&mut out).unwrap();
    let mut reader = csv::Reader::from_reader(&out[..]);
    let written: Vec<Vec<String>> = reader.records().map(|r| r.unwrap().iter().map(str::to_owned).collect()).collect();
    let rows: Vec<Vec<String>> = export.rows().map(|r| r.record().to_vec()).collect();
    assert_eq!(rows, written);
}

#[test]
fn a_month_crossing_range_has_two_billing_periods() {
    let (csv, _) = csv_bytes(3, config(200, (2026, 10, 29), 5));
    let mut periods = BTreeMap::new();
    for row in records(&csv) {
        let (start, end) = (row["BillingPeriodStart"].clone(), row["BillingPeriodEnd"].clone());
        let charge = &row["ChargePeriodStart"];
        assert!(start <= *charge && *charge < end, "{charge} outside {start}..{end}");
        assert_eq!(charge.get(10..), Some("T00:00:00Z"));
        periods.entry((start, end)).or_insert_with(BTreeSet::new).insert(charge.clone());
    }
    let expected = [
        (("2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z"), ["2026-10-29", "2026-10-30", "2026-10-31"].as_slice()),
        (("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z"), ["2026-11-01", "2026-11-02"].as_slice()),
    ];
    let expected: BTreeMap<(String, String), BTreeSet<String>> = expected
        .iter()
        .map(|((s, e), days)| ((s.to_string(), e.to_string()), days.iter().map(|d| format!("{d}T00:00:00Z")).collect()))
        .collect();
    assert_eq!(periods, expected);
}

#[test]
fn billing_accounts_have_unallocatable_charges() {
    let g = generator(42);
    let export = FocusExport::new(&g, config(300, (2026, 10, 30), 4)).unwrap();
    let accounts = export.billing_accounts();
    assert_eq!(accounts.iter().map(|a| a.provider).collect::<Vec<_>>(), [Provider::Aws, Provider::Azure, Provider::Gcp]);
    let aws = &accounts[0].id;
    assert!(aws.len() == 12 && aws.bytes().all(|b| b.is_ascii_digit()), "{aws}");
    let gcp = &accounts[2].id;
    assert!(gcp.len() == 20 && gcp.split('-').all(|g| g.len() == 6 && g.bytes().all(|b| b.is_ascii_hexdigit())), "{gcp}");

    let mut out = Vec::new();
    export.write_csv(&mut out).unwrap();
    let mut count = BTreeMap::<(String, String), usize>::new();
    for row in records(&out).into_iter().filter(|r| r["ResourceId"].is_empty()) {
        assert_eq!((row["ResourceName"].as_str(), row["ResourceType"].as_str(), row["Tags"].as_str()), ("", "", "{}"));
        let amount = units(&row["BilledCost"]);
        match row["ChargeCategory"].as_str() {
            "Tax" => assert!(amount >= 0),
            "Purchase" => assert!(row["ChargeDescription"] == "Business support" && amount >= 100 * AMOUNT_SCALE),
            "Adjustment" => assert_ne!(amount, 0),
            other => panic!("a {other} charge without a resource"),
        }
        *count.entry((row["BillingAccountId"].clone(), row["ChargeCategory"].clone())).or_default() += 1;
    }
    for a in accounts {
        assert_eq!(count[&(a.id.clone(), "Tax".to_owned())], 4, "a tax row per day");
        assert_eq!(count[&(a.id.clone(), "Purchase".to_owned())], 2, "support once per billing period");
    }
}

#[test]
fn amounts_look_like_real_billing() {
    let (csv, _) = csv_bytes(42, config(1000, (2026, 10, 1), 10));
    let rows = records(&csv);
    let (mut ten_digits, mut fewer, mut discounted, mut credits) = (0, 0, 0, 0);
    let mut usage_rows = BTreeMap::<(String, String), usize>::new();
    for row in &rows {
        let (billed, effective, list) = (units(&row["BilledCost"]), units(&row["EffectiveCost"]), units(&row["ListCost"]));
        assert!(list >= billed, "{row:?}");
        match row["ChargeCategory"].as_str() {
            "Usage" => {
                assert!((0..=400 * AMOUNT_SCALE).contains(&billed) && effective <= billed, "{row:?}");
                let decimals = row["BilledCost"].split_once('.').map_or(0, |(_, f)| f.len());
                (ten_digits, fewer) = if decimals == 10 { (ten_digits + 1, fewer) } else { (ten_digits, fewer + 1) };
                discounted += usize::from(effective < billed);
                *usage_rows.entry((row["ResourceId"].clone(), row["ChargePeriodStart"].clone())).or_default() += 1;
            }
            "Credit" => {
                assert!(billed < 0 && effective == billed && list == 0, "{row:?}");
                credits += 1;
            }
            _ => assert!(row["ResourceId"].is_empty()),
        }
    }
    let usage = ten_digits + fewer;
    assert!(ten_digits * 2 > usage && fewer * 5 > usage, "{ten_digits} of {usage} with 10 decimals");
    assert!(discounted * 10 > usage && discounted * 2 < usage, "{discounted} of {usage} discounted");
    assert!(credits > 5, "{credits} credits");
    let two = usage_rows.values().filter(|n| **n == 2).count();
    assert!(usage_rows.values().all(|n| (1..=2).contains(n)) && two * 3 > usage_rows.len(), "{two}");
    // most resources are billed every day, a few not on some
    let resource_days = usage_rows.len();
    assert!((9_700..10_000).contains(&resource_days), "{resource_days} resource-days of 10000");
}

#[test]
fn a_days_charges_do_not_depend_on_the_range() {
    let day = |(csv, _): (Vec<u8>, FocusTotals)| -> Vec<BTreeMap<String, String>> {
        let rows = records(&csv);
        let on_the_5th = |r: &BTreeMap<String, String>| r["ChargePeriodStart"] == "2026-10-05T00:00:00Z";
        rows.into_iter().filter(|r| on_the_5th(r) && !r["ResourceId"].is_empty()).collect()
    };
    let alone = day(csv_bytes(8, config(200, (2026, 10, 5), 1)));
    assert!(alone.len() > 200);
    assert_eq!(day(csv_bytes(8, config(200, (2026, 10, 1), 10))), alone);
}

#[test]
fn gzip_output_decompresses_to_the_same_bytes() {
    let g = generator(42);
    let export = FocusExport::new(&g, config(200, (2026, 10, 1), 3)).unwrap();
    let mut plain = Vec::new();
    let totals = export.write_csv(&mut plain).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    assert_eq!(export.write_csv(&mut gz).unwrap(), totals);
    let compressed = gz.finish().unwrap();
    assert!(compressed.len() * 4 < plain.len());
    let mut inflated = Vec::new();
    flate2::read::GzDecoder::new(&compressed[..]).read_to_end(&mut inflated).unwrap();
    assert_eq!(inflated, plain);
}

#[test]
fn an_empty_range_is_a_header() {
    let (csv, totals) = csv_bytes(1, config(100, (2026, 10, 1), 0));
    assert_eq!(totals, FocusTotals::default());
    assert_eq!(csv.iter().filter(|b| **b == b'\n').count(), 1);
}

#[test]
fn bad_ranges_are_refused() {
    let g = generator(1);
    // FOCUS dates are ISO 8601, whose years have four digits: the billing period must end by 9999
    assert!(FocusExport::new(&g, config(1, (9998, 12, 30), 5)).is_err());
    assert!(FocusExport::new(&g, config(1, (9998, 12, 30), 1)).is_ok());
}
