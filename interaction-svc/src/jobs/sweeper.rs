//! The deadline sweeper: marks tickets whose acknowledgement or resolution deadline
//! passed as overdue, records it, and escalates them to the supervision office (督办,
//! domain.md §2) by announcing `ticket.overdue`.
//!
//! Every replica sweeps. A ticket is escalated once: one transaction alone locks an
//! unmarked late ticket (see `store::tickets::citizen::lock_overdue`), and it marks
//! it, records the transition and queues the event together.
//!
//! It also warns about unanswered tickets whose citizen's 48-hour window is about to
//! close ([`warn_closing_windows`]; the window is not a deadline), deletes directory
//! answers and decided replies past their use ([`prune_directory_answers`],
//! [`prune_decided_replies`]), removes citizens' data past
//! its retention ([`retain`]) and gives up answers and missed replies a stopped
//! replica left `sending` ([`give_up_stale_sends`], [`give_up_stale_missed_replies`]).

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};
use platform::shutdown::Drain;
use sqlx::PgPool;

use crate::domain::calendar::{CUSTOMER_SERVICE_WINDOW, WINDOW_WARNING};
use crate::domain::retention::{RULE_REQUEST_RETENTION, RetentionPolicy};
use crate::domain::{Deadline, TicketEvent};
use crate::store::tickets::lifecycle::{self, ActionError, Cause};
use crate::store::tickets::{SYSTEM_ACTOR, citizen};
use crate::store::{directory, retention, thread};
use platform::outbox::OutboxSignal;

/// Tickets marked per statement, so a backlog after downtime is taken in bites.
const BATCH: i64 = 500;

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub acknowledge_overdue: usize,
    pub resolve_overdue: usize,
}

impl SweepReport {
    /// Tickets escalated in all.
    pub fn total(&self) -> usize {
        self.acknowledge_overdue + self.resolve_overdue
    }
}

/// Marks every ticket overdue whose deadline passed before `now`, and escalates it
/// to `escalate_to`.
#[tracing::instrument(skip(db))]
pub async fn sweep_once(
    db: &PgPool,
    now: DateTime<Utc>,
    escalate_to: &str,
) -> Result<SweepReport, ActionError> {
    let mut report = SweepReport::default();
    for deadline in [Deadline::Acknowledge, Deadline::Resolve] {
        loop {
            let marked = sweep_batch(db, deadline, now, escalate_to).await?;
            match deadline {
                Deadline::Acknowledge => report.acknowledge_overdue += marked,
                Deadline::Resolve => report.resolve_overdue += marked,
            }
            if marked < BATCH as usize {
                break;
            }
        }
    }
    Ok(report)
}

async fn sweep_batch(
    db: &PgPool,
    deadline: Deadline,
    now: DateTime<Utc>,
    escalate_to: &str,
) -> Result<usize, ActionError> {
    let mut tx = db.begin().await?;
    let overdue = citizen::lock_overdue(&mut tx, deadline, now, BATCH).await?;
    let note = format!(
        "{} deadline passed; escalated to {escalate_to}",
        deadline.as_str()
    );
    for ticket in &overdue {
        // The marking time makes the id unique even if a reopened ticket's deadline
        // is marked again later.
        let event_id = format!(
            "ticket:{}:overdue:{}:{}",
            ticket.id,
            deadline.as_str(),
            now.timestamp_micros()
        );
        let cause = Cause {
            actor: SYSTEM_ACTOR,
            note: &note,
            event_id: Some(&event_id),
            at: now,
        };
        lifecycle::change(&mut tx, ticket, TicketEvent::Overdue(deadline), cause).await?;
        tracing::info!(ticket = %ticket.id, department = %ticket.department, deadline = deadline.as_str(), "ticket overdue, escalated");
    }
    tx.commit().await?;
    if !overdue.is_empty() {
        metrics::counter!("interaction_overdue_total", "deadline" => deadline.as_str())
            .increment(overdue.len() as u64);
    }
    Ok(overdue.len())
}

/// How long a message may stay `sending` before its sender is presumed stopped.
/// Far longer than a customer-service call with its retries (seconds), so a live
/// sender always records its outcome first.
pub const SENDING_TIMEOUT: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// Gives up messages left `sending` since before `now - SENDING_TIMEOUT` by a
/// replica that stopped between calling WeChat and recording the outcome. They are
/// marked failed with a history note, never sent again: the citizen may have
/// them, and a duplicate answer is worse than one the department re-sends
/// knowingly. Returns how many were given up.
#[tracing::instrument(skip(db))]
pub async fn give_up_stale_sends(db: &PgPool, now: DateTime<Utc>) -> Result<usize, sqlx::Error> {
    let mut tx = db.begin().await?;
    let failed = thread::fail_stale(&mut tx, now - SENDING_TIMEOUT).await?;
    tx.commit().await?;
    if failed > 0 {
        tracing::warn!(
            failed,
            "messages left sending by a stopped sender marked failed"
        );
        metrics::counter!("interaction_answers_total", "outcome" => "unknown")
            .increment(failed as u64);
    }
    Ok(failed)
}

/// Tickets warned of a closing window per call.
const WINDOW_BATCH: i64 = 500;

/// Warns about tickets still unanswered whose citizen's 48-hour window closes
/// within [`WINDOW_WARNING`] of `now`: a history note on the ticket and a log line
/// naming the department, once per window. The window is not a deadline (the
/// department is judged on working days, see `domain::calendar`), but an answer
/// after it reaches the citizen only when they write again. Returns how many
/// tickets were warned about. The note gives the closing time in office time
/// (`office`, `INTERACTION_TIMEZONE`), as the desk reads its deadlines.
#[tracing::instrument(skip(db))]
pub async fn warn_closing_windows(
    db: &PgPool,
    now: DateTime<Utc>,
    office: FixedOffset,
) -> Result<usize, sqlx::Error> {
    let mut tx = db.begin().await?;
    let noted = citizen::note_closing_windows(
        &mut tx,
        now,
        CUSTOMER_SERVICE_WINDOW,
        WINDOW_WARNING,
        office,
        WINDOW_BATCH,
    )
    .await?;
    tx.commit().await?;
    for (ticket, department, closes) in &noted {
        tracing::warn!(ticket = %ticket, %department, %closes, "citizen's window closes soon; ticket unanswered");
    }
    if !noted.is_empty() {
        metrics::counter!("interaction_window_closing_total").increment(noted.len() as u64);
    }
    Ok(noted.len())
}

/// How long a directory answer is kept: far beyond the 30-minute follow-up it
/// serves, so a follow-up delivered late (a consumer backlog) still finds it.
pub const DIRECTORY_ANSWER_RETENTION: chrono::TimeDelta = chrono::TimeDelta::days(1);

/// Rows deleted per statement when pruning directory answers and decided replies.
/// A sweep deletes batch after batch while they come back full: one batch a sweep
/// (33 rows/s at the 30 s default) fell behind the consumer's thousands of rows a
/// second, keeping citizens' texts past their retention. Each batch is its own
/// statement, so no transaction or lock outlives a thousand rows.
pub const PRUNE_BATCH: i64 = 1000;

/// Runs `batch` (one statement deleting up to [`PRUNE_BATCH`] rows) until a batch
/// comes back short, or until the drain begins, so a long backlog does not hold up
/// shutdown; the next sweep of a replica still running takes the rest. Returns how
/// many rows were deleted.
async fn prune_in_batches<F, B>(drain: &Drain, mut batch: F) -> Result<u64, sqlx::Error>
where
    F: FnMut() -> B,
    B: Future<Output = Result<u64, sqlx::Error>>,
{
    let mut deleted = 0;
    loop {
        let done = batch().await?;
        deleted += done;
        // Short: nothing older is left (or another replica is taking it).
        if done < PRUNE_BATCH as u64 || drain.is_stopping() {
            return Ok(deleted);
        }
    }
}

/// Deletes directory answers older than [`DIRECTORY_ANSWER_RETENTION`] at `now`,
/// in batches until none is left or the drain begins (idempotent, so every replica
/// may run it). Returns how many were deleted.
#[tracing::instrument(skip(db, drain))]
pub async fn prune_directory_answers(
    db: &PgPool,
    now: DateTime<Utc>,
    drain: &Drain,
) -> Result<u64, sqlx::Error> {
    let before = now - DIRECTORY_ANSWER_RETENTION;
    prune_in_batches(drain, || directory::prune_answers(db, before, PRUNE_BATCH)).await
}

/// How long the reply decided for each callback is kept (`store::decided_replies`):
/// a missed reply's marker comes within seconds, or after a lagging consumer within
/// the marker's wait (about 13 minutes, more after an outage); a day keeps it through an outage of
/// either consumer, and the stream keeps markers a day.
pub const DECIDED_REPLY_RETENTION: chrono::TimeDelta = chrono::TimeDelta::days(1);

/// Deletes decided replies older than [`DECIDED_REPLY_RETENTION`] at `now`, in
/// batches until none is left or the drain begins (idempotent, every replica may run
/// it). Returns how many were deleted.
#[tracing::instrument(skip(db, drain))]
pub async fn prune_decided_replies(
    db: &PgPool,
    now: DateTime<Utc>,
    drain: &Drain,
) -> Result<u64, sqlx::Error> {
    let before = now - DECIDED_REPLY_RETENTION;
    prune_in_batches(drain, || {
        crate::store::decided_replies::prune(db, before, PRUNE_BATCH)
    })
    .await
}

/// Gives up the missed replies (`store::decided_replies`) left `sending` for longer
/// than `timeout` (`MISSED_REPLY_SENDING_TIMEOUT`) at `now`: the replica sending one
/// stopped between committing `sending` and recording WeChat's answer, and a marker
/// redelivered since finds it being sent and sends nothing. WeChat may have
/// delivered it, so it is marked `failed` (outcome unknown), never sent again: the
/// citizen getting the reply twice is worse than missing it. Idempotent, every
/// replica may run it. Returns how many were given up.
#[tracing::instrument(skip(db))]
pub async fn give_up_stale_missed_replies(
    db: &PgPool,
    now: DateTime<Utc>,
    timeout: Duration,
) -> Result<u64, sqlx::Error> {
    let timeout = chrono::TimeDelta::from_std(timeout).unwrap_or(chrono::TimeDelta::MAX);
    let before = now
        .checked_sub_signed(timeout)
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let failed = crate::store::decided_replies::fail_stale(db, before).await?;
    if failed > 0 {
        tracing::warn!(
            failed,
            reason = "outcome unknown",
            "missed replies left sending by a stopped sender marked failed; not sent again"
        );
        metrics::counter!("interaction_missed_replies_total", "outcome" => "unknown")
            .increment(failed);
    }
    Ok(failed)
}

/// Closed tickets anonymised per sweep, in one transaction; the rest wait for the
/// next sweep (a first run over years of tickets is taken in bites of this size).
pub const RETENTION_TICKET_BATCH: i64 = 500;
/// Followers and rule request ids deleted per sweep.
pub const RETENTION_ROW_BATCH: i64 = 1000;

/// What one retention pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Closed tickets whose citizen data was removed, and their messages and
    /// transitions changed.
    pub tickets: retention::Removed,
    /// Followers deleted (with their tags) a while after they unfollowed.
    pub followers: u64,
    pub rule_requests: u64,
}

/// Removes citizens' data past `policy` at `now` (domain::retention): anonymises up
/// to [`RETENTION_TICKET_BATCH`] tickets closed longer than `policy.closed_tickets`,
/// deletes up to [`RETENTION_ROW_BATCH`] followers who unfollowed longer than
/// `policy.unfollowed` ago (not while a ticket of theirs is being handled) and as
/// many create request ids older than [`RULE_REQUEST_RETENTION`]. Rows are locked
/// with `SKIP LOCKED` or deleted idempotently, so every replica may run it.
#[tracing::instrument(skip(db))]
pub async fn retain(
    db: &PgPool,
    now: DateTime<Utc>,
    policy: &RetentionPolicy,
) -> Result<RetentionReport, sqlx::Error> {
    let tickets = retention::anonymise_closed_tickets(
        db,
        now.checked_sub_signed(policy.closed_tickets)
            .unwrap_or(DateTime::<Utc>::MIN_UTC),
        RETENTION_TICKET_BATCH,
    )
    .await?;
    let followers = retention::prune_unfollowed(
        db,
        now.checked_sub_signed(policy.unfollowed)
            .unwrap_or(DateTime::<Utc>::MIN_UTC),
        RETENTION_ROW_BATCH,
    )
    .await?;
    let rule_requests =
        retention::prune_rule_requests(db, now - RULE_REQUEST_RETENTION, RETENTION_ROW_BATCH)
            .await?;
    let report = RetentionReport {
        tickets,
        followers,
        rule_requests,
    };
    if report != RetentionReport::default() {
        tracing::info!(
            tickets = tickets.tickets,
            messages = tickets.messages,
            transitions = tickets.transitions,
            followers,
            rule_requests,
            "citizen data past its retention removed"
        );
        metrics::counter!("interaction_retention_removed_total", "what" => "tickets")
            .increment(tickets.tickets);
        metrics::counter!("interaction_retention_removed_total", "what" => "followers")
            .increment(followers);
        metrics::counter!("interaction_retention_removed_total", "what" => "rule_requests")
            .increment(rule_requests);
    }
    Ok(report)
}

/// Sweeps every `interval` until the drain begins; a missed reply left `sending`
/// longer than `missed_reply_timeout` is given up; times in notes are in `office` time.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    db: PgPool,
    interval: Duration,
    escalate_to: String,
    office: FixedOffset,
    retention: RetentionPolicy,
    missed_reply_timeout: Duration,
    signal: OutboxSignal,
    drain: Drain,
) {
    tracing::info!(?interval, "deadline sweeper started");
    let mut ticks = drain.every(interval);
    while ticks.next().await {
        match sweep_once(&db, Utc::now(), &escalate_to).await {
            Ok(report) if report.total() > 0 => signal.notify(),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "deadline sweep failed; retrying next interval"),
        }
        if let Err(error) = warn_closing_windows(&db, Utc::now(), office).await {
            tracing::warn!(%error, "closing windows not checked; retrying next interval");
        }
        if let Err(error) = prune_directory_answers(&db, Utc::now(), &drain).await {
            tracing::warn!(%error, "old directory answers not pruned; retrying next interval");
        }
        if let Err(error) = prune_decided_replies(&db, Utc::now(), &drain).await {
            tracing::warn!(%error, "old decided replies not pruned; retrying next interval");
        }
        if let Err(error) = retain(&db, Utc::now(), &retention).await {
            tracing::warn!(%error, "citizen data past its retention not removed; retrying next interval");
        }
        if let Err(error) = give_up_stale_sends(&db, Utc::now()).await {
            tracing::warn!(%error, "stale sends not checked; retrying next interval");
        }
        if let Err(error) =
            give_up_stale_missed_replies(&db, Utc::now(), missed_reply_timeout).await
        {
            tracing::warn!(%error, "stale missed replies not checked; retrying next interval");
        }
    }
    tracing::info!("deadline sweeper stopped");
}
