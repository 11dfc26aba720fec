//! The gateway's configuration, read from the environment (see the README's table).
//!
//! Every error names the variable to fix. Tokens and EncodingAESKeys are secrets: they
//! come from `NAME` or a mounted file `NAME_FILE`, and never reach `Debug` output.

use std::sync::Arc;

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use platform::config::CommonConfig;
use platform::nats::NatsConfig;
use platform::{ConfigError, Env};
use secrecy::{ExposeSecret, SecretString};
use wechat::crypto::MessageCrypto;

/// The gateway's documented admin port.
pub const DEFAULT_ADMIN_PORT: u16 = 9080;

/// How an account's callbacks are protected, as chosen on WeChat's admin console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 明文: plain XML; `signature` only.
    Plaintext,
    /// 兼容: plain fields plus `<Encrypt>`; a callback may arrive either way.
    Compatible,
    /// 安全: only `<Encrypt>`; `msg_signature` is required and replies are encrypted.
    Safe,
}

impl Mode {
    /// The lower-case name used in configuration and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plaintext => "plaintext",
            Self::Compatible => "compatible",
            Self::Safe => "safe",
        }
    }
}

impl FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "plaintext" | "plain" => Ok(Self::Plaintext),
            "compatible" => Ok(Self::Compatible),
            "safe" => Ok(Self::Safe),
            other => Err(format!(
                "unknown mode {other:?}; use plaintext, compatible or safe"
            )),
        }
    }
}

/// The built-in account used when `WECHAT_ACCOUNTS` is unset, so `cargo run -p gateway`
/// works with no configuration. `wechat-sim` sends its callbacks with the same values.
#[derive(Debug, Clone, Copy)]
pub struct DemoAccount {
    /// The path segment: `POST /wechat/demo`.
    pub id: &'static str,
    pub appid: &'static str,
    pub original_id: &'static str,
    pub token: &'static str,
    pub encoding_aes_key: &'static str,
    pub mode: Mode,
}

/// The demo account's values (never use them in production).
pub const DEMO_ACCOUNT: DemoAccount = DemoAccount {
    id: "demo",
    appid: "wxdemo0000000001",
    original_id: "gh_demo00000001",
    token: "demo-token",
    encoding_aes_key: "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    mode: Mode::Safe,
};

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
            .finish_non_exhaustive()
    }
}

impl AccountConfig {
    /// The demo account of [`DEMO_ACCOUNT`].
    pub fn demo() -> Self {
        let d = DEMO_ACCOUNT;
        Self {
            id: Arc::from(d.id),
            appid: d.appid.to_owned(),
            original_id: d.original_id.to_owned(),
            token: SecretString::from(d.token),
            crypto: Some(
                MessageCrypto::new(d.encoding_aes_key, d.appid).expect("the demo key is valid"),
            ),
            mode: d.mode,
        }
    }

    /// Reads account `id` from `WECHAT_{ID}_*`.
    pub fn from_env(env: &Env, id: &str) -> Result<Self, ConfigError> {
        let var = |suffix: &str| format!("WECHAT_{}_{suffix}", env_id(id));
        let required = |suffix: &str| {
            let name = var(suffix);
            env.get(&name)
                .map(|v| v.trim().to_owned())
                .ok_or(ConfigError::Missing { var: name })
        };
        let appid = required("APPID")?;
        let original_id = required("ORIGINAL_ID")?;
        let mode: Mode = env.parse_required(&var("MODE"))?;
        let token = env
            .secret(&var("TOKEN"))?
            .ok_or(ConfigError::Missing { var: var("TOKEN") })?;
        let invalid_key = |name: String| ConfigError::InvalidSecret {
            var: name,
            reason: "an EncodingAESKey is 43 base64 characters".to_owned(),
        };
        let crypto = match env.secret(&var("AES_KEY"))? {
            Some(key) => {
                let crypto = MessageCrypto::new(key.expose_secret(), appid.clone())
                    .map_err(|_| invalid_key(var("AES_KEY")))?;
                match env.secret(&var("AES_KEY_PREVIOUS"))? {
                    Some(previous) => Some(
                        crypto
                            .with_previous_key(previous.expose_secret())
                            .map_err(|_| invalid_key(var("AES_KEY_PREVIOUS")))?,
                    ),
                    None => Some(crypto),
                }
            }
            None if mode == Mode::Plaintext => None,
            None => {
                return Err(ConfigError::Missing {
                    var: var("AES_KEY"),
                });
            }
        };
        Ok(Self {
            id: Arc::from(id),
            appid,
            original_id,
            token,
            crypto,
            mode,
        })
    }
}

/// `{ID}` in the variable names: the id upper-cased, `-` turned into `_`.
pub fn env_id(id: &str) -> String {
    id.to_ascii_uppercase().replace('-', "_")
}

/// Deadlines and size limits of the callback path.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `MAX_BODY_BYTES`, default 256 KiB (a compatible-mode body is ~3× the message).
    pub max_body_bytes: usize,
    /// `TIMESTAMP_WINDOW`, default 300s: how far a callback's timestamp may be from now.
    pub timestamp_window: Duration,
    /// `REPLY_BUDGET`, default 1500ms: how long to wait for a passive reply.
    pub reply_budget: Duration,
    /// `CALLBACK_DEADLINE`, default 5s: WeChat's deadline.
    pub callback_deadline: Duration,
    /// `PUBLISH_DEADLINE`, default 4s: how long to keep retrying the JetStream publish.
    pub publish_deadline: Duration,
    /// `NO_RESPONDER_PAUSE`, default 500ms: after NATS says nobody answers an account's
    /// reply subject, how long to answer `success` without asking.
    pub no_responder_pause: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 256 * 1024,
            timestamp_window: Duration::from_secs(300),
            reply_budget: Duration::from_millis(1500),
            callback_deadline: Duration::from_secs(5),
            publish_deadline: Duration::from_secs(4),
            no_responder_pause: Duration::from_millis(500),
        }
    }
}

impl Limits {
    fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let d = Self::default();
        let limits = Self {
            max_body_bytes: env.parse_or("MAX_BODY_BYTES", d.max_body_bytes)?,
            timestamp_window: env.duration_or("TIMESTAMP_WINDOW", d.timestamp_window)?,
            reply_budget: env.duration_or("REPLY_BUDGET", d.reply_budget)?,
            callback_deadline: env.duration_or("CALLBACK_DEADLINE", d.callback_deadline)?,
            publish_deadline: env.duration_or("PUBLISH_DEADLINE", d.publish_deadline)?,
            no_responder_pause: env.duration_or("NO_RESPONDER_PAUSE", d.no_responder_pause)?,
        };
        let must_fit = |var: &str, value: Duration| -> Result<(), ConfigError> {
            if value > limits.callback_deadline || value.is_zero() {
                return Err(ConfigError::Invalid {
                    var: var.to_owned(),
                    value: format!("{value:?}"),
                    reason: format!(
                        "must be positive and at most CALLBACK_DEADLINE ({:?})",
                        limits.callback_deadline
                    ),
                });
            }
            Ok(())
        };
        must_fit("REPLY_BUDGET", limits.reply_budget)?;
        must_fit("PUBLISH_DEADLINE", limits.publish_deadline)?;
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
}

impl Config {
    /// Reads the configuration; every error names its variable.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let (accounts, demo) = match env.get("WECHAT_ACCOUNTS") {
            None => (vec![AccountConfig::demo()], true),
            Some(list) => {
                let mut accounts: Vec<AccountConfig> = Vec::new();
                for id in list.split(',').map(str::trim).filter(|id| !id.is_empty()) {
                    let valid = id.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                    });
                    if !valid || accounts.iter().any(|a| &*a.id == id) {
                        return Err(ConfigError::Invalid {
                            var: "WECHAT_ACCOUNTS".to_owned(),
                            value: list.to_owned(),
                            reason: format!(
                                "account id {id:?} is repeated or not made of a-z, 0-9, '-', '_'"
                            ),
                        });
                    }
                    accounts.push(AccountConfig::from_env(env, id)?);
                }
                (accounts, false)
            }
        };
        Ok(Self {
            common: CommonConfig::from_env(env, DEFAULT_ADMIN_PORT)?,
            http_addr: env.parse_or("HTTP_ADDR", SocketAddr::from(([127, 0, 0, 1], 8080)))?,
            nats: NatsConfig::from_env(env)?,
            accounts,
            demo,
            limits: Limits::from_env(env)?,
            reply_cache_capacity: env.parse_or("REPLY_CACHE_CAPACITY", 100_000)?,
        })
    }
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
    fn a_safe_account_needs_an_aes_key() {
        let env = city().with("WECHAT_WATER_DEPT_AES_KEY", "");
        let error = Config::from_env(&env).unwrap_err();
        assert_eq!(
            error.to_string(),
            "WECHAT_WATER_DEPT_AES_KEY is required but not set"
        );
    }

    #[test]
    fn the_reply_budget_must_fit_the_deadline() {
        let env = city().with("REPLY_BUDGET", "6s");
        let error = Config::from_env(&env).unwrap_err();
        assert!(matches!(error, ConfigError::Invalid { var, .. } if var == "REPLY_BUDGET"));
    }
}
