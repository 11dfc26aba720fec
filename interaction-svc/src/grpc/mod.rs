//! `interaction.v1.InteractionService`: thin handlers that decode, check the
//! caller, call the store or the deliverer, and encode.
//!
//! Permissions: reading tickets and followers needs `agent` or `viewer`; acting on
//! tickets and tagging followers needs `agent`; rules need `admin`. A department
//! sees and acts on its own tickets only (another department's ticket is reported
//! as not found, so ids cannot be probed); admins see all.

mod convert;
mod error;
mod watch;

use std::sync::Arc;

use platform::grpc::caller;
use platform::{Caller, Role};
use proto::interaction::v1 as pb;
use sqlx::PgPool;
use tonic::{Request, Response, Status};

use crate::delivery::Deliverer;
use crate::domain::follower::FollowerTag;
use crate::domain::rules::parse_id;
use crate::domain::{PageSize, PageToken, ReplyRule, RoutingRule, TicketId, TicketState};
use crate::store::followers_read::{self, FollowerQuery};
use crate::store::rules::{self, RulesNotifier, RulesStoreError};
use crate::store::tickets::{self, Act, Assignment, Scope, TicketQuery};
pub use error::GrpcError;
pub use watch::{QueueStream, QueueWatch};

/// Roles that may read queues, tickets and followers.
const READERS: &[Role] = &[Role::Agent, Role::Viewer];
/// Roles that may act on tickets and tag followers.
const AGENTS: &[Role] = &[Role::Agent];
/// Roles that may change rules.
const ADMINS: &[Role] = &[Role::Admin];

/// The most an answer may hold, in UTF-8 bytes. WeChat documents no firm limit for
/// customer-service text; 2048 bytes is its passive-reply limit and a safe bound
/// (about 680 Chinese characters).
const MAX_ANSWER_BYTES: usize = 2048;
/// The most characters of a note, an agent's or a department's name.
const MAX_NOTE_CHARS: usize = 500;
const MAX_NAME_CHARS: usize = 64;

/// The gRPC service implementation.
#[derive(Clone)]
pub struct InteractionGrpc {
    db: PgPool,
    deliverer: Deliverer,
    watch: QueueWatch,
    rules: RulesNotifier,
    /// Called after every committed ticket change (startup wakes the outbox relay).
    on_change: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl InteractionGrpc {
    /// The service over the database, the deliverer of answers, the queue watch and
    /// the notifier that tells every replica its rules changed.
    pub fn new(db: PgPool, deliverer: Deliverer, watch: QueueWatch, rules: RulesNotifier) -> Self {
        Self {
            db,
            deliverer,
            watch,
            rules,
            on_change: None,
        }
    }

    /// Runs `on_change` after every committed ticket change; startup uses it to wake
    /// the outbox relay, so watchers and consumers hear of the change at once
    /// rather than at the relay's next poll.
    pub fn on_change(mut self, on_change: impl Fn() + Send + Sync + 'static) -> Self {
        self.on_change = Some(Arc::new(on_change));
        self
    }

    /// Called after a commit that queued an event.
    fn queued(&self) {
        if let Some(on_change) = &self.on_change {
            on_change();
        }
    }
}

#[tonic::async_trait]
impl pb::interaction_service_server::InteractionService for InteractionGrpc {
    async fn list_tickets(
        &self,
        request: Request<pb::ListTicketsRequest>,
    ) -> Result<Response<pb::ListTicketsResponse>, Status> {
        let caller = caller(&request)?.clone();
        caller.require_any(READERS)?;
        let request = request.into_inner();
        let department = queue_of(&caller, &request.department)?;
        let states = request
            .states
            .iter()
            .map(|s| TicketState::try_from(*s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(GrpcError::from)?;
        let query = TicketQuery {
            department,
            states,
            overdue_only: request.overdue_only,
            account: non_empty(&request.account),
            openid: non_empty(&request.openid),
            page_size: PageSize::parse(request.page_size).map_err(GrpcError::from)?,
            after: PageToken::decode(&request.page_token).map_err(GrpcError::from)?,
        };
        let (rows, next) = tickets::list(&self.db, &query)
            .await
            .map_err(GrpcError::from)?;
        Ok(Response::new(pb::ListTicketsResponse {
            tickets: rows.into_iter().map(convert::ticket).collect(),
            next_page_token: next.map(|t| t.encode()).unwrap_or_default(),
        }))
    }

    async fn get_ticket(
        &self,
        request: Request<pb::GetTicketRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        let caller = caller(&request)?.clone();
        caller.require_any(READERS)?;
        let id = TicketId::parse(&request.get_ref().id).map_err(GrpcError::from)?;
        let row = tickets::get(&self.db, id)
            .await
            .map_err(GrpcError::from)?
            .filter(|row| scope(&caller).is_none_or(|own| row.department == own))
            .ok_or_else(|| GrpcError::TicketNotFound(id.to_string()))?;
        let thread = tickets::thread(&self.db, id)
            .await
            .map_err(GrpcError::from)?;
        let history = tickets::history(&self.db, id)
            .await
            .map_err(GrpcError::from)?;
        let mut ticket = convert::ticket(row);
        ticket.thread = thread.into_iter().map(convert::message).collect();
        ticket.history = history.into_iter().map(convert::transition).collect();
        Ok(Response::new(ticket))
    }

    type WatchQueueStream = QueueStream;

    async fn watch_queue(
        &self,
        request: Request<pb::WatchQueueRequest>,
    ) -> Result<Response<Self::WatchQueueStream>, Status> {
        let caller = caller(&request)?.clone();
        caller.require_any(READERS)?;
        let department = queue_of(&caller, &request.get_ref().department)?;
        let stream = self.watch.watch(watch::Watched { department }).await?;
        Ok(Response::new(stream))
    }

    async fn acknowledge_ticket(
        &self,
        request: Request<pb::TicketActionRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        let (caller, id, note) = ticket_action(&request)?;
        let actor = actor(&caller, "");
        let act = Act {
            actor: &actor,
            note: &note,
        };
        let row = tickets::acknowledge(&self.db, id, scope(&caller), act)
            .await
            .map_err(GrpcError::from)?;
        self.queued();
        Ok(Response::new(convert::ticket(row)))
    }

    async fn assign_ticket(
        &self,
        request: Request<pb::AssignTicketRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        let caller = caller(&request)?.clone();
        caller.require_any(AGENTS)?;
        let request = request.into_inner();
        let id = TicketId::parse(&request.id).map_err(GrpcError::from)?;
        let department = bounded("department", &request.department, MAX_NAME_CHARS)?;
        let assignee = bounded("assignee", &request.assignee, MAX_NAME_CHARS)?;
        let note = bounded("note", &request.note, MAX_NOTE_CHARS)?;
        let actor = actor(&caller, "");
        let assignment = Assignment {
            department: (!department.is_empty()).then_some(department),
            assignee,
        };
        let act = Act {
            actor: &actor,
            note,
        };
        let row = tickets::assign(&self.db, id, scope(&caller), assignment, act)
            .await
            .map_err(GrpcError::from)?;
        self.queued();
        Ok(Response::new(convert::ticket(row)))
    }

    async fn reply_to_ticket(
        &self,
        request: Request<pb::ReplyToTicketRequest>,
    ) -> Result<Response<pb::ReplyToTicketResponse>, Status> {
        let caller = caller(&request)?.clone();
        caller.require_any(AGENTS)?;
        let request = request.into_inner();
        let id = TicketId::parse(&request.id).map_err(GrpcError::from)?;
        let text = answer_text(&request.text)?;
        let agent = bounded("agent", &request.agent, MAX_NAME_CHARS)?;
        let actor = actor(&caller, agent);
        let act = Act {
            actor: &actor,
            note: "",
        };
        let (row, delivery) = self
            .deliverer
            .reply(id, scope(&caller), text, act)
            .await
            .map_err(GrpcError::from)?;
        self.queued();
        Ok(Response::new(pb::ReplyToTicketResponse {
            ticket: Some(convert::ticket(row)),
            delivery: convert::delivery(delivery) as i32,
        }))
    }

    async fn close_ticket(
        &self,
        request: Request<pb::TicketActionRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        let (caller, id, note) = ticket_action(&request)?;
        let actor = actor(&caller, "");
        let act = Act {
            actor: &actor,
            note: &note,
        };
        let row = tickets::close(&self.db, id, scope(&caller), act)
            .await
            .map_err(GrpcError::from)?;
        self.queued();
        // The close stands even if the question cannot be recorded; the citizen
        // then simply is not asked.
        if let Err(error) = self.deliverer.ask_for_rating(&row).await {
            tracing::error!(ticket = %id, %error, "rating question not recorded");
        }
        Ok(Response::new(convert::ticket(row)))
    }

    async fn reopen_ticket(
        &self,
        request: Request<pb::TicketActionRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        let (caller, id, note) = ticket_action(&request)?;
        let actor = actor(&caller, "");
        let act = Act {
            actor: &actor,
            note: &note,
        };
        let row = tickets::reopen(&self.db, id, scope(&caller), act)
            .await
            .map_err(GrpcError::from)?;
        self.queued();
        Ok(Response::new(convert::ticket(row)))
    }

    async fn list_reply_rules(
        &self,
        request: Request<pb::ListReplyRulesRequest>,
    ) -> Result<Response<pb::ListReplyRulesResponse>, Status> {
        caller(&request)?.require_any(ADMINS)?;
        let account = required("account", &request.get_ref().account)?;
        let found = rules::list_reply_rules(&self.db, account)
            .await
            .map_err(GrpcError::from)?;
        Ok(Response::new(pb::ListReplyRulesResponse {
            rules: found.iter().map(ReplyRule::to_proto).collect(),
        }))
    }

    async fn create_reply_rule(
        &self,
        request: Request<pb::ReplyRule>,
    ) -> Result<Response<pb::ReplyRule>, Status> {
        caller(&request)?.require_any(ADMINS)?;
        let rule = ReplyRule::from_proto(request.into_inner()).map_err(GrpcError::from)?;
        let saved = rules::create_reply_rule(&self.db, &self.rules, rule)
            .await
            .map_err(rules_error)?;
        Ok(Response::new(saved.to_proto()))
    }

    async fn update_reply_rule(
        &self,
        request: Request<pb::ReplyRule>,
    ) -> Result<Response<pb::ReplyRule>, Status> {
        caller(&request)?.require_any(ADMINS)?;
        let raw_id = request.get_ref().id.clone();
        required("id", &raw_id)?;
        let rule = ReplyRule::from_proto(request.into_inner()).map_err(GrpcError::from)?;
        let saved = rules::update_reply_rule(&self.db, &self.rules, rule)
            .await
            .map_err(rules_error)?
            .ok_or(GrpcError::RuleNotFound(raw_id))?;
        Ok(Response::new(saved.to_proto()))
    }

    async fn delete_reply_rule(
        &self,
        request: Request<pb::DeleteRuleRequest>,
    ) -> Result<Response<pb::DeleteRuleResponse>, Status> {
        caller(&request)?.require_any(ADMINS)?;
        let id = rule_id(&request.get_ref().id)?;
        if !rules::delete_reply_rule(&self.db, &self.rules, id)
            .await
            .map_err(GrpcError::from)?
        {
            return Err(GrpcError::RuleNotFound(id.to_string()).into());
        }
        Ok(Response::new(pb::DeleteRuleResponse {}))
    }

    async fn list_routing_rules(
        &self,
        request: Request<pb::ListRoutingRulesRequest>,
    ) -> Result<Response<pb::ListRoutingRulesResponse>, Status> {
        caller(&request)?.require_any(ADMINS)?;
        let account = required("account", &request.get_ref().account)?;
        let found = rules::list_routing_rules(&self.db, account)
            .await
            .map_err(GrpcError::from)?;
        Ok(Response::new(pb::ListRoutingRulesResponse {
            rules: found.iter().map(RoutingRule::to_proto).collect(),
        }))
    }

    async fn create_routing_rule(
        &self,
        request: Request<pb::RoutingRule>,
    ) -> Result<Response<pb::RoutingRule>, Status> {
        caller(&request)?.require_any(ADMINS)?;
        let rule = RoutingRule::from_proto(request.into_inner()).map_err(GrpcError::from)?;
        let saved = rules::create_routing_rule(&self.db, &self.rules, rule)
            .await
            .map_err(rules_error)?;
        Ok(Response::new(saved.to_proto()))
    }

    async fn delete_routing_rule(
        &self,
        request: Request<pb::DeleteRuleRequest>,
    ) -> Result<Response<pb::DeleteRuleResponse>, Status> {
        caller(&request)?.require_any(ADMINS)?;
        let id = rule_id(&request.get_ref().id)?;
        if !rules::delete_routing_rule(&self.db, &self.rules, id)
            .await
            .map_err(GrpcError::from)?
        {
            return Err(GrpcError::RuleNotFound(id.to_string()).into());
        }
        Ok(Response::new(pb::DeleteRuleResponse {}))
    }

    async fn get_follower(
        &self,
        request: Request<pb::GetFollowerRequest>,
    ) -> Result<Response<pb::Follower>, Status> {
        caller(&request)?.require_any(READERS)?;
        let account = required("account", &request.get_ref().account)?;
        let openid = required("openid", &request.get_ref().openid)?;
        let row = followers_read::get(&self.db, account, openid)
            .await
            .map_err(GrpcError::from)?
            .ok_or_else(|| GrpcError::FollowerNotFound(openid.to_owned()))?;
        Ok(Response::new(convert::follower(row)))
    }

    async fn list_followers(
        &self,
        request: Request<pb::ListFollowersRequest>,
    ) -> Result<Response<pb::ListFollowersResponse>, Status> {
        caller(&request)?.require_any(READERS)?;
        let request = request.into_inner();
        let account = required("account", &request.account)?;
        let tag = match request.tag.trim() {
            "" => None,
            raw => Some(FollowerTag::parse(raw).map_err(GrpcError::from)?),
        };
        let page_size = PageSize::parse(request.page_size).map_err(GrpcError::from)?;
        let after = non_empty(&request.page_token);
        let query = FollowerQuery {
            account,
            tag: tag.as_ref(),
            limit: page_size.get(),
            after: after.as_deref(),
        };
        let (rows, next) = followers_read::list(&self.db, &query)
            .await
            .map_err(GrpcError::from)?;
        Ok(Response::new(pb::ListFollowersResponse {
            followers: rows.into_iter().map(convert::follower).collect(),
            next_page_token: next.unwrap_or_default(),
        }))
    }

    async fn tag_follower(
        &self,
        request: Request<pb::TagFollowerRequest>,
    ) -> Result<Response<pb::Follower>, Status> {
        caller(&request)?.require_any(AGENTS)?;
        let request = request.into_inner();
        let account = required("account", &request.account)?;
        let openid = required("openid", &request.openid)?;
        let parse = |raw: &[String]| {
            raw.iter()
                .map(|t| FollowerTag::parse(t))
                .collect::<Result<Vec<_>, _>>()
                .map_err(GrpcError::from)
        };
        let (add, remove) = (parse(&request.add)?, parse(&request.remove)?);
        if add.is_empty() && remove.is_empty() {
            return Err(GrpcError::invalid("add", "name at least one tag to add or remove").into());
        }
        let row = followers_read::tag(&self.db, account, openid, &add, &remove)
            .await
            .map_err(GrpcError::from)?
            .ok_or_else(|| GrpcError::FollowerNotFound(openid.to_owned()))?;
        Ok(Response::new(convert::follower(row)))
    }
}

/// The queue a caller asks for: empty means their own (admins: every department);
/// naming another department needs admin.
fn queue_of(caller: &Caller, requested: &str) -> Result<Option<String>, Status> {
    match (requested.trim(), caller.is_admin()) {
        ("", true) => Ok(None),
        ("", false) => Ok(Some(caller.department.clone())),
        (named, _) => {
            caller.require_department(named)?;
            Ok(Some(named.to_owned()))
        }
    }
}

/// The tickets a caller may act on: their department's, or every one for admins.
fn scope(caller: &Caller) -> Scope<'_> {
    (!caller.is_admin()).then_some(caller.department.as_str())
}

/// Who acted, for the history: the department, plus the agent if named.
fn actor(caller: &Caller, agent: &str) -> String {
    if agent.is_empty() {
        caller.department.clone()
    } else {
        format!("{}/{agent}", caller.department)
    }
}

/// The caller, ticket id and note of Acknowledge/Close/Reopen (agents only).
fn ticket_action(
    request: &Request<pb::TicketActionRequest>,
) -> Result<(Caller, TicketId, String), Status> {
    let caller = caller(request)?.clone();
    caller.require_any(AGENTS)?;
    let id = TicketId::parse(&request.get_ref().id).map_err(GrpcError::from)?;
    let note = bounded("note", &request.get_ref().note, MAX_NOTE_CHARS)?.to_owned();
    Ok((caller, id, note))
}

fn answer_text(raw: &str) -> Result<&str, GrpcError> {
    let text = raw.trim();
    if text.is_empty() {
        return Err(GrpcError::invalid("text", "must not be empty"));
    }
    if text.len() > MAX_ANSWER_BYTES {
        return Err(GrpcError::invalid(
            "text",
            format!(
                "is {} bytes; WeChat takes at most {MAX_ANSWER_BYTES} bytes of UTF-8",
                text.len()
            ),
        ));
    }
    Ok(text)
}

/// A trimmed optional field of at most `max` characters.
fn bounded<'a>(field: &'static str, raw: &'a str, max: usize) -> Result<&'a str, GrpcError> {
    let value = raw.trim();
    if value.chars().count() > max {
        return Err(GrpcError::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(value)
}

/// A trimmed field that must be set.
fn required<'a>(field: &'static str, raw: &'a str) -> Result<&'a str, GrpcError> {
    match raw.trim() {
        "" => Err(GrpcError::invalid(field, "must not be empty")),
        value => Ok(value),
    }
}

fn non_empty(raw: &str) -> Option<String> {
    Some(raw.trim())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

fn rule_id(raw: &str) -> Result<uuid::Uuid, GrpcError> {
    required("id", raw)?;
    Ok(parse_id(raw)?)
}

fn rules_error(error: RulesStoreError) -> GrpcError {
    match error {
        RulesStoreError::Invalid(error) => GrpcError::Rule(error),
        RulesStoreError::Db(error) => GrpcError::Database(error),
    }
}
