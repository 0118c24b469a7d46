//! `make bench` (graph read model, P5): the graph projector's rebuild rate against plain
//! `UNWIND … MERGE` of the same resources; see `vtag_tests::bench::graph`. Results go to stdout
//! and `$VTAG_HOME/bench/p5-graph-<timestamp>.json`.

use vtag_tests::bench::graph::{self, Args};
use vtag_tests::bench::{finish, quiet_logs, resources_and_runs};

#[tokio::main]
async fn main() {
    quiet_logs();
    let (resources, runs) = resources_and_runs("vtag-bench-graph", 25_000, 3);
    finish("vtag-bench-graph", "p5-graph", graph::run(&Args { resources, runs }).await, graph::summary);
}
