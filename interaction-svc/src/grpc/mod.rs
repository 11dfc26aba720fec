//! `interaction.v1.InteractionService`: thin handlers that decode, check the
//! caller's role, call one `app` function, and encode. One file per area, as the
//! RPCs are grouped: tickets (and the queue watch), rules, followers.
//!
//! Permissions: reading tickets and followers needs `agent` or `viewer`; acting on
//! tickets and tagging followers needs `agent`; rules and erasing a citizen's data
//! need `admin`. Which tickets a department sees is the application's rule
//! (`domain::Agent::scope`).

mod convert;
mod error;
mod followers;
mod rules;
mod tickets;
mod watch;

use platform::Role;
use platform::grpc::AuthInterceptor;
use platform::ids::{AccountId, OpenId, RequestId};
use proto::interaction::v1 as pb;
use tonic::{Request, Response, Status};

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::app;
use crate::domain::Departments;
pub use error::GrpcError;
pub use watch::{QueueStream, QueueWatch, WatchLimits};

/// Roles that may read queues, tickets and followers.
const READERS: &[Role] = &[Role::Agent, Role::Viewer];
/// Roles that may act on tickets and tag followers.
const AGENTS: &[Role] = &[Role::Agent];
/// Roles that may change rules and erase a citizen's data.
const ADMINS: &[Role] = &[Role::Admin];

/// The most characters of a note, an agent's or a department's name.
const MAX_NOTE_CHARS: usize = 500;
const MAX_NAME_CHARS: usize = 64;

/// The gRPC service implementation.
#[derive(Clone)]
pub struct InteractionGrpc {
    tickets: app::Tickets,
    rules: app::Rules,
    followers: app::Followers,
    watch: QueueWatch,
    departments: Arc<Departments>,
    /// The accounts rules may name; `None`: any (no `WECHAT_ACCOUNTS` configured).
    accounts: Option<Arc<BTreeSet<String>>>,
    /// The API keys in use: which accounts each department's agents reach.
    keys: AuthInterceptor,
}

impl InteractionGrpc {
    /// The service over its use cases, the queue watch and the install's departments
    /// (where tickets may be assigned and routed).
    pub fn new(
        tickets: app::Tickets,
        rules: app::Rules,
        followers: app::Followers,
        watch: QueueWatch,
        departments: Departments,
        accounts: Option<BTreeSet<String>>,
        keys: AuthInterceptor,
    ) -> Self {
        Self {
            tickets,
            rules,
            followers,
            watch,
            departments: Arc::new(departments),
            accounts: accounts.map(Arc::new),
            keys,
        }
    }

    /// Refuses an account the install does not serve: its rules would never fire.
    fn configured_account(&self, account: &str) -> Result<(), GrpcError> {
        match &self.accounts {
            Some(accounts) if !accounts.contains(account) => Err(GrpcError::invalid(
                "account",
                "is not an account of this install (WECHAT_ACCOUNTS)",
            )),
            _ => Ok(()),
        }
    }

    /// Refuses a department the install does not have: a ticket sent there would
    /// vanish from every queue.
    fn known_department(&self, field: &'static str, id: &str) -> Result<(), GrpcError> {
        if self.departments.is_known(id) {
            return Ok(());
        }
        Err(GrpcError::invalid(
            field,
            format!("{id} is not a department of this install"),
        ))
    }

    /// Refuses a department none of whose keys reaches `account`: a ticket of that
    /// account sent there would be seen by nobody (its agents get NOT_FOUND, the sender
    /// loses it from its queue). A department no key names (an escalation desk that
    /// only receives work) is accepted.
    fn serves_account(
        &self,
        field: &'static str,
        id: &str,
        account: &str,
    ) -> Result<(), GrpcError> {
        match self.keys.department_reaches(id, account) {
            Some(false) => Err(GrpcError::invalid(
                field,
                format!(
                    "{id} has no API key that reaches account {account}; its agents could not see the ticket"
                ),
            )),
            Some(true) | None => Ok(()),
        }
    }
}

#[tonic::async_trait]
impl pb::interaction_service_server::InteractionService for InteractionGrpc {
    type WatchQueueStream = QueueStream;

    async fn watch_queue(
        &self,
        request: Request<pb::WatchQueueRequest>,
    ) -> Result<Response<Self::WatchQueueStream>, Status> {
        self.watch_queue_stream(request).await
    }

    async fn list_tickets(
        &self,
        request: Request<pb::ListTicketsRequest>,
    ) -> Result<Response<pb::ListTicketsResponse>, Status> {
        InteractionGrpc::list_tickets(self, request).await
    }

    async fn get_ticket(
        &self,
        request: Request<pb::GetTicketRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        InteractionGrpc::get_ticket(self, request).await
    }

    async fn acknowledge_ticket(
        &self,
        request: Request<pb::TicketActionRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        InteractionGrpc::acknowledge_ticket(self, request).await
    }

    async fn assign_ticket(
        &self,
        request: Request<pb::AssignTicketRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        InteractionGrpc::assign_ticket(self, request).await
    }

    async fn reply_to_ticket(
        &self,
        request: Request<pb::ReplyToTicketRequest>,
    ) -> Result<Response<pb::ReplyToTicketResponse>, Status> {
        InteractionGrpc::reply_to_ticket(self, request).await
    }

    async fn close_ticket(
        &self,
        request: Request<pb::TicketActionRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        InteractionGrpc::close_ticket(self, request).await
    }

    async fn reopen_ticket(
        &self,
        request: Request<pb::TicketActionRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        InteractionGrpc::reopen_ticket(self, request).await
    }

    async fn list_reply_rules(
        &self,
        request: Request<pb::ListReplyRulesRequest>,
    ) -> Result<Response<pb::ListReplyRulesResponse>, Status> {
        InteractionGrpc::list_reply_rules(self, request).await
    }

    async fn create_reply_rule(
        &self,
        request: Request<pb::CreateReplyRuleRequest>,
    ) -> Result<Response<pb::ReplyRule>, Status> {
        InteractionGrpc::create_reply_rule(self, request).await
    }

    async fn update_reply_rule(
        &self,
        request: Request<pb::ReplyRule>,
    ) -> Result<Response<pb::ReplyRule>, Status> {
        InteractionGrpc::update_reply_rule(self, request).await
    }

    async fn delete_reply_rule(
        &self,
        request: Request<pb::DeleteRuleRequest>,
    ) -> Result<Response<pb::DeleteRuleResponse>, Status> {
        InteractionGrpc::delete_reply_rule(self, request).await
    }

    async fn list_routing_rules(
        &self,
        request: Request<pb::ListRoutingRulesRequest>,
    ) -> Result<Response<pb::ListRoutingRulesResponse>, Status> {
        InteractionGrpc::list_routing_rules(self, request).await
    }

    async fn create_routing_rule(
        &self,
        request: Request<pb::CreateRoutingRuleRequest>,
    ) -> Result<Response<pb::RoutingRule>, Status> {
        InteractionGrpc::create_routing_rule(self, request).await
    }

    async fn delete_routing_rule(
        &self,
        request: Request<pb::DeleteRuleRequest>,
    ) -> Result<Response<pb::DeleteRuleResponse>, Status> {
        InteractionGrpc::delete_routing_rule(self, request).await
    }

    async fn get_follower(
        &self,
        request: Request<pb::GetFollowerRequest>,
    ) -> Result<Response<pb::Follower>, Status> {
        InteractionGrpc::get_follower(self, request).await
    }

    async fn list_followers(
        &self,
        request: Request<pb::ListFollowersRequest>,
    ) -> Result<Response<pb::ListFollowersResponse>, Status> {
        InteractionGrpc::list_followers(self, request).await
    }

    async fn tag_follower(
        &self,
        request: Request<pb::TagFollowerRequest>,
    ) -> Result<Response<pb::Follower>, Status> {
        InteractionGrpc::tag_follower(self, request).await
    }

    async fn erase_citizen(
        &self,
        request: Request<pb::EraseCitizenRequest>,
    ) -> Result<Response<pb::EraseCitizenResponse>, Status> {
        InteractionGrpc::erase_citizen(self, request).await
    }
}

/// A trimmed optional free-text field (a note, a reason) of at most `max`
/// characters; line breaks and tabs are text.
pub(crate) fn bounded<'a>(
    field: &'static str,
    raw: &'a str,
    max: usize,
) -> Result<&'a str, GrpcError> {
    let value = trimmed_at_most(field, raw, max)?;
    crate::domain::rules::check_text(field, value).map_err(|_| {
        GrpcError::invalid(
            field,
            "must not hold control characters other than line breaks and tabs",
        )
    })?;
    Ok(value)
}

/// A trimmed optional name (an agent, an assignee, a department id) of at most `max`
/// characters, with no control character at all: it is written into the history's
/// actor trail, where a line break would forge a line ("王芳\n2026-12-07 …").
pub(crate) fn name<'a>(
    field: &'static str,
    raw: &'a str,
    max: usize,
) -> Result<&'a str, GrpcError> {
    let value = trimmed_at_most(field, raw, max)?;
    // U+2028/U+2029 are not control characters but break a line as \n does.
    if value
        .chars()
        .any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
    {
        return Err(GrpcError::invalid(field, NAME_CONTROL_REFUSED));
    }
    Ok(value)
}

/// What [`name`] says of a name with a control character or a line break.
pub(crate) const NAME_CONTROL_REFUSED: &str =
    "must not hold control characters (line breaks and tabs included)";

fn trimmed_at_most<'a>(
    field: &'static str,
    raw: &'a str,
    max: usize,
) -> Result<&'a str, GrpcError> {
    let value = raw.trim();
    if value.chars().count() > max {
        return Err(GrpcError::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(value)
}

/// A caller's id for a create (`CreateReplyRuleRequest.request_id`, …), trimmed:
/// `None` when empty; checked as `platform::ids::RequestId` checks every service's.
pub(crate) fn request_id(raw: &str) -> Result<Option<&str>, GrpcError> {
    RequestId::parse(raw).map_err(|e| GrpcError::invalid("request_id", e.to_string()))?;
    Ok(Some(raw.trim()).filter(|value| !value.is_empty()))
}

/// A trimmed field that must be set: an identifier, so no control character at all
/// and at most 128 characters.
pub(crate) fn required<'a>(field: &'static str, raw: &'a str) -> Result<&'a str, GrpcError> {
    match raw.trim() {
        "" => Err(GrpcError::invalid(field, "must not be empty")),
        value if value.chars().any(char::is_control) => Err(GrpcError::invalid(
            field,
            "must not hold control characters",
        )),
        value if value.chars().count() > 128 => {
            Err(GrpcError::invalid(field, "must be at most 128 characters"))
        }
        value => Ok(value),
    }
}

/// A trimmed optional identifier (a filter, a page token): `None` when empty, and
/// like [`required`] otherwise.
/// The account a request names, checked as [`required`] checks any field.
pub(crate) fn account_id(raw: &str) -> Result<AccountId, GrpcError> {
    let value = required("account", raw)?;
    AccountId::parse(value).map_err(|error| GrpcError::invalid("account", error.to_string()))
}

/// The citizen a request names, checked as [`required`] checks any field.
pub(crate) fn open_id(raw: &str) -> Result<OpenId, GrpcError> {
    let value = required("openid", raw)?;
    OpenId::parse(value).map_err(|error| GrpcError::invalid("openid", error.to_string()))
}

pub(crate) fn non_empty(field: &'static str, raw: &str) -> Result<Option<String>, GrpcError> {
    match raw.trim() {
        "" => Ok(None),
        value => required(field, value).map(|v| Some(v.to_owned())),
    }
}
