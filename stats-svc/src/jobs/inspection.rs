//! The inspection job: every `interval`, the checks of every account for the office
//! day the clock says. Several replicas may run it: an alarm is stored once per
//! account, rule, subject and day (a unique key), and announced with it.

use std::time::Duration;

use chrono::FixedOffset;
use platform::outbox::OutboxSignal;
use platform::shutdown::Drain;
use sqlx::PgPool;

use crate::app::inspection::run_checks;
use crate::domain::inspection::InspectionRules;
use crate::domain::install::Install;
use crate::domain::rollup::office_day;

pub use super::{Clock, system_clock};

/// One run of the checks at the clock's time; returns the alarms newly raised.
pub async fn check_once(
    db: &PgPool,
    rules: &InspectionRules,
    install: &Install,
    clock: &Clock,
    office: FixedOffset,
) -> Result<usize, crate::app::AppError> {
    let now = clock();
    run_checks(db, rules, install, office_day(now, office), now, office).await
}

/// The job's settings: what the checks read and raise alarms with, and the clock and
/// time zone that say which office day it is.
#[derive(Clone)]
pub struct InspectionJob {
    pub db: PgPool,
    pub rules: InspectionRules,
    pub install: Install,
    pub clock: Clock,
    pub office: FixedOffset,
}

impl InspectionJob {
    /// Runs the checks every `interval` until the drain begins, waking the outbox
    /// relay (`signal`) when an alarm was raised.
    pub async fn run(self, interval: Duration, signal: OutboxSignal, drain: Drain) {
        tracing::info!(?interval, "inspection job started");
        let mut ticks = drain.every(interval);
        while ticks.next().await {
            match check_once(
                &self.db,
                &self.rules,
                &self.install,
                &self.clock,
                self.office,
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
