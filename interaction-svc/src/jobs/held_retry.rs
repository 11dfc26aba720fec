//! Retries held answers whose flush met a transient WeChat failure (busy, rate
//! limit, unreachable, the token cache timing out) while the citizen's window was
//! open. Without it such an answer went out only if the citizen wrote again or the
//! department answered again, and never if neither happened before the 48-hour
//! window closed.
//!
//! Every replica runs it: a pass leases the due messages' rows (`FOR UPDATE SKIP
//! LOCKED`, retry time pushed a lease ahead) and the flush claims them (`held` →
//! `sending`) before WeChat is called, so none is sent twice.

use std::time::Duration;

use chrono::Utc;
use platform::shutdown::Drain;

use crate::app::Tickets;
use crate::delivery::Deliverer;

/// Held messages (and so at most as many citizens) taken per pass; the rest wait
/// for the next pass, so a backlog after a WeChat outage is taken in bites.
pub const BATCH: i64 = 100;

/// Retries what is due every `interval` until the drain begins, and asks the
/// rating questions closes left unasked (`Tickets::ask_owed_rating_questions`: a
/// close's question task a drain cut off), each once, whichever replica passes.
pub async fn run(deliverer: Deliverer, tickets: Tickets, interval: Duration, drain: Drain) {
    tracing::info!(?interval, "held-answer retry started");
    let mut ticks = drain.every(interval);
    while ticks.next().await {
        match deliverer.retry_held(Utc::now(), BATCH, &drain).await {
            Ok(report) if report.citizens > 0 => {
                tracing::info!(
                    citizens = report.citizens,
                    sent = report.sent,
                    "held answers retried"
                )
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, "held-answer retry failed; retrying next interval")
            }
        }
        if drain.is_stopping() {
            break;
        }
        if let Err(error) = tickets.ask_owed_rating_questions(Utc::now(), BATCH).await {
            tracing::warn!(%error, "owed rating questions not looked for; retrying next interval");
        }
    }
    tracing::info!("held-answer retry stopped");
}
