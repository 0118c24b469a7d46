//! Mints a bearer token for local use: `vtag-token --tenant acme --sub alice@example.com --role editor`.
//! Reads the signing secret from VTAG_JWT_SECRET, like the services.

use vtag_service::auth::{Authenticator, Claims, Role};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |name: &str, default: &str| {
        args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned().unwrap_or_else(|| default.to_owned())
    };
    let role = match arg("--role", "editor").as_str() {
        "viewer" => Role::Viewer,
        "editor" => Role::Editor,
        "admin" => Role::Admin,
        other => {
            eprintln!("unknown role {other}: use viewer, editor or admin");
            std::process::exit(2);
        }
    };
    let hours: i64 = arg("--hours", "24").parse().unwrap_or(24);
    let auth = match Authenticator::from_env() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let now = chrono::Utc::now().timestamp();
    let claims = Claims { sub: arg("--sub", "demo@vtag.local"), tenant: arg("--tenant", "demo"), role, exp: now + hours * 3600, iat: now };
    println!("{}", auth.issue(&claims));
}
