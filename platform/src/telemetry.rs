//! Tracing and the Prometheus recorder, initialised once per process.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global tracing subscriber: `RUST_LOG` filters (INFO by default),
/// `format` picks JSON or readable text. A second call does nothing, so tests that
/// start several services in one process may all call it.
pub fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _already_installed = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

/// Installs tracing for tests: silent unless `TEST_LOG` is set.
pub fn init_test_tracing() {
    if std::env::var_os("TEST_LOG").is_some() {
        init_tracing(LogFormat::Pretty);
    }
}

/// Buckets for latencies in seconds, from 100 µs to 10 s: callbacks answer in
/// milliseconds, but WeChat's deadline is 5 s and we must see the tail up to it.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// How often histogram samples are folded into their buckets.
const METRICS_UPKEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// The process-wide Prometheus recorder; installed on first use.
///
/// The recorder keeps every histogram sample until something folds them into the
/// buckets: a scrape of `/metrics` or an upkeep. Without the upkeep thread started
/// here, a process nobody scrapes (Prometheus down, a local run) grows by every
/// latency it records, 8 bytes each: at 1,000 callbacks/s that was most of the
/// services' memory growth in the soak (docs/reliability.md).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(LATENCY_BUCKETS)
                .expect("the bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may exist if an embedding program installed one; then
            // our handle renders only what is recorded through it, which is still safe.
            let _ = metrics::set_global_recorder(recorder);
            let upkeep = handle.clone();
            // A thread, not a task: the handle may be made before (or without) a runtime.
            let _ = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(METRICS_UPKEEP_INTERVAL);
                        upkeep.run_upkeep();
                    }
                });
            handle
        })
        .clone()
}
