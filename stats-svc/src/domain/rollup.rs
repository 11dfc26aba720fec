//! Daily rollups: what one event adds to which counter of which day.
//!
//! A counter is `(account, day, metric, key)`: the day is the event's own time in
//! the office's time zone (so a redelivery after midnight lands on the day it
//! happened), the key is what the metric is broken down by (a message type, a QR
//! scene, a menu key, a department; empty when nothing).

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Timelike, Utc};
use proto::events::v1 as ev;

use super::inbound::{InboundDetail, InboundFact};
use super::{AccountId, InboundKind};

/// China Standard Time: the default office time zone (China keeps no summer time, so
/// a fixed offset is exact).
pub const CHINA_STANDARD_TIME: i32 = 8 * 3600;

/// The day an instant falls on in the office's time zone.
pub fn office_day(at: DateTime<Utc>, office: FixedOffset) -> NaiveDate {
    at.with_timezone(&office).date_naive()
}

/// The years a day or month asked of us may fall in: far inside chrono's range, so
/// the date arithmetic on them (a month's last day, a week's Saturday, an alarm
/// window's first day) cannot overflow, and wide enough for any account's history.
pub const ASKABLE_YEARS: std::ops::RangeInclusive<i32> = 2000..=2199;

/// A day written `YYYY-MM-DD` with its year in [`ASKABLE_YEARS`].
pub fn parse_day(raw: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .filter(|day| ASKABLE_YEARS.contains(&day.year()))
}

/// A month written `YYYY-MM`, as its first day, with its year in [`ASKABLE_YEARS`].
pub fn parse_month(raw: &str) -> Option<NaiveDate> {
    parse_day(&format!("{raw}-01"))
}

/// A counter's name. The string is what the table and the wire carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    /// New followers, by QR scene (empty: a plain follow).
    FollowersNew,
    /// Followers lost.
    FollowersLost,
    /// Citizen messages, by `MsgType`.
    Messages,
    /// Citizen messages by office hour (`00`..`23`): when the duty roster is needed.
    MessagesByHour,
    /// Of those, the messages interaction-svc takes in (answers with a rule, the
    /// directory, a ticket or a rating: not an untranscribed voice note, a video, a
    /// message from `mphelper`), by office hour: what the reply-path check counts.
    TakenInByHour,
    /// Events of any kind (follows, clicks, …).
    Events,
    /// Clicks on `click` menu buttons, by key.
    MenuClicks,
    /// Clicks on `view` menu buttons, by URL.
    MenuViews,
    /// Parametric QR codes scanned by followers, by scene.
    QrScans,
    /// Tickets opened, by department (and likewise below).
    TicketsOpened,
    TicketsAcknowledged,
    /// Tickets answered (a department's reply).
    TicketsAnswered,
    TicketsClosed,
    TicketsReopened,
    /// Deadlines missed: each is escalated to the supervision office (督办).
    TicketsOverdue,
    /// Ratings given, and their sum (the mean is sum / count).
    TicketsRated,
    RatingSum,
    /// WeChat's own figures (datacube), replaced on each pull: new followers by
    /// `user_source`, followers lost by source, followers at the end of the day,
    /// article reads and readers by read source, shares.
    WxNewUsers,
    WxLostUsers,
    WxFollowers,
    WxReads,
    WxReadUsers,
    WxShares,
    /// Each article's figures of the day (`getarticlesummary`), by msgid
    /// (`{msg_data_id}_{index}`): reads, readers and shares of the articles read that
    /// day, so a day's article reads are these summed.
    WxArticleReads,
    WxArticleReadUsers,
    WxArticleShares,
    /// Citizens answered without a person (`events.v1.AutoReplied`), by source
    /// (`rule`, `directory_service`, `directory_category`), and by office hour.
    AutoReplies,
    AutoRepliesByHour,
    /// Reply rules that answered, by rule id.
    RuleHits,
    /// What a reply rule matched (keyword, pattern or click key), by that text.
    KeywordHits,
    /// Directory services sent as an answer, by service id.
    DirectoryServiceHits,
    /// Directory categories answered (a category's list, or one of its services), by key.
    DirectoryCategoryHits,
    /// Citizen messages a ticket took in (opened one or joined an active one), by
    /// office hour: with `auto_replies_by_hour`, what the reply-path check reads.
    TicketIntakeByHour,
    /// Ratings given, by office hour: each is a citizen's lone digit that
    /// interaction-svc answered with thanks (`Reply::RatingThanks`: no `AutoReplied`,
    /// no intake), so the reply-path check counts it answered. Not `tickets_*`: those
    /// are keyed by department, and the scorecard reads every one of them
    /// (`store::rollups::department_sums`).
    RatingsByHour,
}

impl Metric {
    /// Whether the metric's keys are departments (the ticket counters read by the
    /// scorecard, `store::rollups::department_sums`).
    pub fn keyed_by_department(self) -> bool {
        let name = self.as_str();
        name.starts_with("tickets_") || self == Metric::RatingSum
    }

    /// Every metric, in the order tables list them.
    pub const ALL: [Metric; 34] = [
        Metric::FollowersNew,
        Metric::FollowersLost,
        Metric::Messages,
        Metric::MessagesByHour,
        Metric::TakenInByHour,
        Metric::Events,
        Metric::MenuClicks,
        Metric::MenuViews,
        Metric::QrScans,
        Metric::TicketsOpened,
        Metric::TicketsAcknowledged,
        Metric::TicketsAnswered,
        Metric::TicketsClosed,
        Metric::TicketsReopened,
        Metric::TicketsOverdue,
        Metric::TicketsRated,
        Metric::RatingSum,
        Metric::WxNewUsers,
        Metric::WxLostUsers,
        Metric::WxFollowers,
        Metric::WxReads,
        Metric::WxReadUsers,
        Metric::WxShares,
        Metric::WxArticleReads,
        Metric::WxArticleReadUsers,
        Metric::WxArticleShares,
        Metric::AutoReplies,
        Metric::AutoRepliesByHour,
        Metric::RuleHits,
        Metric::KeywordHits,
        Metric::DirectoryServiceHits,
        Metric::DirectoryCategoryHits,
        Metric::TicketIntakeByHour,
        Metric::RatingsByHour,
    ];

    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::FollowersNew => "followers_new",
            Metric::FollowersLost => "followers_lost",
            Metric::Messages => "messages",
            Metric::MessagesByHour => "messages_by_hour",
            Metric::TakenInByHour => "taken_in_by_hour",
            Metric::Events => "events",
            Metric::MenuClicks => "menu_clicks",
            Metric::MenuViews => "menu_views",
            Metric::QrScans => "qr_scans",
            Metric::TicketsOpened => "tickets_opened",
            Metric::TicketsAcknowledged => "tickets_acknowledged",
            Metric::TicketsAnswered => "tickets_answered",
            Metric::TicketsClosed => "tickets_closed",
            Metric::TicketsReopened => "tickets_reopened",
            Metric::TicketsOverdue => "tickets_overdue",
            Metric::TicketsRated => "tickets_rated",
            Metric::RatingSum => "rating_sum",
            Metric::WxNewUsers => "wx_new_users",
            Metric::WxLostUsers => "wx_lost_users",
            Metric::WxFollowers => "wx_followers",
            Metric::WxReads => "wx_reads",
            Metric::WxReadUsers => "wx_read_users",
            Metric::WxShares => "wx_shares",
            Metric::WxArticleReads => "wx_article_reads",
            Metric::WxArticleReadUsers => "wx_article_read_users",
            Metric::WxArticleShares => "wx_article_shares",
            Metric::AutoReplies => "auto_replies",
            Metric::AutoRepliesByHour => "auto_replies_by_hour",
            Metric::RuleHits => "rule_hits",
            Metric::KeywordHits => "keyword_hits",
            Metric::DirectoryServiceHits => "directory_service_hits",
            Metric::DirectoryCategoryHits => "directory_category_hits",
            Metric::TicketIntakeByHour => "ticket_intake_by_hour",
            Metric::RatingsByHour => "ratings_by_hour",
        }
    }

    /// The metric called `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == name)
    }
}

/// One increment of one counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    pub account: AccountId,
    pub day: NaiveDate,
    pub metric: Metric,
    pub key: String,
    pub value: i64,
}

impl InboundFact {
    /// The counters this callback grows; none for a callback without a time.
    pub fn tallies(&self, office: FixedOffset) -> Vec<Tally> {
        let Some(at) = self.occurred_at else {
            return Vec::new();
        };
        let tally = |metric, key: &str| Tally {
            account: self.account.clone(),
            day: office_day(at, office),
            metric,
            key: key.to_owned(),
            value: 1,
        };
        let mut tallies = Vec::with_capacity(2);
        if self.kind == InboundKind::Event {
            tallies.push(tally(Metric::Events, ""));
        }
        match &self.detail {
            InboundDetail::Message { msg_type, taken_in } => {
                tallies.push(tally(Metric::Messages, msg_type));
                let hour = format!("{:02}", at.with_timezone(&office).hour());
                tallies.push(tally(Metric::MessagesByHour, &hour));
                if *taken_in {
                    tallies.push(tally(Metric::TakenInByHour, &hour));
                }
            }
            InboundDetail::Follow { scene } => tallies.push(tally(Metric::FollowersNew, scene)),
            InboundDetail::Unfollow => tallies.push(tally(Metric::FollowersLost, "")),
            InboundDetail::Scan { scene } => tallies.push(tally(Metric::QrScans, scene)),
            InboundDetail::MenuClick { key } => tallies.push(tally(Metric::MenuClicks, key)),
            InboundDetail::MenuView { url } => tallies.push(tally(Metric::MenuViews, url)),
            InboundDetail::Other => {}
        }
        tallies
    }
}

/// Why a `TicketChanged` cannot be rolled up (it is dead-lettered with this reason).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TicketFactError {
    #[error("{0} is required")]
    Missing(&'static str),
    #[error("account: {0}")]
    Account(platform::ids::IdError),
}

/// One ticket change, reduced to what the rollups and the per-ticket times need.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketFact {
    pub event_id: String,
    pub account: AccountId,
    pub ticket_id: String,
    pub department: String,
    pub kind: ev::TicketChangeKind,
    pub occurred_at: DateTime<Utc>,
    pub opened_at: Option<DateTime<Utc>>,
    pub acknowledge_due_at: Option<DateTime<Utc>>,
    pub resolve_due_at: Option<DateTime<Utc>>,
    /// 1..5 once rated.
    pub rating: Option<u8>,
    /// For `OVERDUE`: which deadline passed.
    pub deadline: ev::TicketDeadline,
    /// For `ASSIGNED`: the department the ticket was moved away from (empty when the
    /// department did not change).
    pub previous_department: String,
}

fn time(at: Option<&prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    let at = at?;
    DateTime::from_timestamp(at.seconds, u32::try_from(at.nanos).unwrap_or(0))
}

impl TryFrom<&ev::TicketChanged> for TicketFact {
    type Error = TicketFactError;

    fn try_from(event: &ev::TicketChanged) -> Result<Self, Self::Error> {
        let header = event
            .header
            .as_ref()
            .ok_or(TicketFactError::Missing("header"))?;
        if header.event_id.is_empty() {
            return Err(TicketFactError::Missing("header.event_id"));
        }
        if event.ticket_id.is_empty() {
            return Err(TicketFactError::Missing("ticket_id"));
        }
        let occurred_at = time(header.occurred_at.as_ref())
            .ok_or(TicketFactError::Missing("header.occurred_at"))?;
        Ok(Self {
            event_id: header.event_id.clone(),
            account: AccountId::parse(header.account.as_str()).map_err(TicketFactError::Account)?,
            ticket_id: event.ticket_id.clone(),
            department: event.department.clone(),
            kind: event.kind(),
            occurred_at,
            opened_at: time(event.opened_at.as_ref()),
            acknowledge_due_at: time(event.acknowledge_due_at.as_ref()),
            resolve_due_at: time(event.resolve_due_at.as_ref()),
            rating: u8::try_from(event.rating)
                .ok()
                .filter(|r| (1..=5).contains(r)),
            deadline: event.deadline(),
            previous_department: event.previous_department.clone(),
        })
    }
}

impl TicketFact {
    /// The counters this change grows, on the day it happened, under the department
    /// that owns the ticket after it (and a citizen's message taken in, by hour).
    pub fn tallies(&self, office: FixedOffset) -> Vec<Tally> {
        use ev::TicketChangeKind as K;
        let tally = |metric, value| Tally {
            account: self.account.clone(),
            day: office_day(self.occurred_at, office),
            metric,
            key: self.department.clone(),
            value,
        };
        // A citizen's message that a ticket took in or that rated one, by office hour
        // (not by department: the reply-path check asks whether anything answered, not
        // who). A rating's time is its message's (interaction-svc's `rate`).
        let by_hour = |metric| {
            let hour = self.occurred_at.with_timezone(&office).hour();
            Tally {
                key: format!("{hour:02}"),
                ..tally(metric, 1)
            }
        };
        let intake = || by_hour(Metric::TicketIntakeByHour);
        match self.kind {
            K::Opened => vec![tally(Metric::TicketsOpened, 1), intake()],
            K::CitizenMessage => vec![intake()],
            K::Acknowledged => vec![tally(Metric::TicketsAcknowledged, 1)],
            K::Replied => vec![tally(Metric::TicketsAnswered, 1)],
            K::Closed => vec![tally(Metric::TicketsClosed, 1)],
            K::Reopened => vec![tally(Metric::TicketsReopened, 1)],
            K::Overdue => vec![tally(Metric::TicketsOverdue, 1)],
            K::Rated => match self.rating {
                Some(rating) => vec![
                    tally(Metric::TicketsRated, 1),
                    tally(Metric::RatingSum, i64::from(rating)),
                    by_hour(Metric::RatingsByHour),
                ],
                None => Vec::new(),
            },
            K::Assigned | K::Unspecified => Vec::new(),
        }
    }
}

/// From when a chart of a counter added after its base counter (messages by office
/// hour after messages) is whole over a range starting on `from`: the counter's first
/// day, when the base counted before it and the range reaches back before it. A release
/// adds a counter from its upgrade on (the callbacks before it are gone from the
/// stream), so a chart over the months before would under-report without a word.
/// `None`: the chart counts everything in its range.
pub fn counted_since(
    counter_first: Option<NaiveDate>,
    base_first: Option<NaiveDate>,
    from: NaiveDate,
) -> Option<NaiveDate> {
    match (counter_first, base_first) {
        (Some(counter), Some(base)) if base < counter && from < counter => Some(counter),
        // Nothing counted since the upgrade: its day is not known.
        _ => None,
    }
}

/// Median and 90th percentile of durations in seconds (nearest rank), `None` when empty.
pub fn median_and_p90(mut seconds: Vec<f64>) -> Option<(f64, f64)> {
    if seconds.is_empty() {
        return None;
    }
    seconds.sort_by(f64::total_cmp);
    let rank = |q: f64| {
        let index = ((q * seconds.len() as f64).ceil() as usize).clamp(1, seconds.len()) - 1;
        seconds[index]
    };
    Some((rank(0.5), rank(0.9)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_says_from_when_a_counter_added_later_counts() {
        let day = |d: u32| NaiveDate::from_ymd_opt(2026, 12, d).unwrap();
        // Messages counted from the 1st, by hour from the upgrade on the 5th.
        assert_eq!(
            counted_since(Some(day(5)), Some(day(1)), day(2)),
            Some(day(5))
        );
        // A range starting on or after the upgrade is whole.
        assert_eq!(counted_since(Some(day(5)), Some(day(1)), day(5)), None);
        // Both counted from the same day (an install after the upgrade).
        assert_eq!(counted_since(Some(day(3)), Some(day(3)), day(1)), None);
        assert_eq!(counted_since(None, Some(day(1)), day(1)), None);
        assert_eq!(counted_since(None, None, day(1)), None);
    }

    fn office() -> FixedOffset {
        FixedOffset::east_opt(CHINA_STANDARD_TIME).unwrap()
    }

    #[test]
    fn days_and_months_far_from_any_account_are_refused() {
        assert_eq!(parse_month("2026-11"), NaiveDate::from_ymd_opt(2026, 11, 1));
        assert_eq!(
            parse_day("2026-12-04"),
            NaiveDate::from_ymd_opt(2026, 12, 4)
        );
        // chrono reads a signed year of up to six digits; its last month made the
        // monthly ranking loop forever and `week_of` overflow.
        assert_eq!(parse_month("+262142-12"), None);
        assert_eq!(parse_day("+262143-12-31"), None);
        assert_eq!(parse_day("1999-12-31"), None);
        assert_eq!(parse_month("2026-13"), None);
    }

    #[test]
    fn an_event_late_in_the_utc_evening_belongs_to_the_next_office_day() {
        let at = DateTime::parse_from_rfc3339("2026-11-30T16:30:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(office_day(at, office()).to_string(), "2026-12-01");
        let before = DateTime::parse_from_rfc3339("2026-11-30T15:59:59Z")
            .unwrap()
            .to_utc();
        assert_eq!(office_day(before, office()).to_string(), "2026-11-30");
    }

    #[test]
    fn every_metric_round_trips_through_its_name() {
        for metric in Metric::ALL {
            assert_eq!(Metric::parse(metric.as_str()), Some(metric));
        }
        assert_eq!(Metric::parse("nope"), None);
    }

    #[test]
    fn a_ticket_rating_counts_once_and_adds_its_value() {
        let event = ev::TicketChanged {
            header: Some(ev::EventHeader {
                event_id: "e1".to_owned(),
                account: "chenzhou".to_owned(),
                occurred_at: Some(prost_types::Timestamp {
                    seconds: 1_796_083_200,
                    nanos: 0,
                }),
            }),
            kind: ev::TicketChangeKind::Rated as i32,
            ticket_id: "t1".to_owned(),
            department: "water".to_owned(),
            rating: 4,
            ..Default::default()
        };
        let fact = TicketFact::try_from(&event).unwrap();
        let tallies = fact.tallies(office());
        assert_eq!(tallies.len(), 3);
        assert_eq!(tallies[1].metric, Metric::RatingSum);
        assert_eq!(tallies[1].value, 4);
        assert_eq!(tallies[1].key, "water");
        // And once by office hour (00:00 UTC is 08:00 in the office), for the
        // reply-path check: the citizen's digit was answered.
        assert_eq!(tallies[2].metric, Metric::RatingsByHour);
        assert_eq!((tallies[2].key.as_str(), tallies[2].value), ("08", 1));
    }

    #[test]
    fn a_ticket_change_without_a_time_or_ticket_is_refused() {
        let event = ev::TicketChanged {
            header: Some(ev::EventHeader {
                event_id: "e1".to_owned(),
                account: "chenzhou".to_owned(),
                occurred_at: None,
            }),
            ticket_id: "t1".to_owned(),
            ..Default::default()
        };
        assert_eq!(
            TicketFact::try_from(&event),
            Err(TicketFactError::Missing("header.occurred_at"))
        );
    }

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let values: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(median_and_p90(values), Some((5.0, 9.0)));
        assert_eq!(median_and_p90(vec![7.0]), Some((7.0, 7.0)));
        assert_eq!(median_and_p90(Vec::new()), None);
    }
}
