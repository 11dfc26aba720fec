//! WARN lines that would otherwise come once per callback, at most one per account
//! and cause in each [`LOG_PERIOD`]: a client sending garbage to a misconfigured
//! account, or a NATS outage at hundreds of callbacks a second, must not write a line
//! per request. The line that is written carries `suppressed`, how many were left out
//! since the previous one. Metrics still count every occurrence.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// At most one line per account and cause in this period.
pub const LOG_PERIOD: Duration = Duration::from_secs(10);

/// Which occurrences get a log line: the first of each (account, cause) in every
/// [`LOG_PERIOD`]. Keys are configured account ids and static causes: bounded.
#[derive(Default)]
pub struct LogLimiter {
    windows: Mutex<HashMap<&'static str, HashMap<Box<str>, Window>>>,
}

struct Window {
    until: Instant,
    suppressed: u64,
}

impl LogLimiter {
    /// `Some(lines left out since the last one)` when this occurrence, at `now`, is
    /// to be logged; `None` when it is to be left out (and counted for the next line).
    pub fn admit(&self, account: &str, cause: &'static str, now: Instant) -> Option<u64> {
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        let by_account = windows.entry(cause).or_default();
        match by_account.get_mut(account) {
            Some(window) if now < window.until => {
                window.suppressed += 1;
                None
            }
            Some(window) => {
                window.until = now + LOG_PERIOD;
                Some(std::mem::take(&mut window.suppressed))
            }
            None => {
                let window = Window {
                    until: now + LOG_PERIOD,
                    suppressed: 0,
                };
                by_account.insert(account.into(), window);
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_is_logged_once_per_account_in_a_period() {
        let log = LogLimiter::default();
        let start = Instant::now();
        assert_eq!(log.admit("city", "bad_signature", start), Some(0));
        for _ in 0..100 {
            assert_eq!(log.admit("city", "bad_signature", start), None);
        }
        assert_eq!(log.admit("city", "decrypt_failed", start), Some(0));
        assert_eq!(log.admit("county", "bad_signature", start), Some(0));
        let later = start + LOG_PERIOD;
        assert_eq!(
            log.admit("city", "bad_signature", later),
            Some(100),
            "the next line says how many were left out"
        );
        assert_eq!(log.admit("city", "bad_signature", later), None);
    }

    #[test]
    fn an_outage_writes_one_line_per_account_every_period_with_the_count_left_out() {
        let log = LogLimiter::default();
        let start = Instant::now();
        let cause = crate::publish::UNACKNOWLEDGED;
        // 300 failed publishes a second for 25 s, on two accounts.
        let mut lines = Vec::new();
        for tick in 0..25 * 300 {
            let now = start + Duration::from_millis(tick * 1000 / 300);
            for account in ["city", "county"] {
                if let Some(suppressed) = log.admit(account, cause, now) {
                    lines.push((account, suppressed));
                }
            }
        }
        // At 0 s, 10 s and 20 s, each with what the previous period left out.
        let per_account = |account| {
            lines
                .iter()
                .filter(|(a, _)| *a == account)
                .map(|(_, suppressed)| *suppressed)
                .collect::<Vec<_>>()
        };
        assert_eq!(per_account("city"), [0, 2999, 2999]);
        assert_eq!(per_account("county"), [0, 2999, 2999]);
    }
}
