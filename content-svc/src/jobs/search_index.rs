//! Keeps this replica's in-memory search index in step with `search_documents`:
//! listens for the announcements of migration 0012, loads the whole index (at
//! start-up, before the replica serves), then applies each batch of announced
//! changes by reading those documents again (an announcement only says *which*
//! document changed; the row is the truth, and reading it twice does no harm).
//! When the listening connection is lost, or a search waited in vain for a change
//! committed before it, announcements may have been missed: the index stops
//! answering and is listened for and loaded again. Every replica runs this; nothing
//! here writes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use platform::shutdown::Drain;
use sqlx::PgPool;
use sqlx::postgres::{PgListener, PgPoolOptions};
use tokio::sync::mpsc;

use crate::app::AppError;
use crate::app::search::LiveIndex;
use crate::domain::search_index::DocKind;
use crate::store::search::CHANGES_CHANNEL;
use platform::failure_log::FailureLog;

/// Announcements applied together (one read of their documents).
const BATCH: usize = 500;
/// Waits between attempts while the database cannot be reached.
const RETRY_MIN: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(10);

/// What the listening connection passes on.
enum Heard {
    Changed(String),
    /// The connection was lost (and made again): announcements may be missing.
    Lost,
}

/// This replica's follower: listening, with the index loaded.
pub struct Follower {
    db: PgPool,
    live: Arc<LiveIndex>,
    listening: Option<Listening>,
}

/// Starts listening, then loads the whole index into `live` (at start-up, so the
/// replica serves its first search from memory).
pub async fn start(db: PgPool, live: Arc<LiveIndex>) -> Result<Follower, AppError> {
    let listening = listen(&db).await?;
    load(&live).await?;
    Ok(Follower {
        db,
        live,
        listening: Some(listening),
    })
}

impl Follower {
    /// Applies the announced changes until the drain begins; when the database
    /// fails, searches go to it (`LiveIndex::lost`) until listening and loading
    /// succeed again.
    pub async fn run(mut self, drain: Drain) {
        let mut retry = RETRY_MIN;
        // While the database is down every attempt fails: one line a minute.
        let mut log = FailureLog::new("search index").warnings();
        loop {
            let started = Instant::now();
            let outcome = tokio::select! {
                _ = drain.stopping().cancelled() => return,
                outcome = self.follow(&mut log) => outcome,
            };
            self.live.lost();
            if let Err(error) = outcome {
                metrics::counter!("content_search_index_failures_total").increment(1);
                // Searches go to the database meanwhile.
                log.failure("follow", &error, Instant::now());
            }
            // Back off only while failing fast; after a long healthy run, the shortest wait.
            if started.elapsed() > RETRY_MAX {
                retry = RETRY_MIN;
            }
            tokio::select! {
                _ = drain.stopping().cancelled() => return,
                _ = tokio::time::sleep(retry) => {}
            }
            retry = (retry * 2).min(RETRY_MAX);
        }
    }

    /// Listens and loads (unless still listening since start-up), then applies
    /// changes until they may have been missed; `log` hears that it works again
    /// once listening and loaded.
    async fn follow(&mut self, log: &mut FailureLog) -> Result<(), AppError> {
        let mut listening = match self.listening.take() {
            Some(listening) => listening,
            None => {
                let listening = listen(&self.db).await?;
                load(&self.live).await?;
                log.success(Instant::now());
                listening
            }
        };
        apply_changes(&self.live, &mut listening.heard).await
    }
}

/// The listening connection's task and what it hears; the task stops with it.
struct Listening {
    task: tokio::task::JoinHandle<()>,
    heard: mpsc::UnboundedReceiver<Heard>,
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Listens for announcements before anything is loaded: a change committed while
/// loading is then both in the load and announced, and applying it again is harmless.
async fn listen(db: &PgPool) -> Result<Listening, AppError> {
    // A connection of its own, beside the pool (`PgListener` keeps the connection
    // it is given for as long as it listens: taken from the service's pool, it would
    // leave a pool of one with none for the searches).
    let own = PgPoolOptions::new()
        .max_connections(1)
        .connect_with((*db.connect_options()).clone())
        .await?;
    let mut listener = PgListener::connect_with(&own).await?;
    listener.listen(CHANGES_CHANNEL).await?;
    let (heard_tx, heard) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        loop {
            let heard = match listener.try_recv().await {
                Ok(Some(note)) => Heard::Changed(note.payload().to_owned()),
                Ok(None) => Heard::Lost,
                Err(error) => {
                    tracing::warn!(%error, "search index: listening failed");
                    let _ = heard_tx.send(Heard::Lost);
                    return;
                }
            };
            if heard_tx.send(heard).is_err() {
                return;
            }
        }
    });
    Ok(Listening { task, heard })
}

async fn apply_changes(
    live: &LiveIndex,
    heard: &mut mpsc::UnboundedReceiver<Heard>,
) -> Result<(), AppError> {
    loop {
        let first = tokio::select! {
            first = heard.recv() => first,
            () = live.waited_in_vain() => {
                // A search waited a whole second for a change committed before it:
                // its announcement was missed (a connection dead without a word).
                tracing::warn!("search index: a committed change was never announced; listening and loading again");
                return Ok(());
            }
        };
        let Some(first) = first else {
            return Ok(());
        };
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match heard.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let mut keys: Vec<(DocKind, uuid::Uuid)> = Vec::new();
        let mut latest = 0;
        let mut lost = false;
        for heard in batch {
            match heard {
                Heard::Lost => lost = true,
                Heard::Changed(payload) => match parse(&payload) {
                    Some((kind, id, number)) => {
                        if !keys.contains(&(kind, id)) {
                            keys.push((kind, id));
                        }
                        latest = latest.max(number);
                    }
                    None => {
                        metrics::counter!("content_search_index_bad_announcements_total")
                            .increment(1);
                        tracing::warn!(payload, "search index: announcement not understood");
                    }
                },
            }
        }
        if lost {
            // Listened and loaded again from the start by the caller.
            tracing::warn!("search index: listening connection lost; listening and loading again");
            return Ok(());
        }
        live.apply(&keys, latest).await?;
    }
}

/// Loads the whole index, saying how long it took.
async fn load(live: &LiveIndex) -> Result<(), AppError> {
    let started = Instant::now();
    let documents = live.load().await?;
    metrics::counter!("content_search_index_loads_total").increment(1);
    tracing::info!(
        documents,
        seconds = started.elapsed().as_secs_f64(),
        "search index loaded in memory"
    );
    Ok(())
}

/// `kind ref_id number`, as migration 0012's trigger announces a change.
fn parse(payload: &str) -> Option<(DocKind, uuid::Uuid, i64)> {
    let mut parts = payload.split(' ');
    let kind = DocKind::parse(parts.next()?)?;
    let id = parts.next()?.parse().ok()?;
    let number = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some((kind, id, number))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_are_read_strictly() {
        let id = uuid::Uuid::from_u128(7);
        assert_eq!(
            parse(&format!("service {id} 42")),
            Some((DocKind::Service, id, 42))
        );
        assert_eq!(
            parse(&format!("article {id} 1")).map(|p| p.0),
            Some(DocKind::Article)
        );
        assert_eq!(parse(&format!("menu {id} 1")), None);
        assert_eq!(parse(&format!("service {id}")), None);
        assert_eq!(parse(&format!("service {id} 1 extra")), None);
        assert_eq!(parse("service not-a-uuid 1"), None);
    }
}
