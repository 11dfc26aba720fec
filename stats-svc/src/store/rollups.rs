//! Daily counters (`daily_counts`) and per-ticket times (`ticket_times`).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{PgPool, Postgres, Transaction};

use crate::domain::AccountId;
use crate::domain::rollup::{Tally, TicketFact};

/// Adds `tallies` to their counters in one statement (summed per counter first, since
/// one statement may not update a row twice).
pub async fn add(tx: &mut Transaction<'_, Postgres>, tallies: &[Tally]) -> Result<(), sqlx::Error> {
    let mut sums: BTreeMap<(&str, NaiveDate, &str, &str), i64> = BTreeMap::new();
    for t in tallies {
        *sums
            .entry((t.account.as_str(), t.day, t.metric.as_str(), t.key.as_str()))
            .or_default() += t.value;
    }
    if sums.is_empty() {
        return Ok(());
    }
    let mut accounts = Vec::with_capacity(sums.len());
    let mut days = Vec::with_capacity(sums.len());
    let mut metrics = Vec::with_capacity(sums.len());
    let mut keys = Vec::with_capacity(sums.len());
    let mut values = Vec::with_capacity(sums.len());
    for ((account, day, metric, key), value) in sums {
        accounts.push(account);
        days.push(day);
        metrics.push(metric);
        keys.push(key);
        values.push(value);
    }
    sqlx::query(
        "INSERT INTO daily_counts (account, day, metric, key, value)
         SELECT * FROM unnest($1::text[], $2::date[], $3::text[], $4::text[], $5::bigint[])
         ON CONFLICT (account, day, metric, key)
         DO UPDATE SET value = daily_counts.value + EXCLUDED.value",
    )
    .bind(accounts)
    .bind(days)
    .bind(metrics)
    .bind(keys)
    .bind(values)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Folds one ticket change into the ticket's row: each step keeps its earliest time
/// (and each missed deadline its latest too, the current round's),
/// the deadlines are those of the earliest change carrying them (the first round's,
/// which the first acknowledgement and close are judged by; a reopen brings new
/// ones), and the department follows the newest change, so the order events arrive
/// in does not matter.
pub async fn record_ticket(
    tx: &mut Transaction<'_, Postgres>,
    fact: &TicketFact,
) -> Result<(), sqlx::Error> {
    use proto::events::v1::{TicketChangeKind as K, TicketDeadline};
    let at = |kind: K| (fact.kind == kind).then_some(fact.occurred_at);
    let missed = |deadline: TicketDeadline| {
        (fact.kind == K::Overdue && fact.deadline == deadline).then_some(fact.occurred_at)
    };
    let moved_by = (fact.kind == K::Assigned
        && !fact.previous_department.is_empty()
        && fact.previous_department != fact.department)
        .then_some(fact.previous_department.as_str());
    sqlx::query(
        "INSERT INTO ticket_times (account, ticket_id, department, department_at, opened_at,
             acknowledged_at, answered_at, closed_at, acknowledge_due_at, resolve_due_at,
             overdue_count, rating, last_closed_at, last_reopened_at, deadlines_at,
             acknowledged_by, closed_by, acknowledge_missed_at, acknowledge_missed_by,
             resolve_missed_at, resolve_missed_by, moved_away_by, moved_away_at, moved_in_at,
             moved_in_by, last_acknowledge_missed_at, last_resolve_missed_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $8, $13, $14,
                 CASE WHEN $6::timestamptz IS NULL THEN NULL ELSE $3 END,
                 CASE WHEN $8::timestamptz IS NULL THEN NULL ELSE $3 END,
                 $15, CASE WHEN $15::timestamptz IS NULL THEN NULL ELSE $3 END,
                 $16, CASE WHEN $16::timestamptz IS NULL THEN NULL ELSE $3 END,
                 $17, CASE WHEN $17::text IS NULL THEN NULL ELSE $4 END,
                 CASE WHEN $17::text IS NULL THEN NULL ELSE $4 END, $17, $15, $16)
         ON CONFLICT (account, ticket_id) DO UPDATE SET
             department = CASE WHEN ticket_times.department_at IS NULL
                                 OR EXCLUDED.department_at >= ticket_times.department_at
                               THEN EXCLUDED.department ELSE ticket_times.department END,
             department_at = GREATEST(ticket_times.department_at, EXCLUDED.department_at),
             opened_at = LEAST(ticket_times.opened_at, EXCLUDED.opened_at),
             acknowledged_by = CASE WHEN EXCLUDED.acknowledged_at < ticket_times.acknowledged_at
                                         OR ticket_times.acknowledged_at IS NULL
                                    THEN COALESCE(EXCLUDED.acknowledged_by, ticket_times.acknowledged_by)
                                    ELSE ticket_times.acknowledged_by END,
             closed_by = CASE WHEN EXCLUDED.closed_at < ticket_times.closed_at
                                   OR ticket_times.closed_at IS NULL
                              THEN COALESCE(EXCLUDED.closed_by, ticket_times.closed_by)
                              ELSE ticket_times.closed_by END,
             acknowledge_missed_by = CASE WHEN EXCLUDED.acknowledge_missed_at < ticket_times.acknowledge_missed_at
                                               OR ticket_times.acknowledge_missed_at IS NULL
                                          THEN COALESCE(EXCLUDED.acknowledge_missed_by, ticket_times.acknowledge_missed_by)
                                          ELSE ticket_times.acknowledge_missed_by END,
             acknowledge_missed_at = LEAST(ticket_times.acknowledge_missed_at, EXCLUDED.acknowledge_missed_at),
             resolve_missed_by = CASE WHEN EXCLUDED.resolve_missed_at < ticket_times.resolve_missed_at
                                           OR ticket_times.resolve_missed_at IS NULL
                                      THEN COALESCE(EXCLUDED.resolve_missed_by, ticket_times.resolve_missed_by)
                                      ELSE ticket_times.resolve_missed_by END,
             resolve_missed_at = LEAST(ticket_times.resolve_missed_at, EXCLUDED.resolve_missed_at),
             -- The latest miss of each deadline: `escalated_twice` asks whether both
             -- were missed after the last reopen (this round's deadlines).
             last_acknowledge_missed_at = GREATEST(ticket_times.last_acknowledge_missed_at,
                                                   EXCLUDED.last_acknowledge_missed_at),
             last_resolve_missed_at = GREATEST(ticket_times.last_resolve_missed_at,
                                               EXCLUDED.last_resolve_missed_at),
             moved_away_by = CASE WHEN EXCLUDED.moved_away_at < ticket_times.moved_away_at
                                       OR ticket_times.moved_away_at IS NULL
                                  THEN COALESCE(EXCLUDED.moved_away_by, ticket_times.moved_away_by)
                                  ELSE ticket_times.moved_away_by END,
             moved_away_at = LEAST(ticket_times.moved_away_at, EXCLUDED.moved_away_at),
             moved_in_by = CASE WHEN EXCLUDED.moved_in_at > ticket_times.moved_in_at
                                     OR ticket_times.moved_in_at IS NULL
                                THEN COALESCE(EXCLUDED.moved_in_by, ticket_times.moved_in_by)
                                ELSE ticket_times.moved_in_by END,
             moved_in_at = GREATEST(ticket_times.moved_in_at, EXCLUDED.moved_in_at),
             acknowledged_at = LEAST(ticket_times.acknowledged_at, EXCLUDED.acknowledged_at),
             answered_at = LEAST(ticket_times.answered_at, EXCLUDED.answered_at),
             closed_at = LEAST(ticket_times.closed_at, EXCLUDED.closed_at),
             acknowledge_due_at = CASE WHEN ticket_times.deadlines_at IS NULL
                                         OR EXCLUDED.deadlines_at < ticket_times.deadlines_at
                                       THEN COALESCE(EXCLUDED.acknowledge_due_at, ticket_times.acknowledge_due_at)
                                       ELSE ticket_times.acknowledge_due_at END,
             resolve_due_at = CASE WHEN ticket_times.deadlines_at IS NULL
                                     OR EXCLUDED.deadlines_at < ticket_times.deadlines_at
                                   THEN COALESCE(EXCLUDED.resolve_due_at, ticket_times.resolve_due_at)
                                   ELSE ticket_times.resolve_due_at END,
             deadlines_at = LEAST(ticket_times.deadlines_at, EXCLUDED.deadlines_at),
             overdue_count = ticket_times.overdue_count + EXCLUDED.overdue_count,
             rating = COALESCE(EXCLUDED.rating, ticket_times.rating),
             last_closed_at = GREATEST(ticket_times.last_closed_at, EXCLUDED.last_closed_at),
             last_reopened_at = GREATEST(ticket_times.last_reopened_at, EXCLUDED.last_reopened_at)",
    )
    .bind(fact.account.as_str())
    .bind(&fact.ticket_id)
    .bind(&fact.department)
    .bind(fact.occurred_at)
    .bind(fact.opened_at.or(at(K::Opened)))
    // A reply or a close straight from `open` is the acknowledgement too
    // (interaction-svc sends no separate ACKNOWLEDGED for either: whoever closed a
    // duplicate or spam has seen it); the earliest wins.
    .bind(at(K::Acknowledged).or(at(K::Replied)).or(at(K::Closed)))
    .bind(at(K::Replied))
    .bind(at(K::Closed))
    .bind(fact.acknowledge_due_at)
    .bind(fact.resolve_due_at)
    .bind(i32::from(fact.kind == K::Overdue))
    .bind(fact.rating.map(i16::from))
    .bind(at(K::Reopened))
    .bind(
        (fact.acknowledge_due_at.is_some() || fact.resolve_due_at.is_some())
            .then_some(fact.occurred_at),
    )
    .bind(missed(TicketDeadline::Acknowledge))
    .bind(missed(TicketDeadline::Resolve))
    // A move (退单改派): the department it left, at the change's time.
    .bind(moved_by)
    .execute(&mut **tx)
    .await?;
    if let Some(moved_by) = moved_by {
        // Each move on its own row: the row above keeps the first and the last only.
        sqlx::query(
            "INSERT INTO ticket_moves (account, ticket_id, moved_at, moved_by)
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(fact.account.as_str())
        .bind(&fact.ticket_id)
        .bind(fact.occurred_at)
        .bind(moved_by)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Folds a batch's ticket changes into their rows ([`record_ticket`]), taking the rows
/// in one order, by account and ticket id, whatever order the changes came in: the
/// consumer's lanes have no order key, so two batches may hold the same tickets, and
/// in stream order one could hold t2 and wait for t1 while the other held t1 and waited
/// for t2 (a deadlock, a batch rolled back and redelivered). The fold is
/// order-independent, so the order is free to choose.
pub async fn record_tickets(
    tx: &mut Transaction<'_, Postgres>,
    mut facts: Vec<TicketFact>,
) -> Result<(), sqlx::Error> {
    facts.sort_by(|a, b| (&a.account, &a.ticket_id).cmp(&(&b.account, &b.ticket_id)));
    for fact in &facts {
        record_ticket(tx, fact).await?;
    }
    Ok(())
}

/// One counter's value on one day.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DailyValue {
    pub day: NaiveDate,
    pub key: String,
    pub value: i64,
}

/// The values of `metric` for `account` from `from` to `to` (inclusive), by day and key.
pub async fn series(
    db: &PgPool,
    account: &AccountId,
    metric: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<DailyValue>, sqlx::Error> {
    sqlx::query_as(
        "SELECT day, key, value FROM daily_counts
          WHERE account = $1 AND metric = $2 AND day BETWEEN $3 AND $4
          ORDER BY day, key",
    )
    .bind(account.as_str())
    .bind(metric)
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await
}

/// The sum of `metric` for `account` before `day` (the base of a cumulative series).
pub async fn total_before(
    db: &PgPool,
    account: &AccountId,
    metric: &str,
    day: NaiveDate,
    key: Option<&str>,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT COALESCE(sum(value), 0)::bigint FROM daily_counts
          WHERE account = $1 AND metric = $2 AND day < $3 AND ($4::text IS NULL OR key = $4)",
    )
    .bind(account.as_str())
    .bind(metric)
    .bind(day)
    .bind(key)
    .fetch_one(db)
    .await
}

/// Per-department sums of every ticket metric over a range of days.
pub async fn department_sums(
    db: &PgPool,
    account: &AccountId,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT key, metric, sum(value)::bigint FROM daily_counts
          WHERE account = $1 AND day BETWEEN $2 AND $3
            AND (metric LIKE 'tickets_%' OR metric = 'rating_sum')
          GROUP BY key, metric ORDER BY key, metric",
    )
    .bind(account.as_str())
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await
}

/// A ticket's step times, for response times and deadline compliance.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TicketTimes {
    /// The owner now.
    pub department: String,
    /// Who acknowledged and who closed it; who owned it when each deadline passed.
    pub acknowledged_by: Option<String>,
    pub closed_by: Option<String>,
    pub acknowledge_missed_by: Option<String>,
    pub resolve_missed_by: Option<String>,
    pub opened_at: Option<DateTime<Utc>>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub acknowledge_due_at: Option<DateTime<Utc>>,
    pub resolve_due_at: Option<DateTime<Utc>>,
    /// When each deadline first went unmet (the sweeper's escalation); `None` also
    /// for rows folded before these were kept, whose `overdue_count` has no time.
    pub acknowledge_missed_at: Option<DateTime<Utc>>,
    pub resolve_missed_at: Option<DateTime<Utc>>,
    pub overdue_count: i32,
    /// The first move of the ticket to another department (退单改派): the department
    /// it left and when; and when the last move happened (the one that gave it to
    /// `department`). `None` for a ticket never moved, or moved before these were kept.
    pub moved_away_by: Option<String>,
    pub moved_away_at: Option<DateTime<Utc>>,
    pub moved_in_at: Option<DateTime<Utc>>,
    /// The department the last move left (`moved_away_by` for a ticket moved once);
    /// `None` also for rows written before it was kept.
    pub moved_in_by: Option<String>,
    /// Every move kept one by one (migration 0027), in time order: when, and the
    /// department it left. Empty for a ticket never moved, or moved before then.
    pub moves_at: Vec<DateTime<Utc>>,
    pub moves_by: Vec<String>,
}

impl TicketTimes {
    /// [`Self::moves_at`] with [`Self::moves_by`]: each move's time and the
    /// department it left.
    pub fn moves(&self) -> impl Iterator<Item = (DateTime<Utc>, &str)> {
        self.moves_at
            .iter()
            .copied()
            .zip(self.moves_by.iter().map(String::as_str))
    }
}

/// The tickets of `account` opened in `[from, until)`.
pub async fn tickets_opened(
    db: &PgPool,
    account: &AccountId,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<TicketTimes>, sqlx::Error> {
    sqlx::query_as(
        // A close is the acknowledgement of a ticket closed straight from open. Migration
        // 0011 folded that into the rows of its day only; the previous release (during a
        // rollout, after a rollback) still writes closes without it, so it is read here.
        "SELECT department,
                CASE WHEN acknowledged_at IS NULL THEN closed_by ELSE acknowledged_by END
                    AS acknowledged_by,
                closed_by, acknowledge_missed_by, resolve_missed_by, opened_at,
                COALESCE(acknowledged_at, closed_at) AS acknowledged_at, closed_at,
                acknowledge_due_at,
                resolve_due_at, acknowledge_missed_at, resolve_missed_at, overdue_count,
                moved_away_by, moved_away_at, moved_in_at, moved_in_by,
                COALESCE(m.moves_at, '{}') AS moves_at, COALESCE(m.moves_by, '{}') AS moves_by
           FROM ticket_times t
           LEFT JOIN LATERAL (
               SELECT array_agg(moved_at ORDER BY moved_at, moved_by) AS moves_at,
                      array_agg(moved_by ORDER BY moved_at, moved_by) AS moves_by
                 FROM ticket_moves mv
                WHERE mv.account = t.account AND mv.ticket_id = t.ticket_id
           ) m ON true
          WHERE account = $1 AND opened_at >= $2 AND opened_at < $3",
    )
    .bind(account.as_str())
    .bind(from)
    .bind(until)
    .fetch_all(db)
    .await
}

/// Every account's tickets in two windows, for the overview in one statement.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct TicketSummary {
    pub account: String,
    /// Opened since the interaction window's start and answered or past their
    /// acknowledgement deadline at `now`, and of those answered.
    pub recent: i64,
    pub recent_answered: i64,
    /// Opened since the overdue window's start whose acknowledgement is judged at
    /// `now` (done, or due), and of those acknowledged by the deadline.
    pub in_window: i64,
    pub acknowledged_in_time: i64,
}

/// The statement of [`ticket_summaries`] (`$1` interaction window start, `$2` overdue
/// window start, `$3` until, `$4` now); public so a test can check its plan, which
/// reads `ticket_times_opened_at` for the window rather than every ticket.
pub const TICKET_SUMMARIES_SQL: &str = "SELECT account,
                count(*) FILTER (WHERE opened_at >= $1
                                   AND (acknowledged_at IS NOT NULL OR closed_at IS NOT NULL
                                        OR acknowledge_due_at IS NULL OR acknowledge_due_at <= $4))
                    AS recent,
                count(*) FILTER (WHERE opened_at >= $1
                                   AND (acknowledged_at IS NOT NULL OR closed_at IS NOT NULL))
                    AS recent_answered,
                count(*) FILTER (WHERE opened_at >= $2
                                   AND (acknowledged IS NOT NULL OR acknowledge_due_at <= $4))
                    AS in_window,
                count(*) FILTER (WHERE opened_at >= $2 AND acknowledged IS NOT NULL
                                   AND (acknowledge_due_at IS NULL OR acknowledged <= acknowledge_due_at))
                    AS acknowledged_in_time
           FROM ticket_times,
                -- A close is the acknowledgement (see `tickets_opened`).
                LATERAL (SELECT COALESCE(acknowledged_at, closed_at) AS acknowledged) a
          WHERE opened_at >= LEAST($1, $2) AND opened_at < $3
          GROUP BY account";

/// [`TicketSummary`] of every account with tickets opened since `overdue_from` (and
/// before `until`).
pub async fn ticket_summaries(
    db: &PgPool,
    interaction_from: DateTime<Utc>,
    overdue_from: DateTime<Utc>,
    until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Vec<TicketSummary>, sqlx::Error> {
    sqlx::query_as(TICKET_SUMMARIES_SQL)
        .bind(interaction_from)
        .bind(overdue_from)
        .bind(until)
        .bind(now)
        .fetch_all(db)
        .await
}

/// One counter of one account on one day.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AccountValue {
    pub account: String,
    pub metric: String,
    pub day: NaiveDate,
    pub key: String,
    pub value: i64,
}

/// The values of `metrics` from `from` to `to` (inclusive), of `account` (`None`:
/// every account): the hourly counters of the reply-path check, across accounts in
/// one statement for the overview.
pub async fn values_of(
    db: &PgPool,
    account: Option<&AccountId>,
    metrics: &[&str],
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<AccountValue>, sqlx::Error> {
    // Two statements rather than `$4 IS NULL OR account = $4`, which a generic plan
    // could not answer from the index by account.
    match account {
        Some(account) => {
            sqlx::query_as(
                "SELECT account, metric, day, key, value FROM daily_counts
              WHERE account = $4 AND metric = ANY($3) AND day BETWEEN $1 AND $2",
            )
            .bind(from)
            .bind(to)
            .bind(metrics)
            .bind(account.as_str())
            .fetch_all(db)
            .await
        }
        None => {
            sqlx::query_as(
                "SELECT account, metric, day, key, value FROM daily_counts
              WHERE day BETWEEN $1 AND $2 AND metric = ANY($3)",
            )
            .bind(from)
            .bind(to)
            .bind(metrics)
            .fetch_all(db)
            .await
        }
    }
}

/// The `limit` largest keys of `metric` for `account` over a range, largest first.
pub async fn top_keys(
    db: &PgPool,
    account: &AccountId,
    metric: &str,
    from: NaiveDate,
    to: NaiveDate,
    limit: i64,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT key, sum(value)::bigint AS total FROM daily_counts
          WHERE account = $1 AND metric = $2 AND day BETWEEN $3 AND $4
          GROUP BY key ORDER BY total DESC, key LIMIT $5",
    )
    .bind(account.as_str())
    .bind(metric)
    .bind(from)
    .bind(to)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// The first day `account` has a count of `metric` (the index by account, metric and
/// day): a counter added by a release counts from its upgrade on.
pub async fn first_day(
    db: &PgPool,
    account: &AccountId,
    metric: &str,
) -> Result<Option<NaiveDate>, sqlx::Error> {
    sqlx::query_scalar("SELECT min(day) FROM daily_counts WHERE account = $1 AND metric = $2")
        .bind(account.as_str())
        .bind(metric)
        .fetch_one(db)
        .await
}
