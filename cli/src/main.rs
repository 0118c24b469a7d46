//! `vtag`; see `vtag --help`. Everything but the process's surroundings is in the library.

use std::process::ExitCode;

// one request at a time: a second thread would only idle
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    // a path that is not UTF-8 fails to open, with its name in the message
    let args = std::env::args_os().skip(1).map(|a| a.to_string_lossy().into_owned());
    // not locked: the progress bar draws on standard error from its own thread
    let code = vtag_cli::run(args, &vtag_cli::Env::from_process(), &mut std::io::stdout(), &mut std::io::stderr()).await;
    ExitCode::from(code)
}
