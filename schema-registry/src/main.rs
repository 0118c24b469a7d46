//! `vtag-schema-registry` binary: flags/env → [`vtag_schema_registry::serve`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use vtag_schema_registry::{serve, CompatibilityLevel, DEFAULT_COMPATIBILITY};

const USAGE: &str = "\
vtag-schema-registry: Confluent-compatible Avro schema registry (local stand-in)

USAGE:
    vtag-schema-registry [--listen ADDR] [--data-dir DIR] [--compatibility LEVEL]

OPTIONS (flag, then environment variable, then default):
    --listen ADDR          VTAG_REGISTRY_LISTEN          127.0.0.1:18081
    --data-dir DIR         VTAG_REGISTRY_DATA_DIR        ./schema-registry-data
    --compatibility LEVEL  VTAG_REGISTRY_COMPATIBILITY   BACKWARD_TRANSITIVE
                           (NONE, BACKWARD, BACKWARD_TRANSITIVE, FORWARD,
                            FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE)
    -h, --help             print this help

Logging: RUST_LOG (default info).";

#[derive(Debug, PartialEq)]
struct Config {
    listen: SocketAddr,
    data_dir: PathBuf,
    compatibility: CompatibilityLevel,
}

/// `Ok(None)` means help was asked for.
fn parse_config(
    args: impl IntoIterator<Item = String>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<Config>, String> {
    let mut listen = env("VTAG_REGISTRY_LISTEN");
    let mut data_dir = env("VTAG_REGISTRY_DATA_DIR");
    let mut compatibility = env("VTAG_REGISTRY_COMPATIBILITY");

    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        // Accept both `--flag value` and `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let slot = match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--listen" => &mut listen,
            "--data-dir" => &mut data_dir,
            "--compatibility" => &mut compatibility,
            other => return Err(format!("unknown argument '{other}'")),
        };
        let value = match inline {
            Some(v) => v,
            None => args.next().ok_or_else(|| format!("{flag} needs a value"))?,
        };
        *slot = Some(value);
    }

    let listen = listen.as_deref().unwrap_or("127.0.0.1:18081");
    Ok(Some(Config {
        listen: listen
            .parse()
            .map_err(|e| format!("invalid listen address '{listen}': {e}"))?,
        data_dir: data_dir
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("schema-registry-data")),
        compatibility: match compatibility {
            Some(level) => level.parse().map_err(|e| format!("{e}"))?,
            None => DEFAULT_COMPATIBILITY,
        },
    }))
}

#[tokio::main]
async fn main() -> ExitCode {
    vtag_service::telemetry::init("vtag-schema-registry");

    let config = match parse_config(std::env::args().skip(1), |k| std::env::var(k).ok()) {
        Ok(Some(config)) => config,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("error: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };

    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(listen = %config.listen, error = %e, "cannot bind");
            return ExitCode::FAILURE;
        }
    };
    match serve(
        listener,
        config.data_dir,
        config.compatibility,
        vtag_service::shutdown::signal(),
    )
    .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "schema registry failed");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_override_env_and_env_overrides_defaults() {
        let env = |k: &str| match k {
            "VTAG_REGISTRY_LISTEN" => Some("0.0.0.0:9000".to_owned()),
            "VTAG_REGISTRY_COMPATIBILITY" => Some("full".to_owned()),
            _ => None,
        };
        let c = parse_config(args(&["--data-dir=/tmp/x", "--listen", "127.0.0.1:1"]), env)
            .unwrap()
            .unwrap();
        assert_eq!(c.listen, "127.0.0.1:1".parse().unwrap());
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.compatibility, CompatibilityLevel::Full);

        let d = parse_config(args(&[]), |_| None).unwrap().unwrap();
        assert_eq!(d.listen, "127.0.0.1:18081".parse().unwrap());
        assert_eq!(d.compatibility, CompatibilityLevel::BackwardTransitive);
    }

    #[test]
    fn bad_input_is_reported() {
        assert!(parse_config(args(&["--bogus"]), |_| None).is_err());
        assert!(parse_config(args(&["--listen"]), |_| None).is_err());
        assert!(parse_config(args(&["--compatibility", "SIDEWAYS"]), |_| None).is_err());
        assert_eq!(parse_config(args(&["--help"]), |_| None), Ok(None));
    }
}
