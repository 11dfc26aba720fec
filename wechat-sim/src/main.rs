//! `wechat-sim`: WeChat on loopback. `wechat-sim api` runs the mock API server.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use wechat_sim::api_server::{self, AccountKind, SimAccount, SimConfig, SimState};

/// A stand-in for WeChat on loopback.
#[derive(Parser, Debug)]
#[command(name = "wechat-sim", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Runs the mock WeChat API server.
    Api(ApiArgs),
}

#[derive(Args, Debug)]
struct ApiArgs {
    /// Address to listen on.
    #[arg(long, env = "WECHAT_SIM_LISTEN", default_value = "127.0.0.1:9100")]
    listen: SocketAddr,
    /// Accounts as `appid:secret[:service|subscription]`, comma-separated or repeated;
    /// the demo account is used when none is given.
    #[arg(long = "account", env = "WECHAT_SIM_ACCOUNTS", value_delimiter = ',', value_parser = parse_account)]
    accounts: Vec<SimAccount>,
    /// Access-token lifetime in seconds.
    #[arg(long, env = "WECHAT_SIM_TOKEN_TTL_SECS", default_value_t = 7200)]
    token_ttl_secs: u64,
    /// How long a superseded token keeps working, in seconds.
    #[arg(long, env = "WECHAT_SIM_TOKEN_GRACE_SECS", default_value_t = 300)]
    token_grace_secs: u64,
    /// Page size of `user/get`.
    #[arg(long, env = "WECHAT_SIM_FOLLOWER_PAGE_SIZE", default_value_t = 10_000)]
    follower_page_size: usize,
}

fn parse_account(s: &str) -> Result<SimAccount, String> {
    let mut parts = s.splitn(3, ':');
    let (Some(appid), Some(secret)) = (parts.next(), parts.next()) else {
        return Err("expected appid:secret[:service|subscription]".into());
    };
    let kind = match parts.next() {
        None | Some("service") => AccountKind::Service,
        Some("subscription") => AccountKind::Subscription,
        Some(other) => return Err(format!("unknown account kind {other:?}")),
    };
    Ok(SimAccount {
        appid: appid.to_owned(),
        secret: secret.to_owned(),
        kind,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match Cli::parse().command {
        Command::Api(args) => run_api(args).await,
    }
}

async fn run_api(args: ApiArgs) -> anyhow::Result<()> {
    let mut config = SimConfig {
        token_ttl: Duration::from_secs(args.token_ttl_secs),
        token_grace: Duration::from_secs(args.token_grace_secs),
        follower_page_size: args.follower_page_size.max(1),
        ..SimConfig::default()
    };
    if !args.accounts.is_empty() {
        config.accounts = args.accounts;
    }
    for account in &config.accounts {
        tracing::info!(appid = %account.appid, kind = ?account.kind, "simulated account");
    }
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    tracing::info!(addr = %listener.local_addr()?, "mock wechat api listening");
    api_server::serve(listener, SimState::new(config), shutdown_signal()).await?;
    Ok(())
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_parse_with_an_optional_kind() {
        let a = parse_account("wx1:s1:subscription").unwrap();
        assert_eq!(a.kind, AccountKind::Subscription);
        assert_eq!(parse_account("wx2:s2").unwrap().kind, AccountKind::Service);
        assert!(parse_account("wx3").is_err());
    }

    #[test]
    fn api_runs_with_zero_arguments() {
        let cli = Cli::try_parse_from(["wechat-sim", "api"]).unwrap();
        let Command::Api(args) = cli.command;
        assert!(args.accounts.is_empty());
    }
}
