//! The passive-reply path: the edge rules' answer ([`crate::edge`]) or else a core
//! NATS request on `wechat.reply.{account}` within a budget, and the reply cache that
//! lets a retried callback get the first answer.
//!
//! The cache has two levels: a bounded in-process map, checked before asking (so a
//! retry that reaches the same replica never asks interaction-svc again), and a NATS
//! KV bucket shared by every replica, read only when JetStream says the callback is a
//! duplicate and the process missed. A reply goes to the bucket only when WeChat may
//! retry its callback: the answer left late ([`crate::config::Limits::reply_share_after`])
//! or never left ([`UnsentReply`]). WeChat retries only a
//! callback it got no answer to in time, so a reply that left in milliseconds is not
//! worth a JetStream write per callback (a third of the replying path's NATS work).
//! A retry that lands on another replica without a shared reply is asked again;
//! interaction-svc sees the same `event_id` and must answer it the same way. Only real
//! replies are cached: a `success` is what a retry gets by asking again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::{self, kv, message::PublishMessage};
use async_nats::{RequestErrorKind, client::Request};
use bytes::Bytes;
use platform::Drain;
use platform::nats::Namespace;

use crate::batch::NatsBatcher;
use crate::edge::EdgeRules;
use crate::log_limit::LogLimiter;
use prost::Message as _;
use proto::events::v1::{PassiveReply, passive_reply};
use reply_rules::Incoming;
use sha2::{Digest, Sha256};
use tokio::time::Instant;
use wechat::message::InboundMessage;
use wechat::reply::{Article, ReplyBody};
use wechat::token::kv_bucket_stream;

/// The KV bucket of replies, before namespacing.
pub const REPLY_BUCKET: &str = "GATEWAY_REPLIES";
/// How long replies stay in the bucket: WeChat retries within about 15 s.
pub const REPLY_BUCKET_MAX_AGE: Duration = Duration::from_secs(10 * 60);

/// How the reply path ended, for logs and the `outcome` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyOutcome {
    /// interaction-svc answered with a reply that passed validation.
    Answered,
    /// The gateway's copy of the account's rules answered (interaction-svc not asked).
    Edge,
    /// The reply given to an earlier delivery of this callback.
    Cached,
    /// interaction-svc deliberately sent no reply.
    NoReply,
    /// Not asked: a callback interaction-svc never answers (an unfollow, a reported
    /// location, a link menu, …: `Incoming::may_get_passive_reply`).
    NotAsked,
    /// Nobody listens on the reply subject.
    NoResponder,
    /// No answer inside the budget.
    Timeout,
    /// The answer could not be decoded or breaks WeChat's limits.
    Invalid,
    /// NATS failed otherwise (for example, disconnected).
    Error,
}

impl ReplyOutcome {
    /// Every outcome, in declaration order (`outcome as usize` is its index here):
    /// the callback path keeps a counter handle per account and outcome.
    pub const ALL: [Self; 9] = [
        Self::Answered,
        Self::Edge,
        Self::Cached,
        Self::NoReply,
        Self::NotAsked,
        Self::NoResponder,
        Self::Timeout,
        Self::Invalid,
        Self::Error,
    ];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Answered => "answered",
            Self::Edge => "edge",
            Self::Cached => "cached",
            Self::NoReply => "no_reply",
            Self::NotAsked => "not_asked",
            Self::NoResponder => "no_responder",
            Self::Timeout => "timeout",
            Self::Invalid => "invalid",
            Self::Error => "error",
        }
    }
}

/// Where a reply came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplySource {
    /// interaction-svc, asked for this delivery.
    Asked,
    /// The gateway's copy of the account's rules.
    Edge,
    /// An earlier delivery of the same callback (this process's or another replica's).
    Cached,
}

/// What the reply request produced: an encoded `PassiveReply` or why there is none.
#[derive(Debug, Clone)]
pub enum Fetched {
    /// A `PassiveReply`, fresh or from the cache.
    Reply { encoded: Bytes, source: ReplySource },
    /// No reply; the callback answers `success`.
    Nothing(ReplyOutcome),
}

/// Asks for passive replies and remembers them.
#[derive(Clone)]
pub struct Replier {
    /// Requests go through the batcher: sent one by one they would each wake the NATS
    /// client for a write of their own.
    batcher: NatsBatcher,
    namespace: Namespace,
    cache: ReplyCache,
    /// After NATS says nobody listens on an account's reply subject, the gateway stops
    /// asking for this long: interaction-svc is down or not deployed, and each request
    /// would cost a round trip through NATS for a certain `success`.
    no_responder_pause: Duration,
    /// Per account: until when to skip asking.
    silent_until: Arc<Mutex<HashMap<String, Instant>>>,
    /// The rules answered without asking (`None`: `EDGE_RULES=false`).
    edge: Option<Arc<EdgeRules>>,
    /// `gateway_reply_seconds{outcome}` by `ReplyOutcome`, each made at its first
    /// use (so exported as before): a `histogram!` per callback hashed its key and
    /// looked it up in the recorder's registry.
    seconds: Arc<[OnceLock<metrics::Histogram>; ReplyOutcome::ALL.len()]>,
}

impl Replier {
    pub fn new(
        batcher: NatsBatcher,
        namespace: Namespace,
        cache: ReplyCache,
        no_responder_pause: Duration,
        edge: Option<Arc<EdgeRules>>,
    ) -> Self {
        Self {
            batcher,
            namespace,
            cache,
            no_responder_pause,
            silent_until: Arc::default(),
            edge,
            seconds: Arc::new(std::array::from_fn(|_| OnceLock::new())),
        }
    }

    /// Records how long the reply path took, as `outcome` (`Answered` for a fresh
    /// reply from interaction-svc, before it is validated).
    fn record_seconds(&self, outcome: ReplyOutcome, started: Instant) {
        self.seconds[outcome as usize]
            .get_or_init(
                || metrics::histogram!("gateway_reply_seconds", "outcome" => outcome.as_str()),
            )
            .record(started.elapsed().as_secs_f64());
    }

    fn known_silent(&self, account: &str, now: Instant) -> bool {
        let silent = self.silent_until.lock().unwrap_or_else(|e| e.into_inner());
        silent.get(account).is_some_and(|until| now < *until)
    }

    fn mark_silent(&self, account: &str, now: Instant) {
        let mut silent = self.silent_until.lock().unwrap_or_else(|e| e.into_inner());
        silent.insert(account.to_owned(), now + self.no_responder_pause);
    }

    /// The cache, for the duplicate check after the PubAck and for storing answers.
    pub fn cache(&self) -> &ReplyCache {
        &self.cache
    }

    /// The in-process cached reply for `key`, if any; nothing for a callback
    /// interaction-svc never answers; else the edge rules' answer to `message`, else a
    /// request (carrying `inbound`) within `until`.
    pub async fn fetch(
        &self,
        account: &str,
        key: &ReplyKey,
        message: &InboundMessage,
        inbound: Bytes,
        until: Instant,
    ) -> Fetched {
        if let Some(encoded) = self.cache.local(key) {
            return Fetched::Reply {
                encoded,
                source: ReplySource::Cached,
            };
        }
        let incoming = Incoming::of(message);
        if !incoming.may_get_passive_reply() {
            return Fetched::Nothing(ReplyOutcome::NotAsked);
        }
        let started = Instant::now();
        if let Some(encoded) = self
            .edge
            .as_ref()
            .and_then(|e| e.answer_to(account, &incoming))
        {
            self.record_seconds(ReplyOutcome::Edge, started);
            return Fetched::Reply {
                encoded,
                source: ReplySource::Edge,
            };
        }
        if self.known_silent(account, started) {
            return Fetched::Nothing(ReplyOutcome::NoResponder);
        }
        let subject = self.namespace.subject(&format!("wechat.reply.{account}"));
        // One timer for the whole wait: the request's own timeout would start only
        // once the batcher hands it to the client, and a batcher held up by publishes
        // (NATS slow, every PubAck permit taken) kept the answer past the budget.
        let request = Request::new().payload(inbound).timeout(None);
        let asked = async {
            match self.batcher.request(subject.into(), request).await {
                Ok(pending) => pending.await.map_err(|e| e.kind()),
                Err(_) => Err(RequestErrorKind::Other),
            }
        };
        let answer = tokio::time::timeout_at(until, asked)
            .await
            .unwrap_or(Err(RequestErrorKind::TimedOut));
        let fetched = match answer {
            Ok(message) if message.payload.is_empty() => Fetched::Nothing(ReplyOutcome::NoReply),
            Ok(message) => Fetched::Reply {
                encoded: message.payload,
                source: ReplySource::Asked,
            },
            Err(kind) => Fetched::Nothing(match kind {
                RequestErrorKind::TimedOut => ReplyOutcome::Timeout,
                RequestErrorKind::NoResponders => {
                    self.mark_silent(account, started);
                    ReplyOutcome::NoResponder
                }
                _ => ReplyOutcome::Error,
            }),
        };
        let outcome = match &fetched {
            Fetched::Reply { .. } => ReplyOutcome::Answered,
            Fetched::Nothing(outcome) => *outcome,
        };
        self.record_seconds(outcome, started);
        fetched
    }
}

/// Decodes a `PassiveReply`; `Ok(None)` is a deliberate "no reply".
pub fn decode(encoded: &[u8]) -> Result<Option<ReplyBody>, prost::DecodeError> {
    let reply = PassiveReply::decode(encoded)?;
    Ok(reply.body.map(|body| match body {
        passive_reply::Body::Text(t) => ReplyBody::Text { content: t.content },
        passive_reply::Body::Image(m) => ReplyBody::Image {
            media_id: m.media_id,
        },
        passive_reply::Body::Voice(m) => ReplyBody::Voice {
            media_id: m.media_id,
        },
        passive_reply::Body::Video(v) => ReplyBody::Video {
            media_id: v.media_id,
            title: v.title,
            description: v.description,
        },
        passive_reply::Body::Music(m) => ReplyBody::Music {
            title: m.title,
            description: m.description,
            music_url: m.music_url,
            hq_music_url: m.hq_music_url,
            thumb_media_id: m.thumb_media_id,
        },
        passive_reply::Body::News(n) => ReplyBody::News(
            n.articles
                .into_iter()
                .map(|a| Article {
                    title: a.title,
                    description: a.description,
                    pic_url: a.pic_url,
                    url: a.url,
                })
                .collect(),
        ),
    }))
}

/// The cache key of a callback: a hash of its `event_id` (fixed size, KV-safe).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReplyKey([u8; 16]);

impl ReplyKey {
    pub fn of(event_id: &str) -> Self {
        let digest = Sha256::digest(event_id.as_bytes());
        let mut key = [0u8; 16];
        key.copy_from_slice(&digest[..16]);
        Self(key)
    }

    fn kv_key(&self) -> String {
        hex::encode(self.0)
    }
}

/// Replies already given, in process and in the shared KV bucket.
#[derive(Clone)]
pub struct ReplyCache {
    local: Arc<Mutex<Generations>>,
    kv: kv::Store,
    /// Where the bucket's writes go (`$KV.{bucket}.`), as the store itself would put.
    put_prefix: Arc<str>,
    /// Writes go through the batcher rather than `kv.put`, which would
    /// wake the NATS client for each reply (one write, and one server read, per reply).
    writes: NatsBatcher,
    drain: Drain,
    /// While NATS is away every read or write fails: a line per account and period.
    logs: Arc<LogLimiter>,
    /// `gateway_replies_shared_total{why}`, by `ShareReason`, each made at its first
    /// use: when the publish or the responder is slow, every callback shares, and the
    /// `counter!` lookup cost each a key built and hashed where CPU is scarcest.
    shared: Arc<[OnceLock<metrics::Counter>; 2]>,
}

/// How often a retry's read of the bucket is repeated while the reply is not there.
pub const SHARED_POLL: Duration = Duration::from_millis(20);

/// The log limiter's causes for the bucket's failures.
const READ_FAILED: &str = "reply_cache_read_failed";
const WRITE_FAILED: &str = "reply_cache_write_failed";

/// How long a generation of the in-process cache lasts, so a reply is kept 30-60 s.
/// WeChat retries a callback twice, about 5 s apart, so its retries come within ~15 s;
/// keeping replies longer only grows the process (at 1,000 replies/s a generation of
/// 30 s is ~30,000 replies).
pub const REPLY_CACHE_GENERATION: Duration = Duration::from_secs(30);

/// Two generations of a map: when the young one is full or older than
/// [`REPLY_CACHE_GENERATION`] it becomes the old one and the old one is dropped, so
/// memory is bounded by both the capacity and the reply rate, and recent entries
/// survive.
struct Generations {
    young: HashMap<ReplyKey, Bytes>,
    old: HashMap<ReplyKey, Bytes>,
    young_since: Instant,
    half_capacity: usize,
}

impl ReplyCache {
    /// Opens (creating if needed) the namespaced reply bucket.
    pub async fn open(
        jetstream: &jetstream::Context,
        namespace: &Namespace,
        capacity: usize,
        writes: NatsBatcher,
        drain: Drain,
    ) -> Result<Self, String> {
        let bucket = namespace.name(REPLY_BUCKET);
        create_bucket(jetstream, &bucket).await?;
        let kv = open_bucket(jetstream, &bucket).await?;
        Ok(Self {
            local: Arc::new(Mutex::new(Generations {
                young: HashMap::new(),
                old: HashMap::new(),
                young_since: Instant::now(),
                half_capacity: (capacity / 2).max(1),
            })),
            put_prefix: kv.put_prefix.as_ref().unwrap_or(&kv.prefix).as_str().into(),
            kv,
            writes,
            drain,
            logs: Arc::default(),
            shared: Arc::default(),
        })
    }

    /// The reply this process gave for `key`.
    pub fn local(&self, key: &ReplyKey) -> Option<Bytes> {
        let local = self.local.lock().unwrap_or_else(|e| e.into_inner());
        local.young.get(key).or_else(|| local.old.get(key)).cloned()
    }

    /// The reply any replica gave for `account`'s `key`, read again every
    /// [`SHARED_POLL`] until it is there or `until`: the replica that answered the
    /// first delivery may still be writing it (only a retry's duplicate PubAck asks).
    pub async fn shared(&self, account: &str, key: &ReplyKey, until: Instant) -> Option<Bytes> {
        let kv_key = key.kv_key();
        loop {
            match tokio::time::timeout_at(until, self.kv.get(kv_key.as_str())).await {
                Ok(Ok(Some(found))) if !found.is_empty() => return Some(found),
                Ok(Ok(_)) => {}
                Ok(Err(error)) => {
                    let now = std::time::Instant::now();
                    if let Some(suppressed) = self.logs.admit(account, READ_FAILED, now) {
                        tracing::warn!(account, %error, suppressed, "reply cache read failed");
                    }
                    return None;
                }
                Err(_) => return None,
            }
            let next = Instant::now() + SHARED_POLL;
            if next >= until {
                return None;
            }
            tokio::time::sleep_until(next).await;
        }
    }

    /// Remembers a reply in process, for a retry that reaches this replica.
    pub fn remember(&self, key: ReplyKey, encoded: &[u8]) {
        let now = Instant::now();
        let mut local = self.local.lock().unwrap_or_else(|e| e.into_inner());
        if local.young.len() >= local.half_capacity
            || now.duration_since(local.young_since) >= REPLY_CACHE_GENERATION
        {
            local.old = std::mem::take(&mut local.young);
            local.young_since = now;
        }
        // A copy: the reply as received is a slice of the NATS client's read buffer,
        // and keeping the slice would keep that whole buffer alive for a minute.
        local.young.insert(key, Bytes::copy_from_slice(encoded));
    }

    /// Writes `account`'s reply to the bucket, for a retry that reaches another
    /// replica, in a task the drain awaits. `why` labels `gateway_replies_shared_total`.
    ///
    /// Create-only: the first reply shared for a key stays. A retry's replica, asked
    /// afresh while its publish was still pending at `REPLY_SHARE_AFTER`, shares before
    /// its duplicate PubAck tells it it is a retry; a plain put overwrote the reply
    /// WeChat may already hold with another one.
    pub fn share(&self, account: &str, key: ReplyKey, encoded: Bytes, why: ShareReason) {
        self.shared[why as usize]
            .get_or_init(
                || metrics::counter!("gateway_replies_shared_total", "why" => why.as_str()),
            )
            .increment(1);
        let writes = self.writes.clone();
        let logs = self.logs.clone();
        let account: Box<str> = account.into();
        let subject = format!("{}{}", self.put_prefix, key.kv_key());
        self.drain.spawn(async move {
            // No message on the key's subject yet, as `kv::Store::create` asks (a
            // reply bucket's keys are never deleted, only aged out).
            let put = PublishMessage::build()
                .payload(encoded)
                .expected_last_subject_sequence(0);
            let written = writes.publish_typed(subject.into(), put).await;
            if let Err(error) = written {
                if error.kind() == PublishErrorKind::WrongLastSequence {
                    tracing::debug!(account = &*account, "reply already shared; the first stays");
                    return;
                }
                let now = std::time::Instant::now();
                if let Some(suppressed) = logs.admit(&account, WRITE_FAILED, now) {
                    tracing::warn!(account = &*account, %error, suppressed, "reply cache write failed");
                }
            }
        });
    }
}

/// Why a reply was written to the shared bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareReason {
    /// The answer leaves `REPLY_SHARE_AFTER` or later after the callback arrived: it
    /// left then, or the publish was still pending then (shared before the answer).
    Late,
    /// The callback got no answer with it: its handler was cancelled, or it was not
    /// made durable (shared as the publish gives up, before the answer is held).
    Undelivered,
}

impl ShareReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Late => "late",
            Self::Undelivered => "undelivered",
        }
    }
}

/// A fresh reply not yet answered with. If it is dropped before
/// [`UnsentReply::answered`] (the handler was cancelled because WeChat closed the
/// connection, or the callback could not be made durable and is held past the deadline),
/// WeChat never got it and will retry, so it is shared.
pub struct UnsentReply<'a> {
    cache: &'a ReplyCache,
    account: &'a str,
    key: ReplyKey,
    encoded: Option<Bytes>,
    /// Already written to the bucket ([`UnsentReply::share`]): never twice.
    shared: bool,
}

impl<'a> UnsentReply<'a> {
    pub fn new(cache: &'a ReplyCache, account: &'a str, key: ReplyKey, encoded: Bytes) -> Self {
        Self {
            cache,
            account,
            key,
            encoded: Some(encoded),
            shared: false,
        }
    }

    /// Shares the reply now, before the answer: the callback's publish failed or is
    /// slow, so WeChat will likely retry it. Later calls share nothing more.
    pub fn share(&mut self, why: ShareReason) {
        if let Some(encoded) = &self.encoded
            && !self.shared
        {
            self.shared = true;
            self.cache
                .share(self.account, self.key, encoded.clone(), why);
        }
    }

    /// The reply is in the answer, leaving `late` or not: remembered in process, and
    /// shared only if late (and not shared already).
    pub fn answered(mut self, late: bool) {
        if let Some(encoded) = self.encoded.take() {
            self.cache.remember(self.key, &encoded);
            if late && !self.shared {
                self.cache
                    .share(self.account, self.key, encoded, ShareReason::Late);
            }
        }
    }

    /// The reply will not be used (it failed validation): nothing to keep.
    pub fn discard(mut self) {
        self.encoded = None;
    }
}

impl Drop for UnsentReply<'_> {
    fn drop(&mut self) {
        if let Some(encoded) = self.encoded.take()
            && !self.shared
        {
            self.cache
                .share(self.account, self.key, encoded, ShareReason::Undelivered);
        }
    }
}

/// Opens a bucket whose stream was just created. In a cluster the stream's info can
/// answer "stream not found" for a moment after its creation was acknowledged (the
/// server asked is not yet told), so that answer is retried for a few seconds.
pub(crate) async fn open_bucket(
    jetstream: &jetstream::Context,
    bucket: &str,
) -> Result<kv::Store, String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match jetstream.get_key_value(bucket).await {
            Ok(kv) => return Ok(kv),
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::debug!(error = %e, bucket, "KV bucket not yet visible; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(format!("cannot open KV bucket {bucket}: {e}")),
        }
    }
}

/// Creates the bucket's stream (see [`kv_bucket_stream`] for why not
/// `create_key_value`). Bucket-level max age only: NATS 2.9 has no per-message TTL.
async fn create_bucket(jetstream: &jetstream::Context, bucket: &str) -> Result<(), String> {
    let config = kv_bucket_stream(
        bucket,
        "gateway passive replies by event_id hash",
        REPLY_BUCKET_MAX_AGE,
    );
    jetstream
        .get_or_create_stream(config)
        .await
        .map_err(|e| format!("cannot create KV bucket {bucket}: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::events::v1::TextReply;

    #[test]
    fn every_outcome_is_listed_at_its_own_index() {
        for (index, outcome) in ReplyOutcome::ALL.into_iter().enumerate() {
            assert_eq!(outcome as usize, index, "{outcome:?}");
        }
        let labels: std::collections::HashSet<_> =
            ReplyOutcome::ALL.iter().map(|o| o.as_str()).collect();
        assert_eq!(labels.len(), ReplyOutcome::ALL.len());
    }

    #[test]
    fn an_empty_passive_reply_means_no_reply() {
        assert_eq!(decode(&[]), Ok(None));
    }

    #[test]
    fn a_text_reply_decodes_to_a_text_body() {
        let encoded = PassiveReply {
            body: Some(passive_reply::Body::Text(TextReply {
                content: "你好".into(),
            })),
        }
        .encode_to_vec();
        assert_eq!(
            decode(&encoded),
            Ok(Some(ReplyBody::Text {
                content: "你好".into()
            }))
        );
    }

    #[test]
    fn keys_are_stable_hex_of_the_event_id_hash() {
        let key = ReplyKey::of("city:oUser:1");
        assert_eq!(key, ReplyKey::of("city:oUser:1"));
        assert_ne!(key, ReplyKey::of("city:oUser:2"));
        assert_eq!(key.kv_key().len(), 32);
    }
}
