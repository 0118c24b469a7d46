use vtag_herald::{run, Settings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    vtag_service::telemetry::init("vtag-herald");
    let settings = Settings::from_env()?;
    run(settings, vtag_service::shutdown::signal()).await
}
