//! The load generator: fixed concurrency (or a fixed rate) for a fixed duration.
//!
//! It shares the machine with the gateway and NATS, so it stays lean: requests are
//! signed, encrypted and serialized before the clock starts, each concurrency slot
//! owns one HTTP/1.1 keep-alive connection driven from its own task ([`super::wire`]),
//! and latencies go into a per-slot `Vec` sorted once at the end. Every callback is a Chinese text message
//! with a unique MsgId, so every one is a distinct event for the gateway and the
//! JetStream stream count can be compared with the callbacks acknowledged.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::{Instant, MissedTickBehavior};

use super::TrafficError;
use super::account::Mode;
use super::action::{CitizenAction, Follower};
use super::check::{CheckedReply, ReplyCheck};
use super::client::RetryPolicy;
use super::cpu::{self, ProcessCpu, WatchedProcess};
use super::signer::{CallbackSigner, SignedCallback};
use super::wire::{self, Connection};

/// The text every load callback carries (the payload size stays constant).
pub const LOAD_TEXT: &str = "您好，请问社保卡丢了怎么补办？需要带哪些材料？";

/// What every callback of a load is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LoadCallback {
    /// A citizen's text message ([`LOAD_TEXT`]): the gateway asks interaction-svc
    /// for its passive reply (or answers it from its copy of the rules).
    #[default]
    Text,
    /// A reported location (the `LOCATION` event WeChat sends while a follower who
    /// allowed it has the chat open): nobody ever answers one, so the gateway stores
    /// it and answers `success` without asking.
    Location,
}

impl LoadCallback {
    fn action(self) -> CitizenAction {
        match self {
            Self::Text => CitizenAction::Text {
                content: LOAD_TEXT.to_owned(),
            },
            Self::Location => CitizenAction::LocationEvent {
                latitude: 25.770_5,
                longitude: 113.014_7,
                precision: 65.0,
            },
        }
    }
}

/// How to load the gateway.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Gateway base URL, `http://host:port`.
    pub gateway: String,
    /// Concurrent connections (each with one request in flight).
    pub concurrency: usize,
    /// Measured duration, after the warm-up.
    pub duration: Duration,
    /// Warm-up: callbacks started in it are sent but not measured.
    pub warmup: Duration,
    /// A fixed total rate in callbacks/s instead of closed-loop as-fast-as-possible.
    pub rate: Option<f64>,
    /// Requests signed before the clock starts, across all slots; a slot that runs
    /// out signs inline (counted in the report).
    pub prebuild: usize,
    /// Simulated followers per slot.
    pub followers_per_slot: usize,
    /// WeChat's timeout and attempts.
    pub retry: RetryPolicy,
    /// Verify every answer with [`ReplyCheck`] (a bad reply counts as an error).
    pub check_replies: bool,
    /// Processes whose CPU per callback the report gives (the generator's own always).
    pub cpu_watch: Vec<WatchedProcess>,
    /// What every callback is.
    pub callback: LoadCallback,
}

impl Default for LoadConfig {
    fn default() -> Self {
        Self {
            gateway: "http://127.0.0.1:8080".to_owned(),
            concurrency: 64,
            duration: Duration::from_secs(10),
            warmup: Duration::from_secs(0),
            rate: None,
            prebuild: 400_000,
            followers_per_slot: 64,
            retry: RetryPolicy::default(),
            check_replies: true,
            cpu_watch: Vec::new(),
            callback: LoadCallback::Text,
        }
    }
}

/// The result of a load run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LoadReport {
    /// Account id.
    pub account: String,
    /// Account mode.
    pub mode: Mode,
    /// Concurrent connections.
    pub concurrency: usize,
    /// Target rate, if any.
    pub rate: Option<f64>,
    /// Measured seconds (the warm-up excluded).
    pub duration_secs: f64,
    /// Warm-up seconds.
    pub warmup_secs: f64,
    /// Callbacks started in the measured window.
    pub sent: u64,
    /// Of those, answered 200 and accepted by the check.
    pub ok: u64,
    /// `ok / duration_secs`.
    pub callbacks_per_sec: f64,
    /// Latency percentiles of measured callbacks, in milliseconds (retries included).
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Maximum.
    pub max_ms: f64,
    /// Mean.
    pub mean_ms: f64,
    /// Callbacks sent in the whole run, warm-up included (each once, retries not counted).
    pub sent_total: u64,
    /// Callbacks answered 200 in the whole run: what the stream must hold.
    pub ok_total: u64,
    /// Failed callbacks in the whole run, warm-up included.
    pub errors: u64,
    /// Failures by reason.
    pub error_reasons: BTreeMap<String, u64>,
    /// Callbacks that needed a retry.
    pub retried: u64,
    /// Answers that carried a passive reply (not `success`).
    pub replies: u64,
    /// Requests signed inline because a slot ran out of pre-built ones.
    pub built_inline: u64,
    /// CPU the watched processes spent in the measured window, per callback answered
    /// (`load-generator` is this process); empty where `/proc` cannot be read.
    #[serde(default)]
    pub cpu: Vec<ProcessCpu>,
}

/// Runs the load and returns the report.
pub async fn run(
    signer: Arc<CallbackSigner>,
    config: LoadConfig,
) -> Result<LoadReport, TrafficError> {
    let target = Target::parse(&config.gateway).await?;
    let concurrency = config.concurrency.max(1);
    let run_tag = format!("{:08x}", rand::random::<u32>());
    let mut sources: Vec<SlotSource> = (0..concurrency)
        .map(|slot| {
            SlotSource::new(
                signer.clone(),
                &target.host,
                &run_tag,
                slot,
                config.followers_per_slot,
                config.callback.action(),
            )
        })
        .collect();
    let per_slot = config.prebuild / concurrency;
    prebuild(&mut sources, per_slot)?;
    tracing::info!(
        concurrency,
        prebuilt = per_slot * concurrency,
        "requests signed; starting load"
    );

    let check = config
        .check_replies
        .then(|| Arc::new(ReplyCheck::new(&signer)));
    let start = Instant::now() + Duration::from_millis(20);
    let measure_from = start + config.warmup;
    let end = measure_from + config.duration;
    let period = config
        .rate
        .filter(|r| *r > 0.0)
        .map(|rate| Duration::from_secs_f64(concurrency as f64 / rate));
    let tasks: Vec<_> = sources
        .into_iter()
        .enumerate()
        .map(|(i, source)| {
            let slot = Slot {
                target: target.clone(),
                retry: config.retry,
                check: check.clone(),
                source,
                conn: None,
                stats: SlotStats::default(),
            };
            // Spread the slots' ticks over one period so a rate is smooth.
            let offset =
                period.map_or(Duration::ZERO, |p| p.mul_f64(i as f64 / concurrency as f64));
            tokio::spawn(slot.run(start + offset, measure_from, end, period))
        })
        .collect();
    let cpu_window = tokio::spawn(cpu::measure_window(
        "load-generator",
        &config.cpu_watch,
        measure_from,
        end,
    ));
    let mut total = SlotStats::default();
    for task in tasks {
        let stats = task.await.unwrap_or_default();
        total.merge(stats);
    }
    let mut report = total.report(&signer, concurrency, &config);
    if let Ok((first, last)) = cpu_window.await {
        report.cpu = first.spent_until(&last, report.ok);
    }
    Ok(report)
}

/// Signs `per_slot` requests for every slot, on every core (before timing starts).
fn prebuild(sources: &mut [SlotSource], per_slot: usize) -> Result<(), TrafficError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = sources.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = sources
            .chunks_mut(chunk)
            .map(|chunk| {
                scope.spawn(move || {
                    for source in chunk {
                        source.fill(per_slot)?;
                    }
                    Ok::<_, TrafficError>(())
                })
            })
            .collect();
        handles
            .into_iter()
            .try_for_each(|h| h.join().unwrap_or(Ok(())))
    })
}

/// Where the gateway listens.
#[derive(Debug, Clone)]
struct Target {
    addr: SocketAddr,
    /// The `Host` header: the URL's authority.
    host: String,
}

impl Target {
    async fn parse(gateway: &str) -> Result<Self, TrafficError> {
        let bad = |reason: &str| TrafficError::GatewayUrl {
            url: gateway.to_owned(),
            reason: reason.to_owned(),
        };
        let uri: http::Uri = gateway.parse().map_err(|_| bad("not a URL"))?;
        if uri.scheme_str() != Some("http") {
            return Err(bad("the load generator speaks plain http only"));
        }
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        let port = authority.port_u16().unwrap_or(80);
        let addr = tokio::net::lookup_host((authority.host(), port))
            .await
            .map_err(|e| bad(&e.to_string()))?
            .next()
            .ok_or_else(|| bad("host does not resolve"))?;
        Ok(Self {
            addr,
            host: authority.as_str().to_owned(),
        })
    }
}

/// A pre-signed request: the callback plus the HTTP request that carries it.
struct Prepared {
    request: Bytes,
    callback: SignedCallback,
}

/// One slot's supply of callbacks: pre-built first, then signed inline.
struct SlotSource {
    signer: Arc<CallbackSigner>,
    host: String,
    followers: Vec<Follower>,
    next_follower: usize,
    prebuilt: std::collections::VecDeque<Prepared>,
    action: CitizenAction,
    built_inline: u64,
}

impl SlotSource {
    fn new(
        signer: Arc<CallbackSigner>,
        host: &str,
        run_tag: &str,
        slot: usize,
        followers: usize,
        action: CitizenAction,
    ) -> Self {
        let followers = (0..followers.max(1))
            .map(|i| Follower::numbered(run_tag, (slot as u64) << 20 | i as u64))
            .collect();
        Self {
            signer,
            host: host.to_owned(),
            followers,
            next_follower: 0,
            prebuilt: std::collections::VecDeque::new(),
            action,
            built_inline: 0,
        }
    }

    fn build(&mut self) -> Result<Prepared, TrafficError> {
        let i = self.next_follower;
        self.next_follower = (i + 1) % self.followers.len();
        let callback = self.signer.sign(&mut self.followers[i], &self.action)?;
        if callback.path_and_query.parse::<http::Uri>().is_err() {
            return Err(TrafficError::GatewayUrl {
                url: callback.path_and_query.clone(),
                reason: "account id is not URL-safe".to_owned(),
            });
        }
        let request = wire::post_request(&self.host, &callback.path_and_query, &callback.body);
        Ok(Prepared { request, callback })
    }

    fn fill(&mut self, n: usize) -> Result<(), TrafficError> {
        self.prebuilt.reserve(n);
        for _ in 0..n {
            let prepared = self.build()?;
            self.prebuilt.push_back(prepared);
        }
        Ok(())
    }

    fn next(&mut self) -> Result<Prepared, TrafficError> {
        match self.prebuilt.pop_front() {
            Some(prepared) => Ok(prepared),
            None => {
                self.built_inline += 1;
                self.build()
            }
        }
    }
}

#[derive(Debug, Default)]
struct SlotStats {
    latencies_us: Vec<u64>,
    sent: u64,
    ok: u64,
    sent_total: u64,
    ok_total: u64,
    errors: u64,
    error_reasons: BTreeMap<String, u64>,
    retried: u64,
    replies: u64,
    built_inline: u64,
}

impl SlotStats {
    fn merge(&mut self, other: SlotStats) {
        self.latencies_us.extend(other.latencies_us);
        self.sent += other.sent;
        self.ok += other.ok;
        self.sent_total += other.sent_total;
        self.ok_total += other.ok_total;
        self.errors += other.errors;
        for (reason, n) in other.error_reasons {
            *self.error_reasons.entry(reason).or_default() += n;
        }
        self.retried += other.retried;
        self.replies += other.replies;
        self.built_inline += other.built_inline;
    }

    fn report(
        mut self,
        signer: &CallbackSigner,
        concurrency: usize,
        config: &LoadConfig,
    ) -> LoadReport {
        self.latencies_us.sort_unstable();
        let ms = |us: u64| us as f64 / 1000.0;
        let duration_secs = config.duration.as_secs_f64();
        let mean_ms = if self.latencies_us.is_empty() {
            0.0
        } else {
            ms(self.latencies_us.iter().sum::<u64>()) / self.latencies_us.len() as f64
        };
        LoadReport {
            account: signer.account().id.clone(),
            mode: signer.account().mode,
            concurrency,
            rate: config.rate,
            duration_secs,
            warmup_secs: config.warmup.as_secs_f64(),
            sent: self.sent,
            ok: self.ok,
            callbacks_per_sec: if duration_secs > 0.0 {
                self.ok as f64 / duration_secs
            } else {
                0.0
            },
            p50_ms: ms(percentile(&self.latencies_us, 0.50)),
            p90_ms: ms(percentile(&self.latencies_us, 0.90)),
            p99_ms: ms(percentile(&self.latencies_us, 0.99)),
            max_ms: ms(self.latencies_us.last().copied().unwrap_or(0)),
            mean_ms,
            sent_total: self.sent_total,
            ok_total: self.ok_total,
            errors: self.errors,
            error_reasons: self.error_reasons,
            retried: self.retried,
            replies: self.replies,
            built_inline: self.built_inline,
            cpu: Vec::new(),
        }
    }
}

/// Nearest-rank percentile of sorted values (0 when empty).
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

struct Slot {
    target: Target,
    retry: RetryPolicy,
    check: Option<Arc<ReplyCheck>>,
    source: SlotSource,
    conn: Option<Connection>,
    stats: SlotStats,
}

/// The outcome of one callback after its attempts.
enum Outcome {
    Ok { replied: bool },
    Failed(String),
}

impl Slot {
    async fn run(
        mut self,
        start: Instant,
        measure_from: Instant,
        end: Instant,
        period: Option<Duration>,
    ) -> SlotStats {
        let mut ticker = period.map(|p| {
            let mut t = tokio::time::interval_at(start, p);
            // Late ticks fire at once and keep their scheduled time, so latency is
            // measured from when the callback should have gone (no coordinated omission).
            t.set_missed_tick_behavior(MissedTickBehavior::Burst);
            t
        });
        tokio::time::sleep_until(start).await;
        loop {
            let scheduled = match ticker.as_mut() {
                Some(t) => t.tick().await,
                None => Instant::now(),
            };
            if scheduled >= end {
                break;
            }
            let prepared = match self.source.next() {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, "cannot sign a callback");
                    break;
                }
            };
            let (outcome, attempts) = self.deliver(&prepared).await;
            let latency = scheduled.elapsed();
            let measured = scheduled >= measure_from;
            self.record(outcome, attempts, latency, measured);
        }
        self.stats.built_inline = self.source.built_inline;
        self.stats
    }

    fn record(&mut self, outcome: Outcome, attempts: u32, latency: Duration, measured: bool) {
        let stats = &mut self.stats;
        stats.sent_total += 1;
        if attempts > 1 {
            stats.retried += 1;
        }
        if measured {
            stats.sent += 1;
            stats.latencies_us.push(latency.as_micros() as u64);
        }
        match outcome {
            Outcome::Ok { replied } => {
                stats.ok_total += 1;
                stats.replies += u64::from(replied);
                if measured {
                    stats.ok += 1;
                }
            }
            Outcome::Failed(reason) => {
                stats.errors += 1;
                *stats.error_reasons.entry(reason).or_default() += 1;
            }
        }
    }

    /// Sends one callback with WeChat's retries; returns the outcome and attempts made.
    async fn deliver(&mut self, prepared: &Prepared) -> (Outcome, u32) {
        let mut last = Outcome::Failed("no_attempt".to_owned());
        let max = self.retry.max_attempts.max(1);
        for attempt in 1..=max {
            match tokio::time::timeout(self.retry.timeout, self.attempt(prepared)).await {
                Ok(Ok((status, body))) => {
                    let outcome = match &self.check {
                        Some(check) => match check.check(&prepared.callback, status, &body) {
                            Ok(CheckedReply::NoReply) => Outcome::Ok { replied: false },
                            Ok(CheckedReply::Reply { .. }) => Outcome::Ok { replied: true },
                            Err(e) => Outcome::Failed(match e {
                                super::ReplyCheckError::Status(s) => format!("status_{s}"),
                                other => format!("reply_{}", other.reason()),
                            }),
                        },
                        None if status == 200 => Outcome::Ok { replied: false },
                        None => Outcome::Failed(format!("status_{status}")),
                    };
                    return (outcome, attempt);
                }
                Ok(Err(reason)) => {
                    self.conn = None;
                    last = Outcome::Failed(reason);
                    // Do not spin on a refused connection.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(_) => {
                    // WeChat drops the connection of an attempt it gave up on.
                    self.conn = None;
                    last = Outcome::Failed("timeout".to_owned());
                }
            }
        }
        (last, max)
    }

    async fn attempt(&mut self, prepared: &Prepared) -> Result<(u16, Bytes), String> {
        let connection = match &mut self.conn {
            Some(connection) if connection.is_reusable() => connection,
            _ => self.conn.insert(
                Connection::open(self.target.addr)
                    .await
                    .map_err(|e| e.reason.to_owned())?,
            ),
        };
        connection
            .exchange(&prepared.request)
            .await
            .map_err(|e| e.reason.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.50), 50);
        assert_eq!(percentile(&v, 0.99), 99);
        assert_eq!(percentile(&v, 1.0), 100);
        assert_eq!(percentile(&[7], 0.5), 7);
        assert_eq!(percentile(&[], 0.5), 0);
    }
}
