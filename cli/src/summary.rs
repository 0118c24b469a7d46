//! The server's answer to an import, told in a few lines: what was recorded, per ledger.

use std::time::Duration;

use serde::Deserialize;

/// The parts of `POST /api/v1/costs/imports`'s answer the summary shows.
#[derive(Debug, Deserialize)]
pub struct Imported {
    pub rows: u64,
    #[serde(default)]
    pub rounded_amounts: u64,
    pub resources: ResourcesSeen,
    pub ledgers: Vec<Ledger>,
}

#[derive(Debug, Deserialize)]
pub struct ResourcesSeen {
    pub billed: u64,
    pub recorded: u64,
    /// Newer servers: resources whose monthly run rate changed.
    #[serde(default)]
    pub monthly_costs_changed: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub struct Ledger {
    pub provider: String,
    pub billing_account_id: String,
    pub period_start: String,
    pub period_end: String,
    pub currency: String,
    pub changed: bool,
    #[serde(default)]
    pub replaced_import_id: Option<String>,
    pub version: u64,
    pub billed_cost: String,
}

pub fn summary(source: &str, answer: &Imported, elapsed: Duration) -> String {
    let changed = answer.ledgers.iter().filter(|l| l.changed).count();
    let unchanged = answer.ledgers.len() - changed;
    let rows = plural(answer.rows, "row", "rows");
    let ledgers = plural(answer.ledgers.len() as u64, "ledger", "ledgers");
    let mut text = if changed == 0 {
        format!("nothing changed: {source} ({rows}, {ledgers}) is already recorded as it is\n")
    } else {
        format!("imported {source}: {rows}, {ledgers} ({changed} changed, {unchanged} unchanged)\n")
    };

    // one aligned line per ledger: what happened, whose, which period, how much
    let cells: Vec<[String; 5]> = answer
        .ledgers
        .iter()
        .map(|l| {
            let what = match (l.changed, &l.replaced_import_id) {
                (false, _) => "unchanged".to_owned(),
                (true, Some(_)) => format!("replaced (v{})", l.version),
                (true, None) => "new".to_owned(),
            };
            [
                what,
                l.provider.clone(),
                l.billing_account_id.clone(),
                format!("{} to {}", l.period_start, l.period_end),
                format!("{} {}", l.billed_cost, l.currency),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..5).map(|i| cells.iter().map(|c| c[i].chars().count()).max().unwrap_or(0)).collect();
    for row in &cells {
        let line: Vec<String> = row.iter().zip(&widths).map(|(cell, &w)| format!("{cell:w$}")).collect();
        text.push_str(&format!("  {}\n", line.join("  ").trim_end()));
    }

    let monthly = match answer.resources.monthly_costs_changed {
        Some(n) => format!(", {} changed", plural(n, "monthly cost", "monthly costs")),
        None => String::new(),
    };
    text.push_str(&format!(
        "{} billed, {} recorded from billing{monthly}\n",
        plural(answer.resources.billed, "resource", "resources"),
        thousands(answer.resources.recorded)
    ));
    if answer.rounded_amounts > 0 {
        text.push_str(&format!(
            "note: {} had more than ten fractional digits and were rounded half to even\n",
            plural(answer.rounded_amounts, "amount", "amounts")
        ));
    }
    let seconds = elapsed.as_secs_f64();
    let rate = match seconds > 0.0 {
        true => format!(" ({} rows/s)", thousands((answer.rows as f64 / seconds) as u64)),
        false => String::new(),
    };
    text.push_str(&format!("took {seconds:.1} s{rate}\n"));
    text
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", thousands(n), if n == 1 { one } else { many })
}

/// 1464361 → "1,464,361": row counts are read at a glance.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANSWER: &str = r#"{"rows":1464361,"rounded_amounts":2,"resources":{"billed":33000,"recorded":120,"monthly_costs_changed":7},
        "ledgers":[
          {"ledger_id":"l1","provider":"AWS","billing_account_id":"123456789012","period_start":"2026-10-01",
           "period_end":"2026-11-01","currency":"USD","changed":true,"import_id":"i1","replaced_import_id":"i0",
           "version":2,"rows":123,"resources":45,"billed_cost":"123.4500000001","effective_cost":"1",
           "unallocatable_billed_cost":"0","import":"/api/v1/costs/imports/i1"},
          {"ledger_id":"l2","provider":"Microsoft","billing_account_id":"sub-1","period_start":"2026-10-01",
           "period_end":"2026-11-01","currency":"EUR","changed":false,"import_id":null,"replaced_import_id":null,
           "version":1,"rows":9,"resources":3,"billed_cost":"9.5","effective_cost":"9.5",
           "unallocatable_billed_cost":"0","import":null}],
        "consistency_token":"0:12"}"#;

    #[test]
    fn a_summary_per_ledger() {
        let answer: Imported = serde_json::from_str(ANSWER).unwrap();
        assert_eq!(
            summary("oct.csv", &answer, Duration::from_millis(12_500)),
            "imported oct.csv: 1,464,361 rows, 2 ledgers (1 changed, 1 unchanged)\n\
             \x20 replaced (v2)  AWS        123456789012  2026-10-01 to 2026-11-01  123.4500000001 USD\n\
             \x20 unchanged      Microsoft  sub-1         2026-10-01 to 2026-11-01  9.5 EUR\n\
             33,000 resources billed, 120 recorded from billing, 7 monthly costs changed\n\
             note: 2 amounts had more than ten fractional digits and were rounded half to even\n\
             took 12.5 s (117,148 rows/s)\n"
        );
    }

    #[test]
    fn nothing_changed_says_so() {
        let answer = Imported {
            rows: 1,
            rounded_amounts: 0,
            resources: ResourcesSeen { billed: 1, recorded: 0, monthly_costs_changed: None },
            ledgers: vec![Ledger {
                provider: "GCP".into(),
                billing_account_id: "0A-1".into(),
                period_start: "2026-10-01".into(),
                period_end: "2026-11-01".into(),
                currency: "USD".into(),
                changed: false,
                replaced_import_id: None,
                version: 1,
                billed_cost: "0.01".into(),
            }],
        };
        let text = summary("a.csv", &answer, Duration::ZERO);
        assert!(text.starts_with("nothing changed: a.csv (1 row, 1 ledger) is already recorded as it is\n"), "{text}");
        assert!(text.contains("  unchanged  GCP  0A-1  2026-10-01 to 2026-11-01  0.01 USD\n"), "{text}");
        assert!(text.ends_with("1 resource billed, 0 recorded from billing\ntook 0.0 s\n"), "{text}");
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_464_361), "1,464,361");
    }
}
