//! The convenience-service directory (社保, 医保, 交通, …).

use sqlx::PgPool;

use super::AppError;
use crate::domain::ServiceListing;
use crate::store::directory::{self, DirectoryEntryRow};

/// Lists an account's directory entries (all categories or one) in display order:
/// by category, then position, then name.
pub async fn list_services(
    db: &PgPool,
    listing: &ServiceListing,
) -> Result<Vec<DirectoryEntryRow>, AppError> {
    Ok(directory::list(db, listing).await?)
}
