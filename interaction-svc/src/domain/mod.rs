//! Pure types and rules of citizen interaction; no I/O.

pub mod calendar;
pub mod default_reply;
pub mod departments;
pub mod directory;
pub mod follower;
pub mod intake;
pub mod lifecycle;
pub mod retention;
pub mod routing;
pub mod rules;
pub mod ticket;

pub use reply_rules::{incoming, rating};

pub use calendar::{DeadlinePolicy, Deadlines, TimeLimit, WorkCalendar};
pub use departments::Departments;
pub use incoming::{CitizenMessage, Incoming};
pub use intake::{Intake, Placement};
pub use lifecycle::{ChangeKind, Deadline, TicketEvent};
pub use routing::{Route, RoutingRule, RoutingTable};
pub use rules::{
    AutoAnswer, Decision, Facts, MatchKind, NewsItem, Reply, ReplyContent, ReplyRule, RuleError,
    RuleSet,
};
pub use ticket::{
    Agent, AnswerText, Delivery, PageSize, PageToken, Scope, TicketAction, TicketId, TicketState,
    TransitionError,
};
