//! Inspection alarms (`alarms`), each announced on STATS through the outbox in the
//! transaction that records it.

use chrono::{DateTime, NaiveDate, Utc};
use prost::Message as _;
use sqlx::{PgPool, Postgres, Transaction};

use crate::domain::AccountId;
use crate::domain::inspection::Alarm;

/// Records `alarm` for `account` on `day` and queues its `stats.v1.AlarmRaised`;
/// false when the same alarm was already raised that day (nothing is queued again).
pub async fn raise(
    tx: &mut Transaction<'_, Postgres>,
    account: &AccountId,
    day: NaiveDate,
    alarm: &Alarm,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO alarms (account, rule, subject, day, detail, raised_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (account, rule, subject, day) DO NOTHING",
    )
    .bind(account.as_str())
    .bind(alarm.rule.as_str())
    .bind(&alarm.subject)
    .bind(day)
    .bind(&alarm.detail)
    .bind(now)
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1;
    if !inserted {
        return Ok(false);
    }
    let event_id = format!(
        "stats:{}:{}:{}:{day}",
        account.as_str(),
        alarm.rule.as_str(),
        alarm.subject
    );
    let payload = proto::stats::v1::AlarmRaised {
        header: Some(proto::events::v1::EventHeader {
            event_id: event_id.clone(),
            account: account.as_str().to_owned(),
            occurred_at: Some(prost_types::Timestamp {
                seconds: now.timestamp(),
                nanos: 0,
            }),
        }),
        rule: alarm.rule.as_str().to_owned(),
        subject: alarm.subject.clone(),
        day: day.to_string(),
        detail: alarm.detail.clone(),
    }
    .encode_to_vec();
    let subject = format!("stats.{}.alarm.{}", account.as_str(), alarm.rule.as_str());
    platform::outbox::enqueue(
        tx,
        platform::outbox::OutboxEvent {
            subject: &subject,
            event_id: &event_id,
            payload: &payload,
        },
    )
    .await?;
    Ok(true)
}

/// A stored alarm.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AlarmRow {
    pub account: String,
    pub rule: String,
    pub subject: String,
    pub day: NaiveDate,
    pub detail: String,
    pub raised_at: DateTime<Utc>,
}

/// The statement of [`list`] (`$1`..`$2` the days, `$3` the accounts); public so a test
/// can check its plan (it reads the index `alarms_day`, migration 0025).
pub const LIST_SQL: &str = "SELECT account, rule, subject, day, detail, raised_at FROM alarms
      WHERE day BETWEEN $1 AND $2 AND ($3::text[] IS NULL OR account = ANY($3))
      ORDER BY day DESC, account, rule, subject";

/// Alarms raised from `from` to `to` for the accounts in `accounts` (`None`: all).
pub async fn list(
    db: &PgPool,
    accounts: Option<&[String]>,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<AlarmRow>, sqlx::Error> {
    sqlx::query_as(LIST_SQL)
        .bind(from)
        .bind(to)
        .bind(accounts)
        .fetch_all(db)
        .await
}

/// The statement of [`escalated_twice`] (`$1` the account); public so a test can check
/// its plan. `overdue_count >= 2` (implied by both deadlines missed) lets it read the
/// partial index `ticket_times_escalated`. A row written before `last_closed_at` existed
/// (0007 filled it once) has its close in `closed_at` only. Both deadlines must have
/// been missed in the ticket's current round, after its last reopen: a reopen clears
/// interaction-svc's overdue marks and sets new deadlines, and the round before it was
/// escalated then. A deadline whose misses were all folded before migration 0024 has
/// its first miss (`*_missed_at`) and no latest, so its current round is unknown: it
/// counts as missed in it. For a ticket reopened before the upgrade that first miss is
/// the earlier round's, and reading it as the latest would never alarm for exactly the
/// tickets reopened and overdue twice; a false alarm on such a row (its new round met
/// that deadline) is the lesser harm, and no backfill can tell them apart (the misses
/// are interaction-svc's). A row folded before miss times were kept at all (0010) has
/// only its count, taken as it is.
pub const ESCALATED_TWICE_SQL: &str = "SELECT ticket_id FROM ticket_times
      WHERE account = $1 AND overdue_count >= 2
        AND (COALESCE(last_closed_at, closed_at) IS NULL
             OR last_reopened_at > COALESCE(last_closed_at, closed_at))
        AND ((acknowledge_missed_at IS NULL AND resolve_missed_at IS NULL)
             OR ((last_acknowledge_missed_at > COALESCE(last_reopened_at, '-infinity')
                  OR (last_acknowledge_missed_at IS NULL AND acknowledge_missed_at IS NOT NULL))
                 AND (last_resolve_missed_at > COALESCE(last_reopened_at, '-infinity')
                      OR (last_resolve_missed_at IS NULL AND resolve_missed_at IS NOT NULL))))
      ORDER BY ticket_id";

/// The tickets of `account` that are open (never closed, or reopened after their last
/// close) and missed both deadlines of their current round (escalated twice).
pub async fn escalated_twice(db: &PgPool, account: &AccountId) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(ESCALATED_TWICE_SQL)
        .bind(account.as_str())
        .fetch_all(db)
        .await
}

/// The subjects of the `rule` alarms stored for `account` on `day`.
pub async fn subjects(
    db: &PgPool,
    account: &AccountId,
    rule: &str,
    day: NaiveDate,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT subject FROM alarms WHERE account = $1 AND rule = $2 AND day = $3
          ORDER BY subject",
    )
    .bind(account.as_str())
    .bind(rule)
    .bind(day)
    .fetch_all(db)
    .await
}

/// The department holding each of `tickets` (account, ticket id), for those known.
pub async fn ticket_departments(
    db: &PgPool,
    tickets: &[(String, String)],
) -> Result<Vec<(String, String, String)>, sqlx::Error> {
    let (accounts, ids): (Vec<String>, Vec<String>) = tickets.iter().cloned().unzip();
    sqlx::query_as(
        "SELECT t.account, t.ticket_id, t.department
           FROM ticket_times t
           JOIN unnest($1::text[], $2::text[]) AS q(account, ticket_id)
             ON t.account = q.account AND t.ticket_id = q.ticket_id",
    )
    .bind(&accounts)
    .bind(&ids)
    .fetch_all(db)
    .await
}
