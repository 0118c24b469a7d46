use vtag_compliance::{run, Settings};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    vtag_service::telemetry::init("vtag-compliance");
    let settings = Settings::from_env()?;
    run(settings, vtag_service::shutdown::signal()).await
}
