//! stats-svc's configuration: so far only the settings every service reads.
//! Settings of its own (rollup and alarm schedules, WCI weights, …) join
//! [`Config`] as typed groups beside `service`.

use platform::service::{ServiceConfig, ServiceDefaults};
use platform::{ConfigError, Env};

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
}

impl Config {
    /// Reads the configuration; every error names its variable.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            service: ServiceConfig::from_env(env, DEFAULTS)?,
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
    }
}
