//! How long citizens' data is kept (README, "What is kept, and for how long").
//!
//! The rule: a citizen's personal information (their openid, what they wrote, what
//! was written to or about them) is kept only while it serves handling their request
//! and the time a dispute about that handling can still be raised; the record that a
//! request was received, routed, answered on time or late, closed and rated (the
//! department's 工单 skeleton, which the statistics and the annual assessment count)
//! is kept without it. PIPL (个人信息保护法) art. 19 (the shortest period the purpose
//! needs) and art. 47 (delete once the purpose is met, or on the person's request);
//! domain.md §2 (the 工单 records handling, 督办 and 回访, which the skeleton keeps).

use std::time::Duration;

use chrono::TimeDelta;

/// What replaces the openid of a ticket (and the author of its citizen's messages)
/// once its citizen data is removed. Not a valid WeChat openid, so nothing can be sent
/// to it, and the same for every ticket, so it links nobody's tickets together.
pub const ERASED_OPENID: &str = "(erased)";

/// `TICKET_RETENTION`'s default: a year after closing. Longer than every window in
/// which the handling can still be questioned with the ticket in hand (回访 the day
/// after closing and a redo, 信访 review and re-review of 30 days each, administrative
/// reconsideration within 60 days and a lawsuit within 6 months of the answer), and
/// the annual assessment's cycle (国办秘函〔2019〕19号 checks the year's 留言办理).
pub const DEFAULT_TICKET_RETENTION: Duration = Duration::from_secs(365 * 24 * 3600);

/// `FOLLOWER_RETENTION`'s default: 30 days after an unfollow. WeChat asks accounts to
/// delete a user's data when they unfollow; a month keeps a citizen who comes back
/// soon their tags, and outlives every late callback (WECHAT_INBOUND keeps 7 days).
pub const DEFAULT_FOLLOWER_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// The shortest `TICKET_RETENTION`: the rating question's window, so a citizen's
/// digit can still rate the ticket it was asked about.
pub const MIN_TICKET_RETENTION: Duration = Duration::from_secs(48 * 3600);

/// The shortest `FOLLOWER_RETENTION`: WECHAT_INBOUND's 7 days. A follow delivered
/// late must still find the unfollow that came after it, or it would bring the
/// follower back.
pub const MIN_FOLLOWER_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// How long a create's request id is kept (`rule_requests`): a retry comes within
/// minutes of the call it repeats; after 30 days the same id creates a new rule.
pub const RULE_REQUEST_RETENTION: TimeDelta = TimeDelta::days(30);

/// The configured periods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// How long after closing a ticket keeps its citizen data.
    pub closed_tickets: TimeDelta,
    /// How long after unfollowing a follower's row (and tags) is kept.
    pub unfollowed: TimeDelta,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        Self::new(DEFAULT_TICKET_RETENTION, DEFAULT_FOLLOWER_RETENTION)
            .expect("the defaults are above the minimums")
    }
}

/// A period shorter than what the service still needs the data for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be at least {min} ({why})")]
pub struct TooShort {
    pub min: &'static str,
    pub why: &'static str,
}

impl RetentionPolicy {
    /// The policy for these periods; each is refused below its minimum (which names
    /// the variable's error: [`check_tickets`](Self::check_tickets)).
    pub fn new(closed_tickets: Duration, unfollowed: Duration) -> Result<Self, TooShort> {
        Ok(Self {
            closed_tickets: Self::check_tickets(closed_tickets)?,
            unfollowed: Self::check_followers(unfollowed)?,
        })
    }

    /// `TICKET_RETENTION`, at least [`MIN_TICKET_RETENTION`].
    pub fn check_tickets(period: Duration) -> Result<TimeDelta, TooShort> {
        at_least(
            period,
            MIN_TICKET_RETENTION,
            "48h",
            "a closed ticket's citizen may rate it within 48 hours",
        )
    }

    /// `FOLLOWER_RETENTION`, at least [`MIN_FOLLOWER_RETENTION`].
    pub fn check_followers(period: Duration) -> Result<TimeDelta, TooShort> {
        at_least(
            period,
            MIN_FOLLOWER_RETENTION,
            "7d",
            "a follow delivered late within WECHAT_INBOUND's 7 days must find the unfollow",
        )
    }
}

fn at_least(
    period: Duration,
    min: Duration,
    min_text: &'static str,
    why: &'static str,
) -> Result<TimeDelta, TooShort> {
    if period < min {
        return Err(TooShort { min: min_text, why });
    }
    // Years of seconds fit; a period past TimeDelta's range keeps data "forever".
    Ok(TimeDelta::from_std(period).unwrap_or(TimeDelta::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_a_year_for_closed_tickets_and_a_month_after_an_unfollow() {
        let policy = RetentionPolicy::default();
        assert_eq!(policy.closed_tickets, TimeDelta::days(365));
        assert_eq!(policy.unfollowed, TimeDelta::days(30));
    }

    #[test]
    fn periods_shorter_than_what_the_service_still_needs_are_refused() {
        let hour = Duration::from_secs(3600);
        let error = RetentionPolicy::check_tickets(hour * 47).unwrap_err();
        assert_eq!(error.min, "48h");
        assert!(RetentionPolicy::check_tickets(hour * 48).is_ok());
        let error = RetentionPolicy::check_followers(hour * 24 * 6).unwrap_err();
        assert_eq!(error.min, "7d");
        assert!(RetentionPolicy::check_followers(hour * 24 * 7).is_ok());
    }
}
