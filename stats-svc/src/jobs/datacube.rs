//! The datacube job: every `interval`, the replica that holds the `datacube` lease
//! (a PostgreSQL row, so exactly one replica pulls at a time) pulls each account's
//! due ranges (`app::reach`). A replica that dies mid-pull leaves its progress; the
//! lease expires and another continues from there.

use std::sync::Arc;
use std::time::Duration;

use chrono::FixedOffset;
use platform::shutdown::Drain;
use sqlx::PgPool;
use wechat::api::Client;
use work_calendar::WorkCalendar;

use super::Clock;
use crate::app::reach::{
    failing_accounts, forget_failures_except, pull_account, release_lease, take_lease,
};
use crate::domain::AccountId;

/// How long a lease lasts: far longer than one account's pull (a few hundred calls
/// at most); it is renewed before each account.
const LEASE: chrono::TimeDelta = chrono::TimeDelta::minutes(30);

/// One account's API client.
pub type AccountClients = Arc<Vec<(AccountId, Client)>>;

/// The job's settings.
#[derive(Clone)]
pub struct DatacubeJob {
    pub db: PgPool,
    pub clients: AccountClients,
    pub clock: Clock,
    pub office: FixedOffset,
    /// The office's work calendar: which month is final (no pull replaces its entries).
    pub calendar: WorkCalendar,
    pub backfill_days: u64,
    /// This replica's name in the lease.
    pub holder: String,
}

impl DatacubeJob {
    /// One run: takes the lease, pulls every account, gives the lease back. Returns
    /// the calls made, or `None` when another replica holds the lease.
    pub async fn run_once(&self, drain: &Drain) -> Result<Option<usize>, crate::app::AppError> {
        let now = (self.clock)();
        if !take_lease(&self.db, &self.holder, now, LEASE).await? {
            return Ok(None);
        }
        let mut calls = 0;
        let stop = || drain.is_stopping();
        let mut result = Ok(());
        for (index, (account, client)) in self.clients.iter().enumerate() {
            // Renewed before each account, so a pull of many accounts that outlasts
            // one lease is not joined by a second replica halfway.
            if index > 0 && !take_lease(&self.db, &self.holder, (self.clock)(), LEASE).await? {
                tracing::warn!(
                    account = account.as_str(),
                    "datacube lease lost; another replica continues"
                );
                return Ok(None);
            }
            match pull_account(
                &self.db,
                client,
                account,
                now,
                self.office,
                &self.calendar,
                self.backfill_days,
                &stop,
            )
            .await
            {
                Ok(report) => {
                    calls += report.calls;
                    // One account's failure (a suspended account, a rotated AppSecret)
                    // does not stop the others; it is recorded and retried next run.
                    for (api, error) in &report.failures {
                        tracing::warn!(
                            account = account.as_str(),
                            api = api.as_str(),
                            %error,
                            "datacube pull failed"
                        );
                    }
                }
                Err(error) => {
                    tracing::warn!(account = account.as_str(), %error, "datacube pull failed");
                    result = Err(error);
                }
            }
        }
        let pulled: Vec<String> = self
            .clients
            .iter()
            .map(|(account, _)| account.as_str().to_owned())
            .collect();
        forget_failures_except(&self.db, &pulled).await?;
        release_lease(&self.db, &self.holder).await?;
        metrics::counter!("stats_datacube_calls_total").increment(calls as u64);
        result.map(|()| Some(calls))
    }

    /// Runs every `interval` until the drain begins.
    pub async fn run(self, interval: Duration, drain: Drain) {
        tracing::info!(
            ?interval,
            accounts = self.clients.len(),
            "datacube job started"
        );
        let mut ticks = drain.every(interval);
        while ticks.next().await {
            // A call in flight when the drain begins is abandoned: what was stored
            // stays, no transaction is open across a call, and the next run goes on.
            let outcome = tokio::select! {
                () = drain.stopping().cancelled() => {
                    // Bounded: with the database unreachable the lease simply expires.
                    let release = release_lease(&self.db, &self.holder);
                    if !matches!(tokio::time::timeout(Duration::from_secs(1), release).await, Ok(Ok(()))) {
                        tracing::warn!("datacube lease not released; it expires");
                    }
                    break;
                }
                outcome = self.run_once(&drain) => outcome,
            };
            // Every replica exports the count from the database, so the gauge does not
            // depend on which one holds the lease (nor stay stale on one that lost it).
            match failing_accounts(&self.db).await {
                Ok(failing) => {
                    metrics::gauge!("stats_datacube_accounts_failing").set(failing as f64)
                }
                Err(error) => tracing::warn!(%error, "datacube failures not counted"),
            }
            match outcome {
                Ok(Some(calls)) if calls > 0 => tracing::info!(calls, "datacube pulled"),
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "datacube run incomplete; retrying next interval")
                }
            }
        }
        tracing::info!("datacube job stopped");
    }
}
