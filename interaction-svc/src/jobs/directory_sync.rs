//! The directory bootstrap, run in the background: a pass at start-up (off the
//! start and the reply path: readiness never waits for it), then one every
//! `DIRECTORY_SYNC_INTERVAL`. A failed pass is logged, counted and retried with
//! exponential backoff (1 s doubling, at most 5 minutes or the interval); nothing
//! it meets stops the service. Every replica runs it: the writes are idempotent.

use std::time::Duration;

use platform::shutdown::Drain;
use sqlx::PgPool;

use crate::app::directory::{self as app, SyncReport};
use crate::content::ContentDirectory;
use crate::replies::directory::DirectoryNotifier;

/// The first retry's wait; each further failure doubles it.
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// The longest wait between failed passes.
const MAX_RETRY: Duration = Duration::from_secs(300);

/// What the job needs, built at start-up when `CONTENT_GRPC_URL` is set.
#[derive(Debug, Clone)]
pub struct DirectorySync {
    pub content: ContentDirectory,
    /// The accounts of `WECHAT_ACCOUNTS`.
    pub accounts: Vec<String>,
    pub interval: Duration,
}

/// The wait before the next pass after `failures` failed ones in a row.
fn backoff(failures: u32, interval: Duration) -> Duration {
    let wait = FIRST_RETRY.saturating_mul(1 << failures.saturating_sub(1).min(16));
    wait.min(MAX_RETRY).min(interval)
}

/// Runs passes until the drain begins; a pass in flight is dropped then (its
/// uncommitted transaction rolls back).
pub async fn run(db: PgPool, sync: DirectorySync, notifier: DirectoryNotifier, drain: Drain) {
    tracing::info!(accounts = ?sync.accounts, interval = ?sync.interval, "directory bootstrap from content-svc started");
    // Both outcomes exported from the start: a series first exported at 1 shows no
    // increase, so GovwxDirectorySyncFailing would hold for an hour after a start
    // whose first passes failed.
    for outcome in ["ok", "failed"] {
        metrics::counter!("interaction_directory_sync_total", "outcome" => outcome).increment(0);
    }
    let mut failures: u32 = 0;
    loop {
        let pass = app::bootstrap(&db, &sync.content, &sync.accounts);
        let outcome = tokio::select! {
            () = drain.stopping().cancelled() => break,
            outcome = pass => outcome,
        };
        let ok = match outcome {
            Ok(report) => {
                record(&report);
                if report.changed() {
                    notifier.changed().await;
                }
                report.failed.is_empty()
            }
            Err(error) => {
                tracing::warn!(%error, "directory bootstrap failed; retrying with backoff");
                false
            }
        };
        let wait = if ok {
            metrics::counter!("interaction_directory_sync_total", "outcome" => "ok").increment(1);
            metrics::gauge!("interaction_directory_sync_last_success_seconds")
                .set(chrono::Utc::now().timestamp() as f64);
            failures = 0;
            sync.interval
        } else {
            metrics::counter!("interaction_directory_sync_total", "outcome" => "failed")
                .increment(1);
            failures = failures.saturating_add(1);
            backoff(failures, sync.interval)
        };
        tokio::select! {
            () = drain.stopping().cancelled() => break,
            () = tokio::time::sleep(wait) => {}
        }
    }
    tracing::info!("directory bootstrap stopped");
}

fn record(report: &SyncReport) {
    metrics::counter!("interaction_directory_sync_services_total", "change" => "inserted")
        .increment(report.inserted as u64);
    metrics::counter!("interaction_directory_sync_services_total", "change" => "updated")
        .increment(report.updated as u64);
    metrics::counter!("interaction_directory_sync_services_total", "change" => "retired")
        .increment(report.retired as u64);
    for (account, error) in &report.failed {
        tracing::warn!(account, %error, "directory bootstrap cannot list an account; retrying with backoff");
    }
    tracing::info!(
        listed = report.listed,
        inserted = report.inserted,
        updated = report.updated,
        retired = report.retired,
        failed_accounts = report.failed.len(),
        "directory bootstrap pass done"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_double_from_a_second_up_to_five_minutes_or_the_interval() {
        let hour = Duration::from_secs(3600);
        let waits: Vec<u64> = (1..=10).map(|n| backoff(n, hour).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]);
        assert_eq!(backoff(u32::MAX, hour), MAX_RETRY);
        assert_eq!(backoff(9, Duration::from_secs(10)), Duration::from_secs(10));
    }
}
