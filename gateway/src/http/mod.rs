//! The callback endpoint's router and shared state.

mod callback;
mod error;
mod serve;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use platform::nats::Namespace;

pub use error::CallbackError;
pub use serve::serve;

use crate::config::{AccountConfig, Limits};
use crate::log_limit::LogLimiter;
use crate::publish::Publisher;
use crate::replay::SignatureLedger;
use crate::reply::Replier;

/// A configured account as the callback path serves it.
struct Account {
    config: AccountConfig,
    /// `gateway_previous_key_decrypts_total{account}`, made once here for an account
    /// with a previous EncodingAESKey: during a rotation every callback WeChat still
    /// sends under the old key is counted, and the `counter!` lookup cloned the
    /// account's label for each. Registered at 0, so `rate()` sees its first step.
    previous_key_decrypts: Option<metrics::Counter>,
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
        Self {
            inner: Arc::new(Inner {
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
