//! The one error enum of the callback endpoint, mapped once to a status, a reason
//! code, a log line and a metric.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use wechat::crypto::CryptoError;
use wechat::message::MessageError;
use wechat::signature::SignatureError;

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
    #[error("JetStream did not acknowledge the callback in time")]
    NotDurable,
    /// A plaintext signature already seen with another body (a captured URL replayed).
    #[error("signature already used with another body")]
    ReplayedSignature,
    /// `MAX_IN_FLIGHT` callbacks are being handled: refused at once, before the body
    /// is read, rather than queued without bound.
    #[error("too many callbacks in flight")]
    Overloaded,
}

impl CallbackError {
    /// The HTTP status WeChat (or whoever sent it) receives.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::UnknownAccount => StatusCode::NOT_FOUND,
            Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::Signature(_) | Self::MsgSignature(_) => StatusCode::UNAUTHORIZED,
            Self::Decrypt(CryptoError::AppIdMismatch { .. }) | Self::WrongRecipient => {
                StatusCode::FORBIDDEN
            }
            Self::NotDurable | Self::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            Self::ReplayedSignature => StatusCode::FORBIDDEN,
            Self::BodyUnreadable
            | Self::BadQuery(_)
            | Self::StaleTimestamp
            | Self::MissingEncrypt
            | Self::Decrypt(_)
            | Self::Message(_) => StatusCode::BAD_REQUEST,
        }
    }

    /// The stable reason code: the log field, the metric's `outcome` and the body.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::UnknownAccount => "unknown_account",
            Self::BodyTooLarge => "body_too_large",
            Self::BodyUnreadable => "body_unreadable",
            Self::BodyTimeout => "body_timeout",
            Self::BadQuery(_) => "bad_query",
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
            Self::NotDurable => "not_durable",
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
            other => other.reason(),
        }
    }

    /// Logs, counts and renders the rejection. `account` is a configured account id
    /// or `unknown`, never a raw path segment; `kind` is a bounded type label.
    pub fn respond(self, account: &str, kind: &'static str) -> Response {
        let reason = self.reason();
        tracing::warn!(
            account,
            reason,
            detail = self.detail(),
            status = self.status().as_u16(),
            "callback rejected"
        );
        metrics::counter!(
            "gateway_callbacks_total",
            "account" => account.to_owned(),
            "type" => kind,
            "outcome" => reason,
        )
        .increment(1);
        (self.status(), reason).into_response()
    }
}
