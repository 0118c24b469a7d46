//! What a person at a terminal sees while a file goes up: bytes sent, then a spinner while the
//! server reads the whole file (tens of seconds for a big one) before it answers.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Cheap to clone: the body stream reports to the same bar the command clears.
#[derive(Clone)]
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// `visible` false: nothing is drawn (`--quiet`, or standard error is not a terminal).
    pub fn new(len: u64, visible: bool) -> Self {
        let target = if visible { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
        let style = ProgressStyle::with_template(
            "uploading {bar:30} {binary_bytes}/{binary_total_bytes} ({binary_bytes_per_sec}, {eta} left)",
        )
        .expect("a valid template")
        .progress_chars("=> ");
        Self { bar: ProgressBar::with_draw_target(Some(len), target).with_style(style) }
    }

    pub fn sent(&self, bytes: u64) {
        self.bar.inc(bytes);
    }

    /// The last byte is handed over: from now on the wait is the server's.
    pub fn uploaded(&self) {
        let style = ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("a valid template");
        self.bar.set_style(style);
        self.bar.reset_elapsed();
        self.bar.set_message("server is checking and recording the file…");
        // ticks on its own: no bytes move while the server works
        self.bar.enable_steady_tick(Duration::from_millis(120));
    }

    /// Clears the line, so the summary or the error starts on a clean one.
    pub fn done(&self) {
        self.bar.finish_and_clear();
    }
}
