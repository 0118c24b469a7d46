//! `make bench` (Postgres read model, P5): the rebuild into a shadow schema against plain COPY of
//! the rows it writes; see `vtag_tests::bench::rebuild`. Results go to
//! stdout and `$VTAG_HOME/bench/p5-postgres-<timestamp>.json`.

use vtag_tests::bench::save_report;
use vtag_tests::bench::rebuild::{self, Args};

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
                eprintln!("usage: vtag-bench-postgres [--resources N (25000: 100k events)] [--runs R (3)]");
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
    match rebuild::run(&args).await {
        Ok(report) => {
            for line in rebuild::summary(&report) {
                println!("{line}");
            }
            if let Err(e) = save_report("p5-postgres", &report) {
                eprintln!("vtag-bench-postgres: {e:#}");
            }
        }
        Err(e) => {
            eprintln!("vtag-bench-postgres: FAILED: {e:#}");
            std::process::exit(1);
        }
    }
}
