//! How a periodic job reports a failure that repeats. While PostgreSQL is down
//! every pass fails (content-svc's scheduler twice a second per replica, every
//! service's outbox relay each time it wakes), and a line per failure buries
//! everything else in the log: the first failure is logged, then at
//! most one line per [`EVERY`] while it keeps failing, saying how many failures
//! were not logged, and one line when the job works again. Every failure is counted
//! by the caller's metric, logged or not. The clock is the caller's (`now`), so the
//! rule is tested without waiting.

use std::fmt::Display;
use std::time::{Duration, Instant};

/// The most one failing job logs: a line a minute.
pub const EVERY: Duration = Duration::from_secs(60);

/// What to say about one outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// Log this failure; `suppressed` failures since the last line were not logged.
    Failure { suppressed: u64 },
    /// Say nothing: a failure within [`EVERY`] of the last line, or a success
    /// while working.
    Quiet,
    /// The job works again, after `failures` failures over `lasted`.
    Recovered { failures: u64, lasted: Duration },
}

/// The failures of one job since it last worked.
#[derive(Debug, Clone, Copy)]
struct Streak {
    started: Instant,
    logged_at: Instant,
    failures: u64,
    suppressed: u64,
}

/// One job's failure log (see the module's doc).
#[derive(Debug, Clone)]
pub struct FailureLog {
    job: &'static str,
    /// Failures are warnings (the job's work waits or goes another way), not errors.
    warn: bool,
    streak: Option<Streak>,
}

impl FailureLog {
    /// The log of `job` (named in every line), at most a line per [`EVERY`].
    pub fn new(job: &'static str) -> Self {
        Self {
            job,
            warn: false,
            streak: None,
        }
    }

    /// Logs failures as warnings: the job's work waits (or goes another way).
    pub fn warnings(mut self) -> Self {
        self.warn = true;
        self
    }

    /// A failure at `now`: what to say about it.
    pub fn failed(&mut self, now: Instant) -> Report {
        match &mut self.streak {
            None => {
                self.streak = Some(Streak {
                    started: now,
                    logged_at: now,
                    failures: 1,
                    suppressed: 0,
                });
                Report::Failure { suppressed: 0 }
            }
            Some(streak) => {
                streak.failures += 1;
                if now.saturating_duration_since(streak.logged_at) >= EVERY {
                    let suppressed = std::mem::take(&mut streak.suppressed);
                    streak.logged_at = now;
                    Report::Failure { suppressed }
                } else {
                    streak.suppressed += 1;
                    Report::Quiet
                }
            }
        }
    }

    /// A success at `now`: what to say about it.
    pub fn succeeded(&mut self, now: Instant) -> Report {
        match self.streak.take() {
            None => Report::Quiet,
            Some(streak) => Report::Recovered {
                failures: streak.failures,
                lasted: now.saturating_duration_since(streak.started),
            },
        }
    }

    /// Logs a failure of the job's `step` (`error`), as [`Self::failed`] decides.
    pub fn failure(&mut self, step: &'static str, error: &dyn Display, now: Instant) {
        let Report::Failure { suppressed } = self.failed(now) else {
            return;
        };
        let job = self.job;
        // The same line at either level (tracing's level is part of the macro).
        if self.warn {
            tracing::warn!(
                job, step, %error, suppressed,
                "periodic job failing (one line a minute)"
            );
        } else {
            tracing::error!(
                job, step, %error, suppressed,
                "periodic job failing (one line a minute)"
            );
        }
    }

    /// Logs that the job works again, if it was failing.
    pub fn success(&mut self, now: Instant) {
        if let Report::Recovered { failures, lasted } = self.succeeded(now) {
            tracing::info!(
                job = self.job,
                failures,
                seconds = lasted.as_secs(),
                "periodic job works again"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_failure_twice_a_second_is_logged_first_then_once_a_minute_with_the_count_left_out() {
        let start = Instant::now();
        let mut log = FailureLog::new("scheduler");
        assert_eq!(log.failed(start), Report::Failure { suppressed: 0 });
        // Every 500 ms for a minute: quiet.
        for tick in 1..120 {
            assert_eq!(log.failed(start + ms(500 * tick)), Report::Quiet, "{tick}");
        }
        // A minute after the first line: one line for the 119 left out.
        assert_eq!(
            log.failed(start + ms(60_000)),
            Report::Failure { suppressed: 119 }
        );
        assert_eq!(log.failed(start + ms(60_500)), Report::Quiet);
        assert_eq!(log.failed(start + ms(119_999)), Report::Quiet);
        assert_eq!(
            log.failed(start + ms(120_000)),
            Report::Failure { suppressed: 2 }
        );
    }

    #[test]
    fn the_first_success_after_failures_says_how_many_and_how_long_then_all_is_quiet() {
        let start = Instant::now();
        let mut log = FailureLog::new("scheduler");
        assert_eq!(log.succeeded(start), Report::Quiet);
        for tick in 0..5 {
            log.failed(start + ms(500 * tick));
        }
        assert_eq!(
            log.succeeded(start + ms(3_000)),
            Report::Recovered {
                failures: 5,
                lasted: ms(3_000)
            }
        );
        assert_eq!(log.succeeded(start + ms(3_500)), Report::Quiet);
        // A new outage is logged at once, whenever the last line was.
        assert_eq!(
            log.failed(start + ms(4_000)),
            Report::Failure { suppressed: 0 }
        );
    }
}
