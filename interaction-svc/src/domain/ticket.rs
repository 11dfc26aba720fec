//! Tickets: identity, states and the paging of department queues.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Utc};
use proto::interaction::v1 as pb;

/// Why a ticket value from outside is unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TicketInputError {
    #[error("ticket id {0:?} is not a UUID")]
    BadId(String),
    #[error("unknown ticket state {0}")]
    BadState(i32),
    #[error("page_size must be at most {max}", max = PageSize::MAX)]
    PageTooLarge,
    #[error("page_token is malformed")]
    BadPageToken,
}

/// A ticket's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TicketId(pub uuid::Uuid);

impl TicketId {
    /// A new, time-ordered id.
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7())
    }

    /// Parses an id given by a caller.
    pub fn parse(raw: &str) -> Result<Self, TicketInputError> {
        uuid::Uuid::parse_str(raw.trim())
            .map(Self)
            .map_err(|_| TicketInputError::BadId(raw.to_owned()))
    }
}

impl fmt::Display for TicketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Where a ticket stands: open → acknowledged → answered → closed (→ reopened).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TicketState {
    Open,
    Acknowledged,
    Answered,
    Closed,
    Reopened,
}

impl TicketState {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Acknowledged => "acknowledged",
            Self::Answered => "answered",
            Self::Closed => "closed",
            Self::Reopened => "reopened",
        }
    }
}

impl FromStr for TicketState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "open" => Self::Open,
            "acknowledged" => Self::Acknowledged,
            "answered" => Self::Answered,
            "closed" => Self::Closed,
            "reopened" => Self::Reopened,
            other => return Err(format!("unknown ticket state {other:?}")),
        })
    }
}

impl TryFrom<i32> for TicketState {
    type Error = TicketInputError;
    fn try_from(value: i32) -> Result<Self, Self::Error> {
        match pb::TicketState::try_from(value) {
            Ok(pb::TicketState::Open) => Ok(Self::Open),
            Ok(pb::TicketState::Acknowledged) => Ok(Self::Acknowledged),
            Ok(pb::TicketState::Answered) => Ok(Self::Answered),
            Ok(pb::TicketState::Closed) => Ok(Self::Closed),
            Ok(pb::TicketState::Reopened) => Ok(Self::Reopened),
            Ok(pb::TicketState::Unspecified) | Err(_) => Err(TicketInputError::BadState(value)),
        }
    }
}

impl From<TicketState> for pb::TicketState {
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

/// Something that happens to a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TicketAction {
    /// A person in the department has seen it.
    Acknowledge,
    /// Moved to another department or agent.
    Assign,
    /// The department answered the citizen.
    Reply,
    Close,
    Reopen,
    /// The citizen wrote again while the ticket is active.
    CitizenMessage,
}

impl TicketAction {
    /// The name recorded in the ticket's history and used in event subjects.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Acknowledge => "acknowledged",
            Self::Assign => "assigned",
            Self::Reply => "replied",
            Self::Close => "closed",
            Self::Reopen => "reopened",
            Self::CitizenMessage => "citizen_message",
        }
    }
}

/// An action that the ticket's state does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot apply {action} to a ticket that is {from}", action = .action.as_str(), from = .from.as_str())]
pub struct TransitionError {
    pub from: TicketState,
    pub action: TicketAction,
}

impl TransitionError {
    /// `action` refused in state `from`.
    pub fn new(from: TicketState, action: TicketAction) -> Self {
        Self { from, action }
    }
}

impl TicketState {
    /// Whether the ticket still needs the department (anything but closed).
    pub fn is_active(self) -> bool {
        self != Self::Closed
    }

    /// The state after `action`: open → acknowledged → answered → closed (→ reopened).
    pub fn apply(self, action: TicketAction) -> Result<Self, TransitionError> {
        use TicketAction as A;
        use TicketState as S;
        let refused = Err(TransitionError { from: self, action });
        match (self, action) {
            (S::Open | S::Reopened, A::Acknowledge) => Ok(S::Acknowledged),
            (S::Closed, A::Assign | A::Reply | A::Close | A::CitizenMessage) => refused,
            (state, A::Assign) => Ok(state),
            (_, A::Reply) => Ok(S::Answered),
            (_, A::Close) => Ok(S::Closed),
            (S::Closed, A::Reopen) => Ok(S::Reopened),
            // A follow-up after an answer needs the department again.
            (S::Answered, A::CitizenMessage) => Ok(S::Acknowledged),
            (state, A::CitizenMessage) => Ok(state),
            (_, A::Acknowledge | A::Reopen) => refused,
        }
    }
}

/// Which tickets a caller may see and act on: `None` for every department
/// (admins), else one department's. Another department's ticket is reported as not
/// found, so ids cannot be probed across departments.
pub type Scope<'a> = Option<&'a str>;

/// Whether a ticket owned by `department` is inside `scope`.
pub fn in_scope(scope: Scope<'_>, department: &str) -> bool {
    scope.is_none_or(|own| own == department)
}

/// A department (or an admin) acting on tickets through its API key, and the agent
/// it names, if any.
#[derive(Debug, Clone, Copy)]
pub struct Agent<'a> {
    pub department: &'a str,
    /// Admins see and act on every department's tickets.
    pub admin: bool,
    /// The person inside the department (`ReplyToTicket`'s `agent`); may be empty.
    pub name: &'a str,
    /// The accounts the key reaches; `None`: every account. Even an admin sees only
    /// its key's accounts: a county's admin is not the city's.
    pub accounts: Option<&'a BTreeSet<String>>,
    /// The key's department is the supervision office (督办,
    /// `INTERACTION_ESCALATION_DEPARTMENT`), which is told of every overdue ticket.
    pub supervises: bool,
}

impl Agent<'_> {
    /// The departments whose tickets this agent may see and act on.
    pub fn scope(&self) -> Scope<'_> {
        (!self.admin).then_some(self.department)
    }

    /// Whether a ticket of `account` owned by `department` is this agent's to see
    /// and act on; any other ticket must look absent.
    pub fn reaches(&self, account: &str, department: &str) -> bool {
        in_scope(self.scope(), department) && self.accounts.is_none_or(|set| set.contains(account))
    }

    /// Whether this agent may read (not act on) a ticket of `account` owned by
    /// `department`: its own, and for the supervision office every overdue ticket of
    /// its accounts. 督办 follows up a breached deadline with the owning department
    /// (domain.md §2: the closed loop's 督办, escalation on breach), so it must open
    /// the tickets WatchQueue announces to it as overdue; answering, assigning or
    /// closing them stays the owner's (`reaches`).
    pub fn reads(&self, account: &str, department: &str, overdue: bool) -> bool {
        self.reaches(account, department)
            || (self.reads_overdue_everywhere(overdue)
                && self.accounts.is_none_or(|set| set.contains(account)))
    }

    /// Whether a list of overdue tickets (`overdue_only`) may span every department:
    /// the supervision office's view, by the rule of `reads`.
    pub fn reads_overdue_everywhere(&self, overdue_only: bool) -> bool {
        self.supervises && overdue_only
    }

    /// Who acted, for the history and the event: the department, plus the agent if
    /// named (`social-security/王芳`).
    pub fn actor(&self) -> String {
        if self.name.is_empty() {
            self.department.to_owned()
        } else {
            format!("{}/{}", self.department, self.name)
        }
    }
}

/// The actor of what the platform does by itself (the clock's escalations, the
/// rating question) and the author of its messages. No department may have this
/// id, or its acts would read as the platform's in the history.
pub const SYSTEM_ACTOR: &str = "system";

/// Why an answer's text cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerTextError {
    #[error("must not be empty")]
    Empty,
    #[error("is {0} bytes; WeChat takes at most {max} bytes of UTF-8", max = AnswerText::MAX_BYTES)]
    TooLong(usize),
    #[error("must not hold control characters")]
    Control,
}

/// The text of an answer to a citizen, trimmed and within WeChat's limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerText(String);

impl AnswerText {
    /// The most an answer may hold, in UTF-8 bytes. WeChat documents no firm limit
    /// for customer-service text; 2048 bytes is its passive-reply limit and a safe
    /// bound (about 680 Chinese characters).
    pub const MAX_BYTES: usize = 2048;

    /// Checks an answer given by a department.
    pub fn parse(raw: &str) -> Result<Self, AnswerTextError> {
        match raw.trim() {
            "" => Err(AnswerTextError::Empty),
            text if text.len() > Self::MAX_BYTES => Err(AnswerTextError::TooLong(text.len())),
            // NUL cannot be stored, so an answer holding it would be sent and then
            // not recorded; no control character belongs in a message anyway.
            text if text
                .chars()
                .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) =>
            {
                Err(AnswerTextError::Control)
            }
            text => Ok(Self(text.to_owned())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How an outbound message left (or did not yet leave) the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Accepted by WeChat's customer-service API.
    Sent,
    /// Waiting for the citizen to open a new 48-hour window.
    Held,
}

impl Delivery {
    /// The name stored in `ticket_messages.delivery`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Held => "held",
        }
    }
}

/// How many tickets a page holds: 1..=200, 50 when the caller says 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSize(u32);

impl PageSize {
    pub const DEFAULT: u32 = 50;
    pub const MAX: u32 = 200;

    /// Checks a requested page size.
    pub fn parse(requested: u32) -> Result<Self, TicketInputError> {
        match requested {
            0 => Ok(Self(Self::DEFAULT)),
            n if n <= Self::MAX => Ok(Self(n)),
            _ => Err(TicketInputError::PageTooLarge),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

/// The position after the last ticket of a page, in queue order (newest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageToken {
    pub opened_at: DateTime<Utc>,
    pub id: TicketId,
}

impl PageToken {
    /// Encodes the token as `{micros}_{uuid}`.
    pub fn encode(&self) -> String {
        format!("{}_{}", self.opened_at.timestamp_micros(), self.id)
    }

    /// Decodes a token from a caller; empty means the first page.
    pub fn decode(raw: &str) -> Result<Option<Self>, TicketInputError> {
        if raw.is_empty() {
            return Ok(None);
        }
        let (micros, id) = raw.split_once('_').ok_or(TicketInputError::BadPageToken)?;
        let micros: i64 = micros.parse().map_err(|_| TicketInputError::BadPageToken)?;
        let opened_at = DateTime::from_timestamp_micros(micros)
            .filter(storable)
            .ok_or(TicketInputError::BadPageToken)?;
        let id = TicketId::parse(id).map_err(|_| TicketInputError::BadPageToken)?;
        Ok(Some(Self { opened_at, id }))
    }
}

/// Whether PostgreSQL can hold `at` (`timestamptz` starts in 4713 BC): a token
/// before that is no ticket's position and must not reach the query, which would
/// fail as INTERNAL. Year 1 is a bound no ticket comes near.
fn storable(at: &DateTime<Utc>) -> bool {
    at.year() >= 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_through_storage_and_wire() {
        for state in [
            TicketState::Open,
            TicketState::Acknowledged,
            TicketState::Answered,
            TicketState::Closed,
            TicketState::Reopened,
        ] {
            assert_eq!(state.as_str().parse::<TicketState>(), Ok(state));
            assert_eq!(
                TicketState::try_from(pb::TicketState::from(state) as i32),
                Ok(state)
            );
        }
        assert_eq!(TicketState::try_from(0), Err(TicketInputError::BadState(0)));
        assert_eq!(
            TicketState::try_from(99),
            Err(TicketInputError::BadState(99))
        );
    }

    #[test]
    fn the_ticket_life_cycle_allows_only_its_transitions() {
        use TicketAction as A;
        use TicketState as S;
        assert_eq!(S::Open.apply(A::Acknowledge), Ok(S::Acknowledged));
        assert_eq!(S::Acknowledged.apply(A::Reply), Ok(S::Answered));
        assert_eq!(S::Open.apply(A::Reply), Ok(S::Answered));
        assert_eq!(S::Answered.apply(A::Close), Ok(S::Closed));
        assert_eq!(S::Closed.apply(A::Reopen), Ok(S::Reopened));
        assert_eq!(S::Reopened.apply(A::Acknowledge), Ok(S::Acknowledged));
        assert_eq!(S::Answered.apply(A::CitizenMessage), Ok(S::Acknowledged));
        assert_eq!(S::Open.apply(A::CitizenMessage), Ok(S::Open));
        assert_eq!(S::Acknowledged.apply(A::Assign), Ok(S::Acknowledged));

        for refused in [
            (S::Closed, A::Reply),
            (S::Closed, A::Close),
            (S::Closed, A::Assign),
            (S::Open, A::Reopen),
            (S::Acknowledged, A::Acknowledge),
            (S::Answered, A::Acknowledge),
        ] {
            assert_eq!(
                refused.0.apply(refused.1),
                Err(TransitionError {
                    from: refused.0,
                    action: refused.1
                }),
                "{refused:?}"
            );
        }
        assert_eq!(
            S::Closed.apply(A::Reply).unwrap_err().to_string(),
            "cannot apply replied to a ticket that is closed"
        );
    }

    #[test]
    fn answers_are_trimmed_and_held_to_wechats_limit() {
        assert_eq!(AnswerText::parse("  好的 ").unwrap().as_str(), "好的");
        assert_eq!(AnswerText::parse("  "), Err(AnswerTextError::Empty));
        assert_eq!(
            AnswerText::parse(&"长".repeat(700)),
            Err(AnswerTextError::TooLong(2100))
        );
        assert!(AnswerText::parse(&"长".repeat(682)).is_ok());
    }

    #[test]
    fn an_agent_acts_in_its_departments_scope_under_its_name() {
        let agent = Agent {
            department: "social-security",
            admin: false,
            name: "王芳",
            accounts: None,
            supervises: false,
        };
        assert_eq!(agent.scope(), Some("social-security"));
        assert_eq!(agent.actor(), "social-security/王芳");
        assert!(agent.reaches("chenzhou", "social-security"));
        assert!(!agent.reaches("chenzhou", "transport"));
        let county: BTreeSet<String> = ["yizhang".to_owned()].into();
        let admin = Agent {
            department: "city-office",
            admin: true,
            name: "",
            accounts: Some(&county),
            supervises: false,
        };
        assert_eq!(admin.scope(), None);
        assert_eq!(admin.actor(), "city-office");
        assert!(admin.reaches("yizhang", "transport"));
        assert!(!admin.reaches("chenzhou", "transport"));
    }

    #[test]
    fn the_supervision_office_reads_overdue_tickets_of_its_accounts_and_acts_on_none() {
        let county: BTreeSet<String> = ["yizhang".to_owned()].into();
        let supervision = Agent {
            department: "supervision",
            admin: false,
            name: "",
            accounts: Some(&county),
            supervises: true,
        };
        assert!(supervision.reads("yizhang", "transport", true));
        assert!(!supervision.reads("yizhang", "transport", false));
        assert!(!supervision.reads("chenzhou", "transport", true));
        assert!(!supervision.reaches("yizhang", "transport"));
        assert!(supervision.reads_overdue_everywhere(true));
        assert!(!supervision.reads_overdue_everywhere(false));
        let agent = Agent {
            supervises: false,
            ..supervision
        };
        assert!(!agent.reads("yizhang", "transport", true));
        assert!(!agent.reads_overdue_everywhere(true));
    }

    #[test]
    fn page_size_defaults_and_caps() {
        assert_eq!(PageSize::parse(0).unwrap().get(), 50);
        assert_eq!(PageSize::parse(200).unwrap().get(), 200);
        assert_eq!(PageSize::parse(201), Err(TicketInputError::PageTooLarge));
    }

    #[test]
    fn page_tokens_round_trip_and_reject_garbage() {
        let token = PageToken {
            opened_at: DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
            id: TicketId::generate(),
        };
        assert_eq!(PageToken::decode(&token.encode()), Ok(Some(token)));
        assert_eq!(PageToken::decode(""), Ok(None));
        assert_eq!(
            PageToken::decode("abc"),
            Err(TicketInputError::BadPageToken)
        );
        assert_eq!(
            PageToken::decode("12_not-a-uuid"),
            Err(TicketInputError::BadPageToken)
        );
        // Before 4713 BC: PostgreSQL cannot hold it.
        assert_eq!(
            PageToken::decode(&format!("-300000000000000000_{}", TicketId::generate())),
            Err(TicketInputError::BadPageToken)
        );
    }
}
