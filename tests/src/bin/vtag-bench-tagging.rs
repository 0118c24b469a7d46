//! `make bench` (tagging engine, P2): on N generated resources (default 1,000,000) and a rule set of
//! R rules (default 200), in one run:
//!
//!  1. engine        — `derive_each` (what a decision runs) over every resource's facts, 1 thread
//!     and all threads, against the raw floor of reading the same facts and against normalization
//!     alone (the same derivation with no rules) (medians of 3 passes);
//!  2. retroactive   — the real services (command API, projector) as child processes: the rule set
//!     published, N resources observed over HTTP (derived as they arrive), then ONE rule edited;
//!     measured: the time from the edit's request until `rederivation_progress` says every
//!     partition is done (i.e. the change is in the Postgres read model), against raw baselines for
//!     the same number of records (produce to the broker, COPY into Postgres) in the same run.
//!
//! `--engine-only` skips 2, `--retroactive-only` skips 1. Results go to stdout and `$VTAG_HOME/bench/p2-<timestamp>.json`.

use std::time::Duration;

use serde_json::json;
use vtag_domain::tagging::ResourceFacts;
use vtag_inventory::{GeneratedResource, Generator, GeneratorConfig};
use vtag_tagging_config::ConfigDocument;
use vtag_tests::bench::engine::{derive_all, normalize_only, read_facts, throughput, Work};
use vtag_tests::bench::rules::rule_document;
use vtag_tests::bench::{median, retro, save_report, thousands};
use vtag_tests::derivation::facts;

struct Args {
    resources: usize,
    rules: usize,
    engine_only: bool,
    retro_only: bool,
    timeout: Duration,
}

fn parse_args() -> Args {
    let mut a = Args { resources: 1_000_000, rules: 200, engine_only: false, retro_only: false, timeout: Duration::from_secs(1800) };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut num = |name: &str| -> usize {
            it.next().and_then(|v| v.replace('_', "").parse().ok()).unwrap_or_else(|| panic!("{name} needs a number"))
        };
        match arg.as_str() {
            "--resources" => a.resources = num("--resources"),
            "--rules" => a.rules = num("--rules"),
            "--timeout-secs" => a.timeout = Duration::from_secs(num("--timeout-secs") as u64),
            "--engine-only" => a.engine_only = true,
            "--retroactive-only" => a.retro_only = true,
            _ => {
                eprintln!("usage: vtag-bench-tagging [--resources N (1000000)] [--rules R (200)] [--engine-only | --retroactive-only] [--timeout-secs S (1800)]");
                std::process::exit(2);
            }
        }
    }
    if a.engine_only && a.retro_only {
        eprintln!("vtag-bench-tagging: --engine-only and --retroactive-only exclude each other");
        std::process::exit(2);
    }
    a
}

#[tokio::main]
async fn main() {
    vtag_tests::bench::quiet_logs();
    if let Err(e) = bench(parse_args()).await {
        eprintln!("vtag-bench-tagging: FAILED: {e:#}");
        std::process::exit(1);
    }
}

async fn bench(args: Args) -> anyhow::Result<()> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    eprintln!("[bench] generating {} resources", args.resources);
    let generator = Generator::new(GeneratorConfig::new(20_261_122))?;
    let resources: Vec<GeneratedResource> = generator.resources(args.resources).collect();
    let doc = rule_document(&generator, &resources[..resources.len().min(50_000)], args.rules);
    let config = ConfigDocument::from_json(&serde_json::to_vec(&doc)?)
        .and_then(|d| d.compile(1))
        .map_err(|e| anyhow::anyhow!("the bench rule set does not compile: {e:?}"))?;
    anyhow::ensure!(config.rules.rules().len() == args.rules, "rule set has {} rules", config.rules.rules().len());
    let mut per_key = std::collections::BTreeMap::<&str, usize>::new();
    for rule in config.rules.rules() {
        *per_key.entry(rule.key.as_str()).or_default() += 1;
    }
    eprintln!("[bench] rules per key: {per_key:?}");
    let mut report = json!({"resources": args.resources, "rules": args.rules, "rules_per_key": per_key, "threads": threads});
    if !args.retro_only {
        report["engine"] = engine(&args, &resources, &config, threads);
    }
    if !args.engine_only {
        let retro = retro::run(&resources, &doc, args.timeout).await?;
        println!("retroactive re-derivation at {} resources", thousands(args.resources as f64));
        for line in retro::summary(&retro) {
            println!("  {line}");
        }
        report["retroactive"] = retro;
    }
    save_report("p2", &report)
}

fn engine(args: &Args, resources: &[GeneratedResource], config: &vtag_domain::tagging::TaggingConfig, threads: usize) -> serde_json::Value {
    let all_facts: Vec<ResourceFacts> = resources.iter().map(facts).collect();

    eprintln!("[bench] engine: {} resources × {} rules, 1 and {threads} threads, 3 passes each", args.resources, args.rules);
    let mut engine = serde_json::Map::new();
    let derive = derive_all(config);
    let normalize = normalize_only(config);
    let cases: [(&str, Work<'_>); 3] =
        [("raw_read_facts", &read_facts), ("normalize_only", &normalize), ("derive", &derive)];
    let mut derived_tags = 0;
    for (name, work) in cases {
        for t in [1, threads] {
            let passes: Vec<f64> = (0..3)
                .map(|_| {
                    let (rate, produced) = throughput(&all_facts, t, work);
                    if name == "derive" {
                        derived_tags = produced;
                    }
                    rate
                })
                .collect();
            eprintln!("[bench]   {name:<15} {t} thread(s): {} resources/s (passes {:?})", thousands(median(&passes)), passes.iter().map(|p| p.round()).collect::<Vec<_>>());
            engine.insert(format!("{name}_{t}t"), json!({"median_per_s": median(&passes), "passes": passes}));
        }
    }
    let rate = |k: &str| engine[k]["median_per_s"].as_f64().unwrap_or(f64::NAN);
    println!("tagging engine, {} resources × {} rules (medians of 3)", thousands(args.resources as f64), args.rules);
    println!("  derive, 1 thread          {:>12} res/s  ({:.1}% of raw read, {:.1}% of normalization alone)",
        thousands(rate("derive_1t")), 100.0 * rate("derive_1t") / rate("raw_read_facts_1t"), 100.0 * rate("derive_1t") / rate("normalize_only_1t"));
    println!("  derive, {threads} threads         {:>12} res/s  (target ≥ 200,000: {})",
        thousands(rate(&format!("derive_{threads}t"))), if rate(&format!("derive_{threads}t")) >= 200_000.0 { "met" } else { "MISSED" });
    println!("  raw read facts, 1 thread  {:>12} res/s", thousands(rate("raw_read_facts_1t")));
    println!("  normalize only, 1 thread  {:>12} res/s", thousands(rate("normalize_only_1t")));

    engine.insert("derived_tags_per_resource".into(), json!(derived_tags as f64 / args.resources as f64));
    serde_json::Value::Object(engine)
}
