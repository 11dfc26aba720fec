//! `content-svc [serve|migrate]`: configuration from the environment (see the README).

use content_svc::{Application, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = platform::Env::from_process()?;
    let config = match Config::from_env(&env) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("content-svc: configuration error: {error}");
            std::process::exit(78); // EX_CONFIG
        }
    };
    platform::telemetry::init_tracing(config.service.common.log_format);
    match std::env::args().nth(1).as_deref() {
        None | Some("serve") => {
            let app = Application::build(config).await?;
            app.run_until_stopped(platform::shutdown_signal()).await
        }
        Some("migrate") => content_svc::migrate(&config).await,
        Some(other) => anyhow::bail!("unknown command {other:?}; use serve or migrate"),
    }
}
