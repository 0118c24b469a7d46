//! `make bench` (compliance, P4): a full sweep of 20 policies over N generated resources (default
//! 1,000,000) on the real services, and the latency from a tag change to its violation event; see
//! `vtag_tests::bench::compliance`. Results go to stdout and `$VTAG_HOME/bench/p4-<timestamp>.json`.

use std::time::Duration;

/// The evaluator's allocator, so the book floor measures what the evaluator runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use serde_json::json;
use vtag_inventory::{GeneratedResource, Generator, GeneratorConfig};
use vtag_tests::bench::compliance;
use vtag_tests::bench::rules::rule_document;
use vtag_tests::bench::{save_report, thousands};

struct Args {
    resources: usize,
    rules: usize,
    probes: usize,
    timeout: Duration,
    floor_only: bool,
}

fn parse_args() -> Args {
    let mut a = Args { resources: 1_000_000, rules: 200, probes: 100, timeout: Duration::from_secs(1800), floor_only: false };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut num = |name: &str| -> usize {
            it.next().and_then(|v| v.replace('_', "").parse().ok()).unwrap_or_else(|| panic!("{name} needs a number"))
        };
        match arg.as_str() {
            "--resources" => a.resources = num("--resources"),
            "--rules" => a.rules = num("--rules"),
            "--probes" => a.probes = num("--probes").max(1),
            "--floor-only" => a.floor_only = true,
            "--timeout-secs" => a.timeout = Duration::from_secs(num("--timeout-secs") as u64),
            _ => {
                eprintln!("usage: vtag-bench-compliance [--resources N (1000000)] [--rules R (200)] [--probes P (100)] [--timeout-secs S (1800)] [--floor-only]");
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
        eprintln!("vtag-bench-compliance: FAILED: {e:#}");
        std::process::exit(1);
    }
}

async fn bench(args: Args) -> anyhow::Result<()> {
    eprintln!("[bench] generating {} resources", args.resources);
    let generator = Generator::new(GeneratorConfig::new(20_261_123))?;
    let resources: Vec<GeneratedResource> = generator.resources(args.resources).collect();
    let rules = rule_document(&generator, &resources[..resources.len().min(50_000)], args.rules);
    let result = compliance::run(&resources, &rules, args.probes, args.timeout, args.floor_only).await?;
    println!("compliance at {} resources, 20 policies", thousands(args.resources as f64));
    if args.floor_only {
        println!("  {result}");
        return Ok(());
    }
    for line in compliance::summary(&result) {
        println!("  {line}");
    }
    save_report("p4", &json!({"compliance": result}))
}
