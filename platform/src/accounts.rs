//! The WeChat Official Accounts an install serves: `WECHAT_ACCOUNTS` and each account's
//! `WECHAT_{ID}_*` settings, read one way by every service that needs them (the gateway
//! and interaction-svc), and the demo account served when `WECHAT_ACCOUNTS` is unset.
//!
//! An account's settings are read when a service asks for them, not all at once, so a
//! service needs (and has mounted) only the secrets it uses: the gateway never reads an
//! AppSecret, interaction-svc never reads a token.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use secrecy::SecretString;

use crate::config::{ConfigError, Env};

/// The variable listing the account ids, comma-separated.
pub const ACCOUNTS_VAR: &str = "WECHAT_ACCOUNTS";

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
    pub const fn as_str(self) -> &'static str {
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

/// The built-in account served when `WECHAT_ACCOUNTS` is unset, so every service and
/// `wechat-sim` work together with no configuration. Never use it in production.
#[derive(Debug, Clone, Copy)]
pub struct DemoAccount {
    /// The account id: the `/wechat/demo` path segment and the `{account}` of subjects.
    pub id: &'static str,
    pub appid: &'static str,
    /// The AppSecret, for the API (`wechat-sim`'s mock checks it).
    pub secret: &'static str,
    /// The `gh_…` id WeChat sends as `ToUserName`.
    pub original_id: &'static str,
    pub token: &'static str,
    pub encoding_aes_key: &'static str,
    pub mode: Mode,
}

/// The demo account's values.
pub const DEMO_ACCOUNT: DemoAccount = DemoAccount {
    id: "demo",
    appid: "wxdemo0000000001",
    secret: "demo-secret",
    original_id: "gh_demo00000001",
    token: "demo-token",
    encoding_aes_key: "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    mode: Mode::Safe,
};

/// `{ID}` in the variable names: the id upper-cased, `-` turned into `_`.
pub fn env_id(id: &str) -> String {
    id.to_ascii_uppercase().replace('-', "_")
}

/// The accounts this install serves: those of `WECHAT_ACCOUNTS`, or the demo account.
#[derive(Debug, Clone)]
pub struct WechatAccounts {
    accounts: Vec<AccountSettings>,
    demo: bool,
}

impl WechatAccounts {
    /// Reads `WECHAT_ACCOUNTS`; ids must be unique and made of `a-z`, `0-9`, `-`, `_`.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let Some(list) = env.get(ACCOUNTS_VAR) else {
            return Ok(Self {
                accounts: vec![AccountSettings::demo()],
                demo: true,
            });
        };
        let mut accounts: Vec<AccountSettings> = Vec::new();
        for id in list.split(',').map(str::trim).filter(|id| !id.is_empty()) {
            let valid = id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
            // Ids become path segments, subjects and variable names: two ids that map to
            // the same `{ID}` would silently share settings.
            if !valid || accounts.iter().any(|a| a.env_id == env_id(id)) {
                return Err(ConfigError::Invalid {
                    var: ACCOUNTS_VAR.to_owned(),
                    value: list.to_owned(),
                    reason: format!(
                        "account id {id:?} is repeated or not made of a-z, 0-9, '-', '_'"
                    ),
                });
            }
            // Every consumer reads an event's account as an `AccountId` and dead-letters
            // one it refuses: such an account's callbacks would each be stored, then
            // dead-lettered once per consumer.
            if let Err(error) = crate::ids::AccountId::parse(id) {
                return Err(ConfigError::Invalid {
                    var: ACCOUNTS_VAR.to_owned(),
                    value: list.to_owned(),
                    reason: format!("account id {id:?}: {error}"),
                });
            }
            accounts.push(AccountSettings::from_env(env, id));
        }
        Ok(Self {
            accounts,
            demo: false,
        })
    }

    /// True when `WECHAT_ACCOUNTS` was unset and the demo account is served.
    pub fn is_demo(&self) -> bool {
        self.demo
    }

    /// The accounts, in the order listed.
    pub fn iter(&self) -> impl Iterator<Item = &AccountSettings> {
        self.accounts.iter()
    }
}

/// One account's `WECHAT_{ID}_*` settings. Each getter reads one variable and names
/// it in its error; secrets also come from a mounted file `NAME_FILE`.
#[derive(Clone)]
pub struct AccountSettings {
    id: Arc<str>,
    env_id: String,
    /// Only this account's variables, so the settings outlive the caller's `Env`.
    vars: Env,
}

impl fmt::Debug for AccountSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountSettings")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl AccountSettings {
    fn from_env(env: &Env, id: &str) -> Self {
        let env_id = env_id(id);
        let prefix = format!("WECHAT_{env_id}_");
        Self {
            id: Arc::from(id),
            vars: Env::from_pairs(env.with_prefix(&prefix)),
            env_id,
        }
    }

    /// The demo account's settings, as if configured through its variables.
    fn demo() -> Self {
        let d = DEMO_ACCOUNT;
        let env_id = env_id(d.id);
        let var = |suffix: &str| format!("WECHAT_{env_id}_{suffix}");
        Self {
            id: Arc::from(d.id),
            vars: Env::from_pairs([
                (var("APPID"), d.appid),
                (var("SECRET"), d.secret),
                (var("ORIGINAL_ID"), d.original_id),
                (var("TOKEN"), d.token),
                (var("AES_KEY"), d.encoding_aes_key),
                (var("MODE"), d.mode.as_str()),
            ]),
            env_id,
        }
    }

    /// The account id. Shared, because services label metrics with it: a clone is a
    /// count, not a copy.
    pub fn id(&self) -> &Arc<str> {
        &self.id
    }

    /// The full name of this account's variable `suffix`, e.g. `WECHAT_CITY_APPID`.
    pub fn var(&self, suffix: &str) -> String {
        format!("WECHAT_{}_{suffix}", self.env_id)
    }

    fn required(&self, suffix: &str) -> Result<String, ConfigError> {
        self.vars.parse_required(&self.var(suffix))
    }

    fn required_secret(&self, suffix: &str) -> Result<SecretString, ConfigError> {
        let var = self.var(suffix);
        self.vars.secret(&var)?.ok_or(ConfigError::Missing { var })
    }

    /// `WECHAT_{ID}_APPID`.
    pub fn appid(&self) -> Result<String, ConfigError> {
        self.required("APPID")
    }

    /// `WECHAT_{ID}_ORIGINAL_ID`: the `gh_…` id WeChat sends as `ToUserName`.
    pub fn original_id(&self) -> Result<String, ConfigError> {
        self.required("ORIGINAL_ID")
    }

    /// `WECHAT_{ID}_MODE`.
    pub fn mode(&self) -> Result<Mode, ConfigError> {
        self.vars.parse_required(&self.var("MODE"))
    }

    /// `WECHAT_{ID}_TOKEN` (or `_TOKEN_FILE`): the callback signing token.
    pub fn token(&self) -> Result<SecretString, ConfigError> {
        self.required_secret("TOKEN")
    }

    /// `WECHAT_{ID}_SECRET` (or `_SECRET_FILE`): the AppSecret for the API.
    pub fn secret(&self) -> Result<SecretString, ConfigError> {
        self.required_secret("SECRET")
    }

    /// `WECHAT_{ID}_AES_KEY` (or `_AES_KEY_FILE`): the EncodingAESKey, if set.
    pub fn aes_key(&self) -> Result<Option<SecretString>, ConfigError> {
        self.vars.secret(&self.var("AES_KEY"))
    }

    /// `WECHAT_{ID}_AES_KEY_PREVIOUS` (or `_FILE`): the key before a rotation, if set.
    pub fn aes_key_previous(&self) -> Result<Option<SecretString>, ConfigError> {
        self.vars.secret(&self.var("AES_KEY_PREVIOUS"))
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn unset_accounts_mean_the_demo_account_with_its_values() {
        let accounts = WechatAccounts::from_env(&Env::default()).unwrap();
        assert!(accounts.is_demo());
        let demo: Vec<_> = accounts.iter().collect();
        assert_eq!(demo.len(), 1);
        assert_eq!(&**demo[0].id(), DEMO_ACCOUNT.id);
        assert_eq!(demo[0].appid().unwrap(), DEMO_ACCOUNT.appid);
        assert_eq!(demo[0].secret().unwrap().expose_secret(), "demo-secret");
        assert_eq!(demo[0].mode().unwrap(), Mode::Safe);
    }

    #[test]
    fn ids_map_to_variables_with_dashes_turned_into_underscores() {
        let env = Env::from_pairs([
            ("WECHAT_ACCOUNTS", " chenzhou, yizhang-county "),
            ("WECHAT_YIZHANG_COUNTY_APPID", " wx2 "),
            ("WECHAT_YIZHANG_COUNTY_MODE", "Plain"),
        ]);
        let accounts = WechatAccounts::from_env(&env).unwrap();
        let ids: Vec<&str> = accounts.iter().map(|a| &**a.id()).collect();
        assert_eq!(ids, ["chenzhou", "yizhang-county"]);
        let county = accounts.iter().nth(1).unwrap();
        assert_eq!(county.appid().unwrap(), "wx2");
        assert_eq!(county.mode().unwrap(), Mode::Plaintext);
        assert_eq!(county.aes_key().unwrap().map(|_| ()), None);
    }

    #[test]
    fn an_account_id_no_consumer_reads_stops_start_up() {
        let long = "a".repeat(65);
        let env = Env::from_pairs([("WECHAT_ACCOUNTS", format!("chenzhou,{long}"))]);
        let error = WechatAccounts::from_env(&env).unwrap_err().to_string();
        assert!(error.starts_with("WECHAT_ACCOUNTS="), "{error}");
        assert!(error.contains("longer than 64 bytes"), "{error}");
        let env = Env::from_pairs([("WECHAT_ACCOUNTS", "a".repeat(64))]);
        assert!(WechatAccounts::from_env(&env).is_ok());
    }

    #[test]
    fn missing_or_invalid_settings_name_their_variable() {
        let env = Env::from_pairs([
            ("WECHAT_ACCOUNTS", "water-dept"),
            ("WECHAT_WATER_DEPT_MODE", "secret-ish"),
        ]);
        let accounts = WechatAccounts::from_env(&env).unwrap();
        let water = accounts.iter().next().unwrap();
        assert_eq!(
            water.secret().unwrap_err().to_string(),
            "WECHAT_WATER_DEPT_SECRET is required but not set"
        );
        assert_eq!(
            water.token().unwrap_err().to_string(),
            "WECHAT_WATER_DEPT_TOKEN is required but not set"
        );
        assert!(
            water
                .mode()
                .unwrap_err()
                .to_string()
                .starts_with("WECHAT_WATER_DEPT_MODE=\"secret-ish\" is invalid")
        );
    }

    #[test]
    fn repeated_or_malformed_ids_are_refused() {
        for list in ["city,city", "city,City", "a-b,a_b", "city/1"] {
            let env = Env::from_pairs([("WECHAT_ACCOUNTS", list)]);
            let error = WechatAccounts::from_env(&env).unwrap_err();
            assert!(
                matches!(&error, ConfigError::Invalid { var, .. } if var == ACCOUNTS_VAR),
                "{list}: {error}"
            );
        }
    }
}
