//! Wire messages ⇄ domain types and store rows, at the service edge.

use chrono::{DateTime, NaiveDate, Utc};
use proto::stats::v1 as pb;

use super::GrpcError;
use crate::app::inspection::Readiness;
use crate::app::ranking::Ranked;
use crate::app::rollups::DepartmentScore;
use crate::domain::inspection::Alarm;
use crate::domain::rollup::{ASKABLE_YEARS, parse_day, parse_month};
use crate::domain::{AccountId, InboundError};
use crate::store::account_inbound::AccountInbound;
use crate::store::alarms::AlarmRow;
use crate::store::rollups::DailyValue;

/// The longest range a series or table may cover, so one request cannot scan years.
pub const MAX_RANGE_DAYS: i64 = 400;

/// An account named in a request.
pub fn account_id(raw: &str) -> Result<AccountId, GrpcError> {
    Ok(AccountId::parse(raw).map_err(InboundError::from)?)
}

/// A day written YYYY-MM-DD in `field`.
pub fn day(field: &'static str, raw: &str) -> Result<NaiveDate, GrpcError> {
    if raw.is_empty() {
        return Err(GrpcError::field(field, "is required (YYYY-MM-DD)"));
    }
    parse_day(raw).ok_or_else(|| {
        GrpcError::field(
            field,
            format!(
                "{raw:?} is not a date (YYYY-MM-DD, years {}-{})",
                ASKABLE_YEARS.start(),
                ASKABLE_YEARS.end()
            ),
        )
    })
}

/// A range `from..=to` of office days, at most [`MAX_RANGE_DAYS`] long.
pub fn range(from: &str, to: &str) -> Result<(NaiveDate, NaiveDate), GrpcError> {
    let (from, to) = (day("from", from)?, day("to", to)?);
    if to < from {
        return Err(GrpcError::field("to", "is before from"));
    }
    if (to - from).num_days() >= MAX_RANGE_DAYS {
        return Err(GrpcError::field(
            "to",
            format!("the range is longer than {MAX_RANGE_DAYS} days"),
        ));
    }
    Ok((from, to))
}

/// A month written YYYY-MM, as its first day.
pub fn month(raw: &str) -> Result<NaiveDate, GrpcError> {
    parse_month(raw).ok_or_else(|| {
        GrpcError::field(
            "month",
            format!(
                "{raw:?} is not a month (YYYY-MM, years {}-{})",
                ASKABLE_YEARS.start(),
                ASKABLE_YEARS.end()
            ),
        )
    })
}

/// A series as served.
pub fn series(
    account: &AccountId,
    metric: &str,
    points: Vec<DailyValue>,
    total_before: i64,
) -> pb::DailySeries {
    pb::DailySeries {
        account: account.as_str().to_owned(),
        metric: metric.to_owned(),
        points: points
            .into_iter()
            .map(|p| pb::DailyPoint {
                day: p.day.to_string(),
                key: p.key,
                value: p.value,
            })
            .collect(),
        total_before,
    }
}

/// A department's score as served.
pub fn score(s: &DepartmentScore) -> pb::DepartmentScore {
    let (ack_median, ack_p90) = s.acknowledge.unwrap_or_default();
    let (resolve_median, resolve_p90) = s.resolve.unwrap_or_default();
    pb::DepartmentScore {
        department: s.department.clone(),
        opened: s.opened,
        acknowledged: s.acknowledged,
        answered: s.answered,
        closed: s.closed,
        overdue: s.overdue,
        rated: s.rated,
        mean_rating: s.mean_rating(),
        acknowledge_median_seconds: ack_median,
        acknowledge_p90_seconds: ack_p90,
        resolve_median_seconds: resolve_median,
        resolve_p90_seconds: resolve_p90,
        acknowledged_in_time: s.acknowledged_share(),
        resolved_in_time: s.resolved_share(),
        tickets_in_range: s.tickets_in_range,
        acknowledge_judged: s.acknowledge_judged,
        resolve_judged: s.resolve_judged,
    }
}

/// A ranked account as served.
pub fn ranked(r: &Ranked) -> pb::RankedAccount {
    pb::RankedAccount {
        rank: r.rank,
        account: r.account.clone(),
        wci: r.wci,
        articles: r.articles,
        reads: r.reads,
        published_nothing: r.published_nothing,
        figures_incomplete: r.figures_incomplete,
    }
}

/// A stored alarm as served.
pub fn alarm_row(row: AlarmRow) -> pb::Alarm {
    pb::Alarm {
        account: row.account,
        rule: row.rule,
        subject: row.subject,
        day: row.day.to_string(),
        detail: row.detail,
        raised_at: Some(timestamp(row.raised_at)),
    }
}

/// A readiness report as served.
pub fn readiness(account: &AccountId, day: NaiveDate, r: Readiness) -> pb::ReadinessReport {
    let alarm = |a: Alarm| pb::Alarm {
        account: account.as_str().to_owned(),
        rule: a.rule.as_str().to_owned(),
        subject: a.subject,
        day: day.to_string(),
        detail: a.detail,
        raised_at: None,
    };
    pb::ReadinessReport {
        account: account.as_str().to_owned(),
        date: day.to_string(),
        last_published_on: r
            .last_published_on
            .map(|d| d.to_string())
            .unwrap_or_default(),
        days_since_update: r.days_since_update.unwrap_or(-1),
        update_ok: r.update_ok,
        recent_tickets: r.recent_tickets,
        recent_answered: r.recent_answered,
        interaction_ok: r.interaction_ok,
        recent_auto_replies: r.recent_auto_replies,
        reply_path_messages: r.reply_path.messages,
        reply_path_answered: r.reply_path.answered,
        acknowledged_in_time: r.acknowledged_in_time,
        acknowledge_judged: r.acknowledge_judged,
        acknowledged_on_time: r.acknowledged_on_time,
        alarms: r.alarms.into_iter().map(alarm).collect(),
    }
}

/// The account a `GetAccountOverview` request names.
pub fn account(request: &pb::GetAccountOverviewRequest) -> Result<AccountId, InboundError> {
    Ok(AccountId::parse(request.account.as_str())?)
}

/// An account's counters as served.
pub fn overview(account: &AccountId, stored: AccountInbound) -> pb::AccountOverview {
    pb::AccountOverview {
        account: account.as_str().to_owned(),
        messages: stored.counts.messages,
        events: stored.counts.events,
        subscribes: stored.counts.subscribes,
        unsubscribes: stored.counts.unsubscribes,
        last_inbound_at: stored.last_inbound_at.map(timestamp),
    }
}

/// A point in time on the wire.
pub fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        // Always below 2e9 (a leap second is at most 1_999_999_999).
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Counts;

    #[test]
    fn ranges_and_months_name_the_field_they_refuse() {
        assert!(range("2026-11-01", "2026-11-30").is_ok());
        let message = |e: GrpcError| e.to_string();
        assert!(message(range("2026-11-31", "2026-12-01").unwrap_err()).starts_with("from:"));
        assert!(message(range("2026-12-01", "2026-11-01").unwrap_err()).starts_with("to:"));
        assert!(message(range("2024-01-01", "2026-11-01").unwrap_err()).starts_with("to:"));
        assert!(message(month("2026-13").unwrap_err()).starts_with("month:"));
        assert_eq!(month("2026-11").unwrap().to_string(), "2026-11-01");
    }

    #[test]
    fn a_readiness_report_says_how_many_tickets_its_share_judged() {
        let report = |judged: i64, on_time: i64| Readiness {
            last_published_on: None,
            days_since_update: None,
            update_ok: false,
            recent_tickets: 0,
            recent_answered: 0,
            recent_auto_replies: 0,
            reply_path: crate::domain::inspection::ReplyPath::default(),
            interaction_ok: true,
            acknowledged_in_time: if judged == 0 {
                1.0
            } else {
                on_time as f64 / judged as f64
            },
            acknowledge_judged: judged,
            acknowledged_on_time: on_time,
            alarms: Vec::new(),
        };
        let account = AccountId::parse("chenzhou").unwrap();
        let day = NaiveDate::from_ymd_opt(2026, 12, 6).unwrap();
        // Nothing judged: the share stays 1 for older clients, the base says 0.
        let none = readiness(&account, day, report(0, 0));
        assert_eq!(
            (none.acknowledged_in_time, none.acknowledge_judged),
            (1.0, 0)
        );
        let all = readiness(&account, day, report(4, 4));
        assert_eq!(
            (
                all.acknowledged_in_time,
                all.acknowledge_judged,
                all.acknowledged_on_time
            ),
            (1.0, 4, 4)
        );
    }

    #[test]
    fn an_overview_carries_the_counts_and_the_latest_time() {
        let at = DateTime::from_timestamp(1_700_000_030, 250).unwrap();
        let wire = overview(
            &AccountId::parse("chenzhou").unwrap(),
            AccountInbound {
                counts: Counts {
                    messages: 2,
                    events: 3,
                    subscribes: 1,
                    unsubscribes: 1,
                },
                last_inbound_at: Some(at),
            },
        );
        assert_eq!(wire.account, "chenzhou");
        assert_eq!(
            (
                wire.messages,
                wire.events,
                wire.subscribes,
                wire.unsubscribes
            ),
            (2, 3, 1, 1)
        );
        assert_eq!(
            wire.last_inbound_at,
            Some(prost_types::Timestamp {
                seconds: 1_700_000_030,
                nanos: 250
            })
        );
    }
}
