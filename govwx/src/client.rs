//! Connecting to the services: addresses, TLS and the API key on every request.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Once;
use std::task::{Context, Poll};
use std::time::Duration;

use proto::content::v1::content_service_client::ContentServiceClient;
use proto::content::v1::menu_service_client::MenuServiceClient;
use proto::interaction::v1::interaction_service_client::InteractionServiceClient;
use proto::stats::v1::stats_service_client::StatsServiceClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Uri};

use crate::cli::{Command, Global};
use crate::error::Error;

/// Where a service listens when only `--server` is given.
const INTERACTION_PORT: u16 = 50051;
const CONTENT_PORT: u16 = 50052;
const STATS_PORT: u16 = 50053;

/// How long a connection attempt may take before the server counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A client of one service whose requests carry the API key.
pub type Authed = InterceptedService<Deadline, BearerKey>;

/// A service to connect to.
#[derive(Debug, Clone)]
pub struct Target {
    /// Its name in messages (`interaction-svc`, …).
    pub service: &'static str,
    /// The URL connected to, shown in errors.
    pub addr: String,
    tls: Option<ClientTlsConfig>,
    key: BearerKey,
    /// How long a unary call waits for its answer (`--timeout`).
    timeout: Duration,
    /// Plaintext to another machine is intended (`--plaintext`): no warning.
    plaintext_intended: bool,
    /// For a command whose service calls WeChat before it answers, the command
    /// that shows how the send went ([`crate::cli::Command::sends_through_wechat`]).
    sending_check: Option<String>,
}

impl Target {
    /// Wraps a failed call's status with the service it came from. A call that
    /// waited `--timeout` in vain is DEADLINE_EXCEEDED (tonic reports its own
    /// timer as CANCELLED, which would read as if the caller had stopped it).
    pub fn status(&self, status: tonic::Status) -> Error {
        let status = if timed_out(&status) {
            let mut message = format!("no answer within {}s (--timeout)", self.timeout.as_secs());
            // The server is not told that govwx stopped waiting: a send may go on,
            // and running the command again at once could send twice.
            if let Some(check) = &self.sending_check {
                message.push_str(&format!(
                    "; the server may still be sending to WeChat: check `{check}` before \
                     running it again"
                ));
            }
            tonic::Status::deadline_exceeded(message)
        } else {
            status
        };
        Error::Status {
            service: self.service,
            addr: self.addr.clone(),
            status,
        }
    }

    /// Opens the connection now, so an unreachable server is reported as such.
    /// Every call on it waits at most `--timeout` for its answer.
    pub async fn connect(&self) -> Result<Authed, Error> {
        self.open(Some(self.timeout)).await
    }

    /// [`Target::connect`] for a stream that lasts as long as it is read (`tickets
    /// watch`): no call timeout.
    pub async fn connect_stream(&self) -> Result<Authed, Error> {
        self.open(None).await
    }

    async fn open(&self, timeout: Option<Duration>) -> Result<Authed, Error> {
        let config = |reason: String| {
            Error::Config(format!("{} address {}: {reason}", self.service, self.addr))
        };
        let mut endpoint = Endpoint::from_shared(self.addr.clone())
            .map_err(|_| config("not a valid address".into()))?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true);
        // Bounds the wait for the answer's headers, which a tonic server sends with
        // a unary answer once its handler is done: a server that accepts and stalls
        // fails the call instead of hanging it. The body's wait is `Deadline`'s. No
        // grpc-timeout header is sent, so the server finishes what it started (a
        // retry with the request id finds it).
        if let Some(timeout) = timeout {
            endpoint = endpoint.timeout(timeout);
        }
        if self.tls.is_none() && !self.plaintext_intended && !is_local(&self.addr) {
            warn_plaintext(&self.addr);
        }
        if let Some(tls) = &self.tls {
            endpoint = endpoint
                .tls_config(tls.clone())
                .map_err(|e| config(root_cause(&e)))?;
        }
        let channel = endpoint.connect().await.map_err(|e| Error::Unreachable {
            service: self.service,
            addr: self.addr.clone(),
            reason: root_cause(&e),
        })?;
        let channel = Deadline {
            inner: channel,
            timeout,
        };
        Ok(InterceptedService::new(channel, self.key.clone()))
    }

    /// A connected interaction-svc client.
    pub async fn interaction(&self) -> Result<InteractionServiceClient<Authed>, Error> {
        Ok(InteractionServiceClient::new(self.connect().await?))
    }

    /// An interaction-svc client for `tickets watch` (no call timeout).
    pub async fn interaction_stream(&self) -> Result<InteractionServiceClient<Authed>, Error> {
        Ok(InteractionServiceClient::new(self.connect_stream().await?))
    }

    /// A connected content-svc client.
    pub async fn content(&self) -> Result<ContentServiceClient<Authed>, Error> {
        Ok(ContentServiceClient::new(self.connect().await?))
    }

    /// A connected content-svc menu client.
    pub async fn menu(&self) -> Result<MenuServiceClient<Authed>, Error> {
        Ok(MenuServiceClient::new(self.connect().await?))
    }

    /// A connected stats-svc client.
    pub async fn stats(&self) -> Result<StatsServiceClient<Authed>, Error> {
        Ok(StatsServiceClient::new(self.connect().await?))
    }
}

/// The three services' targets, from the global options.
pub struct Targets {
    global_tls: Option<ClientTlsConfig>,
    key: BearerKey,
    timeout: Duration,
    plaintext_intended: bool,
    sending_check: Option<String>,
}

impl Targets {
    /// Reads the key and the CA file; the addresses are resolved per service.
    /// `command` decides how long a call waits without `--timeout`, and what a call
    /// that got no answer in time says (see [`Command::sends_through_wechat`]).
    pub fn new(global: &Global, command: &Command) -> Result<Self, Error> {
        let key = BearerKey::load(global)?;
        let global_tls = match &global.ca_file {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    Error::Config(format!("cannot read --ca-file {}: {e}", path.display()))
                })?;
                Some(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)))
            }
            None if global.tls => Some(ClientTlsConfig::new().with_webpki_roots()),
            None => None,
        };
        Ok(Self {
            global_tls,
            key,
            timeout: Duration::from_secs(command.timeout_secs(global.timeout)),
            plaintext_intended: global.plaintext,
            sending_check: command.sends_through_wechat(),
        })
    }

    fn target(
        &self,
        service: &'static str,
        global: &Global,
        own: Option<&str>,
        port: u16,
    ) -> Target {
        let given = own.map_or_else(|| format!("{}:{port}", global.server), str::to_owned);
        let https = given.starts_with("https://");
        let tls = match (&self.global_tls, https) {
            (Some(tls), _) => Some(tls.clone()),
            (None, true) => Some(ClientTlsConfig::new().with_webpki_roots()),
            (None, false) => None,
        };
        let addr = if given.contains("://") {
            given
        } else if tls.is_some() {
            format!("https://{given}")
        } else {
            format!("http://{given}")
        };
        Target {
            service,
            addr,
            tls,
            key: self.key.clone(),
            timeout: self.timeout,
            plaintext_intended: self.plaintext_intended,
            sending_check: self.sending_check.clone(),
        }
    }

    /// interaction-svc.
    pub fn interaction(&self, global: &Global) -> Target {
        let own = global.interaction_addr.as_deref();
        self.target("interaction-svc", global, own, INTERACTION_PORT)
    }

    /// content-svc.
    pub fn content(&self, global: &Global) -> Target {
        let own = global.content_addr.as_deref();
        self.target("content-svc", global, own, CONTENT_PORT)
    }

    /// stats-svc.
    pub fn stats(&self, global: &Global) -> Target {
        let own = global.stats_addr.as_deref();
        self.target("stats-svc", global, own, STATS_PORT)
    }
}

/// A channel whose calls end `timeout` after they start, the answer's body
/// included: the endpoint's own timeout ends only the wait for the headers, and a
/// proxy that sends them and then stalls the body would hang the call. `None` (a
/// stream such as `tickets watch`) has no end.
#[derive(Clone, Debug)]
pub struct Deadline {
    inner: Channel,
    timeout: Option<Duration>,
}

impl tower::Service<http::Request<tonic::body::Body>> for Deadline {
    type Response = http::Response<tonic::body::Body>;
    type Error = <Channel as tower::Service<http::Request<tonic::body::Body>>>::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        tower::Service::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let end = self
            .timeout
            .map(|timeout| tokio::time::Instant::now() + timeout);
        let call = tower::Service::call(&mut self.inner, request);
        Box::pin(async move {
            let response = call.await?;
            Ok(match end {
                Some(end) => response.map(|body| {
                    tonic::body::Body::new(DeadlineBody {
                        inner: body,
                        end: Box::pin(tokio::time::sleep_until(end)),
                    })
                }),
                None => response,
            })
        })
    }
}

/// An answer's body that fails once its call's time is up, as tonic's own timer
/// does (`TimeoutExpired`), so it reads as `--timeout` passing.
struct DeadlineBody {
    inner: tonic::body::Body,
    end: Pin<Box<tokio::time::Sleep>>,
}

impl http_body::Body for DeadlineBody {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        // The time first: a body that trickles would otherwise never end.
        if this.end.as_mut().poll(cx).is_ready() {
            let expired = tonic::Status::from_error(Box::new(tonic::TimeoutExpired(())));
            return Poll::Ready(Some(Err(expired)));
        }
        Pin::new(&mut this.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Adds `authorization: Bearer <key>` to every request. The value is marked
/// sensitive, so tonic's and hyper's debug output never shows it.
#[derive(Clone)]
pub struct BearerKey(MetadataValue<Ascii>);

impl std::fmt::Debug for BearerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerKey(..)")
    }
}

impl BearerKey {
    /// The key from `--key-file`, else `GOVWX_API_KEY`. Messages never include it.
    fn load(global: &Global) -> Result<Self, Error> {
        let (key, source) = match &global.key_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    Error::Config(format!("cannot read --key-file {}: {e}", path.display()))
                })?;
                (text, "--key-file")
            }
            None => match std::env::var("GOVWX_API_KEY") {
                Ok(key) => (key, "GOVWX_API_KEY"),
                Err(_) => {
                    return Err(Error::Config(
                        "no API key: set GOVWX_API_KEY or pass --key-file FILE".into(),
                    ));
                }
            },
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(Error::Config(format!("the API key in {source} is empty")));
        }
        let mut value: MetadataValue<Ascii> = format!("Bearer {key}").parse().map_err(|_| {
            Error::Config(format!(
                "the API key in {source} holds characters a header cannot carry"
            ))
        })?;
        value.set_sensitive(true);
        Ok(Self(value))
    }
}

impl Interceptor for BearerKey {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// Whether a call failed because its `--timeout` passed: tonic's timer
/// (`TimeoutExpired`) is in the status's sources.
fn timed_out(status: &tonic::Status) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(error) = cause {
        if error.is::<tonic::TimeoutExpired>() {
            return true;
        }
        cause = error.source();
    }
    false
}

/// Whether `addr` (a URL) names this machine: a loopback address or `localhost`,
/// where plaintext never leaves it.
fn is_local(addr: &str) -> bool {
    let Ok(uri) = addr.parse::<Uri>() else {
        return false;
    };
    let Some(host) = uri.host() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.to_ascii_lowercase().ends_with(".localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Says once, on stderr, that the key is about to cross the network in clear. A
/// warning rather than a refusal: plaintext inside a cluster's own network is a
/// choice some installs make (`--plaintext` says so and silences this).
fn warn_plaintext(addr: &str) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        eprintln!(
            "govwx: warning: {addr} is not on this machine and the connection is not \
             TLS: the API key goes in clear (use --tls or --ca-file; --plaintext if this \
             is intended)"
        );
    });
}

/// The innermost cause of a transport error ("Connection refused", not "transport error").
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_and_localhost_count_as_this_machine() {
        for local in [
            "http://127.0.0.1:50051",
            "http://127.8.9.1:50051",
            "http://localhost:50051",
            "http://[::1]:50051",
            "http://api.localhost:50051",
        ] {
            assert!(is_local(local), "{local}");
        }
        for remote in [
            "http://10.1.2.3:50051",
            "http://192.168.0.9:50051",
            "http://interaction-svc.gov.svc:50051",
            "http://[fd00::1]:50051",
            "http://0.0.0.0:50051",
            "http://localhost.example.com:50051",
        ] {
            assert!(!is_local(remote), "{remote}");
        }
    }

    #[test]
    fn tonics_own_timer_reads_as_a_deadline_exceeded() {
        let timer = tonic::Status::from_error(Box::new(tonic::TimeoutExpired(())));
        assert!(timed_out(&timer));
        assert!(!timed_out(&tonic::Status::cancelled("stopped")));
    }
}
