//! Callers' ids of create calls (`create_requests`, migration 0017): one row per
//! account and id, written in the create's transaction.

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, Postgres, Transaction};
use uuid::Uuid;

use crate::domain::request::{CreateKind, CreateRequest, EarlierRequest};

/// Takes `request`'s id on `account` for a create of `kind` by `department` whose
/// result will be `result`, in the create's transaction; or, when an earlier call
/// holds the id, returns that call. A concurrent call with the same id waits on the
/// key until the holder commits (then it is the earlier call) or rolls back (then
/// this one takes it).
pub async fn claim(
    tx: &mut Transaction<'_, Postgres>,
    account: &str,
    request: &CreateRequest,
    kind: CreateKind,
    department: &str,
    result: Uuid,
) -> Result<Option<EarlierRequest>, sqlx::Error> {
    let taken = sqlx::query(
        "INSERT INTO create_requests (account, request_id, kind, department, body_sha256, result_id)
         VALUES ($1, $2, $3, $4, sha256($5), $6)
         ON CONFLICT (account, request_id) DO NOTHING",
    )
    .bind(account)
    .bind(request.id.as_str())
    .bind(kind.as_str())
    .bind(department)
    .bind(&request.body)
    .bind(result)
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1;
    if taken {
        return Ok(None);
    }
    let (kind, department, same_body, result) = sqlx::query_as::<_, (String, String, bool, Uuid)>(
        "SELECT kind, department, body_sha256 = sha256($3), result_id
               FROM create_requests WHERE account = $1 AND request_id = $2",
    )
    .bind(account)
    .bind(request.id.as_str())
    .bind(&request.body)
    .fetch_one(&mut **tx)
    .await?;
    Ok(Some(EarlierRequest {
        kind,
        department,
        same_body,
        result,
    }))
}

/// Deletes up to `limit` request ids taken before `before`; returns how many.
pub async fn prune(
    db: impl PgExecutor<'_>,
    before: DateTime<Utc>,
    limit: i64,
) -> Result<u64, sqlx::Error> {
    // A batch at a time: a first prune after months deletes many rows, and one
    // statement would hold their locks and a long transaction.
    let deleted = sqlx::query(
        "DELETE FROM create_requests WHERE ctid IN
            (SELECT ctid FROM create_requests WHERE created_at < $1 LIMIT $2)",
    )
    .bind(before)
    .bind(limit)
    .execute(db)
    .await?;
    Ok(deleted.rows_affected())
}
