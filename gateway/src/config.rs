//! The gateway's configuration, read from the environment (see the README's table).
//!
//! Every error names the variable to fix. Tokens and EncodingAESKeys are secrets: they
//! come from `NAME` or a mounted file `NAME_FILE`, and never reach `Debug` output.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use platform::accounts::{AccountSettings, WechatAccounts};
use platform::config::CommonConfig;
use platform::nats::NatsConfig;
use platform::{ConfigError, Env};
use secrecy::{ExposeSecret, SecretString};
use wechat::crypto::MessageCrypto;

pub use platform::accounts::{DEMO_ACCOUNT, DemoAccount, Mode, env_id};

/// The gateway's documented admin port.
pub const DEFAULT_ADMIN_PORT: u16 = 9080;

/// One Official Account served by this install.
#[derive(Clone)]
pub struct AccountConfig {
    /// The path segment of the callback URL and the `{account}` of subjects. Shared,
    /// because every callback labels its metrics with it: a clone is a count, not a copy.
    pub id: Arc<str>,
    /// `WECHAT_{ID}_APPID`.
    pub appid: String,
    /// `WECHAT_{ID}_ORIGINAL_ID`: the `gh_…` id WeChat sends as `ToUserName`.
    pub original_id: String,
    /// `WECHAT_{ID}_TOKEN` (or `_FILE`).
    pub token: SecretString,
    /// The crypto built from `WECHAT_{ID}_AES_KEY` and `_AES_KEY_PREVIOUS`; `None`
    /// for a plaintext account configured without a key (the sandbox account).
    pub crypto: Option<MessageCrypto>,
    /// Whether `crypto` holds a previous EncodingAESKey (`_AES_KEY_PREVIOUS`): a
    /// rotation is under way and its progress is counted.
    pub previous_key: bool,
    /// `WECHAT_{ID}_MODE`.
    pub mode: Mode,
}

impl std::fmt::Debug for AccountConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // MessageCrypto's Debug shows only the appid; the token is a SecretString.
        f.debug_struct("AccountConfig")
            .field("id", &self.id)
            .field("appid", &self.appid)
            .field("original_id", &self.original_id)
            .field("mode", &self.mode)
            .field("encrypted", &self.crypto.is_some())
            .field("previous_key", &self.previous_key)
            .finish_non_exhaustive()
    }
}

impl AccountConfig {
    /// Reads what the callback path needs of one account: appid, original id, mode,
    /// token and, unless the account is plaintext, the EncodingAESKey.
    pub fn from_settings(account: &AccountSettings) -> Result<Self, ConfigError> {
        let appid = account.appid()?;
        let original_id = account.original_id()?;
        let mode = account.mode()?;
        let token = account.token()?;
        let invalid_key = |name: String| ConfigError::InvalidSecret {
            var: name,
            reason: "an EncodingAESKey is 43 base64 characters".to_owned(),
        };
        let mut previous_key = false;
        let crypto = match account.aes_key()? {
            Some(key) => {
                let crypto = MessageCrypto::new(key.expose_secret(), appid.clone())
                    .map_err(|_| invalid_key(account.var("AES_KEY")))?;
                match account.aes_key_previous()? {
                    Some(previous) => {
                        previous_key = true;
                        Some(
                            crypto
                                .with_previous_key(previous.expose_secret())
                                .map_err(|_| invalid_key(account.var("AES_KEY_PREVIOUS")))?,
                        )
                    }
                    None => Some(crypto),
                }
            }
            None if mode == Mode::Plaintext => None,
            None => {
                return Err(ConfigError::Missing {
                    var: account.var("AES_KEY"),
                });
            }
        };
        Ok(Self {
            id: account.id().clone(),
            appid,
            original_id,
            token,
            crypto,
            previous_key,
            mode,
        })
    }
}

/// The largest `MAX_BODY_BYTES` start-up accepts: NATS's default `max_payload` (1 MiB)
/// less 64 KiB for the rest of the `Inbound` envelope (event_id, openid, subject
/// names, timestamps) and its `Nats-Msg-Id` header, so that a body let in always
/// fits one JetStream message: a larger one could never be published.
pub const MAX_BODY_BYTES_CAP: usize = 1024 * 1024 - EVENT_ENVELOPE_BYTES;
/// What is kept of a NATS message for the `Inbound` envelope around a body.
pub const EVENT_ENVELOPE_BYTES: usize = 64 * 1024;

/// Deadlines and size limits of the callback path.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `MAX_BODY_BYTES`, default 256 KiB (a compatible-mode body is ~3× the message).
    pub max_body_bytes: usize,
    /// `TIMESTAMP_WINDOW`, default 300s: how far a callback's timestamp may be from now.
    pub timestamp_window: Duration,
    /// `REPLY_BUDGET`, default 1500ms: how long to wait for a passive reply.
    pub reply_budget: Duration,
    /// `REPLY_SHARE_AFTER`, default 1s: a reply whose answer leaves this long after the
    /// callback arrived is written to the shared reply bucket, because WeChat may be
    /// retrying it by then; one answered sooner is kept in process only. `0s` shares
    /// every reply (a JetStream write per replying callback).
    pub reply_share_after: Duration,
    /// `CALLBACK_DEADLINE`, default 5s: WeChat's deadline.
    pub callback_deadline: Duration,
    /// `PUBLISH_DEADLINE`, default 4s: how long to keep retrying the JetStream publish.
    pub publish_deadline: Duration,
    /// `NO_RESPONDER_PAUSE`, default 500ms: after NATS says nobody answers an account's
    /// reply subject, how long to answer `success` without asking.
    pub no_responder_pause: Duration,
    /// `MAX_IN_FLIGHT`, default 1024: callbacks handled at once by this replica; one
    /// more is refused at once with 503 `overloaded` instead of queueing, so every
    /// callback let in still meets WeChat's deadline. A place is taken once the body
    /// is read; the bodies being read or held are bounded apart, to
    /// `MAX_IN_FLIGHT x MAX_BODY_BYTES` ([`Limits::body_budget_kib`]): past it a
    /// callback is refused `overloaded` before its body is read. A callback gives up
    /// its place at the first JetStream publish or replay-ledger attempt that fails
    /// or goes unanswered: it is waiting out a stall then, not working.
    pub max_in_flight: usize,
    /// `HTTP_IDLE_TIMEOUT`, default 75s: a connection whose next request head is not
    /// complete this long after it opened or answered is closed. hyper has one timer
    /// for both a trickled head (slowloris) and an idle keep-alive connection, so it
    /// must outlast the upstream keep-alive of a proxy in front (ingress-nginx: 60 s):
    /// shorter, the gateway would close connections the proxy is about to reuse, and a
    /// callback sent on one as it closes fails at the proxy.
    pub http_idle_timeout: Duration,
    /// `MAX_CONNECTIONS`, default 4 x `MAX_IN_FLIGHT`: connections open at once on the
    /// callback listener; at the cap it stops accepting until one closes (new ones wait
    /// in the kernel's listen queue). Room for the idle keep-alive connections of a
    /// proxy in front and for callbacks held past their deadline (`not_durable`), each
    /// keeping its connection meanwhile.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 256 * 1024,
            timestamp_window: Duration::from_secs(300),
            reply_budget: Duration::from_millis(1500),
            reply_share_after: Duration::from_secs(1),
            callback_deadline: Duration::from_secs(5),
            publish_deadline: Duration::from_secs(4),
            no_responder_pause: Duration::from_millis(500),
            max_in_flight: 1024,
            http_idle_timeout: Duration::from_secs(75),
            max_connections: 4 * 1024,
        }
    }
}

impl Limits {
    /// The bytes of body being read or held at once, in KiB:
    /// `max_in_flight x max_body_bytes`, what the pod's memory limit is sized for.
    pub fn body_budget_kib(&self) -> usize {
        self.max_in_flight
            .saturating_mul(self.max_body_bytes.div_ceil(1024))
            .clamp(1, tokio::sync::Semaphore::MAX_PERMITS)
    }

    /// The KiB a body of `declared` bytes (`None`: not declared, chunked) is given of
    /// [`Limits::body_budget_kib`]: at most `max_body_bytes`, what it may grow to.
    pub fn body_kib(&self, declared: Option<usize>) -> u32 {
        let bytes = declared.map_or(self.max_body_bytes, |d| d.min(self.max_body_bytes));
        u32::try_from(bytes.div_ceil(1024).max(1)).unwrap_or(u32::MAX)
    }

    fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let d = Self::default();
        let max_in_flight = env.parse_or("MAX_IN_FLIGHT", d.max_in_flight)?;
        let limits = Self {
            max_body_bytes: env.parse_or("MAX_BODY_BYTES", d.max_body_bytes)?,
            timestamp_window: env.duration_or("TIMESTAMP_WINDOW", d.timestamp_window)?,
            reply_budget: env.duration_or("REPLY_BUDGET", d.reply_budget)?,
            reply_share_after: env.duration_or("REPLY_SHARE_AFTER", d.reply_share_after)?,
            callback_deadline: env.duration_or("CALLBACK_DEADLINE", d.callback_deadline)?,
            publish_deadline: env.duration_or("PUBLISH_DEADLINE", d.publish_deadline)?,
            no_responder_pause: env.duration_or("NO_RESPONDER_PAUSE", d.no_responder_pause)?,
            max_in_flight,
            http_idle_timeout: env.duration_or("HTTP_IDLE_TIMEOUT", d.http_idle_timeout)?,
            max_connections: env.parse_or("MAX_CONNECTIONS", max_in_flight.saturating_mul(4))?,
        };
        if limits.max_body_bytes > MAX_BODY_BYTES_CAP {
            return Err(ConfigError::Invalid {
                var: "MAX_BODY_BYTES".to_owned(),
                value: limits.max_body_bytes.to_string(),
                reason: format!(
                    "must be at most {MAX_BODY_BYTES_CAP}: a callback is published as one \
                     NATS message, whose default max_payload is 1 MiB (1048576) with the \
                     event's envelope (64 KiB kept for it); a larger body could never be \
                     stored"
                ),
            });
        }
        for (var, value) in [
            ("MAX_IN_FLIGHT", limits.max_in_flight),
            ("MAX_CONNECTIONS", limits.max_connections),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid {
                    var: var.to_owned(),
                    value: "0".to_owned(),
                    reason: "must be at least 1".to_owned(),
                });
            }
        }
        // Zero would refuse every callback or answer none in time; past these bounds
        // an addition to an instant overflows (a panic on every callback).
        let within = |var: &str, value: Duration, min: Duration, max: Duration| {
            if value < min || value > max {
                return Err(ConfigError::Invalid {
                    var: var.to_owned(),
                    value: format!("{value:?}"),
                    reason: format!("must be between {min:?} and {max:?}"),
                });
            }
            Ok(())
        };
        within(
            "CALLBACK_DEADLINE",
            limits.callback_deadline,
            Duration::from_millis(100),
            Duration::from_secs(60),
        )?;
        within(
            "TIMESTAMP_WINDOW",
            limits.timestamp_window,
            Duration::from_secs(1),
            Duration::from_secs(24 * 3600),
        )?;
        within(
            "HTTP_IDLE_TIMEOUT",
            limits.http_idle_timeout,
            Duration::from_millis(100),
            Duration::from_secs(3600),
        )?;
        within(
            "NO_RESPONDER_PAUSE",
            limits.no_responder_pause,
            Duration::ZERO,
            Duration::from_secs(3600),
        )?;
        // Every duration here counts from the callback's arrival: none may pass
        // WeChat's deadline, and only REPLY_SHARE_AFTER may be zero ("share every reply").
        let must_fit = |var: &str, value: Duration, zero_allowed: bool| {
            if value > limits.callback_deadline || (value.is_zero() && !zero_allowed) {
                return Err(ConfigError::Invalid {
                    var: var.to_owned(),
                    value: format!("{value:?}"),
                    reason: format!(
                        "must be {}at most CALLBACK_DEADLINE ({:?})",
                        if zero_allowed { "" } else { "positive and " },
                        limits.callback_deadline
                    ),
                });
            }
            Ok(())
        };
        must_fit("REPLY_BUDGET", limits.reply_budget, false)?;
        must_fit("REPLY_SHARE_AFTER", limits.reply_share_after, true)?;
        must_fit("PUBLISH_DEADLINE", limits.publish_deadline, false)?;
        Ok(limits)
    }
}

/// The gateway's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub common: CommonConfig,
    /// `HTTP_ADDR`, default `127.0.0.1:8080`: where WeChat's callbacks arrive.
    pub http_addr: SocketAddr,
    pub nats: NatsConfig,
    /// `WECHAT_ACCOUNTS` and the per-account variables; the demo account when unset.
    pub accounts: Vec<AccountConfig>,
    /// True when `WECHAT_ACCOUNTS` was unset and the demo account is served.
    pub demo: bool,
    pub limits: Limits,
    /// `REPLY_CACHE_CAPACITY`, default 100000: replies kept in process for retries.
    pub reply_cache_capacity: usize,
    /// `EDGE_RULES`, default true: answer the callbacks a reply rule answers whatever
    /// the citizen's state from a copy of the rules (`edge`), without asking
    /// interaction-svc; `false` asks it for every reply.
    pub edge_rules: bool,
    /// `EDGE_RULES_REFRESH`, default 60s: how often the copy is reloaded besides
    /// interaction-svc's change notices (the safety net for a lost notice).
    pub edge_rules_refresh: Duration,
}

impl Config {
    /// Reads the configuration; every error names its variable.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let settings = WechatAccounts::from_env(env)?;
        let demo = settings.is_demo();
        let accounts = settings
            .iter()
            .map(AccountConfig::from_settings)
            .collect::<Result<Vec<_>, _>>()?;
        let pairs: Vec<_> = settings.iter().zip(&accounts).collect();
        refuse_tokens_shared_across_modes(&pairs)?;
        Ok(Self {
            common: CommonConfig::from_env(env, DEFAULT_ADMIN_PORT)?,
            http_addr: env.parse_or("HTTP_ADDR", SocketAddr::from(([127, 0, 0, 1], 8080)))?,
            nats: NatsConfig::from_env(env)?,
            accounts,
            demo,
            limits: Limits::from_env(env)?,
            reply_cache_capacity: env.parse_or("REPLY_CACHE_CAPACITY", 100_000)?,
            edge_rules: env.parse_or("EDGE_RULES", true)?,
            edge_rules_refresh: env.period_or("EDGE_RULES_REFRESH", Duration::from_secs(60))?,
        })
    }
}

impl Config {
    /// The shortest `WECHAT_INBOUND` duplicate window that covers every timestamp the
    /// gateway accepts: a callback captured (or retried) at one edge of the window and
    /// sent again at the other is then still dropped by its `Nats-Msg-Id`, not stored
    /// a second time (where consumers' processed_events would stop only its effects).
    pub fn duplicate_window_needed(&self) -> Duration {
        self.limits.timestamp_window * 2 + Duration::from_secs(60)
    }

    /// `Some(needed)` when the configured duplicate window is shorter than
    /// [`Config::duplicate_window_needed`] (start-up warns: the window is platform's).
    pub fn duplicate_window_shortfall(&self) -> Option<Duration> {
        let needed = self.duplicate_window_needed();
        (self.nats.streams.inbound_duplicate_window < needed).then_some(needed)
    }
}

/// A safe-mode callback's `signature` is never entered in the replay ledger (its
/// `msg_signature` covers the body), so a plaintext or compatible account with the same
/// Token would take a signed query captured from it with any body: refused at
/// start-up, naming both accounts, never the Token. Accounts of one kind may share a
/// Token (the ledger is keyed on the signature).
fn refuse_tokens_shared_across_modes(
    accounts: &[(&AccountSettings, &AccountConfig)],
) -> Result<(), ConfigError> {
    for (settings, account) in accounts.iter().filter(|(_, a)| a.mode != Mode::Safe) {
        let token = account.token.expose_secret();
        if let Some((_, safe)) = accounts
            .iter()
            .find(|(_, other)| other.mode == Mode::Safe && other.token.expose_secret() == token)
        {
            return Err(ConfigError::InvalidSecret {
                var: settings.var("TOKEN"),
                reason: format!(
                    "the same Token as account {} (safe mode): a signed query captured from \
                     its callbacks would be taken here with any body; give each its own Token",
                    safe.id
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn city() -> Env {
        Env::from_pairs([
            ("WECHAT_ACCOUNTS", "city,water-dept"),
            ("WECHAT_CITY_APPID", "wx0000000000000001"),
            ("WECHAT_CITY_ORIGINAL_ID", "gh_city"),
            ("WECHAT_CITY_TOKEN", "t0ken-city"),
            ("WECHAT_CITY_MODE", "plaintext"),
            ("WECHAT_WATER_DEPT_APPID", "wx0000000000000002"),
            ("WECHAT_WATER_DEPT_ORIGINAL_ID", "gh_water"),
            ("WECHAT_WATER_DEPT_TOKEN", "t0ken-water"),
            ("WECHAT_WATER_DEPT_MODE", "safe"),
            (
                "WECHAT_WATER_DEPT_AES_KEY",
                "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
            ),
        ])
    }

    #[test]
    fn several_accounts_are_read_with_dashes_mapped_to_underscores() {
        let config = Config::from_env(&city()).unwrap();
        assert!(!config.demo);
        let ids: Vec<_> = config.accounts.iter().map(|a| &*a.id).collect();
        assert_eq!(ids, ["city", "water-dept"]);
        assert_eq!(config.accounts[1].mode, Mode::Safe);
        assert!(config.accounts[0].crypto.is_none());
    }

    #[test]
    fn without_accounts_the_demo_account_is_served() {
        let config = Config::from_env(&Env::default()).unwrap();
        assert!(config.demo);
        assert_eq!(&*config.accounts[0].id, DEMO_ACCOUNT.id);
        assert_eq!(config.http_addr.port(), 8080);
        assert_eq!(config.common.admin_addr.port(), DEFAULT_ADMIN_PORT);
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let config = Config::from_env(&city()).unwrap();
        let debug = format!("{config:?}");
        assert!(!debug.contains("t0ken"), "{debug}");
        assert!(!debug.contains("abcdefghij"), "{debug}");
    }

    #[test]
    fn a_token_shared_by_a_safe_and_a_plaintext_account_is_refused() {
        let env = city().with("WECHAT_CITY_TOKEN", "t0ken-water");
        let error = Config::from_env(&env).unwrap_err().to_string();
        assert!(error.contains("WECHAT_CITY_TOKEN"), "{error}");
        assert!(error.contains("water-dept"), "{error}");
        assert!(!error.contains("t0ken"), "{error}");
        // Two accounts of one kind may share one.
        let both_plain = env.with("WECHAT_WATER_DEPT_MODE", "plaintext");
        assert!(Config::from_env(&both_plain).is_ok());
    }

    #[test]
    fn a_safe_account_needs_an_aes_key() {
        let env = city().with("WECHAT_WATER_DEPT_AES_KEY", "");
        let error = Config::from_env(&env).unwrap_err();
        assert_eq!(
            error.to_string(),
            "WECHAT_WATER_DEPT_AES_KEY is required but not set"
        );
    }

    #[test]
    fn the_connection_cap_follows_the_in_flight_bound_unless_set() {
        let limits = |env: Env| Config::from_env(&env).unwrap().limits.max_connections;
        assert_eq!(limits(city()), 4096);
        assert_eq!(limits(city().with("MAX_IN_FLIGHT", "512")), 2048);
        assert_eq!(limits(city().with("MAX_CONNECTIONS", "300")), 300);
        let error = Config::from_env(&city().with("MAX_CONNECTIONS", "0")).unwrap_err();
        assert!(matches!(error, ConfigError::Invalid { var, .. } if var == "MAX_CONNECTIONS"));
    }

    #[test]
    fn a_body_limit_whose_event_would_pass_nats_max_payload_is_refused() {
        let limits = |value: &str| Config::from_env(&city().with("MAX_BODY_BYTES", value));
        let error = limits("1048576").unwrap_err();
        assert!(
            matches!(&error, ConfigError::Invalid { var, reason, .. }
                if var == "MAX_BODY_BYTES" && reason.contains("max_payload")),
            "{error}"
        );
        let most = MAX_BODY_BYTES_CAP.to_string();
        assert_eq!(
            limits(&most).unwrap().limits.max_body_bytes,
            MAX_BODY_BYTES_CAP
        );
        assert!(limits(&(MAX_BODY_BYTES_CAP + 1).to_string()).is_err());
    }

    #[test]
    fn the_reply_budget_must_fit_the_deadline() {
        let env = city().with("REPLY_BUDGET", "6s");
        let error = Config::from_env(&env).unwrap_err();
        assert!(matches!(error, ConfigError::Invalid { var, .. } if var == "REPLY_BUDGET"));
    }

    #[test]
    fn sharing_replies_after_the_deadline_is_refused() {
        let env = city().with("REPLY_SHARE_AFTER", "6s");
        let error = Config::from_env(&env).unwrap_err();
        assert!(matches!(error, ConfigError::Invalid { var, .. } if var == "REPLY_SHARE_AFTER"));
        let limits = Config::from_env(&city()).unwrap().limits;
        assert_eq!(limits.reply_share_after, Duration::from_secs(1));
    }

    #[test]
    fn edge_rules_are_on_by_default_and_refresh_at_a_positive_interval() {
        let config = Config::from_env(&city()).unwrap();
        assert!(config.edge_rules);
        assert_eq!(config.edge_rules_refresh, Duration::from_secs(60));
        let off = Config::from_env(&city().with("EDGE_RULES", "false")).unwrap();
        assert!(!off.edge_rules);
        let error = Config::from_env(&city().with("EDGE_RULES_REFRESH", "0s")).unwrap_err();
        assert!(matches!(error, ConfigError::Invalid { var, .. } if var == "EDGE_RULES_REFRESH"));
    }

    #[test]
    fn a_duplicate_window_shorter_than_the_accepted_timestamps_is_reported() {
        let with = |window: &str| {
            Config::from_env(&city().with("WECHAT_INBOUND_DUPLICATE_WINDOW", window)).unwrap()
        };
        // The default 2 min against ±300 s: a replay 2-5 min later was stored again.
        assert_eq!(
            with("120s").duplicate_window_shortfall(),
            Some(Duration::from_secs(660))
        );
        assert_eq!(with("660s").duplicate_window_shortfall(), None);
    }
}
