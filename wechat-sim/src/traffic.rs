//! Citizen traffic: WeChat's side of the callback protocol, played against a gateway.
//!
//! - [`CallbackAccount`] is one Official Account as the gateway knows it (id, appid,
//!   original id, token, EncodingAESKey, mode).
//! - [`CallbackSigner`] turns a [`CitizenAction`] of a [`Follower`] into a
//!   [`SignedCallback`]: the URL query (`signature`, `timestamp`, `nonce`, `openid`,
//!   and in compatible/safe mode `encrypt_type=aes` + `msg_signature`) and the body,
//!   encrypted as the mode asks, with MsgIds and CreateTimes unique per follower.
//! - [`ReplyCheck`] verifies what the gateway answered, as WeChat would.
//! - [`CallbackClient`] delivers a callback with WeChat's retry behaviour (no answer
//!   within 5 s: the identical request again, 3 attempts in all).
//! - [`demo`] is a steady realistic mix of citizens; [`load`] is the load generator;
//!   [`nats`] holds the reply responder, the JetStream ceiling and stream counts;
//!   [`cpu`] accounts the CPU each process spends per callback in a measured window.

mod account;
mod action;
mod check;
pub mod citizens;
mod client;
pub mod consumer_bench;
pub mod cpu;
pub mod demo;
pub mod load;
pub mod nats;
mod signer;
mod wire;

pub use account::{AccountError, CallbackAccount, Mode};
pub use action::{CitizenAction, Follower};
pub use check::{CheckedReply, ReplyCheck, ReplyCheckError};
pub use client::{Attempt, AttemptOutcome, CallbackClient, Delivery, RetryPolicy};
pub use signer::{CallbackSigner, SignedCallback};

/// Errors of the traffic library.
#[derive(Debug, thiserror::Error)]
pub enum TrafficError {
    /// The account settings are unusable (bad EncodingAESKey, …).
    #[error(transparent)]
    Account(#[from] AccountError),
    /// A callback could not be encrypted.
    #[error("cannot encrypt the callback: {0}")]
    Crypto(#[from] wechat::crypto::CryptoError),
    /// The gateway URL is not an `http://host:port` URL.
    #[error("invalid gateway url {url:?}: {reason}")]
    GatewayUrl {
        /// The URL as given.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the http client: {0}")]
    Client(String),
}
