//! The monthly cost of each billed resource, as rules (`monthly_cost`) and cost-threshold policies
//! read it: BilledCost over the trailing 30 charge days of the file, ending at its last charge
//! day; a file covering fewer days is scaled to 30 (a run rate). Rounded to the cent, half to even.

use std::collections::{BTreeSet, HashMap};

use chrono::{Duration, NaiveDate};
use vtag_domain::Provider;

use crate::amount::Amount;
use crate::read::BillingFile;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthlyCost {
    pub provider: Provider,
    pub cloud_id: String,
    pub cents: i64,
    pub currency: String,
    /// The last charge day the run rate covers.
    pub as_of: NaiveDate,
}

pub fn monthly_costs(file: &BillingFile) -> Vec<MonthlyCost> {
    let lines = || file.ledgers.iter().flat_map(|l| l.resource_lines.iter().map(move |line| (l, line)));
    let Some(last) = lines().map(|(_, l)| l.day).max() else { return Vec::new() };
    let first = last - Duration::days(29);
    let covered: BTreeSet<NaiveDate> = lines().map(|(_, l)| l.day).filter(|d| *d >= first).collect();
    let mut sums: HashMap<(Provider, &str, &str), Amount> = HashMap::new();
    for (ledger, line) in lines().filter(|(_, l)| l.day >= first) {
        let r = &ledger.resources[line.resource as usize];
        *sums.entry((r.provider, r.cloud_id.as_str(), ledger.currency.as_str())).or_default() += line.costs.billed;
    }
    let days = covered.len() as i128;
    // One cost per resource: a resource billed in two currencies (rare: two billing accounts)
    // takes the one it costs most in, so the answer does not depend on map order.
    let mut biggest: HashMap<(Provider, &str), (&str, Amount)> = HashMap::new();
    for ((provider, cloud_id, currency), sum) in sums {
        let e = biggest.entry((provider, cloud_id)).or_insert((currency, sum));
        if (sum.units().abs(), std::cmp::Reverse(currency)) > (e.1.units().abs(), std::cmp::Reverse(e.0)) {
            *e = (currency, sum);
        }
    }
    let mut costs: Vec<MonthlyCost> = biggest
        .into_iter()
        .map(|((provider, cloud_id), (currency, sum))| ((provider, cloud_id, currency), sum))
        .map(|((provider, cloud_id, currency), sum)| MonthlyCost {
            provider,
            cloud_id: cloud_id.to_owned(),
            cents: i64::try_from(Amount::from_units(sum.units() * 30 / days).to_cents()).unwrap_or(i64::MAX),
            currency: currency.to_owned(),
            as_of: last,
        })
        .collect();
    costs.sort_by(|a, b| (a.provider.as_str(), &a.cloud_id).cmp(&(b.provider.as_str(), &b.cloud_id)));
    costs
}
