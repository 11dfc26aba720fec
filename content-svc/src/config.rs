//! content-svc's configuration: so far only the settings every service reads.
//! Settings of its own (review levels, publishing schedule, …) join [`Config`]
//! as typed groups beside `service`.

use platform::service::{ServiceConfig, ServiceDefaults};
use platform::{ConfigError, Env};

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
        assert_eq!(config.service.grpc_addr.port(), 50052);
        assert_eq!(config.service.common.admin_addr.port(), 9082);
        assert_eq!(config.service.db.database(), "content");
    }
}
