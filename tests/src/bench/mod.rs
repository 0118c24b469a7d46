//! Helpers of `vtag-bench` (the `make bench` benchmark): synthetic inventory, /proc readings, and
//! the child-process services it measures.

pub mod compliance;
pub mod costs;
pub mod data;
pub mod engine;
pub mod graph;
pub mod retro;
pub mod rules;
pub mod search;
pub mod procfs;
pub mod rebuild;
pub mod services;

/// Median of the values (mean of the middle two for an even count); NaN when empty.
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// `12345.6` → `12,346`.
pub fn thousands(x: f64) -> String {
    if !x.is_finite() {
        return "n/a".into();
    }
    let s = format!("{:.0}", x.abs());
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if x < 0.0 {
        format!("-{out}")
    } else {
        out
    }
}

/// Writes a run's results to `$VTAG_HOME/bench/<name>-<timestamp>.json` and says where.
pub fn save_report(name: &str, report: &serde_json::Value) -> anyhow::Result<()> {
    let home = std::env::var("VTAG_HOME").unwrap_or_else(|_| ".vtag".into());
    let dir = format!("{home}/bench");
    std::fs::create_dir_all(&dir).map_err(|e| anyhow::anyhow!("creating {dir}: {e}"))?;
    let path = format!("{dir}/{name}-{}.json", chrono::Utc::now().format("%Y%m%dT%H%M%SZ"));
    std::fs::write(&path, serde_json::to_vec_pretty(report)?)?;
    println!("full results: {path}");
    Ok(())
}

/// `--resources N --runs R` of a read-model rebuild bench (from `resources`, `runs` by default);
/// anything else prints the usage and exits 2.
pub fn resources_and_runs(program: &str, mut resources: usize, mut runs: usize) -> (usize, usize) {
    let usage = format!("usage: {program} [--resources N ({resources}: four events each)] [--runs R ({runs})]");
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let value = it.next().and_then(|v| v.replace('_', "").parse::<usize>().ok()).map(|v| v.max(1));
        match (arg.as_str(), value) {
            ("--resources", Some(v)) => resources = v,
            ("--runs", Some(v)) => runs = v,
            _ => {
                eprintln!("{usage}");
                std::process::exit(2);
            }
        }
    }
    (resources, runs)
}

/// Prints a bench's summary and saves its report as `name`; a failed bench says so and exits 1.
pub fn finish(program: &str, name: &str, report: anyhow::Result<serde_json::Value>, summary: fn(&serde_json::Value) -> Vec<String>) {
    match report {
        Ok(report) => {
            summary(&report).iter().for_each(|line| println!("{line}"));
            if let Err(e) = save_report(name, &report) {
                eprintln!("{program}: {e:#}");
            }
        }
        Err(e) => {
            eprintln!("{program}: FAILED: {e:#}");
            std::process::exit(1);
        }
    }
}

/// Benches log warnings only, unless RUST_LOG says otherwise.
pub fn quiet_logs() {
    if std::env::var("RUST_LOG").is_err() {
        std::env::set_var("RUST_LOG", "warn");
    }
}
