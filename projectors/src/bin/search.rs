use vtag_projectors::search;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    vtag_service::telemetry::init("vtag-projector-search");
    let settings = search::SearchSettings::from_env()?;
    search::run(settings, vtag_service::shutdown::signal()).await
}
