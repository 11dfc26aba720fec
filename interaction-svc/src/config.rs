//! interaction-svc's configuration: the platform settings plus the rules of
//! answering citizens (working time, time limits, fallback departments).

use std::time::Duration;

use platform::accounts::WechatAccounts;
use platform::service::ServiceConfig;
use platform::{ConfigError, Env};

use crate::domain::retention::{
    DEFAULT_FOLLOWER_RETENTION, DEFAULT_TICKET_RETENTION, RetentionPolicy,
};
use crate::domain::{DeadlinePolicy, Departments, TimeLimit};
use crate::grpc::WatchLimits;
use crate::startup::DEFAULTS;

/// API-key departments that name a platform service: keys the services call each
/// other with, which are no ticket departments.
const SERVICE_CALLERS: [&str; 4] = ["gateway", "interaction-svc", "content-svc", "stats-svc"];

/// interaction-svc's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub service: ServiceConfig,
    pub interaction: InteractionConfig,
    pub wechat: WechatApiConfig,
    /// The directory bootstrap from content-svc; `None` when `CONTENT_GRPC_URL` is unset.
    pub directory_sync: Option<DirectorySyncConfig>,
}

impl Config {
    /// Reads the configuration; every error names its variable.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let service = ServiceConfig::from_env(env, DEFAULTS)?;
        let mut interaction = InteractionConfig::from_env(env)?;
        // Every department with an API key exists, even without a display name; but
        // not a platform service reading another (docs/operations.md step 4's
        // `interaction-svc:viewer:<key>`, the directory bootstrap's key for
        // content-svc): a caller, not a desk, so no queue to assign tickets to.
        let keyed: Vec<String> = service
            .api_keys
            .departments()
            .into_iter()
            .filter(|department| !SERVICE_CALLERS.contains(&department.as_str()))
            .collect();
        for department in &keyed {
            Departments::check_id(department).map_err(|reason| ConfigError::InvalidSecret {
                var: "API_KEYS".to_owned(),
                reason,
            })?;
        }
        interaction.departments = interaction
            .departments
            .with_ids(keyed.iter().map(String::as_str));
        let wechat = WechatApiConfig::from_env(env)?;
        // Rules may name only the accounts the install serves; without
        // WECHAT_ACCOUNTS (the demo set-up) any account id is taken.
        if env.get("WECHAT_ACCOUNTS").is_some() {
            interaction.accounts = Some(wechat.accounts.iter().map(|a| a.id.clone()).collect());
        }
        let directory_sync = DirectorySyncConfig::from_env(env)?;
        Ok(Self {
            service,
            interaction,
            wechat,
            directory_sync,
        })
    }
}

/// Where the directory replica is bootstrapped and reconciled from: content-svc's
/// gRPC directory, read with an API key of content-svc's `API_KEYS` (any role; the
/// key must reach every account of `WECHAT_ACCOUNTS`).
#[derive(Debug, Clone)]
pub struct DirectorySyncConfig {
    /// `CONTENT_GRPC_URL`: content-svc's gRPC endpoint, e.g. `http://content-svc:50052`
    /// (plaintext inside the cluster, like every service's gRPC port).
    pub content_url: String,
    /// `CONTENT_API_KEY` (or `CONTENT_API_KEY_FILE`): sent as `authorization: Bearer …`.
    pub api_key: secrecy::SecretString,
    /// `DIRECTORY_SYNC_INTERVAL` (default 1h): the periodic reconciliation after the
    /// start-up pass.
    pub interval: Duration,
}

impl DirectorySyncConfig {
    /// Reads the bootstrap settings: none without `CONTENT_GRPC_URL`; a URL without a
    /// key, a key without a URL, or a bad value is an error naming its variable.
    pub fn from_env(env: &Env) -> Result<Option<Self>, ConfigError> {
        use secrecy::ExposeSecret as _;
        let api_key = env.secret("CONTENT_API_KEY")?;
        let Some(raw_url) = env.get("CONTENT_GRPC_URL") else {
            if api_key.is_some() {
                return Err(ConfigError::Missing {
                    var: "CONTENT_GRPC_URL".to_owned(),
                });
            }
            return Ok(None);
        };
        let content_url = parse_grpc_url(raw_url).map_err(|reason| ConfigError::Invalid {
            var: "CONTENT_GRPC_URL".to_owned(),
            value: raw_url.to_owned(),
            reason,
        })?;
        let api_key = api_key.ok_or_else(|| ConfigError::Missing {
            var: "CONTENT_API_KEY".to_owned(),
        })?;
        let key = api_key.expose_secret();
        // content-svc refuses keys under 8 characters; a header value must be visible ASCII.
        if key.len() < 8 || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ConfigError::InvalidSecret {
                var: "CONTENT_API_KEY".to_owned(),
                reason:
                    "expected at least 8 visible ASCII characters (a key of content-svc's API_KEYS)"
                        .to_owned(),
            });
        }
        let interval = env.period_or("DIRECTORY_SYNC_INTERVAL", Duration::from_secs(3600))?;
        Ok(Some(Self {
            content_url,
            api_key,
            interval,
        }))
    }
}

/// `http://host:port` (a trailing `/` is dropped): the services serve plaintext gRPC.
fn parse_grpc_url(raw: &str) -> Result<String, String> {
    let raw = raw.trim().trim_end_matches('/');
    let uri: tonic::transport::Uri = raw
        .parse()
        .map_err(|e| format!("not a URL ({e}); expected e.g. http://content-svc:50052"))?;
    if uri.scheme_str() != Some("http") {
        return Err(
            "expected http://host:port (the services' gRPC ports are plaintext)".to_owned(),
        );
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("expected http://host:port: the host is missing".to_owned());
    }
    if uri
        .path_and_query()
        .is_some_and(|p| p.as_str() != "/" && !p.as_str().is_empty())
    {
        return Err("expected http://host:port without a path".to_owned());
    }
    Ok(raw.to_owned())
}

/// How citizens are answered: deadlines, routing fallbacks and the background cadence.
#[derive(Debug, Clone)]
pub struct InteractionConfig {
    /// Working time and time limits (`INTERACTION_WORKING_HOURS`, `INTERACTION_TIMEZONE`,
    /// `INTERACTION_HOLIDAYS`, `INTERACTION_MAKEUP_WORKDAYS`, `INTERACTION_ACKNOWLEDGE_LIMIT`,
    /// `INTERACTION_RESOLVE_LIMITS`).
    pub policy: DeadlinePolicy,
    /// `INTERACTION_DEFAULT_DEPARTMENT`: owns tickets of an account without a default
    /// routing rule.
    pub default_department: String,
    /// `INTERACTION_ESCALATION_DEPARTMENT`: the supervision office (督办) told of overdue tickets.
    pub escalation_department: String,
    /// `SWEEP_INTERVAL`: how often overdue tickets, and held answers due for a retry,
    /// are looked for.
    pub sweep_interval: Duration,
    /// `HELD_RETRY_BACKOFF` (default 1m): the wait before held answers whose flush met
    /// a busy or unreachable WeChat are tried again; it doubles with each failure, up
    /// to 30 minutes, while the citizen's window is open.
    pub held_retry_backoff: Duration,
    /// `MISSED_REPLY_SENDING_TIMEOUT` (default 5m): how long a missed reply may stay
    /// `sending` before the sweeper presumes its sender stopped and gives it up
    /// (outcome unknown, never sent again). Far longer than a customer-service call
    /// with its retries (seconds), so a live sender records its outcome first.
    pub missed_reply_sending_timeout: Duration,
    /// `OUTBOX_POLL_INTERVAL`: the relay's safety-net poll (it is also woken after each commit).
    pub outbox_poll_interval: Duration,
    /// `RULES_RELOAD_INTERVAL`: the safety-net reload of every cached rule set.
    pub rules_reload_interval: Duration,
    /// `INTERACTION_DEPARTMENTS` (`id=显示名`, comma-separated) plus the departments
    /// of the API keys and the two below: where a ticket may go, and the names
    /// citizens read.
    pub departments: Departments,
    /// The accounts of `WECHAT_ACCOUNTS`, when set: the only ones rules may name.
    pub accounts: Option<std::collections::BTreeSet<String>>,
    /// `WATCH_BUFFER` (default 64): queue events held for a `WatchQueue` client that is
    /// not reading before its watch is ended; `WATCH_STREAMS_PER_KEY` (default 8): the
    /// watches one API key may hold open; `WATCH_RESUME_LIMIT` (default 20000): the most
    /// ticket changes (every department's) one `WatchQueue` resume replays.
    pub watch: WatchLimits,
    /// `TICKET_RETENTION` (default 365d, at least 48h): how long after closing a
    /// ticket keeps its citizen data; `FOLLOWER_RETENTION` (default 30d, at least 7d):
    /// how long a follower who unfollowed is kept. Applied by the sweeper.
    pub retention: RetentionPolicy,
}

impl InteractionConfig {
    /// Reads the interaction settings; defaults follow domain.md §2.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let invalid = |var: &str, reason: String| ConfigError::Invalid {
            var: var.to_owned(),
            value: env.get(var).unwrap_or_default().to_owned(),
            reason,
        };
        let defaults = DeadlinePolicy::default();

        // The calendar's four settings, read as stats-svc reads them (`work_calendar`).
        let calendar = work_calendar::from_settings(|var| env.get(var))
            .map_err(|e| invalid(e.var, e.error.to_string()))?;
        let acknowledge: TimeLimit = env
            .string_or("INTERACTION_ACKNOWLEDGE_LIMIT", "1d")
            .parse()
            .map_err(|reason: work_calendar::CalendarError| {
                invalid("INTERACTION_ACKNOWLEDGE_LIMIT", reason.to_string())
            })?;
        // Configured limits override the defaults category by category.
        let mut resolve = defaults.resolve.clone();
        let mut default_resolve = defaults.default_resolve;
        if let Some(raw) = env.get("INTERACTION_RESOLVE_LIMITS") {
            let (limits, default) = DeadlinePolicy::parse_resolve_limits(raw)
                .map_err(|reason| invalid("INTERACTION_RESOLVE_LIMITS", reason))?;
            resolve.extend(limits);
            default_resolve = default.unwrap_or(default_resolve);
        }
        let default_department =
            env.string_or("INTERACTION_DEFAULT_DEPARTMENT", "citizen-services");
        let escalation_department =
            env.string_or("INTERACTION_ESCALATION_DEPARTMENT", "supervision");
        let too_short =
            |var: &str, error: crate::domain::retention::TooShort| invalid(var, error.to_string());
        let retention = RetentionPolicy {
            closed_tickets: RetentionPolicy::check_tickets(
                env.period_or("TICKET_RETENTION", DEFAULT_TICKET_RETENTION)?,
            )
            .map_err(|e| too_short("TICKET_RETENTION", e))?,
            unfollowed: RetentionPolicy::check_followers(
                env.period_or("FOLLOWER_RETENTION", DEFAULT_FOLLOWER_RETENTION)?,
            )
            .map_err(|e| too_short("FOLLOWER_RETENTION", e))?,
        };
        for (var, id) in [
            ("INTERACTION_DEFAULT_DEPARTMENT", &default_department),
            ("INTERACTION_ESCALATION_DEPARTMENT", &escalation_department),
        ] {
            Departments::check_id(id).map_err(|reason| invalid(var, reason))?;
        }
        let departments = Departments::parse(&env.string_or("INTERACTION_DEPARTMENTS", ""))
            .map_err(|reason| invalid("INTERACTION_DEPARTMENTS", reason))?
            .with_ids([default_department.as_str(), escalation_department.as_str()]);
        Ok(Self {
            accounts: None,
            departments,
            policy: DeadlinePolicy {
                calendar,
                acknowledge,
                resolve,
                default_resolve,
            },
            default_department,
            escalation_department,
            sweep_interval: env.period_or("SWEEP_INTERVAL", Duration::from_secs(30))?,
            held_retry_backoff: env.period_or("HELD_RETRY_BACKOFF", Duration::from_secs(60))?,
            missed_reply_sending_timeout: env
                .period_or("MISSED_REPLY_SENDING_TIMEOUT", Duration::from_secs(300))?,
            outbox_poll_interval: env.period_or("OUTBOX_POLL_INTERVAL", Duration::from_secs(1))?,
            rules_reload_interval: env
                .period_or("RULES_RELOAD_INTERVAL", Duration::from_secs(60))?,
            watch: WatchLimits {
                buffer: env.parse_or("WATCH_BUFFER", 64)?,
                per_key: env.parse_or("WATCH_STREAMS_PER_KEY", 8)?,
                resume: env.parse_or("WATCH_RESUME_LIMIT", 20_000)?,
            },
            retention,
        })
    }
}

/// How to reach WeChat's API for each account this install answers for.
#[derive(Debug, Clone)]
pub struct WechatApiConfig {
    /// `WECHAT_API_BASE_URL`: WeChat's API host (tests and the local run use `wechat-sim`).
    pub base_url: String,
    /// `WECHAT_ACCOUNTS` and, per account, `WECHAT_{ID}_APPID` and `WECHAT_{ID}_SECRET`
    /// (or `_SECRET_FILE`), with `{ID}` the account id upper-cased and `-` → `_`.
    pub accounts: Vec<WechatAccount>,
}

/// One account's API credentials; `id` is the account id of tickets and subjects.
#[derive(Debug, Clone)]
pub struct WechatAccount {
    pub id: String,
    pub appid: String,
    pub secret: secrecy::SecretString,
}

impl WechatApiConfig {
    /// Reads the API settings; a listed account without an appid or secret is an error.
    /// With `WECHAT_ACCOUNTS` unset, the demo account (`wechat-sim`'s defaults) is used.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let base_url = env.string_or("WECHAT_API_BASE_URL", wechat::api::DEFAULT_BASE_URL);
        let accounts = WechatAccounts::from_env(env)?
            .iter()
            .map(|account| {
                Ok(WechatAccount {
                    id: account.id().to_string(),
                    appid: account.appid()?,
                    secret: account.secret()?,
                })
            })
            .collect::<Result<_, ConfigError>>()?;
        Ok(Self { base_url, accounts })
    }
}

#[cfg(test)]
mod tests {
    use platform::accounts::DEMO_ACCOUNT;

    use super::*;

    #[test]
    fn a_service_reader_key_is_no_ticket_department() {
        let env = Env::from_pairs([(
            "API_KEYS",
            "interaction-svc:viewer:reader-key-0001,social-security:agent:social-key-0001",
        )]);
        let config = Config::from_env(&env).unwrap();
        let departments = &config.interaction.departments;
        assert!(departments.is_known("social-security"));
        assert!(!departments.is_known("interaction-svc"), "{departments:?}");
    }

    #[test]
    fn defaults_follow_the_domain_notes() {
        let config = InteractionConfig::from_env(&Env::default()).unwrap();
        assert_eq!(config.policy, DeadlinePolicy::default());
        assert_eq!(config.default_department, "citizen-services");
        assert_eq!(config.escalation_department, "supervision");
        assert_eq!(config.sweep_interval, Duration::from_secs(30));
        assert_eq!(config.held_retry_backoff, Duration::from_secs(60));
        assert_eq!(
            config.missed_reply_sending_timeout,
            Duration::from_secs(300)
        );
        assert_eq!(config.retention, RetentionPolicy::default());
    }

    #[test]
    fn retention_periods_are_read_and_too_short_ones_refused() {
        let env = Env::from_pairs([("TICKET_RETENTION", "730d"), ("FOLLOWER_RETENTION", "90d")]);
        let config = InteractionConfig::from_env(&env).unwrap();
        assert_eq!(
            config.retention.closed_tickets,
            chrono::TimeDelta::days(730)
        );
        assert_eq!(config.retention.unfollowed, chrono::TimeDelta::days(90));
        for (var, value) in [("TICKET_RETENTION", "1h"), ("FOLLOWER_RETENTION", "1d")] {
            let error = InteractionConfig::from_env(&Env::from_pairs([(var, value)])).unwrap_err();
            assert!(error.to_string().starts_with(var), "{var}: {error}");
            assert!(error.to_string().contains("at least"), "{error}");
        }
    }

    #[test]
    fn configured_limits_override_category_by_category() {
        let env = Env::from_pairs([
            ("INTERACTION_RESOLVE_LIMITS", "complaint=10d,default=5d"),
            ("INTERACTION_ACKNOWLEDGE_LIMIT", "4h"),
            ("INTERACTION_HOLIDAYS", "2026-10-01..2026-10-07"),
        ]);
        let config = InteractionConfig::from_env(&env).unwrap();
        assert_eq!(
            config.policy.resolve["complaint"],
            TimeLimit::WorkingDays(10)
        );
        assert_eq!(config.policy.resolve["emergency"], TimeLimit::Hours(2));
        assert_eq!(config.policy.default_resolve, TimeLimit::WorkingDays(5));
        assert_eq!(config.policy.acknowledge, TimeLimit::Hours(4));
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (var, value) in [
            ("INTERACTION_WORKING_HOURS", "17:00-09:00"),
            ("INTERACTION_TIMEZONE", "Asia/Shanghai"),
            ("INTERACTION_HOLIDAYS", "tomorrow"),
            ("INTERACTION_ACKNOWLEDGE_LIMIT", "1w"),
            ("INTERACTION_RESOLVE_LIMITS", "complaint"),
            ("SWEEP_INTERVAL", "often"),
            ("HELD_RETRY_BACKOFF", "soon"),
            ("MISSED_REPLY_SENDING_TIMEOUT", "0s"),
            ("TICKET_RETENTION", "forever"),
        ] {
            let error = InteractionConfig::from_env(&Env::from_pairs([(var, value)])).unwrap_err();
            assert!(error.to_string().starts_with(var), "{var}: {error}");
        }
    }

    #[test]
    fn the_directory_sync_is_off_without_a_content_url_and_needs_its_key() {
        assert!(
            DirectorySyncConfig::from_env(&Env::default())
                .unwrap()
                .is_none()
        );
        let env = Env::from_pairs([
            ("CONTENT_GRPC_URL", "http://content-svc:50052/"),
            ("CONTENT_API_KEY", "interaction-reader-01"),
        ]);
        let config = DirectorySyncConfig::from_env(&env).unwrap().unwrap();
        assert_eq!(config.content_url, "http://content-svc:50052");
        assert_eq!(config.interval, Duration::from_secs(3600));

        for (pairs, var) in [
            (
                vec![("CONTENT_GRPC_URL", "http://content-svc:50052")],
                "CONTENT_API_KEY",
            ),
            (
                vec![("CONTENT_API_KEY", "interaction-reader-01")],
                "CONTENT_GRPC_URL",
            ),
            (
                vec![
                    ("CONTENT_GRPC_URL", "content-svc:50052"),
                    ("CONTENT_API_KEY", "k3y-k3y-k3y"),
                ],
                "CONTENT_GRPC_URL",
            ),
            (
                vec![
                    ("CONTENT_GRPC_URL", "https://content-svc"),
                    ("CONTENT_API_KEY", "k3y-k3y-k3y"),
                ],
                "CONTENT_GRPC_URL",
            ),
            (
                vec![
                    ("CONTENT_GRPC_URL", "http://content-svc:50052"),
                    ("CONTENT_API_KEY", "short"),
                ],
                "CONTENT_API_KEY",
            ),
            (
                vec![
                    ("CONTENT_GRPC_URL", "http://content-svc:50052"),
                    ("CONTENT_API_KEY", "k3y-k3y-k3y"),
                    ("DIRECTORY_SYNC_INTERVAL", "hourly"),
                ],
                "DIRECTORY_SYNC_INTERVAL",
            ),
        ] {
            let error = DirectorySyncConfig::from_env(&Env::from_pairs(pairs)).unwrap_err();
            assert!(error.to_string().starts_with(var), "{var}: {error}");
            assert!(!error.to_string().contains("short"), "{error}");
        }
    }

    #[test]
    fn the_content_api_key_may_come_from_a_file() {
        let path = std::env::temp_dir().join(format!("content-key-{}", uuid::Uuid::new_v4()));
        std::fs::write(&path, "interaction-reader-01\n").unwrap();
        let env = Env::from_pairs([
            ("CONTENT_GRPC_URL", "http://127.0.0.1:50052"),
            ("CONTENT_API_KEY_FILE", path.to_str().unwrap()),
        ]);
        let config = DirectorySyncConfig::from_env(&env).unwrap().unwrap();
        use secrecy::ExposeSecret as _;
        assert_eq!(config.api_key.expose_secret(), "interaction-reader-01");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn wechat_accounts_default_to_the_demo_and_name_missing_credentials() {
        let demo = WechatApiConfig::from_env(&Env::default()).unwrap();
        assert_eq!(demo.base_url, "https://api.weixin.qq.com");
        assert_eq!(demo.accounts.len(), 1);
        assert_eq!(demo.accounts[0].id, DEMO_ACCOUNT.id);
        assert_eq!(demo.accounts[0].appid, DEMO_ACCOUNT.appid);

        let env = Env::from_pairs([
            ("WECHAT_ACCOUNTS", "chenzhou, yizhang-county"),
            ("WECHAT_API_BASE_URL", "http://127.0.0.1:9"),
            ("WECHAT_CHENZHOU_APPID", "wx1"),
            ("WECHAT_CHENZHOU_SECRET", "s1"),
            ("WECHAT_YIZHANG_COUNTY_APPID", "wx2"),
        ]);
        let error = WechatApiConfig::from_env(&env).unwrap_err();
        assert!(
            error.to_string().contains("WECHAT_YIZHANG_COUNTY_SECRET"),
            "{error}"
        );
        let env = env.with("WECHAT_YIZHANG_COUNTY_SECRET", "s2");
        let config = WechatApiConfig::from_env(&env).unwrap();
        let ids: Vec<&str> = config.accounts.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["chenzhou", "yizhang-county"]);
        assert_eq!(config.accounts[1].appid, "wx2");
        assert_eq!(config.base_url, "http://127.0.0.1:9");
    }
}
