//! `wechat-sim`: WeChat on loopback. `api` runs the mock API server; `demo` runs it
//! together with a steady mix of citizens sending callbacks to a gateway; `load`,
//! `responder`, `ceiling` and `stream-count` are the benchmark tools.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use platform::accounts::DEMO_ACCOUNT;
use platform::config::parse_duration;
use platform::shutdown_signal;
use wechat_sim::api_server::job_callbacks::JobCallbacks;
use wechat_sim::api_server::{self, AccountKind, SimAccount, SimConfig, SimState};
use wechat_sim::traffic::cpu::WatchedProcess;
use wechat_sim::traffic::{self, CallbackAccount, CallbackSigner, Mode, RetryPolicy};

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
    /// Runs the mock API and a steady, realistic mix of citizens against a gateway.
    Demo(DemoArgs),
    /// Loads a gateway at a fixed concurrency (or rate) and prints throughput and latency.
    Load(LoadArgs),
    /// Answers the gateway's passive-reply requests with a short text (core NATS).
    Responder(ResponderArgs),
    /// Measures the raw JetStream publish-with-ack rate of a NATS server.
    Ceiling(CeilingArgs),
    /// Prints the message count of a JetStream stream.
    StreamCount(StreamCountArgs),
    /// Writes citizens' text messages straight into WECHAT_INBOUND (consumer benchmark).
    Prefill(PrefillArgs),
    /// Joins WECHAT_INBOUND's store times with a service's processed_events: the apply
    /// rate and store → applied latency (consumer benchmark).
    ConsumerReport(ConsumerReportArgs),
    /// Counted citizen traffic and a ticket-answering agent (chaos and soak runs).
    Citizens(traffic::citizens::CitizensArgs),
}

#[derive(Args, Debug)]
struct PrefillArgs {
    #[command(flatten)]
    nats: NatsArgs,
    /// The account id.
    #[arg(long, default_value = DEMO_ACCOUNT.id)]
    account: String,
    /// The account's original id (`gh_…`).
    #[arg(long, default_value = DEMO_ACCOUNT.original_id)]
    original_id: String,
    /// Messages to write.
    #[arg(long, default_value_t = 30_000)]
    messages: usize,
    /// Distinct citizens writing them (round robin).
    #[arg(long, default_value_t = 10_000)]
    citizens: usize,
}

#[derive(Args, Debug)]
struct ConsumerReportArgs {
    #[command(flatten)]
    nats: NatsArgs,
    /// The service's database (its processed_events table).
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

/// The account callbacks are sent for; the defaults are the gateway's demo account.
#[derive(Args, Debug, Clone)]
struct AccountArgs {
    /// The account id (the `/wechat/{account}` path segment).
    #[arg(long, default_value = DEMO_ACCOUNT.id)]
    account: String,
    /// The account's appid.
    #[arg(long, default_value = DEMO_ACCOUNT.appid)]
    appid: String,
    /// The account's original id (`gh_…`).
    #[arg(long, default_value = DEMO_ACCOUNT.original_id)]
    original_id: String,
    /// The token configured on both sides.
    #[arg(long, default_value = DEMO_ACCOUNT.token)]
    token: String,
    /// The EncodingAESKey (43 characters).
    #[arg(long, default_value = DEMO_ACCOUNT.encoding_aes_key)]
    aes_key: String,
    /// plaintext, compatible or safe.
    #[arg(long, default_value = DEMO_ACCOUNT.mode.as_str())]
    mode: Mode,
}

impl AccountArgs {
    fn callback_account(&self) -> CallbackAccount {
        CallbackAccount {
            id: self.account.clone(),
            appid: self.appid.clone(),
            original_id: self.original_id.clone(),
            token: self.token.clone(),
            aes_key: self.aes_key.clone(),
            mode: self.mode,
        }
    }

    fn signer(&self) -> anyhow::Result<Arc<CallbackSigner>> {
        Ok(Arc::new(CallbackSigner::new(self.callback_account())?))
    }
}

/// Sends WeChat's job-finish callbacks for `account` through the gateway at `gateway`.
fn job_callbacks(state: &SimState, gateway: &str, account: CallbackAccount) -> anyhow::Result<()> {
    let callbacks = JobCallbacks::new(gateway, vec![account])?;
    state.send_job_callbacks(Arc::new(callbacks));
    tracing::info!(gateway, "job-finish callbacks go through the gateway");
    Ok(())
}

#[derive(Args, Debug)]
struct DemoArgs {
    /// The gateway's base URL.
    #[arg(
        long,
        env = "WECHAT_SIM_GATEWAY",
        default_value = "http://127.0.0.1:8080"
    )]
    gateway: String,
    #[command(flatten)]
    account: AccountArgs,
    /// Callbacks per second: `2/s`, `30/m` or a plain number per second.
    #[arg(long, default_value = "2/s", value_parser = parse_rate)]
    rate: f64,
    /// Simulated citizens.
    #[arg(long, default_value_t = 36)]
    citizens: usize,
    /// Where the mock API listens.
    #[arg(long, env = "WECHAT_SIM_LISTEN", default_value = "127.0.0.1:9100")]
    api_listen: SocketAddr,
    /// WeChat's per-attempt timeout (`5s`, `800ms`).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    retry_timeout: Duration,
    /// Also sends WeChat's job results (PUBLISHJOBFINISH after `freepublish/submit`,
    /// MASSSENDJOBFINISH after a mass send) for the account through the gateway, as
    /// WeChat does, so a published article comes back `published`.
    #[arg(long, env = "WECHAT_SIM_JOB_CALLBACKS")]
    job_callbacks: bool,
}

#[derive(Args, Debug)]
struct LoadArgs {
    /// The gateway's base URL (plain http).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    gateway: String,
    #[command(flatten)]
    account: AccountArgs,
    /// Concurrent connections, each with one callback in flight.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Measured duration (`10s`).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Warm-up before the measured window (`5s`); sent but not measured.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    warmup: Duration,
    /// A fixed total rate (`5000`, `5000/s`) instead of as fast as answers come.
    #[arg(long, value_parser = parse_rate)]
    rate: Option<f64>,
    /// Callbacks signed before timing starts (slots sign inline after that).
    #[arg(long, default_value_t = 400_000)]
    prebuild: usize,
    /// Do not verify replies (only the status counts).
    #[arg(long)]
    no_check: bool,
    /// WeChat's per-attempt timeout.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    retry_timeout: Duration,
    /// Also report the CPU another process spends per callback (`gateway=PID`; repeat).
    #[arg(long = "cpu-of", value_name = "NAME=PID", value_parser = WatchedProcess::parse)]
    cpu_of: Vec<WatchedProcess>,
    /// What every callback is.
    #[arg(long, value_enum, default_value = "text")]
    callback: traffic::load::LoadCallback,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

/// Where NATS is and which namespace to use.
#[derive(Args, Debug, Clone)]
struct NatsArgs {
    /// The NATS server.
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    nats: String,
    /// The namespace prefix (the gateway's NATS_PREFIX).
    #[arg(long, env = "NATS_PREFIX", default_value = "")]
    prefix: String,
}

impl NatsArgs {
    fn namespace(&self) -> anyhow::Result<platform::nats::Namespace> {
        platform::nats::Namespace::new(&self.prefix)
            .map_err(|reason| anyhow::anyhow!("invalid --prefix {:?}: {reason}", self.prefix))
    }

    async fn connect(&self) -> anyhow::Result<async_nats::Client> {
        Ok(async_nats::ConnectOptions::new()
            .name("wechat-sim")
            .connect(self.nats.as_str())
            .await?)
    }
}

#[derive(Args, Debug)]
struct ResponderArgs {
    #[command(flatten)]
    nats: NatsArgs,
    /// Account ids to answer for, comma-separated; `*` answers every account.
    #[arg(long, default_value = "demo", value_delimiter = ',')]
    account: Vec<String>,
    /// Also answer the gateways' rules snapshot requests with one keyword rule that
    /// answers the load's text, as interaction-svc would: the gateways then answer
    /// those callbacks at the edge instead of asking.
    #[arg(long)]
    rules: bool,
    /// Answer every reply request with no reply, as interaction-svc does for a message
    /// it has nothing to say to at once: the gateway answers `success`, as on a running
    /// platform (without any responder it also stores a missed-reply marker).
    #[arg(long)]
    no_reply: bool,
}

#[derive(Args, Debug)]
struct CeilingArgs {
    #[command(flatten)]
    nats: NatsArgs,
    /// Concurrent publishers, each awaiting its PubAck.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Measured duration.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Warm-up, not measured.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    warmup: Duration,
    /// Payload size: the gateway's encoded Inbound (see `stream-count`).
    #[arg(long, default_value_t = 600)]
    payload_bytes: usize,
    /// Also report the CPU another process spends per ack (`nats-server=PID`; repeat).
    #[arg(long = "cpu-of", value_name = "NAME=PID", value_parser = WatchedProcess::parse)]
    cpu_of: Vec<WatchedProcess>,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct StreamCountArgs {
    #[command(flatten)]
    nats: NatsArgs,
    /// The stream, before namespacing.
    #[arg(long, default_value = "WECHAT_INBOUND")]
    stream: String,
    /// Print the count as one JSON object.
    #[arg(long)]
    json: bool,
    /// Delete the stream after counting (benchmark clean-up of a private namespace).
    #[arg(long)]
    delete: bool,
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
    /// Sends WeChat's job results (PUBLISHJOBFINISH, MASSSENDJOBFINISH) through the
    /// gateway at this base URL, signed as the gateway's demo account; none when
    /// absent (`demo --job-callbacks` takes any account).
    #[arg(long, env = "WECHAT_SIM_JOB_CALLBACKS_GATEWAY")]
    job_callbacks_gateway: Option<String>,
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
    // Logs go to stderr so `--json` output on stdout stays machine-readable.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match Cli::parse().command {
        Command::Api(args) => run_api(args).await,
        Command::Demo(args) => run_demo(args).await,
        Command::Load(args) => run_load(args).await,
        Command::Responder(args) => run_responder(args).await,
        Command::Ceiling(args) => run_ceiling(args).await,
        Command::StreamCount(args) => run_stream_count(args).await,
        Command::Prefill(args) => run_prefill(args).await,
        Command::ConsumerReport(args) => run_consumer_report(args).await,
        Command::Citizens(args) => traffic::citizens::run(args).await,
    }
}

/// Parses a rate: `2/s`, `30/m` or a plain number per second.
fn parse_rate(s: &str) -> Result<f64, String> {
    let (number, per) = s.trim().split_once('/').unwrap_or((s.trim(), "s"));
    let value: f64 = number.parse().map_err(|_| format!("invalid rate {s:?}"))?;
    let per_sec = match per {
        "s" => value,
        "m" => value / 60.0,
        _ => return Err(format!("invalid rate {s:?}; use N/s or N/m")),
    };
    if per_sec > 0.0 && per_sec.is_finite() {
        Ok(per_sec)
    } else {
        Err(format!("rate must be positive: {s:?}"))
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
    let state = SimState::new(config);
    if let Some(gateway) = &args.job_callbacks_gateway {
        job_callbacks(&state, gateway, CallbackAccount::demo())?;
    }
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    tracing::info!(addr = %listener.local_addr()?, "mock wechat api listening");
    api_server::serve(listener, state, shutdown_signal()).await?;
    Ok(())
}

async fn run_demo(args: DemoArgs) -> anyhow::Result<()> {
    let signer = args.account.signer()?;
    let mut config = SimConfig::default();
    if !config
        .accounts
        .iter()
        .any(|a| a.appid == args.account.appid)
    {
        config
            .accounts
            .push(SimAccount::new(&args.account.appid, DEMO_ACCOUNT.secret));
    }
    let state = SimState::new(config);
    if args.job_callbacks {
        job_callbacks(&state, &args.gateway, args.account.callback_account())?;
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let listener = tokio::net::TcpListener::bind(args.api_listen).await?;
    tracing::info!(addr = %listener.local_addr()?, "mock wechat api listening");
    let api = tokio::spawn(api_server::serve(
        listener,
        state.clone(),
        stopped(stop_rx.clone()),
    ));
    let config = traffic::demo::DemoConfig {
        gateway: args.gateway,
        rate: args.rate,
        citizens: args.citizens,
        retry: RetryPolicy {
            timeout: args.retry_timeout,
            ..RetryPolicy::default()
        },
    };
    traffic::demo::run(signer, Some(state), config, stopped(stop_rx)).await?;
    api.await??;
    Ok(())
}

async fn run_load(args: LoadArgs) -> anyhow::Result<()> {
    let signer = args.account.signer()?;
    let config = traffic::load::LoadConfig {
        gateway: args.gateway,
        concurrency: args.concurrency,
        duration: args.duration,
        warmup: args.warmup,
        rate: args.rate,
        prebuild: args.prebuild,
        retry: RetryPolicy {
            timeout: args.retry_timeout,
            ..RetryPolicy::default()
        },
        check_replies: !args.no_check,
        cpu_watch: args.cpu_of,
        callback: args.callback,
        ..traffic::load::LoadConfig::default()
    };
    let report = traffic::load::run(signer, config).await?;
    print_load_report(&report, args.json)?;
    Ok(())
}

async fn run_responder(args: ResponderArgs) -> anyhow::Result<()> {
    let namespace = args.nats.namespace()?;
    let client = args.nats.connect().await?;
    let answered = traffic::nats::run_responder(
        client,
        &namespace,
        &args.account,
        traffic::nats::ResponderConfig {
            rules: args.rules,
            no_reply: args.no_reply,
        },
        shutdown_signal(),
    )
    .await?;
    tracing::info!(answered, "responder stopped");
    Ok(())
}

async fn run_ceiling(args: CeilingArgs) -> anyhow::Result<()> {
    let config = traffic::nats::CeilingConfig {
        concurrency: args.concurrency,
        duration: args.duration,
        warmup: args.warmup,
        payload_bytes: args.payload_bytes,
        namespace: args.nats.namespace()?,
        cpu_watch: args.cpu_of,
    };
    let client = args.nats.connect().await?;
    let report = traffic::nats::run_ceiling(client, config).await?;
    print_ceiling_report(&report, args.json)?;
    Ok(())
}

async fn run_stream_count(args: StreamCountArgs) -> anyhow::Result<()> {
    let stream = args.nats.namespace()?.name(&args.stream);
    let client = args.nats.connect().await?;
    let count = traffic::nats::stream_count(client.clone(), &stream).await?;
    print_stream_count(&count, args.json)?;
    if args.delete {
        async_nats::jetstream::new(client)
            .delete_stream(&stream)
            .await?;
        tracing::info!(%stream, "stream deleted");
    }
    Ok(())
}

async fn run_prefill(args: PrefillArgs) -> anyhow::Result<()> {
    let namespace = args.nats.namespace()?;
    let client = args.nats.connect().await?;
    let prefill = traffic::consumer_bench::Prefill {
        account: args.account,
        original_id: args.original_id,
        messages: args.messages,
        citizens: args.citizens,
        run_tag: uuid::Uuid::new_v4().simple().to_string()[..8].to_owned(),
    };
    let started = std::time::Instant::now();
    let stored = traffic::consumer_bench::prefill(client, &namespace, &prefill).await?;
    tracing::info!(stored, elapsed = ?started.elapsed(), "stream prefilled");
    Ok(())
}

// The report is the CLI's output (stdout), unlike logs.
#[allow(clippy::print_stdout)]
async fn run_consumer_report(args: ConsumerReportArgs) -> anyhow::Result<()> {
    let namespace = args.nats.namespace()?;
    let client = args.nats.connect().await?;
    let r = traffic::consumer_bench::report(client, &namespace, &args.database_url).await?;
    if args.json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        println!(
            "applied {}/{} in {:.0} ms: {:.0} events/s; store -> applied p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            r.applied,
            r.stream_messages,
            r.applied_span_ms,
            r.applied_per_second,
            r.lag_p50_ms,
            r.lag_p90_ms,
            r.lag_p99_ms,
            r.lag_max_ms
        );
    }
    Ok(())
}

// The final reports are the CLI's output (stdout), unlike logs.
#[allow(clippy::print_stdout)]
fn print_load_report(r: &traffic::load::LoadReport, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(r)?);
        return Ok(());
    }
    println!(
        "{} ({}) concurrency {}: {:.0} callbacks/s over {:.1}s, {} ok, {} errors {:?}, {} retried, {} replies",
        r.account,
        r.mode,
        r.concurrency,
        r.callbacks_per_sec,
        r.duration_secs,
        r.ok,
        r.errors,
        r.error_reasons,
        r.retried,
        r.replies
    );
    println!(
        "latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}  mean {:.2}",
        r.p50_ms, r.p90_ms, r.p99_ms, r.max_ms, r.mean_ms
    );
    println!(
        "whole run (warm-up included): {} sent, {} acknowledged; {} signed inline",
        r.sent_total, r.ok_total, r.built_inline
    );
    print_cpu(&r.cpu, "callback");
    Ok(())
}

// The final reports are the CLI's output (stdout), unlike logs.
#[allow(clippy::print_stdout)]
fn print_ceiling_report(r: &traffic::nats::CeilingReport, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(r)?);
        return Ok(());
    }
    println!(
        "jetstream publish-with-ack, {} publishers, {} B: {:.0} acks/s over {:.1}s, {} errors, stream held {} of {}",
        r.concurrency,
        r.payload_bytes,
        r.acks_per_sec,
        r.duration_secs,
        r.errors,
        r.stream_messages,
        r.published_total
    );
    println!(
        "latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
        r.p50_ms, r.p90_ms, r.p99_ms, r.max_ms
    );
    print_cpu(&r.cpu, "ack");
    Ok(())
}

// Part of the CLI's report (stdout).
#[allow(clippy::print_stdout)]
fn print_cpu(cpu: &[traffic::cpu::ProcessCpu], per: &str) {
    for p in cpu {
        println!(
            "cpu {} (pid {}): {:.1} µs per {per}, {:.2} cores",
            p.process, p.pid, p.us_per_op, p.cores
        );
    }
}

// The final reports are the CLI's output (stdout), unlike logs.
#[allow(clippy::print_stdout)]
fn print_stream_count(c: &traffic::nats::StreamCount, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(c)?);
    } else {
        println!("{}: {} messages, {} bytes", c.stream, c.messages, c.bytes);
    }
    Ok(())
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
    fn durations_and_rates_parse_with_units() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("3 parsecs").is_err());
        assert_eq!(parse_rate("2/s"), Ok(2.0));
        assert_eq!(parse_rate("30/m"), Ok(0.5));
        assert_eq!(parse_rate("5000"), Ok(5000.0));
        assert!(parse_rate("0/s").is_err());
    }

    #[test]
    fn demo_defaults_to_the_gateway_demo_account() {
        let cli = Cli::try_parse_from(["wechat-sim", "demo"]).unwrap();
        let Command::Demo(args) = cli.command else {
            panic!("expected the demo subcommand");
        };
        assert_eq!(
            args.account.signer().unwrap().account(),
            &CallbackAccount::demo()
        );
        assert_eq!(args.rate, 2.0);
    }

    #[test]
    fn api_runs_with_zero_arguments() {
        let cli = Cli::try_parse_from(["wechat-sim", "api"]).unwrap();
        let Command::Api(args) = cli.command else {
            panic!("expected the api subcommand");
        };
        assert!(args.accounts.is_empty());
    }
}
