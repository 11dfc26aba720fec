//! `govwx stats …`: rollups, scorecards, rankings and inspection alarms (stats-svc).

use chrono::{Datelike, Days, NaiveDate};
use proto::stats::v1::{
    Alarm, DepartmentScore, GetAccountOverviewRequest, GetDailySeriesRequest,
    GetDepartmentScorecardRequest, GetMonthlyRankingRequest, GetReadinessReportRequest,
    ListAlarmsRequest, ReadinessReport,
};
use serde_json::{Value, json};

use crate::cli::{RangeArg, Stats};
use crate::client::Target;
use crate::error::Error;
use crate::output::{Out, fields, or_dash, shorten, table};

pub async fn run(command: Stats, target: &Target, out: &Out) -> Result<(), Error> {
    let mut client = target.stats().await?;
    let status = |s| target.status(s);
    match command {
        Stats::Overview { account } => {
            let request = GetAccountOverviewRequest {
                account: account.account,
            };
            let o = client
                .get_account_overview(request)
                .await
                .map_err(status)?
                .into_inner();
            if out.json {
                return out.document(&json!({
                    "account": o.account,
                    "messages": o.messages,
                    "events": o.events,
                    "subscribes": o.subscribes,
                    "unsubscribes": o.unsubscribes,
                    "last_inbound_at": out.json_time(o.last_inbound_at.as_ref()),
                }));
            }
            out.line(&fields(&[
                ("account", o.account),
                ("messages", o.messages.to_string()),
                ("events", o.events.to_string()),
                ("subscribes", o.subscribes.to_string()),
                ("unsubscribes", o.unsubscribes.to_string()),
                ("last inbound", out.time(o.last_inbound_at.as_ref())),
            ]))
        }
        Stats::Series {
            account,
            metric,
            range,
        } => {
            let (from, to) = range_of(out, range);
            let request = GetDailySeriesRequest {
                account: account.account,
                metric,
                from,
                to,
            };
            let series = client
                .get_daily_series(request)
                .await
                .map_err(status)?
                .into_inner();
            if out.json {
                let points: Vec<_> = series
                    .points
                    .iter()
                    .map(|p| json!({ "day": p.day, "key": p.key, "value": p.value }))
                    .collect();
                return out.document(&json!({
                    "account": series.account,
                    "metric": series.metric,
                    "points": points,
                    "total_before": series.total_before,
                }));
            }
            let rows = series
                .points
                .iter()
                .map(|p| vec![p.day.clone(), or_dash(&p.key), p.value.to_string()]);
            out.line(&format!(
                "{}\n\ntotal before the range: {}",
                table(&["day", "key", "value"], rows),
                series.total_before
            ))
        }
        Stats::Scorecard { account, range } => {
            let (from, to) = range_of(out, range);
            let request = GetDepartmentScorecardRequest {
                account: account.account,
                from,
                to,
            };
            let card = client
                .get_department_scorecard(request)
                .await
                .map_err(status)?
                .into_inner();
            if out.json {
                let departments: Vec<_> = card.departments.iter().map(scorecard_json).collect();
                return out.document(&json!({
                    "account": card.account,
                    "departments": departments,
                }));
            }
            let rows = card.departments.iter().map(scorecard_row);
            out.line(&table(
                &[
                    "department",
                    "tickets",
                    "overdue",
                    "ack in time",
                    "resolved in time",
                    "ack median",
                    "resolve median",
                    "rating",
                ],
                rows,
            ))
        }
        Stats::Ranking { month, formula } => {
            let month = month.unwrap_or_else(|| last_month(out));
            let request = GetMonthlyRankingRequest {
                month,
                version: formula,
                week_of: String::new(),
            };
            let ranking = client
                .get_monthly_ranking(request)
                .await
                .map_err(status)?
                .into_inner();
            if out.json {
                let accounts: Vec<_> = ranking
                    .accounts
                    .iter()
                    .map(|a| {
                        json!({
                            "rank": a.rank,
                            "account": a.account,
                            "wci": a.wci,
                            "articles": a.articles,
                            "reads": a.reads,
                            "published_nothing": a.published_nothing,
                            "figures_incomplete": a.figures_incomplete,
                        })
                    })
                    .collect();
                return out.document(&json!({
                    "month": ranking.month,
                    "version": ranking.version,
                    "provisional": ranking.provisional,
                    "final_on": ranking.final_on,
                    "accounts": accounts,
                }));
            }
            let rows = ranking.accounts.iter().map(|a| {
                let note = match (a.published_nothing, a.figures_incomplete) {
                    (_, true) => "figures incomplete (datacube pull failing)",
                    (true, false) => "published nothing",
                    (false, false) if a.articles == 0 => "no figures yet",
                    _ => "",
                };
                vec![
                    a.rank.to_string(),
                    a.account.clone(),
                    if a.articles == 0 {
                        "—".to_owned()
                    } else {
                        format!("{:.2}", a.wci)
                    },
                    a.articles.to_string(),
                    a.reads.to_string(),
                    or_dash(note),
                ]
            });
            let status = if ranking.provisional {
                format!(
                    " (provisional: figures may change; complete from {} 08:00 unless a pull is failing)",
                    ranking.final_on
                )
            } else {
                String::new()
            };
            out.line(&format!(
                "WCI {} for {}{status}\n{}",
                ranking.version,
                ranking.month,
                table(
                    &["rank", "account", "wci", "articles", "reads", "note"],
                    rows
                )
            ))
        }
        Stats::Alarms { account, range } => {
            let (from, to) = range_of(out, range);
            let request = ListAlarmsRequest {
                account: account.account,
                from,
                to,
            };
            let alarms = client
                .list_alarms(request)
                .await
                .map_err(status)?
                .into_inner()
                .alarms;
            if out.json {
                let alarms: Vec<_> = alarms.iter().map(|a| alarm_json(out, a)).collect();
                return out.document(&json!({ "alarms": alarms }));
            }
            if alarms.is_empty() {
                eprintln!("no alarms");
                return Ok(());
            }
            out.line(&alarm_table(out, &alarms))
        }
        Stats::Readiness { account, date } => {
            let request = GetReadinessReportRequest {
                account: account.account,
                date: date.unwrap_or_default(),
            };
            let r = client
                .get_readiness_report(request)
                .await
                .map_err(status)?
                .into_inner();
            if out.json {
                return out.document(&readiness_json(out, &r));
            }
            let ok = |b: bool| if b { "ok" } else { "ALARM" };
            let mut text = fields(&[
                ("account", r.account.clone()),
                ("date", r.date.clone()),
                ("last published", or_dash(&r.last_published_on)),
                (
                    "updates",
                    if r.last_published_on.is_empty() {
                        format!("{} (nothing published yet)", ok(r.update_ok))
                    } else {
                        format!("{} ({} days since)", ok(r.update_ok), r.days_since_update)
                    },
                ),
                ("interaction", interaction(&r)),
                (
                    "acknowledged in time",
                    share(r.acknowledged_in_time, r.acknowledge_judged),
                ),
            ]);
            if !r.alarms.is_empty() {
                text.push_str("\n\nALARMS\n");
                text.push_str(&alarm_table(out, &r.alarms));
            }
            out.line(&text)
        }
    }
}

/// `stats readiness --json`: the report with the counts each check is decided on.
fn readiness_json(out: &Out, r: &ReadinessReport) -> Value {
    let alarms: Vec<_> = r.alarms.iter().map(|a| alarm_json(out, a)).collect();
    json!({
        "account": r.account,
        "date": r.date,
        // Nothing ever published: null, not the wire's "" and -1.
        "last_published_on": (!r.last_published_on.is_empty()).then_some(&r.last_published_on),
        "days_since_update": (r.days_since_update >= 0).then_some(r.days_since_update),
        "update_ok": r.update_ok,
        "recent_tickets": r.recent_tickets,
        "recent_answered": r.recent_answered,
        "recent_auto_replies": r.recent_auto_replies,
        "reply_path_messages": r.reply_path_messages,
        "reply_path_answered": r.reply_path_answered,
        "interaction_ok": r.interaction_ok,
        "acknowledged_in_time": judged_share(r.acknowledged_in_time, r.acknowledge_judged),
        "acknowledge_judged": r.acknowledge_judged,
        "acknowledged_on_time": r.acknowledged_on_time,
        "alarms": alarms,
    })
}

/// The interaction check with the counts it is decided on, so an ALARM says which
/// part failed: tickets none answered with no automatic answer either, or the reply
/// path (citizens' messages over the last complete office hours, none answered
/// automatically or taken in by a ticket).
fn interaction(r: &ReadinessReport) -> String {
    format!(
        "{} ({} of {} recent tickets answered, {} automatic answers; reply path: {} of {} \
         messages answered or taken in)",
        if r.interaction_ok { "ok" } else { "ALARM" },
        r.recent_answered,
        r.recent_tickets,
        r.recent_auto_replies,
        r.reply_path_answered,
        r.reply_path_messages
    )
}

/// The range given, or the 30 office days up to today.
fn range_of(out: &Out, range: RangeArg) -> (String, String) {
    let to = range.to.unwrap_or_else(|| today(out).to_string());
    let from = range.from.unwrap_or_else(|| {
        NaiveDate::parse_from_str(&to, "%Y-%m-%d")
            .ok()
            .and_then(|day| day.checked_sub_days(Days::new(29)))
            // An unparseable --to is the server's to refuse, naming the field.
            .map_or_else(|| to.clone(), |day| day.to_string())
    });
    (from, to)
}

fn today(out: &Out) -> NaiveDate {
    chrono::Utc::now().with_timezone(&out.tz).date_naive()
}

/// The month before today's, YYYY-MM: the last finished month.
fn last_month(out: &Out) -> String {
    let first = today(out).with_day(1).expect("every month has a first day");
    let previous = first.pred_opt().expect("not the first day of time");
    previous.format("%Y-%m").to_string()
}

/// A share as a percentage, rounded down as stats-svc's dashboard does, so 100%
/// means every one: 249 of 250 is 99%, not 100%. The float is nudged before the
/// floor, as 0.29 × 100 is 28.999….
fn percent(share: f64) -> String {
    format!("{}%", (share * 100.0 + 1e-9).floor())
}

/// [`percent`] from the counts when they are known, exactly as the dashboard's
/// `count * 100 / of`: the on-time count is the share of its base.
fn percent_of(share: f64, of: i64) -> String {
    // The share is count / of: the count is a whole number.
    let count = (share * of as f64).round() as i64;
    format!("{}%", count * 100 / of)
}

/// A share of `judged` tickets as stats-svc sends it: 1 when nothing was judged, which
/// is no figure ("—", not 100%). A share below 1 with no base comes from a server
/// older than the judged counts, and is shown as it is.
fn judged_share(share: f64, judged: i64) -> Option<f64> {
    (judged > 0 || share < 1.0).then_some(share)
}

/// [`judged_share`] for the table, with its base when known: "97% (29)", or "—".
fn share(rate: f64, judged: i64) -> String {
    match judged_share(rate, judged) {
        None => "—".to_owned(),
        Some(rate) if judged > 0 => format!("{} ({judged})", percent_of(rate, judged)),
        Some(rate) => percent(rate),
    }
}

/// A response time, in the dashboard's units (stats-svc `http/pages.rs`
/// `duration`): seconds under a minute, minutes under an hour, then hours. A time
/// of 0 s (tickets handled the moment they came) is a time, not "no data".
fn duration(seconds: f64) -> String {
    if seconds < 60.0 {
        format!("{:.0}s", seconds.max(0.0))
    } else if seconds < 3600.0 {
        format!("{:.0}m", seconds / 60.0)
    } else {
        format!("{:.1}h", seconds / 3600.0)
    }
}

/// One department in `--json`: a time is null when there is none ([`timed`]), as a
/// share is when nothing was judged.
fn scorecard_json(d: &DepartmentScore) -> Value {
    let acknowledge = timed(d.acknowledge_median_seconds, d.acknowledge_p90_seconds);
    let resolve = timed(d.resolve_median_seconds, d.resolve_p90_seconds);
    json!({
        "department": d.department,
        "opened": d.opened,
        "acknowledged": d.acknowledged,
        "answered": d.answered,
        "closed": d.closed,
        "overdue": d.overdue,
        "rated": d.rated,
        "mean_rating": d.mean_rating,
        "acknowledge_median_seconds": acknowledge.map(|(median, _)| median),
        "acknowledge_p90_seconds": acknowledge.map(|(_, p90)| p90),
        "resolve_median_seconds": resolve.map(|(median, _)| median),
        "resolve_p90_seconds": resolve.map(|(_, p90)| p90),
        "acknowledged_in_time": judged_share(d.acknowledged_in_time, d.acknowledge_judged),
        "resolved_in_time": judged_share(d.resolved_in_time, d.resolve_judged),
        "acknowledge_judged": d.acknowledge_judged,
        "resolve_judged": d.resolve_judged,
        "tickets_in_range": d.tickets_in_range,
    })
}

/// One department's line of the scorecard table.
fn scorecard_row(d: &DepartmentScore) -> Vec<String> {
    vec![
        d.department.clone(),
        d.tickets_in_range.to_string(),
        d.overdue.to_string(),
        share(d.acknowledged_in_time, d.acknowledge_judged),
        share(d.resolved_in_time, d.resolve_judged),
        time_of(d.acknowledge_median_seconds, d.acknowledge_p90_seconds),
        time_of(d.resolve_median_seconds, d.resolve_p90_seconds),
        if d.rated == 0 {
            "-".to_owned()
        } else {
            format!("{:.1} ({})", d.mean_rating, d.rated)
        },
    ]
}

/// A department's time (median, p90 in seconds), `None` when no ticket of the range
/// was acknowledged (closed) by it: the dashboard's "—". stats-svc counts a time for
/// whoever acknowledged (closed) the ticket, not its owner now (`tickets_in_range`),
/// so a desk that passed its tickets on has times and an owner that has not
/// acknowledged its own has none. The wire has no count of the timed tickets (the
/// `acknowledged` and `closed` counts are changes made in the range: of tickets
/// opened before it too, and a reply or close straight from open acknowledges
/// without counting as `acknowledged`), but stats-svc sends 0 and 0 for "no time",
/// and only then: a p90 is never below its median, so both 0 would be a real time
/// only if every such ticket was answered in the millisecond it opened.
fn timed(median: f64, p90: f64) -> Option<(f64, f64)> {
    (median != 0.0 || p90 != 0.0).then_some((median, p90))
}

/// [`timed`] for the table: the time, or `-`.
fn time_of(median: f64, p90: f64) -> String {
    timed(median, p90).map_or_else(|| "-".to_owned(), |(median, _)| duration(median))
}

fn alarm_json(out: &Out, a: &Alarm) -> Value {
    json!({
        "account": a.account,
        "rule": a.rule,
        "subject": a.subject,
        "day": a.day,
        "detail": a.detail,
        "raised_at": out.json_time(a.raised_at.as_ref()),
    })
}

fn alarm_table(out: &Out, alarms: &[Alarm]) -> String {
    let rows = alarms.iter().map(|a| {
        vec![
            a.day.clone(),
            a.rule.clone(),
            or_dash(&a.subject),
            shorten(&a.detail, 50),
            out.time(a.raised_at.as_ref()),
        ]
    });
    table(&["day", "rule", "subject", "detail", "raised"], rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_with_nothing_judged_is_a_dash_not_a_hundred_percent() {
        assert_eq!(share(1.0, 0), "—");
        assert_eq!(judged_share(1.0, 0), None);
        assert_eq!(share(1.0, 4), "100% (4)");
        assert_eq!(share(0.75, 4), "75% (4)");
        // A server before the judged counts: a share below 1 is a real one.
        assert_eq!(share(0.5, 0), "50%");
    }

    /// 100% means every ticket, as on stats-svc's dashboard.
    #[test]
    fn a_share_short_of_all_never_reads_as_100_percent() {
        assert_eq!(share(249.0 / 250.0, 250), "99% (250)");
        assert_eq!(share(1.0, 250), "100% (250)");
        assert_eq!(share(29.0 / 100.0, 100), "29% (100)");
        assert_eq!(share(2.0 / 3.0, 3), "66% (3)");
        // Without its base (an older server): rounded down all the same.
        assert_eq!(percent(0.999), "99%");
        assert_eq!(percent(0.29), "29%");
    }

    /// As the dashboard: seconds are shown, and 0 s is a time.
    #[test]
    fn a_response_time_of_seconds_is_shown_not_taken_for_no_data() {
        assert_eq!(duration(0.0), "0s");
        assert_eq!(duration(20.0), "20s");
        assert_eq!(duration(600.0), "10m");
        assert_eq!(duration(5400.0), "1.5h");
        assert_eq!(duration(3.0 * 86400.0), "72.0h");
        // A median of 0 s with a p90 above it is a time; 0 and 0 is stats-svc's "none".
        assert_eq!(time_of(0.0, 30.0), "0s");
        assert_eq!(time_of(0.0, 0.0), "-");
    }

    /// The times are counted for whoever acknowledged (closed) a ticket, the ticket
    /// count for its owner now: a department owning tickets it has not acknowledged
    /// has no time ("-", the dashboard's "—"), not 0 s.
    #[test]
    fn a_department_with_tickets_but_none_acknowledged_has_no_time() {
        let none_acknowledged = DepartmentScore {
            department: "roads".into(),
            tickets_in_range: 3,
            acknowledged: 0,
            acknowledge_median_seconds: 0.0,
            acknowledge_p90_seconds: 0.0,
            resolve_median_seconds: 0.0,
            resolve_p90_seconds: 0.0,
            ..Default::default()
        };
        let row = scorecard_row(&none_acknowledged);
        assert_eq!((row[5].as_str(), row[6].as_str()), ("-", "-"));
        let json = scorecard_json(&none_acknowledged);
        assert_eq!(json["acknowledge_median_seconds"], Value::Null);
        assert_eq!(json["resolve_p90_seconds"], Value::Null);
    }

    /// A dispatch desk that acknowledged tickets and passed them on owns none of
    /// them now, yet the times are its own, as the dashboard shows them.
    #[test]
    fn a_desk_that_acknowledged_and_passed_tickets_on_shows_its_time() {
        let desk = DepartmentScore {
            department: "dispatch".into(),
            tickets_in_range: 0,
            acknowledged: 10,
            acknowledge_median_seconds: 240.0,
            acknowledge_p90_seconds: 600.0,
            ..Default::default()
        };
        let row = scorecard_row(&desk);
        assert_eq!((row[5].as_str(), row[6].as_str()), ("4m", "-"));
        let json = scorecard_json(&desk);
        assert_eq!(json["acknowledge_median_seconds"], 240.0);
        assert_eq!(json["acknowledge_p90_seconds"], 600.0);
    }

    /// An account that never published has no date and no gap: null in JSON, not
    /// the wire's "" and -1, which a script would read as a date and a number.
    #[test]
    fn nothing_published_is_null_in_json() {
        let out = Out {
            json: true,
            tz: chrono::FixedOffset::east_opt(8 * 3600).unwrap(),
        };
        let never = ReadinessReport {
            last_published_on: String::new(),
            days_since_update: -1,
            ..Default::default()
        };
        let json = readiness_json(&out, &never);
        assert_eq!(json["last_published_on"], Value::Null);
        assert_eq!(json["days_since_update"], Value::Null);
        let recent = ReadinessReport {
            last_published_on: "2026-12-01".into(),
            days_since_update: 0,
            ..Default::default()
        };
        let json = readiness_json(&out, &recent);
        assert_eq!(json["last_published_on"], "2026-12-01");
        assert_eq!(json["days_since_update"], 0);
    }

    /// An ALARM on interaction names the counts it was decided on: here the reply
    /// path, while every ticket was answered.
    #[test]
    fn the_interaction_check_shows_the_reply_path_counts() {
        let report = ReadinessReport {
            recent_tickets: 3,
            recent_answered: 3,
            recent_auto_replies: 0,
            reply_path_messages: 12,
            reply_path_answered: 0,
            interaction_ok: false,
            ..Default::default()
        };
        let out = Out {
            json: true,
            tz: chrono::FixedOffset::east_opt(8 * 3600).unwrap(),
        };
        let json = readiness_json(&out, &report);
        assert_eq!(json["reply_path_messages"], 12);
        assert_eq!(json["reply_path_answered"], 0);
        assert_eq!(json["recent_auto_replies"], 0);
        assert_eq!(
            interaction(&report),
            "ALARM (3 of 3 recent tickets answered, 0 automatic answers; reply path: 0 of 12 \
             messages answered or taken in)"
        );
    }
}
