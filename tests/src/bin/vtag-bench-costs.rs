//! `make bench` (costs, P3): FOCUS import throughput and `costAllocation` latency on the real
//! services; see `vtag_tests::bench::costs`. Results go to stdout and
//! `$VTAG_HOME/bench/p3-<timestamp>.json`.

use std::time::Duration;

use vtag_tests::bench::costs::{self, Args};
use vtag_tests::bench::save_report;

fn parse_args() -> Args {
    let mut a = Args { import_resources: 22_600, query_resources: 100_000, days: 30, queries: 200, timeout: Duration::from_secs(1800) };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut num = |name: &str| -> usize {
            it.next().and_then(|v| v.replace('_', "").parse().ok()).unwrap_or_else(|| panic!("{name} needs a number"))
        };
        match arg.as_str() {
            "--import-resources" => a.import_resources = num("--import-resources"),
            "--query-resources" => a.query_resources = num("--query-resources"),
            "--days" => a.days = num("--days") as u32,
            "--queries" => a.queries = num("--queries").max(1),
            "--timeout-secs" => a.timeout = Duration::from_secs(num("--timeout-secs") as u64),
            _ => {
                eprintln!("usage: vtag-bench-costs [--import-resources N (22600 ≈ 1M rows)] [--query-resources N (100000)] [--days D (30)] [--queries Q (200)] [--timeout-secs S (1800)]");
                std::process::exit(2);
            }
        }
    }
    a
}

#[tokio::main]
async fn main() {
    vtag_tests::bench::quiet_logs();
    if let Err(e) = bench(parse_args()).await {
        eprintln!("vtag-bench-costs: FAILED: {e:#}");
        std::process::exit(1);
    }
}

async fn bench(args: Args) -> anyhow::Result<()> {
    let report = costs::run(&args).await?;
    for line in costs::summary(&report) {
        println!("{line}");
    }
    save_report("p3", &report)
}
