//! The consumer benchmark's two halves: `prefill` writes citizens' text messages
//! straight into `WECHAT_INBOUND` (as the gateway would, `Nats-Msg-Id` = event id),
//! and `report` joins the stream's store times with a service's `processed_events`
//! (`processed_at` is `clock_timestamp()` when the event was applied) to give the
//! apply rate and the store → applied latency.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use platform::nats::Namespace;
use prost::Message as _;
use proto::events::v1 as ev;

use super::CitizenAction;
use super::load::percentile;

/// Why a benchmark step failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("nats: {0}")]
    Nats(String),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

fn nats(error: impl std::fmt::Display) -> BenchError {
    BenchError::Nats(error.to_string())
}

/// What to publish.
#[derive(Debug, Clone)]
pub struct Prefill {
    pub account: String,
    pub original_id: String,
    pub messages: usize,
    /// Distinct citizens; message `i` comes from citizen `i % citizens`.
    pub citizens: usize,
    /// Distinguishes runs: openids are `o{run_tag}{n}`.
    pub run_tag: String,
}

/// Publishes `prefill.messages` text messages into the namespace's `WECHAT_INBOUND`
/// (provisioned if absent) and returns how many JetStream stored.
pub async fn prefill(
    client: async_nats::Client,
    namespace: &Namespace,
    prefill: &Prefill,
) -> Result<u64, BenchError> {
    let jetstream = jetstream::new(client);
    platform::nats::provision_streams(&jetstream, namespace, &[platform::nats::WECHAT_INBOUND])
        .await
        .map_err(nats)?;
    let subject = namespace.subject(&format!("wechat.inbound.{}.msg.text", prefill.account));
    let action = CitizenAction::Text {
        content: "请问社保卡丢了怎么补办？需要带什么材料".to_owned(),
    };
    let now = Utc::now().timestamp().max(0) as u64;
    let mut stored = 0;
    let mut acks = Vec::with_capacity(1000);
    for i in 0..prefill.messages {
        let citizen = i % prefill.citizens.max(1);
        let openid = format!("o{}{citizen}", prefill.run_tag);
        let msg_id = 7_000_000_000_000 + i as u64;
        let xml = action.to_xml(&prefill.original_id, &openid, now, msg_id);
        let event_id = format!("{}:{openid}:{msg_id}", prefill.account);
        let inbound = ev::Inbound {
            header: Some(ev::EventHeader {
                event_id: event_id.clone(),
                account: prefill.account.clone(),
                occurred_at: Some(prost_types::Timestamp {
                    seconds: now as i64,
                    nanos: 0,
                }),
            }),
            kind: ev::InboundKind::Message as i32,
            msg_type: "text".to_owned(),
            to_user_name: prefill.original_id.clone(),
            from_user_name: openid,
            msg_id: msg_id.to_string(),
            raw_xml: xml,
            received_at: Some(prost_types::Timestamp::from(std::time::SystemTime::now())),
            ..Default::default()
        };
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, event_id.as_str());
        let ack = jetstream
            .publish_with_headers(subject.clone(), headers, inbound.encode_to_vec().into())
            .await
            .map_err(nats)?;
        acks.push(ack);
        if acks.len() == acks.capacity() {
            stored += settle(&mut acks).await?;
        }
    }
    stored += settle(&mut acks).await?;
    Ok(stored)
}

async fn settle(acks: &mut Vec<jetstream::context::PublishAckFuture>) -> Result<u64, BenchError> {
    let mut stored = 0;
    for ack in acks.drain(..) {
        if !ack.await.map_err(nats)?.duplicate {
            stored += 1;
        }
    }
    Ok(stored)
}

/// The joined figures.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConsumerReport {
    /// Messages in the stream that carry an event id.
    pub stream_messages: u64,
    /// Of those, how many the service recorded as applied.
    pub applied: u64,
    /// From the first to the last `processed_at`.
    pub applied_span_ms: f64,
    /// `applied / applied_span`.
    pub applied_per_second: f64,
    /// Store → applied, over the applied events.
    pub lag_p50_ms: f64,
    pub lag_p90_ms: f64,
    pub lag_p99_ms: f64,
    pub lag_max_ms: f64,
}

/// Joins the namespace's `WECHAT_INBOUND` with the `processed_events` of the
/// database at `database_url`.
pub async fn report(
    client: async_nats::Client,
    namespace: &Namespace,
    database_url: &str,
) -> Result<ConsumerReport, BenchError> {
    let stored = stream_store_times(client, &namespace.name("WECHAT_INBOUND")).await?;
    let pool = sqlx::PgPool::connect(database_url).await?;
    let processed: Vec<(String, DateTime<Utc>)> =
        sqlx::query_as("SELECT event_id, processed_at FROM processed_events")
            .fetch_all(&pool)
            .await?;
    pool.close().await;
    let mut lags_us = Vec::with_capacity(processed.len());
    let (mut first, mut last) = (None::<DateTime<Utc>>, None::<DateTime<Utc>>);
    for (event_id, processed_at) in &processed {
        let Some(stored_at) = stored.get(event_id) else {
            continue;
        };
        lags_us.push(
            (*processed_at - *stored_at)
                .num_microseconds()
                .unwrap_or(0)
                .max(0) as u64,
        );
        first = Some(first.map_or(*processed_at, |f| f.min(*processed_at)));
        last = Some(last.map_or(*processed_at, |l| l.max(*processed_at)));
    }
    lags_us.sort_unstable();
    let applied = lags_us.len() as u64;
    let span = match (first, last) {
        (Some(first), Some(last)) => (last - first).to_std().unwrap_or_default(),
        _ => Duration::ZERO,
    };
    let ms = |us: u64| us as f64 / 1000.0;
    Ok(ConsumerReport {
        stream_messages: stored.len() as u64,
        applied,
        applied_span_ms: span.as_secs_f64() * 1000.0,
        applied_per_second: if span.is_zero() {
            0.0
        } else {
            applied.saturating_sub(1) as f64 / span.as_secs_f64()
        },
        lag_p50_ms: ms(percentile(&lags_us, 0.50)),
        lag_p90_ms: ms(percentile(&lags_us, 0.90)),
        lag_p99_ms: ms(percentile(&lags_us, 0.99)),
        lag_max_ms: ms(lags_us.last().copied().unwrap_or(0)),
    })
}

/// Every message's payload event id and JetStream store time.
async fn stream_store_times(
    client: async_nats::Client,
    stream: &str,
) -> Result<HashMap<String, DateTime<Utc>>, BenchError> {
    let jetstream = jetstream::new(client);
    let mut handle = jetstream.get_stream(stream).await.map_err(nats)?;
    let total = handle.info().await.map_err(nats)?.state.messages;
    let consumer = handle
        .create_consumer(jetstream::consumer::pull::Config {
            ack_policy: jetstream::consumer::AckPolicy::None,
            inactive_threshold: Duration::from_secs(60),
            ..Default::default()
        })
        .await
        .map_err(nats)?;
    let mut messages = consumer.messages().await.map_err(nats)?;
    let mut stored = HashMap::with_capacity(total as usize);
    let mut seen = 0;
    while seen < total {
        let Some(message) = messages.next().await else {
            break;
        };
        let message = message.map_err(nats)?;
        seen += 1;
        let published = message.info().map_err(nats)?.published;
        let at = DateTime::from_timestamp_nanos(
            i64::try_from(published.unix_timestamp_nanos()).unwrap_or(0),
        );
        if let Ok(inbound) = ev::Inbound::decode(message.payload.clone())
            && let Some(header) = inbound.header
        {
            stored.insert(header.event_id, at);
        }
    }
    Ok(stored)
}
