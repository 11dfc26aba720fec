//! The monthly WCI ranking, and figures entered by hand.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Utc};
use sqlx::PgPool;

use super::AppError;
use crate::domain::AccountId;
use crate::domain::figures::{self, FigureEntry};
use crate::domain::install::Install;
use crate::domain::reach::{
    CubeApi, article_pull_awaited, article_pull_began_within, article_pull_behind,
    figures_final_on, period_provisional, week_final_with,
};
use crate::domain::wci::{ArticleFigures, Figures, WciPeriod, WciVersion, time_base};
use crate::store::articles::{self, ArticleEntry};
use crate::store::reach;
use work_calendar::WorkCalendar;

/// One account's place in a month's list.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    pub rank: u32,
    pub account: String,
    pub wci: f64,
    /// Articles counted (those with figures).
    pub articles: u64,
    pub reads: u64,
    /// Published nothing in the period: ranked after every account with articles, all
    /// such accounts sharing one place.
    pub published_nothing: bool,
    /// Its datacube article pull is failing and has not reached the period's last day,
    /// so its figures (and the list) are not final; or it began inside the period
    /// (`pull_began`).
    pub figures_incomplete: bool,
    /// Its article pull is failing short of the period's last day (the list is
    /// provisional until it catches up).
    pub pull_failing: bool,
    /// The first day its datacube article pull brought, when that is inside the period
    /// (an account added mid-month): its figures before that day are missing for good.
    pub pull_began: Option<NaiveDate>,
}

impl Ranked {
    /// Whether the account has a WCI in the period (an article with figures).
    pub fn has_index(&self) -> bool {
        self.articles > 0
    }
}

/// A period's list and whether it is final.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranking {
    pub list: Vec<Ranked>,
    /// The day the list turns final by the calendar, at the end of its office day
    /// (17:30 office time, `domain::reach::final_at_time`): the day-7 figures of the
    /// period's last articles can be pulled from 08:00 that day, and a desk entering
    /// them by hand has the office day to do it (`domain::reach::figures_final_on`;
    /// a week's is its Saturday's month's).
    pub final_on: NaiveDate,
    /// Day-7 figures of the period's articles are still to come: before `final_on`,
    /// or after it while [`Ranking::awaiting_pull`] names an account.
    pub awaiting_figures: bool,
    /// From `final_on` on, the listed accounts still pulled whose pull has not reached
    /// the period's last day's articles yet: the calendar is past, the pull is what the
    /// list waits for (empty before `final_on`, when the calendar says it all).
    pub awaiting_pull: Vec<String>,
    /// The figures may still change: before `final_on`, or while an account of the
    /// list has incomplete figures (`Ranked::figures_incomplete`).
    pub provisional: bool,
    /// How many accounts the whole list holds: places are counted among every account
    /// of the install, whatever the caller's reach, so a county's key reads "3rd of
    /// 12", not "1st" of a list holding only itself.
    pub listed: usize,
    /// An account outside the caller's reach holds the list provisional (its pull is
    /// failing or awaited), which `list` and `awaiting_pull` do not name.
    pub others_pending: bool,
}

/// What every list of a period is drawn up with: the accounts in the caller's reach
/// (`None`: every account), the install (which silent accounts it lists,
/// [`Install::lists`]), the WCI version ranking them, and the moment it is read at in
/// the office's time zone (whether its figures can still change), with the office's
/// work calendar (the day a list turns final is a working day of it).
#[derive(Debug, Clone, Copy)]
pub struct ListContext<'a> {
    pub accounts: Option<&'a [String]>,
    pub install: &'a Install,
    pub version: WciVersion,
    pub now: DateTime<Utc>,
    pub office: FixedOffset,
    pub calendar: &'a WorkCalendar,
}

/// The first and last day of the month that starts on `first`.
pub fn month_span(first: NaiveDate) -> (NaiveDate, NaiveDate) {
    let next = first
        .checked_add_months(chrono::Months::new(1))
        .unwrap_or(first);
    (first, next.pred_opt().unwrap_or(first))
}

pub use crate::domain::reach::week_span;

/// A month asked for that has not begun in the office's time zone: its list would
/// show every account at place 1 with nothing published. A caller refuses it as bad
/// input (gRPC INVALID_ARGUMENT, the page's error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("month {month} has not begun (the office's month is {current})")]
pub struct MonthNotBegun {
    pub month: String,
    pub current: String,
}

/// Refuses the month starting on `first` if it is after the office month of `now`.
pub fn month_begun(
    first: NaiveDate,
    now: DateTime<Utc>,
    office: FixedOffset,
) -> Result<(), MonthNotBegun> {
    let today = now.with_timezone(&office).date_naive();
    let current = today.with_day(1).unwrap_or(today);
    let month = first.with_day(1).unwrap_or(first);
    if month > current {
        return Err(MonthNotBegun {
            month: month.format("%Y-%m").to_string(),
            current: current.format("%Y-%m").to_string(),
        });
    }
    Ok(())
}

/// A week asked for that has not begun in the office's time zone (its Sunday is after
/// the office's day): as a month not begun ([`MonthNotBegun`]), its list would show
/// every account at place 1, and a caller refuses it as bad input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the week from {first} has not begun (the office's day is {today})")]
pub struct WeekNotBegun {
    /// The week's Sunday.
    pub first: NaiveDate,
    pub today: NaiveDate,
}

/// Refuses the week holding `day` if its Sunday is after the office day of `now`.
pub fn week_begun(
    day: NaiveDate,
    now: DateTime<Utc>,
    office: FixedOffset,
) -> Result<(), WeekNotBegun> {
    let today = now.with_timezone(&office).date_naive();
    let (first, _) = week_span(day);
    if first > today {
        return Err(WeekNotBegun { first, today });
    }
    Ok(())
}

/// Every account in the context's reach the service knows, ranked by its version's
/// WCI over the articles' day-7 figures (d = 30) of the month starting on `first`,
/// those without articles last; provisional as [`Ranking::provisional`] at its `now`.
pub async fn monthly_ranking(
    db: &PgPool,
    context: &ListContext<'_>,
    first: NaiveDate,
) -> Result<Ranking, AppError> {
    month_begun(first, context.now, context.office)?;
    let (from, to) = month_span(first.with_day(1).unwrap_or(first));
    ranking(db, context, from, to, time_base(30, true), to).await
}

/// The weekly list (Sunday to Saturday, d = 7) of the week holding `day`: final with
/// the month of its Saturday (`domain::reach::week_final_with`), since its articles
/// take figures entered by hand until their month is final. A week not begun is
/// refused ([`WeekNotBegun`]).
pub async fn weekly_ranking(
    db: &PgPool,
    context: &ListContext<'_>,
    day: NaiveDate,
) -> Result<Ranking, AppError> {
    week_begun(day, context.now, context.office)?;
    let (from, to) = week_span(day);
    ranking(db, context, from, to, 7, week_final_with(to)).await
}

/// The monthly lists of the `months` months ending with the one starting on `last`,
/// oldest first: each account in the context's reach at its place among every
/// account of the install, counted as [`monthly_ranking`] counts it (a final month's
/// articles without figures in n), so a month's trend point is its list's.
pub async fn monthly_rankings(
    db: &PgPool,
    context: &ListContext<'_>,
    last: NaiveDate,
    months: u32,
) -> Result<Vec<(NaiveDate, Vec<Ranked>)>, AppError> {
    let last = last.with_day(1).unwrap_or(last);
    let first = last
        .checked_sub_months(chrono::Months::new(months.saturating_sub(1)))
        .unwrap_or(last);
    let mut lists = Vec::new();
    let mut month = first;
    while month <= last {
        let (from, to) = month_span(month);
        // Ranked among every account, then cut to the caller's reach: ranking the
        // reach alone put a county's key first of a list of one.
        let unfigured = !period_provisional(to, context.now, context.office, context.calendar);
        let rows = articles::published_between(db, None, from, to, unfigured).await?;
        let mut ranked = rank(rows.iter(), time_base(30, true), context.version);
        ranked.retain(|r| reaches(context.accounts, &r.account));
        lists.push((month, ranked));
        match month.checked_add_months(chrono::Months::new(1)) {
            Some(next) => month = next,
            None => break,
        }
    }
    Ok(lists)
}

/// Whether `account` is in the caller's reach (`None`: every account).
fn reaches(accounts: Option<&[String]>, account: &str) -> bool {
    accounts.is_none_or(|scope| scope.iter().any(|a| a == account))
}

/// The list of the period `from`..=`to` (inclusive), whose WCI takes `days` as its
/// time base, final by the calendar with the period ending on `final_with` (`to`, or
/// for a week the last day of its Saturday's month). Drawn up over every account of the install, then cut to the context's
/// reach: the places are the install's, and another account's figures are not shown.
async fn ranking(
    db: &PgPool,
    context: &ListContext<'_>,
    from: NaiveDate,
    to: NaiveDate,
    days: u32,
    final_with: NaiveDate,
) -> Result<Ranking, AppError> {
    let ListContext {
        accounts,
        install,
        version,
        now,
        office,
        calendar: work_calendar,
    } = *context;
    let calendar = period_provisional(final_with, now, office, work_calendar);
    let rows = articles::published_between(db, None, from, to, !calendar).await?;
    let mut list = rank(rows.iter(), days, version);
    // An account that published nothing is what a leader must see most: it stays in
    // the list, after every account with an index.
    let published = articles::accounts_published_between(db, from, to).await?;
    let mut known: Vec<String> = articles::known_accounts(db, from).await?;
    // An account the install names is in it though never heard of (the overview shows
    // it as 从未发布 and the inspection alarms it): the list shows it as 无发文, from
    // the day the install named it (`install_accounts`; one named before that was kept,
    // in every period).
    for named in install.accounts() {
        if !known.iter().any(|a| a == named) {
            known.push(named.to_owned());
        }
    }
    // Without a creation date, the first day the service saw an account, or the
    // install named it, stands in for it: a period before it is no period the account
    // was in the install. Being heard of later moves no named account's first day, so
    // a final list does not lose it.
    let later = articles::first_seen_after(db, &known, to).await?;
    // Nor is the period after the last day it was heard of, for an account the install
    // does not name (any more): taken out, it is silent from then on, and was not in
    // those periods either. One it names is in, however silent (`Install::lists`).
    let gone = articles::last_seen_before(db, &known, from).await?;
    let place = u32::try_from(list.len() + 1).unwrap_or(u32::MAX);
    // A period still running may yet see an article: 无发文 is said once it is over.
    let ended = now.with_timezone(&office).date_naive() > to;
    for account in known {
        if list.iter().any(|r| r.account == account)
            || later.contains(&account)
            || !install.lists(&account, gone.contains(&account))
        {
            continue;
        }
        list.push(Ranked {
            rank: place,
            published_nothing: ended && !published.contains(&account),
            account,
            wci: 0.0,
            articles: 0,
            reads: 0,
            figures_incomplete: false,
            pull_failing: false,
            pull_began: None,
        });
    }
    let mut incomplete = false;
    for failure in reach::failures(db, None).await? {
        if failure.api != CubeApi::ArticleTotal.as_str()
            || !article_pull_behind(true, failure.last_day, to)
        {
            continue;
        }
        if let Some(entry) = list.iter_mut().find(|r| r.account == failure.account) {
            entry.figures_incomplete = true;
            entry.pull_failing = true;
            incomplete = true;
        }
    }
    // The calendar alone would call the period final at the end of the office day
    // its last articles' day-7 figures are due, though a backlog lands later still.
    let progress = reach::progress_of(db, None).await?;
    let mut awaiting_pull = Vec::new();
    for entry in &mut list {
        let pulled: Vec<(CubeApi, NaiveDate)> = progress
            .iter()
            .filter(|p| p.account == entry.account)
            .filter_map(|p| Some((CubeApi::parse(&p.api)?, p.last_day)))
            .collect();
        if article_pull_awaited(&pulled, to, now, office) {
            awaiting_pull.push(entry.account.clone());
        }
        let began = progress
            .iter()
            .find(|p| p.account == entry.account && p.api == CubeApi::ArticleTotal.as_str())
            .and_then(|p| p.first_day);
        if article_pull_began_within(began, from, to) {
            entry.figures_incomplete = true;
            entry.pull_began = began;
        }
    }
    if calendar {
        awaiting_pull.clear();
    }
    let awaiting_figures = calendar || !awaiting_pull.is_empty();
    let listed = list.len();
    let others_pending = list
        .iter()
        .any(|r| r.pull_failing && !reaches(accounts, &r.account))
        || awaiting_pull.iter().any(|a| !reaches(accounts, a));
    list.retain(|r| reaches(accounts, &r.account));
    awaiting_pull.retain(|a| reaches(accounts, a));
    Ok(Ranking {
        list,
        final_on: figures_final_on(final_with, work_calendar),
        awaiting_figures,
        awaiting_pull,
        provisional: awaiting_figures || incomplete,
        listed,
        others_pending,
    })
}

/// Ranks the accounts of `rows` by `version`'s WCI over a period of `days`.
fn rank<'a>(
    rows: impl Iterator<Item = &'a articles::ArticleRow>,
    days: u32,
    version: WciVersion,
) -> Vec<Ranked> {
    let mut by_account: BTreeMap<String, Vec<ArticleFigures>> = BTreeMap::new();
    for row in rows {
        by_account
            .entry(row.account.clone())
            .or_default()
            .push(ArticleFigures {
                headline: row.headline,
                figures: Figures {
                    reads: row.reads as f64,
                    zaikan: row.zaikan as f64,
                    likes: row.likes as f64,
                    shares: row.shares as f64,
                },
            });
    }
    let mut ranked: Vec<Ranked> = by_account
        .into_iter()
        .map(|(account, list)| {
            let period = WciPeriod::from_articles(days, list);
            Ranked {
                rank: 0,
                account,
                wci: version.score(&period),
                articles: period.articles,
                reads: period.total.reads as u64,
                published_nothing: false,
                figures_incomplete: false,
                pull_failing: false,
                pull_began: None,
            }
        })
        .collect();
    place(&mut ranked);
    ranked
}

/// Orders `ranked` by WCI, best first, and gives each its place. The WCI is rounded to
/// the 2 decimals it is shown with first: 866.944 and 866.941 both read 866.94, and a
/// leader must not see one of two equal figures placed second.
fn place(ranked: &mut [Ranked]) {
    for entry in ranked.iter_mut() {
        entry.wci = (entry.wci * 100.0).round() / 100.0;
    }
    ranked.sort_by(|a, b| b.wci.total_cmp(&a.wci).then(a.account.cmp(&b.account)));
    // Standard competition ranking (1, 1, 3): accounts with the same WCI share a place,
    // listed by id; the id is no merit, so it must not decide who is second.
    let mut previous: Option<(f64, u32)> = None;
    for (index, entry) in ranked.iter_mut().enumerate() {
        let place = match previous {
            Some((wci, place)) if wci == entry.wci => place,
            _ => u32::try_from(index + 1).unwrap_or(u32::MAX),
        };
        entry.rank = place;
        previous = Some((entry.wci, place));
    }
}

/// Who enters figures: the key's department and fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnteredBy {
    pub department: String,
    pub key_id: String,
}

/// Stores a hand entry of 在看, likes (and, where the datacube does not pull them,
/// reads and shares) for `article_id` of `account`, if `domain::figures::decide`
/// accepts it and the article's month is not final at `now` by the office's
/// `calendar` (`domain::figures::month_open`), with a record of who entered what.
#[allow(clippy::too_many_arguments)]
pub async fn record_article_figures(
    db: &PgPool,
    account: &AccountId,
    article_id: &str,
    entry: &FigureEntry,
    by: &EnteredBy,
    now: DateTime<Utc>,
    office: FixedOffset,
    calendar: &WorkCalendar,
) -> Result<(), AppError> {
    let mut tx = db.begin().await?;
    let known = articles::known_article(&mut tx, account, article_id).await?;
    let accepted = figures::decide(article_id, known, entry)?;
    figures::month_open(article_id, accepted.published_on, now, office, calendar)?;
    articles::record_entry(
        &mut tx,
        &ArticleEntry {
            account: account.clone(),
            article_id: article_id.to_owned(),
            title: entry.title.clone(),
            published_on: accepted.published_on,
            headline: accepted.headline,
            reads: entry.reads,
            zaikan: entry.zaikan,
            likes: entry.likes,
            shares: entry.shares,
            entered_by: by.department.clone(),
            key_id: by.key_id.clone(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(account: &str, reads: i64) -> articles::ArticleRow {
        articles::ArticleRow {
            account: account.to_owned(),
            published_on: "2026-11-10".parse().unwrap(),
            headline: true,
            reads,
            zaikan: 10,
            likes: 5,
            shares: 3,
        }
    }

    #[test]
    fn accounts_with_the_same_wci_share_a_place_and_the_next_skips_it() {
        let rows = [
            row("yizhang", 800),
            row("anren", 3_000),
            row("chenzhou", 3_000),
            row("guiyang", 3_000),
        ];
        let ranked = rank(rows.iter(), 30, crate::domain::wci::V14_2);
        let places: Vec<(u32, &str)> = ranked
            .iter()
            .map(|r| (r.rank, r.account.as_str()))
            .collect();
        assert_eq!(
            places,
            [
                (1, "anren"),
                (1, "chenzhou"),
                (1, "guiyang"),
                (4, "yizhang")
            ]
        );
    }

    #[test]
    fn wcis_shown_alike_to_two_decimals_share_a_place() {
        let entry = |account: &str, wci: f64| Ranked {
            rank: 0,
            account: account.to_owned(),
            wci,
            articles: 1,
            reads: 1,
            published_nothing: false,
            figures_incomplete: false,
            pull_failing: false,
            pull_began: None,
        };
        let mut ranked = [
            entry("chenzhou", 866.941),
            entry("yizhang", 866.944),
            entry("anren", 707.53),
        ];
        place(&mut ranked);
        let places: Vec<(u32, &str, f64)> = ranked
            .iter()
            .map(|r| (r.rank, r.account.as_str(), r.wci))
            .collect();
        assert_eq!(
            places,
            [
                (1, "chenzhou", 866.94),
                (1, "yizhang", 866.94),
                (3, "anren", 707.53)
            ]
        );
    }

    #[test]
    fn a_month_not_begun_in_the_office_is_refused() {
        let office = FixedOffset::east_opt(8 * 3600).unwrap();
        // 30 November 17:00 UTC is 1 December 01:00 in the office.
        let now: DateTime<Utc> = "2026-11-30T17:00:00Z".parse().unwrap();
        let day = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert_eq!(month_begun(day("2026-12-01"), now, office), Ok(()));
        assert_eq!(month_begun(day("2026-11-01"), now, office), Ok(()));
        let refused = month_begun(day("2027-01-01"), now, office).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "month 2027-01 has not begun (the office's month is 2026-12)"
        );
    }

    #[test]
    fn a_week_not_begun_in_the_office_is_refused() {
        let office = FixedOffset::east_opt(8 * 3600).unwrap();
        // Saturday 5 December 17:00 UTC is Sunday 6 December 01:00 in the office.
        let now: DateTime<Utc> = "2026-12-05T17:00:00Z".parse().unwrap();
        let day = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert_eq!(week_begun(day("2026-12-12"), now, office), Ok(()));
        assert_eq!(week_begun(day("2026-12-01"), now, office), Ok(()));
        let refused = week_begun(day("2026-12-13"), now, office).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "the week from 2026-12-13 has not begun (the office's day is 2026-12-06)"
        );
    }

    #[test]
    fn a_month_spans_its_calendar_days() {
        let (from, to) = month_span("2026-02-01".parse().unwrap());
        assert_eq!(
            (from.to_string(), to.to_string()),
            ("2026-02-01".into(), "2026-02-28".into())
        );
        let (_, to) = month_span("2026-12-01".parse().unwrap());
        assert_eq!(to.to_string(), "2026-12-31");
    }
}
