//! The callback endpoint's router and shared state.

mod callback;
mod error;
mod serve;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::routing::get;
use platform::nats::Namespace;

pub use error::CallbackError;
pub use serve::serve;

use crate::config::{AccountConfig, Limits};
use crate::log_limit::LogLimiter;
use crate::publish::Publisher;
use crate::replay::SignatureLedger;
use crate::reply::{Replier, ReplyOutcome};
use wechat::message::InboundType;

/// A configured account as the callback path serves it.
struct Account {
    config: AccountConfig,
    /// `gateway_previous_key_decrypts_total{account}`, made once here for an account
    /// with a previous EncodingAESKey: during a rotation every callback WeChat still
    /// sends under the old key is counted, and the `counter!` lookup cloned the
    /// account's label for each. Registered at 0, so `rate()` sees its first step.
    previous_key_decrypts: Option<metrics::Counter>,
    /// The per-callback series of an accepted callback.
    metrics: AccountMetrics,
}

/// The handles of the series every accepted callback records, one per account and
/// fixed label set: `counter!`/`histogram!` built the metric's key for each callback
/// (the account's label cloned into a freshly allocated Vec of labels), hashed it and
/// looked it up in the recorder's registry, three or four times per callback.
///
/// Each handle is made once, at its series' first use, not at start-up: a handle
/// registers its series, and one made at start-up would be exported at 0 (a
/// histogram with no samples) where none was before. The series the alerts read at
/// 0 from start-up are registered by `callback::register_counters`, as before.
struct AccountMetrics {
    /// `gateway_callback_seconds{account}`.
    callback_seconds: OnceLock<metrics::Histogram>,
    /// `gateway_callbacks_total{account,type,outcome}` for `accepted` and
    /// `duplicate`, by `InboundType` (the order of `InboundType::ALL`).
    callbacks: [[OnceLock<metrics::Counter>; 2]; InboundType::ALL.len()],
    /// `gateway_replies_total{account,outcome}`, by `ReplyOutcome`.
    replies: [OnceLock<metrics::Counter>; ReplyOutcome::ALL.len()],
    /// `gateway_replies_missed_total{account,stored}`: `yes`, `no`.
    replies_missed: [OnceLock<metrics::Counter>; 2],
    /// `gateway_callbacks_total{account,type="unknown",outcome}` of a callback refused
    /// before parsing, by reason (the order of `CallbackError::BEFORE_PARSING`), and
    /// `{type="url_check"}` of a URL check refused (`CallbackError::URL_CHECK`) or
    /// `verified`. Made at start-up: `callback::register_counters` exports each at 0
    /// then anyway. An account's path is public, so anyone can send it unsigned
    /// requests (`bad_signature`, `stale_timestamp`, …), and every callback refused
    /// `overloaded` while the replica is saturated meets one: a `counter!` lookup each
    /// cost a label cloned, a key built and hashed, a registry read.
    refused: [metrics::Counter; CallbackError::BEFORE_PARSING.len()],
    url_check_refused: [metrics::Counter; CallbackError::URL_CHECK.len()],
    verified: metrics::Counter,
}

impl AccountMetrics {
    fn new(id: &str) -> Self {
        let series = |kind: &'static str, outcome: &'static str| {
            metrics::counter!(
                "gateway_callbacks_total",
                "account" => id.to_owned(),
                "type" => kind,
                "outcome" => outcome,
            )
        };
        Self {
            callback_seconds: OnceLock::new(),
            callbacks: std::array::from_fn(|_| [OnceLock::new(), OnceLock::new()]),
            replies: std::array::from_fn(|_| OnceLock::new()),
            replies_missed: [OnceLock::new(), OnceLock::new()],
            refused: std::array::from_fn(|i| series("unknown", CallbackError::BEFORE_PARSING[i])),
            url_check_refused: std::array::from_fn(|i| {
                series("url_check", CallbackError::URL_CHECK[i])
            }),
            verified: series("url_check", "verified"),
        }
    }
}

impl Account {
    /// Records how long a callback took, from its arrival to its answer.
    fn record_callback_seconds(&self, seconds: f64) {
        self.metrics
            .callback_seconds
            .get_or_init(|| {
                metrics::histogram!("gateway_callback_seconds", "account" => self.config.id.clone())
            })
            .record(seconds);
    }

    /// Counts an answered callback: `accepted` (`duplicate` false) or `duplicate`.
    fn count_answered(&self, kind: InboundType, duplicate: bool) {
        let outcome = if duplicate { "duplicate" } else { "accepted" };
        self.metrics.callbacks[kind as usize][usize::from(duplicate)]
            .get_or_init(|| {
                metrics::counter!(
                    "gateway_callbacks_total",
                    "account" => self.config.id.clone(),
                    "type" => kind.label(),
                    "outcome" => outcome,
                )
            })
            .increment(1);
    }

    /// Counts a callback's reply outcome.
    fn count_reply(&self, outcome: ReplyOutcome) {
        self.metrics.replies[outcome as usize]
            .get_or_init(|| {
                metrics::counter!(
                    "gateway_replies_total",
                    "account" => self.config.id.clone(),
                    "outcome" => outcome.as_str(),
                )
            })
            .increment(1);
    }

    /// Counts a refused callback (`kind`: its type label, `unknown` before parsing) or
    /// URL check (`url_check`) under `reason`.
    fn count_refused(&self, kind: &'static str, reason: &'static str) {
        let handles: Option<(&[metrics::Counter], &[&str])> = match kind {
            "unknown" => Some((&self.metrics.refused, CallbackError::BEFORE_PARSING)),
            "url_check" => Some((&self.metrics.url_check_refused, CallbackError::URL_CHECK)),
            _ => None,
        };
        if let Some((handles, reasons)) = handles
            && let Some(at) = reasons.iter().position(|known| *known == reason)
        {
            handles[at].increment(1);
            return;
        }
        // A parsed callback's refusal: only a sender holding the Token gets a body
        // past the signature to be parsed, so it stays a lookup.
        metrics::counter!(
            "gateway_callbacks_total",
            "account" => self.config.id.clone(),
            "type" => kind,
            "outcome" => reason,
        )
        .increment(1);
    }

    /// Counts a URL check passed.
    fn count_verified(&self) {
        self.metrics.verified.increment(1);
    }

    /// Counts a missed-reply marker, stored or not.
    fn count_missed(&self, stored: bool) {
        self.metrics.replies_missed[usize::from(stored)]
            .get_or_init(|| {
                metrics::counter!(
                    "gateway_replies_missed_total",
                    "account" => self.config.id.clone(),
                    "stored" => if stored { "yes" } else { "no" },
                )
            })
            .increment(1);
    }
}

impl Account {
    fn new(config: AccountConfig) -> Self {
        let previous_key_decrypts = config.previous_key.then(|| {
            let counter = metrics::counter!(
                "gateway_previous_key_decrypts_total",
                "account" => config.id.clone(),
            );
            counter.increment(0);
            counter
        });
        Self {
            metrics: AccountMetrics::new(&config.id),
            config,
            previous_key_decrypts,
        }
    }
}

/// What every callback needs, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    accounts: HashMap<String, Account>,
    limits: Limits,
    namespace: Namespace,
    publisher: Publisher,
    replier: Replier,
    signatures: SignatureLedger,
    /// One permit per callback being handled (`Limits::max_in_flight`).
    in_flight: Arc<tokio::sync::Semaphore>,
    /// One permit per KiB of body being read or held (`Limits::body_budget_kib`): the
    /// in-flight place is taken only once the body is read, so this is what bounds
    /// the bodies in memory.
    body_budget: Arc<tokio::sync::Semaphore>,
    /// Which rejections, and which signature-ledger failures, get a log line.
    logs: LogLimiter,
    /// `gateway_callbacks_total{account="unknown",type,outcome="unknown_account"}` of
    /// callbacks (`type="unknown"`) and URL checks (`url_check`) to a path that names
    /// no configured account: anyone on the internet can send them, each counted with
    /// a handle rather than a registry lookup. The path's name never becomes a label.
    unknown_account: [metrics::Counter; 2],
}

impl Inner {
    /// Renders, logs and counts the refusal of a request to a path naming no
    /// configured account: a callback, or a URL check if `url_check`.
    fn refuse_unknown_account(&self, url_check: bool) -> axum::response::Response {
        let counter = &self.unknown_account[usize::from(url_check)];
        CallbackError::UnknownAccount.respond(&self.logs, "unknown", |_| counter.increment(1))
    }
}

impl AppState {
    pub fn new(
        accounts: Vec<AccountConfig>,
        limits: Limits,
        namespace: Namespace,
        publisher: Publisher,
        replier: Replier,
        signatures: SignatureLedger,
    ) -> Self {
        callback::register_counters(accounts.iter().map(|a| &*a.id));
        let unknown_account = ["unknown", "url_check"].map(|kind| {
            metrics::counter!(
                "gateway_callbacks_total",
                "account" => "unknown",
                "type" => kind,
                "outcome" => "unknown_account",
            )
        });
        Self {
            inner: Arc::new(Inner {
                unknown_account,
                accounts: accounts
                    .into_iter()
                    .map(|a| (a.id.to_string(), Account::new(a)))
                    .collect(),
                in_flight: Arc::new(tokio::sync::Semaphore::new(limits.max_in_flight)),
                body_budget: Arc::new(tokio::sync::Semaphore::new(limits.body_budget_kib())),
                limits,
                namespace,
                publisher,
                replier,
                signatures,
                logs: LogLimiter::default(),
            }),
        }
    }
}

/// The public router: `GET` (URL check) and `POST` (callbacks) on `/wechat/{account}`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/wechat/{account}",
            get(callback::verify_url).post(callback::receive),
        )
        .with_state(state)
}
