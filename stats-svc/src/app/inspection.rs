//! Inspection: the checks of every account on a day (raising alarms on STATS) and the
//! readiness report an inspector's checklist asks for.

use std::collections::BTreeMap;

use chrono::{DateTime, Days, FixedOffset, NaiveDate, TimeDelta, Utc};
use sqlx::PgPool;
use work_calendar::WorkCalendar;

use super::AppError;
use super::rollups::{
    acknowledgement_charged, as_at, department_scorecard_in, office_midnight, rate, step_judgements,
};
use crate::domain::AccountId;
use crate::domain::departments::DepartmentView;
use crate::domain::inspection::{
    AccountState, Alarm, AlarmRule, InspectionRules, ReplyPath, cut_detail, days_since,
    reply_path_window,
};
use crate::domain::install::Install;
use crate::domain::rollup::{Metric, office_day};
use crate::store::{alarms, articles, rollups};

/// Loads what the checks read about `account` on `today`, at `now`. A past day is
/// read as at its end: a step done after it (a late acknowledgement, a close) or an
/// escalation after it does not change what that day showed.
pub async fn account_state(
    db: &PgPool,
    rules: &InspectionRules,
    account: &AccountId,
    today: NaiveDate,
    now: DateTime<Utc>,
    office: FixedOffset,
    calendar: &WorkCalendar,
) -> Result<AccountState, AppError> {
    let last_published_on = articles::last_published_on(db, account, today).await?;
    let end = office_midnight(today + Days::new(1), office);
    // Every fact below is taken as it stood at `as_at`.
    let as_at = now.min(end);
    let interaction_from = rules.interaction_from(today);
    let window_start = office_midnight(interaction_from, office);
    // A ticket still inside its acknowledgement deadline is not unanswered yet.
    let recent: Vec<_> = rollups::tickets_opened(db, account, window_start, end)
        .await?
        .into_iter()
        .filter(|t| acknowledgement_judged(t, as_at))
        .collect();
    let recent_tickets = recent.len() as i64;
    let recent_answered = recent.iter().filter(|t| answered_by(t, as_at)).count() as i64;
    let recent_auto_replies = rollups::values_of(
        db,
        Some(account),
        &[Metric::AutoReplies.as_str()],
        interaction_from,
        today,
    )
    .await?
    .iter()
    .map(|v| v.value)
    .sum();
    let window = reply_path_window(as_at, office, rules.reply_path_hours);
    let reply_path = reply_paths(
        rollups::values_of(
            db,
            Some(account),
            &REPLY_PATH_METRICS,
            office_day(window.0, office),
            office_day(window.1, office),
        )
        .await?,
        window,
        office,
    )
    .remove(account.as_str())
    .unwrap_or_default();
    let overdue_start = office_midnight(rules.overdue_from(today), office);
    let mut departments: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for ticket in rollups::tickets_opened(db, account, overdue_start, end).await? {
        for (department, overdue) in overdue_share_counts(&ticket, as_at, calendar) {
            let entry = departments.entry(department).or_default();
            entry.0 += 1;
            entry.1 += i64::from(overdue);
        }
    }
    // Whether a ticket was open and escalated twice at a past day's end cannot be
    // read back: `ticket_times` keeps the newest close and reopen, not their history.
    // A past day is answered with the alarms the job raised on it, as it stood then.
    let escalated_twice = if now >= end {
        alarms::subjects(db, account, AlarmRule::EscalatedTwice.as_str(), today).await?
    } else {
        alarms::escalated_twice(db, account).await?
    };
    Ok(AccountState {
        last_published_on,
        recent_tickets,
        recent_answered,
        recent_auto_replies,
        reply_path,
        departments: departments
            .into_iter()
            .map(|(department, (opened, overdue))| (department, opened, overdue))
            .collect(),
        escalated_twice,
    })
}

/// How many tickets `account` opened in the interaction window that ends with `day`,
/// by `now` (a past day as at its end), judged or not: the readiness's
/// `recent_tickets` counts only those whose acknowledgement is decided, which on a
/// Monday morning leaves out a weekend's tickets due that evening. A view cut to a
/// department counts the tickets that department holds, as the readiness does.
pub async fn tickets_opened_in_window(
    db: &PgPool,
    rules: &InspectionRules,
    account: &AccountId,
    day: NaiveDate,
    now: DateTime<Utc>,
    office: FixedOffset,
    view: &DepartmentView,
) -> Result<i64, AppError> {
    let end = office_midnight(day + Days::new(1), office);
    let as_at = now.min(end);
    let start = office_midnight(rules.interaction_from(day), office);
    let opened = rollups::tickets_opened(db, account, start, end)
        .await?
        .iter()
        .filter(|t| view.sees(&t.department) && t.opened_at.is_none_or(|at| at <= as_at))
        .count();
    Ok(opened as i64)
}

/// Accounts the datacube counted followers of in the week before `today` are checked
/// and listed even when nothing else is known of them (see `known_accounts`).
pub fn datacube_since(today: NaiveDate) -> NaiveDate {
    today - Days::new(7)
}

/// Where the install names no accounts (`WECHAT_ACCOUNTS` unset), an account nothing
/// was heard of since before this day (no callback, ticket, datacube figure or article
/// in the 30 days before `today`) is taken to be out of the install and is not checked:
/// a removed account would otherwise raise the update-gap alarm every day for ever.
/// Where it names them, the names decide ([`Install::checks`]). A month, not `ALARM_STALE_DAYS`: an account silent in
/// every way (no datacube, followers who never write) still raises it for the weeks
/// after its stale limit.
pub fn silent_since(today: NaiveDate) -> NaiveDate {
    today - Days::new(30)
}

/// The accounts the inspection checks on `today` (and `/` shows): every account the
/// install names, heard of or not; without names, every account heard of but those
/// silent since [`silent_since`].
pub async fn checked_accounts(
    db: &PgPool,
    install: &Install,
    today: NaiveDate,
) -> Result<Vec<String>, AppError> {
    let mut accounts = articles::known_accounts(db, datacube_since(today)).await?;
    accounts.extend(install.accounts().map(str::to_owned));
    accounts.sort();
    accounts.dedup();
    let silent = if install.is_named() {
        Vec::new()
    } else {
        articles::last_seen_before(db, &accounts, silent_since(today)).await?
    };
    accounts.retain(|account| install.checks(account, silent.contains(account)));
    Ok(accounts)
}

/// Whether a ticket was acknowledged, replied to or closed by `at`.
fn answered_by(ticket: &rollups::TicketTimes, at: DateTime<Utc>) -> bool {
    ticket.acknowledged_at.is_some_and(|t| t <= at) || ticket.closed_at.is_some_and(|t| t <= at)
}

/// Whether a ticket's acknowledgement is decided at `at`: done (acknowledged, replied
/// or closed) by then, or due. A ticket without a deadline is judged at once.
fn acknowledgement_judged(ticket: &rollups::TicketTimes, at: DateTime<Utc>) -> bool {
    answered_by(ticket, at) || ticket.acknowledge_due_at.is_none_or(|due| due <= at)
}

/// Whether a ticket had been escalated (a deadline missed) by `at`. A row folded
/// before the escalation times were kept has only its count, taken as it is.
fn overdue_by(ticket: &rollups::TicketTimes, at: DateTime<Utc>) -> bool {
    match (ticket.acknowledge_missed_at, ticket.resolve_missed_at) {
        (None, None) => ticket.overdue_count > 0,
        (ack, resolve) => ack.is_some_and(|t| t <= at) || resolve.is_some_and(|t| t <= at),
    }
}

/// The departments `ticket` counts for on the overdue share at `at`, each once, and
/// whether it went overdue under that one.
///
/// A ticket counts for every department the scorecard judges for one of its steps
/// ([`step_judgements`]: the one that did it in time, or missed it) and for every one
/// charged a missed deadline, not for its owner now: a dispatch desk that acknowledged
/// ten tickets in time and passed each on to a department, and missed the eleventh,
/// read 1/1 when only the tickets it still held counted. A ticket with no step judged
/// (fresh, inside every deadline) counts for no one: it would dilute the share.
///
/// Each missed deadline is charged to the department it is whose, even if the ticket
/// was moved on since (退单改派): the one that owned the ticket when it passed, or, of
/// a ticket moved on unacknowledged before its acknowledgement deadline, the one
/// [`acknowledgement_charged`] names (a department that passed it on inside the grace
/// it was given is not charged; the one that held it past its own deadline is). A
/// resolution missed later is its owner's then, not the mover's. A department the
/// scorecard judges late for passing a ticket on unacknowledged inside its own
/// deadline (no response to the citizen) counts it, not overdue; one that kept it
/// past its own deadline is the one charged.
pub fn overdue_share_counts(
    ticket: &rollups::TicketTimes,
    at: DateTime<Utc>,
    calendar: &WorkCalendar,
) -> BTreeMap<String, bool> {
    let mut counts: BTreeMap<String, bool> = BTreeMap::new();
    let acknowledge_missed = ticket.acknowledge_missed_at.filter(|t| *t <= at);
    let resolve_missed = ticket.resolve_missed_at.filter(|t| *t <= at);
    if acknowledge_missed.is_some()
        && let Some(department) = acknowledgement_charged(ticket, at, calendar)
    {
        counts.insert(department.to_owned(), true);
    }
    if resolve_missed.is_some() {
        let department = ticket
            .resolve_missed_by
            .clone()
            .unwrap_or_else(|| ticket.department.clone());
        counts.insert(department, true);
    }
    if counts.is_empty() && overdue_by(ticket, at) {
        // A row folded before the escalation times were kept has only its count.
        counts.insert(ticket.department.clone(), true);
    }
    let judged = as_at(ticket.clone(), at);
    let (acknowledgement, resolution) = step_judgements(&judged, at, calendar);
    for (department, _) in acknowledgement.into_iter().chain(resolution) {
        counts.entry(department.to_owned()).or_insert(false);
    }
    counts
}

/// The hourly counters the reply-path check reads: the messages interaction-svc takes
/// in (not every message: an untranscribed voice note or a video is answered "请改用
/// 文字" alone, by design), and what answered or took them (a rating is answered with
/// thanks alone: no automatic reply, no ticket intake).
pub const REPLY_PATH_METRICS: [&str; 4] = [
    "taken_in_by_hour",
    "auto_replies_by_hour",
    "ticket_intake_by_hour",
    "ratings_by_hour",
];

/// Folds hourly counters (`REPLY_PATH_METRICS`, keyed by office hour) into each
/// account's reply-path traffic over `window`.
pub fn reply_paths(
    values: Vec<rollups::AccountValue>,
    window: (DateTime<Utc>, DateTime<Utc>),
    office: FixedOffset,
) -> BTreeMap<String, ReplyPath> {
    let mut paths: BTreeMap<String, ReplyPath> = BTreeMap::new();
    for v in values {
        let Ok(hour) = v.key.parse::<i64>() else {
            continue;
        };
        let start = office_midnight(v.day, office) + TimeDelta::hours(hour);
        if start < window.0 || start >= window.1 {
            continue;
        }
        let path = paths.entry(v.account).or_default();
        match Metric::parse(&v.metric) {
            Some(Metric::TakenInByHour) => path.messages += v.value,
            Some(
                Metric::AutoRepliesByHour | Metric::TicketIntakeByHour | Metric::RatingsByHour,
            ) => path.answered += v.value,
            _ => {}
        }
    }
    paths
}

/// Runs the checks of every known account for `today` and raises the alarms not yet
/// raised that day; returns how many were new. The grace after a move is counted in
/// `calendar` (the service's, as interaction-svc counts deadlines), as the scorecard
/// counts it: in weekdays alone, a ticket passed on the eve of a holiday was charged
/// to a receiver in time by the calendar.
pub async fn run_checks_in(
    db: &PgPool,
    rules: &InspectionRules,
    install: &Install,
    today: NaiveDate,
    now: DateTime<Utc>,
    office: FixedOffset,
    calendar: &WorkCalendar,
) -> Result<usize, AppError> {
    let mut raised = 0;
    for account in checked_accounts(db, install, today).await? {
        let Ok(account) = AccountId::parse(account.as_str()) else {
            continue;
        };
        let state = account_state(db, rules, &account, today, now, office, calendar).await?;
        let found = rules.check(&state, today);
        if found.is_empty() {
            continue;
        }
        let mut tx = db.begin().await?;
        for alarm in &found {
            if alarms::raise(&mut tx, &account, today, alarm, now).await? {
                metrics::counter!("stats_alarms_raised_total", "rule" => alarm.rule.as_str())
                    .increment(1);
                raised += 1;
            }
        }
        tx.commit().await?;
    }
    Ok(raised)
}

/// The national inspection's single veto (domain.md §1.3): no update within the 2
/// weeks before the check (监测时间点前2周内未更新), so a last update 14 days back
/// fails. `ALARM_STALE_DAYS` (10) is the office's own earlier warning, not the veto.
pub const UPDATE_VETO_DAYS: i64 = 14;

/// Whether the last update, `days_since_update` days back (`None`: never), passes the
/// veto ([`UPDATE_VETO_DAYS`]).
pub fn update_ok(days_since_update: Option<i64>) -> bool {
    days_since_update.is_some_and(|d| d < UPDATE_VETO_DAYS)
}

/// Whether the update gap has reached the alarm's limit (`stale_after_days`,
/// `ALARM_STALE_DAYS`) while it still passes the veto: a warning, not a failure.
pub fn update_warning(stale_after_days: i64, days_since_update: Option<i64>) -> bool {
    update_ok(days_since_update) && days_since_update.is_some_and(|d| d >= stale_after_days)
}

/// What an inspector's checklist asks about an account on a date.
#[derive(Debug, Clone, PartialEq)]
pub struct Readiness {
    pub last_published_on: Option<NaiveDate>,
    pub days_since_update: Option<i64>,
    /// Inside the national veto (updated within 2 weeks: [`UPDATE_VETO_DAYS`]); the
    /// update-gap alarm fires earlier, at `ALARM_STALE_DAYS` ([`update_warning`]).
    pub update_ok: bool,
    pub recent_tickets: i64,
    pub recent_answered: i64,
    pub recent_auto_replies: i64,
    /// Citizen messages over the reply-path window, and what answered them.
    pub reply_path: ReplyPath,
    pub interaction_ok: bool,
    /// The share acknowledged in time over the overdue window (1 when nothing is
    /// judged: the wire's figure; pages read [`Readiness::acknowledged_rate`]).
    pub acknowledged_in_time: f64,
    /// Its base: tickets whose acknowledgement is judged, and those acknowledged in time.
    pub acknowledge_judged: i64,
    pub acknowledged_on_time: i64,
    pub alarms: Vec<Alarm>,
}

impl Readiness {
    /// The share acknowledged in time, `None` while no ticket's acknowledgement is
    /// judged (no data is not 100%).
    pub fn acknowledged_rate(&self) -> Option<f64> {
        rate(self.acknowledged_on_time, self.acknowledge_judged)
    }
}

/// The readiness report of `account` on `day`, at `now` (a past day as at its end),
/// with the alarms `view` reads. A view cut to a department reads that department's
/// tickets only (those it holds, in the interaction window) and its own line of the
/// scorecard over the overdue window (the grace after a move counted in `calendar`),
/// as the chart and the overview read it: the account's whole, less that line, was
/// every other department's. The verdicts (`interaction_ok`, `update_ok`), the
/// automatic answers and the reply path are the account's, as the inspector judges
/// them.
#[allow(clippy::too_many_arguments)]
pub async fn readiness(
    db: &PgPool,
    rules: &InspectionRules,
    account: &AccountId,
    day: NaiveDate,
    now: DateTime<Utc>,
    office: FixedOffset,
    calendar: &WorkCalendar,
    view: &DepartmentView,
) -> Result<Readiness, AppError> {
    let state = account_state(db, rules, account, day, now, office, calendar).await?;
    let found = visible(
        db,
        view,
        rules.check(&state, day),
        |a| {
            (
                account.as_str().to_owned(),
                a.rule.as_str().to_owned(),
                a.subject.clone(),
            )
        },
        |a| &mut a.detail,
    )
    .await?;
    let days_since_update = state.last_published_on.map(|last| days_since(last, day));
    // Each ticket once, by whether the citizen had an acknowledgement by its deadline,
    // as it stood at the day's end (or now, for today): the scorecard judges a ticket
    // moved on unacknowledged for two departments, and the overview reads tickets so.
    let end = office_midnight(day + Days::new(1), office);
    let as_at = now.min(end);
    let (mut in_range, mut in_time) = (0, 0);
    for ticket in rollups::tickets_opened(
        db,
        account,
        office_midnight(rules.overdue_from(day), office),
        end,
    )
    .await?
    {
        let acknowledged = ticket.acknowledged_at.filter(|at| *at <= as_at);
        let due = ticket.acknowledge_due_at;
        if acknowledged.is_some() || due.is_some_and(|due| due <= as_at) {
            in_range += 1;
            in_time += i64::from(acknowledged.is_some_and(|at| due.is_none_or(|due| at <= due)));
        }
    }
    let (mut recent_tickets, mut recent_answered) = (state.recent_tickets, state.recent_answered);
    if view.is_cut() {
        let start = office_midnight(rules.interaction_from(day), office);
        let own: Vec<_> = rollups::tickets_opened(db, account, start, end)
            .await?
            .into_iter()
            .filter(|t| view.sees(&t.department) && acknowledgement_judged(t, as_at))
            .collect();
        recent_tickets = own.len() as i64;
        recent_answered = own.iter().filter(|t| answered_by(t, as_at)).count() as i64;
        let line = department_scorecard_in(
            db,
            account,
            rules.overdue_from(day),
            day,
            as_at,
            office,
            calendar,
        )
        .await?
        .into_iter()
        .find(|d| view.sees(&d.department));
        (in_range, in_time) =
            line.map_or((0, 0), |d| (d.acknowledge_judged, d.acknowledged_in_time));
    }
    Ok(Readiness {
        last_published_on: state.last_published_on,
        days_since_update,
        update_ok: update_ok(days_since_update),
        recent_tickets,
        recent_answered,
        recent_auto_replies: state.recent_auto_replies,
        reply_path: state.reply_path,
        interaction_ok: rules.interaction_ok(&state),
        acknowledged_in_time: rate(in_time, in_range).unwrap_or(1.0),
        acknowledge_judged: in_range,
        acknowledged_on_time: in_time,
        alarms: found,
    })
}

/// Alarms raised from `from` to `to` for `accounts` (`None`: every account), those
/// `view` reads.
pub async fn list_alarms(
    db: &PgPool,
    accounts: Option<&[String]>,
    from: NaiveDate,
    to: NaiveDate,
    view: &DepartmentView,
) -> Result<Vec<alarms::AlarmRow>, AppError> {
    let rows = alarms::list(db, accounts, from, to).await?;
    visible(
        db,
        view,
        rows,
        |a| (a.account.clone(), a.rule.clone(), a.subject.clone()),
        |a| &mut a.detail,
    )
    .await
}

/// The alarms of `items` that `view` reads ([`DepartmentView::sees_alarm`]), each
/// with the detail it reads (`crate::domain::inspection::cut_detail`); `key` gives an
/// item's account, rule and subject, `detail` its detail. A desk's key read every
/// department's late counts through the overdue-share alarms, other departments'
/// tickets through escalated_twice, and the account's ticket count through
/// interaction_broken, after its scorecard was cut to its own line.
pub async fn visible<T>(
    db: &PgPool,
    view: &DepartmentView,
    items: Vec<T>,
    key: impl Fn(&T) -> (String, String, String),
    detail: impl Fn(&mut T) -> &mut String,
) -> Result<Vec<T>, AppError> {
    if !view.is_cut() {
        return Ok(items);
    }
    let tickets: Vec<(String, String)> = items
        .iter()
        .map(&key)
        .filter(|(_, rule, _)| rule == AlarmRule::EscalatedTwice.as_str())
        .map(|(account, _, subject)| (account, subject))
        .collect();
    let held: BTreeMap<(String, String), String> = if tickets.is_empty() {
        BTreeMap::new()
    } else {
        alarms::ticket_departments(db, &tickets)
            .await?
            .into_iter()
            .map(|(account, ticket, department)| ((account, ticket), department))
            .collect()
    };
    Ok(items
        .into_iter()
        .filter(|item| {
            let (account, rule, subject) = key(item);
            let department = held.get(&(account, subject.clone())).map(String::as_str);
            view.sees_alarm(&rule, &subject, department)
        })
        .map(|mut item| {
            let (_, rule, subject) = key(&item);
            let text = detail(&mut item);
            if let Some(cut) = cut_detail(&rule, &subject, text) {
                *text = cut;
            }
            item
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::rollups::tests::moved;

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339).unwrap().to_utc()
    }

    fn overdue(counts: &BTreeMap<String, bool>) -> Vec<&str> {
        counts
            .iter()
            .filter(|(_, overdue)| **overdue)
            .map(|(department, _)| department.as_str())
            .collect()
    }

    /// Last update 20 November: on the 30th (day 10) the alarm warns, and the veto
    /// (no update within 2 weeks) fails from 4 December (day 14), not before.
    #[test]
    fn the_update_veto_fails_at_two_weeks_and_day_ten_only_warns() {
        let stale = InspectionRules::default().stale_after_days;
        let state = |days: Option<i64>| (update_ok(days), update_warning(stale, days));
        assert_eq!(state(Some(9)), (true, false));
        assert_eq!(
            state(Some(10)),
            (true, true),
            "day 10 warns, it does not fail"
        );
        assert_eq!(state(Some(13)), (true, true));
        assert_eq!(
            state(Some(14)),
            (false, false),
            "two weeks without an update fail"
        );
        assert_eq!(state(None), (false, false), "never published");
    }

    /// Water passes the ticket to parks at 09:05, fifty-five minutes before its 10:00
    /// deadline, which passes (escalated under parks) inside the two office
    /// hours parks was given (to 11:05); parks passes it to roads at 11:00, still
    /// inside them, and roads acknowledges at 11:10. Parks was in time by the deadline
    /// it was given: the escalation is water's, which let the ticket's own deadline
    /// pass on its move.
    #[test]
    fn a_receiver_passing_the_ticket_on_inside_its_grace_is_not_charged_the_miss() {
        let ticket = moved("09:05", "parks", "11:00", "roads", "11:10", "parks");
        let counts = overdue_share_counts(
            &ticket,
            at("2026-11-30T11:30:00+08:00"),
            &WorkCalendar::default(),
        );
        assert_eq!(overdue(&counts), ["water"], "{counts:?}");
        assert_eq!(counts.len(), 3, "each judged: {counts:?}");
        // Parks holding it past the grace it was given (11:05) is parks' miss.
        let held = moved("09:05", "parks", "11:30", "roads", "11:40", "parks");
        let counts = overdue_share_counts(
            &held,
            at("2026-11-30T12:00:00+08:00"),
            &WorkCalendar::default(),
        );
        assert_eq!(overdue(&counts), ["parks"], "{counts:?}");
    }

    /// Water passes the ticket, due 17:30 on Wednesday 30 September, on to roads
    /// unacknowledged at 17:29, the eve of National Day (1–7 October off); roads
    /// acknowledges at 09:10 on Thursday 8 October, inside the grace the calendar
    /// gives it (to 10:59). Counted in weekdays, the grace ended on 1 October and
    /// roads was charged the escalation on the overdue share, in time in the scorecard.
    #[test]
    fn a_ticket_moved_on_the_eve_of_a_holiday_is_not_charged_to_the_receiver() {
        let ticket = rollups::TicketTimes {
            department: "roads".to_owned(),
            acknowledged_by: Some("roads".to_owned()),
            closed_by: None,
            acknowledge_missed_by: Some("roads".to_owned()),
            resolve_missed_by: None,
            opened_at: Some(at("2026-09-30T09:00:00+08:00")),
            acknowledged_at: Some(at("2026-10-08T09:10:00+08:00")),
            closed_at: None,
            acknowledge_due_at: Some(at("2026-09-30T17:30:00+08:00")),
            resolve_due_at: Some(at("2026-10-21T17:30:00+08:00")),
            acknowledge_missed_at: Some(at("2026-09-30T17:30:00+08:00")),
            resolve_missed_at: None,
            overdue_count: 1,
            moved_away_by: Some("water".to_owned()),
            moved_away_at: Some(at("2026-09-30T17:29:00+08:00")),
            moved_in_at: Some(at("2026-09-30T17:29:00+08:00")),
            moved_in_by: Some("water".to_owned()),
            moves_at: Vec::new(),
            moves_by: Vec::new(),
        };
        let calendar = work_calendar::from_settings(|var| {
            (var == work_calendar::HOLIDAYS_VAR).then_some("2026-10-01..2026-10-07")
        })
        .unwrap();
        let counts = overdue_share_counts(&ticket, at("2026-10-08T12:00:00+08:00"), &calendar);
        assert_eq!(
            overdue(&counts),
            ["water"],
            "roads acknowledged inside the grace the calendar gives it: {counts:?}"
        );
        assert_eq!(counts.get("roads"), Some(&false), "{counts:?}");
    }
}
