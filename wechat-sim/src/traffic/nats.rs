//! NATS helpers for benchmarks: the passive-reply responder, the raw JetStream
//! publish-with-ack ceiling, and stream message counts.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use bytes::Bytes;
use futures::StreamExt as _;
use platform::nats::{Namespace, WECHAT_INBOUND};
use prost::Message as _;
use proto::events::v1::{Inbound, PassiveReply, TextReply, passive_reply};
use proto::interaction::v1::{MatchKind, ReplyRule, ReplyRuleSnapshot};
use tokio::time::Instant;

use super::cpu::{ProcessCpu, WatchedProcess, measure_window};
use super::load::percentile;

/// The queue group responders share, so several of them split the requests.
pub const RESPONDER_QUEUE_GROUP: &str = "wechat-sim-responder";

/// Errors of the NATS helpers.
#[derive(Debug, thiserror::Error)]
pub enum NatsToolError {
    /// Subscribing failed.
    #[error("cannot subscribe to {subject}: {reason}")]
    Subscribe {
        /// The subject.
        subject: String,
        /// Why.
        reason: String,
    },
    /// A JetStream stream operation failed.
    #[error("stream {stream}: {reason}")]
    Stream {
        /// The stream name.
        stream: String,
        /// Why.
        reason: String,
    },
}

/// Returns the reply-path subject of `account` (`*` for every account) in `namespace`.
pub fn reply_subject(namespace: &Namespace, account: &str) -> String {
    namespace.subject(&format!("wechat.reply.{account}"))
}

/// The responder's text reply to a message.
const CANNED_TEXT: &str = "您好，已收到，工作人员会尽快处理。";

/// The passive reply the responder gives to `inbound`.
pub fn canned_reply(inbound: &Inbound) -> PassiveReply {
    let content = if inbound.event == "subscribe" {
        "感谢关注！回复“社保”“医保”“公交”“户籍”查看办事指南。"
    } else {
        CANNED_TEXT
    };
    PassiveReply {
        body: Some(passive_reply::Body::Text(TextReply {
            content: content.to_owned(),
        })),
    }
}

/// The keyword of the rule [`keyword_snapshot`] holds: the load generator's text
/// (`load::LOAD_TEXT`) contains it.
pub const KEYWORD: &str = "社保";

/// A rules snapshot as interaction-svc sends it to the gateways: one contains-rule on
/// [`KEYWORD`] answering with the canned text, so a gateway answers the load's
/// callbacks at the edge.
pub fn keyword_snapshot(account: &str) -> ReplyRuleSnapshot {
    ReplyRuleSnapshot {
        account: account.to_owned(),
        rules: vec![ReplyRule {
            id: "00000000-0000-4000-8000-000000000001".to_owned(),
            account: account.to_owned(),
            r#match: MatchKind::Contains as i32,
            patterns: vec![KEYWORD.to_owned()],
            priority: 0,
            text: CANNED_TEXT.to_owned(),
            news: Vec::new(),
            resolves: true,
            enabled: true,
        }],
    }
}

/// How a responder answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResponderConfig {
    /// Also answer the gateways' rules snapshot requests with [`keyword_snapshot`].
    pub rules: bool,
    /// Answer every reply request with no reply, as interaction-svc does for a message
    /// it has nothing to say to at once (the gateway answers `success` and stores no
    /// missed-reply marker), instead of [`canned_reply`].
    pub no_reply: bool,
}

/// Answers every request on the reply path of `accounts` (with a short text reply,
/// or none: `config`), in the [`RESPONDER_QUEUE_GROUP`] queue group, until `shutdown`
/// completes. Returns how many reply requests it answered.
pub async fn run_responder(
    client: async_nats::Client,
    namespace: &Namespace,
    accounts: &[String],
    config: ResponderConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<u64, NatsToolError> {
    let mut subjects: Vec<String> = accounts
        .iter()
        .map(|account| reply_subject(namespace, account))
        .collect();
    let snapshot_prefix = namespace.subject(&reply_rules::snapshot_subject(""));
    if config.rules {
        subjects.extend(
            accounts
                .iter()
                .map(|account| namespace.subject(&reply_rules::snapshot_subject(account))),
        );
    }
    let mut subscribers = Vec::with_capacity(subjects.len());
    for subject in subjects {
        let sub = client
            .queue_subscribe(subject.clone(), RESPONDER_QUEUE_GROUP.to_owned())
            .await
            .map_err(|e| NatsToolError::Subscribe {
                subject: subject.clone(),
                reason: e.to_string(),
            })?;
        tracing::info!(%subject, queue = RESPONDER_QUEUE_GROUP, "responder listening");
        subscribers.push(sub);
    }
    let mut requests = futures::stream::select_all(subscribers);
    let mut answered = 0u64;
    tokio::pin!(shutdown);
    loop {
        let message = tokio::select! {
            () = &mut shutdown => break,
            message = requests.next() => match message {
                Some(message) => message,
                None => break,
            },
        };
        let Some(reply_to) = message.reply else {
            continue;
        };
        if let Some(account) = message.subject.as_str().strip_prefix(&snapshot_prefix) {
            let snapshot = keyword_snapshot(account).encode_to_vec();
            if let Err(e) = client.publish(reply_to, Bytes::from(snapshot)).await {
                tracing::warn!(error = %e, "cannot publish the rules snapshot");
            }
            continue;
        }
        let reply = match Inbound::decode(message.payload) {
            Ok(_) if config.no_reply => PassiveReply::default(),
            Ok(inbound) => canned_reply(&inbound),
            Err(e) => {
                tracing::warn!(error = %e, "request is not an Inbound; answering no reply");
                PassiveReply::default()
            }
        };
        if let Err(e) = client
            .publish(reply_to, Bytes::from(reply.encode_to_vec()))
            .await
        {
            tracing::warn!(error = %e, "cannot publish the reply");
            continue;
        }
        answered += 1;
    }
    let _ = client.flush().await;
    Ok(answered)
}

/// How to measure the raw JetStream publish-with-ack rate.
#[derive(Debug, Clone)]
pub struct CeilingConfig {
    /// Concurrent publishers, each awaiting its PubAck before the next publish.
    pub concurrency: usize,
    /// Measured duration.
    pub duration: Duration,
    /// Warm-up, not measured.
    pub warmup: Duration,
    /// Payload size in bytes (the gateway's encoded `Inbound`).
    pub payload_bytes: usize,
    /// Namespace for the bench stream.
    pub namespace: Namespace,
    /// Processes whose CPU per ack the report gives (the publisher's own always).
    pub cpu_watch: Vec<WatchedProcess>,
}

/// The result of a ceiling run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CeilingReport {
    /// Concurrent publishers.
    pub concurrency: usize,
    /// Payload size in bytes.
    pub payload_bytes: usize,
    /// Measured seconds.
    pub duration_secs: f64,
    /// Acknowledged publishes started in the measured window.
    pub published: u64,
    /// `published / duration_secs`.
    pub acks_per_sec: f64,
    /// Publish-to-ack latency percentiles in milliseconds.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Maximum.
    pub max_ms: f64,
    /// Acknowledged publishes in the whole run.
    pub published_total: u64,
    /// Failed publishes in the whole run.
    pub errors: u64,
    /// Messages the bench stream held at the end (equals `published_total` when nothing was lost).
    pub stream_messages: u64,
    /// CPU the watched processes spent in the measured window, per ack (`publisher`
    /// is this process); empty where `/proc` cannot be read.
    #[serde(default)]
    pub cpu: Vec<ProcessCpu>,
}

/// Creates a bench stream with WECHAT_INBOUND's settings, publishes to it from
/// `concurrency` publishers for the duration, checks its count, and deletes it.
pub async fn run_ceiling(
    client: async_nats::Client,
    config: CeilingConfig,
) -> Result<CeilingReport, NatsToolError> {
    let jetstream = jetstream::new(client);
    let tag = format!("{:08x}", rand::random::<u32>());
    let name = config.namespace.name(&format!("BENCH_CEILING_{tag}"));
    let subject = config
        .namespace
        .subject(&format!("bench.ceiling.{tag}.msg.text"));
    let stream_error = |reason: String| NatsToolError::Stream {
        stream: name.clone(),
        reason,
    };
    // The same settings as WECHAT_INBOUND (platform::nats), duplicate window included,
    // so the server does the same work per message as for the gateway.
    jetstream
        .create_stream(stream::Config {
            name: name.clone(),
            subjects: vec![config.namespace.subject(&format!("bench.ceiling.{tag}.>"))],
            max_age: WECHAT_INBOUND.max_age,
            duplicate_window: WECHAT_INBOUND.duplicate_window,
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            discard: stream::DiscardPolicy::Old,
            ..Default::default()
        })
        .await
        .map_err(|e| stream_error(e.to_string()))?;

    let payload = Bytes::from(vec![b'x'; config.payload_bytes]);
    let concurrency = config.concurrency.max(1);
    let start = Instant::now() + Duration::from_millis(20);
    let measure_from = start + config.warmup;
    let end = measure_from + config.duration;
    let subject: Arc<str> = subject.into();
    let tasks: Vec<_> = (0..concurrency)
        .map(|slot| {
            let jetstream = jetstream.clone();
            let payload = payload.clone();
            let subject = subject.clone();
            let tag = tag.clone();
            tokio::spawn(async move {
                let mut stats = PublisherStats::default();
                tokio::time::sleep_until(start).await;
                let mut n = 0u64;
                loop {
                    let started = Instant::now();
                    if started >= end {
                        break;
                    }
                    n += 1;
                    let publish = jetstream::message::PublishMessage::build()
                        .message_id(format!("{tag}:{slot}:{n}"))
                        .payload(payload.clone());
                    let acked = match jetstream.send_publish(subject.to_string(), publish).await {
                        Ok(ack) => ack.await.is_ok(),
                        Err(_) => false,
                    };
                    if !acked {
                        stats.errors += 1;
                        continue;
                    }
                    stats.published_total += 1;
                    if started >= measure_from {
                        stats
                            .latencies_us
                            .push(started.elapsed().as_micros() as u64);
                    }
                }
                stats
            })
        })
        .collect();
    let cpu_window = tokio::spawn(measure_window(
        "publisher",
        &config.cpu_watch,
        measure_from,
        end,
    ));
    let mut total = PublisherStats::default();
    for task in tasks {
        let stats = task.await.unwrap_or_default();
        total.latencies_us.extend(stats.latencies_us);
        total.published_total += stats.published_total;
        total.errors += stats.errors;
    }
    let mut stream = jetstream
        .get_stream(&name)
        .await
        .map_err(|e| stream_error(e.to_string()))?;
    let stream_messages = stream
        .info()
        .await
        .map_err(|e| stream_error(e.to_string()))?
        .state
        .messages;
    if let Err(e) = jetstream.delete_stream(&name).await {
        tracing::warn!(stream = %name, error = %e, "cannot delete the bench stream");
    }

    let cpu = match cpu_window.await {
        Ok((first, last)) => first.spent_until(&last, total.latencies_us.len() as u64),
        Err(_) => Vec::new(),
    };
    total.latencies_us.sort_unstable();
    let lat = &total.latencies_us;
    let ms = |us: u64| us as f64 / 1000.0;
    let duration_secs = config.duration.as_secs_f64();
    Ok(CeilingReport {
        concurrency,
        payload_bytes: config.payload_bytes,
        duration_secs,
        published: lat.len() as u64,
        acks_per_sec: if duration_secs > 0.0 {
            lat.len() as f64 / duration_secs
        } else {
            0.0
        },
        p50_ms: ms(percentile(lat, 0.50)),
        p90_ms: ms(percentile(lat, 0.90)),
        p99_ms: ms(percentile(lat, 0.99)),
        max_ms: ms(lat.last().copied().unwrap_or(0)),
        published_total: total.published_total,
        errors: total.errors,
        stream_messages,
        cpu,
    })
}

#[derive(Debug, Default)]
struct PublisherStats {
    latencies_us: Vec<u64>,
    published_total: u64,
    errors: u64,
}

/// What a stream holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StreamCount {
    /// The stream name (namespaced).
    pub stream: String,
    /// Messages stored.
    pub messages: u64,
    /// Bytes stored.
    pub bytes: u64,
    /// Payload size of the last message (the encoded `Inbound` for WECHAT_INBOUND).
    pub last_payload_bytes: Option<usize>,
}

/// Reads the message count of `stream` (already namespaced).
pub async fn stream_count(
    client: async_nats::Client,
    stream: &str,
) -> Result<StreamCount, NatsToolError> {
    let jetstream = jetstream::new(client);
    let stream_error = |reason: String| NatsToolError::Stream {
        stream: stream.to_owned(),
        reason,
    };
    let mut handle = jetstream
        .get_stream(stream)
        .await
        .map_err(|e| stream_error(e.to_string()))?;
    let state = handle
        .info()
        .await
        .map_err(|e| stream_error(e.to_string()))?
        .state
        .clone();
    let last_payload_bytes = if state.messages > 0 {
        handle
            .get_raw_message(state.last_sequence)
            .await
            .ok()
            .map(|m| m.payload.len())
    } else {
        None
    };
    Ok(StreamCount {
        stream: stream.to_owned(),
        messages: state.messages,
        bytes: state.bytes,
        last_payload_bytes,
    })
}
