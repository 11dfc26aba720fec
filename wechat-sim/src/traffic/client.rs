//! Delivering callbacks with WeChat's retry behaviour.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::TrafficError;
use super::signer::SignedCallback;

/// WeChat's delivery rule: no answer within `timeout` → the identical request again,
/// `max_attempts` in all (documented as 5 s and 3 attempts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// How long one attempt may take before WeChat gives up on it.
    pub timeout: Duration,
    /// Attempts in all, the first included.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            max_attempts: 3,
        }
    }
}

/// What one attempt got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The gateway answered (any status).
    Answered {
        /// HTTP status.
        status: u16,
        /// The body.
        body: Bytes,
    },
    /// No answer within the timeout; WeChat dropped the connection.
    TimedOut,
    /// The connection failed (refused, reset, …).
    Failed(String),
}

/// One delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// What it got.
    pub outcome: AttemptOutcome,
    /// How long it took.
    pub elapsed: Duration,
}

/// Every attempt made for one callback, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Delivery {
    /// The attempts, the first one first; only the last can be an answer.
    pub attempts: Vec<Attempt>,
}

impl Delivery {
    /// Returns the status and body of the answer, if an attempt got one.
    pub fn answer(&self) -> Option<(u16, &Bytes)> {
        self.attempts.iter().find_map(|a| match &a.outcome {
            AttemptOutcome::Answered { status, body } => Some((*status, body)),
            _ => None,
        })
    }

    /// Returns whether WeChat had to retry.
    pub fn retried(&self) -> bool {
        self.attempts.len() > 1
    }

    /// Returns the time from the first attempt to the end of the last.
    pub fn elapsed(&self) -> Duration {
        self.attempts.iter().map(|a| a.elapsed).sum()
    }
}

/// Sends callbacks to one gateway as WeChat does.
#[derive(Debug, Clone)]
pub struct CallbackClient {
    http: reqwest::Client,
    gateway: String,
    policy: RetryPolicy,
}

impl CallbackClient {
    /// Creates a client for the gateway at `gateway` (e.g. `http://127.0.0.1:8080`).
    pub fn new(gateway: &str, policy: RetryPolicy) -> Result<Self, TrafficError> {
        let url = reqwest::Url::parse(gateway).map_err(|e| TrafficError::GatewayUrl {
            url: gateway.to_owned(),
            reason: e.to_string(),
        })?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(TrafficError::GatewayUrl {
                url: gateway.to_owned(),
                reason: "expected http or https".to_owned(),
            });
        }
        let http = reqwest::Client::builder()
            .user_agent("Mozilla/4.0")
            .tcp_nodelay(true)
            .build()
            .map_err(|e| TrafficError::Client(e.to_string()))?;
        Ok(Self {
            http,
            gateway: gateway.trim_end_matches('/').to_owned(),
            policy,
        })
    }

    /// Returns the retry policy.
    pub fn policy(&self) -> RetryPolicy {
        self.policy
    }

    /// Delivers `callback`, retrying the identical request while no answer comes.
    ///
    /// An HTTP error status is an answer: WeChat documents redelivery only for a
    /// callback that gets no answer in time.
    pub async fn deliver(&self, callback: &SignedCallback) -> Delivery {
        let mut delivery = Delivery::default();
        let url = callback.url(&self.gateway);
        for attempt in 1..=self.policy.max_attempts.max(1) {
            let started = Instant::now();
            let outcome = self.attempt(&url, callback.body.clone()).await;
            let elapsed = started.elapsed();
            let answered = matches!(outcome, AttemptOutcome::Answered { .. });
            if !answered {
                tracing::warn!(
                    attempt,
                    openid = %callback.openid,
                    action = callback.label,
                    outcome = ?outcome,
                    "no answer from the gateway; wechat retries the identical callback"
                );
            }
            delivery.attempts.push(Attempt { outcome, elapsed });
            if answered {
                break;
            }
        }
        delivery
    }

    async fn attempt(&self, url: &str, body: Bytes) -> AttemptOutcome {
        let request = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "text/xml")
            .timeout(self.policy.timeout)
            .body(body);
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) if e.is_timeout() => return AttemptOutcome::TimedOut,
            Err(e) => return AttemptOutcome::Failed(e.to_string()),
        };
        let status = response.status().as_u16();
        match response.bytes().await {
            Ok(body) => AttemptOutcome::Answered { status, body },
            Err(e) if e.is_timeout() => AttemptOutcome::TimedOut,
            Err(e) => AttemptOutcome::Failed(e.to_string()),
        }
    }
}
