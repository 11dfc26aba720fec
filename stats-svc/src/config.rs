//! stats-svc's configuration: the settings every service reads, and its own
//! (`StatsSettings`): the office time zone and the inspection thresholds.

use std::time::Duration;

use chrono::FixedOffset;
use platform::accounts::WechatAccounts;
use platform::service::{ServiceConfig, ServiceDefaults};
use platform::{ConfigError, Env};
use work_calendar::WorkCalendar;

use crate::domain::inspection::InspectionRules;
use crate::domain::install::Install;
use crate::domain::rollup::CHINA_STANDARD_TIME;

/// The service's name, database and default ports (see the README's ports table).
pub const DEFAULTS: ServiceDefaults = ServiceDefaults {
    name: "stats-svc",
    database: "stats",
    grpc_port: 50053,
    admin_port: 9083,
};

/// stats-svc's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub service: ServiceConfig,
    pub stats: StatsSettings,
}

/// Settings of stats-svc's own.
#[derive(Debug, Clone)]
pub struct StatsSettings {
    /// `OFFICE_UTC_OFFSET` (default `+08:00`): days of the rollups start at the
    /// office's midnight.
    pub office: FixedOffset,
    /// interaction-svc's working time, read from the same settings
    /// (`INTERACTION_WORKING_HOURS`, `INTERACTION_TIMEZONE`, `INTERACTION_HOLIDAYS`,
    /// `INTERACTION_MAKEUP_WORKDAYS`; `work_calendar::from_settings`): the grace a move
    /// gives the receiving department is counted in it, as its deadlines are.
    pub calendar: WorkCalendar,
    /// `ALARM_STALE_DAYS` (default 10), `ALARM_INTERACTION_DAYS` (7),
    /// `ALARM_OVERDUE_SHARE` (0.2), `ALARM_OVERDUE_WINDOW_DAYS` (30),
    /// `ALARM_OVERDUE_MIN_LATE` (3),
    /// `ALARM_REPLY_PATH_HOURS` (3), `ALARM_REPLY_PATH_MESSAGES` (5).
    pub rules: InspectionRules,
    /// `WECHAT_ACCOUNTS`: the accounts the lists and the inspection hold to (unnamed
    /// when the variable is unset and the demo account stands in).
    pub install: Install,
    /// `INSPECTION_INTERVAL` (default 1h): how often the checks run.
    pub inspection_interval: Duration,
    /// `OUTBOX_POLL_INTERVAL` (default 5s): the relay's safety-net poll.
    pub outbox_poll: Duration,
    /// The datacube job's settings.
    pub datacube: DatacubeSettings,
    /// `HTTP_ADDR` (default `127.0.0.1:8083`): the dashboard.
    pub http_addr: std::net::SocketAddr,
    /// `DASHBOARD_TRUST_LOOPBACK` (default true): a browser on loopback needs no login.
    pub trust_loopback: bool,
    /// `STATS_ALL_DEPARTMENTS` (default `supervision`): the departments whose keys read
    /// every department's figures (admins always do); any other key reads its own
    /// department's (`domain::departments::DepartmentView`).
    pub all_departments: Vec<String>,
}

/// The datacube job: which accounts it pulls and how.
#[derive(Debug, Clone)]
pub struct DatacubeSettings {
    /// `WECHAT_ACCOUNTS` with each `WECHAT_{ID}_APPID` / `_SECRET`; when unset, the
    /// demo account, but only against a `WECHAT_API_BASE_URL` (a simulator): none
    /// against the real WeChat.
    pub accounts: Vec<CubeAccount>,
    /// `WECHAT_API_BASE_URL` (tests: wechat-sim).
    pub base_url: String,
    /// `DATACUBE_INTERVAL` (default 1h; `0s` turns the job off).
    pub interval: Duration,
    /// `DATACUBE_BACKFILL_DAYS` (default 30): how far back a first pull reaches.
    pub backfill_days: u64,
}

/// One account the datacube job pulls.
#[derive(Debug, Clone)]
pub struct CubeAccount {
    pub id: String,
    pub appid: String,
    pub secret: secrecy::SecretString,
}

impl StatsSettings {
    fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let defaults = InspectionRules::default();
        let office = match env.get("OFFICE_UTC_OFFSET") {
            None => FixedOffset::east_opt(CHINA_STANDARD_TIME)
                .ok_or_else(|| invalid("OFFICE_UTC_OFFSET", "+08:00", "not an offset"))?,
            Some(raw) => raw.parse().map_err(|_| {
                invalid(
                    "OFFICE_UTC_OFFSET",
                    raw,
                    "expected an offset such as +08:00",
                )
            })?,
        };
        let calendar = work_calendar::from_settings(|var| env.get(var)).map_err(|e| {
            invalid(
                e.var,
                env.get(e.var).unwrap_or_default(),
                &e.error.to_string(),
            )
        })?;
        // Bounded: the checks subtract these from dates and times, which panics (in the
        // inspection job and every page) far past any sensible window.
        let bounded = |name: &str, default: i64, max: i64| -> Result<i64, ConfigError> {
            let value: i64 = env.parse_or(name, default)?;
            if !(1..=max).contains(&value) {
                return Err(invalid(
                    name,
                    &value.to_string(),
                    &format!("must be between 1 and {max}"),
                ));
            }
            Ok(value)
        };
        // Its minimum counted tickets judged, which made the alarm fire at 2 of 2 and not
        // at 3 of 4; a value set for it would now be silently dropped.
        if let Some(value) = env.get("ALARM_OVERDUE_MIN_TICKETS") {
            return Err(invalid(
                "ALARM_OVERDUE_MIN_TICKETS",
                value,
                "is replaced by ALARM_OVERDUE_MIN_LATE, the late tickets (not tickets judged) \
                 a department needs before its overdue share alarms",
            ));
        }
        let share: f64 = env.parse_or("ALARM_OVERDUE_SHARE", defaults.overdue_share)?;
        if !(0.0..=1.0).contains(&share) {
            return Err(invalid(
                "ALARM_OVERDUE_SHARE",
                &share.to_string(),
                "must be between 0 and 1",
            ));
        }
        let accounts = WechatAccounts::from_env(env)?;
        let install = if accounts.is_demo() {
            Install::unnamed()
        } else {
            Install::named(accounts.iter().map(|a| a.id().to_string()))
        };
        Ok(Self {
            office,
            calendar,
            install,
            rules: InspectionRules {
                stale_after_days: bounded("ALARM_STALE_DAYS", defaults.stale_after_days, 366)?,
                interaction_days: bounded(
                    "ALARM_INTERACTION_DAYS",
                    defaults.interaction_days,
                    366,
                )?,
                overdue_share: share,
                overdue_window_days: bounded(
                    "ALARM_OVERDUE_WINDOW_DAYS",
                    defaults.overdue_window_days,
                    366,
                )?,
                overdue_min_late: bounded(
                    "ALARM_OVERDUE_MIN_LATE",
                    defaults.overdue_min_late,
                    1_000_000,
                )?,
                reply_path_hours: bounded(
                    "ALARM_REPLY_PATH_HOURS",
                    defaults.reply_path_hours,
                    24 * 31,
                )?,
                reply_path_messages: bounded(
                    "ALARM_REPLY_PATH_MESSAGES",
                    defaults.reply_path_messages,
                    1_000_000,
                )?,
            },
            inspection_interval: env.period_or("INSPECTION_INTERVAL", Duration::from_secs(3600))?,
            outbox_poll: env.period_or("OUTBOX_POLL_INTERVAL", Duration::from_secs(5))?,
            datacube: DatacubeSettings::from_env(env, &accounts)?,
            http_addr: env.parse_or("HTTP_ADDR", ([127, 0, 0, 1], 8083).into())?,
            trust_loopback: env.parse_or("DASHBOARD_TRUST_LOOPBACK", true)?,
            // The supervision office (督办, interaction-svc's default
            // INTERACTION_ESCALATION_DEPARTMENT) follows every department's lateness.
            all_departments: crate::domain::departments::parse_list(
                env.get("STATS_ALL_DEPARTMENTS").unwrap_or("supervision"),
            ),
        })
    }
}

impl DatacubeSettings {
    fn from_env(env: &Env, accounts: &WechatAccounts) -> Result<Self, ConfigError> {
        let interval = env.duration_or("DATACUBE_INTERVAL", Duration::from_secs(3600))?;
        let base_url = env.get("WECHAT_API_BASE_URL").map(str::to_owned);
        // Secrets are read only when the job runs. The demo account (WECHAT_ACCOUNTS
        // unset) is no real account: against the real WeChat it could only be refused,
        // and a test or a laptop would call out to the internet on every start (and
        // a shutdown would wait on its DNS lookup); against a simulator it is pulled.
        let accounts = if interval.is_zero() || (accounts.is_demo() && base_url.is_none()) {
            Vec::new()
        } else {
            accounts
                .iter()
                .map(|account| {
                    Ok(CubeAccount {
                        id: account.id().to_string(),
                        appid: account.appid()?,
                        secret: account.secret()?,
                    })
                })
                .collect::<Result<Vec<_>, ConfigError>>()?
        };
        let backfill_days: u64 = env.parse_or("DATACUBE_BACKFILL_DAYS", 30)?;
        if !(1..=366).contains(&backfill_days) {
            return Err(invalid(
                "DATACUBE_BACKFILL_DAYS",
                &backfill_days.to_string(),
                "must be between 1 and 366",
            ));
        }
        Ok(Self {
            accounts,
            base_url: base_url.unwrap_or_else(|| wechat::api::DEFAULT_BASE_URL.to_owned()),
            interval,
            backfill_days,
        })
    }
}

fn invalid(var: &str, value: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        var: var.to_owned(),
        value: value.to_owned(),
        reason: reason.to_owned(),
    }
}

impl Config {
    /// Reads the configuration; every error names its variable.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            service: ServiceConfig::from_env(env, DEFAULTS)?,
            stats: StatsSettings::from_env(env)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ports_and_database() {
        let config = Config::from_env(&Env::from_pairs::<&str, &str>([])).unwrap();
        assert_eq!(config.service.grpc_addr.port(), 50053);
        assert_eq!(config.service.common.admin_addr.port(), 9083);
        assert_eq!(config.service.db.database(), "stats");
        assert_eq!(config.stats.office.local_minus_utc(), 8 * 3600);
        assert_eq!(config.stats.calendar, WorkCalendar::default());
        assert_eq!(config.stats.rules.stale_after_days, 10);
        assert_eq!(config.stats.http_addr.port(), 8083);
        assert!(config.stats.trust_loopback);
    }

    #[test]
    fn the_demo_account_is_pulled_from_a_simulator_never_from_the_real_wechat() {
        let real = Config::from_env(&Env::from_pairs::<&str, &str>([])).unwrap();
        assert!(real.stats.datacube.accounts.is_empty());
        let sim = Config::from_env(&Env::from_pairs([(
            "WECHAT_API_BASE_URL",
            "http://127.0.0.1:9100",
        )]))
        .unwrap();
        assert_eq!(sim.stats.datacube.accounts.len(), 1);
        assert_eq!(sim.stats.datacube.base_url, "http://127.0.0.1:9100");
    }

    #[test]
    fn the_install_names_the_configured_accounts_and_none_for_the_demo() {
        let demo = Config::from_env(&Env::from_pairs::<&str, &str>([])).unwrap();
        assert!(!demo.stats.install.is_named());
        let named = Config::from_env(&Env::from_pairs([
            ("WECHAT_ACCOUNTS", "chenzhou,yizhang"),
            ("DATACUBE_INTERVAL", "0s"),
        ]))
        .unwrap();
        assert_eq!(named.stats.install, Install::named(["chenzhou", "yizhang"]));
    }

    #[test]
    fn the_calendar_is_read_from_interaction_svcs_settings() {
        let config = Config::from_env(&Env::from_pairs([
            ("INTERACTION_HOLIDAYS", "2026-10-01..2026-10-07"),
            ("INTERACTION_MAKEUP_WORKDAYS", "2026-10-11"),
        ]))
        .unwrap();
        let day = |d: u32| chrono::NaiveDate::from_ymd_opt(2026, 10, d).unwrap();
        assert!(!config.stats.calendar.is_working_day(day(5)));
        assert!(config.stats.calendar.is_working_day(day(11)));
        for (var, value) in [
            ("INTERACTION_HOLIDAYS", "tomorrow"),
            ("INTERACTION_WORKING_HOURS", "17:30-09:00"),
            ("INTERACTION_TIMEZONE", "Asia/Shanghai"),
        ] {
            let error = Config::from_env(&Env::from_pairs([(var, value)]))
                .unwrap_err()
                .to_string();
            assert!(error.contains(var), "{error}");
        }
    }

    #[test]
    fn a_bad_office_offset_or_threshold_names_its_variable() {
        let error = Config::from_env(&Env::from_pairs([("OFFICE_UTC_OFFSET", "Beijing")]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("OFFICE_UTC_OFFSET"), "{error}");
        let error = Config::from_env(&Env::from_pairs([("ALARM_STALE_DAYS", "0")]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("ALARM_STALE_DAYS"), "{error}");
        // A window of a billion days made the checks' date arithmetic panic.
        for var in [
            "ALARM_INTERACTION_DAYS",
            "ALARM_OVERDUE_WINDOW_DAYS",
            "ALARM_REPLY_PATH_HOURS",
        ] {
            let error = Config::from_env(&Env::from_pairs([(var, "1000000000")]))
                .unwrap_err()
                .to_string();
            assert!(error.contains(var), "{error}");
        }
        // Zero made the inspection job's interval panic: the service ready, no alarms.
        let error = Config::from_env(&Env::from_pairs([("INSPECTION_INTERVAL", "0s")]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("INSPECTION_INTERVAL"), "{error}");
    }
}
