//! interaction-svc's configuration: the platform settings plus the rules of
//! answering citizens (working time, time limits, fallback departments).

use std::time::Duration;

use chrono::FixedOffset;
use platform::accounts::WechatAccounts;
use platform::service::ServiceConfig;
use platform::{ConfigError, Env};

use crate::domain::{DeadlinePolicy, Departments, TimeLimit, WorkCalendar};
use crate::grpc::WatchLimits;
use crate::startup::DEFAULTS;

/// interaction-svc's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub service: ServiceConfig,
    pub interaction: InteractionConfig,
    pub wechat: WechatApiConfig,
}

impl Config {
    /// Reads the configuration; every error names its variable.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let service = ServiceConfig::from_env(env, DEFAULTS)?;
        let mut interaction = InteractionConfig::from_env(env)?;
        // Every department with an API key exists, even without a display name.
        let keyed = service.api_keys.departments();
        interaction.departments = interaction
            .departments
            .with_ids(keyed.iter().map(String::as_str));
        let wechat = WechatApiConfig::from_env(env)?;
        // Rules may name only the accounts the install serves; without
        // WECHAT_ACCOUNTS (the demo set-up) any account id is taken.
        if env.get("WECHAT_ACCOUNTS").is_some() {
            interaction.accounts = Some(wechat.accounts.iter().map(|a| a.id.clone()).collect());
        }
        Ok(Self {
            service,
            interaction,
            wechat,
        })
    }
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
    /// `SWEEP_INTERVAL`: how often overdue tickets are looked for.
    pub sweep_interval: Duration,
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
    /// watches one API key may hold open.
    pub watch: WatchLimits,
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

        let (opens, closes) =
            WorkCalendar::parse_hours(&env.string_or("INTERACTION_WORKING_HOURS", "09:00-17:30"))
                .map_err(|reason| invalid("INTERACTION_WORKING_HOURS", reason))?;
        let offset: FixedOffset = env
            .string_or("INTERACTION_TIMEZONE", "+08:00")
            .parse()
            .map_err(|_| {
                invalid(
                    "INTERACTION_TIMEZONE",
                    "expected a UTC offset like +08:00".to_owned(),
                )
            })?;
        let holidays = WorkCalendar::parse_dates(&env.string_or("INTERACTION_HOLIDAYS", ""))
            .map_err(|reason| invalid("INTERACTION_HOLIDAYS", reason))?;
        let makeup = WorkCalendar::parse_dates(&env.string_or("INTERACTION_MAKEUP_WORKDAYS", ""))
            .map_err(|reason| invalid("INTERACTION_MAKEUP_WORKDAYS", reason))?;
        let calendar = WorkCalendar::new(offset, opens, closes, holidays, makeup)
            .map_err(|reason| invalid("INTERACTION_WORKING_HOURS", reason))?;
        let acknowledge: TimeLimit = env
            .string_or("INTERACTION_ACKNOWLEDGE_LIMIT", "1d")
            .parse()
            .map_err(|reason| invalid("INTERACTION_ACKNOWLEDGE_LIMIT", reason))?;
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
            sweep_interval: env.duration_or("SWEEP_INTERVAL", Duration::from_secs(30))?,
            outbox_poll_interval: env
                .duration_or("OUTBOX_POLL_INTERVAL", Duration::from_secs(1))?,
            rules_reload_interval: env
                .duration_or("RULES_RELOAD_INTERVAL", Duration::from_secs(60))?,
            watch: WatchLimits {
                buffer: env.parse_or("WATCH_BUFFER", 64)?,
                per_key: env.parse_or("WATCH_STREAMS_PER_KEY", 8)?,
            },
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
    fn defaults_follow_the_domain_notes() {
        let config = InteractionConfig::from_env(&Env::default()).unwrap();
        assert_eq!(config.policy, DeadlinePolicy::default());
        assert_eq!(config.default_department, "citizen-services");
        assert_eq!(config.escalation_department, "supervision");
        assert_eq!(config.sweep_interval, Duration::from_secs(30));
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
        ] {
            let error = InteractionConfig::from_env(&Env::from_pairs([(var, value)])).unwrap_err();
            assert!(error.to_string().starts_with(var), "{var}: {error}");
        }
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
