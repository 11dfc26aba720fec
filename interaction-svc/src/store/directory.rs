//! The replicated directory (`directory_services`, written by the `interaction-directory`
//! consumer from content-svc's events) and each citizen's last directory answer
//! (`directory_answers`). Every replica's matcher is built from [`list_shown`].

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use platform::ids::{AccountId, OpenId};
use sqlx::{PgExecutor, Postgres, Transaction};

use crate::domain::directory::{DirectoryService, PendingAnswer};

/// A service as one change left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceVersion {
    pub id: uuid::Uuid,
    pub owner_account: String,
    /// Every account that shows it; empty when deleted.
    pub accounts: Vec<String>,
    pub category: String,
    pub name: String,
    pub department: String,
    pub description: String,
    pub url: String,
    pub keywords: Vec<String>,
    pub synonyms: Vec<String>,
    pub enabled: bool,
    pub deleted: bool,
    /// The version: when the change happened, and its event id (a tie-break).
    pub changed_at: DateTime<Utc>,
    pub event_id: String,
}

/// Writes `version` unless a newer one is stored. Returns whether it was written.
pub async fn apply(
    tx: &mut Transaction<'_, Postgres>,
    version: &ServiceVersion,
) -> Result<bool, sqlx::Error> {
    let written = sqlx::query(
        "INSERT INTO directory_services
             (id, owner_account, accounts, category, name, department, description, url,
              keywords, synonyms, enabled, deleted, changed_at, event_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         ON CONFLICT (id) DO UPDATE SET
             owner_account = EXCLUDED.owner_account, accounts = EXCLUDED.accounts,
             category = EXCLUDED.category, name = EXCLUDED.name,
             department = EXCLUDED.department, description = EXCLUDED.description,
             url = EXCLUDED.url, keywords = EXCLUDED.keywords, synonyms = EXCLUDED.synonyms,
             enabled = EXCLUDED.enabled, deleted = EXCLUDED.deleted,
             changed_at = EXCLUDED.changed_at, event_id = EXCLUDED.event_id
         WHERE (directory_services.changed_at, directory_services.event_id)
               < (EXCLUDED.changed_at, EXCLUDED.event_id)",
    )
    .bind(version.id)
    .bind(&version.owner_account)
    .bind(&version.accounts)
    .bind(&version.category)
    .bind(&version.name)
    .bind(&version.department)
    .bind(&version.description)
    .bind(&version.url)
    .bind(&version.keywords)
    .bind(&version.synonyms)
    .bind(version.enabled)
    .bind(version.deleted)
    .bind(version.changed_at)
    .bind(&version.event_id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(written == 1)
}

/// Writes `version` only if the service is unknown here (the bootstrap from
/// content-svc: any replicated change is newer than it).
pub async fn insert_if_absent(
    tx: &mut Transaction<'_, Postgres>,
    version: &ServiceVersion,
) -> Result<bool, sqlx::Error> {
    let written = sqlx::query(
        "INSERT INTO directory_services
             (id, owner_account, accounts, category, name, department, description, url,
              keywords, synonyms, enabled, deleted, changed_at, event_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(version.id)
    .bind(&version.owner_account)
    .bind(&version.accounts)
    .bind(&version.category)
    .bind(&version.name)
    .bind(&version.department)
    .bind(&version.description)
    .bind(&version.url)
    .bind(&version.keywords)
    .bind(&version.synonyms)
    .bind(version.enabled)
    .bind(version.deleted)
    .bind(version.changed_at)
    .bind(&version.event_id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(written == 1)
}

/// Marks a service deleted (a tombstone) unless a newer version is stored: the
/// bootstrap's answer to a service content-svc no longer has. Returns whether it
/// was written.
pub async fn retire(
    tx: &mut Transaction<'_, Postgres>,
    id: uuid::Uuid,
    at: DateTime<Utc>,
    event_id: &str,
) -> Result<bool, sqlx::Error> {
    let written = sqlx::query(
        "UPDATE directory_services
            SET deleted = true, enabled = false, accounts = '{}',
                changed_at = $2, event_id = $3
          WHERE id = $1 AND NOT deleted AND (changed_at, event_id) < ($2, $3)",
    )
    .bind(id)
    .bind(at)
    .bind(event_id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(written == 1)
}

/// The id of every service known here, deleted ones included.
pub async fn known_ids(
    db: impl PgExecutor<'_>,
) -> Result<std::collections::HashSet<uuid::Uuid>, sqlx::Error> {
    let ids: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT id FROM directory_services")
        .fetch_all(db)
        .await?;
    Ok(ids.into_iter().collect())
}

/// The version time of each of `ids` known here.
pub async fn changed_at(
    db: impl PgExecutor<'_>,
    ids: &[uuid::Uuid],
) -> Result<HashMap<uuid::Uuid, DateTime<Utc>>, sqlx::Error> {
    let rows: Vec<(uuid::Uuid, DateTime<Utc>)> =
        sqlx::query_as("SELECT id, changed_at FROM directory_services WHERE id = ANY($1)")
            .bind(ids)
            .fetch_all(db)
            .await?;
    Ok(rows.into_iter().collect())
}

/// Every enabled service with the accounts showing it.
pub async fn shown_ids(
    db: impl PgExecutor<'_>,
) -> Result<Vec<(uuid::Uuid, Vec<String>)>, sqlx::Error> {
    sqlx::query_as("SELECT id, accounts FROM directory_services WHERE enabled AND NOT deleted")
        .fetch_all(db)
        .await
}

/// How many services (deleted ones included) are known.
pub async fn count(db: impl PgExecutor<'_>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM directory_services")
        .fetch_one(db)
        .await
}

type ServiceRow = (
    uuid::Uuid,
    Vec<String>,
    String,
    String,
    String,
    String,
    Vec<String>,
    Vec<String>,
);

/// Every enabled service, per account that shows it.
pub async fn list_shown(
    db: impl PgExecutor<'_>,
) -> Result<BTreeMap<String, Vec<DirectoryService>>, sqlx::Error> {
    let rows: Vec<ServiceRow> = sqlx::query_as(
        "SELECT id, accounts, category, name, description, url, keywords, synonyms
           FROM directory_services
          WHERE enabled AND NOT deleted",
    )
    .fetch_all(db)
    .await?;
    let mut shown: BTreeMap<String, Vec<DirectoryService>> = BTreeMap::new();
    for (id, accounts, category, name, description, url, keywords, synonyms) in rows {
        let service = DirectoryService {
            id,
            category,
            name,
            description,
            url,
            keywords,
            synonyms,
        };
        for account in accounts {
            shown.entry(account).or_default().push(service.clone());
        }
    }
    Ok(shown)
}

/// A row of `directory_answers`, as the domain's [`PendingAnswer`].
#[derive(sqlx::FromRow)]
struct AnswerRow {
    event_id: String,
    service_id: uuid::Uuid,
    service_name: String,
    msg_type: String,
    body: String,
    answered_at: DateTime<Utc>,
}

impl From<AnswerRow> for PendingAnswer {
    fn from(row: AnswerRow) -> Self {
        Self {
            event_id: row.event_id,
            service_id: row.service_id,
            service_name: row.service_name,
            msg_type: row.msg_type,
            body: row.body,
            answered_at: row.answered_at,
        }
    }
}

/// An [`AnswerRow`] with the citizen it is for.
#[derive(sqlx::FromRow)]
struct CitizenAnswerRow {
    account: AccountId,
    openid: OpenId,
    #[sqlx(flatten)]
    answer: AnswerRow,
}

/// The last question the directory answered for the citizen, as callback
/// `event_id` finds it: still pending, or taken over by that very callback (the
/// consumer applied it before its reply was asked for: it asked again, and its reply
/// is the acknowledgement). One another callback took over is not pending.
pub async fn pending_answer(
    db: impl PgExecutor<'_>,
    account: &AccountId,
    openid: &OpenId,
    event_id: &str,
) -> Result<Option<PendingAnswer>, sqlx::Error> {
    let row: Option<AnswerRow> = sqlx::query_as(
        "SELECT event_id, service_id, service_name, msg_type, body, answered_at
           FROM directory_answers
          WHERE account = $1 AND openid = $2 AND (consumed_by IS NULL OR consumed_by = $3)",
    )
    .bind(account)
    .bind(openid)
    .bind(event_id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(PendingAnswer::from))
}

/// [`pending_answer`] for the citizens of a batch, in one statement (answers taken
/// over already are not pending: the batch's own events are all new).
pub async fn pending_answers(
    tx: &mut Transaction<'_, Postgres>,
    citizens: &[(&AccountId, &OpenId)],
) -> Result<HashMap<(AccountId, OpenId), PendingAnswer>, sqlx::Error> {
    if citizens.is_empty() {
        return Ok(HashMap::new());
    }
    let accounts: Vec<&str> = citizens.iter().map(|(a, _)| a.as_str()).collect();
    let openids: Vec<&str> = citizens.iter().map(|(_, o)| o.as_str()).collect();
    let rows: Vec<CitizenAnswerRow> = sqlx::query_as(
        "SELECT a.account, a.openid, a.event_id, a.service_id, a.service_name, a.msg_type,
                a.body, a.answered_at
           FROM directory_answers a
           JOIN (SELECT DISTINCT account, openid
                   FROM unnest($1::text[], $2::text[]) AS c(account, openid)) c
             ON a.account = c.account AND a.openid = c.openid
          WHERE a.consumed_by IS NULL",
    )
    .bind(accounts)
    .bind(openids)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| ((row.account, row.openid), row.answer.into()))
        .collect())
}

/// Records the directory's answer to the citizen (replacing an earlier one).
pub async fn record_answer(
    tx: &mut Transaction<'_, Postgres>,
    account: &AccountId,
    openid: &OpenId,
    answer: &PendingAnswer,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO directory_answers
             (account, openid, event_id, service_id, service_name, msg_type, body, answered_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (account, openid) DO UPDATE SET
             event_id = EXCLUDED.event_id, service_id = EXCLUDED.service_id,
             service_name = EXCLUDED.service_name, msg_type = EXCLUDED.msg_type,
             body = EXCLUDED.body, answered_at = EXCLUDED.answered_at, consumed_by = NULL",
    )
    .bind(account)
    .bind(openid)
    .bind(&answer.event_id)
    .bind(answer.service_id)
    .bind(&answer.service_name)
    .bind(&answer.msg_type)
    .bind(&answer.body)
    .bind(answer.answered_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Marks the citizen's last directory answer taken over by callback `event_id` (a
/// ticket now carries it): no later message finds it pending, but that callback's
/// reply, which the gateway may ask for after this commit, still does
/// ([`pending_answer`]). Deleted by age like the others.
pub async fn consume_answer(
    tx: &mut Transaction<'_, Postgres>,
    account: &AccountId,
    openid: &OpenId,
    event_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE directory_answers SET consumed_by = $3 WHERE account = $1 AND openid = $2")
        .bind(account)
        .bind(openid)
        .bind(event_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Deletes up to `limit` directory answers given before `before` (they serve a
/// follow-up within minutes, `domain::directory::FOLLOW_UP_WINDOW`; kept beyond
/// that they are only the citizen's data), in one statement (the sweeper repeats it
/// while batches come back full). Returns how many were deleted.
pub async fn prune_answers(
    db: impl PgExecutor<'_>,
    before: DateTime<Utc>,
    limit: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM directory_answers
          WHERE (account, openid) IN (SELECT account, openid FROM directory_answers
                                       WHERE answered_at < $1 LIMIT $2)",
    )
    .bind(before)
    .bind(limit)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}
