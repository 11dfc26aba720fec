//! Reading the daily rollups: a metric's series and the department scorecard.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime, TimeDelta, Utc};
use sqlx::PgPool;

use super::AppError;
use crate::domain::AccountId;
use crate::domain::departments::DepartmentView;
use crate::domain::rollup::{Metric, median_and_p90};
use crate::store::rollups::{self, DailyValue};
use work_calendar::WorkCalendar;

/// A metric's values by day and key, with its total before the range.
pub async fn daily_series(
    db: &PgPool,
    account: &AccountId,
    metric: Metric,
    from: NaiveDate,
    to: NaiveDate,
    view: &DepartmentView,
) -> Result<(Vec<DailyValue>, i64), AppError> {
    let mut points = rollups::series(db, account, metric.as_str(), from, to).await?;
    // The ticket metrics are keyed by department: a view cut to one department reads
    // its own key's points and total only.
    let own = match view {
        DepartmentView::Own(own) if metric.keyed_by_department() => Some(own.as_str()),
        _ => None,
    };
    if let Some(own) = own {
        points.retain(|p| p.key == own);
    }
    let before = rollups::total_before(db, account, metric.as_str(), from, own).await?;
    Ok((points, before))
}

/// One department's tickets and response times over a range.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DepartmentScore {
    pub department: String,
    pub opened: i64,
    pub acknowledged: i64,
    pub answered: i64,
    pub closed: i64,
    pub overdue: i64,
    pub rated: i64,
    pub rating_sum: i64,
    /// Seconds: (median, p90) of opened → first acknowledgement and opened → closed.
    pub acknowledge: Option<(f64, f64)>,
    pub resolve: Option<(f64, f64)>,
    /// Tickets opened in the range, and how many were acknowledged / closed by their deadline.
    pub tickets_in_range: i64,
    pub acknowledged_in_time: i64,
    pub resolved_in_time: i64,
    /// Of those, the ones whose acknowledgement (resolution) is judged: done, or its
    /// deadline passed. A ticket still inside its deadline is neither on time nor late.
    pub acknowledge_judged: i64,
    pub resolve_judged: i64,
}

impl DepartmentScore {
    /// The mean rating, 0 when nothing was rated.
    pub fn mean_rating(&self) -> f64 {
        if self.rated == 0 {
            0.0
        } else {
            self.rating_sum as f64 / self.rated as f64
        }
    }

    /// The share acknowledged by the deadline, of the tickets whose acknowledgement is
    /// judged (1 when there are none: nothing was late). The wire's figure; a page
    /// shows [`Self::acknowledged_rate`], which tells "no data" from 100%.
    pub fn acknowledged_share(&self) -> f64 {
        share(self.acknowledged_in_time, self.acknowledge_judged)
    }

    /// The share acknowledged by the deadline, `None` while nothing is judged: a
    /// department with no ticket due yet has no rate, not a perfect one.
    pub fn acknowledged_rate(&self) -> Option<f64> {
        rate(self.acknowledged_in_time, self.acknowledge_judged)
    }

    /// The share closed by the deadline, of the tickets whose resolution is judged.
    pub fn resolved_share(&self) -> f64 {
        share(self.resolved_in_time, self.resolve_judged)
    }
}

fn share(count: i64, of: i64) -> f64 {
    rate(count, of).unwrap_or(1.0)
}

/// `count` of `of`, `None` when `of` is 0.
pub fn rate(count: i64, of: i64) -> Option<f64> {
    (of > 0).then(|| count as f64 / of as f64)
}

fn score_of<'a>(
    scores: &'a mut BTreeMap<String, DepartmentScore>,
    department: &str,
) -> &'a mut DepartmentScore {
    scores
        .entry(department.to_owned())
        .or_insert_with(|| DepartmentScore {
            department: department.to_owned(),
            ..DepartmentScore::default()
        })
}

/// Whom a ticket's step (acknowledgement or resolution) is judged against, and
/// whether it was in time; `None` while it is inside its deadline. A step done in
/// time counts for the department that did it; one done late, or not done by its
/// deadline, for the department that owned the ticket when the deadline passed (a
/// ticket moved on afterwards is not the new owner's lateness); `owner`, today's
/// owner, stands in for a department not recorded.
fn judged<'a>(
    done: Option<DateTime<Utc>>,
    due: Option<DateTime<Utc>>,
    done_by: Option<&'a str>,
    missed_by: Option<&'a str>,
    owner: &'a str,
    now: DateTime<Utc>,
) -> Option<(&'a str, bool)> {
    match done {
        Some(at) if due.is_none_or(|due| at <= due) => Some((done_by.unwrap_or(owner), true)),
        Some(_) => Some((missed_by.or(done_by).unwrap_or(owner), false)),
        None if due.is_some_and(|due| due <= now) => Some((missed_by.unwrap_or(owner), false)),
        None => None,
    }
}

/// How long the department that takes over a moved ticket (退单改派) has to acknowledge
/// it before the deadline counts against it, in office hours ([`move_grace_ends`]): a
/// ticket passed on minutes before its deadline is the mover's lateness, not the
/// receiver's.
pub const MOVE_GRACE: TimeDelta = TimeDelta::hours(2);

/// The working time the grace after a move is counted in.
///
/// The service's [`WorkCalendar`] (`StatsSettings::calendar`, interaction-svc's own
/// settings): holidays and make-up working days count as they do for the deadlines.
/// A bare office offset is 09:00–17:30 Monday to Friday in it, no holiday known: a
/// National Day weekday counts as a working day, so a ticket passed on the evening
/// before had its grace end on the holiday and the receiver answering on the first
/// working day after it was judged late. It is kept for callers not given the
/// calendar yet.
pub trait WorkingTime: Copy {
    /// The instant `span` of office hours after `start`.
    fn after(self, start: DateTime<Utc>, span: TimeDelta) -> DateTime<Utc>;
}

impl WorkingTime for &WorkCalendar {
    fn after(self, start: DateTime<Utc>, span: TimeDelta) -> DateTime<Utc> {
        self.working_time_after(start, span)
    }
}

impl WorkingTime for FixedOffset {
    fn after(self, start: DateTime<Utc>, span: TimeDelta) -> DateTime<Utc> {
        let hours = (
            NaiveTime::from_hms_opt(9, 0, 0),
            NaiveTime::from_hms_opt(17, 30, 0),
        );
        let calendar = match hours {
            (Some(opens), Some(closes)) => {
                WorkCalendar::new(self, opens, closes, BTreeSet::new(), BTreeSet::new()).ok()
            }
            _ => None,
        };
        calendar.unwrap_or_default().working_time_after(start, span)
    }
}

/// When the grace after a move at `moved_in` ends: [`MOVE_GRACE`] of working time
/// later ([`WorkingTime`]), as interaction-svc counts deadlines. Counted on the clock,
/// a ticket passed on at 17:29 on a Friday had its grace end at 19:29, and the
/// receiver acknowledging at 09:10 on Monday was late with the mover.
pub fn move_grace_ends(moved_in: DateTime<Utc>, time: impl WorkingTime) -> DateTime<Utc> {
    time.after(moved_in, MOVE_GRACE)
}

/// The move that passed `ticket` on before anyone acknowledged it and before its
/// acknowledgement deadline, as of `now`: the department that moved it away, and when
/// the ticket reached its owner now. A move after the deadline is judged by
/// [`judged`] already (the missed deadline is the mover's).
pub fn unacknowledged_move(
    ticket: &rollups::TicketTimes,
    now: DateTime<Utc>,
) -> Option<(&str, DateTime<Utc>)> {
    let mover = ticket.moved_away_by.as_deref()?;
    let moved = ticket.moved_away_at.filter(|at| *at <= now)?;
    let unacknowledged = ticket
        .acknowledged_at
        .is_none_or(|acknowledged| moved < acknowledged || acknowledged > now);
    let before_deadline = ticket.acknowledge_due_at.is_none_or(|due| moved < due);
    (unacknowledged && before_deadline).then(|| (mover, ticket.moved_in_at.unwrap_or(moved)))
}

/// A department a ticket moved on unacknowledged passed through: its own
/// acknowledgement deadline and when it passed the ticket on (`None`: it holds it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holder<'a> {
    pub department: &'a str,
    pub due: DateTime<Utc>,
    pub left: Option<DateTime<Utc>>,
}

/// The departments `ticket` passed through, as of `now`, when it was moved on
/// unacknowledged before its acknowledgement deadline ([`unacknowledged_move`];
/// empty otherwise), each with its own acknowledgement deadline: the department it
/// was opened to, the ticket's; one that took it over, the later of its mover's
/// deadline and [`MOVE_GRACE`] after the move (the grace the move gave it); one it
/// came back to, its own first one (bouncing a ticket gains it nothing). It ends
/// with the department that held the ticket when it was acknowledged: the moves after
/// that passed on an answered ticket and are not judged. Every
/// department it passed through is in it (migration 0027 keeps each move); of a
/// ticket moved three times or more before 0027, only the first and the last mover
/// are known (0014, 0017), and the last is given the grace of the first move.
pub fn move_chain(
    ticket: &rollups::TicketTimes,
    now: DateTime<Utc>,
    time: impl WorkingTime,
) -> Vec<Holder<'_>> {
    let Some((first, _)) = unacknowledged_move(ticket, now) else {
        return Vec::new();
    };
    let (Some(due), Some(first_move)) = (ticket.acknowledge_due_at, ticket.moved_away_at) else {
        return Vec::new();
    };
    let mut chain = vec![Holder {
        department: first,
        due,
        left: Some(first_move),
    }];
    let owner = ticket.department.as_str();
    // Every move after the first, in time order: those kept one by one (migration
    // 0027) between the first and the last, then the last (0014, 0017), all a row
    // folded before 0027 knows of.
    let last = ticket.moved_in_at.filter(|at| *at > first_move);
    let mut later: Vec<(DateTime<Utc>, Option<&str>)> = ticket
        .moves()
        .filter(|(at, _)| *at > first_move && last.is_none_or(|last| *at < last))
        .map(|(at, by)| (at, Some(by)))
        .collect();
    later.extend(last.map(|at| (at, ticket.moved_in_by.as_deref())));
    // The chain ends at the acknowledgement: a department that passed the ticket on
    // after it was acknowledged passed on an answered ticket, no missed
    // acknowledgement, and the one holding it when it was acknowledged is the last.
    let acknowledged = ticket.acknowledged_at.filter(|at| *at <= now);
    let mut taken = first_move;
    for (at, mover) in later {
        if at > now || acknowledged.is_some_and(|acknowledged| at >= acknowledged) {
            // This move is still to come at `now`, or came after the acknowledgement:
            // its mover holds the ticket (held it when it was acknowledged).
            take_over(&mut chain, mover.unwrap_or(owner), taken, None, time);
            return chain;
        }
        if let Some(mover) = mover {
            take_over(&mut chain, mover, taken, Some(at), time);
        }
        taken = at;
    }
    take_over(&mut chain, owner, taken, None, time);
    chain
}

/// Adds to `chain` the department that took the ticket over by a move at `moved`.
fn take_over<'a>(
    chain: &mut Vec<Holder<'a>>,
    department: &'a str,
    moved: DateTime<Utc>,
    left: Option<DateTime<Utc>>,
    time: impl WorkingTime,
) {
    let given = chain
        .last()
        .map_or(moved, |mover| mover.due)
        .max(move_grace_ends(moved, time));
    // A department the ticket came back to keeps its own deadline: bouncing a ticket
    // away and back (A→B→A) must not buy it the grace of the return.
    let own = chain
        .iter()
        .find(|holder| holder.department == department)
        .map(|holder| holder.due);
    chain.push(Holder {
        department,
        due: own.unwrap_or(given),
        left,
    });
}

/// The department charged, on the overdue share, with `ticket`'s missed
/// acknowledgement deadline, as of `now` (`None` while none was missed). Of a ticket
/// moved on unacknowledged before its deadline ([`move_chain`]): the first
/// department that held it past its own deadline (passed it on after it, or has not
/// acknowledged by it); when none did, the department whose own deadline had come
/// when the deadline was escalated, which let it pass on its move (of water→parks
/// at 09:05, due 10:00, parks→roads at 11:00 inside the grace to 11:05 parks was
/// given, water). Otherwise the department that held the ticket when it passed.
pub fn acknowledgement_charged(
    ticket: &rollups::TicketTimes,
    now: DateTime<Utc>,
    time: impl WorkingTime,
) -> Option<&str> {
    let missed = ticket.acknowledge_missed_at.filter(|at| *at <= now)?;
    let chain = move_chain(ticket, now, time);
    let acknowledged = ticket.acknowledged_at.filter(|at| *at <= now);
    let overran = chain.iter().find(|holder| match holder.left {
        Some(left) => left > holder.due,
        None => acknowledged.map_or(holder.due <= now, |at| at > holder.due),
    });
    overran
        .or_else(|| chain.iter().rev().find(|holder| holder.due <= missed))
        .map(|holder| holder.department)
        .or(ticket.acknowledge_missed_by.as_deref())
        .or(Some(ticket.department.as_str()))
}

/// Whom a ticket's acknowledgement is judged against, and whether in time (see
/// [`judged`]). A department that moved the ticket on unacknowledged is judged for
/// it, late: passing a ticket on is no response to the citizen (国办函〔2025〕66号
/// puts a return through 派单异议审核, which this platform does not hold), so moving
/// every ticket on cannot make a department's rate. The department holding it is
/// judged against its own deadline in the [`move_chain`].
fn acknowledgement_judged<'a>(
    ticket: &'a rollups::TicketTimes,
    owner: &'a str,
    now: DateTime<Utc>,
    time: impl WorkingTime,
) -> Vec<(&'a str, bool)> {
    let chain = move_chain(ticket, now, time);
    if chain.is_empty() {
        return judged(
            ticket.acknowledged_at,
            ticket.acknowledge_due_at,
            ticket.acknowledged_by.as_deref(),
            ticket.acknowledge_missed_by.as_deref(),
            owner,
            now,
        )
        .into_iter()
        .collect();
    }
    // The acknowledgement is judged against the deadline of the department that held
    // the ticket when it was made, not the last holder's: parks acknowledging late and
    // then passing the ticket on must not borrow the grace the move gave roads.
    let acknowledged_due = ticket.acknowledged_at.and_then(|at| {
        chain
            .iter()
            .find(|holder| holder.left.is_none_or(|left| at < left))
            .map(|holder| holder.due)
    });
    // A department once per step: of A→B→A, A answering, A's judgement is its answer
    // (the last), not also its passing the ticket on.
    let mut judgements: Vec<Judgement<'a>> = Vec::new();
    for holder in chain {
        let judgement = match holder.left {
            Some(_) => Some((holder.department, false)),
            // The sweeper's escalation at the first deadline may name the holder; inside
            // its own deadline it is not its miss, so who missed is left to `judged`.
            None => judged(
                ticket.acknowledged_at,
                Some(acknowledged_due.unwrap_or(holder.due)),
                ticket.acknowledged_by.as_deref(),
                None,
                holder.department,
                now,
            ),
        };
        if let Some((department, in_time)) = judgement {
            judgements.retain(|(d, _)| *d != department);
            judgements.push((department, in_time));
        }
    }
    judgements
}

/// Whom a step is judged against, and whether it was in time.
pub type Judgement<'a> = (&'a str, bool);

/// `ticket` as it stood at `now`: a step done after it is not done yet.
pub fn as_at(mut ticket: rollups::TicketTimes, now: DateTime<Utc>) -> rollups::TicketTimes {
    ticket.acknowledged_at = ticket.acknowledged_at.filter(|at| *at <= now);
    ticket.closed_at = ticket.closed_at.filter(|at| *at <= now);
    ticket
}

/// Every judgement of `ticket`'s steps at `now` (the ticket taken [`as_at`] `now`), as
/// the scorecard makes them: whom its acknowledgement is judged against, and whether
/// in time (one department, or each that passed it on unacknowledged and the one that
/// took it over), then whom its resolution is. A step inside its deadline is none.
pub fn step_judgements(
    ticket: &rollups::TicketTimes,
    now: DateTime<Utc>,
    time: impl WorkingTime,
) -> (Vec<Judgement<'_>>, Option<Judgement<'_>>) {
    let owner = ticket.department.as_str();
    let acknowledgement = acknowledgement_judged(ticket, owner, now, time);
    let resolution = judged(
        ticket.closed_at,
        ticket.resolve_due_at,
        ticket.closed_by.as_deref(),
        ticket.resolve_missed_by.as_deref(),
        owner,
        now,
    );
    (acknowledgement, resolution)
}

/// Every department's score over `from..=to` (office days) as it stands at `now`, the
/// best acknowledgement compliance first (then the most tickets), departments with
/// nothing judged last: they have no rate to rank by. A step done after
/// `now` is not done yet, so a past `now` gives the scorecard as it stood then.
pub async fn department_scorecard(
    db: &PgPool,
    account: &AccountId,
    from: NaiveDate,
    to: NaiveDate,
    now: DateTime<Utc>,
    office: FixedOffset,
) -> Result<Vec<DepartmentScore>, AppError> {
    department_scorecard_in(db, account, from, to, now, office, office).await
}

/// [`department_scorecard`] with the grace after a move counted in `time` (the
/// service's [`WorkCalendar`]: holidays and make-up working days as interaction-svc
/// counts them).
pub async fn department_scorecard_in(
    db: &PgPool,
    account: &AccountId,
    from: NaiveDate,
    to: NaiveDate,
    now: DateTime<Utc>,
    office: FixedOffset,
    time: impl WorkingTime,
) -> Result<Vec<DepartmentScore>, AppError> {
    let mut scores: BTreeMap<String, DepartmentScore> = BTreeMap::new();
    for (department, metric, value) in rollups::department_sums(db, account, from, to).await? {
        let score = scores
            .entry(department.clone())
            .or_insert_with(|| DepartmentScore {
                department,
                ..DepartmentScore::default()
            });
        match Metric::parse(&metric) {
            Some(Metric::TicketsOpened) => score.opened = value,
            Some(Metric::TicketsAcknowledged) => score.acknowledged = value,
            Some(Metric::TicketsAnswered) => score.answered = value,
            Some(Metric::TicketsClosed) => score.closed = value,
            Some(Metric::TicketsOverdue) => score.overdue = value,
            Some(Metric::TicketsRated) => score.rated = value,
            Some(Metric::RatingSum) => score.rating_sum = value,
            _ => {}
        }
    }
    let start = office_midnight(from, office);
    let end = office_midnight(to + chrono::Days::new(1), office);
    let mut times: BTreeMap<String, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
    for ticket in rollups::tickets_opened(db, account, start, end).await? {
        let Some(opened) = ticket.opened_at else {
            continue;
        };
        let ticket = as_at(ticket, now);
        let owner = ticket.department.as_str();
        score_of(&mut scores, owner).tickets_in_range += 1;
        let (acknowledgement, resolution) = step_judgements(&ticket, now, time);
        for (department, in_time) in acknowledgement {
            let score = score_of(&mut scores, department);
            score.acknowledge_judged += 1;
            score.acknowledged_in_time += i64::from(in_time);
        }
        if let Some((department, in_time)) = resolution {
            let score = score_of(&mut scores, department);
            score.resolve_judged += 1;
            score.resolved_in_time += i64::from(in_time);
        }
        let seconds = |at: DateTime<Utc>| (at - opened).num_milliseconds() as f64 / 1000.0;
        if let Some(acked) = ticket.acknowledged_at {
            let by = ticket.acknowledged_by.as_deref().unwrap_or(owner);
            times
                .entry(by.to_owned())
                .or_default()
                .0
                .push(seconds(acked));
        }
        if let Some(closed) = ticket.closed_at {
            let by = ticket.closed_by.as_deref().unwrap_or(owner);
            times
                .entry(by.to_owned())
                .or_default()
                .1
                .push(seconds(closed));
        }
    }
    for (department, (acks, resolves)) in times {
        if let Some(score) = scores.get_mut(&department) {
            score.acknowledge = median_and_p90(acks);
            score.resolve = median_and_p90(resolves);
        }
    }
    let mut scores: Vec<DepartmentScore> = scores.into_values().collect();
    scores.sort_by(|a, b| {
        let (ra, rb) = (a.acknowledged_rate(), b.acknowledged_rate());
        ra.is_none()
            .cmp(&rb.is_none())
            .then(rb.unwrap_or(0.0).total_cmp(&ra.unwrap_or(0.0)))
            .then(b.tickets_in_range.cmp(&a.tickets_in_range))
            .then(a.department.cmp(&b.department))
    });
    Ok(scores)
}

/// The instant an office day starts.
pub fn office_midnight(day: NaiveDate, office: FixedOffset) -> chrono::DateTime<chrono::Utc> {
    day.and_time(chrono::NaiveTime::MIN)
        .and_local_timezone(office)
        .single()
        .map(|at| at.to_utc())
        // A fixed offset maps every local time to exactly one instant.
        .unwrap_or_else(|| day.and_time(chrono::NaiveTime::MIN).and_utc())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn office() -> FixedOffset {
        FixedOffset::east_opt(8 * 3600).unwrap()
    }

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339).unwrap().to_utc()
    }

    /// Due Friday 17:30; water passes it on to roads unacknowledged at 17:29; roads
    /// acknowledges on Monday at 09:10, the first ten minutes of its next office day.
    fn moved_on_friday_evening() -> rollups::TicketTimes {
        rollups::TicketTimes {
            department: "roads".to_owned(),
            acknowledged_by: Some("roads".to_owned()),
            closed_by: None,
            acknowledge_missed_by: Some("roads".to_owned()),
            resolve_missed_by: None,
            opened_at: Some(at("2026-12-04T09:00:00+08:00")),
            acknowledged_at: Some(at("2026-12-07T09:10:00+08:00")),
            closed_at: None,
            acknowledge_due_at: Some(at("2026-12-04T17:30:00+08:00")),
            resolve_due_at: Some(at("2026-12-18T17:30:00+08:00")),
            acknowledge_missed_at: Some(at("2026-12-04T17:30:00+08:00")),
            resolve_missed_at: None,
            overdue_count: 1,
            moved_away_by: Some("water".to_owned()),
            moved_away_at: Some(at("2026-12-04T17:29:00+08:00")),
            moved_in_at: Some(at("2026-12-04T17:29:00+08:00")),
            moved_in_by: Some("water".to_owned()),
            moves_at: Vec::new(),
            moves_by: Vec::new(),
        }
    }

    #[test]
    fn the_grace_after_a_move_is_counted_in_office_hours() {
        let ticket = moved_on_friday_evening();
        let now = at("2026-12-07T12:00:00+08:00");
        let (acknowledgement, _) = step_judgements(&ticket, now, office());
        assert_eq!(
            acknowledgement,
            [("water", false), ("roads", true)],
            "roads had two office hours after the move, Friday's last minute and \
             Monday's first 119: it acknowledged in time"
        );
        // Past those two office hours it is late.
        let mut late = ticket.clone();
        late.acknowledged_at = Some(at("2026-12-07T11:00:00+08:00"));
        let (acknowledgement, _) = step_judgements(&late, now, office());
        assert_eq!(acknowledgement, [("water", false), ("roads", false)]);
    }

    /// The same move on the eve of National Day (Wednesday 30 September, Oct 1–7
    /// off): roads acknowledging at 09:10 on Thursday 8 October, ten minutes into the
    /// first working day after the move, is in time by interaction-svc's calendar.
    #[test]
    fn the_grace_after_a_move_skips_the_holidays_interaction_svc_is_given() {
        let shift = |t: Option<DateTime<Utc>>| t.map(|t| t - TimeDelta::days(65));
        let base = moved_on_friday_evening();
        let ticket = rollups::TicketTimes {
            opened_at: shift(base.opened_at),
            acknowledge_due_at: shift(base.acknowledge_due_at),
            acknowledge_missed_at: shift(base.acknowledge_missed_at),
            moved_away_at: shift(base.moved_away_at),
            moved_in_at: shift(base.moved_in_at),
            acknowledged_at: Some(at("2026-10-08T09:10:00+08:00")),
            ..base
        };
        assert_eq!(
            ticket.moved_away_at,
            Some(at("2026-09-30T17:29:00+08:00")),
            "a Wednesday"
        );
        let calendar = work_calendar::from_settings(|var| {
            (var == work_calendar::HOLIDAYS_VAR).then_some("2026-10-01..2026-10-07")
        })
        .unwrap();
        let now = at("2026-10-08T12:00:00+08:00");
        let (acknowledgement, _) = step_judgements(&ticket, now, &calendar);
        assert_eq!(acknowledgement, [("water", false), ("roads", true)]);
        let mut late = ticket.clone();
        late.acknowledged_at = Some(at("2026-10-08T11:00:00+08:00"));
        let (acknowledgement, _) = step_judgements(&late, now, &calendar);
        assert_eq!(acknowledgement, [("water", false), ("roads", false)]);
    }

    /// Opened to water at 09:00 on Monday 30 November, acknowledgement due 10:00,
    /// escalated at 10:00 under `missed_by`; moved away by water at `first_move`, and
    /// last moved by `last_mover` at `last_move` to `owner`, which acknowledged at
    /// `acknowledged` (office times, "HH:MM").
    pub(crate) fn moved(
        first_move: &str,
        last_mover: &str,
        last_move: &str,
        owner: &str,
        acknowledged: &str,
        missed_by: &str,
    ) -> rollups::TicketTimes {
        let time = |hm: &str| Some(at(&format!("2026-11-30T{hm}:00+08:00")));
        rollups::TicketTimes {
            department: owner.to_owned(),
            acknowledged_by: Some(owner.to_owned()),
            closed_by: None,
            acknowledge_missed_by: Some(missed_by.to_owned()),
            resolve_missed_by: None,
            opened_at: time("09:00"),
            acknowledged_at: time(acknowledged),
            closed_at: None,
            acknowledge_due_at: time("10:00"),
            resolve_due_at: Some(at("2026-12-14T17:30:00+08:00")),
            acknowledge_missed_at: time("10:00"),
            resolve_missed_at: None,
            overdue_count: 1,
            moved_away_by: Some("water".to_owned()),
            moved_away_at: time(first_move),
            moved_in_at: time(last_move),
            moved_in_by: Some(last_mover.to_owned()),
            moves_at: Vec::new(),
            moves_by: Vec::new(),
        }
    }

    fn sorted(mut judgements: Vec<Judgement<'_>>) -> Vec<Judgement<'_>> {
        judgements.sort();
        judgements
    }

    /// Water passes the ticket back and forth to keep its rate: to parks a minute
    /// before its 10:00 deadline, parks sends it back at 10:30, and water acknowledges
    /// at 12:00, inside two office hours of the return. A ticket that came back is
    /// judged against its department's own deadline: water is late, as it would have
    /// been had it kept the ticket.
    #[test]
    fn a_ticket_moved_away_and_back_is_judged_by_its_departments_own_deadline() {
        let ticket = moved("09:59", "parks", "10:30", "water", "12:00", "parks");
        let (acknowledgement, _) =
            step_judgements(&ticket, at("2026-11-30T13:00:00+08:00"), office());
        assert_eq!(
            sorted(acknowledgement),
            [("parks", false), ("water", false)]
        );
        // Answered before its own deadline, it is on time.
        let early = moved("09:05", "parks", "09:20", "water", "09:30", "water");
        let early = rollups::TicketTimes {
            acknowledge_missed_at: None,
            acknowledge_missed_by: None,
            ..early
        };
        let (acknowledgement, _) =
            step_judgements(&early, at("2026-11-30T13:00:00+08:00"), office());
        assert_eq!(sorted(acknowledgement), [("parks", false), ("water", true)]);
    }

    /// Water passes the ticket to parks at 09:05 (parks due 11:05, two office hours
    /// on); parks acknowledges at 13:00, late, then passes it to roads at 14:00. Its
    /// acknowledgement is judged against its own deadline, not against the 16:00 the
    /// move gave roads.
    #[test]
    fn an_acknowledgement_is_judged_against_the_deadline_of_the_department_that_held_the_ticket() {
        let ticket = rollups::TicketTimes {
            acknowledged_by: Some("parks".to_owned()),
            ..moved("09:05", "parks", "14:00", "roads", "13:00", "parks")
        };
        let (acknowledgement, _) =
            step_judgements(&ticket, at("2026-11-30T17:00:00+08:00"), office());
        assert_eq!(
            sorted(acknowledgement),
            [("parks", false), ("water", false)]
        );
    }

    /// Water passes the ticket to parks at 09:05 unacknowledged (due 10:00); parks
    /// acknowledges at 09:30, in time, then passes it to roads at 14:00, roads to
    /// streets at 15:00 and streets to lights at 16:00. The ticket was acknowledged
    /// hours before roads and streets held it: passing on an acknowledged ticket is
    /// no missed acknowledgement, so neither is judged, and lights, holding it now,
    /// is not judged either.
    #[test]
    fn a_department_passing_on_an_acknowledged_ticket_is_not_judged_for_its_acknowledgement() {
        let time = |hm: &str| at(&format!("2026-11-30T{hm}:00+08:00"));
        let ticket = rollups::TicketTimes {
            department: "lights".to_owned(),
            acknowledged_by: Some("parks".to_owned()),
            acknowledge_missed_by: None,
            acknowledge_missed_at: None,
            overdue_count: 0,
            moves_at: vec![time("09:05"), time("14:00"), time("15:00"), time("16:00")],
            moves_by: vec![
                "water".to_owned(),
                "parks".to_owned(),
                "roads".to_owned(),
                "streets".to_owned(),
            ],
            ..moved("09:05", "streets", "16:00", "lights", "09:30", "water")
        };
        let now = time("17:00");
        let (acknowledgement, _) = step_judgements(&ticket, now, office());
        assert_eq!(
            sorted(acknowledgement),
            [("parks", true), ("water", false)],
            "only the moves before parks' acknowledgement at 09:30 are judged"
        );
        assert_eq!(acknowledgement_charged(&ticket, now, office()), None);
        // Between the acknowledgement and the move to roads, parks held it.
        let chain = move_chain(&ticket, now, office());
        let holders: Vec<(&str, Option<DateTime<Utc>>)> = chain
            .iter()
            .map(|holder| (holder.department, holder.left))
            .collect();
        assert_eq!(holders, [("water", Some(time("09:05"))), ("parks", None)]);
    }

    /// Water passes the ticket to parks at 09:05 (parks due 11:05, two office hours
    /// on), parks holds it past that and passes it to roads at 12:00, roads to streets
    /// at 12:30, and streets acknowledges at 13:00. Every department it passed
    /// through is judged on its own holding: parks, between the first and the last
    /// move, held it past its own deadline and is charged the miss, not roads (given
    /// the first move's grace when parks was not kept).
    #[test]
    fn a_department_between_the_first_and_the_last_move_is_judged_on_its_own_holding() {
        let time = |hm: &str| at(&format!("2026-11-30T{hm}:00+08:00"));
        let ticket = rollups::TicketTimes {
            moves_at: vec![time("09:05"), time("12:00"), time("12:30")],
            moves_by: vec!["water".to_owned(), "parks".to_owned(), "roads".to_owned()],
            ..moved("09:05", "roads", "12:30", "streets", "13:00", "parks")
        };
        let now = time("14:00");
        assert_eq!(
            acknowledgement_charged(&ticket, now, office()),
            Some("parks"),
            "parks held it from 09:05 to 12:00, past its 11:05"
        );
        let (acknowledgement, _) = step_judgements(&ticket, now, office());
        assert_eq!(
            sorted(acknowledgement),
            [
                ("parks", false),
                ("roads", false),
                ("streets", true),
                ("water", false)
            ]
        );
        // Roads had the later of parks' deadline and two office hours from 12:00: it
        // passed the ticket on inside them, so it is not the one charged.
        let chain = move_chain(&ticket, now, office());
        let roads = chain.iter().find(|h| h.department == "roads").unwrap();
        assert_eq!(roads.due, time("14:00"));
        // Before the move to roads, parks held the ticket.
        let earlier = as_at(ticket.clone(), time("11:30"));
        let (acknowledgement, _) = step_judgements(&earlier, time("11:30"), office());
        assert_eq!(
            sorted(acknowledgement),
            [("parks", false), ("water", false)]
        );
    }
}
