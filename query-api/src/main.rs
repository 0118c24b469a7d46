use anyhow::Context;
use vtag_query_api::Settings;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    vtag_service::telemetry::init("vtag-query-api");
    let settings = Settings::from_env()?;
    let listener =
        tokio::net::TcpListener::bind(settings.listen).await.with_context(|| format!("binding {}", settings.listen))?;
    vtag_query_api::serve(listener, settings, vtag_service::shutdown::signal()).await
}
