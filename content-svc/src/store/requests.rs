//! Callers' ids of create calls (`create_requests`, migration 0017): one row per
//! account and id, written in the create's transaction.

use sqlx::{Postgres, Transaction};
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
