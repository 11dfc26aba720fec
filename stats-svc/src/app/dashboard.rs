//! What the dashboard's pages show, loaded in one place so each page is one call.

use std::collections::BTreeMap;

use chrono::{DateTime, Days, FixedOffset, NaiveDate, Utc};
use sqlx::PgPool;
use work_calendar::WorkCalendar;

use super::AppError;
use super::inspection::{
    REPLY_PATH_METRICS, Readiness, datacube_since, list_alarms, readiness, reply_paths,
    silent_since, tickets_opened_in_window, update_ok,
};
use super::ranking::{ListContext, Ranked, Ranking, monthly_ranking, monthly_rankings};
use super::rollups::{DepartmentScore, department_scorecard_in, office_midnight};
use crate::domain::AccountId;
use crate::domain::autoreply::AutoReplySource;
use crate::domain::departments::DepartmentView;
use crate::domain::inspection::{
    AccountState, InspectionRules, ReplyPath, days_since, reply_path_window,
};
use crate::domain::install::Install;
use crate::domain::rollup::{Metric, counted_since, office_day};
use crate::store::alarms::AlarmRow;
use crate::store::reach::{self, PullFailure};
use crate::store::{articles, rollups};

/// One day's figures of an account's charts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DayFigures {
    pub day: NaiveDate,
    pub followers_new: i64,
    pub followers_lost: i64,
    /// WeChat's follower total (datacube), when pulled.
    pub followers_total: Option<i64>,
    pub messages: i64,
    pub menu_clicks: i64,
    pub tickets_opened: i64,
    pub tickets_closed: i64,
    /// Automatic answers: by a reply rule, and by the directory (a service or a category).
    pub rule_replies: i64,
    pub directory_replies: i64,
    /// Article reads on the day (the datacube's `getarticlesummary`), when pulled.
    pub article_reads: Option<i64>,
}

/// The most frequent keys of the keyword and directory hits over the page's range.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hits {
    pub keywords: Vec<(String, i64)>,
    pub services: Vec<(String, i64)>,
    pub categories: Vec<(String, i64)>,
}

/// An account's page.
#[derive(Debug, Clone)]
pub struct AccountPage {
    pub days: Vec<DayFigures>,
    /// Messages by office hour over the range, and automatic answers.
    pub hours: [i64; 24],
    /// The first day messages were counted by office hour, when that counter began
    /// after the daily message count and inside the range (an upgraded install): the
    /// hours chart holds no message before it (`domain::rollup::counted_since`).
    pub hours_since: Option<NaiveDate>,
    pub auto_hours: [i64; 24],
    pub hits: Hits,
    pub departments: Vec<DepartmentScore>,
    /// How many departments the account's whole scorecard ranks, and the viewer's own
    /// department's place in it, when the viewer reads its own department's line only
    /// (`DepartmentView::Own`; `None` for a full scorecard or no line of its own).
    pub department_place: Option<(usize, usize)>,
    /// Whether the key reads its own department's line only (the page says so).
    pub departments_cut: bool,
    pub readiness: Readiness,
    /// Tickets opened in the interaction window, judged or not (the readiness counts
    /// only those past their acknowledgement deadline or answered).
    pub recent_opened: i64,
    pub alarms: Vec<AlarmRow>,
    /// The inspection's interaction window, in days (the readiness line's "近 N 天").
    pub interaction_days: i64,
    /// The update-gap alarm's limit (`ALARM_STALE_DAYS`): from it the page warns of
    /// the gap, which fails the inspection only at the veto's two weeks.
    pub stale_after_days: i64,
    /// The account's failing datacube pulls (its reach and WCI figures stop at each
    /// one's last day pulled).
    pub pull_failures: Vec<PullFailure>,
}

/// How many keys each top list of the hits shows.
const TOP_HITS: i64 = 10;

/// Loads an account's page at `now`: `days` days up to today, departments over the
/// last 30.
#[allow(clippy::too_many_arguments)]
pub async fn account_page(
    db: &PgPool,
    rules: &InspectionRules,
    account: &AccountId,
    now: DateTime<Utc>,
    days: u64,
    office: FixedOffset,
    calendar: &WorkCalendar,
    view: &DepartmentView,
) -> Result<AccountPage, AppError> {
    let today = office_day(now, office);
    let from = today - Days::new(days.saturating_sub(1));
    let mut figures: Vec<DayFigures> = from
        .iter_days()
        .take_while(|d| *d <= today)
        .map(|day| DayFigures {
            day,
            ..DayFigures::default()
        })
        .collect();
    let metrics = [
        Metric::FollowersNew,
        Metric::FollowersLost,
        Metric::WxFollowers,
        Metric::Messages,
        Metric::MenuClicks,
        Metric::TicketsOpened,
        Metric::TicketsClosed,
        Metric::AutoReplies,
        Metric::WxArticleReads,
    ];
    // One read for every chart's metrics (the index by account, metric and day).
    let names = metrics.map(Metric::as_str);
    for point in rollups::values_of(db, Some(account), &names, from, today).await? {
        let Some(metric) = Metric::parse(&point.metric) else {
            continue;
        };
        let Ok(index) = usize::try_from((point.day - from).num_days()) else {
            continue;
        };
        let Some(day) = figures.get_mut(index) else {
            continue;
        };
        // The ticket metrics are keyed by department: a cut view sums its own key only,
        // as `daily_series` reads them over gRPC (the account's total, less its own
        // line, was every other department's count).
        if metric.keyed_by_department() && !view.sees(&point.key) {
            continue;
        }
        match metric {
            Metric::FollowersNew => day.followers_new += point.value,
            Metric::FollowersLost => day.followers_lost += point.value,
            Metric::WxFollowers => {
                day.followers_total = Some(day.followers_total.unwrap_or(0) + point.value)
            }
            Metric::Messages => day.messages += point.value,
            Metric::MenuClicks => day.menu_clicks += point.value,
            Metric::TicketsOpened => day.tickets_opened += point.value,
            Metric::TicketsClosed => day.tickets_closed += point.value,
            Metric::AutoReplies if point.key == AutoReplySource::Rule.as_str() => {
                day.rule_replies += point.value
            }
            Metric::AutoReplies => day.directory_replies += point.value,
            Metric::WxArticleReads => {
                day.article_reads = Some(day.article_reads.unwrap_or(0) + point.value)
            }
            _ => {}
        }
    }
    let hours = by_hour(db, account, Metric::MessagesByHour, from, today).await?;
    let auto_hours = by_hour(db, account, Metric::AutoRepliesByHour, from, today).await?;
    let hours_since = counted_since(
        rollups::first_day(db, account, Metric::MessagesByHour.as_str()).await?,
        rollups::first_day(db, account, Metric::Messages.as_str()).await?,
        from,
    );
    let top =
        |metric: Metric| rollups::top_keys(db, account, metric.as_str(), from, today, TOP_HITS);
    let hits = Hits {
        keywords: top(Metric::KeywordHits).await?,
        services: top(Metric::DirectoryServiceHits).await?,
        categories: top(Metric::DirectoryCategoryHits).await?,
    };
    // The grace after a move counts in the shared calendar, as gRPC's scorecard does:
    // with weekdays only, a ticket moved before a holiday was late on the page alone.
    let mut departments = department_scorecard_in(
        db,
        account,
        today - Days::new(29),
        today,
        now,
        office,
        calendar,
    )
    .await?;
    // A desk's key reads its own line, at its place among every department.
    let department_place = if view.is_cut() {
        let place = department_place(&departments, view);
        departments.retain(|d| view.sees(&d.department));
        place
    } else {
        None
    };
    let readiness = readiness(db, rules, account, today, now, office, calendar, view).await?;
    let recent_opened =
        tickets_opened_in_window(db, rules, account, today, now, office, view).await?;
    let scope = [account.as_str().to_owned()];
    let alarms = list_alarms(db, Some(&scope), today - Days::new(29), today, view).await?;
    Ok(AccountPage {
        days: figures,
        hours,
        hours_since,
        auto_hours,
        hits,
        departments,
        department_place,
        departments_cut: view.is_cut(),
        readiness,
        recent_opened,
        alarms,
        interaction_days: rules.interaction_days,
        stale_after_days: rules.stale_after_days,
        pull_failures: reach::failures(db, Some(&scope)).await?,
    })
}

/// The place of `view`'s department among the departments with an acknowledgement
/// rate, and how many have one: 1 + those with a higher rate (competition ranking:
/// equal rates share a place). None when the department has no rate (nothing judged:
/// no place, rather than one from the scorecard's order) or is not on the scorecard.
pub fn department_place(
    departments: &[DepartmentScore],
    view: &DepartmentView,
) -> Option<(usize, usize)> {
    let rates: Vec<f64> = departments
        .iter()
        .filter_map(DepartmentScore::acknowledged_rate)
        .collect();
    let own = departments
        .iter()
        .find(|d| view.sees(&d.department))?
        .acknowledged_rate()?;
    let higher = rates.iter().filter(|rate| **rate > own).count();
    Some((higher + 1, rates.len()))
}

/// A metric keyed by office hour, summed over a range (in the database: a year holds
/// 24 counters a day).
async fn by_hour(
    db: &PgPool,
    account: &AccountId,
    metric: Metric,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<[i64; 24], AppError> {
    let mut hours = [0i64; 24];
    for (key, total) in rollups::top_keys(db, account, metric.as_str(), from, to, 24).await? {
        if let Some(slot) = key.parse::<usize>().ok().and_then(|h| hours.get_mut(h)) {
            *slot += total;
        }
    }
    Ok(hours)
}

/// One account's line on the overview.
#[derive(Debug, Clone)]
pub struct AccountLine {
    pub account: String,
    pub readiness: Readiness,
}

/// The overview at `now`: every account in reach with its readiness (from a few
/// set-based queries, whatever the number of accounts; the per-account alarms are on
/// the account page), and the latest alarms. A view cut to a department reads that
/// department's on-time share (one scorecard per account in reach).
#[allow(clippy::too_many_arguments)]
pub async fn overview(
    db: &PgPool,
    rules: &InspectionRules,
    install: &Install,
    accounts: Option<&[String]>,
    now: DateTime<Utc>,
    office: FixedOffset,
    calendar: &WorkCalendar,
    view: &DepartmentView,
) -> Result<(Vec<AccountLine>, Vec<AlarmRow>), AppError> {
    let today = office_day(now, office);
    let end = office_midnight(today + Days::new(1), office);
    let tickets = rollups::ticket_summaries(
        db,
        office_midnight(rules.interaction_from(today), office),
        office_midnight(rules.overdue_from(today), office),
        end,
        now,
    )
    .await?;
    let mut lines: BTreeMap<String, Readiness> = BTreeMap::new();
    let blank = || Readiness {
        last_published_on: None,
        days_since_update: None,
        update_ok: false,
        recent_tickets: 0,
        recent_answered: 0,
        recent_auto_replies: 0,
        reply_path: ReplyPath::default(),
        interaction_ok: true,
        acknowledged_in_time: 1.0,
        acknowledge_judged: 0,
        acknowledged_on_time: 0,
        alarms: Vec::new(),
    };
    for account in articles::inbound_accounts(db).await? {
        lines.entry(account).or_insert_with(blank);
    }
    // However silent: nothing heard of it is what the page must show.
    for account in install.accounts() {
        lines.entry(account.to_owned()).or_insert_with(blank);
    }
    for account in articles::datacube_accounts(db, datacube_since(today)).await? {
        lines.entry(account).or_insert_with(blank);
    }
    for (account, last) in articles::last_published_by_account(db, today).await? {
        let line = lines.entry(account).or_insert_with(blank);
        line.last_published_on = last;
        line.days_since_update = last.map(|d| days_since(d, today));
        line.update_ok = update_ok(line.days_since_update);
    }
    for t in tickets {
        let line = lines.entry(t.account).or_insert_with(blank);
        line.recent_tickets = t.recent;
        line.recent_answered = t.recent_answered;
        line.acknowledge_judged = t.in_window;
        line.acknowledged_on_time = t.acknowledged_in_time;
        line.acknowledged_in_time = line.acknowledged_rate().unwrap_or(1.0);
    }
    let auto_replies = rollups::values_of(
        db,
        None,
        &[Metric::AutoReplies.as_str()],
        rules.interaction_from(today),
        today,
    )
    .await?;
    for v in auto_replies {
        lines
            .entry(v.account)
            .or_insert_with(blank)
            .recent_auto_replies += v.value;
    }
    let window = reply_path_window(now, office, rules.reply_path_hours);
    let hourly = rollups::values_of(
        db,
        None,
        &REPLY_PATH_METRICS,
        office_day(window.0, office),
        office_day(window.1, office),
    )
    .await?;
    for (account, path) in reply_paths(hourly, window, office) {
        lines.entry(account).or_insert_with(blank).reply_path = path;
    }
    for line in lines.values_mut() {
        // The checks read these fields only (the rest is the account page's).
        let state = AccountState {
            recent_tickets: line.recent_tickets,
            recent_answered: line.recent_answered,
            recent_auto_replies: line.recent_auto_replies,
            reply_path: line.reply_path,
            ..AccountState::default()
        };
        line.interaction_ok = rules.interaction_ok(&state);
    }
    // The accounts the job checks, no other (`Install::checks`): an account out of the
    // install is not named, or (none named) silent for a month.
    let listed: Vec<String> = lines.keys().cloned().collect();
    let silent = if install.is_named() {
        Vec::new()
    } else {
        articles::last_seen_before(db, &listed, silent_since(today)).await?
    };
    let mut lines: Vec<AccountLine> = lines
        .into_iter()
        .filter(|(account, _)| accounts.is_none_or(|scope| scope.contains(account)))
        .filter(|(account, _)| install.checks(account, silent.contains(account)))
        .map(|(account, readiness)| AccountLine { account, readiness })
        .collect();
    if view.is_cut() {
        // The account's rate with its base, less the key's own line of the account
        // page's scorecard, was every other department's: a cut view reads its own
        // department's rate, judged as that line is, over the same window.
        for line in &mut lines {
            let Ok(account) = AccountId::parse(line.account.as_str()) else {
                continue;
            };
            let own = department_scorecard_in(
                db,
                &account,
                rules.overdue_from(today),
                today,
                now,
                office,
                calendar,
            )
            .await?
            .into_iter()
            .find(|d| view.sees(&d.department));
            let r = &mut line.readiness;
            (r.acknowledge_judged, r.acknowledged_on_time) =
                own.map_or((0, 0), |d| (d.acknowledge_judged, d.acknowledged_in_time));
            r.acknowledged_in_time = r.acknowledged_rate().unwrap_or(1.0);
        }
    }
    let alarms = list_alarms(db, accounts, today - Days::new(29), today, view).await?;
    Ok((lines, alarms))
}

/// The ranking page at `now`: the month's list (every account in reach, whether final)
/// and each account's WCI over the six months up to it.
pub async fn ranking_page(
    db: &PgPool,
    context: &ListContext<'_>,
    month: NaiveDate,
) -> Result<(Ranking, Vec<(NaiveDate, Vec<Ranked>)>), AppError> {
    let trend = monthly_rankings(db, context, month, 6).await?;
    let ranking = monthly_ranking(db, context, month).await?;
    Ok((ranking, trend))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(department: &str, judged: i64, in_time: i64) -> DepartmentScore {
        DepartmentScore {
            department: department.to_owned(),
            acknowledge_judged: judged,
            acknowledged_in_time: in_time,
            ..DepartmentScore::default()
        }
    }

    #[test]
    fn a_departments_place_is_shared_on_equal_rates_and_none_without_a_rate() {
        // In the scorecard's order: roads and water tie at 1.0, parks 0.5, sports none.
        let card = [
            score("roads", 2, 2),
            score("water", 4, 4),
            score("parks", 2, 1),
            score("sports", 0, 0),
        ];
        let place = |d: &str| department_place(&card, &DepartmentView::Own(d.to_owned()));
        assert_eq!(place("roads"), Some((1, 3)));
        assert_eq!(place("water"), Some((1, 3)));
        assert_eq!(place("parks"), Some((3, 3)));
        assert_eq!(place("sports"), None);
        assert_eq!(place("absent"), None);
    }
}
