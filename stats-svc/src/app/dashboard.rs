//! What the dashboard's pages show, loaded in one place so each page is one call.

use std::collections::BTreeMap;

use chrono::{Days, FixedOffset, NaiveDate};
use sqlx::PgPool;

use super::AppError;
use super::inspection::{Readiness, readiness};
use super::ranking::{Ranked, monthly_rankings};
use super::rollups::{DepartmentScore, department_scorecard, office_midnight};
use crate::domain::AccountId;
use crate::domain::inspection::{InspectionRules, days_since};
use crate::domain::rollup::Metric;
use crate::domain::wci::WciVersion;
use crate::store::alarms::{self, AlarmRow};
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
}

/// An account's page.
#[derive(Debug, Clone)]
pub struct AccountPage {
    pub days: Vec<DayFigures>,
    /// Messages by office hour over the range.
    pub hours: [i64; 24],
    pub departments: Vec<DepartmentScore>,
    pub readiness: Readiness,
    pub alarms: Vec<AlarmRow>,
}

/// Loads an account's page: `days` days up to `today`, departments over the last 30.
pub async fn account_page(
    db: &PgPool,
    rules: &InspectionRules,
    account: &AccountId,
    today: NaiveDate,
    days: u64,
    office: FixedOffset,
) -> Result<AccountPage, AppError> {
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
    ];
    for metric in metrics {
        for point in rollups::series(db, account, metric.as_str(), from, today).await? {
            let Ok(index) = usize::try_from((point.day - from).num_days()) else {
                continue;
            };
            let Some(day) = figures.get_mut(index) else {
                continue;
            };
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
                _ => {}
            }
        }
    }
    let mut hours = [0i64; 24];
    for point in rollups::series(db, account, Metric::MessagesByHour.as_str(), from, today).await? {
        if let Some(slot) = point
            .key
            .parse::<usize>()
            .ok()
            .and_then(|h| hours.get_mut(h))
        {
            *slot += point.value;
        }
    }
    let departments =
        department_scorecard(db, account, today - Days::new(29), today, office).await?;
    let readiness = readiness(db, rules, account, today, office).await?;
    let scope = [account.as_str().to_owned()];
    let alarms = alarms::list(db, Some(&scope), today - Days::new(29), today).await?;
    Ok(AccountPage {
        days: figures,
        hours,
        departments,
        readiness,
        alarms,
    })
}

/// One account's line on the overview.
#[derive(Debug, Clone)]
pub struct AccountLine {
    pub account: String,
    pub readiness: Readiness,
}

/// The overview: every account in reach with its readiness (from three set-based
/// queries, whatever the number of accounts; the per-account alarms are on the
/// account page), and the latest alarms.
pub async fn overview(
    db: &PgPool,
    rules: &InspectionRules,
    accounts: Option<&[String]>,
    today: NaiveDate,
    office: FixedOffset,
) -> Result<(Vec<AccountLine>, Vec<AlarmRow>), AppError> {
    let days = |n: i64| Days::new(u64::try_from(n).unwrap_or(0));
    let end = office_midnight(today + Days::new(1), office);
    let tickets = rollups::ticket_summaries(
        db,
        office_midnight(today - days(rules.interaction_days), office),
        office_midnight(today - days(rules.overdue_window_days), office),
        end,
    )
    .await?;
    let mut lines: BTreeMap<String, Readiness> = BTreeMap::new();
    let blank = || Readiness {
        last_published_on: None,
        days_since_update: None,
        update_ok: false,
        recent_tickets: 0,
        recent_answered: 0,
        interaction_ok: true,
        acknowledged_in_time: 1.0,
        alarms: Vec::new(),
    };
    for account in articles::inbound_accounts(db).await? {
        lines.entry(account).or_insert_with(blank);
    }
    for (account, last) in articles::last_published_by_account(db, today).await? {
        let line = lines.entry(account).or_insert_with(blank);
        line.last_published_on = last;
        line.days_since_update = last.map(|d| days_since(d, today));
        line.update_ok = line
            .days_since_update
            .is_some_and(|d| d < rules.stale_after_days);
    }
    for t in tickets {
        let line = lines.entry(t.account).or_insert_with(blank);
        line.recent_tickets = t.recent;
        line.recent_answered = t.recent_answered;
        line.interaction_ok = !(t.recent > 0 && t.recent_answered == 0);
        if t.in_window > 0 {
            line.acknowledged_in_time = t.acknowledged_in_time as f64 / t.in_window as f64;
        }
    }
    let lines = lines
        .into_iter()
        .filter(|(account, _)| accounts.is_none_or(|scope| scope.contains(account)))
        .map(|(account, readiness)| AccountLine { account, readiness })
        .collect();
    let alarms = alarms::list(db, accounts, today - Days::new(29), today).await?;
    Ok((lines, alarms))
}

/// The ranking page: the month's list and each account's WCI over the six months up to it.
pub async fn ranking_page(
    db: &PgPool,
    accounts: Option<&[String]>,
    month: NaiveDate,
    version: WciVersion,
) -> Result<(Vec<Ranked>, Vec<(NaiveDate, Vec<Ranked>)>), AppError> {
    let trend = monthly_rankings(db, accounts, month, 6, version).await?;
    let list = trend
        .last()
        .map(|(_, list)| list.clone())
        .unwrap_or_default();
    Ok((list, trend))
}
