//! `make bench` (graph read model, P5): the graph projector's rebuild rate against plain
//! `UNWIND … MERGE` of the same resources, and the Postgres projector's on the same log; see
//! `vtag_tests::bench::graph`. Results go to
//! stdout and `$VTAG_HOME/bench/p5-graph-<timestamp>.json`.

use vtag_tests::bench::save_report;
use vtag_tests::bench::graph::{self, Args};

fn parse_args() -> Args {
    let mut a = Args { resources: 25_000, runs: 3 };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut num = |name: &str| -> usize {
            it.next().and_then(|v| v.replace('_', "").parse().ok()).unwrap_or_else(|| panic!("{name} needs a number"))
        };
        match arg.as_str() {
            "--resources" => a.resources = num("--resources").max(1),
            "--runs" => a.runs = num("--runs").max(1),
            _ => {
                eprintln!("usage: vtag-bench-graph [--resources N (25000: 100k events)] [--runs R (3)]");
                std::process::exit(2);
            }
        }
    }
    a
}

#[tokio::main]
async fn main() {
    if std::env::var("RUST_LOG").is_err() {
        std::env::set_var("RUST_LOG", "warn");
    }
    let args = parse_args();
    match graph::run(&args).await {
        Ok(report) => {
            for line in graph::summary(&report) {
                println!("{line}");
            }
            if let Err(e) = save_report("p5-graph", &report) {
                eprintln!("vtag-bench-graph: {e:#}");
            }
        }
        Err(e) => {
            eprintln!("vtag-bench-graph: FAILED: {e:#}");
            std::process::exit(1);
        }
    }
}
