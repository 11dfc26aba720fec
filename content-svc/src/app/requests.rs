//! Create calls that carry the caller's request id (`domain::request`): the id is
//! taken in the create's transaction, and a retry is answered with the first
//! call's result instead of creating again.

use chrono::Utc;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::AppError;
use crate::domain::request::{self, CreateKind, CreateRequest};
use crate::store::requests as store;

/// In the create's transaction, before anything is written: takes `request`'s id
/// for a create of `kind` by `department` on `account` that will make `result`.
/// Returns the earlier call's result when this call is its retry (the caller then
/// rolls back and answers that), and refuses the id used for another request. No
/// request (no id given): nothing to take.
pub(crate) async fn claim(
    tx: &mut Transaction<'_, Postgres>,
    account: &str,
    request: Option<&CreateRequest>,
    kind: CreateKind,
    department: &str,
    result: Uuid,
) -> Result<Option<Uuid>, AppError> {
    let Some(request) = request else {
        return Ok(None);
    };
    match store::claim(tx, account, request, kind, department, result).await? {
        None => Ok(None),
        Some(earlier) => Ok(Some(request::replay(
            &earlier,
            kind,
            department,
            &request.id,
        )?)),
    }
}

/// Forgets the request ids taken more than [`request::RETENTION_DAYS`] ago (the
/// scheduler's hourly step); returns how many. Safe with several replicas: each
/// batch deletes what it finds.
pub async fn prune(db: &PgPool) -> Result<u64, AppError> {
    const BATCH: i64 = 1_000;
    let before = Utc::now() - chrono::Duration::days(request::RETENTION_DAYS);
    let mut pruned = 0;
    loop {
        let deleted = store::prune(db, before, BATCH).await?;
        pruned += deleted;
        if deleted < BATCH as u64 {
            return Ok(pruned);
        }
    }
}
