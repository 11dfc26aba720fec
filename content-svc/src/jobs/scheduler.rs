//! Sends scheduled articles when they are due. Replicas race safely: a due row is
//! claimed with `FOR UPDATE SKIP LOCKED` and leaves `scheduled` in the same
//! statement, so exactly one replica sends it; an unclaimed row stays due over a
//! restart. Once the drain begins nothing more is claimed, and claimed articles
//! whose send has not begun go back to `scheduled`. A send cut off after its claim
//! (or a publish-now whose caller went away) leaves the article in `publishing`
//! without a WeChat job: after `stuck_after` it is failed, never sent again, so a
//! person checks WeChat before publishing it again.
//! While the database is down every tick fails: the failures are counted
//! (`content_scheduler_failures_total{step}`) and logged through a
//! [`FailureLog`], the first at once, then one line a minute. Once an hour it also
//! forgets create calls' request ids older than their retention
//! (`domain::request::RETENTION_DAYS`).

use std::time::{Duration, Instant};

use platform::shutdown::Drain;

use crate::app::AppError;
use crate::app::articles::Articles;
use platform::failure_log::FailureLog;

/// Articles claimed per tick and replica.
const BATCH: i64 = 20;
/// How often request ids past their retention are deleted: they age by days.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Claims and sends due articles every `interval` until the drain begins, and fails
/// sends whose outcome is unknown after `stuck_after`.
pub async fn run(articles: Articles, interval: Duration, stuck_after: Duration, drain: Drain) {
    // The first claim one interval after start, not at once: a replica starting
    // takes no part until it has been up a moment (and a test that sets a long
    // interval keeps this scheduler out of its own race).
    let mut ticks = drain.every_after(interval);
    let mut log = FailureLog::new("scheduler");
    let mut pruned_at: Option<Instant> = None;
    while ticks.next().await {
        let swept = sweep(&articles, stuck_after).await;
        let sent = send(&articles, &drain).await;
        // After the sends: a first prune after months may take a while.
        let pruned = if pruned_at.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            let pruned = prune(&articles).await;
            if pruned.is_ok() {
                pruned_at = Some(Instant::now());
            }
            pruned
        } else {
            Ok(())
        };
        let failures = [("sweep", swept), ("send", sent), ("prune", pruned)];
        let mut failed = false;
        for (step, outcome) in failures {
            if let Err(error) = outcome {
                metrics::counter!("content_scheduler_failures_total", "step" => step).increment(1);
                log.failure(step, &error, Instant::now());
                failed = true;
            }
        }
        if !failed {
            log.success(Instant::now());
        }
    }
}

/// Fails the sends of unknown outcome: every one found, a batch at a time.
async fn sweep(articles: &Articles, stuck_after: Duration) -> Result<(), AppError> {
    articles.fail_unknown_sends(stuck_after, BATCH).await?;
    Ok(())
}

/// Deletes the request ids past their retention.
async fn prune(articles: &Articles) -> Result<(), AppError> {
    let pruned = crate::app::requests::prune(articles.db()).await?;
    if pruned > 0 {
        tracing::info!(pruned, "request ids past their retention deleted");
    }
    Ok(())
}

/// Claims and sends the due articles, a batch at a time, until the drain begins
/// (checked before each claim and send: claims not yet sent go back on the schedule).
async fn send(articles: &Articles, drain: &Drain) -> Result<(), AppError> {
    // A full batch: more may be due in the same second.
    while articles
        .send_due_unless(BATCH, || drain.is_stopping())
        .await? as i64
        == BATCH
    {}
    Ok(())
}
