use vtag_projectors::{postgres, Settings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    vtag_service::telemetry::init("vtag-projector");
    let settings = Settings::from_env()?;
    postgres::run(settings, vtag_service::shutdown::signal()).await
}
