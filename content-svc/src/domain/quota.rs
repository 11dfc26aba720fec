//! WeChat's quotas, checked before calling (domain.md §3): a subscription account
//! may mass-send once a day, a service account four times a natural month, both
//! counted in Beijing time (WeChat resets at 00:00 there); and every API may be
//! called at most 60 times a minute per account (a sliding minute).

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, TimeZone, Utc};

/// The kind of an Official Account, which decides its quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountKind {
    /// 订阅号: 1 mass send a day.
    Subscription,
    /// 服务号: 4 mass sends a month.
    Service,
}

impl AccountKind {
    /// Parses `subscription` or `service`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "subscription" => Some(Self::Subscription),
            "service" => Some(Self::Service),
            _ => None,
        }
    }
}

/// A mass send WeChat would refuse, and when the next one is possible.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the {used} mass send(s) allowed this {period} are used; the next is possible at {next_at}"
)]
pub struct QuotaExhausted {
    pub used: usize,
    pub period: &'static str,
    pub next_at: DateTime<Utc>,
}

fn beijing() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("+08:00 is a valid offset")
}

/// Checks whether one more mass send fits, given the sends already made (`sent`, any order).
pub fn check_mass_send(
    kind: AccountKind,
    sent: &[DateTime<Utc>],
    now: DateTime<Utc>,
) -> Result<(), QuotaExhausted> {
    let tz = beijing();
    let local = now.with_timezone(&tz);
    let (quota, period, start, next): (usize, &'static str, NaiveDate, NaiveDate) = match kind {
        AccountKind::Subscription => {
            let day = local.date_naive();
            (1, "day", day, day.succ_opt().unwrap_or(day))
        }
        AccountKind::Service => {
            let first = NaiveDate::from_ymd_opt(local.year(), local.month(), 1)
                .unwrap_or(local.date_naive());
            let next = if local.month() == 12 {
                NaiveDate::from_ymd_opt(local.year() + 1, 1, 1)
            } else {
                NaiveDate::from_ymd_opt(local.year(), local.month() + 1, 1)
            }
            .unwrap_or(first);
            (4, "month", first, next)
        }
    };
    let used = sent
        .iter()
        .filter(|t| {
            let d = t.with_timezone(&tz).date_naive();
            d >= start && d < next
        })
        .count();
    if used < quota {
        return Ok(());
    }
    let next_at = tz
        .from_local_datetime(&next.and_hms_opt(0, 0, 0).unwrap_or_default())
        .single()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(now);
    Err(QuotaExhausted {
        used,
        period,
        next_at,
    })
}

/// Calls of one API an account may make in any minute.
pub const CALLS_PER_MINUTE: usize = 60;

/// A call WeChat's per-minute limit would refuse, and when the next is possible.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "WeChat allows {limit} {api} calls a minute per account; {account} made {used} in the last minute; the next is possible at {next_at}"
)]
pub struct RateLimited {
    pub account: String,
    pub api: String,
    pub used: usize,
    pub limit: usize,
    pub next_at: DateTime<Utc>,
}

/// Checks whether `wanted` more calls fit in the sliding minute before `now`, given
/// the calls already made (`calls`, any order); on refusal says how many were made
/// in the minute and when enough will have left it.
pub fn check_rate(
    limit: usize,
    calls: &[DateTime<Utc>],
    wanted: usize,
    now: DateTime<Utc>,
) -> Result<(), (usize, DateTime<Utc>)> {
    let window_start = now - chrono::Duration::seconds(60);
    let mut recent: Vec<DateTime<Utc>> = calls
        .iter()
        .copied()
        .filter(|t| *t > window_start && *t <= now)
        .collect();
    if recent.len() + wanted <= limit {
        return Ok(());
    }
    recent.sort();
    // The call whose leaving the window frees the last slot needed.
    let leaving = (recent.len() + wanted).saturating_sub(limit + 1);
    let next_at = recent
        .get(leaving)
        .map(|t| *t + chrono::Duration::seconds(60))
        .unwrap_or(now);
    Err((recent.len(), next_at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sixty_first_call_in_a_minute_waits_for_the_first_to_leave_it() {
        let start = at("2026-12-02T08:00:00Z");
        let calls: Vec<_> = (0..60)
            .map(|i| start + chrono::Duration::milliseconds(i * 500))
            .collect();
        let now = start + chrono::Duration::seconds(40);
        assert!(check_rate(60, &calls[..59], 1, now).is_ok());
        let (used, next_at) = check_rate(60, &calls, 1, now).unwrap_err();
        assert_eq!((used, next_at), (60, start + chrono::Duration::seconds(60)));
        // Two more need the second call to leave too.
        let (_, next_at) = check_rate(60, &calls, 2, now).unwrap_err();
        assert_eq!(next_at, start + chrono::Duration::milliseconds(60_500));
        // A minute later the window is empty again.
        assert!(check_rate(60, &calls, 1, start + chrono::Duration::seconds(61)).is_ok());
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_fifth_mass_send_in_a_month_on_a_service_account_is_refused_until_the_first() {
        let sent: Vec<_> = [
            "2026-12-01T02:00:00Z",
            "2026-12-05T02:00:00Z",
            "2026-12-09T02:00:00Z",
            "2026-12-10T02:00:00Z",
        ]
        .map(at)
        .to_vec();
        let now = at("2026-12-20T02:00:00Z");
        assert!(check_mass_send(AccountKind::Service, &sent[..3], now).is_ok());
        let refused = check_mass_send(AccountKind::Service, &sent, now).unwrap_err();
        assert_eq!(refused.next_at, at("2026-12-31T16:00:00Z"));
        assert_eq!(refused.period, "month");
    }

    #[test]
    fn a_second_send_in_a_beijing_day_is_refused_but_the_next_day_is_free() {
        // 23:30 UTC on the 1st is already the 2nd in Beijing.
        let sent = vec![at("2026-12-01T23:30:00Z")];
        assert!(
            check_mass_send(AccountKind::Subscription, &sent, at("2026-12-02T10:00:00Z")).is_err()
        );
        assert!(
            check_mass_send(AccountKind::Subscription, &sent, at("2026-12-01T15:00:00Z")).is_ok()
        );
        let refused = check_mass_send(AccountKind::Subscription, &sent, at("2026-12-02T10:00:00Z"))
            .unwrap_err();
        assert_eq!(refused.next_at, at("2026-12-02T16:00:00Z"));
    }
}
