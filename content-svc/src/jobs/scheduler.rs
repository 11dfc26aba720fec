//! Sends scheduled articles when they are due. Replicas race safely: a due row is
//! claimed with `FOR UPDATE SKIP LOCKED` and leaves `scheduled` in the same
//! statement, so exactly one replica sends it; an unclaimed row stays due over a
//! restart. A send cut off after its claim (or a publish-now whose caller went away)
//! leaves the article in `publishing` without a WeChat job: after `stuck_after` it is
//! failed, never sent again, so a person checks WeChat before publishing it again.

use std::time::Duration;

use platform::shutdown::Drain;

use crate::app::articles::Articles;

/// Articles claimed per tick and replica.
const BATCH: i64 = 20;

/// Claims and sends due articles every `interval` until the drain begins, and fails
/// sends whose outcome is unknown after `stuck_after`.
pub async fn run(articles: Articles, interval: Duration, stuck_after: Duration, drain: Drain) {
    // The first claim one interval after start, not at once: a replica starting
    // takes no part until it has been up a moment (and a test that sets a long
    // interval keeps this scheduler out of its own race).
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = drain.stopping().cancelled() => break,
            _ = tick.tick() => {}
        }
        loop {
            match articles.fail_unknown_sends(stuck_after, BATCH).await {
                Ok(n) if n as i64 == BATCH => continue,
                Ok(_) => break,
                Err(error) => {
                    tracing::error!(%error, "failing unknown sends failed");
                    break;
                }
            }
        }
        loop {
            match articles.send_due(BATCH).await {
                // A full batch: more may be due in the same second.
                Ok(n) if n as i64 == BATCH => continue,
                Ok(_) => break,
                Err(error) => {
                    tracing::error!(%error, "scheduler tick failed");
                    break;
                }
            }
        }
    }
}
