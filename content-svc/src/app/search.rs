//! Chinese search over directory services (indexed in the transaction of each
//! directory change) and published articles, answered from this replica's copy of
//! the index in memory when it is up to date, else by PostgreSQL.

use std::sync::{Arc, Mutex, RwLock};

use sqlx::{PgPool, Postgres, Transaction};
use tokio::sync::watch;

use super::AppError;
use crate::domain::article::strip_html;
use crate::domain::search::{Match, SearchQuery, Segmenter, folds};
use crate::domain::search_index::{DocKind, IndexHit, SearchIndex};
use crate::store::articles::ArticleRow;
use crate::store::search::{self as store, HitRow, IndexDoc, SearchFilter};
use crate::store::services::ServiceRow;

/// How many hits a search returns at most, and by default.
pub const LIMIT_MAX: i64 = 50;
pub const LIMIT_DEFAULT: i64 = 10;
/// Snippet width in characters.
const SNIPPET: usize = 60;

/// A hit with its highlighted snippet.
#[derive(Debug, Clone)]
pub struct Hit {
    pub row: HitRow,
    pub snippet: String,
}

impl Hit {
    /// The stage that found the hit, read from its score (see [`Search::search`]):
    /// 0 any word (1-3), 1 sub-words (4-6), 2 all words (7-9), 3 a one-character
    /// query's title or label look (10).
    pub fn stage(&self) -> u8 {
        // Scores are whole numbers from 1 to 10.
        ((self.row.rank.clamp(1.0, 10.0) - 1.0) / 3.0) as u8
    }
}

/// How long a query waits for its replica's in-memory index to apply the changes
/// committed before it (milliseconds, normally) before it asks the database instead.
const FRESH_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Search use cases.
#[derive(Clone)]
pub struct Search {
    db: PgPool,
    segmenter: Segmenter,
    live: Option<Arc<LiveIndex>>,
}

impl Search {
    /// Searches `db`'s index, segmenting queries with `segmenter`; with `live`, from
    /// that in-memory copy of it whenever it is loaded and up to date.
    pub fn new(db: PgPool, segmenter: Segmenter, live: Option<Arc<LiveIndex>>) -> Self {
        Self {
            db,
            segmenter,
            live,
        }
    }

    /// Runs a checked query for one account, best first, in stages: documents
    /// holding all its words (or their synonyms); then, only when they are fewer than
    /// the limit, those holding the sub-words of a word jieba kept whole (停电 and 通知
    /// for 停电通知, which no document may hold as one word); then those holding any of
    /// the words. Each stage ranks by tier (title, keywords, body; see
    /// [`store::search_sql`]) and reads no more than the limit; scores follow the
    /// order: all words 7-9, sub-words 4-6, any word 1-3. A one-character query's
    /// titles and category labels holding it come before them all (10, see
    /// [`store::single_character`]).
    ///
    /// Answered from the in-memory index when it holds every change committed before
    /// the query (a small read of the database to know, shared by the searches
    /// waiting at the same time), else by the database.
    pub async fn search(
        &self,
        query: &SearchQuery,
        filter: &SearchFilter<'_>,
    ) -> Result<Vec<Hit>, AppError> {
        let stages = [
            Some((query.match_all(), 6.0)),
            query.match_split().map(|split| (split, 3.0)),
            Some((query.match_any(), 0.0)),
        ];
        // A one-character query (税, 车): no index word holds the character inside a
        // longer word (车辆), and jieba keeps it as a word only where it stands alone
        // (我的车坏了), so the stages would find bodies and miss 车辆年检. The titles
        // and category labels holding it come first, then the stages' hits, at most
        // SINGLE_CHARACTER_LIMIT in all: such a query is a first keystroke, not a list.
        let single = query.single_character();
        let bounded;
        let filter = match single {
            Some(_) => {
                bounded = SearchFilter {
                    limit: filter.limit.min(store::SINGLE_CHARACTER_LIMIT),
                    ..filter.clone()
                };
                &bounded
            }
            None => filter,
        };
        let mut ranked = Ranked::new(filter.limit);
        if let Some(character) = single {
            ranked.rows = store::single_character(&self.db, character, filter).await?;
        }
        let mut from_memory = false;
        if let Some(live) = &self.live
            && let Some(latest) = live.latest_change().await
            && live.caught_up(latest, FRESH_WAIT).await
        {
            from_memory = live.run(|index| {
                for (matching, band) in stages.iter().flatten() {
                    if ranked.wants(matching) {
                        let found = index.search(matching, filter);
                        ranked.take(matching, found.into_iter().map(hit_row), *band);
                    }
                }
            });
        }
        let source = if from_memory {
            "memory"
        } else {
            for (matching, band) in stages.iter().flatten() {
                if ranked.wants(matching) {
                    let found = store::search(&self.db, &matching.tsquery(), filter).await?;
                    ranked.take(matching, found, *band);
                }
            }
            "database"
        };
        metrics::counter!("content_search_queries_total", "index" => source).increment(1);
        Ok(ranked
            .rows
            .into_iter()
            .map(|row| {
                let snippet = query.snippet(&row.summary, SNIPPET);
                Hit { row, snippet }
            })
            .collect())
    }

    /// The segmenter queries go through (the door parses them with it).
    pub fn segmenter(&self) -> &Segmenter {
        &self.segmenter
    }
}

/// The hits of a search's stages, merged: each stage adds the hits the earlier ones
/// did not find, raised by its band, until the limit.
struct Ranked {
    rows: Vec<HitRow>,
    limit: usize,
    done: Vec<Match>,
}

impl Ranked {
    fn new(limit: i64) -> Self {
        Self {
            rows: Vec::new(),
            limit: usize::try_from(limit).unwrap_or(0),
            done: Vec::new(),
        }
    }

    /// Whether a stage can add anything: places are left and the same query has not
    /// run already.
    fn wants(&self, matching: &Match) -> bool {
        self.rows.len() < self.limit && !self.done.contains(matching)
    }

    fn take(&mut self, matching: &Match, found: impl IntoIterator<Item = HitRow>, band: f32) {
        // A stage's first `limit` rows hold at most `taken` rows already taken (its
        // matches include the earlier ones), so at least `limit - taken` new ones
        // when it has them.
        let taken = self.rows.len();
        for mut row in found {
            if self.rows.len() == self.limit {
                break;
            }
            let seen = self.rows[..taken]
                .iter()
                .any(|r| r.ref_id == row.ref_id && r.kind == row.kind);
            if !seen {
                row.rank += band;
                self.rows.push(row);
            }
        }
        self.done.push(matching.clone());
    }
}

fn hit_row(hit: IndexHit) -> HitRow {
    HitRow {
        kind: hit.kind.as_str().to_owned(),
        ref_id: hit.ref_id,
        category: hit.category,
        title: hit.title,
        summary: hit.summary,
        url: hit.url,
        rank: f32::from(hit.level),
    }
}

/// This replica's copy of the search index in memory (`domain::search_index`),
/// loaded and kept in step with the database by `jobs::search_index`. Until it is
/// loaded, or while it is reloaded after its connection was lost, searches go to the
/// database.
pub struct LiveIndex {
    db: PgPool,
    index: RwLock<Option<SearchIndex>>,
    /// The number of the latest change applied (migration 0012).
    applied: watch::Sender<i64>,
    /// Reads of the latest change committed: how many were begun, whether one is
    /// in flight, and the last one done (its place in that count and its number, or
    /// `None` when it failed).
    reads: Mutex<Reads>,
    read_done: watch::Sender<(u64, Option<i64>)>,
    /// Told when a search gave up waiting for a change to be applied.
    in_vain: tokio::sync::Notify,
}

#[derive(Default)]
struct Reads {
    begun: u64,
    in_flight: bool,
}

/// Ends a read of the latest change however its search ends (a client may go
/// away mid-read): the next waiting search then reads in its place.
struct ReadInFlight<'a>(&'a LiveIndex);

impl Drop for ReadInFlight<'_> {
    fn drop(&mut self) {
        self.0.reads().in_flight = false;
        self.0.read_done.send_modify(|_| {});
    }
}

impl LiveIndex {
    /// An index of `db`'s documents, not loaded yet.
    pub fn new(db: PgPool) -> Arc<Self> {
        Arc::new(Self {
            db,
            index: RwLock::new(None),
            applied: watch::Sender::new(0),
            reads: Mutex::new(Reads::default()),
            read_done: watch::Sender::new((0, None)),
            in_vain: tokio::sync::Notify::new(),
        })
    }

    /// Whether searches are answered from memory.
    pub fn is_loaded(&self) -> bool {
        self.read().is_some()
    }

    /// Loads every document into a new index (off the lock: searches meanwhile use
    /// the one in place, or the database) and puts it in; returns how many.
    pub async fn load(&self) -> Result<usize, AppError> {
        let mut index = SearchIndex::new();
        let as_of = store::load_all(&self.db, |doc| index.upsert(doc)).await?;
        index.shrink_to_fit();
        let documents = index.len();
        metrics::gauge!("content_search_index_documents").set(documents as f64);
        *self.write() = Some(index);
        self.applied
            .send_modify(|applied| *applied = (*applied).max(as_of));
        Ok(documents)
    }

    /// Resolves when a search has given up waiting for a change committed before it
    /// to be applied (after [`FRESH_WAIT`]): its announcement never came.
    pub async fn waited_in_vain(&self) {
        self.in_vain.notified().await;
    }

    /// Stops answering from memory (changes may have been missed) until loaded again.
    pub fn lost(&self) {
        *self.write() = None;
    }

    /// Applies announced changes, the latest numbered `number`: each document as it
    /// is now, read again, or its removal when it is gone.
    pub async fn apply(&self, keys: &[(DocKind, uuid::Uuid)], number: i64) -> Result<(), AppError> {
        let current = store::load_some(&self.db, keys).await?;
        {
            let mut guard = self.write();
            let Some(index) = guard.as_mut() else {
                return Ok(());
            };
            for (kind, id) in keys {
                if !current.iter().any(|d| d.kind == *kind && d.ref_id == *id) {
                    index.remove(*kind, *id);
                }
            }
            for doc in current {
                index.upsert(doc);
            }
            metrics::gauge!("content_search_index_documents").set(index.len() as f64);
        }
        self.applied
            .send_modify(|applied| *applied = (*applied).max(number));
        Ok(())
    }

    /// The number of the latest change committed, as read by a read of the database
    /// begun after this call: one read serves every search that asked while the one
    /// before it was in flight, so concurrent searches share reads instead of each
    /// making its own. `None` when the read failed.
    async fn latest_change(&self) -> Option<i64> {
        let mut done = self.read_done.subscribe();
        // Reads begun before this call; one numbered after them began after it.
        let arrived_after = self.reads().begun;
        loop {
            let (last, number) = *done.borrow_and_update();
            if last > arrived_after {
                return number;
            }
            let lead = {
                let mut reads = self.reads();
                (!reads.in_flight).then(|| {
                    reads.in_flight = true;
                    reads.begun += 1;
                    reads.begun
                })
            };
            match lead {
                Some(this) => {
                    let in_flight = ReadInFlight(self);
                    let number = store::change_number(&self.db).await.ok();
                    self.read_done.send_modify(|done| *done = (this, number));
                    drop(in_flight);
                }
                None => {
                    if done.changed().await.is_err() {
                        return None;
                    }
                }
            }
        }
    }

    fn reads(&self) -> std::sync::MutexGuard<'_, Reads> {
        self.reads
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether the index is loaded and holds change `latest`, waiting up to `wait`
    /// for it to be applied.
    async fn caught_up(&self, latest: i64, wait: std::time::Duration) -> bool {
        if !self.is_loaded() {
            return false;
        }
        let mut applied = self.applied.subscribe();
        let reached = tokio::time::timeout(wait, applied.wait_for(|n| *n >= latest))
            .await
            .is_ok_and(|seen| seen.is_ok());
        if !reached {
            metrics::counter!("content_search_index_behind_total").increment(1);
            self.in_vain.notify_one();
        }
        reached && self.is_loaded()
    }

    /// Runs `f` on the index if it is loaded; whether it was.
    fn run(&self, f: impl FnOnce(&SearchIndex)) -> bool {
        self.read().as_ref().map(f).is_some()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Option<SearchIndex>> {
        // A panic while the lock was held leaves the index as it was between two
        // changes; reading it is still sound.
        self.index
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Option<SearchIndex>> {
        self.index
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Documents the width-fold re-index reads and indexes per transaction: the
/// `search_version` row lock (migration 0012's trigger) is held only that long, and
/// a page of article bodies is a few megabytes at most.
pub const REFOLD_PAGE: i64 = 100;

/// What one page of a pending re-index did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefoldStep {
    /// A page was read; this many of its documents were indexed again.
    Page(usize),
    /// Nothing is pending (any more).
    Done,
}

/// Indexes again, once per install and reason, the services and published articles
/// indexed before a change of the fold (0015: full-width text; 0036: traditional
/// characters), every pending reason to the end: only those whose text the fold
/// changes (one pass serves every reason, since `folds` asks the current fold). Returns how many documents were indexed again. The
/// service runs it page by page in the background (`jobs::refold`); tests call this.
pub async fn refold_index(db: &PgPool, segmenter: &Segmenter) -> Result<usize, AppError> {
    let mut refolded = 0;
    while let RefoldStep::Page(n) = refold_page(db, segmenter).await? {
        refolded += n;
    }
    Ok(refolded)
}

/// Indexes again the next page of a pending re-index, in one transaction that
/// also saves the cursor (a restart resumes after the last committed page) and, on
/// the last page, removes the pending marker. Replicas doing it at once take turns.
pub async fn refold_page(db: &PgPool, segmenter: &Segmenter) -> Result<RefoldStep, AppError> {
    use crate::store::search::RefoldCursor;
    let mut tx = db.begin().await?;
    let Some((reason, cursor)) = store::lock_refold(&mut tx).await? else {
        return Ok(RefoldStep::Done);
    };
    // Every write of the index (a service edited or deleted, an article taken down)
    // takes this lock in its transaction (migration 0012's trigger). Taken before the
    // page is read, not at its first write: a delete committing between the read and
    // the write would otherwise be undone by the stale row (the deleted service
    // indexed again, enabled, for good). Every index writer takes it before its
    // document row (store::search::upsert, remove), so none holds a document this
    // waits on.
    store::lock_index_writes(&mut tx).await?;
    // 'service_labels' (0036): every service, as each gains its category label and
    // department; articles have neither. A fold: only what the fold changes.
    let labels = reason == "service_labels";
    let mut refolded = 0;
    let next = match cursor {
        RefoldCursor::Articles(_) if labels => None,
        RefoldCursor::Services(after) => {
            let rows = crate::store::services::page(&mut *tx, after, REFOLD_PAGE).await?;
            for row in &rows {
                let texts = [&row.name, &row.description, &row.how_to_apply];
                let lists = row.keywords.iter().chain(&row.synonyms);
                if labels || texts.into_iter().chain(lists).any(|t| folds(t)) {
                    index_service(&mut tx, segmenter, row).await?;
                    refolded += 1;
                }
            }
            match rows.last() {
                Some(last) if rows.len() as i64 == REFOLD_PAGE => {
                    Some(RefoldCursor::Services(Some(last.id)))
                }
                _ => Some(RefoldCursor::Articles(None)),
            }
        }
        RefoldCursor::Articles(after) => {
            let rows =
                crate::store::articles::published_texts(&mut *tx, after, REFOLD_PAGE).await?;
            for row in &rows {
                if [&row.title, &row.digest, &row.body]
                    .into_iter()
                    .any(|t| folds(t))
                {
                    let text = ArticleText {
                        id: row.id,
                        account: &row.account,
                        title: &row.title,
                        digest: &row.digest,
                        body: &row.body,
                    };
                    let url = row.url.as_deref().unwrap_or_default();
                    index_article_text(&mut tx, segmenter, &text, url).await?;
                    refolded += 1;
                }
            }
            match rows.last() {
                Some(last) if rows.len() as i64 == REFOLD_PAGE => {
                    Some(RefoldCursor::Articles(Some(last.id)))
                }
                _ => None,
            }
        }
    };
    match next {
        Some(cursor) => store::save_refold(&mut tx, &reason, &cursor).await?,
        None => store::finish_refold(&mut tx, &reason).await?,
    }
    tx.commit().await?;
    Ok(RefoldStep::Page(refolded))
}

/// Indexes a directory service as it is after a change (in that change's transaction).
pub async fn index_service(
    tx: &mut Transaction<'_, Postgres>,
    segmenter: &Segmenter,
    row: &ServiceRow,
) -> Result<(), sqlx::Error> {
    let keywords = row
        .keywords
        .iter()
        .chain(&row.synonyms)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(" ");
    // The category's label (户政, in the hall's category bar) and the department
    // (临城市公安局) are words a citizen searches by and the dictionary keeps whole,
    // yet seldom in a service's own text: indexed with the body, at its low weight,
    // so a service naming them in its title still ranks above.
    let category = crate::store::services::category_name(&mut **tx, &row.category)
        .await?
        .unwrap_or_default();
    let body = format!(
        "{} {} {} {}",
        row.description, row.how_to_apply, category, row.department
    );
    let url = if row.url.is_empty() {
        format!(
            "miniprogram:{}:{}",
            row.miniprogram_appid, row.miniprogram_path
        )
    } else {
        row.url.clone()
    };
    store::upsert(
        tx,
        &IndexDoc {
            kind: "service",
            ref_id: row.id,
            accounts: std::iter::once(row.account.clone())
                .chain(row.also_shown_on.iter().cloned())
                .collect(),
            category: &row.category,
            title: &row.name,
            summary: &row.description,
            url: &url,
            enabled: row.enabled,
            title_words: segmenter.indexable(&row.name),
            keyword_words: segmenter.indexable(&keywords),
            body_words: segmenter.indexable(&body),
        },
    )
    .await
}

/// Drops a deleted service from the index.
pub async fn unindex_service(
    tx: &mut Transaction<'_, Postgres>,
    id: uuid::Uuid,
) -> Result<(), sqlx::Error> {
    store::remove(tx, "service", id).await
}

/// Indexes a published article at `url` (in the transaction that records the
/// publication): title weighted as a title, digest as keywords, body text as body.
/// An empty `url` indexes nothing (see `index_article_text`).
pub async fn index_article(
    tx: &mut Transaction<'_, Postgres>,
    segmenter: &Segmenter,
    row: &ArticleRow,
    url: &str,
) -> Result<(), sqlx::Error> {
    let text = ArticleText {
        id: row.id,
        account: &row.account,
        title: &row.title,
        digest: &row.digest,
        body: &row.body,
    };
    index_article_text(tx, segmenter, &text, url).await
}

/// What search indexes of an article.
struct ArticleText<'a> {
    id: uuid::Uuid,
    account: &'a str,
    title: &'a str,
    digest: &'a str,
    body: &'a str,
}

/// Indexes nothing for an article without a URL: a hit in the citizens' search
/// must link somewhere, and one that never had a URL (a mass send settled from
/// `message/mass/get`) or lost it (taken down after it went out) has nowhere to
/// link; every path (publication, late URL, post-publish edit, refold) comes here.
async fn index_article_text(
    tx: &mut Transaction<'_, Postgres>,
    segmenter: &Segmenter,
    row: &ArticleText<'_>,
    url: &str,
) -> Result<(), sqlx::Error> {
    if url.is_empty() {
        return Ok(());
    }
    let text = strip_html(row.body);
    let summary = if row.digest.is_empty() {
        text.as_str()
    } else {
        row.digest
    };
    store::upsert(
        tx,
        &IndexDoc {
            kind: "article",
            ref_id: row.id,
            accounts: vec![row.account.to_owned()],
            category: "",
            title: row.title,
            summary,
            url,
            enabled: true,
            title_words: segmenter.indexable(row.title),
            keyword_words: segmenter.indexable(row.digest),
            body_words: segmenter.indexable(&text),
        },
    )
    .await
}

/// Drops a retracted article from the index.
pub async fn unindex_article(
    tx: &mut Transaction<'_, Postgres>,
    id: uuid::Uuid,
) -> Result<(), sqlx::Error> {
    store::remove(tx, "article", id).await
}
