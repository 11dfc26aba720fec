//! Indexes again, in the background, the documents indexed before a change of the
//! fold (migration 0015: full-width text; 0036: traditional characters), each
//! pending reason this release knows in turn (`store::search::REFOLD_REASONS`; the
//! previous release's replicas do only the reasons they know): a page per transaction (`app::search::
//! refold_page`), so the replica is ready at once, memory holds one page of bodies,
//! and publications wait on the `search_version` row lock for one page at most.
//! The cursor is saved with each page: a restart (or another replica) resumes after
//! the last committed page. Until it is done, a full-width or traditional query may
//! miss a document not yet indexed again, as it did before the fold.

use std::time::{Duration, Instant};

use platform::shutdown::Drain;
use sqlx::PgPool;

use crate::app::search::{RefoldStep, refold_page};
use crate::domain::search::Segmenter;
use platform::failure_log::FailureLog;

/// Waits after a failed page before trying it again.
const RETRY: Duration = Duration::from_secs(5);

/// Runs the pending refolds, if any, to their end or until the drain begins.
pub async fn run(db: PgPool, segmenter: Segmenter, drain: Drain) {
    let mut refolded = 0;
    // While the database is down every page fails: one line a minute.
    let mut log = FailureLog::new("search refold").warnings();
    loop {
        if drain.stopping().is_cancelled() {
            return;
        }
        let page = refold_page(&db, &segmenter).await;
        if page.is_ok() {
            log.success(Instant::now());
        }
        match page {
            Ok(RefoldStep::Page(n)) => refolded += n,
            Ok(RefoldStep::Done) => break,
            Err(error) => {
                metrics::counter!("content_search_refold_failures_total").increment(1);
                log.failure("page", &error, Instant::now());
                tokio::select! {
                    _ = drain.stopping().cancelled() => return,
                    _ = tokio::time::sleep(RETRY) => {}
                }
            }
        }
    }
    if refolded > 0 {
        tracing::info!(documents = refolded, "search index refolded");
    }
}
