//! The national inspection's checks as alarms (domain.md §1.3): an account silent
//! too long, an interaction channel that does not answer, a department whose tickets
//! run late, a ticket escalated twice. Pure: the inputs are loaded by `app`.

use chrono::{DateTime, DurationRound, FixedOffset, NaiveDate, TimeDelta, Utc};

/// Thresholds of the inspection alarms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InspectionRules {
    /// An account with no article published for this many days raises an alarm (the
    /// national rule fails an account at 14; 10 leaves time to act).
    pub stale_after_days: i64,
    /// The window in which tickets opened must have had an answer.
    pub interaction_days: i64,
    /// The share of a department's tickets (opened in the window) that went overdue
    /// above which it raises an alarm.
    pub overdue_share: f64,
    /// The window the overdue share is taken over.
    pub overdue_window_days: i64,
    /// How many of a department's tickets must have gone overdue in the window before
    /// its share alarms: one miss of one ticket judged is no pattern (a department
    /// handling one ticket a month read "超期 1/1 件" every day for 30 days), nor two
    /// of two at a small desk. A count of late tickets, not of tickets judged, so
    /// more late tickets never silence the alarm (a minimum of judged tickets
    /// alarmed at 2 of 2, with an exception for all late, and not at 3 of 4).
    pub overdue_min_late: i64,
    /// The reply-path check: over the last `reply_path_hours` complete office hours
    /// ([`reply_path_window`]), at least `reply_path_messages` citizen messages and
    /// not one automatic answer nor one message taken in by a ticket.
    pub reply_path_hours: i64,
    pub reply_path_messages: i64,
}

impl InspectionRules {
    /// The first day of the interaction window that ends with `today` (today is its
    /// last of `interaction_days` days).
    pub fn interaction_from(&self, today: NaiveDate) -> NaiveDate {
        window_from(today, self.interaction_days)
    }

    /// The first day of the overdue-share window that ends with `today`.
    pub fn overdue_from(&self, today: NaiveDate) -> NaiveDate {
        window_from(today, self.overdue_window_days)
    }
}

fn window_from(today: NaiveDate, days: i64) -> NaiveDate {
    today - chrono::Days::new(u64::try_from(days.saturating_sub(1)).unwrap_or(0))
}

impl Default for InspectionRules {
    fn default() -> Self {
        Self {
            stale_after_days: 10,
            interaction_days: 7,
            overdue_share: 0.2,
            overdue_window_days: 30,
            overdue_min_late: 3,
            reply_path_hours: 3,
            reply_path_messages: 5,
        }
    }
}

/// Which check an alarm is about. The string is the stored name and the last token
/// of the subject `stats.{account}.alarm.{rule}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlarmRule {
    /// No article published for `stale_after_days` (监测时间点前2周内未更新).
    NoUpdate,
    /// Tickets came in but none was answered and no reply rule answered anything, or
    /// the reply path is failing (subject `reply_path`): 未提供有效互动功能.
    InteractionBroken,
    /// A department's overdue share passed the threshold.
    OverdueShare,
    /// A ticket missed both its deadlines (escalated to 督办 twice).
    EscalatedTwice,
}

impl AlarmRule {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmRule::NoUpdate => "no_update",
            AlarmRule::InteractionBroken => "interaction_broken",
            AlarmRule::OverdueShare => "overdue_share",
            AlarmRule::EscalatedTwice => "escalated_twice",
        }
    }
}

/// The detail of the account's interaction_broken alarm (nothing answered the tickets
/// of the last `days` days): with the account's ticket count, or without it for a view
/// cut to one department ([`cut_detail`]).
pub fn interaction_broken_detail(days: i64, tickets: Option<i64>) -> String {
    match tickets {
        Some(tickets) => format!("近 {days} 天收到 {tickets} 件留言，无一答复，也无自动回复"),
        None => format!("近 {days} 天收到的留言无一答复，也无自动回复"),
    }
}

/// The detail a view cut to one department reads of an alarm of `rule` about
/// `subject`, `None` when it reads `detail` as it is. The account's interaction_broken
/// alarm counts every department's tickets: beside a desk's own count on the readiness
/// line, it told the desk the other departments' (parks' 4 of 7). The verdict is the
/// account's and stays; the count goes. Stored alarms carry the text
/// [`interaction_broken_detail`] wrote, whose window is read back (a text it did not
/// write loses the window too).
pub fn cut_detail(rule: &str, subject: &str, detail: &str) -> Option<String> {
    if rule != AlarmRule::InteractionBroken.as_str() || !subject.is_empty() {
        return None;
    }
    let days = detail
        .strip_prefix("近 ")
        .and_then(|rest| rest.split_once(' '))
        .and_then(|(days, _)| days.parse::<i64>().ok());
    Some(match days {
        Some(days) => interaction_broken_detail(days, None),
        None => "近期收到的留言无一答复，也无自动回复".to_owned(),
    })
}

/// An alarm to raise: `subject` is what it is about inside the account (a department,
/// a ticket; empty for the account itself).
#[derive(Debug, Clone, PartialEq)]
pub struct Alarm {
    pub rule: AlarmRule,
    pub subject: String,
    /// Chinese, for the dashboard and the notification.
    pub detail: String,
}

/// What the checks read about one account on one day.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccountState {
    /// The office day of the latest published article, if any.
    pub last_published_on: Option<NaiveDate>,
    /// Tickets opened in the interaction window whose acknowledgement is decided (done,
    /// or its deadline passed), and how many of them were answered (or acknowledged by
    /// a person, or closed).
    pub recent_tickets: i64,
    pub recent_answered: i64,
    /// Automatic answers (reply rules, the directory) in the interaction window.
    pub recent_auto_replies: i64,
    /// Over the reply-path window: citizen messages, and what answered them
    /// (automatic answers plus messages a ticket took in).
    pub reply_path: ReplyPath,
    /// Per department: tickets opened in the overdue window it did or missed a step
    /// of (judged as the scorecard judges them, each ticket once), and how many of
    /// them went overdue under it.
    pub departments: Vec<(String, i64, i64)>,
    /// Tickets that missed two deadlines.
    pub escalated_twice: Vec<String>,
}

/// The reply path's traffic over its window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplyPath {
    pub messages: i64,
    pub answered: i64,
}

/// The subject of the reply-path alarm (the other `interaction_broken` has none).
pub const REPLY_PATH: &str = "reply_path";

/// How long answers may take to land here (interaction-svc answers within WeChat's
/// 5 seconds, then its outbox and this consumer): the window ends this long before now.
pub const REPLY_PATH_SETTLE: TimeDelta = TimeDelta::minutes(10);

/// The reply-path window at `now`: the `hours` complete office hours ending at the
/// start of the office hour that held `now - REPLY_PATH_SETTLE`.
pub fn reply_path_window(
    now: DateTime<Utc>,
    office: FixedOffset,
    hours: i64,
) -> (DateTime<Utc>, DateTime<Utc>) {
    let settled = (now - REPLY_PATH_SETTLE).with_timezone(&office);
    // Whole hours in every offset China or a test uses; a failure leaves the instant.
    let end = settled
        .duration_trunc(TimeDelta::hours(1))
        .unwrap_or(settled)
        .to_utc();
    (end - TimeDelta::hours(hours), end)
}

impl InspectionRules {
    /// Whether tickets came in over the interaction window with neither a ticket
    /// answered nor any automatic answer: nobody and nothing answers citizens.
    pub fn nothing_answers(&self, state: &AccountState) -> bool {
        state.recent_tickets > 0 && state.recent_answered == 0 && state.recent_auto_replies == 0
    }

    /// Whether citizens wrote over the reply-path window and nothing took their
    /// messages: no rule, no directory answer, no ticket opened or joined.
    pub fn reply_path_failing(&self, state: &AccountState) -> bool {
        state.reply_path.messages >= self.reply_path_messages && state.reply_path.answered == 0
    }

    /// Whether the interaction channel works, as the inspector asks it.
    pub fn interaction_ok(&self, state: &AccountState) -> bool {
        !self.nothing_answers(state) && !self.reply_path_failing(state)
    }
}

/// Days from `last` to `today` (0 when published today).
pub fn days_since(last: NaiveDate, today: NaiveDate) -> i64 {
    (today - last).num_days()
}

impl InspectionRules {
    /// The alarms `state` raises on `today`.
    pub fn check(&self, state: &AccountState, today: NaiveDate) -> Vec<Alarm> {
        let mut alarms = Vec::new();
        match state.last_published_on {
            Some(last) if days_since(last, today) >= self.stale_after_days => alarms.push(Alarm {
                rule: AlarmRule::NoUpdate,
                subject: String::new(),
                detail: format!(
                    "已 {} 天未发布文章（最近一次：{last}）",
                    days_since(last, today)
                ),
            }),
            Some(_) => {}
            None => alarms.push(Alarm {
                rule: AlarmRule::NoUpdate,
                subject: String::new(),
                detail: "尚未发布任何文章".to_owned(),
            }),
        }
        if self.nothing_answers(state) {
            alarms.push(Alarm {
                rule: AlarmRule::InteractionBroken,
                subject: String::new(),
                detail: interaction_broken_detail(
                    self.interaction_days,
                    Some(state.recent_tickets),
                ),
            });
        }
        if self.reply_path_failing(state) {
            alarms.push(Alarm {
                rule: AlarmRule::InteractionBroken,
                subject: REPLY_PATH.to_owned(),
                detail: format!(
                    "近 {} 小时收到 {} 条留言，既无自动回复也未转为工单，回复通路可能中断",
                    self.reply_path_hours, state.reply_path.messages
                ),
            });
        }
        for (department, opened, overdue) in &state.departments {
            // Both a count and a share, each rising with the late tickets: the alarm
            // is monotonic in them (a county desk late on 4 of 4 alarms, as on 3 of 4).
            if *overdue >= self.overdue_min_late.max(1)
                && (*overdue as f64) / (*opened as f64) > self.overdue_share
            {
                alarms.push(Alarm {
                    rule: AlarmRule::OverdueShare,
                    subject: department.clone(),
                    detail: format!(
                        "{department} 近 {} 天超期 {overdue}/{opened} 件",
                        self.overdue_window_days
                    ),
                });
            }
        }
        for ticket in &state.escalated_twice {
            alarms.push(Alarm {
                rule: AlarmRule::EscalatedTwice,
                subject: ticket.clone(),
                detail: format!("工单 {ticket} 两次超期督办"),
            });
        }
        alarms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_of_n_days_ends_today_and_holds_n_days() {
        let rules = InspectionRules::default();
        let today = NaiveDate::from_ymd_opt(2026, 12, 4).unwrap();
        assert_eq!(
            rules.interaction_from(today),
            NaiveDate::from_ymd_opt(2026, 11, 28).unwrap()
        );
        assert_eq!(
            rules.overdue_from(today),
            NaiveDate::from_ymd_opt(2026, 11, 5).unwrap()
        );
    }

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn published(on: &str) -> AccountState {
        AccountState {
            last_published_on: Some(day(on)),
            ..AccountState::default()
        }
    }

    #[test]
    fn the_update_gap_alarm_fires_on_day_ten_and_not_on_day_nine() {
        let rules = InspectionRules::default();
        let state = published("2026-11-20");
        assert!(rules.check(&state, day("2026-11-29")).is_empty());
        let alarms = rules.check(&state, day("2026-11-30"));
        assert_eq!(alarms.len(), 1);
        assert_eq!(alarms[0].rule, AlarmRule::NoUpdate);
        assert!(alarms[0].detail.contains("10 天"));
    }

    #[test]
    fn tickets_without_any_answer_mean_a_broken_channel() {
        let rules = InspectionRules::default();
        let mut state = published("2026-11-29");
        state.recent_tickets = 3;
        assert_eq!(
            rules.check(&state, day("2026-11-30"))[0].rule,
            AlarmRule::InteractionBroken
        );
        state.recent_answered = 1;
        assert!(rules.check(&state, day("2026-11-30")).is_empty());
        // A reply rule answering citizens is a working channel too.
        state.recent_answered = 0;
        state.recent_auto_replies = 4;
        assert!(rules.check(&state, day("2026-11-30")).is_empty());
    }

    #[test]
    fn messages_nothing_took_in_mean_a_failing_reply_path() {
        let rules = InspectionRules::default();
        let mut state = published("2026-11-29");
        state.reply_path = ReplyPath {
            messages: 5,
            answered: 0,
        };
        let alarms = rules.check(&state, day("2026-11-30"));
        assert_eq!(
            (alarms[0].rule, alarms[0].subject.as_str()),
            (AlarmRule::InteractionBroken, REPLY_PATH)
        );
        assert!(!rules.interaction_ok(&state));
        // Fewer messages than the threshold prove nothing; one answer proves it works.
        state.reply_path.messages = 4;
        assert!(rules.check(&state, day("2026-11-30")).is_empty());
        state.reply_path = ReplyPath {
            messages: 50,
            answered: 1,
        };
        assert!(rules.check(&state, day("2026-11-30")).is_empty());
    }

    #[test]
    fn the_reply_path_window_is_whole_office_hours_settled_before_now() {
        let office = FixedOffset::east_opt(8 * 3600).unwrap();
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        // 10:25 office time: the window is 07:00-10:00.
        let (from, until) = reply_path_window(at("2026-12-01T02:25:00Z"), office, 3);
        assert_eq!(
            (from, until),
            (at("2026-11-30T23:00:00Z"), at("2026-12-01T02:00:00Z"))
        );
        // 10:05: the last hour may still have answers in flight, so it ends at 09:00.
        let (from, until) = reply_path_window(at("2026-12-01T02:05:00Z"), office, 3);
        assert_eq!(
            (from, until),
            (at("2026-11-30T22:00:00Z"), at("2026-12-01T01:00:00Z"))
        );
    }

    #[test]
    fn a_department_above_the_overdue_share_and_a_twice_escalated_ticket_raise_alarms() {
        let rules = InspectionRules::default();
        let mut state = published("2026-11-29");
        state.departments = vec![("water".to_owned(), 10, 3), ("roads".to_owned(), 10, 2)];
        state.escalated_twice = vec!["t9".to_owned()];
        let alarms = rules.check(&state, day("2026-11-30"));
        assert_eq!(alarms.len(), 2);
        assert_eq!(
            (alarms[0].rule, alarms[0].subject.as_str()),
            (AlarmRule::OverdueShare, "water")
        );
        assert_eq!(
            (alarms[1].rule, alarms[1].subject.as_str()),
            (AlarmRule::EscalatedTwice, "t9")
        );
    }

    /// Whether a department with `opened` tickets judged, `overdue` of them late,
    /// raises the overdue-share alarm under `rules`.
    fn alarms(rules: &InspectionRules, opened: i64, overdue: i64) -> bool {
        let mut state = published("2026-11-29");
        state.departments = vec![("roads".to_owned(), opened, overdue)];
        !rules.check(&state, day("2026-11-30")).is_empty()
    }

    /// A department's share alarms from `overdue_min_late` (3) late tickets and a
    /// share above `overdue_share` (20%): 2 of 2 is a tiny desk's bad day, 3 of 4 a
    /// pattern, and 3 of 15 (20%) within the share.
    #[test]
    fn the_overdue_share_alarms_from_the_minimum_late_tickets_above_the_share() {
        let rules = InspectionRules::default();
        let judged: Vec<(i64, i64, bool)> = [
            (1, 1),
            (2, 2),
            (3, 2),
            (3, 3),
            (4, 3),
            (4, 4),
            (5, 2),
            (14, 3),
            (15, 3),
        ]
        .into_iter()
        .map(|(opened, overdue)| (opened, overdue, alarms(&rules, opened, overdue)))
        .collect();
        assert_eq!(
            judged,
            [
                (1, 1, false),
                (2, 2, false),
                (3, 2, false),
                (3, 3, true),
                (4, 3, true),
                (4, 4, true),
                (5, 2, false),
                (14, 3, true),
                (15, 3, false)
            ]
        );
    }

    /// More late tickets at a share above the threshold never silence the alarm: the
    /// rule this replaced alarmed at 2 of 2 and not at 3 of 4.
    #[test]
    fn the_overdue_share_alarm_is_monotonic_in_the_late_tickets() {
        let rules = InspectionRules::default();
        for opened in 1..=30 {
            for overdue in 0..=opened {
                if !alarms(&rules, opened, overdue) {
                    continue;
                }
                for more_opened in 1..=30 {
                    for more in overdue..=more_opened {
                        let share = more as f64 / more_opened as f64;
                        assert!(
                            share <= rules.overdue_share || alarms(&rules, more_opened, more),
                            "{overdue} of {opened} alarms, {more} of {more_opened} does not"
                        );
                    }
                }
            }
        }
    }
}
