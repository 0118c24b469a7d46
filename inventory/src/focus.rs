//! What the clouds would bill for an inventory, as a FOCUS billing export (the FinOps Open Cost and
//! Usage Specification's CSV): daily usage rows per resource, the odd credit, and the charges no
//! resource carries (tax, a support plan, adjustments), for one billing account per cloud.
//!
//! Like the inventory, the export is a pure function of the generator's seed and the
//! [`FocusConfig`]: byte-identical on every platform (integer amounts, our own PRNG), and a
//! resource's charges on a day are the same whatever range is exported. It streams: memory grows
//! with the number of days and billing accounts, never with the number of rows.
//!
//! Rows come billing period by billing period, as the clouds deliver exports; within a period,
//! resource by resource (each resource's days together, so each is generated once per period, not
//! once per day), then each billing account's own charges.

use std::collections::BTreeMap;
use std::io::Write;
use std::ops::Range;

use anyhow::{ensure, Context};
use chrono::{Datelike, Months, NaiveDate};

use crate::clouds::Provider;
use crate::generator::Generator;
use crate::prng::Rng;

/// The header: FOCUS column names, in this order.
pub const FOCUS_COLUMNS: [&str; 21] = [
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeDescription",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "EffectiveCost",
    "ListCost",
    "ProviderName",
    "RegionId",
    "ResourceId",
    "ResourceName",
    "ResourceType",
    "ServiceCategory",
    "ServiceName",
    "SubAccountId",
    "Tags",
];

/// Amounts are integers in units of 10^-10 of the currency: exact to sum, and as fine as any cloud
/// prices (AWS bills to 10 decimals).
pub const AMOUNT_SCALE: i128 = 10_000_000_000;
const FRACTION_DIGITS: u32 = 10;

const CURRENCY: &str = "USD";

/// PRNG domains (0 to 2 are the generator's).
const BILLING_ACCOUNT_DOMAIN: u64 = 3;
const PRICING_DOMAIN: u64 = 4;
const ADJUSTMENT_DOMAIN: u64 = 5;
/// A resource's charges on a day are drawn from that day's own domain (this plus the day number),
/// so they do not depend on which range is exported. Far above the fixed domains.
const DAY_DOMAINS: u64 = 1 << 32;

/// Resources billed only now and then (a batch box, a scaled-to-zero service), and how often
/// such a resource is not billed on a given day.
const INTERMITTENT: f64 = 0.05;
const IDLE_DAY: f64 = 0.3;
/// Resource-days with a credit.
const CREDIT: f64 = 0.004;
/// Resources billed in two usage rows a day (compute and data transfer, storage and requests).
const TWO_ROWS: f64 = 0.5;
/// Resources whose usage is discounted (commitments), so their effective cost is below the billed.
const DISCOUNTED: f64 = 0.3;
/// Resources billed below the public price (negotiated rates), so their list cost is above.
const BELOW_LIST: f64 = 0.6;
/// Billing periods in which a billing account gets an adjustment.
const ADJUSTED: f64 = 0.6;

/// Which resources are billed over which days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FocusConfig {
    /// Inventory resources `0..resources` are billed.
    pub resources: usize,
    /// Resources `resources..resources + billing_only` are billed too, but never observed: what a
    /// collector missed, or what was deleted before it ran.
    pub billing_only: usize,
    pub first_day: NaiveDate,
    pub days: u32,
}

impl FocusConfig {
    /// October 2026, less its last day, with no billing-only resources.
    pub fn new(resources: usize) -> Self {
        let first_day = NaiveDate::from_ymd_opt(2026, 10, 1).expect("a valid date");
        Self { resources, billing_only: 0, first_day, days: 30 }
    }
}

/// A cloud's billing account of the tenant (AWS payer, Azure billing account, GCP Cloud Billing
/// account): every charge of its cloud is billed to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingAccount {
    pub provider: Provider,
    /// 12 digits, `<uuid>:<uuid>_2019-05-31` (a Microsoft Customer Agreement), `01A2B3-C4D5E6-F7A8B9`.
    pub id: String,
    pub name: String,
    /// Tax charged on usage, in millionths.
    tax_ppm: u64,
}

/// One row of the export. Amounts are in units of 10^-10 ([`AMOUNT_SCALE`]); `None` is an empty
/// cell (charges no resource carries have no resource, region or sub account).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FocusRow {
    pub billed_cost: i128,
    pub billing_account_id: String,
    pub billing_account_name: String,
    pub billing_currency: String,
    pub billing_period_end: String,
    pub billing_period_start: String,
    pub charge_category: String,
    pub charge_description: String,
    pub charge_period_end: String,
    pub charge_period_start: String,
    pub effective_cost: i128,
    pub list_cost: i128,
    pub provider_name: String,
    pub region_id: Option<String>,
    pub resource_id: Option<String>,
    pub resource_name: Option<String>,
    pub resource_type: Option<String>,
    pub service_category: String,
    pub service_name: String,
    pub sub_account_id: Option<String>,
    /// A JSON object of string values.
    pub tags: String,
}

impl FocusRow {
    /// The row's CSV fields, in [`FOCUS_COLUMNS`] order, exactly as written.
    pub fn record(&self) -> [String; 21] {
        let cell = |v: &Option<String>| v.clone().unwrap_or_default();
        [
            format_amount(self.billed_cost),
            self.billing_account_id.clone(),
            self.billing_account_name.clone(),
            self.billing_currency.clone(),
            self.billing_period_end.clone(),
            self.billing_period_start.clone(),
            self.charge_category.clone(),
            self.charge_description.clone(),
            self.charge_period_end.clone(),
            self.charge_period_start.clone(),
            format_amount(self.effective_cost),
            format_amount(self.list_cost),
            self.provider_name.clone(),
            cell(&self.region_id),
            cell(&self.resource_id),
            cell(&self.resource_name),
            cell(&self.resource_type),
            self.service_category.clone(),
            self.service_name.clone(),
            cell(&self.sub_account_id),
            self.tags.clone(),
        ]
    }
}

/// Exact sums of what was written, in units of 10^-10 USD (the only currency).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FocusTotals {
    pub rows: u64,
    pub billed: i128,
    pub effective: i128,
    pub list: i128,
    /// Billed on rows without a resource (tax, support, adjustments).
    pub unallocatable_billed: i128,
}

impl FocusTotals {
    fn add(&mut self, subject: &Subject, charge: &Charge) {
        self.rows += 1;
        self.billed += charge.billed;
        self.effective += charge.effective;
        self.list += charge.list;
        if subject.resource_id.is_empty() {
            self.unallocatable_billed += charge.billed;
        }
    }
}

/// `12.0000000417`, `-3.5`, `0`: the exact decimal of an amount in units of 10^-10, without
/// trailing zeros.
pub fn format_amount(units: i128) -> String {
    let mut buf = [0; AMOUNT_BYTES];
    String::from_utf8(amount_bytes(units, &mut buf).to_vec()).expect("digits are ASCII")
}

/// Sign, 39 digits of an i128, the point and 10 decimals fit.
const AMOUNT_BYTES: usize = 64;

/// Formats from the right into `buf`, without allocating: the writer formats three per row.
fn amount_bytes(units: i128, buf: &mut [u8; AMOUNT_BYTES]) -> &[u8] {
    let scale = AMOUNT_SCALE as u128;
    let magnitude = units.unsigned_abs();
    let (mut whole, mut fraction) = (magnitude / scale, (magnitude % scale) as u64);
    let mut digits = FRACTION_DIGITS;
    while digits > 0 && fraction % 10 == 0 {
        fraction /= 10;
        digits -= 1;
    }
    let mut at = buf.len();
    let mut put = |b: u8| {
        at -= 1;
        buf[at] = b;
    };
    for _ in 0..digits {
        put(b'0' + (fraction % 10) as u8);
        fraction /= 10;
    }
    if digits > 0 {
        put(b'.');
    }
    loop {
        put(b'0' + (whole % 10) as u8);
        whole /= 10;
        if whole == 0 {
            break;
        }
    }
    if units < 0 {
        put(b'-');
    }
    &buf[at..]
}

/// The FOCUS export of a generator's resources.
pub struct FocusExport<'a> {
    generator: &'a Generator,
    config: FocusConfig,
    accounts: Vec<BillingAccount>,
    /// The billing account of each provider (by `Provider as usize`), if the tenant uses it.
    account_of: [Option<usize>; 3],
    days: Vec<Day>,
    periods: Vec<Period>,
}

struct Day {
    /// Days since 1 January of year 1: keys the day's PRNG domain.
    number: u64,
    start: String,
    end: String,
    period: usize,
}

/// The in-range days of one calendar month.
struct Period {
    start: String,
    end: String,
    /// 12 × year + month: keys the period's adjustments.
    month: u64,
    days: Range<usize>,
}

impl<'a> FocusExport<'a> {
    pub fn new(generator: &'a Generator, config: FocusConfig) -> anyhow::Result<Self> {
        let last = config
            .first_day
            .checked_add_days(chrono::Days::new(u64::from(config.days)))
            .context("the last day is beyond the calendar")?;
        // ISO 8601 years have four digits, and the last billing period ends a month later
        ensure!(last.year() < 9999, "the range must end before the year 9999");
        ensure!(config.first_day.year() >= 1, "the first day must be in the common era");
        config.resources.checked_add(config.billing_only).context("too many resources")?;
        let seed = generator.config().seed;
        let org = generator.org();
        let mut accounts = Vec::new();
        let mut account_of = [None; 3];
        for provider in [Provider::Aws, Provider::Azure, Provider::Gcp] {
            if generator.accounts().iter().any(|a| a.provider() == provider) {
                account_of[provider as usize] = Some(accounts.len());
                accounts.push(billing_account(seed, org, provider));
            }
        }
        let (days, periods) = calendar(config.first_day, config.days);
        Ok(Self { generator, config, accounts, account_of, days, periods })
    }

    pub fn config(&self) -> &FocusConfig {
        &self.config
    }

    /// One per cloud the tenant uses, in the order AWS, Azure, GCP.
    pub fn billing_accounts(&self) -> &[BillingAccount] {
        &self.accounts
    }

    /// Every row, in the order [`write_csv`](Self::write_csv) writes them.
    pub fn rows(&self) -> impl Iterator<Item = FocusRow> + '_ {
        let mut cursor = Cursor::new(self);
        let mut batch = Batch::default();
        let mut at = 0;
        std::iter::from_fn(move || {
            while at == batch.charges.len() {
                if !cursor.next(&mut batch) {
                    return None;
                }
                at = 0;
            }
            at += 1;
            Some(self.row(&batch.subject, &batch.charges[at - 1]))
        })
    }

    /// Writes the header and every row as CSV; returns the exact sums of what it wrote.
    pub fn write_csv<W: Write>(&self, w: W) -> anyhow::Result<FocusTotals> {
        let mut out = csv::WriterBuilder::new().buffer_capacity(1 << 16).from_writer(w);
        out.write_record(FOCUS_COLUMNS).map_err(io_error)?;
        let mut totals = FocusTotals::default();
        self.each_batch(|batch| {
            for charge in &batch.charges {
                let (mut billed, mut effective, mut list) = ([0; AMOUNT_BYTES], [0; AMOUNT_BYTES], [0; AMOUNT_BYTES]);
                let amounts = [
                    amount_bytes(charge.billed, &mut billed),
                    amount_bytes(charge.effective, &mut effective),
                    amount_bytes(charge.list, &mut list),
                ];
                out.write_record(self.fields(&batch.subject, charge, amounts)).map_err(io_error)?;
                totals.add(&batch.subject, charge);
            }
            Ok(())
        })?;
        out.flush()?;
        Ok(totals)
    }

    /// The sums [`write_csv`](Self::write_csv) returns, without formatting anything.
    pub fn totals(&self) -> FocusTotals {
        let mut totals = FocusTotals::default();
        let _ = self.each_batch(|batch| {
            batch.charges.iter().for_each(|c| totals.add(&batch.subject, c));
            Ok(())
        });
        totals
    }

    /// Billed per resource id over the whole range (rows without a resource left out). Holds every
    /// resource in memory: for tests and small exports.
    pub fn billed_by_resource(&self) -> BTreeMap<String, i128> {
        let mut billed = BTreeMap::new();
        let _ = self.each_batch(|batch| {
            if !batch.subject.resource_id.is_empty() {
                let sum: i128 = batch.charges.iter().map(|c| c.billed).sum();
                *billed.entry(batch.subject.resource_id.clone()).or_default() += sum;
            }
            Ok(())
        });
        billed
    }

    fn each_batch(&self, mut f: impl FnMut(&Batch) -> anyhow::Result<()>) -> anyhow::Result<()> {
        let mut cursor = Cursor::new(self);
        let mut batch = Batch::default();
        while cursor.next(&mut batch) {
            f(&batch)?;
        }
        Ok(())
    }

    /// The one place a row's cells are decided, for the CSV and for [`FocusRow`] alike.
    fn fields<'b>(&'b self, subject: &'b Subject, charge: &Charge, amounts: [&'b [u8]; 3]) -> [&'b [u8]; 21] {
        let account = &self.accounts[subject.account];
        let day = &self.days[charge.day];
        let period = &self.periods[day.period];
        [
            amounts[0],
            account.id.as_bytes(),
            account.name.as_bytes(),
            CURRENCY.as_bytes(),
            period.end.as_bytes(),
            period.start.as_bytes(),
            charge.category.as_bytes(),
            charge.description.as_bytes(),
            day.end.as_bytes(),
            day.start.as_bytes(),
            amounts[1],
            amounts[2],
            provider_name(account.provider).as_bytes(),
            subject.region.as_bytes(),
            subject.resource_id.as_bytes(),
            subject.resource_name.as_bytes(),
            subject.resource_type.as_bytes(),
            charge.service.category.as_bytes(),
            charge.service.name.as_bytes(),
            subject.sub_account.as_bytes(),
            subject.tags.as_bytes(),
        ]
    }

    fn row(&self, subject: &Subject, charge: &Charge) -> FocusRow {
        let f = self.fields(subject, charge, [b"", b"", b""]).map(|b| std::str::from_utf8(b).expect("UTF-8 cells"));
        let cell = |s: &str| Some(s.to_owned()).filter(|s| !s.is_empty());
        FocusRow {
            billed_cost: charge.billed,
            billing_account_id: f[1].to_owned(),
            billing_account_name: f[2].to_owned(),
            billing_currency: f[3].to_owned(),
            billing_period_end: f[4].to_owned(),
            billing_period_start: f[5].to_owned(),
            charge_category: f[6].to_owned(),
            charge_description: f[7].to_owned(),
            charge_period_end: f[8].to_owned(),
            charge_period_start: f[9].to_owned(),
            effective_cost: charge.effective,
            list_cost: charge.list,
            provider_name: f[12].to_owned(),
            region_id: cell(f[13]),
            resource_id: cell(f[14]),
            resource_name: cell(f[15]),
            resource_type: cell(f[16]),
            service_category: f[17].to_owned(),
            service_name: f[18].to_owned(),
            sub_account_id: cell(f[19]),
            tags: f[20].to_owned(),
        }
    }

    /// Resource `index`'s charges on the days of `period`; none if it was idle all along.
    fn resource_batch(&self, index: u64, period: &Period, batch: &mut Batch) {
        let seed = self.generator.config().seed;
        let r = self.generator.resource(index).observed;
        let provider = provider_of(r.provider);
        let s = &mut batch.subject;
        s.account = self.account_of[provider as usize].expect("a resource's cloud has a billing account");
        s.sub_account = r.account_id;
        s.region = r.region;
        s.resource_id = r.resource_id;
        s.resource_name = r.name;
        s.resource_type = r.resource_type;
        s.tags = serde_json::to_string(&r.native_tags).expect("string maps serialize");

        let service = service(r.resource_type);
        let pricing = Pricing::draw(&mut Rng::stream(seed, PRICING_DOMAIN, index));
        batch.charges.clear();
        for d in period.days.clone() {
            let mut rng = Rng::stream(seed, DAY_DOMAINS + self.days[d].number, index);
            pricing.day(&mut rng, d, service, &mut batch.charges);
        }
    }

    /// A billing account's own charges in `period`: tax on each day's usage, the support plan,
    /// now and then an adjustment. `usage` is what its resources were billed each day.
    fn account_batch(&self, k: usize, period: &Period, usage: &[i128], batch: &mut Batch) {
        let account = &self.accounts[k];
        let s = &mut batch.subject;
        s.account = k;
        for field in [&mut s.sub_account, &mut s.region, &mut s.resource_id, &mut s.resource_name] {
            field.clear();
        }
        s.resource_type = "";
        s.tags.clear();
        s.tags.push_str("{}");

        batch.charges.clear();
        let charges = &mut batch.charges;
        for d in period.days.clone() {
            let tax = round_to(usage[d].max(0) * i128::from(account.tax_ppm) / 1_000_000, 2);
            charges.push(Charge::flat(d, "Tax", "Sales tax", &TAX, tax));
        }
        // a support plan is billed in full with the period's first day; Business support costs
        // 3 % of the usage, at least $100
        let month_usage: i128 = usage[period.days.clone()].iter().sum();
        let support = round_to(month_usage * 3 / 100, 2).max(100 * AMOUNT_SCALE);
        let service = support_service(account.provider);
        charges.insert(1, Charge::flat(period.days.start, "Purchase", "Business support", service, support));

        let seed = self.generator.config().seed;
        let mut rng = Rng::stream(seed, ADJUSTMENT_DOMAIN, period.month * 4 + account.provider as u64);
        if rng.chance(ADJUSTED) {
            let d = period.days.start + rng.below(period.days.len() as u64) as usize;
            let (description, amount) = if rng.chance(0.3) {
                ("Rounding adjustment", rng.between(1, 99_999) as i128)
            } else {
                ("Billing correction", rng.between(100, 20_000) as i128 * AMOUNT_SCALE / 100)
            };
            let amount = if rng.chance(0.7) { -amount } else { amount };
            let at = charges.iter().position(|c| c.day > d).unwrap_or(charges.len());
            charges.insert(at, Charge::flat(d, "Adjustment", description, &ADJUSTMENT, amount));
        }
    }
}

/// Writing CSV fails only in I/O; kept an `io::Error`, so callers can tell a closed pipe.
fn io_error(e: csv::Error) -> anyhow::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => e.into(),
        other => anyhow::anyhow!("writing CSV: {other:?}"),
    }
}

/// The columns a run of rows shares: one resource, or one billing account's own charges (then
/// the resource's cells are empty).
#[derive(Default)]
struct Subject {
    account: usize,
    sub_account: String,
    region: String,
    resource_id: String,
    resource_name: String,
    resource_type: &'static str,
    /// JSON.
    tags: String,
}

/// What varies within a run: the day, what was charged, the amounts.
#[derive(Debug, Clone, Copy)]
struct Charge {
    /// Index into the export's days.
    day: usize,
    category: &'static str,
    description: &'static str,
    service: &'static Service,
    billed: i128,
    effective: i128,
    list: i128,
}

impl Charge {
    /// Neither discounted nor below list; credits and refunds have no list price.
    fn flat(
        day: usize,
        category: &'static str,
        description: &'static str,
        service: &'static Service,
        amount: i128,
    ) -> Self {
        Self { day, category, description, service, billed: amount, effective: amount, list: amount.max(0) }
    }
}

#[derive(Default)]
struct Batch {
    subject: Subject,
    charges: Vec<Charge>,
}

/// Walks the export batch by batch, reusing one batch's buffers, and sums each billing account's
/// resource charges per day as it goes: the accounts' tax and support follow from them.
struct Cursor<'e, 'g> {
    export: &'e FocusExport<'g>,
    period: usize,
    resource: u64,
    account: usize,
    /// Billed per billing account per day (account-major), for the current period.
    usage: Vec<i128>,
}

impl<'e, 'g> Cursor<'e, 'g> {
    fn new(export: &'e FocusExport<'g>) -> Self {
        let usage = vec![0; export.accounts.len() * export.days.len()];
        Self { export, period: 0, resource: 0, account: 0, usage }
    }

    /// Fills `batch` with the next non-empty run of rows; false at the end.
    fn next(&mut self, batch: &mut Batch) -> bool {
        let e = self.export;
        let resources = (e.config.resources + e.config.billing_only) as u64;
        let days = e.days.len();
        while let Some(period) = e.periods.get(self.period) {
            if self.resource < resources {
                e.resource_batch(self.resource, period, batch);
                self.resource += 1;
                let usage = &mut self.usage[batch.subject.account * days..][..days];
                batch.charges.iter().for_each(|c| usage[c.day] += c.billed);
                if !batch.charges.is_empty() {
                    return true;
                }
            } else if self.account < e.accounts.len() {
                e.account_batch(self.account, period, &self.usage[self.account * days..][..days], batch);
                self.account += 1;
                return true;
            } else {
                (self.period, self.resource, self.account) = (self.period + 1, 0, 0);
            }
        }
        false
    }
}

/// How one resource is billed, whatever the day.
struct Pricing {
    /// The typical daily cost.
    daily: i128,
    /// The percentage of the day's cost on a second usage row, if the resource has one.
    second: Option<u64>,
    /// Percentages off the billed cost (effective) and on top of it (list).
    discount: u64,
    markup: u64,
    intermittent: bool,
}

impl Pricing {
    fn draw(rng: &mut Rng) -> Self {
        // log-normal-ish without floats (their `exp` differs between platforms): a mantissa of 1
        // to 10 times a decade from a cent to $10 a day, most often $1, or times 30 (to $300)
        let decade = rng.below(3) + rng.below(3);
        let mantissa = i128::from(rng.between(AMOUNT_SCALE as u64, 10 * AMOUNT_SCALE as u64 - 1));
        let daily = match decade {
            0 => mantissa / 100,
            1 => mantissa / 10,
            2 => mantissa,
            3 => mantissa * 10,
            _ => mantissa * 30,
        };
        let second = rng.chance(TWO_ROWS).then(|| rng.between(5, 45));
        let discount = if rng.chance(DISCOUNTED) { rng.between(3, 30) } else { 0 };
        let markup = if rng.chance(BELOW_LIST) { rng.between(1, 40) } else { 0 };
        Self { daily, second, discount, markup, intermittent: rng.chance(INTERMITTENT) }
    }

    /// The resource's charges of day `d`.
    fn day(&self, rng: &mut Rng, d: usize, service: &'static Service, charges: &mut Vec<Charge>) {
        if self.intermittent && rng.chance(IDLE_DAY) {
            return;
        }
        let total = self.daily * i128::from(rng.between(850_000, 1_150_000)) / 1_000_000;
        let second = self.second.map_or(0, |share| total * i128::from(share * rng.between(80, 120)) / 10_000);
        charges.push(self.usage(rng, Charge::flat(d, "Usage", service.usage[0], service, total - second)));
        if self.second.is_some() {
            charges.push(self.usage(rng, Charge::flat(d, "Usage", service.usage[1], service, second)));
        }
        if rng.chance(CREDIT) {
            // credits are in cents: none is left of one on a few cents' usage
            let credit = -round_to(total * i128::from(rng.between(10, 100)) / 100, 2);
            let description = if rng.chance(0.5) { "Promotional credit" } else { "Service level agreement credit" };
            if credit != 0 {
                charges.push(Charge::flat(d, "Credit", description, service, credit));
            }
        }
    }

    /// A usage line of the `flat` amount, rounded, discounted and marked up as this resource is.
    fn usage(&self, rng: &mut Rng, flat: Charge) -> Charge {
        // most lines carry all 10 decimals, as unit prices times usage do; some are rounded
        const PRECISIONS: [(u32, u32); 6] = [(10, 60), (9, 5), (8, 10), (6, 10), (4, 5), (2, 10)];
        let billed = round_to(flat.billed, rng.weighted(&PRECISIONS, |(_, w)| *w).0);
        let effective = billed - billed * i128::from(self.discount) / 100;
        let list = billed + billed * i128::from(self.markup) / 100;
        Charge { billed, effective, list, ..flat }
    }
}

/// Rounds half away from zero to `digits` decimals.
fn round_to(units: i128, digits: u32) -> i128 {
    let step = 10i128.pow(FRACTION_DIGITS - digits);
    let rounded = (units.abs() + step / 2) / step * step;
    if units < 0 {
        -rounded
    } else {
        rounded
    }
}

/// FOCUS's ServiceName and ServiceCategory of a kind of resource, and its usage lines.
#[derive(Debug)]
struct Service {
    name: &'static str,
    category: &'static str,
    usage: [&'static str; 2],
}

const fn svc(name: &'static str, category: &'static str, usage: [&'static str; 2]) -> Service {
    Service { name, category, usage }
}

const INSTANCE: [&str; 2] = ["On-demand instance hours", "Data transfer out to the internet"];
const DISK: [&str; 2] = ["Provisioned storage (GB-month)", "Snapshot storage (GB-month)"];
const OBJECTS: [&str; 2] = ["Storage (GB-month)", "Requests"];
const DATABASE: [&str; 2] = ["Database instance hours", "Database storage (GB-month)"];
const FUNCTION: [&str; 2] = ["Requests and compute time (GB-seconds)", "Data transfer out to the internet"];
const CLUSTER: [&str; 2] = ["Cluster management hours", "Data transfer between zones"];

const TAX: Service = svc("Tax", "Other", ["", ""]);
const ADJUSTMENT: Service = svc("Billing adjustment", "Other", ["", ""]);

fn service(resource_type: &str) -> &'static Service {
    const EC2: Service = svc("Amazon Elastic Compute Cloud", "Compute", INSTANCE);
    const EBS: Service = svc("Amazon Elastic Compute Cloud", "Storage", DISK);
    const S3: Service = svc("Amazon Simple Storage Service", "Storage", OBJECTS);
    const RDS: Service = svc("Amazon Relational Database Service", "Databases", DATABASE);
    const LAMBDA: Service = svc("AWS Lambda", "Compute", FUNCTION);
    const DYNAMODB: Service = svc("Amazon DynamoDB", "Databases", ["Request units", "Table storage (GB-month)"]);
    const EKS: Service = svc("Amazon Elastic Kubernetes Service", "Compute", CLUSTER);
    const ELB: Service = svc("Elastic Load Balancing", "Networking", ["Load balancer hours", "Capacity units"]);
    const VM: Service = svc("Virtual Machines", "Compute", INSTANCE);
    const MANAGED_DISK: Service = svc("Storage", "Storage", DISK);
    const STORAGE_ACCOUNT: Service = svc("Storage", "Storage", OBJECTS);
    const SQL_DATABASE: Service = svc("SQL Database", "Databases", DATABASE);
    const AKS: Service = svc("Azure Kubernetes Service", "Compute", CLUSTER);
    const APP_SERVICE: Service = svc("Azure App Service", "Compute", ["App Service plan hours", INSTANCE[1]]);
    const GCE: Service = svc("Compute Engine", "Compute", INSTANCE);
    const PD: Service = svc("Compute Engine", "Storage", DISK);
    const GCS: Service = svc("Cloud Storage", "Storage", OBJECTS);
    const CLOUD_SQL: Service = svc("Cloud SQL", "Databases", DATABASE);
    const BIGQUERY: Service = svc("BigQuery", "Analytics", ["Analysis (TiB scanned)", "Active storage (GB-month)"]);
    const GKE: Service = svc("Kubernetes Engine", "Compute", CLUSTER);
    const FUNCTIONS: Service = svc("Cloud Functions", "Compute", FUNCTION);
    const OTHER: Service = svc("Other", "Other", ["Usage", "Usage"]);
    match resource_type {
        "ec2" => &EC2,
        "ebs-volume" => &EBS,
        "s3" => &S3,
        "rds" => &RDS,
        "lambda" => &LAMBDA,
        "dynamodb" => &DYNAMODB,
        "eks" => &EKS,
        "elb" => &ELB,
        "vm" => &VM,
        "managed-disk" => &MANAGED_DISK,
        "storage-account" => &STORAGE_ACCOUNT,
        "sql-database" => &SQL_DATABASE,
        "aks" => &AKS,
        "app-service" => &APP_SERVICE,
        "compute-instance" => &GCE,
        "persistent-disk" => &PD,
        "gcs-bucket" => &GCS,
        "cloud-sql" => &CLOUD_SQL,
        "bigquery-dataset" => &BIGQUERY,
        "gke-cluster" => &GKE,
        "cloud-function" => &FUNCTIONS,
        _ => &OTHER,
    }
}

fn support_service(provider: Provider) -> &'static Service {
    const AWS: Service = svc("AWS Support (Business)", "Other", ["", ""]);
    const AZURE: Service = svc("Azure Support", "Other", ["", ""]);
    const GCP: Service = svc("Cloud Support", "Other", ["", ""]);
    match provider {
        Provider::Aws => &AWS,
        Provider::Azure => &AZURE,
        Provider::Gcp => &GCP,
    }
}

/// FOCUS's ProviderName.
fn provider_name(provider: Provider) -> &'static str {
    match provider {
        Provider::Aws => "AWS",
        Provider::Azure => "Microsoft",
        Provider::Gcp => "Google Cloud",
    }
}

fn provider_of(name: &str) -> Provider {
    match name {
        "aws" => Provider::Aws,
        "azure" => Provider::Azure,
        "gcp" => Provider::Gcp,
        other => unreachable!("the generator has no provider {other}"),
    }
}

fn billing_account(seed: u64, org: &str, provider: Provider) -> BillingAccount {
    let mut rng = Rng::stream(seed, BILLING_ACCOUNT_DOMAIN, provider as u64);
    let uuid = |rng: &mut Rng| {
        let bytes = (u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64())).to_be_bytes();
        uuid::Builder::from_random_bytes(bytes).into_uuid().to_string()
    };
    let mut title = org.to_owned();
    title[..1].make_ascii_uppercase();
    let (id, name) = match provider {
        Provider::Aws => {
            (format!("{}{:011}", rng.between(1, 9), rng.between(0, 99_999_999_999)), format!("{org}-management"))
        }
        // a Microsoft Customer Agreement: the account's and the agreement's ids, and its date
        Provider::Azure => {
            (format!("{}:{}_2019-05-31", uuid(&mut rng), uuid(&mut rng)), format!("{title} Inc."))
        },
        Provider::Gcp => {
            let group = |rng: &mut Rng| format!("{:06X}", rng.below(1 << 24));
            (format!("{}-{}-{}", group(&mut rng), group(&mut rng), group(&mut rng)), format!("{title} billing account"))
        }
    };
    BillingAccount { provider, id, name, tax_ppm: rng.between(50_000, 100_000) }
}

/// The days `first..first + count` and the billing periods (calendar months) they fall in.
fn calendar(first: NaiveDate, count: u32) -> (Vec<Day>, Vec<Period>) {
    let iso = |date: NaiveDate| format!("{date}T00:00:00Z");
    let mut days: Vec<Day> = Vec::with_capacity(count as usize);
    let mut periods: Vec<Period> = Vec::new();
    for (d, date) in first.iter_days().take(count as usize).enumerate() {
        let month_start = date.with_day(1).expect("every month has a first");
        if periods.last().is_none_or(|p| p.start != iso(month_start)) {
            let month = month_start + Months::new(1);
            let key = 12 * date.year() as u64 + u64::from(date.month0());
            periods.push(Period { start: iso(month_start), end: iso(month), month: key, days: d..d });
        }
        let period = periods.len() - 1;
        periods[period].days.end = d + 1;
        let number = u64::from(date.num_days_from_ce() as u32);
        days.push(Day { number, start: iso(date), end: iso(date.succ_opt().expect("checked")), period });
    }
    (days, periods)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_format_exactly() {
        let cases = [
            (0, "0"),
            (1, "0.0000000001"),
            (-35 * AMOUNT_SCALE / 10, "-3.5"),
            (AMOUNT_SCALE / 10, "0.1"),
            (12 * AMOUNT_SCALE + 417, "12.0000000417"),
            (300 * AMOUNT_SCALE, "300"),
            (-1, "-0.0000000001"),
            (i128::MIN, "-17014118346046923173168730371.5884105728"),
        ];
        for (units, text) in cases {
            assert_eq!(format_amount(units), text);
        }
    }

    #[test]
    fn rounding_is_half_away_from_zero() {
        assert_eq!(round_to(12_345_000_000, 2), 12_300_000_000);
        assert_eq!(round_to(12_350_000_000, 2), 12_400_000_000);
        assert_eq!(round_to(-12_350_000_000, 2), -12_400_000_000);
        assert_eq!(round_to(7, 10), 7);
        assert_eq!(round_to(4, 9), 0);
    }

    #[test]
    fn daily_costs_stay_between_a_cent_and_300_dollars() {
        let (mut low, mut high) = (i128::MAX, 0);
        for i in 0..20_000 {
            let p = Pricing::draw(&mut Rng::stream(1, PRICING_DOMAIN, i));
            (low, high) = (low.min(p.daily), high.max(p.daily));
        }
        assert!((AMOUNT_SCALE / 100..AMOUNT_SCALE / 50).contains(&low), "{low}");
        assert!(high <= 300 * AMOUNT_SCALE && high > 250 * AMOUNT_SCALE, "{high}");
    }
}
