//! NATS: connection, namespacing, and idempotent JetStream provisioning of the
//! streams and durable consumers of ARCHITECTURE.md.
//!
//! Only NATS 2.9 features are used: one filter subject per consumer, no per-message TTL.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use secrecy::{ExposeSecret, SecretString};

use crate::config::{ConfigError, Env};

/// Errors from connecting to NATS or provisioning JetStream.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    #[error("cannot connect to nats at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("cannot provision stream {stream}: {reason}")]
    Stream { stream: String, reason: String },
    #[error(
        "stream {stream} has {current} replicas but NATS_REPLICAS={wanted}, and JetStream refused the change: {reason}"
    )]
    Replicas {
        stream: String,
        current: usize,
        wanted: usize,
        reason: String,
    },
    #[error("cannot provision consumer {durable} on {stream}: {reason}")]
    Consumer {
        stream: String,
        durable: String,
        reason: String,
    },
}

/// A prefix for stream names and subjects, so environments and parallel tests can
/// share one NATS cluster. The empty namespace leaves names unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Namespace {
    prefix: Option<String>,
}

impl Namespace {
    /// A namespace from a prefix of ASCII letters, digits, `_` and `-`; empty means none.
    pub fn new(prefix: &str) -> Result<Self, String> {
        if prefix.is_empty() {
            return Ok(Self::default());
        }
        if !prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err("use ASCII letters, digits, '_' or '-'".to_owned());
        }
        Ok(Self {
            prefix: Some(prefix.to_owned()),
        })
    }

    /// The prefix, if any.
    pub fn prefix(&self) -> Option<&str> {
        self.prefix.as_deref()
    }

    /// `subject` inside this namespace: `{prefix}.{subject}`.
    pub fn subject(&self, subject: &str) -> String {
        match &self.prefix {
            Some(prefix) => format!("{prefix}.{subject}"),
            None => subject.to_owned(),
        }
    }

    /// The subject without this namespace's prefix (as handlers reason about it).
    pub fn strip<'a>(&self, subject: &'a str) -> &'a str {
        match &self.prefix {
            Some(prefix) => subject
                .strip_prefix(prefix.as_str())
                .and_then(|rest| rest.strip_prefix('.'))
                .unwrap_or(subject),
            None => subject,
        }
    }

    /// A stream (or durable consumer) name inside this namespace: `{PREFIX}_{name}`.
    pub fn name(&self, name: &str) -> String {
        match &self.prefix {
            Some(prefix) => format!("{}_{name}", prefix.to_ascii_uppercase().replace('-', "_")),
            None => name.to_owned(),
        }
    }
}

/// How to reach NATS.
#[derive(Debug, Clone)]
pub struct NatsConfig {
    /// `NATS_URL`, default `nats://127.0.0.1:4222`; several servers separated by commas.
    pub url: String,
    /// `NATS_PREFIX`: namespace for streams and subjects, default none.
    pub namespace: Namespace,
    /// `NATS_USER` and `NATS_PASSWORD` (or `NATS_PASSWORD_FILE`), optional; with a user,
    /// answers come to the inbox prefix [`inbox_prefix`] gives.
    pub user: Option<(String, SecretString)>,
    /// `NATS_TOKEN` (or `NATS_TOKEN_FILE`), optional.
    pub token: Option<SecretString>,
    /// `NATS_CONNECT_TIMEOUT`: how long start-up waits for the first connection, default
    /// 2m: a pod starting while NATS restarts waits for it instead of crash-looping.
    pub connect_timeout: Duration,
    /// `NATS_CA_FILE`: a PEM file of the CA that signed the servers' certificates; with
    /// it (or a `tls://` URL) the connection must use TLS (rustls) and verify the server.
    pub ca_file: Option<std::path::PathBuf>,
    /// How the platform's streams and KV buckets are kept.
    pub streams: StreamSettings,
}

/// Settings applied to every stream and KV bucket the platform provisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamSettings {
    /// `NATS_REPLICAS`: copies JetStream keeps of each stream and KV bucket, default 1;
    /// 3 on a 3-node cluster, so a callback survives the loss of a node once acked.
    pub replicas: usize,
    /// `WECHAT_INBOUND_DUPLICATE_WINDOW`: inside it a repeated callback is dropped by
    /// `Nats-Msg-Id`, default 2 minutes (WeChat's three retries end within seconds; the
    /// processed_events table catches anything later).
    pub inbound_duplicate_window: Duration,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            replicas: 1,
            inbound_duplicate_window: WECHAT_INBOUND.duplicate_window,
        }
    }
}

impl StreamSettings {
    /// Reads `NATS_REPLICAS` (1 to 5, as JetStream allows) and `WECHAT_INBOUND_DUPLICATE_WINDOW`.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let replicas: usize = env.parse_or("NATS_REPLICAS", 1)?;
        if !(1..=5).contains(&replicas) {
            return Err(ConfigError::Invalid {
                var: "NATS_REPLICAS".to_owned(),
                value: replicas.to_string(),
                reason: "JetStream keeps 1 to 5 replicas".to_owned(),
            });
        }
        let window = env.duration_or(
            "WECHAT_INBOUND_DUPLICATE_WINDOW",
            WECHAT_INBOUND.duplicate_window,
        )?;
        if window.is_zero() || window > WECHAT_INBOUND.max_age {
            return Err(ConfigError::Invalid {
                var: "WECHAT_INBOUND_DUPLICATE_WINDOW".to_owned(),
                value: format!("{window:?}"),
                reason: "must be positive and within the stream's max age".to_owned(),
            });
        }
        Ok(Self {
            replicas,
            inbound_duplicate_window: window,
        })
    }
}

impl NatsConfig {
    /// Reads the NATS settings.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let prefix = env.string_or("NATS_PREFIX", "");
        let namespace = Namespace::new(&prefix).map_err(|reason| ConfigError::Invalid {
            var: "NATS_PREFIX".to_owned(),
            value: prefix.clone(),
            reason,
        })?;
        let user = match (env.get("NATS_USER"), env.secret("NATS_PASSWORD")?) {
            (Some(user), Some(password)) => Some((user.to_owned(), password)),
            (Some(_), None) => {
                return Err(ConfigError::Missing {
                    var: "NATS_PASSWORD".to_owned(),
                });
            }
            _ => None,
        };
        Ok(Self {
            url: env.string_or("NATS_URL", "nats://127.0.0.1:4222"),
            namespace,
            user,
            token: env.secret("NATS_TOKEN")?,
            connect_timeout: env.duration_or("NATS_CONNECT_TIMEOUT", Duration::from_secs(120))?,
            ca_file: env.get("NATS_CA_FILE").map(std::path::PathBuf::from),
            streams: StreamSettings::from_env(env)?,
        })
    }
}

/// Connects to NATS. Later disconnections are retried by the client forever;
/// readiness reports them.
pub async fn connect(
    config: &NatsConfig,
    client_name: &str,
) -> Result<async_nats::Client, NatsError> {
    let mut options = async_nats::ConnectOptions::new()
        .name(client_name)
        .connection_timeout(Duration::from_secs(5))
        .retry_on_initial_connect();
    if let Some((user, password)) = &config.user {
        options = options
            .user_and_password(user.clone(), password.expose_secret().to_owned())
            .custom_inbox_prefix(inbox_prefix(user));
    }
    if let Some(token) = &config.token {
        options = options.token(token.expose_secret().to_owned());
    }
    if let Some(ca_file) = &config.ca_file {
        // A missing or unreadable file is a configuration error, named as such.
        if let Err(e) = std::fs::metadata(ca_file) {
            return Err(NatsError::Connect {
                url: redacted(&config.url),
                reason: format!("NATS_CA_FILE {}: {e}", ca_file.display()),
            });
        }
        options = options.add_root_certificates(ca_file.clone());
    }
    if config.ca_file.is_some() || config.url.starts_with("tls://") {
        options = options.require_tls(true);
    }
    // retry_on_initial_connect makes connect return at once; wait for the first
    // connection ourselves so a wrong URL is a clear start-up error.
    // NATS_URL may list several servers (a cluster's nodes), separated by commas.
    let servers: Vec<&str> = config.url.split(',').map(str::trim).collect();
    let client = options
        .connect(servers)
        .await
        .map_err(|e| NatsError::Connect {
            url: redacted(&config.url),
            reason: e.to_string(),
        })?;
    let started = tokio::time::Instant::now();
    let deadline = started + config.connect_timeout;
    let mut next_word = started + Duration::from_secs(10);
    while client.connection_state() != async_nats::connection::State::Connected {
        let now = tokio::time::Instant::now();
        if now > deadline {
            return Err(NatsError::Connect {
                url: redacted(&config.url),
                reason: format!("not connected after {:?}", config.connect_timeout),
            });
        }
        if now > next_word {
            next_word = now + Duration::from_secs(10);
            tracing::warn!(
                url = %redacted(&config.url),
                waited = ?now.duration_since(started),
                "nats not reachable yet; still trying"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(client)
}

/// A stream of ARCHITECTURE.md, before namespacing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamSpec {
    pub name: &'static str,
    /// The subject filter, e.g. `wechat.inbound.>`.
    pub subjects: &'static str,
    pub max_age: Duration,
    /// Inside this window a repeated `Nats-Msg-Id` is dropped. WeChat retries a
    /// callback within about 15 s; a wider window also covers a slow client.
    /// `WECHAT_INBOUND`'s is configurable ([`StreamSettings`]).
    pub duplicate_window: Duration,
}

/// Inbound WeChat callbacks, written by the gateway.
pub const WECHAT_INBOUND: StreamSpec = StreamSpec {
    name: "WECHAT_INBOUND",
    subjects: "wechat.inbound.>",
    max_age: Duration::from_secs(7 * 24 * 3600),
    duplicate_window: Duration::from_secs(2 * 60),
};
/// Content changes, written by content-svc's outbox relay.
pub const CONTENT: StreamSpec = StreamSpec {
    name: "CONTENT",
    subjects: "content.>",
    max_age: Duration::from_secs(30 * 24 * 3600),
    duplicate_window: Duration::from_secs(10 * 60),
};
/// Ticket and follower changes, written by interaction-svc's outbox relay.
pub const INTERACTION: StreamSpec = StreamSpec {
    name: "INTERACTION",
    subjects: "interaction.>",
    max_age: Duration::from_secs(30 * 24 * 3600),
    duplicate_window: Duration::from_secs(10 * 60),
};
/// Messages a consumer gave up on, with the reason.
pub const DEADLETTER: StreamSpec = StreamSpec {
    name: "DEADLETTER",
    subjects: "deadletter.>",
    max_age: Duration::from_secs(30 * 24 * 3600),
    duplicate_window: Duration::from_secs(2 * 60),
};
/// Markers of passive replies the gateway asked for and did not get in time
/// (`events.v1.ReplyMissed`), written by the gateway and read by interaction-svc,
/// which sends those replies through the customer-service API. Both provision it
/// (either may start first); not in [`ALL_STREAMS`].
/// A marker is needed for minutes (interaction-svc waits for the callback it has not
/// applied yet, `HandleError::NotYet`, for about 13, longer after an outage); a day
/// covers an outage of its consumer through a night.
pub const WECHAT_MISSED_REPLIES: StreamSpec = StreamSpec {
    name: "WECHAT_MISSED_REPLIES",
    subjects: "wechat.missed.>",
    max_age: Duration::from_secs(24 * 3600),
    duplicate_window: Duration::from_secs(2 * 60),
};

/// The platform's shared streams, for tests and tools; a service provisions only the
/// ones it uses (`ServiceRuntime::start`).
pub const ALL_STREAMS: [StreamSpec; 4] = [WECHAT_INBOUND, CONTENT, INTERACTION, DEADLETTER];

impl StreamSpec {
    fn config(&self, namespace: &Namespace, settings: &StreamSettings) -> stream::Config {
        let duplicate_window = if self.name == WECHAT_INBOUND.name {
            settings.inbound_duplicate_window
        } else {
            self.duplicate_window
        };
        stream::Config {
            name: namespace.name(self.name),
            subjects: vec![namespace.subject(self.subjects)],
            max_age: self.max_age,
            duplicate_window,
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            // No max_bytes: JetStream reserves a stream's max_bytes (on each replica)
            // against the server's max_file_store when the stream is created or
            // updated, refusing one that does not fit ("insufficient storage
            // resources", 10047), so a limit worth having would fail start-up on a full
            // cluster and on the shared dev server, where every test namespace reserves
            // its own. The server's limit (deploy/k8s/infra/nats-values.yaml,
            // fileStore.maxSize) bounds them all instead, refusing new messages when
            // reached and never removing one before max_age. (The discard policy acts
            // only on a size or count limit, which these streams do not have.)
            discard: stream::DiscardPolicy::Old,
            num_replicas: settings.replicas,
            ..Default::default()
        }
    }
}

/// A durable pull consumer, before namespacing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsumerSpec {
    pub stream: StreamSpec,
    pub durable: &'static str,
    /// One filter subject (NATS 2.9), e.g. `wechat.inbound.>`.
    pub filter_subject: &'static str,
    /// Deliveries of a message whose handler keeps failing transiently before it goes
    /// to DEADLETTER — for a message the runner saw wait, its failures after the wait —
    /// (the runner decides; JetStream itself never stops redelivering, so a message
    /// whose dead letter could not be written comes back).
    /// [`PATIENT_DELIVERIES`] unless a consumer has a reason to give up sooner.
    pub max_deliver: i64,
    pub ack_wait: Duration,
    /// The most messages JetStream keeps delivered and not yet acked on this durable,
    /// across all its replicas' pulls; at the bound it delivers nothing more, not even a
    /// message that could be handled at once. A message NAKed with a delay (a retry's
    /// backoff, a wait for another event) counts until it settles, so the bound must
    /// stay above what the runners hold plus what may wait or retry at once:
    /// [`DEFAULT_MAX_ACK_PENDING`], or [`WAITING_MAX_ACK_PENDING`] for a handler that
    /// returns `HandleError::NotYet`. The server's own default (1000) is below both.
    pub max_ack_pending: i64,
}

/// Deliveries a transient failure is retried for: with the runner's backoff
/// (0.5 s doubling, at most a minute) 13 minutes (`ConsumerSpec::patience`), so a database failover or a
/// restart of PostgreSQL or NATS makes events wait instead of dead-lettering them.
pub const PATIENT_DELIVERIES: i64 = 20;

/// [`ConsumerSpec::max_ack_pending`] of a consumer whose handler never waits: above what
/// its runners hold, so the server never throttles a healthy consumer and the bound only
/// catches a runner that pulls without limit. One runner holds at most its lanes ×
/// (256 queued + a batch in hand) plus 300 asked of the server and not yet in a lane
/// ([`crate::consumer::most_unacked`]): 1,580 for the largest, `interaction-inbound`
/// (4 lanes, batches of 64), 6,320 at the 4 replicas docs/operations.md sizes for,
/// 7,900 with a rolling update's surge pod ([`crate::consumer::SIZED_REPLICAS`]: a
/// unit test in `consumer.rs` checks it for the services' runners), 9,480 at 6.
/// Messages failing transiently count too while they wait out their backoff: a
/// dependency's outage fills the bound with them, which then only caps their retries
/// (about 170 a second at the longest backoff).
pub const DEFAULT_MAX_ACK_PENDING: i64 = 10_000;

/// [`ConsumerSpec::max_ack_pending`] of a consumer whose handler returns
/// `HandleError::NotYet`: a waiting message stays unacked for up to the patience (about
/// 13 minutes, longer after an outage), and once waiting messages fill the bound,
/// nothing new is delivered. Its runners hold at most 5,312
/// (`interaction-missed-replies`: 4 lanes of 257 plus 300, at 4 replicas; 6,640 with a
/// surge pod), which leaves about 14,700 waiting (13,360): markers missed at 19 a
/// second for the whole patience; the same unit test keeps 5 replicas of the largest
/// runner within half of it. Higher would cost more than it gives: a message waiting
/// over a minute comes back every 15 s, so 20,000 waiting are already some 1,300
/// handler calls a second across the replicas.
pub const WAITING_MAX_ACK_PENDING: i64 = 20_000;

/// [`provision_with`] with the default settings (one replica): tests and tools.
pub async fn provision_streams(
    jetstream: &jetstream::Context,
    namespace: &Namespace,
    specs: &[StreamSpec],
) -> Result<(), NatsError> {
    provision_with(jetstream, namespace, specs, &StreamSettings::default()).await
}

/// Creates the streams, or updates one whose settings differ; running it again changes
/// nothing. A replica count that differs is changed in place (JetStream moves the data);
/// where the server refuses (a single server asked for 3), start-up fails naming both.
pub async fn provision_with(
    jetstream: &jetstream::Context,
    namespace: &Namespace,
    specs: &[StreamSpec],
    settings: &StreamSettings,
) -> Result<(), NatsError> {
    for spec in specs {
        let wanted = spec.config(namespace, settings);
        let stream_error = |reason: String| NatsError::Stream {
            stream: wanted.name.clone(),
            reason,
        };
        let mut stream = jetstream
            .get_or_create_stream(wanted.clone())
            .await
            .map_err(|e| stream_error(e.to_string()))?;
        let info = stream
            .info()
            .await
            .map_err(|e| stream_error(e.to_string()))?
            .clone();
        let current = info.config.clone();
        let mut kept = copies(&info);
        if current.num_replicas.max(1) != wanted.num_replicas {
            tracing::warn!(
                stream = %wanted.name,
                current = current.num_replicas,
                wanted = wanted.num_replicas,
                "changing stream replicas"
            );
        }
        if current.subjects != wanted.subjects
            || current.max_age != wanted.max_age
            || current.duplicate_window != wanted.duplicate_window
            || current.num_replicas.max(1) != wanted.num_replicas
        {
            tracing::info!(stream = %wanted.name, "updating stream settings");
            // Keep what another release may have set that we do not manage.
            let update = stream::Config {
                subjects: wanted.subjects.clone(),
                max_age: wanted.max_age,
                duplicate_window: wanted.duplicate_window,
                num_replicas: wanted.num_replicas,
                ..current.clone()
            };
            let updated = jetstream.update_stream(update).await.map_err(|e| {
                if current.num_replicas.max(1) != wanted.num_replicas {
                    NatsError::Replicas {
                        stream: wanted.name.clone(),
                        current: current.num_replicas.max(1),
                        wanted: wanted.num_replicas,
                        reason: e.to_string(),
                    }
                } else {
                    stream_error(e.to_string())
                }
            })?;
            kept = copies(&updated);
        }
        check_replicas(&wanted.name, kept, wanted.num_replicas)?;
    }
    Ok(())
}

/// The copies the server keeps: the leader and its RAFT peers. A standalone NATS 2.9
/// server records any `num_replicas` yet keeps one copy, so the config alone is no proof.
/// Peers are counted by name: while a bucket scales up, its new leader can be listed
/// among the replicas too.
fn copies(info: &stream::Info) -> usize {
    let Some(cluster) = info.cluster.as_ref() else {
        return 1;
    };
    let mut peers: std::collections::BTreeSet<&str> = cluster
        .replicas
        .iter()
        .map(|peer| peer.name.as_str())
        .collect();
    if let Some(leader) = cluster.leader.as_deref() {
        peers.insert(leader);
    }
    peers.len().max(1)
}

/// Fails when the server keeps another number of copies than `NATS_REPLICAS` asks,
/// so a prod overlay pointed at an unclustered server fails loudly at start-up.
fn check_replicas(stream: &str, kept: usize, wanted: usize) -> Result<(), NatsError> {
    if kept == wanted {
        return Ok(());
    }
    Err(NatsError::Replicas {
        stream: stream.to_owned(),
        current: kept,
        wanted,
        reason: "the server keeps another number of copies (is JetStream clustered?)".to_owned(),
    })
}

/// Gives the KV bucket `bucket` (already created, namespaced name) `replicas` copies,
/// as [`provision_with`] does for streams: a bucket is a stream named `KV_{bucket}`.
pub async fn replicate_bucket(
    jetstream: &jetstream::Context,
    bucket: &str,
    replicas: usize,
) -> Result<(), NatsError> {
    let name = format!("KV_{bucket}");
    let mut stream = jetstream
        .get_stream(&name)
        .await
        .map_err(|e| NatsError::Stream {
            stream: name.clone(),
            reason: e.to_string(),
        })?;
    let info = stream
        .info()
        .await
        .map_err(|e| NatsError::Stream {
            stream: name.clone(),
            reason: e.to_string(),
        })?
        .clone();
    let current = info.config.clone();
    if current.num_replicas.max(1) == replicas {
        return check_replicas(&name, copies(&info), replicas);
    }
    tracing::warn!(stream = %name, current = current.num_replicas, wanted = replicas, "changing bucket replicas");
    let current_replicas = current.num_replicas.max(1);
    let updated = jetstream
        .update_stream(stream::Config {
            num_replicas: replicas,
            ..current
        })
        .await
        .map_err(|e| NatsError::Replicas {
            stream: name.clone(),
            current: current_replicas,
            wanted: replicas,
            reason: e.to_string(),
        })?;
    check_replicas(&name, copies(&updated), replicas)
}

/// Creates a durable pull consumer if absent, or brings an existing one's settings
/// up to date (an install made before a release changed them keeps its durable), and
/// returns it.
pub async fn provision_consumer(
    jetstream: &jetstream::Context,
    namespace: &Namespace,
    spec: &ConsumerSpec,
) -> Result<consumer::Consumer<consumer::pull::Config>, NatsError> {
    let stream_name = namespace.name(spec.stream.name);
    let durable = namespace.name(spec.durable);
    let consumer_error = |reason: String| NatsError::Consumer {
        stream: stream_name.clone(),
        durable: durable.clone(),
        reason,
    };
    let stream = jetstream
        .get_stream(&stream_name)
        .await
        .map_err(|e| consumer_error(e.to_string()))?;
    let wanted = consumer::pull::Config {
        durable_name: Some(durable.clone()),
        filter_subject: namespace.subject(spec.filter_subject),
        ack_policy: consumer::AckPolicy::Explicit,
        deliver_policy: consumer::DeliverPolicy::All,
        // The runner gives up after `spec.max_deliver` (consumer.rs); JetStream
        // dropping a message silently after a failed dead letter would lose it.
        max_deliver: -1,
        ack_wait: spec.ack_wait,
        max_ack_pending: spec.max_ack_pending,
        ..Default::default()
    };
    let mut existing = stream
        .get_or_create_consumer(&durable, wanted.clone())
        .await
        .map_err(|e| consumer_error(e.to_string()))?;
    let current = existing.cached_info().config.clone();
    // NATS 2.9 updates all three on an existing durable (max_ack_pending raised or
    // lowered, read back from the consumer's info: platform/tests/platform.rs).
    if current.max_deliver != wanted.max_deliver
        || current.ack_wait != wanted.ack_wait
        || current.max_ack_pending != wanted.max_ack_pending
    {
        tracing::info!(
            stream = %stream_name,
            durable = %durable,
            max_deliver = current.max_deliver,
            ack_wait = ?current.ack_wait,
            max_ack_pending = current.max_ack_pending,
            wanted_max_ack_pending = wanted.max_ack_pending,
            "updating consumer settings"
        );
        existing = stream
            .create_consumer(wanted)
            .await
            .map_err(|e| consumer_error(e.to_string()))?;
    }
    Ok(existing)
}

/// How long a dead letter may take to be stored. A PubAck comes in milliseconds; one
/// that does not come within this means the dead-letter stream is stalled, and the
/// caller retries later rather than wait async-nats' 5 s for every message.
pub const DEAD_LETTER_TIMEOUT: Duration = Duration::from_secs(2);

/// Publishes `letter` on `deadletter.{letter.service}.{source}` under `message_id` (so a
/// retry is stored once) and waits, at most `timeout` (normally [`DEAD_LETTER_TIMEOUT`]),
/// until JetStream has stored it.
pub(crate) async fn publish_dead_letter(
    jetstream: &jetstream::Context,
    namespace: &Namespace,
    source: &str,
    message_id: &str,
    letter: &proto::events::v1::DeadLetter,
    timeout: Duration,
) -> Result<(), String> {
    use prost::Message as _;
    let subject = namespace.subject(&format!(
        "{}.{}.{source}",
        DEADLETTER.subjects.trim_end_matches(".>"),
        letter.service
    ));
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(async_nats::header::NATS_MESSAGE_ID, message_id);
    let stored = async {
        jetstream
            .publish_with_headers(subject, headers, letter.encode_to_vec().into())
            .await
            .map_err(|e| e.to_string())?
            .await
            .map_err(|e| e.to_string())
    };
    match tokio::time::timeout(timeout, stored).await {
        Ok(stored) => stored.map(drop),
        Err(_) => Err(format!(
            "the dead-letter stream did not store it within {timeout:?}"
        )),
    }
}

/// Where a user's answers arrive (requests, PubAcks, pulled messages): `_INBOX_{user}`,
/// so the user's NATS permissions can let it read its own answers and nobody else's
/// (deploy/k8s/infra/nats-values.yaml).
pub fn inbox_prefix(user: &str) -> String {
    format!("_INBOX_{user}")
}

/// `NATS_URL` as it may be shown: a password or token given in a URL's user part
/// (`nats://user:secret@host`) is replaced by `***`.
fn redacted(urls: &str) -> String {
    urls.split(',')
        .map(|url| {
            let url = url.trim();
            let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
            match rest.rsplit_once('@') {
                Some((_, host)) if scheme.is_empty() => format!("***@{host}"),
                Some((_, host)) => format!("{scheme}://***@{host}"),
                None => url.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_nats_url_are_not_shown() {
        assert_eq!(
            redacted("nats://gw:s3cret@nats-0:4222, tls://tok@nats-1:4222,nats-2:4222"),
            "nats://***@nats-0:4222,tls://***@nats-1:4222,nats-2:4222"
        );
        assert_eq!(redacted("gw:s3cret@nats:4222"), "***@nats:4222");
    }

    #[test]
    fn namespace_prefixes_subjects_and_names() {
        let ns = Namespace::new("t-42").unwrap();
        assert_eq!(ns.subject("wechat.inbound.>"), "t-42.wechat.inbound.>");
        assert_eq!(ns.name("WECHAT_INBOUND"), "T_42_WECHAT_INBOUND");
        assert_eq!(
            ns.strip("t-42.wechat.inbound.city.msg.text"),
            "wechat.inbound.city.msg.text"
        );
        let none = Namespace::default();
        assert_eq!(none.subject("a.b"), "a.b");
        assert_eq!(none.name("A"), "A");
    }

    #[test]
    fn stream_settings_default_to_one_replica_and_a_two_minute_inbound_window() {
        let settings = NatsConfig::from_env(&Env::default()).unwrap().streams;
        assert_eq!(settings, StreamSettings::default());
        assert_eq!(settings.replicas, 1);
        assert_eq!(settings.inbound_duplicate_window, Duration::from_secs(120));
        let prod = StreamSettings::from_env(&Env::from_pairs([
            ("NATS_REPLICAS", "3"),
            ("WECHAT_INBOUND_DUPLICATE_WINDOW", "5m"),
        ]))
        .unwrap();
        let ns = Namespace::default();
        let inbound = WECHAT_INBOUND.config(&ns, &prod);
        assert_eq!(inbound.num_replicas, 3);
        assert_eq!(inbound.duplicate_window, Duration::from_secs(300));
        // Only the inbound window is configurable.
        assert_eq!(
            CONTENT.config(&ns, &prod).duplicate_window,
            CONTENT.duplicate_window
        );
    }

    #[test]
    fn namespace_rejects_subject_syntax() {
        assert!(Namespace::new("a.b").is_err());
        assert!(Namespace::new("a*").is_err());
        assert!(Namespace::new("a b").is_err());
    }

    #[test]
    fn nats_config_requires_a_password_with_a_user() {
        let env = Env::from_pairs([("NATS_USER", "svc")]);
        assert_eq!(
            NatsConfig::from_env(&env).unwrap_err(),
            ConfigError::Missing {
                var: "NATS_PASSWORD".to_owned()
            }
        );
        let bad = Env::from_pairs([("NATS_PREFIX", "a.b")]);
        assert!(
            matches!(NatsConfig::from_env(&bad), Err(ConfigError::Invalid { var, .. }) if var == "NATS_PREFIX")
        );
        let bad = Env::from_pairs([("NATS_REPLICAS", "4x")]);
        assert!(
            matches!(NatsConfig::from_env(&bad), Err(ConfigError::Invalid { var, .. }) if var == "NATS_REPLICAS")
        );
        let bad = Env::from_pairs([("NATS_REPLICAS", "0")]);
        assert!(
            matches!(NatsConfig::from_env(&bad), Err(ConfigError::Invalid { var, .. }) if var == "NATS_REPLICAS")
        );
    }
}
