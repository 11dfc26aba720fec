//! Reading the daily rollups: a metric's series and the department scorecard.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use sqlx::PgPool;

use super::AppError;
use crate::domain::AccountId;
use crate::domain::rollup::{Metric, median_and_p90};
use crate::store::rollups::{self, DailyValue};

/// A metric's values by day and key, with its total before the range.
pub async fn daily_series(
    db: &PgPool,
    account: &AccountId,
    metric: Metric,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<(Vec<DailyValue>, i64), AppError> {
    let points = rollups::series(db, account, metric.as_str(), from, to).await?;
    let before = rollups::total_before(db, account, metric.as_str(), from).await?;
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
    /// judged (1 when there are none: nothing was late).
    pub fn acknowledged_share(&self) -> f64 {
        share(self.acknowledged_in_time, self.acknowledge_judged)
    }

    /// The share closed by the deadline, of the tickets whose resolution is judged.
    pub fn resolved_share(&self) -> f64 {
        share(self.resolved_in_time, self.resolve_judged)
    }
}

fn share(count: i64, of: i64) -> f64 {
    if of == 0 {
        1.0
    } else {
        count as f64 / of as f64
    }
}

/// Every department's score over `from..=to` (office days) as it stands at `now`, the
/// best acknowledgement compliance first (then the most tickets).
pub async fn department_scorecard(
    db: &PgPool,
    account: &AccountId,
    from: NaiveDate,
    to: NaiveDate,
    now: DateTime<Utc>,
    office: FixedOffset,
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
        let score = scores
            .entry(ticket.department.clone())
            .or_insert_with(|| DepartmentScore {
                department: ticket.department.clone(),
                ..DepartmentScore::default()
            });
        score.tickets_in_range += 1;
        let passed = |due: Option<DateTime<Utc>>| due.is_some_and(|due| due <= now);
        if ticket.acknowledged_at.is_some() || passed(ticket.acknowledge_due_at) {
            score.acknowledge_judged += 1;
        }
        if ticket.closed_at.is_some() || passed(ticket.resolve_due_at) {
            score.resolve_judged += 1;
        }
        let (acks, resolves) = times.entry(ticket.department.clone()).or_default();
        if let Some(acked) = ticket.acknowledged_at {
            acks.push((acked - opened).num_milliseconds() as f64 / 1000.0);
            if ticket.acknowledge_due_at.is_none_or(|due| acked <= due) {
                score.acknowledged_in_time += 1;
            }
        }
        if let Some(closed) = ticket.closed_at {
            resolves.push((closed - opened).num_milliseconds() as f64 / 1000.0);
            if ticket.resolve_due_at.is_none_or(|due| closed <= due) {
                score.resolved_in_time += 1;
            }
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
        b.acknowledged_share()
            .total_cmp(&a.acknowledged_share())
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
