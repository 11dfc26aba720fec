//! The service hall's listing: an account's enabled services (its own and those
//! shared with it) with their category, in the categories' display order.

use sqlx::PgPool;

/// A service as the hall shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HallRow {
    pub id: uuid::Uuid,
    pub category: String,
    pub category_name: String,
    pub name: String,
    pub description: String,
    pub how_to_apply: String,
    pub url: String,
    pub miniprogram_appid: String,
    pub miniprogram_path: String,
    pub hours: String,
    pub phone: String,
}

/// The enabled services `account` shows, by category position, then service position.
pub async fn services(db: &PgPool, account: &str) -> Result<Vec<HallRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT e.id, e.category, c.name AS category_name, e.name, e.description,
                e.how_to_apply, e.url, e.miniprogram_appid, e.miniprogram_path, e.hours,
                e.phone
           FROM directory_entries e
           JOIN directory_categories c ON c.code = e.category
          WHERE (e.account = $1 OR $1 = ANY (e.also_shown_on))
            AND e.enabled
          ORDER BY c.position, c.code, e.position, e.name, e.id",
    )
    .bind(account)
    .fetch_all(db)
    .await
}
