//! The install's lexicon: seeded from a file, changed over gRPC (audited), and
//! compiled once per revision. Every replica compares the stored revision before it
//! screens, so a change made through one replica is used by all of them at once.

use std::sync::{Arc, RwLock};

use sqlx::PgPool;

use super::AppError;
use crate::domain::screening::{Entry, Screener, parse_lexicon};
use crate::store::lexicon as store;

/// The compiled lexicon and the revision it was built from.
#[derive(Clone)]
pub struct Lexicon {
    db: PgPool,
    current: Arc<RwLock<(i64, Arc<Screener>)>>,
}

impl Lexicon {
    /// A lexicon read from `db`; nothing is compiled until first use.
    pub fn new(db: PgPool) -> Self {
        Self {
            db,
            current: Arc::new(RwLock::new((-1, Arc::new(Screener::new(Vec::new()))))),
        }
    }

    /// Loads `text` (a lexicon file) when the database's lexicon was never written,
    /// so the seed happens once per install, not once per replica or restart.
    pub async fn seed(&self, text: &str) -> Result<usize, AppError> {
        let entries = parse_lexicon(text)?;
        let mut tx = self.db.begin().await?;
        store::lock_seed(&mut tx).await?;
        if !store::is_empty(&mut *tx).await? {
            return Ok(0);
        }
        for entry in &entries {
            store::put(&mut tx, &entry.word, entry.category_name(), "seed").await?;
        }
        tx.commit().await?;
        Ok(entries.len())
    }

    /// The screener for the stored lexicon, rebuilt if another replica (or this one)
    /// changed it. Screening never waits for a rebuild of another caller: the lock
    /// is held only to swap the `Arc`.
    pub async fn screener(&self) -> Result<Arc<Screener>, AppError> {
        let revision = store::revision(&self.db).await?;
        {
            let current = self.current.read().unwrap_or_else(|e| e.into_inner());
            if current.0 == revision {
                return Ok(current.1.clone());
            }
        }
        let rows = store::entries(&self.db).await?;
        let entries = rows
            .iter()
            .filter_map(|(word, category)| Entry::parse(category, word).ok())
            .collect();
        let screener = Arc::new(Screener::new(entries));
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        if current.0 < revision {
            *current = (revision, screener.clone());
        }
        Ok(screener)
    }

    /// Every entry, optionally of one category: (word, category).
    pub async fn list(&self, category: Option<&str>) -> Result<Vec<(String, String)>, AppError> {
        let mut rows = store::entries(&self.db).await?;
        if let Some(category) = category {
            rows.retain(|(_, c)| c == category);
        }
        Ok(rows)
    }

    /// Adds or recategorises an entry (audited).
    pub async fn put(&self, entry: &Entry, actor: &str) -> Result<(), AppError> {
        let mut tx = self.db.begin().await?;
        store::put(&mut tx, &entry.word, entry.category_name(), actor).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes an entry (audited); returns whether it existed.
    pub async fn delete(&self, word: &str, actor: &str) -> Result<bool, AppError> {
        let mut tx = self.db.begin().await?;
        let deleted = store::delete(&mut tx, word.trim(), actor).await?;
        tx.commit().await?;
        Ok(deleted)
    }
}
