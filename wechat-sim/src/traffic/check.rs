//! Checking a gateway's answer to a callback the way WeChat would.

use wechat::crypto::{CryptoError, MessageCrypto};
use wechat::reply::{Answering, NO_REPLY, Reply, ReplyError};
use wechat::signature::{self, SignatureError};
use wechat::xml;

use super::account::{CallbackAccount, Mode};
use super::signer::{CallbackSigner, SignedCallback};

/// An answer WeChat accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckedReply {
    /// `success` or an empty body: no passive reply.
    NoReply,
    /// A passive reply, decrypted if it came encrypted.
    Reply {
        /// The reply.
        reply: Reply,
        /// Whether it came in the encrypted envelope.
        encrypted: bool,
    },
}

/// Why WeChat would not accept an answer (the citizen would see
/// "该公众号暂时无法提供服务" or nothing at all).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyCheckError {
    /// The status is not 200.
    #[error("http status {0}")]
    Status(u16),
    /// The body is neither `success`, empty, nor readable reply XML.
    #[error("malformed reply: {0}")]
    Malformed(ReplyError),
    /// A plaintext reply from a safe-mode account.
    #[error("plaintext reply in safe mode")]
    PlaintextInSafeMode,
    /// An encrypted reply from a plaintext-mode account.
    #[error("encrypted reply in plaintext mode")]
    EncryptedInPlaintextMode,
    /// The envelope's `MsgSignature` does not verify with the account's token.
    #[error("bad MsgSignature: {0}")]
    BadSignature(SignatureError),
    /// The reply decrypts but was sealed for another appid.
    #[error("reply sealed for another appid: {found:?}")]
    WrongAppId {
        /// The appid found in the ciphertext.
        found: String,
    },
    /// The reply does not decrypt.
    #[error("reply does not decrypt: {0}")]
    Decrypt(CryptoError),
    /// `ToUserName` is not the callback's sender.
    #[error("ToUserName {found:?} is not the sender {expected:?}")]
    ToNotSwapped {
        /// The callback's `FromUserName` (the openid).
        expected: String,
        /// What the reply says.
        found: String,
    },
    /// `FromUserName` is not the account's original id.
    #[error("FromUserName {found:?} is not the account {expected:?}")]
    FromNotSwapped {
        /// The callback's `ToUserName` (the `gh_…` id).
        expected: String,
        /// What the reply says.
        found: String,
    },
    /// `CreateTime` is absent or not a number.
    #[error("CreateTime missing or invalid")]
    MissingCreateTime,
    /// The reply breaks WeChat's limits (empty text, too many articles, …).
    #[error("reply refused by WeChat's rules: {0}")]
    Invalid(ReplyError),
}

impl ReplyCheckError {
    /// Returns a short stable code for logs and stats.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Status(_) => "http_status",
            Self::Malformed(_) => "malformed",
            Self::PlaintextInSafeMode => "plaintext_in_safe_mode",
            Self::EncryptedInPlaintextMode => "encrypted_in_plaintext_mode",
            Self::BadSignature(_) => "bad_signature",
            Self::WrongAppId { .. } => "wrong_appid",
            Self::Decrypt(_) => "decrypt",
            Self::ToNotSwapped { .. } => "to_not_swapped",
            Self::FromNotSwapped { .. } => "from_not_swapped",
            Self::MissingCreateTime => "missing_create_time",
            Self::Invalid(_) => "invalid",
        }
    }
}

/// Verifies answers for one account.
#[derive(Debug, Clone)]
pub struct ReplyCheck {
    token: String,
    mode: Mode,
    crypto: Option<MessageCrypto>,
}

impl ReplyCheck {
    /// Creates the check for the signer's account.
    pub fn new(signer: &CallbackSigner) -> Self {
        Self::for_account(signer.account(), signer.crypto().cloned())
    }

    /// Creates the check from an account and its crypto (`None` for plaintext).
    pub fn for_account(account: &CallbackAccount, crypto: Option<MessageCrypto>) -> Self {
        Self {
            token: account.token.clone(),
            mode: account.mode,
            crypto,
        }
    }

    /// Checks the answer (`status`, `body`) to `callback`.
    pub fn check(
        &self,
        callback: &SignedCallback,
        status: u16,
        body: &[u8],
    ) -> Result<CheckedReply, ReplyCheckError> {
        if status != 200 {
            return Err(ReplyCheckError::Status(status));
        }
        let trimmed = body.trim_ascii();
        if trimmed.is_empty() || trimmed == NO_REPLY.as_bytes() {
            return Ok(CheckedReply::NoReply);
        }
        let root = xml::parse(body).map_err(|e| ReplyCheckError::Malformed(e.into()))?;
        let encrypted = root.child("Encrypt").is_some();
        let reply = if encrypted {
            if self.mode == Mode::Plaintext {
                return Err(ReplyCheckError::EncryptedInPlaintextMode);
            }
            let field = |name: &'static str| {
                root.text_of(name)
                    .ok_or(ReplyCheckError::Malformed(ReplyError::MissingField(name)))
            };
            let encrypt = field("Encrypt")?;
            signature::verify_msg_signature(
                &self.token,
                field("TimeStamp")?,
                field("Nonce")?,
                encrypt,
                field("MsgSignature")?,
            )
            .map_err(ReplyCheckError::BadSignature)?;
            let crypto = self
                .crypto
                .as_ref()
                .ok_or(ReplyCheckError::Decrypt(CryptoError::InvalidKey))?;
            let plain = crypto.decrypt(encrypt).map_err(|e| match e {
                CryptoError::AppIdMismatch { found, .. } => ReplyCheckError::WrongAppId { found },
                other => ReplyCheckError::Decrypt(other),
            })?;
            parse_reply(plain.as_bytes())?
        } else {
            if self.mode == Mode::Safe {
                return Err(ReplyCheckError::PlaintextInSafeMode);
            }
            parse_reply(body)?
        };
        if reply.to_user_name != callback.openid {
            return Err(ReplyCheckError::ToNotSwapped {
                expected: callback.openid.clone(),
                found: reply.to_user_name,
            });
        }
        if reply.from_user_name != callback.original_id {
            return Err(ReplyCheckError::FromNotSwapped {
                expected: callback.original_id.clone(),
                found: reply.from_user_name,
            });
        }
        let answering = if callback.msg_id.is_some() {
            Answering::UserMessage
        } else {
            Answering::Event
        };
        reply
            .validate(answering)
            .map_err(ReplyCheckError::Invalid)?;
        Ok(CheckedReply::Reply { reply, encrypted })
    }
}

fn parse_reply(xml: &[u8]) -> Result<Reply, ReplyCheckError> {
    Reply::parse(xml).map_err(|e| match e {
        ReplyError::MissingField("CreateTime")
        | ReplyError::InvalidField {
            field: "CreateTime",
            ..
        } => ReplyCheckError::MissingCreateTime,
        other => ReplyCheckError::Malformed(other),
    })
}
