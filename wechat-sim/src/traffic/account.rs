//! One Official Account as the gateway is configured for it.

use std::fmt;
use std::str::FromStr;

/// The gateway's built-in demo account (used when `WECHAT_ACCOUNTS` is unset).
pub const DEMO_ACCOUNT_ID: &str = platform::accounts::DEMO_ACCOUNT.id;
const DEMO_APPID: &str = platform::accounts::DEMO_ACCOUNT.appid;
const DEMO_ORIGINAL_ID: &str = platform::accounts::DEMO_ACCOUNT.original_id;
const DEMO_TOKEN: &str = platform::accounts::DEMO_ACCOUNT.token;
const DEMO_AES_KEY: &str = platform::accounts::DEMO_ACCOUNT.encoding_aes_key;

/// The message encryption mode chosen on the WeChat admin console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// 明文: plain XML, no `encrypt_type`.
    Plaintext,
    /// 兼容: plain fields plus `<Encrypt>`; the reply may be plain or encrypted.
    Compatible,
    /// 安全: only `<ToUserName>` and `<Encrypt>`; an XML reply must be encrypted.
    Safe,
}

impl Mode {
    /// Returns whether callbacks carry `encrypt_type=aes` and a `msg_signature`.
    pub fn encrypts(self) -> bool {
        !matches!(self, Self::Plaintext)
    }

    /// Returns the name used in configuration (`plaintext`, `compatible`, `safe`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plaintext => "plaintext",
            Self::Compatible => "compatible",
            Self::Safe => "safe",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an account setting was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// The mode is not `plaintext`, `compatible` or `safe`.
    #[error("unknown mode {0:?}: expected plaintext, compatible or safe")]
    UnknownMode(String),
    /// The EncodingAESKey does not decode to a 32-byte key.
    #[error("invalid EncodingAESKey: {0}")]
    AesKey(#[from] wechat::crypto::CryptoError),
}

impl FromStr for Mode {
    type Err = AccountError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "plaintext" | "plain" => Ok(Self::Plaintext),
            "compatible" => Ok(Self::Compatible),
            "safe" | "aes" => Ok(Self::Safe),
            _ => Err(AccountError::UnknownMode(s.to_owned())),
        }
    }
}

/// An Official Account as both WeChat and the gateway know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackAccount {
    /// The account id on this install: the `{account}` path segment of the callback URL.
    pub id: String,
    /// The appid, appended to every encrypted message.
    pub appid: String,
    /// The original id (`gh_…`): `ToUserName` of every callback.
    pub original_id: String,
    /// The token both sides sign with.
    pub token: String,
    /// The 43-character EncodingAESKey.
    pub aes_key: String,
    /// The encryption mode.
    pub mode: Mode,
}

impl CallbackAccount {
    /// Returns the gateway's built-in demo account (id `demo`, safe mode), whose appid
    /// is also the mock API's demo account.
    pub fn demo() -> Self {
        Self {
            id: DEMO_ACCOUNT_ID.to_owned(),
            appid: DEMO_APPID.to_owned(),
            original_id: DEMO_ORIGINAL_ID.to_owned(),
            token: DEMO_TOKEN.to_owned(),
            aes_key: DEMO_AES_KEY.to_owned(),
            mode: Mode::Safe,
        }
    }

    /// Returns the same account in another mode.
    pub fn with_mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }
}
