//! Tells how long each account's oldest article has been in `publishing`
//! (`content_publishing_oldest_age_seconds{account}`), so that an article WeChat keeps
//! calling still publishing, or whose job nobody can ask about (the account's
//! credentials gone, its AppSecret rotated), is noticed: the reconciliation
//! (`jobs/reconcile.rs`) asks about it again and again but never gives it up, and
//! rightly (failing it while WeChat may still send it would lose what WeChat says
//! later), so only a person can. Alert *GovwxArticleStuckPublishing*.
//!
//! Every replica reads the same figure from the database (one indexed statement:
//! `Articles::oldest_publishing_by_account`), so any one of them serves it and the alert takes the
//! largest. A gauge keeps the last value it was set to: an account shown once is set
//! to 0 when it has no article in `publishing` left, rather than left showing the age
//! its last stuck article had when it settled. A read that fails (the database down)
//! leaves the gauges as they were, and is counted
//! (`content_publishing_age_failures_total`) and logged through a [`FailureLog`].

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::app::articles::Articles;
use platform::failure_log::FailureLog;
use platform::shutdown::Drain;

/// The gauge's name.
pub const GAUGE: &str = "content_publishing_oldest_age_seconds";
/// The longest wait between two reads: the alert waits hours, a read costs next to
/// nothing (the partial index holds only the articles in `publishing`).
const MAX_TICK: Duration = Duration::from_secs(30);

/// How often to read when the reconciliation asks about a job every
/// `reconcile_after`: as often as it looks for them (a quarter of it), so the gauge
/// drops soon after the reconciliation settles an article, and at most
/// [`MAX_TICK`] apart.
pub fn tick_for(reconcile_after: Duration) -> Duration {
    (reconcile_after / 4).clamp(Duration::from_millis(100), MAX_TICK)
}

/// Reads the ages every `every` (the first at once: the gauge is there as soon as
/// the replica serves) until the drain begins.
pub async fn run(articles: Articles, every: Duration, drain: Drain) {
    let mut ticks = drain.every(every);
    let mut log = FailureLog::new("publishing age").warnings();
    let mut shown = Shown::default();
    while ticks.next().await {
        match articles.oldest_publishing_by_account().await {
            Ok(ages) => {
                for (account, age) in shown.read(ages) {
                    metrics::gauge!(GAUGE, "account" => account).set(age);
                }
                log.success(Instant::now());
            }
            Err(error) => {
                metrics::counter!("content_publishing_age_failures_total").increment(1);
                log.failure("read", &error, Instant::now());
            }
        }
    }
}

/// The accounts this replica has shown an age for: each is set at every read, to 0
/// once it has no article in `publishing`.
#[derive(Debug, Default)]
struct Shown {
    accounts: BTreeMap<String, f64>,
}

impl Shown {
    /// The value of every account's gauge after a read that found `ages` (the
    /// accounts with an article in `publishing`, and the oldest one's age).
    fn read(&mut self, ages: Vec<(String, f64)>) -> Vec<(String, f64)> {
        for age in self.accounts.values_mut() {
            *age = 0.0;
        }
        self.accounts.extend(ages);
        self.accounts
            .iter()
            .map(|(account, age)| (account.clone(), *age))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ages(pairs: &[(&str, f64)]) -> Vec<(String, f64)> {
        pairs
            .iter()
            .map(|(a, age)| ((*a).to_owned(), *age))
            .collect()
    }

    #[test]
    fn an_account_whose_last_article_in_publishing_settled_drops_to_zero_and_stays_there() {
        let mut shown = Shown::default();
        assert_eq!(
            shown.read(ages(&[("city", 7200.0)])),
            ages(&[("city", 7200.0)])
        );
        assert_eq!(
            shown.read(ages(&[("county", 30.0)])),
            ages(&[("city", 0.0), ("county", 30.0)])
        );
        assert_eq!(shown.read(vec![]), ages(&[("city", 0.0), ("county", 0.0)]));
        assert_eq!(
            shown.read(ages(&[("city", 60.0)])),
            ages(&[("city", 60.0), ("county", 0.0)])
        );
    }

    #[test]
    fn nothing_in_publishing_shows_nothing() {
        assert_eq!(Shown::default().read(vec![]), vec![]);
    }

    #[test]
    fn the_tick_follows_the_reconciliation_within_bounds() {
        assert_eq!(tick_for(Duration::from_secs(600)), MAX_TICK);
        assert_eq!(tick_for(Duration::from_secs(60)), Duration::from_secs(15));
        assert_eq!(
            tick_for(Duration::from_millis(1)),
            Duration::from_millis(100)
        );
    }
}
