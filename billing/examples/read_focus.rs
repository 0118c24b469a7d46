//! Reads a FOCUS file the way an import does (parse, check, aggregate) and prints what it held and
//! how long that took: `cargo run --release -p vtag-billing --example read_focus -- FILE`.
//! For profiling the reader without the services around it.

use std::time::Instant;

fn main() {
    let path = std::env::args().nth(1).expect("usage: read_focus FILE");
    let passes: usize = std::env::args().nth(2).and_then(|p| p.parse().ok()).unwrap_or(1);
    let bytes = std::fs::read(&path).expect("readable file");
    for _ in 0..passes {
        let started = Instant::now();
        let file = vtag_billing::read_focus(&bytes[..], |_| {}).unwrap_or_else(|e| panic!("{e}"));
        let lines: usize = file.ledgers.iter().map(|l| l.resource_lines.len()).sum();
        println!(
            "{} rows, {} ledgers, {lines} resource lines in {:.3} s",
            file.rows,
            file.ledgers.len(),
            started.elapsed().as_secs_f64()
        );
    }
}
