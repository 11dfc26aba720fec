//! The directory's replica: content-svc's changes applied to `directory_services`
//! (each event once, an older version never over a newer one), and the bootstrap of
//! an empty replica from content-svc's gRPC API.

use sqlx::PgPool;

use crate::store::directory::{self as store, ServiceVersion};

/// Applies `versions` in one transaction, each event id claimed with its effect.
/// Returns how many changed the replica.
pub async fn replicate(db: &PgPool, versions: &[&ServiceVersion]) -> Result<usize, sqlx::Error> {
    let ids: Vec<&str> = versions.iter().map(|v| v.event_id.as_str()).collect();
    let mut tx = db.begin().await?;
    let claimed = platform::db::claim_events(&mut tx, &ids).await?;
    let mut written = 0;
    for (version, _) in versions.iter().zip(claimed).filter(|(_, new)| *new) {
        if store::apply(&mut tx, version).await? {
            written += 1;
        }
    }
    tx.commit().await?;
    Ok(written)
}
