//! `gateway`: the WeChat callback endpoint; configuration from the environment (see the README).

use gateway::{Application, Config};

// The callback path allocates small buffers on two threads at tens of thousands of
// requests a second; glibc's malloc spent a fifth of the gateway's CPU there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = platform::Env::from_process()?;
    let config = match Config::from_env(&env) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("gateway: configuration error: {error}");
            std::process::exit(78); // EX_CONFIG
        }
    };
    platform::telemetry::init_tracing(config.common.log_format);
    let app = Application::build(config).await?;
    app.run_until_stopped(platform::shutdown_signal()).await
}
