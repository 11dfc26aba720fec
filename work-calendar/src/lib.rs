//! Working time: office hours, weekends, public holidays and make-up working days
//! (调休), and the deadlines counted in it.
//!
//! Time limits for answering citizens are set in working days by local 12345 rules
//! (consultations 3 working days, complaints 13, …; see domain.md §2), and differ
//! by city, so every number here comes from configuration ([`from_settings`]).

use std::collections::BTreeSet;
use std::str::FromStr;

use chrono::{
    DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveTime, TimeDelta, TimeZone, Utc,
    Weekday,
};

/// Why a calendar setting or a time limit was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("{0:?}: expected a number followed by d (working days) or h (hours)")]
    TimeLimit(String),
    #[error("office hours must open before they close ({opens}–{closes})")]
    HoursBackwards { opens: NaiveTime, closes: NaiveTime },
    #[error("{0:?}: expected HH:MM-HH:MM")]
    Hours(String),
    #[error("{0:?}: expected HH:MM")]
    Time(String),
    #[error("{0:?}: expected YYYY-MM-DD")]
    Date(String),
    #[error("{0:?}: the range must run forwards, at most a year")]
    Range(String),
    // The value is beside it in every service's configuration error.
    #[error("expected a UTC offset like +08:00")]
    Offset(String),
}

/// A time limit: whole working days (ending at the close of office hours) or wall-clock hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeLimit {
    /// Until the end of office hours on the n-th working day after the day of arrival.
    /// 0 means the end of the day of arrival (or of the next working day, if it
    /// arrived after hours or on a day off).
    WorkingDays(u32),
    /// Wall-clock hours from arrival, nights and holidays included (emergencies).
    Hours(u32),
}

impl FromStr for TimeLimit {
    type Err = CalendarError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let expected = || CalendarError::TimeLimit(s.to_owned());
        // By suffix, not by byte: `13天` must be an error, not a split inside a character.
        let (number, limit): (&str, fn(u32) -> Self) = if let Some(n) = s.strip_suffix('d') {
            (n, Self::WorkingDays)
        } else if let Some(n) = s.strip_suffix('h') {
            (n, Self::Hours)
        } else {
            return Err(expected());
        };
        number.parse().map(limit).map_err(|_| expected())
    }
}

/// Office hours and the days they apply to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkCalendar {
    offset: FixedOffset,
    opens: NaiveTime,
    closes: NaiveTime,
    holidays: BTreeSet<NaiveDate>,
    makeup_workdays: BTreeSet<NaiveDate>,
}

impl Default for WorkCalendar {
    /// China Standard Time, 09:00–17:30, Monday to Friday, no holidays configured.
    fn default() -> Self {
        Self {
            offset: FixedOffset::east_opt(8 * 3600).expect("valid offset"),
            opens: NaiveTime::from_hms_opt(9, 0, 0).expect("valid time"),
            closes: NaiveTime::from_hms_opt(17, 30, 0).expect("valid time"),
            holidays: BTreeSet::new(),
            makeup_workdays: BTreeSet::new(),
        }
    }
}

/// The settings a calendar is read from ([`from_settings`]), the same in every
/// service: interaction-svc named them first, for its deadlines.
pub const WORKING_HOURS_VAR: &str = "INTERACTION_WORKING_HOURS";
pub const TIMEZONE_VAR: &str = "INTERACTION_TIMEZONE";
pub const HOLIDAYS_VAR: &str = "INTERACTION_HOLIDAYS";
pub const MAKEUP_WORKDAYS_VAR: &str = "INTERACTION_MAKEUP_WORKDAYS";

/// A calendar setting that was refused, and which one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {error}")]
pub struct SettingError {
    pub var: &'static str,
    pub error: CalendarError,
}

/// Reads a calendar from its settings through `get` (a service's own variable
/// lookup, `None` for an unset one): [`WORKING_HOURS_VAR`] (default `09:00-17:30`),
/// [`TIMEZONE_VAR`] (`+08:00`), [`HOLIDAYS_VAR`] and [`MAKEUP_WORKDAYS_VAR`] (none).
pub fn from_settings<'a>(
    get: impl Fn(&str) -> Option<&'a str>,
) -> Result<WorkCalendar, SettingError> {
    let at = |var: &'static str| move |error| SettingError { var, error };
    let (opens, closes) =
        WorkCalendar::parse_hours(get(WORKING_HOURS_VAR).unwrap_or("09:00-17:30"))
            .map_err(at(WORKING_HOURS_VAR))?;
    let offset = WorkCalendar::parse_offset(get(TIMEZONE_VAR).unwrap_or("+08:00"))
        .map_err(at(TIMEZONE_VAR))?;
    let holidays =
        WorkCalendar::parse_dates(get(HOLIDAYS_VAR).unwrap_or("")).map_err(at(HOLIDAYS_VAR))?;
    let makeup = WorkCalendar::parse_dates(get(MAKEUP_WORKDAYS_VAR).unwrap_or(""))
        .map_err(at(MAKEUP_WORKDAYS_VAR))?;
    WorkCalendar::new(offset, opens, closes, holidays, makeup).map_err(at(WORKING_HOURS_VAR))
}

impl WorkCalendar {
    /// A calendar from its parts; `opens` must be before `closes`.
    pub fn new(
        offset: FixedOffset,
        opens: NaiveTime,
        closes: NaiveTime,
        holidays: BTreeSet<NaiveDate>,
        makeup_workdays: BTreeSet<NaiveDate>,
    ) -> Result<Self, CalendarError> {
        if opens >= closes {
            return Err(CalendarError::HoursBackwards { opens, closes });
        }
        Ok(Self {
            offset,
            opens,
            closes,
            holidays,
            makeup_workdays,
        })
    }

    /// The offices' UTC offset, in which deadlines are shown to citizens.
    pub fn offset(&self) -> FixedOffset {
        self.offset
    }

    /// Parses office hours like `09:00-17:30`.
    pub fn parse_hours(raw: &str) -> Result<(NaiveTime, NaiveTime), CalendarError> {
        let (opens, closes) = raw
            .split_once('-')
            .ok_or_else(|| CalendarError::Hours(raw.to_owned()))?;
        let time = |t: &str| {
            NaiveTime::parse_from_str(t.trim(), "%H:%M")
                .map_err(|_| CalendarError::Time(t.to_owned()))
        };
        Ok((time(opens)?, time(closes)?))
    }

    /// Parses a UTC offset like `+08:00`.
    pub fn parse_offset(raw: &str) -> Result<FixedOffset, CalendarError> {
        raw.parse()
            .map_err(|_| CalendarError::Offset(raw.to_owned()))
    }

    /// Parses a date list like `2026-10-01..2026-10-07,2027-01-01` (ranges inclusive).
    pub fn parse_dates(raw: &str) -> Result<BTreeSet<NaiveDate>, CalendarError> {
        let date = |d: &str| {
            NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d")
                .map_err(|_| CalendarError::Date(d.to_owned()))
        };
        let mut dates = BTreeSet::new();
        for item in raw.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            match item.split_once("..") {
                Some((first, last)) => {
                    let (first, last) = (date(first)?, date(last)?);
                    if last < first || (last - first).num_days() > 366 {
                        return Err(CalendarError::Range(item.to_owned()));
                    }
                    dates.extend(first.iter_days().take_while(|d| *d <= last));
                }
                None => {
                    dates.insert(date(item)?);
                }
            }
        }
        Ok(dates)
    }

    /// Whether offices work on `date`: a make-up working day always, otherwise
    /// Monday to Friday unless it is a holiday.
    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        if self.makeup_workdays.contains(&date) {
            return true;
        }
        !matches!(date.weekday(), Weekday::Sat | Weekday::Sun) && !self.holidays.contains(&date)
    }

    /// When a time limit counted from `arrived` runs out.
    pub fn deadline(&self, arrived: DateTime<Utc>, limit: TimeLimit) -> DateTime<Utc> {
        match limit {
            TimeLimit::Hours(hours) => arrived + Duration::hours(i64::from(hours)),
            TimeLimit::WorkingDays(days) => {
                let local = arrived.with_timezone(&self.offset);
                let mut date = local.date_naive();
                // Day 0 is the day of arrival only if it is a working day and offices
                // are still open; otherwise the next working day is day 0.
                if !self.is_working_day(date) || local.time() >= self.closes {
                    date = self.next_working_day(date);
                }
                for _ in 0..days {
                    date = self.next_working_day(date);
                }
                self.closing_time(date)
            }
        }
    }

    /// The instant `span` of office hours after `start`: nights, weekends and
    /// holidays do not count and make-up working days do, so two hours from 17:29
    /// on the eve of National Day end on the first working day after it, not at
    /// 19:29 that evening, when nobody is at a desk.
    pub fn working_time_after(&self, start: DateTime<Utc>, span: TimeDelta) -> DateTime<Utc> {
        let local = start.with_timezone(&self.offset).naive_local();
        let (mut day, mut from) = (local.date(), local.time());
        let mut left = span;
        // A year of days off is a configuration error; stop there rather than loop.
        for _ in 0..3660 {
            if self.is_working_day(day) && from < self.closes {
                let from_time = from.max(self.opens);
                let open = self.closes - from_time;
                if left <= open {
                    return self
                        .offset
                        .from_local_datetime(&(day.and_time(from_time) + left))
                        .single()
                        .map_or(start + span, |at| at.with_timezone(&Utc));
                }
                left -= open;
            }
            day = match day.succ_opt() {
                Some(next) => next,
                None => break,
            };
            from = NaiveTime::MIN;
        }
        start + span
    }

    fn next_working_day(&self, after: NaiveDate) -> NaiveDate {
        let mut date = after;
        // A year of holidays is a configuration error; stop there rather than loop.
        for _ in 0..366 {
            date = date
                .succ_opt()
                .expect("dates stay far from chrono's limits");
            if self.is_working_day(date) {
                return date;
            }
        }
        date
    }

    fn closing_time(&self, date: NaiveDate) -> DateTime<Utc> {
        self.offset
            .from_local_datetime(&date.and_time(self.closes))
            .single()
            .expect("a fixed offset has no gaps")
            .with_timezone(&Utc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A local (UTC+8) time as UTC.
    fn cst(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        FixedOffset::east_opt(8 * 3600)
            .unwrap()
            .with_ymd_and_hms(y, m, d, h, min, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    /// National Day week 2026: Oct 1–7 off; Sunday Oct 11 is a make-up working day.
    fn national_day() -> WorkCalendar {
        from_settings(|var| match var {
            HOLIDAYS_VAR => Some("2026-10-01..2026-10-07"),
            MAKEUP_WORKDAYS_VAR => Some("2026-10-11"),
            _ => None,
        })
        .unwrap()
    }

    // 2026-11-23 is a Monday.

    #[test]
    fn working_days_end_at_closing_time_of_the_nth_working_day() {
        let calendar = WorkCalendar::default();
        let monday_morning = cst(2026, 11, 23, 10, 0);
        assert_eq!(
            calendar.deadline(monday_morning, TimeLimit::WorkingDays(0)),
            cst(2026, 11, 23, 17, 30)
        );
        assert_eq!(
            calendar.deadline(monday_morning, TimeLimit::WorkingDays(1)),
            cst(2026, 11, 24, 17, 30)
        );
        assert_eq!(
            calendar.deadline(monday_morning, TimeLimit::WorkingDays(3)),
            cst(2026, 11, 26, 17, 30)
        );
    }

    #[test]
    fn after_hours_and_weekends_count_from_the_next_working_day() {
        let calendar = WorkCalendar::default();
        let friday_evening = cst(2026, 11, 27, 20, 0);
        assert_eq!(
            calendar.deadline(friday_evening, TimeLimit::WorkingDays(0)),
            cst(2026, 11, 30, 17, 30)
        );
        assert_eq!(
            calendar.deadline(friday_evening, TimeLimit::WorkingDays(1)),
            cst(2026, 12, 1, 17, 30)
        );
        let saturday = cst(2026, 11, 28, 11, 0);
        assert_eq!(
            calendar.deadline(saturday, TimeLimit::WorkingDays(1)),
            cst(2026, 12, 1, 17, 30)
        );
    }

    #[test]
    fn holidays_are_skipped_and_makeup_workdays_count() {
        let calendar = national_day();
        let sept_30_evening = cst(2026, 9, 30, 19, 0);
        // Next working day is Thu Oct 8 (day 0), then Fri Oct 9, then Sun Oct 11 (make-up).
        assert_eq!(
            calendar.deadline(sept_30_evening, TimeLimit::WorkingDays(0)),
            cst(2026, 10, 8, 17, 30)
        );
        assert_eq!(
            calendar.deadline(sept_30_evening, TimeLimit::WorkingDays(2)),
            cst(2026, 10, 11, 17, 30)
        );
        assert!(calendar.is_working_day(NaiveDate::from_ymd_opt(2026, 10, 11).unwrap()));
        assert!(!calendar.is_working_day(NaiveDate::from_ymd_opt(2026, 10, 5).unwrap()));
    }

    #[test]
    fn hour_limits_run_through_nights_and_weekends() {
        let calendar = WorkCalendar::default();
        let saturday_night = cst(2026, 11, 28, 23, 0);
        assert_eq!(
            calendar.deadline(saturday_night, TimeLimit::Hours(2)),
            cst(2026, 11, 29, 1, 0)
        );
    }

    #[test]
    fn working_time_skips_nights_and_weekends() {
        let calendar = WorkCalendar::default();
        let two = TimeDelta::hours(2);
        let cases = [
            // Thursday morning: two hours later.
            (cst(2026, 12, 3, 10, 0), cst(2026, 12, 3, 12, 0)),
            // Friday 17:29: one minute on Friday, the rest on Monday morning.
            (cst(2026, 12, 4, 17, 29), cst(2026, 12, 7, 10, 59)),
            // Saturday noon: from Monday's opening.
            (cst(2026, 12, 5, 12, 0), cst(2026, 12, 7, 11, 0)),
            // Wednesday 17:00: half an hour, then Thursday from 09:00.
            (cst(2026, 12, 2, 17, 0), cst(2026, 12, 3, 10, 30)),
            // Tuesday 03:00: from the opening.
            (cst(2026, 12, 1, 3, 0), cst(2026, 12, 1, 11, 0)),
        ];
        for (start, end) in cases {
            assert_eq!(calendar.working_time_after(start, two), end, "{start}");
        }
    }

    #[test]
    fn working_time_skips_holidays_and_counts_makeup_workdays() {
        let calendar = national_day();
        let two = TimeDelta::hours(2);
        // Wednesday Sept 30, 17:29: one minute, then Thursday Oct 8 (Oct 1–7 off).
        assert_eq!(
            calendar.working_time_after(cst(2026, 9, 30, 17, 29), two),
            cst(2026, 10, 8, 10, 59)
        );
        // Friday Oct 9, 17:00: half an hour, then Sunday Oct 11, a make-up day.
        assert_eq!(
            calendar.working_time_after(cst(2026, 10, 9, 17, 0), two),
            cst(2026, 10, 11, 10, 30)
        );
        // Without the holidays configured, the grace ended inside them.
        assert_eq!(
            WorkCalendar::default().working_time_after(cst(2026, 9, 30, 17, 29), two),
            cst(2026, 10, 1, 10, 59)
        );
    }

    #[test]
    fn settings_default_to_china_standard_office_hours_and_bad_ones_name_their_variable() {
        assert_eq!(from_settings(|_| None), Ok(WorkCalendar::default()));
        for (var, value) in [
            (WORKING_HOURS_VAR, "17:00-09:00"),
            (WORKING_HOURS_VAR, "9-5"),
            (TIMEZONE_VAR, "Asia/Shanghai"),
            (HOLIDAYS_VAR, "tomorrow"),
            (MAKEUP_WORKDAYS_VAR, "2026-10-07..2026-10-01"),
        ] {
            let error = from_settings(|asked| (asked == var).then_some(value)).unwrap_err();
            assert_eq!(error.var, var, "{value}");
            assert!(error.to_string().starts_with(var), "{error}");
        }
        let calendar = from_settings(|var| (var == TIMEZONE_VAR).then_some("+09:00")).unwrap();
        assert_eq!(calendar.offset().local_minus_utc(), 9 * 3600);
    }

    #[test]
    fn configuration_strings_parse_and_bad_ones_are_explained() {
        assert_eq!("13d".parse(), Ok(TimeLimit::WorkingDays(13)));
        assert_eq!("2h".parse(), Ok(TimeLimit::Hours(2)));
        assert!("2w".parse::<TimeLimit>().is_err());
        // A multi-byte last character used to panic the split.
        assert!("13天".parse::<TimeLimit>().is_err());
        assert!("d".parse::<TimeLimit>().is_err());
        assert_eq!(
            "1w".parse::<TimeLimit>().unwrap_err().to_string(),
            "\"1w\": expected a number followed by d (working days) or h (hours)"
        );
        assert_eq!(
            WorkCalendar::parse_hours("08:30-18:00").unwrap(),
            (
                NaiveTime::from_hms_opt(8, 30, 0).unwrap(),
                NaiveTime::from_hms_opt(18, 0, 0).unwrap()
            )
        );
        assert!(WorkCalendar::parse_hours("9-5").is_err());
        assert!(WorkCalendar::parse_dates("2026-10-07..2026-10-01").is_err());
        assert_eq!(
            WorkCalendar::parse_dates("2026-10-01..2026-10-03")
                .unwrap()
                .len(),
            3
        );
    }
}
