//! `gateway`: the WeChat callback endpoint; configuration from the environment (see the README).

use gateway::{Application, Config};

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
    let app = Application::build(config).await?;
    app.run_until_stopped(platform::shutdown_signal()).await
}
