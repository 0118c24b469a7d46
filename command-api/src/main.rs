use vtag_command_api::{serve, Settings};
use vtag_service::Authenticator;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    vtag_service::telemetry::init("vtag-command-api");
    let settings = Settings::from_env()?;
    let auth = Authenticator::from_env()?;
    let listener = tokio::net::TcpListener::bind(&settings.listen).await?;
    serve(listener, settings, auth, vtag_service::shutdown::signal()).await
}
