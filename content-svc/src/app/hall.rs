//! The service hall (办事大厅): an account's directory grouped by category, the page
//! a menu's "办事大厅" button opens. Its search is `app::search`.

use sqlx::PgPool;

use crate::store::hall::{self as store, HallRow};

/// A category with the services the account shows in it.
#[derive(Debug, Clone)]
pub struct HallCategory {
    pub code: String,
    pub name: String,
    pub services: Vec<HallRow>,
}

/// Every category holding at least one enabled service of `account`, in display
/// order; an account with no service has an empty hall.
pub async fn categories(db: &PgPool, account: &str) -> Result<Vec<HallCategory>, sqlx::Error> {
    let mut out: Vec<HallCategory> = Vec::new();
    for row in store::services(db, account).await? {
        match out.last_mut() {
            Some(last) if last.code == row.category => last.services.push(row),
            _ => out.push(HallCategory {
                code: row.category.clone(),
                name: row.category_name.clone(),
                services: vec![row],
            }),
        }
    }
    Ok(out)
}
