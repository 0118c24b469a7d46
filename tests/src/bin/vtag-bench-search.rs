//! `make bench` (search read model, P5): the search projector's rebuild rate against plain `_bulk`
//! of the same documents, and search latency; see `vtag_tests::bench::search`. Results go to
//! stdout and `$VTAG_HOME/bench/p5-search-<timestamp>.json`.

use vtag_tests::bench::{finish, quiet_logs};
use vtag_tests::bench::search::{self, Args};

fn parse_args() -> Args {
    let mut a = Args { resources: 25_000, runs: 3, queries: 200, latency_only: false };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut num = |name: &str| -> usize {
            it.next().and_then(|v| v.replace('_', "").parse().ok()).unwrap_or_else(|| panic!("{name} needs a number"))
        };
        match arg.as_str() {
            "--resources" => a.resources = num("--resources").max(1),
            "--runs" => a.runs = num("--runs").max(1),
            "--queries" => a.queries = num("--queries").max(1),
            "--latency-only" => a.latency_only = true,
            _ => {
                eprintln!("usage: vtag-bench-search [--resources N (25000: 100k events)] [--runs R (3)] [--queries Q (200)] [--latency-only]");
                std::process::exit(2);
            }
        }
    }
    a
}

#[tokio::main]
async fn main() {
    quiet_logs();
    let args = parse_args();
    let (report, name) = if args.latency_only {
        (search::latency_only(&args).await, "p5-search-latency")
    } else {
        (search::run(&args).await, "p5-search")
    };
    finish("vtag-bench-search", name, report, search::summary);
}
