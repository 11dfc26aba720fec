//! The outbound WeChat API client.
//!
//! A [`Client`] serves one Official Account (appid + AppSecret). Each call takes an
//! access token from the client's [`TokenSource`], and reacts to WeChat's answer the
//! way `wechat-protocol.md` §5 prescribes:
//! - a rejected token (40001, 40014, 42001) is invalidated for every replica, refreshed
//!   once and the call retried once;
//! - "system busy" (-1) is retried with exponential backoff, a bounded number of times,
//!   for a call that is safe to repeat (a read, a delete, a keyed write); WeChat may have carried a
//!   call out before answering -1, so on a call that would act twice (a
//!   customer-service message, `freepublish/submit`, …) it is not retried but
//!   returned with `unconfirmed` set, so that `outcome_unknown()` is true; a keyed
//!   write's error after a -1 (the repeat refused as too soon, 45066, or a last -1)
//!   is returned `unconfirmed` too;
//! - anything else, quota and window limits included (45009, 45015, 45047, …), is
//!   returned to the caller at once as [`ApiError::Wechat`].
//!
//! Requests and responses are typed per area: [`custom`] (customer-service messages),
//! [`template`], [`mass`] (mass send and preview), [`publish`] (drafts and free-publish),
//! [`menu`], [`user`] (followers and tags) and [`datacube`] (statistics).
//!
//! ```no_run
//! # async fn demo() -> Result<(), wechat::api::ApiError> {
//! use wechat::api::{Client, custom::CustomMessage};
//! use wechat::token::{LocalTokenCache, TokenSource};
//!
//! let client = Client::builder("wx0123456789abcdef", "secret".into(), LocalTokenCache::default().into())
//!     .base_url("http://127.0.0.1:9000")
//!     .build()?;
//! client.send_custom_message(&CustomMessage::text("openid-1", "您好")).await?;
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::token::{AccessToken, RefreshReason, TokenSource};

pub mod custom;
pub mod datacube;
pub mod error;
pub mod mass;
pub mod media;
pub mod menu;
pub mod publish;
pub mod template;
pub mod user;

pub use error::{ApiError, ErrCode};

/// WeChat's API host.
pub const DEFAULT_BASE_URL: &str = "https://api.weixin.qq.com";

/// Which WeChat endpoint issues access tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenEndpoint {
    /// `POST /cgi-bin/stable_token`: the same token until near expiry, isolated from
    /// `/token`; WeChat recommends it.
    #[default]
    Stable,
    /// `GET /cgi-bin/token`: every fetch issues a new token and retires the previous one.
    Classic,
}

/// How "system busy" (-1) answers are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusyRetry {
    /// Total attempts, the first included (1 disables retries).
    pub attempts: u32,
    /// The pause before the first retry; it doubles on each further retry.
    pub base_delay: Duration,
}

impl Default for BusyRetry {
    fn default() -> Self {
        Self {
            attempts: 3,
            base_delay: Duration::from_millis(200),
        }
    }
}

/// Whether a call may be sent again after WeChat answered "system busy" (-1), which
/// it may answer after carrying the call out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Repeat {
    /// A second copy does no harm: a read, a delete, a write that sets a state
    /// (`menu/create`, tagging), or one whose copy nobody sees (an unused draft or
    /// image). -1 is retried.
    Safe,
    /// A write WeChat recognises a repeat of by the key it carries (a mass send's
    /// `clientmsgid`): -1 is retried, but once an attempt answered -1 it may have
    /// been carried out, and the repeat's refusal (45066, "the same clientmsgid
    /// again within a minute") or a last -1 says nothing of it: such an error is
    /// `unconfirmed`.
    Keyed,
    /// A second copy would act twice (a message to a citizen, a publication, another
    /// conditional menu): -1 is not retried, and its error is `unconfirmed`.
    Once,
}

impl Repeat {
    /// [`Repeat::Keyed`] when the call carries a key WeChat recognises a repeat by.
    pub(crate) fn keyed(key: Option<&str>) -> Self {
        if key.is_some_and(|key| !key.is_empty()) {
            Self::Keyed
        } else {
            Self::Once
        }
    }
}

/// Builds a [`Client`]; see [`Client::builder`].
pub struct ClientBuilder {
    appid: String,
    secret: SecretString,
    tokens: TokenSource,
    base_url: String,
    timeout: Duration,
    token_endpoint: TokenEndpoint,
    busy_retry: BusyRetry,
}

impl ClientBuilder {
    /// Sets the API host (default [`DEFAULT_BASE_URL`]); tests point it at `wechat-sim`.
    pub fn base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }

    /// Sets the timeout of each HTTP call (default 5 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Chooses the token endpoint (default [`TokenEndpoint::Stable`]).
    pub fn token_endpoint(mut self, endpoint: TokenEndpoint) -> Self {
        self.token_endpoint = endpoint;
        self
    }

    /// Sets how "system busy" answers are retried.
    pub fn busy_retry(mut self, retry: BusyRetry) -> Self {
        self.busy_retry = retry;
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<Client, ApiError> {
        let base_url = self.base_url.trim_end_matches('/').to_owned();
        check_base_url(&base_url)?;
        // An idle pooled connection is dropped after 30 s, before WeChat's front end
        // or a NAT closes it under a request (reqwest's default keeps it 90 s); a
        // connect that hangs fails in 5 s, leaving the rest of the call's timeout.
        // Redirects are never followed: a 307/308 would resend a `stable_token` body,
        // AppSecret included, to whatever host it names (and any redirect the query's
        // access token); WeChat's API does not redirect, so one is an error.
        let http = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ApiError::Config(e.to_string()))?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base_url,
                appid: self.appid,
                secret: self.secret,
                tokens: self.tokens,
                token_endpoint: self.token_endpoint,
                busy_retry: self.busy_retry,
            }),
            timeout: self.timeout,
        })
    }
}

/// A WeChat API client for one account. Cloning is cheap and shares the connection
/// pool and token source.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    timeout: Duration,
}

struct Inner {
    http: reqwest::Client,
    base_url: String,
    appid: String,
    secret: SecretString,
    tokens: TokenSource,
    token_endpoint: TokenEndpoint,
    busy_retry: BusyRetry,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The AppSecret and tokens stay out of logs.
        f.debug_struct("Client")
            .field("appid", &self.inner.appid)
            .field("base_url", &self.inner.base_url)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The answer to a call that returns nothing but `errcode: 0`.
#[derive(serde::Deserialize)]
struct Ack {}

impl Client {
    /// Starts building a client for the account `appid` with its AppSecret, taking
    /// tokens from `tokens`.
    pub fn builder(
        appid: impl Into<String>,
        secret: SecretString,
        tokens: TokenSource,
    ) -> ClientBuilder {
        ClientBuilder {
            appid: appid.into(),
            secret,
            tokens,
            base_url: DEFAULT_BASE_URL.to_owned(),
            timeout: Duration::from_secs(5),
            token_endpoint: TokenEndpoint::default(),
            busy_retry: BusyRetry::default(),
        }
    }

    /// Returns the account's appid.
    pub fn appid(&self) -> &str {
        &self.inner.appid
    }

    /// Returns a clone whose calls use `timeout` instead (for a call with a tighter budget).
    pub fn with_timeout(&self, timeout: Duration) -> Self {
        Self {
            inner: self.inner.clone(),
            timeout,
        }
    }

    /// Returns a valid access token from the token source, refreshing it if needed.
    pub async fn access_token(&self) -> Result<AccessToken, ApiError> {
        self.inner
            .tokens
            .get(&self.inner.appid, |reason| self.fetch_for(reason))
            .await
    }

    /// Fetches a new token from `GET /cgi-bin/token`, bypassing the cache. Each such
    /// fetch retires the previous `/token` token after WeChat's grace period.
    pub async fn fetch_token(&self) -> Result<AccessToken, ApiError> {
        let appid = self.inner.appid.as_str();
        let secret = self.inner.secret.expose_secret();
        let query = [
            ("grant_type", "client_credential"),
            ("appid", appid),
            ("secret", secret),
        ];
        // A repeated fetch only issues another token, as any later fetch would.
        let issued: Issued = self
            .retry_busy(Repeat::Safe, || {
                self.send(Method::GET, "/cgi-bin/token", &query, None::<&()>, None)
            })
            .await?;
        Ok(issued.into_token())
    }

    /// Fetches a token from `POST /cgi-bin/stable_token`, bypassing the cache. With
    /// `force_refresh` WeChat issues a new token (limited to 20 a day, 30 s apart).
    pub async fn fetch_stable_token(&self, force_refresh: bool) -> Result<AccessToken, ApiError> {
        #[derive(Serialize)]
        struct Body<'a> {
            grant_type: &'a str,
            appid: &'a str,
            secret: &'a str,
            force_refresh: bool,
        }
        let body = Body {
            grant_type: "client_credential",
            appid: &self.inner.appid,
            secret: self.inner.secret.expose_secret(),
            force_refresh,
        };
        let issued: Issued = self
            .retry_busy(Repeat::Safe, || {
                self.send(
                    Method::POST,
                    "/cgi-bin/stable_token",
                    &[],
                    Some(&body),
                    None,
                )
            })
            .await?;
        Ok(issued.into_token())
    }

    async fn fetch_for(&self, reason: RefreshReason) -> Result<AccessToken, ApiError> {
        match (self.inner.token_endpoint, reason) {
            (TokenEndpoint::Classic, _) => self.fetch_token().await,
            (TokenEndpoint::Stable, RefreshReason::Expiring) => {
                self.fetch_stable_token(false).await
            }
            // A rejected token has usually been superseded (another install on the
            // same appid, an operator's tool forced a refresh): normal mode hands out
            // the current one. Forcing would kill that one at once for everyone who
            // holds it, and they would force back in turn, 20 a day. Force only when
            // WeChat hands back the very token it rejected, or when the rejected
            // token is not known (then normal mode's answer cannot be judged).
            (TokenEndpoint::Stable, RefreshReason::Rejected(Some(rejected))) => {
                let current = self.fetch_stable_token(false).await?;
                if current.secret() == rejected.secret() {
                    tracing::warn!("wechat hands out the token it rejected; forcing a new one");
                    self.fetch_stable_token(true).await
                } else {
                    Ok(current)
                }
            }
            (TokenEndpoint::Stable, RefreshReason::Rejected(None)) => {
                self.fetch_stable_token(true).await
            }
        }
    }

    /// A GET, safe to repeat (a read, or `menu/delete`).
    pub(crate) async fn get<R: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<R, ApiError> {
        self.call(Method::GET, path, query, None::<&()>, Repeat::Safe)
            .await
    }

    /// A POST safe to repeat ([`Repeat::Safe`]); [`Client::post_with`] otherwise.
    pub(crate) async fn post<B: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<R, ApiError> {
        self.post_with(path, body, Repeat::Safe).await
    }

    pub(crate) async fn post_with<B: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        repeat: Repeat,
    ) -> Result<R, ApiError> {
        self.call(Method::POST, path, &[], Some(body), repeat).await
    }

    pub(crate) async fn get_ack(&self, path: &str, query: &[(&str, &str)]) -> Result<(), ApiError> {
        self.get::<Ack>(path, query).await.map(|_| ())
    }

    pub(crate) async fn post_ack<B: Serialize>(
        &self,
        path: &str,
        body: &B,
        repeat: Repeat,
    ) -> Result<(), ApiError> {
        self.post_with::<B, Ack>(path, body, repeat)
            .await
            .map(|_| ())
    }

    /// Makes an authenticated call: token from the source, one refresh-and-retry on a
    /// rejected token, bounded retries on "system busy" if `repeat` allows them.
    #[tracing::instrument(skip_all, fields(appid = %self.inner.appid, path = %path))]
    async fn call<B: Serialize, R: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&B>,
        repeat: Repeat,
    ) -> Result<R, ApiError> {
        let method = &method;
        self.with_token(repeat, |token| async move {
            self.send(method.clone(), path, query, body, Some(&token))
                .await
        })
        .await
    }

    /// Runs `attempt` with the access token: one refresh-and-retry on a rejected
    /// token (WeChat did nothing with it), bounded retries on "system busy" if
    /// `repeat` allows them (every authenticated call, JSON or multipart).
    pub(crate) async fn with_token<R, F, Fut>(
        &self,
        repeat: Repeat,
        mut attempt: F,
    ) -> Result<R, ApiError>
    where
        F: FnMut(AccessToken) -> Fut,
        Fut: Future<Output = Result<R, ApiError>>,
    {
        let mut token_retried = false;
        loop {
            let token = self.access_token().await.map_err(|error| {
                // A token fetch whose answer was lost says nothing about the call,
                // which was never made: callers must not record "may have been sent".
                if error.outcome_unknown() {
                    ApiError::TokenUnavailable(Box::new(error))
                } else {
                    error
                }
            })?;
            let result = self.retry_busy(repeat, || attempt(token.clone())).await;
            match result {
                // An unconfirmed rejection followed a -1 on a keyed call (retry_busy):
                // returned as it is, for its caller to repeat later.
                Err(ApiError::Wechat {
                    code,
                    unconfirmed: false,
                    ..
                }) if code.is_token_rejected() && !token_retried => {
                    // One retry only: a token WeChat rejects twice in a row points at a
                    // configuration problem, and looping would burn the token quota.
                    tracing::warn!(errcode = code.0, "access token rejected; refreshing once");
                    token_retried = true;
                    self.inner
                        .tokens
                        .invalidate(&self.inner.appid, &token)
                        .await?;
                }
                other => return other,
            }
        }
    }

    /// Runs `attempt`, again after a "system busy" answer (with backoff, a bounded
    /// number of times) if it is safe to repeat; a busy answer to a call that is not
    /// is returned `unconfirmed`: WeChat may have carried it out.
    async fn retry_busy<R, F, Fut>(&self, repeat: Repeat, mut attempt: F) -> Result<R, ApiError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<R, ApiError>>,
    {
        let retry = self.inner.busy_retry;
        let mut delay = retry.base_delay;
        let mut tries = 1;
        let mut answered_busy: Option<(ErrCode, String)> = None;
        loop {
            match attempt().await {
                Err(ApiError::Wechat { code, msg, .. })
                    if code.is_busy() && repeat == Repeat::Once =>
                {
                    tracing::warn!(
                        errcode = code.0,
                        %msg,
                        "wechat busy on a call not safe to repeat; not retried, it may have taken effect"
                    );
                    return Err(ApiError::Wechat {
                        code,
                        msg,
                        unconfirmed: true,
                    });
                }
                Err(ApiError::Wechat { code, msg, .. })
                    if code.is_busy() && tries < retry.attempts.max(1) =>
                {
                    tracing::info!(
                        tries,
                        delay_ms = delay.as_millis() as u64,
                        "wechat busy; retrying"
                    );
                    tokio::time::sleep(delay).await;
                    delay = delay.saturating_mul(2);
                    tries += 1;
                    answered_busy = Some((code, msg));
                }
                // Whatever follows a -1 on a keyed call (the repeat refused as too soon,
                // a rejected token, a connection refused) says nothing of that first
                // attempt, which may have gone out: unconfirmed. Not refreshed and
                // repeated here either: the caller repeats it with the same key once
                // WeChat's minute is over.
                Err(error) if repeat == Repeat::Keyed && answered_busy.is_some() => {
                    tracing::warn!(
                        %error,
                        "a keyed call wechat answered busy failed on its repeat; the first attempt may have taken effect"
                    );
                    return Err(match error {
                        ApiError::Wechat { code, msg, .. } => ApiError::Wechat {
                            code,
                            msg,
                            unconfirmed: true,
                        },
                        error if error.outcome_unknown() => error,
                        _ => {
                            let (code, msg) = answered_busy.unwrap_or((ErrCode(-1), String::new()));
                            ApiError::Wechat {
                                code,
                                msg,
                                unconfirmed: true,
                            }
                        }
                    });
                }
                other => return other,
            }
        }
    }

    /// Sends one HTTP request and turns a non-zero `errcode` into [`ApiError::Wechat`].
    async fn send<B: Serialize, R: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&B>,
        token: Option<&AccessToken>,
    ) -> Result<R, ApiError> {
        let bytes = self.send_raw(method, path, query, body, token).await?;
        decode(&bytes)
    }

    /// Posts `body` with the access token (one refresh on a rejected token, busy
    /// retries if `repeat` allows them, as every call) and reads WeChat's answer with
    /// `read`, which sees its error answers too: for a call whose error answer
    /// carries more than `errcode`/`errmsg` (a mass send's 45065 names the send
    /// already taken).
    pub(crate) async fn post_reading<B: Serialize, R>(
        &self,
        path: &str,
        body: &B,
        repeat: Repeat,
        read: impl Fn(&[u8]) -> Result<R, ApiError>,
    ) -> Result<R, ApiError> {
        let read = &read;
        self.with_token(repeat, |token| async move {
            let bytes = self
                .send_raw(Method::POST, path, &[], Some(body), Some(&token))
                .await?;
            read(&bytes)
        })
        .await
    }

    /// Sends one HTTP request and gives the body of its HTTP 200 answer.
    async fn send_raw<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&B>,
        token: Option<&AccessToken>,
    ) -> Result<bytes::Bytes, ApiError> {
        let url = format!("{}{}", self.inner.base_url, path);
        let mut request = self
            .inner
            .http
            .request(method, url)
            .timeout(self.timeout)
            .query(query);
        if let Some(token) = token {
            request = request.query(&[("access_token", token.secret())]);
        }
        if let Some(body) = body {
            // WeChat wants UTF-8 characters unescaped; serde_json already does that.
            request = request.json(body);
        }
        let response = request.send().await.map_err(ApiError::from_reqwest)?;
        let status = response.status();
        if status != reqwest::StatusCode::OK {
            warn_of_redirect(&response);
            return Err(ApiError::Status(status.as_u16()));
        }
        read_body(response).await
    }
}

/// Refuses a base URL that would send the AppSecret and tokens in clear text to
/// another machine: `https://`, or `http://` to a loopback address only (wechat-sim
/// and tests). Only an IP literal counts as loopback; a name could resolve anywhere.
fn check_base_url(base_url: &str) -> Result<(), ApiError> {
    let url = reqwest::Url::parse(base_url)
        .map_err(|e| ApiError::Config(format!("base url {base_url:?}: {e}")))?;
    let loopback = url
        .host_str()
        .map(|host| host.trim_start_matches('[').trim_end_matches(']'))
        .and_then(|host| host.parse::<std::net::IpAddr>().ok())
        .is_some_and(|ip| ip.is_loopback());
    match url.scheme() {
        "https" if url.host().is_some() => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err(ApiError::Config(format!(
            "base url {base_url:?}: plain http is allowed only to a loopback address (127.0.0.1, [::1]); use https"
        ))),
        _ => Err(ApiError::Config(format!(
            "base url {base_url:?} is not https"
        ))),
    }
}

/// Logs a redirect the client did not follow, with where it pointed, for the
/// operator: the call fails as [`ApiError::Status`].
fn warn_of_redirect(response: &reqwest::Response) {
    if response.status().is_redirection() {
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| reqwest::Url::parse(l).ok())
            .and_then(|l| l.host_str().map(str::to_owned));
        tracing::warn!(
            status = response.status().as_u16(),
            location_host = location.as_deref().unwrap_or("-"),
            "wechat api answered a redirect; not followed"
        );
    }
}

/// The largest answer read: WeChat's largest JSON answers (a 10,000-openid user page,
/// a datacube range) are well under 1 MB; a misbehaving proxy's endless body must
/// not take the service's memory.
pub(crate) const MAX_ANSWER_BYTES: usize = 8 * 1024 * 1024;

/// Reads an answer's body, refusing one over [`MAX_ANSWER_BYTES`] (as undecodable:
/// the call was made, its answer cannot be used).
pub(crate) async fn read_body(mut response: reqwest::Response) -> Result<bytes::Bytes, ApiError> {
    let too_large = || {
        ApiError::Decode(format!(
            "answer larger than {MAX_ANSWER_BYTES} bytes, not read"
        ))
    };
    if response
        .content_length()
        .is_some_and(|length| length > MAX_ANSWER_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(ApiError::from_reqwest)? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.into())
}

/// Decodes a WeChat answer: `{errcode != 0, errmsg}` becomes an error, anything else `R`.
fn decode<R: DeserializeOwned>(bytes: &[u8]) -> Result<R, ApiError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| ApiError::Decode(e.to_string()))?;
    if let Some(code) = value.get("errcode").and_then(serde_json::Value::as_i64)
        && code != 0
    {
        let msg = value
            .get("errmsg")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_owned();
        tracing::debug!(errcode = code, errmsg = %msg, "wechat answered an error");
        return Err(ApiError::Wechat {
            code: ErrCode(code),
            msg,
            unconfirmed: false,
        });
    }
    serde_json::from_value(value).map_err(|e| ApiError::Decode(e.to_string()))
}

/// The answer of both token endpoints.
#[derive(serde::Deserialize)]
struct Issued {
    access_token: String,
    expires_in: i64,
}

impl Issued {
    fn into_token(self) -> AccessToken {
        // WeChat says 7200; an absurd figure must neither overflow the date (a panic)
        // nor make every call refresh.
        let lifetime = self.expires_in.clamp(60, 86_400);
        AccessToken::new(
            self.access_token,
            Utc::now() + chrono::Duration::seconds(lifetime),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_answer_larger_than_the_cap_is_refused_with_a_clear_error() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // A "WeChat" whose token answer is valid JSON padded past the cap, without a
        // Content-Length (chunked by closing), so only the reading can stop it.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 4096];
            let _ = socket.read(&mut request).await;
            let pad = "a".repeat(MAX_ANSWER_BYTES);
            let body = format!(r#"{{"access_token":"t","expires_in":7200,"pad":"{pad}"}}"#);
            let head =
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n";
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(body.as_bytes()).await;
        });
        let client = Client::builder(
            "wx_cap",
            "secret".to_owned().into(),
            crate::token::LocalTokenCache::default().into(),
        )
        .base_url(format!("http://127.0.0.1:{port}"))
        .build()
        .unwrap();
        let error = client.fetch_stable_token(false).await.unwrap_err();
        assert!(
            matches!(&error, ApiError::Decode(message) if message.contains("larger than")),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn a_redirect_is_not_followed_so_the_appsecret_stays_with_the_named_host() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // Whatever the second host receives is reported before it answers, so once
        // the call has returned, an empty channel means nothing was sent there.
        let elsewhere = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let elsewhere_port = elsewhere.local_addr().unwrap().port();
        let (received, mut seen) = tokio::sync::mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = elsewhere.accept().await {
                let mut request = vec![0u8; 8192];
                let n = socket.read(&mut request).await.unwrap_or(0);
                let _ = received.send(String::from_utf8_lossy(&request[..n]).into_owned());
                let body = r#"{"access_token":"stolen","expires_in":7200}"#;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            }
        });
        // The named host answers every request with a 307 to the other one, which
        // would make a client resend the stable_token body, AppSecret included.
        let named = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let named_port = named.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = named.accept().await {
                let mut request = vec![0u8; 8192];
                let _ = socket.read(&mut request).await;
                let answer = format!(
                    "HTTP/1.1 307 Temporary Redirect\r\nlocation: http://127.0.0.1:{elsewhere_port}/cgi-bin/stable_token\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            }
        });
        let client = Client::builder(
            "wx_redirect",
            "the-app-secret".to_owned().into(),
            crate::token::LocalTokenCache::default().into(),
        )
        .base_url(format!("http://127.0.0.1:{named_port}"))
        .build()
        .unwrap();

        let result = client.fetch_stable_token(false).await;

        let leaked = seen.try_recv().ok();
        assert!(
            leaked.is_none(),
            "the redirect target received: {leaked:?}; the call gave {result:?}"
        );
        let error = result.unwrap_err();
        assert!(matches!(error, ApiError::Status(307)), "{error:?}");
        assert!(!error.outcome_unknown(), "a redirect carried nothing out");
    }

    #[test]
    fn plain_http_is_refused_unless_the_host_is_a_loopback_address() {
        let build = |base: &str| {
            Client::builder(
                "wx_base",
                "secret".to_owned().into(),
                crate::token::LocalTokenCache::default().into(),
            )
            .base_url(base)
            .build()
        };
        for allowed in [
            DEFAULT_BASE_URL,
            "https://api2.weixin.qq.com/",
            "http://127.0.0.1:9100",
            "http://127.0.0.9:9",
            "http://[::1]:9100",
        ] {
            assert!(build(allowed).is_ok(), "{allowed}");
        }
        for refused in [
            "http://api.weixin.qq.com",
            "http://10.0.0.5:9100",
            "http://localhost:9100",
            "http://127.0.0.1.evil.example",
            "ftp://127.0.0.1",
            "api.weixin.qq.com",
        ] {
            let error = build(refused).unwrap_err();
            assert!(matches!(error, ApiError::Config(_)), "{refused}: {error:?}");
        }
    }

    #[test]
    fn an_absurd_token_lifetime_is_bounded_instead_of_overflowing() {
        let token = |expires_in| {
            Issued {
                access_token: "T".into(),
                expires_in,
            }
            .into_token()
        };
        let long = token(i64::MAX);
        assert!(long.expires_at() <= Utc::now() + chrono::Duration::days(1));
        let short = token(0);
        assert!(short.expires_at() >= Utc::now() + chrono::Duration::seconds(59));
    }

    #[test]
    fn decode_turns_nonzero_errcode_into_a_typed_error() {
        let err = decode::<serde_json::Value>(
            br#"{"errcode":45015,"errmsg":"response out of time limit"}"#,
        )
        .unwrap_err();
        assert_eq!(err.code(), Some(ErrCode::RESPONSE_OUT_OF_TIME));
        assert!(ErrCode::RESPONSE_OUT_OF_TIME.is_limit());
    }

    #[test]
    fn decode_accepts_errcode_zero_and_bodies_without_errcode() {
        assert!(decode::<Ack>(br#"{"errcode":0,"errmsg":"ok"}"#).is_ok());
        let issued: Issued = decode(br#"{"access_token":"T","expires_in":7200}"#).unwrap();
        assert_eq!(issued.access_token, "T");
    }

    #[test]
    fn token_errors_are_the_three_documented_codes() {
        for code in [40001, 40014, 42001] {
            assert!(ErrCode(code).is_token_rejected());
        }
        assert!(!ErrCode::SYSTEM_BUSY.is_token_rejected());
        assert!(ErrCode::SYSTEM_BUSY.is_busy());
    }

    #[test]
    fn client_debug_output_hides_the_secret() {
        let client = Client::builder(
            "wxapp",
            "s3cr3t-value".into(),
            crate::token::LocalTokenCache::default().into(),
        )
        .build()
        .unwrap();
        assert!(!format!("{client:?}").contains("s3cr3t-value"));
    }
}
