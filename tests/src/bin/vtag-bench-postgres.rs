//! `make bench` (Postgres read model, P5): the rebuild into a shadow schema against plain COPY of
//! the rows it writes and a plain read of the log; see `vtag_tests::bench::rebuild`. Results go to
//! stdout and `$VTAG_HOME/bench/p5-postgres-<timestamp>.json`.

use vtag_tests::bench::rebuild::{self, Args};
use vtag_tests::bench::{finish, quiet_logs, resources_and_runs};

#[tokio::main]
async fn main() {
    quiet_logs();
    let (resources, runs) = resources_and_runs("vtag-bench-postgres", 25_000, 3);
    finish("vtag-bench-postgres", "p5-postgres", rebuild::run(&Args { resources, runs }).await, rebuild::summary);
}
