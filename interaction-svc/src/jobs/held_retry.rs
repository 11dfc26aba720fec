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

/// Owed rating questions asked per pass at most. Each may wait for the ticket's
/// turn (20 s) and then WeChat (25 s): after a rolling update left many owed, a
/// pass asks a bite of them and the next pass the next bite.
pub const LATE_QUESTIONS_PER_PASS: i64 = 10;

/// Retries what is due every `interval` until the drain begins, and asks the
/// rating questions closes left unasked (`Tickets::ask_owed_rating_questions`: a
/// close's question task a drain cut off), each once, whichever replica passes.
///
/// The questions are asked beside the retry, in a task of their own (one at a
/// time: a pass starts none while the last is still asking), so a slow WeChat
/// answering them one after another never holds up the held answers, which are
/// what a citizen is waiting for. The job ends after that task: it stops between
/// tickets once the drain begins.
pub async fn run(deliverer: Deliverer, tickets: Tickets, interval: Duration, drain: Drain) {
    tracing::info!(?interval, "held-answer retry started");
    let mut ticks = drain.every(interval);
    let mut asking: Option<tokio::task::JoinHandle<()>> = None;
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
        if asking.as_ref().is_none_or(|task| task.is_finished()) {
            asking = Some(tokio::spawn(ask_owed(tickets.clone())));
        }
    }
    if let Some(task) = asking
        && let Err(error) = task.await
    {
        tracing::error!(%error, "owed rating questions task failed");
    }
    tracing::info!("held-answer retry stopped");
}

async fn ask_owed(tickets: Tickets) {
    if let Err(error) = tickets
        .ask_owed_rating_questions(Utc::now(), LATE_QUESTIONS_PER_PASS)
        .await
    {
        tracing::warn!(%error, "owed rating questions not looked for; retrying next interval");
    }
}
