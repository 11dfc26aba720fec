//! content-svc's configuration: the settings every service reads, plus its own
//! (the WeChat API accounts it publishes with, the lexicon file, the scheduler).

use std::path::PathBuf;
use std::time::Duration;

use platform::accounts::WechatAccounts;
use platform::service::{ServiceConfig, ServiceDefaults};
use platform::{ConfigError, Env};

use crate::domain::quota::AccountKind;

/// The service's name, database and default ports (see the README's ports table).
pub const DEFAULTS: ServiceDefaults = ServiceDefaults {
    name: "content-svc",
    database: "content",
    grpc_port: 50052,
    admin_port: 9082,
};

/// content-svc's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub service: ServiceConfig,
    pub content: ContentConfig,
    pub hall: HallConfig,
}

impl Config {
    /// Reads the configuration; every error names its variable.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            service: ServiceConfig::from_env(env, DEFAULTS)?,
            content: ContentConfig::from_env(env)?,
            hall: HallConfig::from_env(env)?,
        })
    }
}

/// The service hall's page and the URL menus point at.
#[derive(Debug, Clone)]
pub struct HallConfig {
    /// `HALL_ADDR` (default `127.0.0.1:8084`): the hall's HTTP port.
    pub addr: std::net::SocketAddr,
    /// `HALL_PUBLIC_URL` (default `http://{HALL_ADDR}`): the hall as citizens reach
    /// it (`https://wx.example.gov.cn`); a menu's service-hall button opens
    /// `{HALL_PUBLIC_URL}/hall/{account}`.
    pub public_url: String,
}

impl HallConfig {
    /// Reads the settings; every error names its variable.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let addr = env.parse_or("HALL_ADDR", ([127, 0, 0, 1], 8084).into())?;
        let public_url = env.string_or("HALL_PUBLIC_URL", &format!("http://{addr}"));
        let public_url = public_url.trim_end_matches('/').to_owned();
        if !(public_url.starts_with("https://") || public_url.starts_with("http://"))
            || public_url.contains(['?', '#', ' '])
        {
            return Err(ConfigError::Invalid {
                var: "HALL_PUBLIC_URL".to_owned(),
                value: public_url,
                reason: "expected an http(s) URL without query or fragment".to_owned(),
            });
        }
        Ok(Self { addr, public_url })
    }
}

/// One Official Account content-svc publishes to.
#[derive(Debug, Clone)]
pub struct PublishAccount {
    pub id: String,
    pub appid: String,
    pub secret: secrecy::SecretString,
    /// `WECHAT_{ID}_KIND`: `service` (default, 4 mass sends a month) or `subscription` (1 a day).
    pub kind: AccountKind,
}

/// Settings of content-svc itself.
#[derive(Debug, Clone)]
pub struct ContentConfig {
    /// `WECHAT_API_BASE_URL` (tests: wechat-sim).
    pub wechat_base_url: String,
    pub accounts: Vec<PublishAccount>,
    /// `WECHAT_ACCOUNTS` unset: the built-in demo account is served, and a
    /// directory import may name any account (the example directory of 临城市
    /// loads there); an install naming its accounts refuses lines for others.
    pub demo: bool,
    /// `CONTENT_LEXICON_FILE`: the lexicon loaded when the database has none yet
    /// (default: the starter lexicon built into the binary).
    pub lexicon_file: Option<PathBuf>,
    /// `CONTENT_DIRECTORY_FILE`: a directory seed (README, "Seeding a directory")
    /// loaded when the directory holds no service yet; unset: no seed.
    pub directory_file: Option<PathBuf>,
    /// `SCHEDULER_INTERVAL` (default 1 s): how often due articles are claimed.
    pub scheduler_interval: Duration,
    /// `PUBLISHING_STUCK_AFTER` (default 15 min): how long an article may stay in
    /// `publishing` without a WeChat job before the scheduler fails it (its send's
    /// outcome unknown); longer than any send takes.
    pub publishing_stuck_after: Duration,
    /// `PUBLISH_RECONCILE_AFTER` (default 10 min): how long an article's WeChat job
    /// may go without its job-finish callback before WeChat is asked how it stands
    /// (`freepublish/get`, `message/mass/get`), and how long after that it is asked
    /// again while WeChat is still at it.
    pub publish_reconcile_after: Duration,
    /// `OUTBOX_POLL_INTERVAL` (default 1 s): the relay's safety-net poll.
    pub outbox_poll_interval: Duration,
    /// `CONTENT_SEARCH_IN_MEMORY` (default `true`): answer searches from a copy of
    /// the index held in memory by each replica (README, "Search"; ~1 KB per document
    /// of 100,000); `false`: every search is read from PostgreSQL.
    pub search_in_memory: bool,
}

impl ContentConfig {
    /// Reads the settings; every error names its variable.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let wechat = WechatAccounts::from_env(env)?;
        let accounts = wechat
            .iter()
            .map(|account| {
                let var = account.var("KIND");
                let raw = env.string_or(&var, "service");
                let kind = AccountKind::parse(&raw).ok_or_else(|| ConfigError::Invalid {
                    var: var.clone(),
                    value: raw.clone(),
                    reason: "expected service or subscription".to_owned(),
                })?;
                Ok(PublishAccount {
                    id: account.id().to_string(),
                    appid: account.appid()?,
                    secret: account.secret()?,
                    kind,
                })
            })
            .collect::<Result<Vec<_>, ConfigError>>()?;
        Ok(Self {
            wechat_base_url: env.string_or("WECHAT_API_BASE_URL", wechat::api::DEFAULT_BASE_URL),
            accounts,
            demo: wechat.is_demo(),
            lexicon_file: env.get("CONTENT_LEXICON_FILE").map(PathBuf::from),
            directory_file: env.get("CONTENT_DIRECTORY_FILE").map(PathBuf::from),
            scheduler_interval: env.period_or("SCHEDULER_INTERVAL", Duration::from_secs(1))?,
            publishing_stuck_after: env
                .period_or("PUBLISHING_STUCK_AFTER", Duration::from_secs(15 * 60))?,
            publish_reconcile_after: env
                .period_or("PUBLISH_RECONCILE_AFTER", Duration::from_secs(10 * 60))?,
            outbox_poll_interval: env.period_or("OUTBOX_POLL_INTERVAL", Duration::from_secs(1))?,
            search_in_memory: env.parse_or("CONTENT_SEARCH_IN_MEMORY", true)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ports_and_database() {
        let config = Config::from_env(&Env::from_pairs::<&str, &str>([])).unwrap();
        assert_eq!(config.service.grpc_addr.port(), 50052);
        assert_eq!(config.service.common.admin_addr.port(), 9082);
        assert_eq!(config.service.db.database(), "content");
        assert_eq!(config.content.scheduler_interval, Duration::from_secs(1));
        assert_eq!(
            config.content.publishing_stuck_after,
            Duration::from_secs(15 * 60)
        );
        assert_eq!(
            config.content.publish_reconcile_after,
            Duration::from_secs(10 * 60)
        );
    }

    #[test]
    fn a_zero_publishing_stuck_after_is_refused_naming_its_variable() {
        let env = Env::from_pairs([("PUBLISHING_STUCK_AFTER", "0s")]);
        let error = Config::from_env(&env).unwrap_err().to_string();
        assert!(error.contains("PUBLISHING_STUCK_AFTER"), "{error}");
    }

    #[test]
    fn publish_reconcile_after_reads_a_humantime_and_refuses_zero_naming_its_variable() {
        let env = Env::from_pairs([("PUBLISH_RECONCILE_AFTER", "2m 30s")]);
        let config = Config::from_env(&env).unwrap();
        assert_eq!(
            config.content.publish_reconcile_after,
            Duration::from_secs(150)
        );
        let env = Env::from_pairs([("PUBLISH_RECONCILE_AFTER", "0s")]);
        let error = Config::from_env(&env).unwrap_err().to_string();
        assert!(error.contains("PUBLISH_RECONCILE_AFTER"), "{error}");
    }

    #[test]
    fn the_hall_defaults_to_its_port_and_refuses_a_bad_url() {
        let config = Config::from_env(&Env::from_pairs::<&str, &str>([])).unwrap();
        assert_eq!(config.hall.addr.port(), 8084);
        assert_eq!(config.hall.public_url, "http://127.0.0.1:8084");
        let env = Env::from_pairs([("HALL_PUBLIC_URL", "ftp://x")]);
        let error = Config::from_env(&env).unwrap_err().to_string();
        assert!(error.contains("HALL_PUBLIC_URL"), "{error}");
    }

    #[test]
    fn an_unknown_account_kind_names_its_variable() {
        let env = Env::from_pairs([("WECHAT_DEMO_KIND", "enterprise")]);
        let error = Config::from_env(&env).unwrap_err().to_string();
        assert!(error.contains("WECHAT_DEMO_KIND"), "{error}");
    }
}
