//! Per-RPC telemetry for every gRPC server: `grpc_requests_total{service,method,code}`,
//! `grpc_request_seconds{service,method}` and a `grpc` span around each call, which
//! [`AuthInterceptor`](super::AuthInterceptor) completes with the caller's department.
//!
//! A call is recorded once, when it ends:
//! - at a trailers-only response head (refusals by the interceptor, unknown methods);
//! - otherwise at the trailers that close the response body, unary or streaming alike,
//!   so a server-streaming call (a department's queue watch) is counted when its stream
//!   ends, with its real status, and its duration is the stream's whole life;
//! - as `Cancelled` when the response is dropped before either: the client went away.
//!
//! Labels come from the protobuf descriptors this process serves, never from the raw
//! path: a call to an unknown path is labelled `unknown`, so a scanner cannot grow the
//! metric set without bound.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use prost::Message as _;
use tonic::Code;
use tower::{Layer, Service};
use tracing::Span;

/// Adds per-RPC metrics and a tracing span to a gRPC server:
/// `Server::builder().layer(GrpcTelemetryLayer::new())`.
#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcTelemetryLayer;

impl GrpcTelemetryLayer {
    /// The layer; the known methods are read from the descriptor sets on first use.
    pub fn new() -> Self {
        Self
    }
}

impl<S> Layer<S> for GrpcTelemetryLayer {
    type Service = GrpcTelemetry<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcTelemetry { inner }
    }
}

/// The service [`GrpcTelemetryLayer`] wraps around a gRPC router.
#[derive(Debug, Clone)]
pub struct GrpcTelemetry<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for GrpcTelemetry<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
{
    type Response = http::Response<TelemetryBody<ResBody>>;
    type Error = S::Error;
    type Future = TelemetryFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let rpc = Rpc::of_path(request.uri().path());
        let span = tracing::info_span!(
            "grpc",
            service = rpc.service,
            method = rpc.method,
            department = tracing::field::Empty,
            code = tracing::field::Empty,
        );
        // The router may call the interceptor here or when its future is first polled;
        // the span is entered in both places so the interceptor always finds it current.
        let inner = span.in_scope(|| self.inner.call(request));
        TelemetryFuture {
            inner,
            call: Some(CallRecord {
                rpc,
                span,
                started: Instant::now(),
                recorded: false,
            }),
        }
    }
}

pin_project! {
    /// The response future of [`GrpcTelemetry`].
    pub struct TelemetryFuture<F> {
        #[pin]
        inner: F,
        call: Option<CallRecord>,
    }
}

impl<F, ResBody, E> Future for TelemetryFuture<F>
where
    F: Future<Output = Result<http::Response<ResBody>, E>>,
{
    type Output = Result<http::Response<TelemetryBody<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let polled = match this.call.as_ref() {
            Some(call) => call.span.in_scope(|| this.inner.poll(cx)),
            None => this.inner.poll(cx),
        };
        let result = ready!(polled);
        let call = this.call.take();
        Poll::Ready(match result {
            Ok(response) => {
                let call = match (call, grpc_status(response.headers())) {
                    (Some(call), Some(code)) => {
                        call.finish(code);
                        None
                    }
                    (call, _) => call,
                };
                Ok(response.map(|inner| TelemetryBody { inner, call }))
            }
            Err(error) => {
                if let Some(call) = call {
                    call.finish(Code::Unknown);
                }
                Err(error)
            }
        })
    }
}

pin_project! {
    /// The response body of [`GrpcTelemetry`]: records the call at its trailers.
    pub struct TelemetryBody<B> {
        #[pin]
        inner: B,
        call: Option<CallRecord>,
    }
}

impl<B: Body> Body for TelemetryBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        // A streaming handler's work runs as its body is polled, so it stays in the span.
        let polled = match this.call.as_ref() {
            Some(call) => call.span.in_scope(|| this.inner.poll_frame(cx)),
            None => this.inner.poll_frame(cx),
        };
        let frame = ready!(polled);
        let ended = match &frame {
            Some(Ok(frame)) => frame.trailers_ref().map(grpc_status),
            // A body that fails or ends without a status is an error to the client.
            Some(Err(_)) | None => Some(None),
        };
        if let Some(code) = ended
            && let Some(call) = this.call.take()
        {
            call.finish(code.unwrap_or(Code::Unknown));
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// One call in flight; recorded exactly once, as `Cancelled` if dropped unfinished.
struct CallRecord {
    rpc: Rpc,
    span: Span,
    started: Instant,
    recorded: bool,
}

impl CallRecord {
    fn finish(mut self, code: Code) {
        self.record(code);
    }

    fn record(&mut self, code: Code) {
        if std::mem::replace(&mut self.recorded, true) {
            return;
        }
        let code = code_name(code);
        self.span.record("code", code);
        let Rpc { service, method } = self.rpc;
        metrics::counter!(
            "grpc_requests_total",
            "service" => service,
            "method" => method,
            "code" => code
        )
        .increment(1);
        metrics::histogram!("grpc_request_seconds", "service" => service, "method" => method)
            .record(self.started.elapsed().as_secs_f64());
    }
}

impl Drop for CallRecord {
    fn drop(&mut self) {
        self.record(Code::Cancelled);
    }
}

fn grpc_status(headers: &http::HeaderMap) -> Option<Code> {
    headers
        .get("grpc-status")
        .map(|value| Code::from_bytes(value.as_bytes()))
}

/// The metric label of a status code: its name in the gRPC specification's casing.
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "Ok",
        Code::Cancelled => "Cancelled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

/// The service and method labels of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rpc {
    service: &'static str,
    method: &'static str,
}

impl Rpc {
    const UNKNOWN: Self = Self {
        service: "unknown",
        method: "unknown",
    };

    /// The labels of `/pkg.Service/Method` if this process knows that method.
    fn of_path(path: &str) -> Self {
        known_methods()
            .get(path)
            .map_or(Self::UNKNOWN, |(service, method)| Self {
                service: service.as_str(),
                method: method.as_str(),
            })
    }
}

/// Every method of the services a platform server may serve, by gRPC path.
fn known_methods() -> &'static HashMap<String, (String, String)> {
    static METHODS: OnceLock<HashMap<String, (String, String)>> = OnceLock::new();
    METHODS.get_or_init(|| {
        let sets = [
            proto::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ];
        let mut methods = HashMap::new();
        for set in sets {
            let set = prost_types::FileDescriptorSet::decode(set)
                .expect("the descriptor sets are generated at build time and valid");
            for file in set.file {
                let package = file.package();
                for service in &file.service {
                    let service_name = match package {
                        "" => service.name().to_owned(),
                        package => format!("{package}.{}", service.name()),
                    };
                    for method in &service.method {
                        methods.insert(
                            format!("/{service_name}/{}", method.name()),
                            (service_name.clone(), method.name().to_owned()),
                        );
                    }
                }
            }
        }
        methods
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_come_from_known_methods_only() {
        assert_eq!(
            Rpc::of_path("/grpc.health.v1.Health/Check"),
            Rpc {
                service: "grpc.health.v1.Health",
                method: "Check"
            }
        );
        assert_eq!(
            Rpc::of_path("/interaction.v1.InteractionService/ListTickets").method,
            "ListTickets"
        );
        assert_eq!(
            Rpc::of_path("/interaction.v1.InteractionService/Nope"),
            Rpc::UNKNOWN
        );
        assert_eq!(Rpc::of_path("/wp-login.php"), Rpc::UNKNOWN);
    }

    #[test]
    fn codes_are_named_as_in_the_grpc_specification() {
        assert_eq!(code_name(Code::from_bytes(b"0")), "Ok");
        assert_eq!(code_name(Code::from_bytes(b"16")), "Unauthenticated");
        assert_eq!(code_name(Code::from_bytes(b"garbage")), "Unknown");
    }
}
