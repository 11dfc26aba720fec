//! The datacube's rules (domain.md §1.2, "Data availability"): a day's figures can be
//! asked for only after 08:00 the next day (office time), each API takes a range of at
//! most a few days, and a missing range is pulled in chunks that respect it.

use chrono::{DateTime, Datelike, Days, FixedOffset, Months, NaiveDate, NaiveTime, Utc};
use work_calendar::WorkCalendar;

/// One datacube API and its longest range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CubeApi {
    /// `getusersummary`: 7 days.
    UserSummary,
    /// `getusercumulate`: 7 days.
    UserCumulate,
    /// `getuserread`: 3 days.
    UserRead,
    /// `getarticlesummary`: 1 day (the articles mass-sent that day, with that day's
    /// figures, as wechat-sim serves it). What the code relies on is only that an
    /// article is in the summary of the day it was sent: its first day there is taken
    /// as its sending day (`figures::KnownArticle::summary_day`,
    /// `store::articles::last_published_by_account`). wechat-protocol.md gives the span
    /// only; domain.md adds that articles with fewer than 3 events are left out, so such
    /// an article has no summary day, or a later one.
    ArticleSummary,
    /// `getarticletotal`: 1 day (the articles sent that day).
    ArticleTotal,
}

impl CubeApi {
    /// Every API the job pulls.
    pub const ALL: [CubeApi; 5] = [
        CubeApi::UserSummary,
        CubeApi::UserCumulate,
        CubeApi::UserRead,
        CubeApi::ArticleSummary,
        CubeApi::ArticleTotal,
    ];

    /// The API's name (its path segment).
    pub fn as_str(self) -> &'static str {
        match self {
            CubeApi::UserSummary => "getusersummary",
            CubeApi::UserCumulate => "getusercumulate",
            CubeApi::UserRead => "getuserread",
            CubeApi::ArticleSummary => "getarticlesummary",
            CubeApi::ArticleTotal => "getarticletotal",
        }
    }

    /// The API named `name` ([`CubeApi::as_str`]).
    pub fn parse(name: &str) -> Option<CubeApi> {
        CubeApi::ALL.into_iter().find(|api| api.as_str() == name)
    }

    /// The most days one call may cover.
    pub fn max_span(self) -> u64 {
        match self {
            CubeApi::UserSummary | CubeApi::UserCumulate => 7,
            CubeApi::UserRead => 3,
            CubeApi::ArticleSummary | CubeApi::ArticleTotal => 1,
        }
    }

    /// Article figures are counted on day 7 after sending: a day's articles are pulled
    /// once their seventh day is over; the other APIs the day after.
    pub fn settle_days(self) -> u64 {
        match self {
            CubeApi::ArticleTotal => 6,
            _ => 0,
        }
    }
}

/// When yesterday's figures become available, office time.
pub fn available_from() -> NaiveTime {
    NaiveTime::from_hms_opt(8, 0, 0).unwrap_or(NaiveTime::MIN)
}

/// The latest day whose figures may be asked for at `now`: yesterday after 08:00,
/// the day before otherwise.
pub fn latest_available(now: DateTime<Utc>, office: FixedOffset) -> NaiveDate {
    let local = now.with_timezone(&office);
    let back = if local.time() >= available_from() {
        1
    } else {
        2
    };
    local.date_naive() - Days::new(back)
}

/// The first day of the month before `today`'s: the last month whose articles have all
/// been published (its figures may still be coming, see [`month_final_on`]).
pub fn last_finished_month(today: NaiveDate) -> NaiveDate {
    let this_month = today.with_day(1).unwrap_or(today);
    this_month - Months::new(1)
}

/// The end of the office day, office time: interaction-svc's default working hours
/// (`INTERACTION_WORKING_HOURS`, 09:00-17:30). A constant, not the configured hours:
/// the day a list turns final is what desks are told in advance.
const OFFICE_DAY_ENDS: NaiveTime = match NaiveTime::from_hms_opt(17, 30, 0) {
    Some(time) => time,
    None => NaiveTime::MIN,
};

/// When a list turns final on its [`figures_final_on`] day, office time: at the end of
/// that office day ([`OFFICE_DAY_ENDS`], 17:30), not at 08:00, when the day-7 figures of its last articles can first be
/// pulled. An account the datacube does not pull has its figures entered by hand, and
/// the day-7 reads of the month's last articles exist only from that morning: final at
/// 08:00, the desk had no office hour to enter them.
pub fn final_at_time() -> NaiveTime {
    OFFICE_DAY_ENDS
}

/// The day (until [`final_at_time`], office time) `month`'s list (`month` the first
/// of a month) turns final: [`figures_final_on`] of its last day. Until then its WCI
/// is provisional, and its articles take figures entered by hand.
pub fn month_final_on(month: NaiveDate, calendar: &WorkCalendar) -> NaiveDate {
    figures_final_on(month_last_day(month), calendar)
}

/// The last day of the month holding `day`.
pub fn month_last_day(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day) + Months::new(1) - Days::new(1)
}

/// The day (until [`final_at_time`], office time) a period ending on `last_day` turns
/// final: its last day + 7, from 08:00 of which the day-7 figures of its last articles
/// can be pulled (and read, to be entered by hand), or the first working day after it
/// in the office's `calendar` when that day has no office hours: a Saturday or Sunday,
/// a holiday (National Day, 1–8 October: September's list turns final on the 9th); a
/// make-up working day (调休上班) has them. The calendar is interaction-svc's
/// (`StatsSettings::calendar`), so pages, gRPC and the datacube pull agree on the day.
pub fn figures_final_on(last_day: NaiveDate, calendar: &WorkCalendar) -> NaiveDate {
    let mut day = last_day + Days::new(CubeApi::ArticleTotal.settle_days() + 1);
    // A calendar holds finitely many holidays: every week past them has working days.
    while !calendar.is_working_day(day) {
        day = day + Days::new(1);
    }
    day
}

/// The instant a period ending on `last_day` turns final by the calendar:
/// [`final_at_time`] office time on [`figures_final_on`].
pub fn period_final_at(
    last_day: NaiveDate,
    office: FixedOffset,
    calendar: &WorkCalendar,
) -> DateTime<Utc> {
    let local = figures_final_on(last_day, calendar).and_time(final_at_time());
    local
        .and_local_timezone(office)
        .single()
        .map_or_else(|| local.and_utc(), |at| at.to_utc())
}

/// Whether `month`'s list is still provisional by the calendar at `now` (before
/// [`final_at_time`] on [`month_final_on`]): its article figures may still be pulled
/// or entered by hand.
pub fn month_provisional(
    month: NaiveDate,
    now: DateTime<Utc>,
    office: FixedOffset,
    calendar: &WorkCalendar,
) -> bool {
    period_provisional(month_last_day(month), now, office, calendar)
}

/// Whether the list of a period ending on `last_day` is still provisional by the
/// calendar at `now` (see [`article_pull_behind`] for an account whose pulls fail).
pub fn period_provisional(
    last_day: NaiveDate,
    now: DateTime<Utc>,
    office: FixedOffset,
    calendar: &WorkCalendar,
) -> bool {
    now < period_final_at(last_day, office, calendar)
}

/// The first day of the oldest month whose list is not final by the calendar at
/// `now`: the days before it belong to final months, whose figures nothing may change
/// any more, by hand or by a pull (`app::reach::pull_account`).
pub fn first_open_day(
    now: DateTime<Utc>,
    office: FixedOffset,
    calendar: &WorkCalendar,
) -> NaiveDate {
    let today = now.with_timezone(&office).date_naive();
    let last = last_finished_month(today);
    // A month turns final early in the next: the one before last always is.
    if month_provisional(last, now, office, calendar) {
        last
    } else {
        today.with_day(1).unwrap_or(today)
    }
}

/// The Sunday-to-Saturday week (Qingbo's weekly list) that holds `day`.
pub fn week_span(day: NaiveDate) -> (NaiveDate, NaiveDate) {
    let sunday = day - Days::new(u64::from(day.weekday().num_days_from_sunday()));
    (sunday, sunday + Days::new(6))
}

/// The day by whose [`figures_final_on`] the weekly list ending on `saturday` turns
/// final: the last day of the month holding its Saturday. Hand entries of 在看 and
/// likes (which the datacube lacks) follow an article's month, so a desk can enter a
/// month's at its end (`domain::figures::month_open`): the week's own last day + 7
/// called a week of 2 November final on the 14th while its articles took entries
/// until 7 December, each changing a list reported final. A week's articles are of
/// that month or the one before, whose entries close first.
pub fn week_final_with(saturday: NaiveDate) -> NaiveDate {
    month_last_day(saturday)
}

/// Whether an account's figures of a period ending on `last_day` are incomplete
/// because its article pull (`getarticletotal`) is failing: it has not reached that
/// day (`reached`: the last day pulled, if any). Such a period is not final whatever
/// the calendar says, until the pull catches up.
pub fn article_pull_behind(failing: bool, reached: Option<NaiveDate>, last_day: NaiveDate) -> bool {
    failing && reached.is_none_or(|day| day < last_day)
}

/// How far behind what is due an account's newest pull may be and the account still
/// count as pulled: beyond it the pulls stopped without a failure on record (the
/// account was taken out of `WECHAT_ACCOUNTS`, whose failures are forgotten, or the
/// job was turned off), and nothing more will come for it.
const STOPPED_AFTER_DAYS: u64 = 7;

/// Whether an account's article figures of a period ending on `last_day` are still to
/// come at `now` from a pull that is not failing, from its progress (each API with the
/// last day pulled): its `getarticletotal` has not reached `last_day` (or never ran),
/// while it is still pulled (some API within [`STOPPED_AFTER_DAYS`] of its due day).
/// The calendar calls a month final at the end of the 7th's office day, the pull of
/// the last day's articles due from 08:00 that day; a backlog can land later still.
pub fn article_pull_awaited(
    progress: &[(CubeApi, NaiveDate)],
    last_day: NaiveDate,
    now: DateTime<Utc>,
    office: FixedOffset,
) -> bool {
    let latest = latest_available(now, office);
    let pulled = progress.iter().any(|(api, day)| {
        *day + Days::new(STOPPED_AFTER_DAYS) >= latest - Days::new(api.settle_days())
    });
    let articles = progress
        .iter()
        .find(|(api, _)| *api == CubeApi::ArticleTotal)
        .map(|(_, day)| *day);
    pulled && articles.is_none_or(|day| day < last_day)
}

/// Whether an account's article pull began inside the period `from..=to`
/// (`first_day`: its first day pulled, if known): an account added to the install
/// mid-month, further back than the backfill reaches, has the datacube's figures of
/// the month's last days only, and its place in that month's list is not comparable.
/// A pull that began after the period has none of it (the account's figures then, if
/// any, were entered by hand), one that began on or before its first day all of it.
pub fn article_pull_began_within(
    first_day: Option<NaiveDate>,
    from: NaiveDate,
    to: NaiveDate,
) -> bool {
    first_day.is_some_and(|day| day > from && day <= to)
}

/// The calls that cover `from..=to`, each at most `max_span` days, oldest first.
pub fn chunks(from: NaiveDate, to: NaiveDate, max_span: u64) -> Vec<(NaiveDate, NaiveDate)> {
    let mut calls = Vec::new();
    let mut begin = from;
    while begin <= to {
        let end = (begin + Days::new(max_span.max(1) - 1)).min(to);
        calls.push((begin, end));
        begin = end + Days::new(1);
    }
    calls
}

/// The range still to pull for `api`: from the day after `done` (or `backfill_days`
/// before the latest available day) to the latest available day less the API's
/// settling time. Empty when nothing is due.
pub fn due_range(
    api: CubeApi,
    done: Option<NaiveDate>,
    latest: NaiveDate,
    backfill_days: u64,
) -> Option<(NaiveDate, NaiveDate)> {
    let to = latest - Days::new(api.settle_days());
    let from = match done {
        Some(day) => day + Days::new(1),
        None => to - Days::new(backfill_days.max(1) - 1),
    };
    (from <= to).then_some((from, to))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn office() -> FixedOffset {
        FixedOffset::east_opt(8 * 3600).unwrap()
    }

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    /// Monday to Friday, no holiday.
    fn weekdays() -> WorkCalendar {
        WorkCalendar::default()
    }

    #[test]
    fn a_month_is_final_at_the_end_of_the_office_day_its_last_articles_can_be_pulled() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        assert_eq!(last_finished_month(day("2026-12-03")), day("2026-11-01"));
        assert_eq!(last_finished_month(day("2026-01-31")), day("2025-12-01"));
        assert_eq!(
            month_final_on(day("2026-11-01"), &weekdays()),
            day("2026-12-07")
        );
        // 7 March 2026 is a Saturday: no office hours to enter 28 February's figures.
        assert_eq!(
            month_final_on(day("2026-02-01"), &weekdays()),
            day("2026-03-09")
        );
        let november = day("2026-11-01");
        // 30 November's day-7 reads exist from 08:00 on Monday 7 December: a desk
        // entering them by hand has that office day, to 17:30.
        for open in [
            "2026-12-07T00:00:00Z",
            "2026-12-07T01:00:00Z",
            "2026-12-07T09:29:00Z",
        ] {
            assert!(
                month_provisional(november, at(open), office(), &weekdays()),
                "{open}"
            );
            assert_eq!(
                first_open_day(at(open), office(), &weekdays()),
                november,
                "{open}"
            );
        }
        assert!(!month_provisional(
            november,
            at("2026-12-07T09:30:00Z"),
            office(),
            &weekdays()
        ));
        assert_eq!(
            first_open_day(at("2026-12-07T09:30:00Z"), office(), &weekdays()),
            day("2026-12-01")
        );
        assert!(month_provisional(
            day("2026-12-01"),
            at("2026-12-07T09:30:00Z"),
            office(),
            &weekdays()
        ));
        assert_eq!(
            period_final_at(day("2026-11-30"), office(), &weekdays()),
            at("2026-12-07T09:30:00Z")
        );
    }

    /// National Day (1–8 October off, `INTERACTION_HOLIDAYS`): September's day-7
    /// figures are due on 7 October, a holiday with no office hour to enter them, so
    /// the list turns final at 17:30 on Friday 9 October, the first working day; a
    /// make-up Saturday (调休上班, `INTERACTION_MAKEUP_WORKDAYS`) is a working day.
    #[test]
    fn a_list_turns_final_on_the_first_working_day_of_the_office_calendar() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        let calendar = work_calendar::from_settings(|var| match var {
            work_calendar::HOLIDAYS_VAR => Some("2026-10-01..2026-10-08"),
            work_calendar::MAKEUP_WORKDAYS_VAR => Some("2026-10-10"),
            _ => None,
        })
        .unwrap();
        let september = day("2026-09-01");
        assert_eq!(month_final_on(september, &calendar), day("2026-10-09"));
        assert_eq!(
            month_final_on(september, &weekdays()),
            day("2026-10-07"),
            "weekdays alone call the holiday a working day"
        );
        assert!(month_provisional(
            september,
            at("2026-10-08T10:00:00Z"),
            office(),
            &calendar
        ));
        assert_eq!(
            period_final_at(day("2026-09-30"), office(), &calendar),
            at("2026-10-09T09:30:00Z")
        );
        assert_eq!(
            first_open_day(at("2026-10-08T10:00:00Z"), office(), &calendar),
            september
        );
        // 3 October + 7 is the make-up Saturday 10 October: a working day.
        assert_eq!(
            figures_final_on(day("2026-10-03"), &calendar),
            day("2026-10-10")
        );
        // Without it, the Monday after.
        assert_eq!(
            figures_final_on(day("2026-10-03"), &weekdays()),
            day("2026-10-12")
        );
    }

    #[test]
    fn a_week_runs_sunday_to_saturday_and_is_final_with_its_saturdays_month() {
        // 2 December 2026 is a Wednesday.
        assert_eq!(
            week_span(day("2026-12-02")),
            (day("2026-11-29"), day("2026-12-05"))
        );
        assert_eq!(week_span(day("2026-11-29")).0, day("2026-11-29"));
        // The week of 8 November takes entries for its articles until November's
        // list is final, so it is not final before either.
        let (_, saturday) = week_span(day("2026-11-10"));
        assert_eq!(
            figures_final_on(week_final_with(saturday), &weekdays()),
            day("2026-12-07")
        );
        // A week across the month's end: its November days' entries close on
        // 7 December, its December days' with December.
        assert_eq!(
            figures_final_on(week_final_with(day("2026-12-05")), &weekdays()),
            day("2027-01-07")
        );
    }

    #[test]
    fn a_failing_article_pull_leaves_the_periods_it_did_not_reach_incomplete() {
        let end = day("2026-10-31");
        assert!(article_pull_behind(true, Some(day("2026-10-20")), end));
        assert!(article_pull_behind(true, None, end), "it never pulled");
        assert!(
            !article_pull_behind(true, Some(end), end),
            "it reached the month's end first"
        );
        assert!(
            !article_pull_behind(false, Some(day("2026-10-20")), end),
            "behind by the calendar only"
        );
        assert_eq!(
            figures_final_on(end, &weekdays()),
            month_final_on(day("2026-10-01"), &weekdays())
        );
    }

    #[test]
    fn a_period_waits_for_an_article_pull_still_running_not_for_one_that_stopped() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        let end = day("2026-11-30");
        // 08:30 on 7 December: 30 November's articles are due, not pulled yet.
        let now = at("2026-12-07T00:30:00Z");
        let articles = |d: &str| (CubeApi::ArticleTotal, day(d));
        assert!(article_pull_awaited(
            &[articles("2026-11-29")],
            end,
            now,
            office()
        ));
        assert!(!article_pull_awaited(
            &[articles("2026-11-30")],
            end,
            now,
            office()
        ));
        assert!(
            article_pull_awaited(
                &[(CubeApi::UserSummary, day("2026-12-05"))],
                end,
                now,
                office()
            ),
            "pulled, its articles not yet"
        );
        assert!(
            !article_pull_awaited(&[articles("2026-11-18")], end, now, office()),
            "stopped on 25 November (taken out of WECHAT_ACCOUNTS): nothing more comes"
        );
        assert!(
            !article_pull_awaited(&[], end, now, office()),
            "never pulled"
        );
        assert_eq!(
            CubeApi::parse("getarticletotal"),
            Some(CubeApi::ArticleTotal)
        );
        assert_eq!(CubeApi::parse("getfoo"), None);
    }

    #[test]
    fn an_article_pull_begun_within_a_period_leaves_it_incomplete() {
        let (from, to) = (day("2026-11-01"), day("2026-11-30"));
        assert!(article_pull_began_within(Some(day("2026-11-16")), from, to));
        assert!(!article_pull_began_within(Some(from), from, to));
        assert!(!article_pull_began_within(
            Some(day("2026-12-01")),
            from,
            to
        ));
        assert!(
            !article_pull_began_within(None, from, to),
            "begun before 0020"
        );
    }

    #[test]
    fn yesterday_is_available_only_after_eight_in_the_office() {
        let before = DateTime::parse_from_rfc3339("2026-12-01T23:59:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(
            latest_available(before, office()),
            day("2026-11-30"),
            "07:59 on 2 Dec"
        );
        let after = DateTime::parse_from_rfc3339("2026-12-02T00:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(
            latest_available(after, office()),
            day("2026-12-01"),
            "08:00 on 2 Dec"
        );
    }

    #[test]
    fn a_range_is_cut_into_calls_no_longer_than_the_api_allows() {
        let calls = chunks(day("2026-11-01"), day("2026-11-10"), 3);
        assert_eq!(
            calls,
            [
                (day("2026-11-01"), day("2026-11-03")),
                (day("2026-11-04"), day("2026-11-06")),
                (day("2026-11-07"), day("2026-11-09")),
                (day("2026-11-10"), day("2026-11-10")),
            ]
        );
        assert_eq!(chunks(day("2026-11-02"), day("2026-11-01"), 7), []);
    }

    #[test]
    fn the_due_range_backfills_then_continues_and_articles_wait_seven_days() {
        let latest = day("2026-12-01");
        assert_eq!(
            due_range(CubeApi::UserSummary, None, latest, 30),
            Some((day("2026-11-02"), latest))
        );
        assert_eq!(
            due_range(CubeApi::UserSummary, Some(day("2026-11-29")), latest, 30),
            Some((day("2026-11-30"), latest))
        );
        assert_eq!(
            due_range(CubeApi::UserSummary, Some(latest), latest, 30),
            None
        );
        assert_eq!(
            due_range(CubeApi::ArticleTotal, Some(day("2026-11-20")), latest, 30),
            Some((day("2026-11-21"), day("2026-11-25")))
        );
        // A day's article summary is final the next morning, like the user figures.
        assert_eq!(
            due_range(CubeApi::ArticleSummary, Some(day("2026-11-29")), latest, 30),
            Some((day("2026-11-30"), latest))
        );
        assert_eq!(CubeApi::ArticleSummary.max_span(), 1);
    }
}
