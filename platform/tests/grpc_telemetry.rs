//! The gRPC telemetry layer on a real server: every call is counted by method and
//! status code, and its span names the caller's department, never the key.
//!
//! The metrics recorder is process-global, so the tests compare counts before and
//! after their own calls instead of expecting absolute values.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use platform::grpc::{ApiKeys, AuthInterceptor, GrpcTelemetryLayer};
use platform::testing::metric_value;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic_health::ServingStatus;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tracing::field::{Field, Visit};
use tracing::span::{Id, Record};
use tracing_subscriber::layer::{Context, SubscriberExt as _};

const KEY: &str = "telemetry-key-0001";

/// A health service behind the auth interceptor and the telemetry layer, as
/// `ServiceRuntime::serve` stacks them; stopped when the sender is dropped.
async fn serve() -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let keys = ApiKeys::parse(&format!("city-office:viewer:{KEY}")).unwrap();
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", ServingStatus::Serving)
        .await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(
        tonic::transport::Server::builder()
            .layer(GrpcTelemetryLayer::new())
            .add_service(InterceptedService::new(health, AuthInterceptor::new(keys)))
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                let _ = stopped.await;
            }),
    );
    (addr, stop)
}

async fn client(addr: SocketAddr) -> HealthClient<Channel> {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .expect("the server is listening");
    HealthClient::new(channel)
}

fn authenticated(request: HealthCheckRequest) -> tonic::Request<HealthCheckRequest> {
    let mut request = tonic::Request::new(request);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {KEY}").parse().unwrap());
    request
}

/// How many Health/Check calls ended with `code` on the metrics `page`.
fn check_calls(page: &str, code: &str) -> f64 {
    metric_value(
        page,
        "grpc_requests_total",
        &[
            ("service", "grpc.health.v1.Health"),
            ("method", "Check"),
            ("code", code),
        ],
    )
}

#[tokio::test]
async fn calls_are_counted_by_method_and_status_code_whether_or_not_they_pass_auth() {
    let metrics = platform::telemetry::metrics_handle();
    let (addr, _stop) = serve().await;
    let mut client = client(addr).await;
    let before = metrics.render();

    client
        .check(authenticated(HealthCheckRequest::default()))
        .await
        .expect("an authenticated call succeeds");
    let refused = client
        .check(HealthCheckRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);

    let after = metrics.render();
    for code in ["Ok", "Unauthenticated"] {
        assert_eq!(
            check_calls(&after, code) - check_calls(&before, code),
            1.0,
            "one {code} call expected in\n{after}"
        );
    }
    assert!(
        after.contains(
            "grpc_request_seconds_bucket{service=\"grpc.health.v1.Health\",method=\"Check\""
        ),
        "{after}"
    );
}

/// Collects every `department` recorded on a `grpc` span.
#[derive(Clone, Default)]
struct Departments(Arc<Mutex<Vec<String>>>);

impl<S> tracing_subscriber::Layer<S> for Departments
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if ctx.span(id).is_some_and(|span| span.name() == "grpc") {
            values.record(&mut DepartmentVisitor(self.0.clone()));
        }
    }
}

struct DepartmentVisitor(Arc<Mutex<Vec<String>>>);

impl Visit for DepartmentVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "department" {
            self.0.lock().unwrap().push(value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
}

#[tokio::test]
async fn the_call_span_names_the_callers_department_and_never_the_key() {
    let departments = Departments::default();
    // The test's runtime has one thread, so the server's tasks see this subscriber.
    let _subscriber =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(departments.clone()));
    let (addr, _stop) = serve().await;
    let mut client = client(addr).await;

    client
        .check(authenticated(HealthCheckRequest::default()))
        .await
        .expect("an authenticated call succeeds");
    let _ = client.check(HealthCheckRequest::default()).await;

    let recorded = departments.0.lock().unwrap().clone();
    assert_eq!(recorded, ["city-office"]);
}
