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
    /// `NATS_URL`, default `nats://127.0.0.1:4222`.
    pub url: String,
    /// `NATS_PREFIX`: namespace for streams and subjects, default none.
    pub namespace: Namespace,
    /// `NATS_USER` and `NATS_PASSWORD` (or `NATS_PASSWORD_FILE`), optional.
    pub user: Option<(String, SecretString)>,
    /// `NATS_TOKEN` (or `NATS_TOKEN_FILE`), optional.
    pub token: Option<SecretString>,
    /// `NATS_CONNECT_TIMEOUT`: how long start-up waits for the first connection, default 10s.
    pub connect_timeout: Duration,
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
            connect_timeout: env.duration_or("NATS_CONNECT_TIMEOUT", Duration::from_secs(10))?,
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
        options = options.user_and_password(user.clone(), password.expose_secret().to_owned());
    }
    if let Some(token) = &config.token {
        options = options.token(token.expose_secret().to_owned());
    }
    // retry_on_initial_connect makes connect return at once; wait for the first
    // connection ourselves so a wrong URL is a clear start-up error.
    let client = options
        .connect(config.url.as_str())
        .await
        .map_err(|e| NatsError::Connect {
            url: config.url.clone(),
            reason: e.to_string(),
        })?;
    let deadline = tokio::time::Instant::now() + config.connect_timeout;
    while client.connection_state() != async_nats::connection::State::Connected {
        if tokio::time::Instant::now() > deadline {
            return Err(NatsError::Connect {
                url: config.url.clone(),
                reason: format!("not connected after {:?}", config.connect_timeout),
            });
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
    pub duplicate_window: Duration,
}

/// Inbound WeChat callbacks, written by the gateway.
pub const WECHAT_INBOUND: StreamSpec = StreamSpec {
    name: "WECHAT_INBOUND",
    subjects: "wechat.inbound.>",
    max_age: Duration::from_secs(7 * 24 * 3600),
    duplicate_window: Duration::from_secs(10 * 60),
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

/// Every stream of the platform.
pub const ALL_STREAMS: [StreamSpec; 4] = [WECHAT_INBOUND, CONTENT, INTERACTION, DEADLETTER];

impl StreamSpec {
    fn config(&self, namespace: &Namespace) -> stream::Config {
        stream::Config {
            name: namespace.name(self.name),
            subjects: vec![namespace.subject(self.subjects)],
            max_age: self.max_age,
            duplicate_window: self.duplicate_window,
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            discard: stream::DiscardPolicy::Old,
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
    /// Deliveries before the message goes to DEADLETTER.
    pub max_deliver: i64,
    pub ack_wait: Duration,
}

/// Creates the streams, or updates one whose settings differ; running it again changes nothing.
pub async fn provision_streams(
    jetstream: &jetstream::Context,
    namespace: &Namespace,
    specs: &[StreamSpec],
) -> Result<(), NatsError> {
    for spec in specs {
        let wanted = spec.config(namespace);
        let stream_error = |reason: String| NatsError::Stream {
            stream: wanted.name.clone(),
            reason,
        };
        let mut stream = jetstream
            .get_or_create_stream(wanted.clone())
            .await
            .map_err(|e| stream_error(e.to_string()))?;
        let current = stream
            .info()
            .await
            .map_err(|e| stream_error(e.to_string()))?
            .config
            .clone();
        if current.subjects != wanted.subjects
            || current.max_age != wanted.max_age
            || current.duplicate_window != wanted.duplicate_window
        {
            tracing::info!(stream = %wanted.name, "updating stream settings");
            jetstream
                .update_stream(wanted.clone())
                .await
                .map_err(|e| stream_error(e.to_string()))?;
        }
    }
    Ok(())
}

/// Creates a durable pull consumer if absent and returns it.
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
    stream
        .get_or_create_consumer(
            &durable,
            consumer::pull::Config {
                durable_name: Some(durable.clone()),
                filter_subject: namespace.subject(spec.filter_subject),
                ack_policy: consumer::AckPolicy::Explicit,
                deliver_policy: consumer::DeliverPolicy::All,
                max_deliver: spec.max_deliver,
                ack_wait: spec.ack_wait,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| consumer_error(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
