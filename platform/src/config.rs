//! Configuration from environment variables, with an optional `KEY=VALUE` file.
//!
//! Each service reads its settings through an [`Env`] snapshot, so parsing is a pure
//! function of a map: tests build one with [`Env::from_pairs`] instead of touching the
//! process environment. A missing or invalid value is a [`ConfigError`] that names the
//! variable, so an operator sees at start-up exactly what to fix.
//!
//! We read variables by hand rather than through clap's `env` support because every
//! error must name the variable (not a `--flag`) and secrets may come from mounted
//! files (`NAME_FILE`), which clap does not model.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::net::SocketAddr;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use secrecy::SecretString;

/// The variable that names an optional configuration file of `KEY=VALUE` lines.
/// Values from the process environment override values from the file.
pub const CONFIG_FILE_VAR: &str = "CONFIG_FILE";

/// Why a configuration value could not be used. Every variant names the variable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{var} is required but not set")]
    Missing { var: String },
    #[error("{var}={value:?} is invalid: {reason}")]
    Invalid {
        var: String,
        value: String,
        reason: String,
    },
    /// Like `Invalid`, for secrets: the value is never printed.
    #[error("{var} is invalid: {reason}")]
    InvalidSecret { var: String, reason: String },
    #[error("{var}: cannot read {path}: {reason}")]
    File {
        var: String,
        path: String,
        reason: String,
    },
}

/// A snapshot of configuration variables.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    /// Reads the process environment, layered over the file named by `CONFIG_FILE` if set.
    pub fn from_process() -> Result<Self, ConfigError> {
        let process: BTreeMap<String, String> = std::env::vars().collect();
        let mut vars = BTreeMap::new();
        if let Some(path) = process.get(CONFIG_FILE_VAR).filter(|p| !p.is_empty()) {
            vars = read_env_file(CONFIG_FILE_VAR, Path::new(path))?;
        }
        vars.extend(process);
        Ok(Self { vars })
    }

    /// Builds a snapshot from explicit pairs (tests, tools).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// Returns a copy with `name` set, overriding any earlier value.
    pub fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        self.vars.insert(name.to_owned(), value.into());
        self
    }

    /// The value of `name`; an empty value counts as unset.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    /// The value of `name`, or `default` when unset.
    pub fn string_or(&self, name: &str, default: &str) -> String {
        self.get(name).unwrap_or(default).to_owned()
    }

    /// Parses `name`, or returns `default` when unset.
    pub fn parse_or<T>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => parse_value(name, raw),
        }
    }

    /// Parses `name`, which must be set.
    pub fn parse_required<T>(&self, name: &str) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        let raw = self.get(name).ok_or_else(|| ConfigError::Missing {
            var: name.to_owned(),
        })?;
        parse_value(name, raw)
    }

    /// A duration in whole seconds (`30`) or with units (`500ms`, `30s`, `5m`); see
    /// [`parse_duration`].
    pub fn duration_or(&self, name: &str, default: Duration) -> Result<Duration, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => parse_duration(raw).map_err(|reason| ConfigError::Invalid {
                var: name.to_owned(),
                value: raw.to_owned(),
                reason,
            }),
        }
    }

    /// How often something runs: a [`duration_or`](Self::duration_or) that refuses
    /// zero, which would make a `tokio::time::interval` panic in its task (the
    /// service up, the job silently gone) or a poll loop spin.
    pub fn period_or(&self, name: &str, default: Duration) -> Result<Duration, ConfigError> {
        let period = self.duration_or(name, default)?;
        if period.is_zero() {
            return Err(ConfigError::Invalid {
                var: name.to_owned(),
                value: self.get(name).unwrap_or_default().to_owned(),
                reason: "must be longer than zero".to_owned(),
            });
        }
        Ok(period)
    }

    /// A secret from `name`, or from the file named by `{name}_FILE` (a mounted
    /// Kubernetes secret). Trailing newlines of the file are ignored.
    pub fn secret(&self, name: &str) -> Result<Option<SecretString>, ConfigError> {
        if let Some(value) = self.get(name) {
            return Ok(Some(SecretString::from(value.to_owned())));
        }
        let file_var = format!("{name}_FILE");
        let Some(path) = self.get(&file_var) else {
            return Ok(None);
        };
        let content = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
            var: file_var.clone(),
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(Some(SecretString::from(
            content.trim_end_matches(['\r', '\n']).to_owned(),
        )))
    }

    /// Every variable whose name starts with `prefix`, in name order.
    pub fn with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.vars
            .iter()
            .filter(move |(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

fn parse_value<T>(name: &str, raw: &str) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    raw.trim()
        .parse()
        .map_err(|e: T::Err| ConfigError::Invalid {
            var: name.to_owned(),
            value: raw.to_owned(),
            reason: e.to_string(),
        })
}

/// Parses a duration: whole seconds (`30`) or humantime's units (`500ms`, `30s`,
/// `5m`, `1h 30m`). Every duration variable and `wechat-sim`'s flags use it, so one
/// grammar holds across the project.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    // humantime insists on a unit; bare seconds have always been accepted here.
    if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
        return raw
            .parse()
            .map(Duration::from_secs)
            .map_err(|e| e.to_string());
    }
    humantime::parse_duration(raw)
        .map_err(|e| format!("{e}; expected whole seconds or units, e.g. 30, 500ms, 30s, 5m"))
}

fn read_env_file(var: &str, path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let file_error = |reason: String| ConfigError::File {
        var: var.to_owned(),
        path: path.display().to_string(),
        reason,
    };
    let content = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
    let mut vars = BTreeMap::new();
    for (index, line) in content.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| file_error(format!("line {}: expected KEY=VALUE", index + 1)))?;
        let value = value.trim().trim_matches('"');
        vars.insert(key.trim().to_owned(), value.to_owned());
    }
    Ok(vars)
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line, for log collectors.
    Json,
    /// Human-readable, for a terminal.
    Pretty,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "json" => Ok(Self::Json),
            "pretty" | "text" => Ok(Self::Pretty),
            other => Err(format!("unknown log format {other:?}; use json or pretty")),
        }
    }
}

/// Settings every service shares: logging, admin port, shutdown grace.
#[derive(Debug, Clone)]
pub struct CommonConfig {
    /// `LOG_FORMAT`: `json` or `pretty`. Defaults to JSON inside Kubernetes
    /// (`KUBERNETES_SERVICE_HOST` set), readable text elsewhere.
    pub log_format: LogFormat,
    /// `ADMIN_ADDR`: where `/metrics`, `/healthz` and `/readyz` are served.
    pub admin_addr: SocketAddr,
    /// `SHUTDOWN_GRACE`: how long a drain may take after SIGTERM before the process exits.
    pub shutdown_grace: Duration,
}

impl CommonConfig {
    /// Reads the common settings; `default_admin_port` is the service's documented port.
    pub fn from_env(env: &Env, default_admin_port: u16) -> Result<Self, ConfigError> {
        let default_format = if env.get("KUBERNETES_SERVICE_HOST").is_some() {
            LogFormat::Json
        } else {
            LogFormat::Pretty
        };
        Ok(Self {
            log_format: env.parse_or("LOG_FORMAT", default_format)?,
            admin_addr: env.parse_or(
                "ADMIN_ADDR",
                SocketAddr::from(([127, 0, 0, 1], default_admin_port)),
            )?,
            shutdown_grace: env.duration_or("SHUTDOWN_GRACE", Duration::from_secs(25))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_value_names_the_variable_and_value() {
        let env = Env::from_pairs([("ADMIN_ADDR", "not-an-address")]);
        let error = CommonConfig::from_env(&env, 9000).unwrap_err();
        assert!(matches!(&error, ConfigError::Invalid { var, .. } if var == "ADMIN_ADDR"));
        assert!(
            error
                .to_string()
                .starts_with("ADMIN_ADDR=\"not-an-address\" is invalid")
        );
    }

    #[test]
    fn missing_required_value_names_the_variable() {
        let error = Env::default()
            .parse_required::<u16>("GRPC_PORT")
            .unwrap_err();
        assert_eq!(error.to_string(), "GRPC_PORT is required but not set");
    }

    #[test]
    fn defaults_apply_when_unset_or_empty() {
        let env = Env::from_pairs([("LOG_FORMAT", "")]);
        let config = CommonConfig::from_env(&env, 9081).unwrap();
        assert_eq!(
            config.admin_addr,
            "127.0.0.1:9081".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(config.log_format, LogFormat::Pretty);
        assert_eq!(config.shutdown_grace, Duration::from_secs(25));
    }

    #[test]
    fn kubernetes_defaults_to_json_logs() {
        let env = Env::from_pairs([("KUBERNETES_SERVICE_HOST", "10.0.0.1")]);
        assert_eq!(
            CommonConfig::from_env(&env, 1).unwrap().log_format,
            LogFormat::Json
        );
    }

    #[test]
    fn durations_take_units() {
        let env = Env::from_pairs([
            ("A", "1500ms"),
            ("B", "2m"),
            ("C", "7"),
            ("D", "soon"),
            ("E", "1h 30m"),
            ("F", "-5s"),
        ]);
        assert_eq!(
            env.duration_or("A", Duration::ZERO),
            Ok(Duration::from_millis(1500))
        );
        assert_eq!(
            env.duration_or("B", Duration::ZERO),
            Ok(Duration::from_secs(120))
        );
        assert_eq!(
            env.duration_or("C", Duration::ZERO),
            Ok(Duration::from_secs(7))
        );
        assert_eq!(
            env.duration_or("E", Duration::ZERO),
            Ok(Duration::from_secs(90 * 60))
        );
        for bad in ["D", "F"] {
            assert!(matches!(
                env.duration_or(bad, Duration::ZERO),
                Err(ConfigError::Invalid { var, .. }) if var == bad
            ));
        }
    }

    #[test]
    fn a_period_of_zero_is_refused_by_name() {
        let env = Env::from_pairs([("EVERY", "0s"), ("OFTEN", "250ms")]);
        assert!(matches!(
            env.period_or("EVERY", Duration::from_secs(1)),
            Err(ConfigError::Invalid { var, value, .. }) if var == "EVERY" && value == "0s"
        ));
        assert_eq!(
            env.period_or("OFTEN", Duration::from_secs(1)),
            Ok(Duration::from_millis(250))
        );
        assert_eq!(
            env.period_or("UNSET", Duration::from_secs(1)),
            Ok(Duration::from_secs(1))
        );
    }

    #[test]
    fn secrets_come_from_mounted_files_and_are_never_printed() {
        use secrecy::ExposeSecret;
        let dir = std::env::temp_dir().join(format!("platform-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        std::fs::write(&path, "s3cret\n").unwrap();
        let env = Env::from_pairs([("TOKEN_FILE", path.to_str().unwrap())]);
        let secret = env.secret("TOKEN").unwrap().unwrap();
        assert_eq!(secret.expose_secret(), "s3cret");
        assert!(!format!("{secret:?}").contains("s3cret"));

        let missing = Env::from_pairs([("TOKEN_FILE", "/nonexistent/token")]);
        assert!(
            matches!(missing.secret("TOKEN"), Err(ConfigError::File { var, .. }) if var == "TOKEN_FILE")
        );
    }

    #[test]
    fn config_file_lines_are_parsed_and_bad_lines_named() {
        let dir = std::env::temp_dir().join(format!("platform-envfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.env");
        std::fs::write(
            &good,
            "# comment\nNATS_URL=nats://x:4222\nLOG_FORMAT=\"json\"\n",
        )
        .unwrap();
        let vars = read_env_file(CONFIG_FILE_VAR, &good).unwrap();
        assert_eq!(vars["NATS_URL"], "nats://x:4222");
        assert_eq!(vars["LOG_FORMAT"], "json");

        let bad = dir.join("bad.env");
        std::fs::write(&bad, "OK=1\nnonsense\n").unwrap();
        let error = read_env_file(CONFIG_FILE_VAR, &bad).unwrap_err();
        assert!(
            error.to_string().contains("line 2: expected KEY=VALUE"),
            "{error}"
        );
    }
}
