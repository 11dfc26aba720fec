//! Working time: office hours, weekends, public holidays and make-up working days
//! (调休), and the deadlines counted in it.
//!
//! Time limits for answering citizens are set in working days by local 12345 rules
//! (consultations 3 working days, complaints 13, …; see domain.md §2), and differ
//! by city, so every number here comes from configuration. The calendar itself is
//! the `work-calendar` crate, shared with stats-svc (which judges moved tickets in
//! the same working time); the ticket policy on top of it is here.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

pub use work_calendar::{CalendarError, TimeLimit, WorkCalendar};

/// Deadlines of a ticket: acknowledgement and resolution, by category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadlinePolicy {
    pub calendar: WorkCalendar,
    /// First human response; domain.md recommends one working day.
    pub acknowledge: TimeLimit,
    /// Resolution limits by category; `default` for any other category.
    pub resolve: BTreeMap<String, TimeLimit>,
    pub default_resolve: TimeLimit,
}

/// A ticket's two deadlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    pub acknowledge_due_at: DateTime<Utc>,
    pub resolve_due_at: DateTime<Utc>,
}

/// WeChat lets an account answer through the customer-service API only within 48 hours
/// of the citizen's last interaction; an answer later is held until they write again.
pub const CUSTOMER_SERVICE_WINDOW: Duration = Duration::hours(48);
/// How long before the window closes the department is warned about a ticket still
/// unanswered (`jobs::sweeper`): time to answer on the same or the next morning.
pub const WINDOW_WARNING: Duration = Duration::hours(6);

/// When the customer-service window of a citizen whose last interaction was at
/// `last_interaction` closes: an answer after it waits for their next message.
///
/// It is deliberately not a deadline: the department is judged (escalated, scored)
/// on the working-day calendar, since capping that at 48 hours put deadlines inside
/// weekends and holidays, when offices are closed. The window only decides whether
/// an answer reaches the citizen now, and warns the department before it closes.
pub fn window_closes_at(last_interaction: DateTime<Utc>) -> DateTime<Utc> {
    last_interaction + CUSTOMER_SERVICE_WINDOW
}

impl Default for DeadlinePolicy {
    /// domain.md §2: acknowledge within 1 working day; consultations and help
    /// requests in 3 working days, complaints and suggestions in 13, emergencies in 2 hours.
    fn default() -> Self {
        let resolve = [
            ("consultation", TimeLimit::WorkingDays(3)),
            ("help", TimeLimit::WorkingDays(3)),
            ("complaint", TimeLimit::WorkingDays(13)),
            ("suggestion", TimeLimit::WorkingDays(13)),
            ("emergency", TimeLimit::Hours(2)),
        ]
        .into_iter()
        .map(|(category, limit)| (category.to_owned(), limit))
        .collect();
        Self {
            calendar: WorkCalendar::default(),
            acknowledge: TimeLimit::WorkingDays(1),
            resolve,
            default_resolve: TimeLimit::WorkingDays(3),
        }
    }
}

impl DeadlinePolicy {
    /// Parses `consultation=3d,complaint=13d,emergency=2h,default=3d`.
    pub fn parse_resolve_limits(
        raw: &str,
    ) -> Result<(BTreeMap<String, TimeLimit>, Option<TimeLimit>), String> {
        let mut limits = BTreeMap::new();
        let mut default = None;
        for item in raw.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (category, limit) = item
                .split_once('=')
                .ok_or_else(|| format!("{item:?}: expected category=limit"))?;
            let limit: TimeLimit = limit.parse().map_err(|e: CalendarError| e.to_string())?;
            match category.trim() {
                "default" => default = Some(limit),
                category => {
                    limits.insert(category.to_owned(), limit);
                }
            }
        }
        Ok((limits, default))
    }

    /// Refuses a category with no resolve limit of its own (empty is the default
    /// category): its tickets would get the default limit without a word, e.g.
    /// `Emergency` for `emergency`, 3 working days instead of 2 hours.
    pub fn check_category(&self, category: &str) -> Result<(), String> {
        if category.is_empty() || self.resolve.contains_key(category) {
            return Ok(());
        }
        let known: Vec<&str> = self.resolve.keys().map(String::as_str).collect();
        Err(format!(
            "{category:?} has no resolve limit (INTERACTION_RESOLVE_LIMITS); the categories are {}",
            known.join(", ")
        ))
    }

    /// The deadlines of a ticket of `category` opened at `arrived`, both on the
    /// working-day calendar (the customer-service window is [`window_closes_at`]).
    pub fn deadlines(&self, arrived: DateTime<Utc>, category: &str) -> Deadlines {
        let resolve_limit = self
            .resolve
            .get(category)
            .copied()
            .unwrap_or(self.default_resolve);
        let resolve_due_at = self.calendar.deadline(arrived, resolve_limit);
        let acknowledge_due_at = self
            .calendar
            .deadline(arrived, self.acknowledge)
            .min(resolve_due_at);
        Deadlines {
            acknowledge_due_at,
            resolve_due_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{FixedOffset, NaiveTime, TimeZone};
    use std::collections::BTreeSet;

    #[test]
    fn only_categories_with_a_resolve_limit_are_taken() {
        let policy = DeadlinePolicy::default();
        assert_eq!(policy.check_category("emergency"), Ok(()));
        assert_eq!(policy.check_category(""), Ok(()), "the default category");
        let refused = policy.check_category("Emergency").unwrap_err();
        assert!(
            refused.starts_with("\"Emergency\" has no resolve limit")
                && refused.ends_with("complaint, consultation, emergency, help, suggestion"),
            "{refused}"
        );
    }

    /// A local (UTC+8) time as UTC.
    fn cst(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        FixedOffset::east_opt(8 * 3600)
            .unwrap()
            .with_ymd_and_hms(y, m, d, h, min, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn acknowledgement_is_judged_on_working_days_and_the_window_is_apart() {
        let policy = DeadlinePolicy::default();
        // Friday 16:00 + 1 working day = Monday 17:30, beyond the 48-hour window: the
        // department is still judged by Monday (the window is not a deadline).
        let friday = cst(2026, 11, 27, 16, 0);
        let deadlines = policy.deadlines(friday, "consultation");
        assert_eq!(deadlines.acknowledge_due_at, cst(2026, 11, 30, 17, 30));
        // The window closes Sunday 16:00; the sweeper warns 6 hours before.
        assert_eq!(window_closes_at(friday), cst(2026, 11, 29, 16, 0));
        assert!(window_closes_at(friday) < deadlines.acknowledge_due_at);
        // Friday is day 0 (offices still open); 3 working days later is Wednesday.
        assert_eq!(deadlines.resolve_due_at, cst(2026, 12, 2, 17, 30));
        // An emergency must be acknowledged no later than it must be resolved.
        let emergency = policy.deadlines(friday, "emergency");
        assert_eq!(emergency.resolve_due_at, friday + Duration::hours(2));
        assert_eq!(emergency.acknowledge_due_at, emergency.resolve_due_at);
        // Unknown categories get the default.
        assert_eq!(
            policy.deadlines(friday, "other").resolve_due_at,
            deadlines.resolve_due_at
        );
    }

    #[test]
    fn a_ticket_arriving_on_a_holiday_or_weekend_is_due_on_a_working_day() {
        // National Day week 2026: Oct 1–7 off (Thu Oct 1 .. Wed Oct 7).
        let policy = DeadlinePolicy {
            calendar: WorkCalendar::new(
                FixedOffset::east_opt(8 * 3600).unwrap(),
                NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
                NaiveTime::from_hms_opt(17, 30, 0).unwrap(),
                WorkCalendar::parse_dates("2026-10-01..2026-10-07").unwrap(),
                BTreeSet::new(),
            )
            .unwrap(),
            ..DeadlinePolicy::default()
        };
        let working_day = |at: DateTime<Utc>| {
            policy
                .calendar
                .is_working_day(at.with_timezone(&policy.calendar.offset()).date_naive())
        };
        // Written on Fri Oct 2 10:00 (a holiday): counted from Thu Oct 8 (day 0), so
        // acknowledged by Fri Oct 9 17:30, not Oct 4 09:00 inside the holiday.
        let holiday = cst(2026, 10, 2, 10, 0);
        let deadlines = policy.deadlines(holiday, "consultation");
        assert_eq!(deadlines.acknowledge_due_at, cst(2026, 10, 9, 17, 30));
        assert!(working_day(deadlines.acknowledge_due_at));
        assert!(working_day(deadlines.resolve_due_at));
        // Written on a Saturday: due on Tuesday, a working day.
        let saturday = cst(2026, 11, 28, 11, 0);
        let deadlines = policy.deadlines(saturday, "complaint");
        assert_eq!(deadlines.acknowledge_due_at, cst(2026, 12, 1, 17, 30));
        assert!(working_day(deadlines.acknowledge_due_at));
        assert!(working_day(deadlines.resolve_due_at));
    }

    #[test]
    fn resolve_limits_parse_and_bad_ones_are_explained() {
        let (limits, default) =
            DeadlinePolicy::parse_resolve_limits("complaint=13d, default=5d").unwrap();
        assert_eq!(limits["complaint"], TimeLimit::WorkingDays(13));
        assert_eq!(default, Some(TimeLimit::WorkingDays(5)));
        assert!(DeadlinePolicy::parse_resolve_limits("complaint").is_err());
        assert_eq!(
            DeadlinePolicy::parse_resolve_limits("complaint=13天").unwrap_err(),
            "\"13天\": expected a number followed by d (working days) or h (hours)"
        );
    }
}
