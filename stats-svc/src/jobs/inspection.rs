//! The inspection job: every `interval`, the checks of every account for the office
//! day the clock says. Several replicas may run it: an alarm is stored once per
//! account, rule, subject and day (a unique key), and announced with it.

use std::time::Duration;

use chrono::FixedOffset;
use platform::outbox::OutboxSignal;
use platform::shutdown::Drain;
use sqlx::PgPool;
use work_calendar::WorkCalendar;

use crate::app::inspection::run_checks_in;
use crate::domain::inspection::InspectionRules;
use crate::domain::install::Install;
use crate::domain::rollup::office_day;

pub use super::{Clock, system_clock};

/// One run of the checks at the clock's time; returns the alarms newly raised. The
/// grace after a move is counted in `calendar`, as the scorecard counts it.
pub async fn check_once(
    db: &PgPool,
    rules: &InspectionRules,
    install: &Install,
    clock: &Clock,
    office: FixedOffset,
    calendar: &WorkCalendar,
) -> Result<usize, crate::app::AppError> {
    let now = clock();
    let today = office_day(now, office);
    run_checks_in(db, rules, install, today, now, office, calendar).await
}

/// The job's settings: what the checks read and raise alarms with, the clock and
/// time zone that say which office day it is, and the work calendar (holidays and
/// make-up working days) the grace after a move is counted in.
#[derive(Clone)]
pub struct InspectionJob {
    pub db: PgPool,
    pub rules: InspectionRules,
    pub install: Install,
    pub clock: Clock,
    pub office: FixedOffset,
    pub calendar: WorkCalendar,
}

impl InspectionJob {
    /// Runs the checks every `interval` until the drain begins, waking the outbox
    /// relay (`signal`) when an alarm was raised. The first check is an interval after
    /// start-up, not at once: after an outage the consumers start far behind, and a
    /// check then counted the citizens' messages already in and not the answers still
    /// queued (another durable), storing and announcing a false
    /// `interaction_broken/reply_path` alarm no later check withdraws.
    pub async fn run(self, interval: Duration, signal: OutboxSignal, drain: Drain) {
        tracing::info!(?interval, "inspection job started");
        let mut ticks = drain.every_after(interval);
        while ticks.next().await {
            match check_once(
                &self.db,
                &self.rules,
                &self.install,
                &self.clock,
                self.office,
                &self.calendar,
            )
            .await
            {
                Ok(0) => {}
                Ok(raised) => {
                    tracing::info!(raised, "inspection alarms raised");
                    signal.notify();
                }
                Err(error) => {
                    tracing::warn!(%error, "inspection failed; retrying next interval")
                }
            }
        }
        tracing::info!("inspection job stopped");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A replica starting after an outage has consumers far behind: a check at once
    /// counted the messages already in and not the answers still queued, stored a
    /// false `interaction_broken/reply_path` alarm and announced it. The first check
    /// waits an interval, the consumers' time to catch up.
    #[tokio::test(start_paused = true)]
    async fn the_first_check_waits_an_interval_after_start_up() {
        let checks = Arc::new(AtomicUsize::new(0));
        let checked = Arc::new(tokio::sync::Notify::new());
        let clock: Clock = {
            let (checks, checked) = (checks.clone(), checked.clone());
            Arc::new(move || {
                checks.fetch_add(1, Ordering::SeqCst);
                checked.notify_one();
                chrono::Utc::now()
            })
        };
        // Nothing listens there: each check fails at once, after reading the clock.
        let db = sqlx::postgres::PgPoolOptions::new()
            .connect_lazy("postgres://nobody@127.0.0.1:1/none")
            .unwrap();
        let job = InspectionJob {
            db,
            rules: InspectionRules::default(),
            install: Install::unnamed(),
            clock,
            office: FixedOffset::east_opt(8 * 3600).unwrap(),
            calendar: WorkCalendar::default(),
        };
        let drain = Drain::new();
        let interval = Duration::from_secs(3600);
        let task = tokio::spawn(job.run(interval, OutboxSignal::new(), drain.clone()));
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(checks.load(Ordering::SeqCst), 0, "checked at start-up");
        // The paused clock moves on to the first tick once everything is idle.
        checked.notified().await;
        assert_eq!(checks.load(Ordering::SeqCst), 1);
        drain.begin();
        task.await.unwrap();
    }
}
