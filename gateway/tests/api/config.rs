//! Configuration errors name the variable an operator must fix.

use gateway::Config;
use platform::{ConfigError, Env};

fn account_env() -> Env {
    Env::from_pairs([
        ("WECHAT_ACCOUNTS", "city"),
        ("WECHAT_CITY_APPID", "wx0000000000000001"),
        ("WECHAT_CITY_ORIGINAL_ID", "gh_city"),
        ("WECHAT_CITY_TOKEN", "secret-token"),
        ("WECHAT_CITY_MODE", "safe"),
        (
            "WECHAT_CITY_AES_KEY",
            "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
        ),
    ])
}

fn error_var(env: &Env) -> String {
    match Config::from_env(env).unwrap_err() {
        ConfigError::Missing { var }
        | ConfigError::Invalid { var, .. }
        | ConfigError::InvalidSecret { var, .. }
        | ConfigError::File { var, .. } => var,
    }
}

#[test]
fn a_listed_account_without_an_appid_names_its_variable() {
    let env = account_env().with("WECHAT_CITY_APPID", "");
    assert_eq!(error_var(&env), "WECHAT_CITY_APPID");
}

#[test]
fn an_unknown_mode_names_its_variable() {
    let env = account_env().with("WECHAT_CITY_MODE", "secure");
    assert_eq!(error_var(&env), "WECHAT_CITY_MODE");
}

#[test]
fn a_bad_aes_key_names_its_variable_without_showing_it() {
    let env = account_env().with("WECHAT_CITY_AES_KEY", "too-short-key");
    let error = Config::from_env(&env).unwrap_err();
    assert_eq!(error_var(&env), "WECHAT_CITY_AES_KEY");
    assert!(!error.to_string().contains("too-short-key"), "{error}");
}

#[test]
fn a_bad_previous_aes_key_names_its_variable() {
    let env = account_env().with("WECHAT_CITY_AES_KEY_PREVIOUS", "nope");
    assert_eq!(error_var(&env), "WECHAT_CITY_AES_KEY_PREVIOUS");
}

#[test]
fn a_token_can_come_from_a_mounted_file() {
    let path = std::env::temp_dir().join(format!("gateway-token-{}", uuid::Uuid::new_v4()));
    std::fs::write(&path, "from-file\n").unwrap();
    let env = account_env()
        .with("WECHAT_CITY_TOKEN", "")
        .with("WECHAT_CITY_TOKEN_FILE", path.to_str().unwrap());
    let config = Config::from_env(&env).unwrap();
    use secrecy::ExposeSecret;
    assert_eq!(config.accounts[0].token.expose_secret(), "from-file");
    assert!(!format!("{config:?}").contains("from-file"));
    let _ = std::fs::remove_file(path);
}

#[test]
fn an_in_flight_bound_of_zero_names_its_variable() {
    let env = account_env().with("MAX_IN_FLIGHT", "0");
    assert_eq!(error_var(&env), "MAX_IN_FLIGHT");
    let env = account_env().with("MAX_IN_FLIGHT", "lots");
    assert_eq!(error_var(&env), "MAX_IN_FLIGHT");
    let config = Config::from_env(&account_env().with("MAX_IN_FLIGHT", "16")).unwrap();
    assert_eq!(config.limits.max_in_flight, 16);
}

#[test]
fn durations_that_would_refuse_everything_or_overflow_name_their_variable() {
    for (var, value) in [
        ("TIMESTAMP_WINDOW", "0s"),
        ("TIMESTAMP_WINDOW", "100years"),
        ("CALLBACK_DEADLINE", "100years"),
        ("CALLBACK_DEADLINE", "0s"),
        ("NO_RESPONDER_PAUSE", "100years"),
    ] {
        let env = account_env().with(var, value);
        assert_eq!(error_var(&env), var, "{var}={value}");
    }
}

/// Every consumer reads an event's account as a `platform::ids::AccountId` (at most 64
/// bytes) and dead-letters one it refuses: an account id longer than that had each of
/// its callbacks accepted, then dead-lettered once per consumer.
#[test]
fn an_account_id_no_consumer_can_read_names_its_variable() {
    let account = |id: &str| {
        let var = |suffix: &str| format!("WECHAT_{}_{suffix}", gateway::config::env_id(id));
        Env::from_pairs([
            ("WECHAT_ACCOUNTS".to_owned(), id.to_owned()),
            (var("APPID"), "wx0000000000000001".to_owned()),
            (var("ORIGINAL_ID"), "gh_city".to_owned()),
            (var("TOKEN"), "secret-token".to_owned()),
            (var("MODE"), "plaintext".to_owned()),
        ])
    };
    assert_eq!(error_var(&account(&"c".repeat(65))), "WECHAT_ACCOUNTS");
    assert!(
        Config::from_env(&account(&"c".repeat(64))).is_ok(),
        "64 bytes is an account id"
    );
}
