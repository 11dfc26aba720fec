//! Where a citizen's new ticket goes and when it is due: routing plus the deadline
//! policy, at the message's CreateTime. The consumer stores the result; the reply
//! path tells the citizen the same deadline at once.

use chrono::{DateTime, Utc};

use super::calendar::{DeadlinePolicy, Deadlines};
use super::default_reply;
use super::departments::Departments;
use super::routing::{Route, RoutingTable};
use super::ticket::TicketState;

/// The policy and the fallback department, as configured.
#[derive(Debug, Clone)]
pub struct Intake {
    pub policy: DeadlinePolicy,
    /// Owns tickets of an account without a default routing rule.
    pub fallback_department: String,
    /// The names citizens read.
    pub departments: Departments,
}

/// A ticket's department, category and deadlines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub route: Route,
    pub deadlines: Deadlines,
    /// When the message arrived (its CreateTime): the citizen's window opens then.
    pub arrived: DateTime<Utc>,
}

impl Intake {
    /// Places a message whose words are `text`, received at `arrived`.
    pub fn place(&self, routing: &RoutingTable, text: &str, arrived: DateTime<Utc>) -> Placement {
        let route = routing.route(text, &self.fallback_department);
        let deadlines = self.policy.deadlines(arrived, &route.category);
        Placement {
            route,
            deadlines,
            arrived,
        }
    }

    /// The acknowledgement the citizen gets for `placement`.
    pub fn acknowledgement(&self, placement: &Placement) -> String {
        self.opened_acknowledgement(
            &placement.route.department,
            &placement.deadlines,
            placement.arrived,
        )
    }

    /// The acknowledgement of a ticket opened for `department` by a message received
    /// at `arrived`, promising its acknowledgement date; a resolve deadline past the
    /// message's 48-hour window comes with the hint to write again after it.
    pub fn opened_acknowledgement(
        &self,
        department: &str,
        deadlines: &Deadlines,
        arrived: DateTime<Utc>,
    ) -> String {
        let offset = self.policy.calendar.offset();
        let promise = default_reply::acknowledgement(
            self.departments.display(department),
            deadlines.acknowledge_due_at,
            offset,
        );
        promise + &default_reply::write_again_hint(deadlines.resolve_due_at, arrived, offset)
    }

    /// The acknowledgement for a message received at `arrived` that joins the
    /// citizen's active ticket (of `department`, in `state`, with `deadlines`): the
    /// consumer adds it to that ticket, so the citizen is told that ticket's
    /// department and deadline, not a new one's (with the hint to write again after its
    /// resolve deadline when that is past the message's 48-hour window).
    pub fn joined_acknowledgement(
        &self,
        department: &str,
        state: TicketState,
        deadlines: &Deadlines,
        arrived: DateTime<Utc>,
    ) -> String {
        let due = next_due(state, deadlines);
        let offset = self.policy.calendar.offset();
        let promise = default_reply::joined_acknowledgement(
            self.departments.display(department),
            (due > arrived).then_some(due),
            offset,
        );
        promise + &default_reply::write_again_hint(deadlines.resolve_due_at, arrived, offset)
    }
}

/// The deadline a ticket in `state` is held to next: acknowledging while it waits
/// for a first response, resolving after.
pub fn next_due(state: TicketState, deadlines: &Deadlines) -> DateTime<Utc> {
    match state {
        TicketState::Open | TicketState::Reopened => deadlines.acknowledge_due_at,
        TicketState::Acknowledged | TicketState::Answered | TicketState::Closed => {
            deadlines.resolve_due_at
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unrouted_message_goes_to_the_fallback_with_the_consultation_limits() {
        let intake = Intake {
            policy: DeadlinePolicy::default(),
            fallback_department: "citizen-services".into(),
            departments: Departments::parse("citizen-services=市民服务中心").unwrap(),
        };
        // Monday 2026-11-23 10:00 in China.
        let arrived = DateTime::parse_from_rfc3339("2026-11-23T02:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let placement = intake.place(&RoutingTable::default(), "你好", arrived);
        assert_eq!(placement.route.department, "citizen-services");
        assert_eq!(placement.route.category, "consultation");
        assert_eq!(
            placement.deadlines,
            intake.policy.deadlines(arrived, "consultation")
        );
        let acknowledgement = intake.acknowledgement(&placement);
        assert!(acknowledgement.contains("2026年11月24日17:30"));
        // The citizen reads the department's name, not its id.
        assert!(
            acknowledgement.contains("已转市民服务中心办理"),
            "{acknowledgement}"
        );
    }

    #[test]
    fn a_ticket_resolved_after_the_48_hour_window_tells_the_citizen_to_write_again_after_its_date()
    {
        use super::super::calendar::{TimeLimit, WorkCalendar};
        use super::super::default_reply::WRITE_AGAIN;
        // National Day week 2026: Oct 1–7 off.
        let calendar = WorkCalendar::new(
            chrono::FixedOffset::east_opt(8 * 3600).unwrap(),
            chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
            chrono::NaiveTime::from_hms_opt(17, 30, 0).unwrap(),
            WorkCalendar::parse_dates("2026-10-01..2026-10-07").unwrap(),
            Default::default(),
        )
        .unwrap();
        let intake = Intake {
            policy: DeadlinePolicy {
                calendar,
                ..DeadlinePolicy::default()
            },
            fallback_department: "citizen-services".into(),
            departments: Departments::parse("citizen-services=市民服务中心").unwrap(),
        };
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let placed = |arrived: &str| {
            let placement = intake.place(&RoutingTable::default(), "你好", at(arrived));
            intake.acknowledgement(&placement)
        };

        // Thursday Oct 1, 10:00 in China: acknowledged by Friday Oct 9, resolved
        // (3 working days) by Tuesday Oct 13: write after that date.
        let holiday = placed("2026-10-01T02:00:00Z");
        assert!(
            holiday.contains("将于2026年10月9日17:30前答复您"),
            "{holiday}"
        );
        assert!(holiday.contains(WRITE_AGAIN), "{holiday}");
        assert!(
            holiday.ends_with("请于2026年10月13日17:30后向本公众号发送任意消息，以接收答复。"),
            "{holiday}"
        );
        // Monday Nov 23, 10:00: acknowledged by Tuesday 17:30, inside the window, but
        // the answer may come up to Thursday 17:30 (3 working days), after it: such an
        // answer is held too, so the citizen is told to write after Thursday.
        let weekday = placed("2026-11-23T02:00:00Z");
        assert!(
            weekday.contains("将于2026年11月24日17:30前答复您"),
            "{weekday}"
        );
        assert!(
            weekday.ends_with("请于2026年11月26日17:30后向本公众号发送任意消息，以接收答复。"),
            "{weekday}"
        );
        // An emergency, resolved within 2 hours, is answered inside the window.
        let emergency = Intake {
            policy: DeadlinePolicy {
                resolve: Default::default(),
                default_resolve: TimeLimit::Hours(2),
                ..intake.policy.clone()
            },
            ..intake.clone()
        };
        let placement = emergency.place(
            &RoutingTable::default(),
            "着火了",
            at("2026-11-23T02:00:00Z"),
        );
        let told = emergency.acknowledgement(&placement);
        assert!(!told.contains(WRITE_AGAIN), "{told}");

        // A follow-up joining a ticket resolved after its window is told the same;
        // one after the resolve deadline is not (no date left to name).
        let deadlines = intake
            .policy
            .deadlines(at("2026-10-01T02:00:00Z"), "consultation");
        let joined = intake.joined_acknowledgement(
            "citizen-services",
            TicketState::Acknowledged,
            &deadlines,
            at("2026-10-09T02:00:00Z"),
        );
        assert!(
            joined.ends_with("请于2026年10月13日17:30后向本公众号发送任意消息，以接收答复。"),
            "{joined}"
        );
        let late = intake.joined_acknowledgement(
            "citizen-services",
            TicketState::Acknowledged,
            &deadlines,
            at("2026-10-14T02:00:00Z"),
        );
        assert!(!late.contains(WRITE_AGAIN), "{late}");
    }

    #[test]
    fn a_joining_message_is_told_its_tickets_department_and_next_deadline_or_none_once_passed() {
        let intake = Intake {
            policy: DeadlinePolicy::default(),
            fallback_department: "citizen-services".into(),
            departments: Departments::parse("social-security=市人社局").unwrap(),
        };
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let deadlines = Deadlines {
            acknowledge_due_at: at("2026-11-24T09:30:00Z"),
            resolve_due_at: at("2026-11-27T09:30:00Z"),
        };
        let arrived = at("2026-11-24T02:00:00Z");

        let open = intake.joined_acknowledgement(
            "social-security",
            TicketState::Open,
            &deadlines,
            arrived,
        );
        let acknowledged = intake.joined_acknowledgement(
            "social-security",
            TicketState::Acknowledged,
            &deadlines,
            arrived,
        );
        let late = intake.joined_acknowledgement(
            "social-security",
            TicketState::Open,
            &deadlines,
            at("2026-11-25T02:00:00Z"),
        );

        assert!(open.contains("由市人社局办理"), "{open}");
        assert!(open.contains("2026年11月24日17:30"), "{open}");
        assert!(
            acknowledged.contains("2026年11月27日17:30"),
            "{acknowledged}"
        );
        // The passed acknowledgement date is not promised again; the hint to write
        // again names the resolve deadline, still ahead.
        assert!(late.contains("将尽快答复您。"), "{late}");
        assert!(!late.contains("2026年11月24日"), "{late}");
        assert!(
            late.ends_with("请于2026年11月27日17:30后向本公众号发送任意消息，以接收答复。"),
            "{late}"
        );
    }
}
