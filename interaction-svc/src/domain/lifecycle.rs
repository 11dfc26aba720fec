//! What happens to a ticket ([`TicketEvent`]) and what it leads to: the state after
//! it, its name in the history and on the wire ([`ChangeKind`]), and whether the
//! history records it. One store function (`store::tickets::lifecycle::change`)
//! applies every event, whoever causes it.

use proto::events::v1 as ev;

use super::calendar::Deadlines;
use super::ticket::{TicketAction, TicketState, TransitionError};

/// The two deadlines of a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Deadline {
    /// A first human response (while open or reopened).
    Acknowledge,
    /// Resolution (while not closed).
    Resolve,
}

impl Deadline {
    /// The name used in notes, event ids and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Acknowledge => "acknowledge",
            Self::Resolve => "resolve",
        }
    }
}

/// Something that happens to a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketEvent<'a> {
    /// A citizen's message opened it (the row was just inserted).
    Opened,
    /// A person in the department has seen it.
    Acknowledged,
    /// Moved to another department (`None`: stays) and/or agent (empty clears).
    Assigned {
        department: Option<&'a str>,
        assignee: &'a str,
    },
    /// The department's answer left (sent, or held for the citizen).
    Replied,
    Closed,
    /// Reopened for a new round, due again by `Deadlines` (counted from the reopening
    /// as at intake); the first round's overdue markers no longer apply.
    Reopened(Deadlines),
    /// The citizen wrote again while the ticket is active.
    CitizenMessage,
    /// A deadline passed unmet.
    Overdue(Deadline),
    /// The citizen rated the answer of the closed ticket, 1..=5, with message
    /// `message_event_id` (the reply path looks for it to thank them).
    Rated {
        rating: u8,
        message_event_id: &'a str,
    },
}

/// The name of a change: the history's action and the subject's last token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    Opened,
    Acknowledged,
    Assigned,
    Replied,
    Closed,
    Reopened,
    Overdue,
    Rated,
    CitizenMessage,
}

impl ChangeKind {
    /// The name in the history and the subject (`interaction.{account}.ticket.{name}`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opened => "opened",
            Self::Acknowledged => "acknowledged",
            Self::Assigned => "assigned",
            Self::Replied => "replied",
            Self::Closed => "closed",
            Self::Reopened => "reopened",
            Self::Overdue => "overdue",
            Self::Rated => "rated",
            Self::CitizenMessage => "citizen_message",
        }
    }
}

impl TicketEvent<'_> {
    /// What the change is called.
    pub fn kind(&self) -> ChangeKind {
        match self {
            Self::Opened => ChangeKind::Opened,
            Self::Acknowledged => ChangeKind::Acknowledged,
            Self::Assigned { .. } => ChangeKind::Assigned,
            Self::Replied => ChangeKind::Replied,
            Self::Closed => ChangeKind::Closed,
            Self::Reopened(_) => ChangeKind::Reopened,
            Self::CitizenMessage => ChangeKind::CitizenMessage,
            Self::Overdue(_) => ChangeKind::Overdue,
            Self::Rated { .. } => ChangeKind::Rated,
        }
    }

    /// The state after the event, from `from` (`None`: the ticket is new).
    pub fn apply(&self, from: Option<TicketState>) -> Result<TicketState, TransitionError> {
        let Some(from) = from else {
            return Ok(TicketState::Open);
        };
        let action = match self {
            // Opening an existing ticket, or rating an active one, is refused as
            // the nearest action the state machine knows.
            Self::Opened => return Err(TransitionError::new(from, TicketAction::Reopen)),
            Self::Acknowledged => TicketAction::Acknowledge,
            Self::Assigned { .. } => TicketAction::Assign,
            Self::Replied => TicketAction::Reply,
            Self::Closed => TicketAction::Close,
            Self::Reopened(_) => TicketAction::Reopen,
            Self::CitizenMessage => TicketAction::CitizenMessage,
            // Deadlines pass whatever the state; the sweeper picks which tickets.
            Self::Overdue(_) => return Ok(from),
            Self::Rated { .. } if from == TicketState::Closed => return Ok(from),
            Self::Rated { .. } => return Err(TransitionError::new(from, TicketAction::Close)),
        };
        from.apply(action)
    }

    /// Whether the ticket's history records the event: every one, except a
    /// citizen's follow-up that changes nothing (it is in the thread already).
    pub fn is_history(&self, from: Option<TicketState>, to: TicketState) -> bool {
        !matches!(self, Self::CitizenMessage) || from != Some(to)
    }
}

impl From<ChangeKind> for ev::TicketChangeKind {
    fn from(kind: ChangeKind) -> Self {
        match kind {
            ChangeKind::Opened => Self::Opened,
            ChangeKind::Acknowledged => Self::Acknowledged,
            ChangeKind::Assigned => Self::Assigned,
            ChangeKind::Replied => Self::Replied,
            ChangeKind::Closed => Self::Closed,
            ChangeKind::Reopened => Self::Reopened,
            ChangeKind::Overdue => Self::Overdue,
            ChangeKind::Rated => Self::Rated,
            ChangeKind::CitizenMessage => Self::CitizenMessage,
        }
    }
}

impl From<TicketState> for ev::TicketState {
    fn from(state: TicketState) -> Self {
        match state {
            TicketState::Open => Self::Open,
            TicketState::Acknowledged => Self::Acknowledged,
            TicketState::Answered => Self::Answered,
            TicketState::Closed => Self::Closed,
            TicketState::Reopened => Self::Reopened,
        }
    }
}

impl From<Deadline> for ev::TicketDeadline {
    fn from(deadline: Deadline) -> Self {
        match deadline {
            Deadline::Acknowledge => Self::Acknowledge,
            Deadline::Resolve => Self::Resolve,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TicketState as S;

    #[test]
    fn events_lead_to_the_state_machines_states() {
        assert_eq!(TicketEvent::Opened.apply(None), Ok(S::Open));
        assert_eq!(TicketEvent::Replied.apply(Some(S::Open)), Ok(S::Answered));
        assert_eq!(
            TicketEvent::Overdue(Deadline::Resolve).apply(Some(S::Answered)),
            Ok(S::Answered)
        );
        let rated = TicketEvent::Rated {
            rating: 5,
            message_event_id: "m",
        };
        assert_eq!(rated.apply(Some(S::Closed)), Ok(S::Closed));
        assert!(rated.apply(Some(S::Open)).is_err());
        assert!(TicketEvent::Opened.apply(Some(S::Open)).is_err());
        assert!(TicketEvent::Replied.apply(Some(S::Closed)).is_err());
    }

    #[test]
    fn a_follow_up_that_changes_nothing_stays_out_of_the_history() {
        let message = TicketEvent::CitizenMessage;
        assert!(!message.is_history(Some(S::Open), S::Open));
        assert!(message.is_history(Some(S::Answered), S::Acknowledged));
        assert!(TicketEvent::Overdue(Deadline::Acknowledge).is_history(Some(S::Open), S::Open));
    }

    #[test]
    fn kinds_are_named_as_in_the_subjects() {
        assert_eq!(ChangeKind::CitizenMessage.as_str(), "citizen_message");
        assert_eq!(
            ev::TicketChangeKind::from(ChangeKind::CitizenMessage).as_str_name(),
            "TICKET_CHANGE_KIND_CITIZEN_MESSAGE"
        );
    }
}
