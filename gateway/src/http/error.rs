//! The one error enum of the callback endpoint, mapped once to a status, a reason
//! code, a log line and a metric.

use std::time::Instant;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use platform::ids::IdError;
use wechat::crypto::CryptoError;
use wechat::message::MessageError;
use wechat::signature::SignatureError;

use crate::log_limit::LogLimiter;

/// Why a callback was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error("no such account")]
    UnknownAccount,
    #[error("body larger than the limit")]
    BodyTooLarge,
    #[error("cannot read the body")]
    BodyUnreadable,
    /// The body did not arrive within `CALLBACK_DEADLINE`.
    #[error("body not received within the callback deadline")]
    BodyTimeout,
    #[error("query parameter {0} is missing or invalid")]
    BadQuery(&'static str),
    /// A URL check's `echostr` is not of the form WeChat sends (1-64 ASCII letters or
    /// digits): the echo is bounded to it, never the sender's markup or text.
    #[error("echostr is not 1-64 ASCII letters or digits")]
    BadEchostr,
    #[error("timestamp outside the accepted window")]
    StaleTimestamp,
    #[error("signature: {0}")]
    Signature(SignatureError),
    #[error("msg_signature: {0}")]
    MsgSignature(SignatureError),
    #[error("encrypted body has no Encrypt element")]
    MissingEncrypt,
    #[error("decrypt: {0}")]
    Decrypt(CryptoError),
    #[error("message: {0}")]
    Message(#[from] MessageError),
    #[error("ToUserName is not this account's original id")]
    WrongRecipient,
    /// `MsgType` (or `Event`) is longer than any WeChat sends: it would make a NATS
    /// subject the server refuses by closing the connection. Holds the log detail.
    #[error("type name too long ({0})")]
    BadType(&'static str),
    /// `FromUserName` is no openid every consumer accepts (`platform::ids::OpenId`):
    /// published, it would be dead-lettered once per consumer.
    #[error("FromUserName: {0}")]
    BadOpenId(IdError),
    /// The event_id made of the callback is no `platform::ids::EventId` (too long: a
    /// `publish_id` of hundreds of bytes); consumers would dead-letter it.
    #[error("event id: {0}")]
    BadEventId(IdError),
    #[error("JetStream did not acknowledge the callback in time")]
    NotDurable,
    /// The event made of the callback is larger than the NATS server's `max_payload`
    /// (a server set below the default 1 MiB): no attempt, ours or WeChat's, can ever
    /// store it, so it is refused at once instead of held for a retry.
    #[error("event of {size} bytes is larger than the NATS server's max_payload")]
    EventTooLarge { size: usize },
    /// The replay ledger could not say whether the signature is fresh: the callback is
    /// held like one not made durable (reason `not_durable`), so WeChat retries it.
    #[error("the replay ledger did not answer")]
    LedgerUnavailable,
    /// A plaintext signature already seen with another body (a captured URL replayed).
    #[error("signature already used with another body")]
    ReplayedSignature,
    /// `MAX_IN_FLIGHT` callbacks are being handled: refused at once, before the body
    /// is read, rather than queued without bound.
    #[error("too many callbacks in flight")]
    Overloaded,
}

impl CallbackError {
    /// Every reason a callback can be refused with before its XML is parsed, when its
    /// `type` label is still `unknown` (`unknown_account` aside: its account is too).
    pub const BEFORE_PARSING: &[&str] = &[
        "overloaded",
        "bad_query",
        "stale_timestamp",
        "bad_signature",
        "malformed_signature",
        "body_too_large",
        "body_unreadable",
        "body_timeout",
        "replayed_signature",
        "bad_msg_signature",
        "malformed_msg_signature",
        "missing_encrypt",
        "decrypt_failed",
        "appid_mismatch",
        "malformed_xml",
        "doctype_forbidden",
        "entity_forbidden",
        // The replay ledger did not answer (`LedgerUnavailable`).
        "not_durable",
    ];
    /// The reasons a parsed callback can be refused with (`type` is its own).
    pub const AFTER_PARSING: &[&str] = &[
        "wrong_recipient",
        "bad_type",
        "bad_openid",
        "bad_event_id",
        "event_too_large",
        "not_durable",
    ];
    /// The reasons a URL check can be refused with.
    pub const URL_CHECK: &[&str] = &[
        "bad_query",
        "bad_echostr",
        "stale_timestamp",
        "bad_signature",
        "malformed_signature",
        "replayed_signature",
        "not_durable",
    ];

    /// The HTTP status WeChat (or whoever sent it) receives.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::UnknownAccount => StatusCode::NOT_FOUND,
            Self::BodyTooLarge | Self::EventTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::Signature(_) | Self::MsgSignature(_) => StatusCode::UNAUTHORIZED,
            Self::Decrypt(CryptoError::AppIdMismatch { .. }) | Self::WrongRecipient => {
                StatusCode::FORBIDDEN
            }
            Self::NotDurable | Self::LedgerUnavailable | Self::Overloaded => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::ReplayedSignature => StatusCode::FORBIDDEN,
            Self::BodyUnreadable
            | Self::BadQuery(_)
            | Self::BadEchostr
            | Self::StaleTimestamp
            | Self::MissingEncrypt
            | Self::Decrypt(_)
            | Self::Message(_)
            | Self::BadType(_)
            | Self::BadOpenId(_)
            | Self::BadEventId(_) => StatusCode::BAD_REQUEST,
        }
    }

    /// Whether a callback refused so is answered only past `CALLBACK_DEADLINE`: it
    /// was not made durable (or could not be checked), and WeChat redelivers only a
    /// callback it got no answer to in time.
    pub fn is_held(&self) -> bool {
        matches!(self, Self::NotDurable | Self::LedgerUnavailable)
    }

    /// The stable reason code: the log field, the metric's `outcome` and the body.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::UnknownAccount => "unknown_account",
            Self::BodyTooLarge => "body_too_large",
            Self::BodyUnreadable => "body_unreadable",
            Self::BodyTimeout => "body_timeout",
            Self::BadQuery(_) => "bad_query",
            Self::BadEchostr => "bad_echostr",
            Self::StaleTimestamp => "stale_timestamp",
            Self::Signature(e) => e.reason(),
            Self::MsgSignature(SignatureError::Mismatch) => "bad_msg_signature",
            Self::MsgSignature(SignatureError::Malformed) => "malformed_msg_signature",
            Self::MissingEncrypt => "missing_encrypt",
            Self::Decrypt(CryptoError::AppIdMismatch { .. }) => "appid_mismatch",
            // Every other crypto failure is "this is not ours to read"; the precise
            // code (bad_padding, bad_base64, …) goes to the log.
            Self::Decrypt(_) => "decrypt_failed",
            Self::Message(e) => match e.reason() {
                "doctype_forbidden" | "entity_forbidden" => e.reason(),
                _ => "malformed_xml",
            },
            Self::WrongRecipient => "wrong_recipient",
            Self::BadType(_) => "bad_type",
            Self::BadOpenId(_) => "bad_openid",
            Self::BadEventId(_) => "bad_event_id",
            Self::EventTooLarge { .. } => "event_too_large",
            Self::NotDurable | Self::LedgerUnavailable => "not_durable",
            Self::ReplayedSignature => "replayed_signature",
            Self::Overloaded => "overloaded",
        }
    }

    /// The precise code, for the log line only.
    fn detail(&self) -> &'static str {
        match self {
            Self::Decrypt(e) => e.reason(),
            Self::Message(e) => e.reason(),
            Self::BadQuery(param) => param,
            Self::BadType(field) => field,
            Self::LedgerUnavailable => "replay_ledger_unavailable",
            Self::EventTooLarge { .. } => "over_nats_max_payload",
            // What is wrong with it, never the value: it is the citizen's id.
            Self::BadOpenId(IdError::Empty(_)) => "openid_empty",
            Self::BadOpenId(IdError::TooLong { .. }) => "openid_too_long",
            Self::BadOpenId(IdError::Control(_)) => "openid_control",
            Self::BadEventId(IdError::Empty(_)) => "event_id_empty",
            Self::BadEventId(IdError::TooLong { .. }) => "event_id_too_long",
            Self::BadEventId(IdError::Control(_)) => "event_id_control",
            other => other.reason(),
        }
    }

    /// Logs, counts and renders the rejection. `account` is a configured account id
    /// or `unknown`, never a raw path segment; `count` counts the reason in its
    /// `gateway_callbacks_total` series (`http::Account::count_refused`, whose labels
    /// are bounded the same way).
    ///
    /// `unknown_account` (anyone on the internet) and `overloaded` (every refused
    /// callback while saturated) are logged at DEBUG: their counters are the signal. The
    /// others are logged at WARN, at most once per account and reason every
    /// [`LOG_PERIOD`](crate::log_limit::LOG_PERIOD) through `log`, with the number of
    /// lines left out.
    pub fn respond(
        self,
        log: &LogLimiter,
        account: &str,
        count: impl FnOnce(&'static str),
    ) -> Response {
        let reason = self.reason();
        let status = self.status().as_u16();
        match self {
            Self::UnknownAccount | Self::Overloaded => {
                tracing::debug!(account, reason, status, "callback rejected");
            }
            _ => {
                if let Some(suppressed) = log.admit(account, reason, Instant::now()) {
                    tracing::warn!(
                        account,
                        reason,
                        detail = self.detail(),
                        status,
                        suppressed,
                        "callback rejected"
                    );
                }
            }
        }
        count(reason);
        (self.status(), reason).into_response()
    }
}

#[cfg(test)]
mod tests {
    use wechat::xml::XmlError;

    use super::*;

    #[test]
    fn every_reason_is_in_a_list_start_up_registers() {
        let errors = [
            CallbackError::UnknownAccount,
            CallbackError::BodyTooLarge,
            CallbackError::BodyUnreadable,
            CallbackError::BodyTimeout,
            CallbackError::BadQuery("nonce"),
            CallbackError::BadEchostr,
            CallbackError::StaleTimestamp,
            CallbackError::Signature(SignatureError::Mismatch),
            CallbackError::Signature(SignatureError::Malformed),
            CallbackError::MsgSignature(SignatureError::Mismatch),
            CallbackError::MsgSignature(SignatureError::Malformed),
            CallbackError::MissingEncrypt,
            CallbackError::Decrypt(CryptoError::BadPadding),
            CallbackError::Decrypt(CryptoError::AppIdMismatch {
                expected: String::new(),
                found: String::new(),
            }),
            CallbackError::Message(MessageError::Xml(XmlError::NotUtf8)),
            CallbackError::Message(MessageError::Xml(XmlError::DoctypeForbidden)),
            CallbackError::Message(MessageError::Xml(XmlError::EntityForbidden("x".into()))),
            CallbackError::WrongRecipient,
            CallbackError::BadType("msg_type_too_long"),
            CallbackError::BadOpenId(IdError::Control("openid")),
            CallbackError::BadEventId(IdError::TooLong {
                what: "event_id",
                max: 512,
            }),
            CallbackError::NotDurable,
            CallbackError::EventTooLarge { size: 1 << 20 },
            CallbackError::LedgerUnavailable,
            CallbackError::ReplayedSignature,
            CallbackError::Overloaded,
        ];
        for error in errors {
            let reason = error.reason();
            assert!(
                reason == "unknown_account"
                    || CallbackError::BEFORE_PARSING.contains(&reason)
                    || CallbackError::AFTER_PARSING.contains(&reason)
                    || CallbackError::URL_CHECK.contains(&reason),
                "{reason} is never registered at 0"
            );
        }
    }
}
