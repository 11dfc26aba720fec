//! Asks WeChat about sends whose verdict never came. An article stays in
//! `publishing` until WeChat's job-finish callback (`PUBLISHJOBFINISH`,
//! `MASSSENDJOBFINISH`) says how its job ended; a callback lost on the way (the
//! gateway down past WeChat's retries, a callback URL misconfigured) would leave it
//! there for ever. Every tick this job takes the articles whose job has been with
//! WeChat longer than `after` (`PUBLISH_RECONCILE_AFTER`) and were not asked about
//! within it, asks `freepublish/get` or `message/mass/get`, and applies the answer as
//! the callback would have (`Articles::reconcile_jobs`). It also takes the articles
//! failed as a send whose outcome is unknown that hold a mass send job whose verdict
//! is awaited (a send again met 45065 naming the job of the message as it stood
//! before an article was returned or revised: no callback may ever come for it), on
//! the same terms, for a day at most (`AWAITED_VERDICT_FOR`), and applies WeChat's
//! answer as that job's late `MASSSENDJOBFINISH` would be: published only while the
//! message is still as the job took it, else noted in the trail for a publisher
//! (`left_to_publisher`); a `SEND_FAIL` moves the `clientmsgid` on, the flag kept.
//! Replicas share the work: an article is leased to one for `after`. Each article's
//! result is counted (`content_publish_reconcile_total{channel, result}`); a failing
//! pass (the database down) is counted and logged through a [`FailureLog`].

use std::time::{Duration, Instant};

use platform::failure_log::FailureLog;
use platform::shutdown::Drain;

use crate::app::articles::{Articles, Reconciled};

/// Articles taken per tick and replica.
const BATCH: i64 = 20;
/// The longest wait between two ticks: a lost callback is noticed within
/// `after` plus this.
const MAX_TICK: Duration = Duration::from_secs(60);

/// How often to look for unsettled jobs when they are asked about after `after`.
pub fn tick_for(after: Duration) -> Duration {
    (after / 4).clamp(Duration::from_millis(100), MAX_TICK)
}

/// Looks for jobs without a verdict every [`tick_for`]`(after)` until the drain
/// begins.
pub async fn run(articles: Articles, after: Duration, drain: Drain) {
    let mut ticks = drain.every_after(tick_for(after));
    let mut log = FailureLog::new("publish reconciliation").warnings();
    while ticks.next().await {
        match pass(&articles, after, &drain).await {
            Ok(()) => log.success(Instant::now()),
            Err(error) => {
                metrics::counter!("content_publish_reconcile_failures_total").increment(1);
                log.failure("pass", &error, Instant::now());
            }
        }
    }
}

/// Takes batches until one is not full (more may be waiting) or the drain begins
/// (checked before each job: a batch of slow lookups must not hold the shutdown up).
async fn pass(
    articles: &Articles,
    after: Duration,
    drain: &Drain,
) -> Result<(), crate::app::AppError> {
    loop {
        let results = articles
            .reconcile_jobs(after, BATCH, || drain.is_stopping())
            .await?;
        for result in &results {
            let (channel, result) = match result {
                Reconciled::Settled {
                    published: true,
                    channel,
                } => (*channel, "published"),
                Reconciled::Settled {
                    published: false,
                    channel,
                } => (*channel, "failed"),
                Reconciled::OutcomeUnknown {
                    channel,
                    job_gone: true,
                } => (*channel, "job_unknown"),
                Reconciled::OutcomeUnknown {
                    channel,
                    job_gone: false,
                } => (*channel, "outcome_unknown"),
                Reconciled::StillPublishing { channel } => (*channel, "still_publishing"),
                Reconciled::AlreadySettled { channel } => (*channel, "already_settled"),
                Reconciled::LeftToPublisher { channel, .. } => (*channel, "left_to_publisher"),
                Reconciled::LookupFailed { channel, .. } => (*channel, "lookup_failed"),
            };
            metrics::counter!(
                "content_publish_reconcile_total",
                "channel" => channel,
                "result" => result
            )
            .increment(1);
        }
        if (results.len() as i64) < BATCH || drain.is_stopping() {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tick_is_a_quarter_of_the_age_within_bounds() {
        assert_eq!(tick_for(Duration::from_secs(600)), MAX_TICK);
        assert_eq!(tick_for(Duration::from_secs(4)), Duration::from_secs(1));
        assert_eq!(
            tick_for(Duration::from_millis(1)),
            Duration::from_millis(100)
        );
    }
}
