use std::io::Write;

use chrono::NaiveDate;
use vtag_domain::Provider;

use crate::{read_focus_csv, Amount, BillingFile, ChargeCategory, ImportError};

const HEADER: &str = "BilledCost,EffectiveCost,ListCost,BillingCurrency,BillingAccountId,BillingPeriodStart,BillingPeriodEnd,ChargePeriodStart,ChargePeriodEnd,ChargeCategory,ProviderName,ResourceId,ResourceName,ResourceType,RegionId,ServiceName,SubAccountId,Tags";

fn row(billed: &str, day: u32, category: &str, resource: &str, tags: &str) -> String {
    let effective = billed;
    format!(
        "{billed},{effective},,USD,999,2026-10-01T00:00:00Z,2026-11-01T00:00:00Z,2026-10-{day:02}T00:00:00Z,2026-10-{next:02}T00:00:00Z,{category},AWS,{resource},web,ec2:instance,us-east-1,Amazon EC2,111,\"{}\"",
        tags.replace('"', "\"\""),
        next = day + 1,
    )
}

fn file(rows: &[String]) -> String {
    let mut s = HEADER.to_owned();
    for r in rows {
        s.push('\n');
        s.push_str(r);
    }
    s.push('\n');
    s
}

fn read(text: &str) -> Result<BillingFile, ImportError> {
    read_focus_csv(text.as_bytes(), |_| {})
}

fn amount(s: &str) -> Amount {
    Amount::parse(s).unwrap().amount
}

fn sample() -> String {
    file(&[
        row("1.0000000001", 1, "Usage", "i-1", r#"{"Env":"prod"}"#),
        row("2.5", 1, "Usage", "i-1", r#"{"Env":"prod"}"#),
        row("0.25", 2, "Usage", "i-1", r#"{"Env":"production","Team":"web"}"#),
        row("3", 1, "Usage", "i-2", "{}"),
        row("-0.5", 1, "Credit", "i-2", "{}"),
        row("0.75", 1, "Tax", "", ""),
        row("0.05", 2, "Tax", "", ""),
    ])
}

#[test]
fn sums_charges_per_resource_per_day_and_keeps_pools() {
    let read = read(&sample()).unwrap();
    assert_eq!(read.rows, 7);
    assert_eq!(read.ledgers.len(), 1);
    let ledger = &read.ledgers[0];
    assert_eq!(ledger.key.billing_account_id, "999");
    assert_eq!(ledger.key.period_start, NaiveDate::from_ymd_opt(2026, 10, 1).unwrap());
    assert_eq!(ledger.period_end, NaiveDate::from_ymd_opt(2026, 11, 1).unwrap());
    assert_eq!(ledger.currency, "USD");
    let lines: Vec<(String, u32, ChargeCategory, String)> = ledger
        .resource_lines
        .iter()
        .map(|l| {
            let r = &ledger.resources[l.resource as usize];
            (r.cloud_id.clone(), chrono::Datelike::day(&l.day), l.category, l.costs.billed.to_string())
        })
        .collect();
    assert_eq!(
        lines,
        [
            ("i-1".into(), 1, ChargeCategory::Usage, "3.5000000001".into()),
            ("i-1".into(), 2, ChargeCategory::Usage, "0.25".into()),
            ("i-2".into(), 1, ChargeCategory::Usage, "3".into()),
            ("i-2".into(), 1, ChargeCategory::Credit, "-0.5".into()),
        ]
    );
    assert_eq!(ledger.pool_lines.len(), 2);
    assert_eq!(ledger.unallocatable.billed, amount("0.8"));
    assert_eq!(ledger.total.billed, amount("7.0500000001"));
    assert_eq!(ledger.total.list, Amount::ZERO, "an empty ListCost counts as zero");
}

#[test]
fn a_resource_keeps_the_tags_of_its_latest_charge_day() {
    let read = read(&sample()).unwrap();
    let i1 = read.ledgers[0].resources.iter().find(|r| r.cloud_id == "i-1").unwrap();
    assert_eq!(i1.provider, Provider::Aws);
    assert_eq!(i1.tags.get("Env").map(String::as_str), Some("production"));
    assert_eq!(i1.tags.get("Team").map(String::as_str), Some("web"));
    assert_eq!((i1.sub_account.as_str(), i1.region.as_str(), i1.name.as_str()), ("111", "us-east-1", "web"));
}

#[test]
fn the_fingerprint_ignores_row_order_and_splits_but_not_amounts() {
    let a = read(&sample()).unwrap().ledgers[0].fingerprint();
    let mut rows: Vec<String> = sample().lines().skip(1).map(str::to_owned).collect();
    rows.reverse();
    let reversed = read(&file(&rows)).unwrap().ledgers[0].fingerprint();
    assert_eq!(a, reversed);
    let merged = file(&[
        row("3.5000000001", 1, "Usage", "i-1", r#"{"Env":"prod"}"#),
        row("0.25", 2, "Usage", "i-1", r#"{"Env":"production","Team":"web"}"#),
        row("3", 1, "Usage", "i-2", "{}"),
        row("-0.5", 1, "Credit", "i-2", "{}"),
        row("0.8", 1, "Tax", "", ""),
    ]);
    assert_ne!(a, read(&merged).unwrap().ledgers[0].fingerprint(), "pools moved between days");
    let changed = sample().replace("2.5,2.5", "2.6,2.6");
    assert_ne!(a, read(&changed).unwrap().ledgers[0].fingerprint());
}

#[test]
fn one_ledger_per_billing_account_and_period() {
    let other_month = row("1", 1, "Usage", "i-9", "{}")
        .replace("2026-10-01T00:00:00Z,2026-11-01T00:00:00Z", "2026-11-01T00:00:00Z,2026-12-01T00:00:00Z");
    let other_account = row("1", 1, "Usage", "i-9", "{}").replace(",999,", ",888,");
    let read = read(&file(&[row("1", 1, "Usage", "i-1", "{}"), other_month, other_account])).unwrap();
    let keys: Vec<(String, u32)> =
        read.ledgers.iter().map(|l| (l.key.billing_account_id.clone(), chrono::Datelike::month(&l.key.period_start))).collect();
    assert_eq!(keys, [("999".into(), 10), ("999".into(), 11), ("888".into(), 10)]);
}

#[test]
fn other_providers_costs_are_kept_as_pools() {
    let saas = row("4", 1, "Usage", "wh-1", "{}").replace(",AWS,", ",Snowflake,");
    let read = read(&file(&[saas])).unwrap();
    let ledger = &read.ledgers[0];
    assert!(ledger.resources.is_empty());
    assert_eq!(ledger.unallocatable.billed, amount("4"));
    assert_eq!(ledger.pool_lines[0].reason, "provider has no vtag resources");
}

#[test]
fn gzip_reads_the_same() {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(sample().as_bytes()).unwrap();
    let bytes = gz.finish().unwrap();
    assert_eq!(read_focus_csv(&bytes[..], |_| {}).unwrap(), read(&sample()).unwrap());
}

fn refused(text: &str) -> ImportError {
    read(text).unwrap_err()
}

#[test]
fn a_missing_required_column_is_named() {
    let text = sample().replace("EffectiveCost,", "").replace("1.0000000001,1.0000000001", "1.0000000001");
    let err = refused(text.lines().next().unwrap());
    assert_eq!((err.rule, err.column.as_deref(), err.row), ("required_column", Some("EffectiveCost"), None));
}

#[test]
fn a_bad_number_names_row_and_column() {
    let mut rows: Vec<String> = sample().lines().skip(1).map(str::to_owned).collect();
    rows[3] = row("3", 1, "Usage", "i-2", "{}").replacen("3,3,", "3,3.0.1,", 1);
    let err = refused(&file(&rows));
    assert_eq!((err.rule, err.column.as_deref(), err.row, err.line), ("number", Some("EffectiveCost"), Some(4), Some(5)));
    assert!(err.to_string().starts_with("row 4, column EffectiveCost: '3.0.1'"), "{err}");
}

#[test]
fn bad_json_in_tags_names_row_and_column() {
    let mut rows: Vec<String> = sample().lines().skip(1).map(str::to_owned).collect();
    rows[5] = row("1", 3, "Usage", "i-3", r#"{"Env": prod}"#);
    let err = refused(&file(&rows));
    assert_eq!((err.rule, err.column.as_deref(), err.row), ("json", Some("Tags"), Some(6)));
    let not_strings = file(&[row("1", 3, "Usage", "i-3", r#"{"Env": 1}"#)]);
    assert!(refused(&not_strings).message.contains("must be a string"));
    // Also on an older day than the tags already kept: a bad cell is never silently skipped.
    let older = file(&[row("1", 3, "Usage", "i-3", "{}"), row("1", 2, "Usage", "i-3", "[1,")]);
    assert_eq!(refused(&older).row, Some(2));
}

#[test]
fn other_bad_cells_are_named() {
    let cases = [
        (row("1", 1, "Refund", "i-1", "{}"), "ChargeCategory", "one_of"),
        (row("1", 1, "Usage", "i-1", "{}").replace("USD", "usd"), "BillingCurrency", "currency"),
        (row("1", 1, "Usage", "i-1", "{}").replace("2026-10-01T00:00:00Z,2026-11", "10/01/2026,2026-11"), "BillingPeriodStart", "date"),
        (row("", 1, "Usage", "i-1", "{}").replacen(",,,", ",1,,", 1), "BilledCost", "required"),
        (row("1", 1, "Usage", "i-1", "{}").replace(",AWS,", ",,"), "ProviderName", "required"),
        (row("1", 1, "Usage", "i-1", "{}").replace("2026-11-01T00:00:00Z", "2026-09-01T00:00:00Z"), "BillingPeriodEnd", "period"),
    ];
    for (bad, column, rule) in cases {
        let err = refused(&file(&[row("1", 1, "Usage", "i-1", "{}"), bad.clone()]));
        assert_eq!((err.column.as_deref(), err.rule, err.row), (Some(column), rule, Some(2)), "{bad}: {err}");
    }
}

#[test]
fn a_ledger_has_one_currency() {
    let eur = row("1", 2, "Usage", "i-1", "{}").replace("USD", "EUR");
    let err = refused(&file(&[row("1", 1, "Usage", "i-1", "{}"), eur]));
    assert_eq!((err.column.as_deref(), err.rule, err.row), (Some("BillingCurrency"), "currency", Some(2)));
}

#[test]
fn a_short_row_and_an_empty_file_are_refused() {
    let err = refused(&format!("{HEADER}\n1,2,3\n"));
    assert_eq!((err.rule, err.row), ("field_count", Some(1)));
    assert_eq!(refused("").rule, "empty");
    assert_eq!(refused(&format!("{HEADER}\n")).rule, "empty");
    let err = read_focus_csv(&[0x1f, 0x8b, 8, 0, 1, 2, 3][..], |_| {}).unwrap_err();
    assert!(matches!(err.rule, "compression" | "unreadable" | "csv"), "{err:?}");
}

#[test]
fn the_first_bad_row_of_a_large_file_is_the_one_reported() {
    // Thousands of rows: records are split on one thread and checked on another, in batches.
    let good: Vec<String> = (0..5000).map(|i| row("1", 1 + (i % 28), "Usage", &format!("i-{}", i % 700), "{}")).collect();
    let mut rows = good.clone();
    rows[3999] = rows[3999].replacen("1,1,", "1,x,", 1);
    let err = refused(&file(&rows));
    assert_eq!((err.rule, err.column.as_deref(), err.row, err.line), ("number", Some("EffectiveCost"), Some(4000), Some(4001)));
    // A malformed record later in the file does not hide an earlier bad cell…
    rows[4500] = "1,2,3".to_owned();
    assert_eq!(refused(&file(&rows)).row, Some(4000));
    // …and is reported itself when nothing before it is wrong.
    let mut rows = good.clone();
    rows[4500] = "1,2,3".to_owned();
    let err = refused(&file(&rows));
    assert_eq!((err.rule, err.row), ("field_count", Some(4501)));
    let read = read(&file(&good)).unwrap();
    assert_eq!((read.rows, read.ledgers[0].total.billed), (5000, amount("5000")));
}

fn ctx() -> vtag_domain::CommandContext {
    let at = chrono::DateTime::parse_from_rfc3339("2026-11-23T00:00:00Z").unwrap().with_timezone(&chrono::Utc);
    vtag_domain::CommandContext {
        command_id: uuid::Uuid::from_u128(1),
        tenant: vtag_domain::TenantId::parse("acme").unwrap(),
        actor: vtag_domain::Actor::parse("finops@acme.test").unwrap(),
        correlation_id: uuid::Uuid::from_u128(2),
        occurred_at: at,
        recorded_at: at,
    }
}

#[test]
fn importing_the_same_content_again_records_nothing() {
    use crate::{decide_import, CostEvent, LedgerHead};
    let ctx = ctx();
    let ledger = &read(&sample()).unwrap().ledgers[0];
    let mut head = LedgerHead::default();
    let first = decide_import(&head, &ctx.tenant, ledger, "oct.csv", &ctx);
    assert_eq!(first.len(), 2, "one chunk and the commit");
    let CostEvent::Imported(commit) = &first[1] else { panic!("the commit comes last") };
    assert_eq!((commit.chunks, commit.rows, commit.replaces), (1, 7, None));
    assert_eq!(commit.total.billed, amount("7.0500000001"));
    assert_eq!(first.iter().map(|e| e.envelope().version).collect::<Vec<_>>(), [1, 2]);
    // A retry before the commit landed decides the very same events.
    assert_eq!(decide_import(&head, &ctx.tenant, ledger, "oct.csv", &ctx), first);
    for e in &first {
        head.evolve(e);
    }
    assert!(decide_import(&head, &ctx.tenant, ledger, "oct-again.csv", &ctx).is_empty());

    let corrected = read(&sample().replace("2.5,2.5", "2.6,2.6")).unwrap();
    let second = decide_import(&head, &ctx.tenant, &corrected.ledgers[0], "oct-v2.csv", &ctx);
    let CostEvent::Imported(replacement) = second.last().unwrap() else { panic!() };
    assert_eq!(replacement.replaces, Some(commit.envelope.import_id));
    assert_ne!(replacement.envelope.import_id, commit.envelope.import_id);
    assert_eq!(replacement.envelope.ledger_id, commit.envelope.ledger_id);
    assert_eq!(second[0].envelope().version, 3);
}

#[test]
fn large_ledgers_are_recorded_in_chunks() {
    use crate::{decide_import, CostEvent, LedgerHead, LINES_PER_CHUNK};
    let rows: Vec<String> = (0..LINES_PER_CHUNK + 5).map(|i| row("0.01", 1, "Usage", &format!("i-{i}"), "{}")).collect();
    let ledger = &read(&file(&rows)).unwrap().ledgers[0];
    let events = decide_import(&LedgerHead::default(), &ctx().tenant, ledger, "big.csv", &ctx());
    let sizes: Vec<usize> = events
        .iter()
        .filter_map(|e| match e {
            CostEvent::Lines(l) => Some(l.resource_lines.len() + l.pool_lines.len()),
            CostEvent::Imported(_) => None,
        })
        .collect();
    assert_eq!(sizes, [LINES_PER_CHUNK, 5]);
    let ids: std::collections::HashSet<_> = events.iter().map(|e| e.envelope().event_id).collect();
    assert_eq!(ids.len(), events.len());
}

#[test]
fn resources_known_only_from_billing_get_a_name_and_type() {
    let bare = row("1", 1, "Usage", "arn:aws:s3:::logs-bucket", "{}").replace(",web,ec2:instance,", ",,,");
    let read = read(&file(&[bare])).unwrap();
    let r = &read.ledgers[0].resources[0];
    assert_eq!((r.name.as_str(), r.resource_type.as_str()), ("logs-bucket", "unknown"));
    let too_many: String = format!("{{{}}}", (0..201).map(|i| format!("\"k{i}\":\"v\"")).collect::<Vec<_>>().join(","));
    let err = refused(&file(&[row("1", 1, "Usage", "i-1", &too_many)]));
    assert_eq!((err.column.as_deref(), err.rule), (Some("Tags"), "max_items"));
}

#[test]
fn a_resources_lines_stay_in_one_chunk() {
    use crate::{decide_import, CostEvent, LedgerHead, LINES_PER_CHUNK};
    // Resources of 3 lines each: a chunk boundary falls inside one unless chunking respects them.
    let rows: Vec<String> = (0..LINES_PER_CHUNK)
        .flat_map(|i| (1..=3).map(move |d| row("0.01", d, "Usage", &format!("i-{i:05}"), "{}")))
        .collect();
    let ledger = &read(&file(&rows)).unwrap().ledgers[0];
    let events = decide_import(&LedgerHead::default(), &ctx().tenant, ledger, "big.csv", &ctx());
    let mut seen = std::collections::HashSet::new();
    for e in &events {
        if let CostEvent::Lines(l) = e {
            let here: std::collections::HashSet<_> = l.resource_lines.iter().map(|r| r.resource_id).collect();
            assert!(seen.is_disjoint(&here), "a resource in two chunks");
            seen.extend(here);
        }
    }
    assert_eq!(seen.len(), LINES_PER_CHUNK);
}

#[test]
fn a_resource_day_beyond_what_read_models_hold_is_refused() {
    let err = refused(&file(&[row("600000000", 1, "Usage", "i-1", "{}"), row("600000000", 1, "Usage", "i-1", "{}")]));
    assert_eq!((err.column.as_deref(), err.rule, err.row), (Some("BilledCost"), "range", Some(2)));
}

#[test]
fn monthly_cost_is_a_30_day_run_rate_to_the_cent() {
    // Two days in the file: i-1 costs 3.5000000001 + 0.25 → 3.7500000001 × 30 / 2 = 56.25.
    let costs = crate::monthly_costs(&read(&sample()).unwrap());
    let i1 = costs.iter().find(|c| c.cloud_id == "i-1").unwrap();
    assert_eq!((i1.cents, i1.currency.as_str(), i1.as_of.to_string().as_str()), (5625, "USD", "2026-10-02"));
    let i2 = costs.iter().find(|c| c.cloud_id == "i-2").unwrap();
    assert_eq!(i2.cents, 3750, "credits count: (3 - 0.5) × 30 / 2");
    assert_eq!(costs.len(), 2, "pools have no resource");
}
