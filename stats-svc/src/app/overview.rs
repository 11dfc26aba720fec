//! An account's overview: what it has received so far.

use sqlx::PgPool;

use super::AppError;
use crate::domain::AccountId;
use crate::store::account_inbound::{self, AccountInbound};

/// An account's inbound counters and latest callback time; zeros and no time for
/// an account never seen (an account is not registered here, only counted).
pub async fn account_overview(
    db: &PgPool,
    account: &AccountId,
) -> Result<AccountInbound, AppError> {
    Ok(account_inbound::get(db, account).await?)
}
