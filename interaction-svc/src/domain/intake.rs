//! Where a citizen's new ticket goes and when it is due: routing plus the deadline
//! policy, at the message's CreateTime. The consumer stores the result; the reply
//! path tells the citizen the same deadline at once.

use chrono::{DateTime, Utc};

use super::calendar::{DeadlinePolicy, Deadlines};
use super::default_reply;
use super::departments::Departments;
use super::routing::{Route, RoutingTable};

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
}

impl Intake {
    /// Places a message whose words are `text`, received at `arrived`.
    pub fn place(&self, routing: &RoutingTable, text: &str, arrived: DateTime<Utc>) -> Placement {
        let route = routing.route(text, &self.fallback_department);
        let deadlines = self.policy.deadlines(arrived, &route.category);
        Placement { route, deadlines }
    }

    /// The acknowledgement the citizen gets for `placement`.
    pub fn acknowledgement(&self, placement: &Placement) -> String {
        default_reply::acknowledgement(
            self.departments.display(&placement.route.department),
            placement.deadlines.acknowledge_due_at,
            self.policy.calendar.offset(),
        )
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
}
