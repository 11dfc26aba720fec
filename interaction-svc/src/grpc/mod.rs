//! `interaction.v1.InteractionService`: thin handlers that decode, check the
//! caller, call the store, and encode.

mod error;

use platform::Role;
use platform::grpc::caller;
use proto::interaction::v1 as pb;
use sqlx::PgPool;
use tonic::{Request, Response, Status};

use crate::domain::{PageSize, PageToken, TicketId, TicketState};
use crate::store::tickets::{self, TicketQuery, TicketRow};
pub use error::GrpcError;

/// Roles that may read a department's queue.
const READERS: &[Role] = &[Role::Agent, Role::Viewer];

/// The gRPC service implementation.
#[derive(Clone)]
pub struct InteractionGrpc {
    db: PgPool,
}

impl InteractionGrpc {
    pub fn new(db: PgPool) -> Self {
        Self { db }
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
        let department = match (request.department.as_str(), caller.is_admin()) {
            ("", true) => None,
            ("", false) => Some(caller.department.clone()),
            (named, _) => {
                caller.require_department(named)?;
                Some(named.to_owned())
            }
        };
        let states = request
            .states
            .iter()
            .map(|s| TicketState::try_from(*s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(GrpcError::from)?;
        let query = TicketQuery {
            department,
            states,
            page_size: PageSize::parse(request.page_size).map_err(GrpcError::from)?,
            after: PageToken::decode(&request.page_token).map_err(GrpcError::from)?,
        };
        let (rows, next) = tickets::list(&self.db, &query)
            .await
            .map_err(GrpcError::from)?;
        Ok(Response::new(pb::ListTicketsResponse {
            tickets: rows.into_iter().map(ticket_to_wire).collect(),
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
            .ok_or_else(|| GrpcError::TicketNotFound(id.to_string()))?;
        // A ticket of another department is reported as absent, not forbidden,
        // so ids cannot be probed across departments.
        if !caller.is_admin() && row.department != caller.department {
            return Err(GrpcError::TicketNotFound(id.to_string()).into());
        }
        Ok(Response::new(ticket_to_wire(row)))
    }

    type WatchQueueStream =
        std::pin::Pin<Box<dyn futures::Stream<Item = Result<pb::QueueEvent, Status>> + Send>>;

    async fn watch_queue(
        &self,
        _request: Request<pb::WatchQueueRequest>,
    ) -> Result<Response<Self::WatchQueueStream>, Status> {
        Err(Status::unimplemented("not yet"))
    }

    async fn acknowledge_ticket(
        &self,
        _request: Request<pb::TicketActionRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        Err(Status::unimplemented("not yet"))
    }

    async fn assign_ticket(
        &self,
        _request: Request<pb::AssignTicketRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        Err(Status::unimplemented("not yet"))
    }

    async fn reply_to_ticket(
        &self,
        _request: Request<pb::ReplyToTicketRequest>,
    ) -> Result<Response<pb::ReplyToTicketResponse>, Status> {
        Err(Status::unimplemented("not yet"))
    }

    async fn close_ticket(
        &self,
        _request: Request<pb::TicketActionRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        Err(Status::unimplemented("not yet"))
    }

    async fn reopen_ticket(
        &self,
        _request: Request<pb::TicketActionRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        Err(Status::unimplemented("not yet"))
    }

    async fn list_reply_rules(
        &self,
        _request: Request<pb::ListReplyRulesRequest>,
    ) -> Result<Response<pb::ListReplyRulesResponse>, Status> {
        Err(Status::unimplemented("not yet"))
    }

    async fn create_reply_rule(
        &self,
        _request: Request<pb::ReplyRule>,
    ) -> Result<Response<pb::ReplyRule>, Status> {
        Err(Status::unimplemented("not yet"))
    }

    async fn update_reply_rule(
        &self,
        _request: Request<pb::ReplyRule>,
    ) -> Result<Response<pb::ReplyRule>, Status> {
        Err(Status::unimplemented("not yet"))
    }

    async fn delete_reply_rule(
        &self,
        _request: Request<pb::DeleteRuleRequest>,
    ) -> Result<Response<pb::DeleteRuleResponse>, Status> {
        Err(Status::unimplemented("not yet"))
    }

    async fn list_routing_rules(
        &self,
        _request: Request<pb::ListRoutingRulesRequest>,
    ) -> Result<Response<pb::ListRoutingRulesResponse>, Status> {
        Err(Status::unimplemented("not yet"))
    }

    async fn create_routing_rule(
        &self,
        _request: Request<pb::RoutingRule>,
    ) -> Result<Response<pb::RoutingRule>, Status> {
        Err(Status::unimplemented("not yet"))
    }

    async fn delete_routing_rule(
        &self,
        _request: Request<pb::DeleteRuleRequest>,
    ) -> Result<Response<pb::DeleteRuleResponse>, Status> {
        Err(Status::unimplemented("not yet"))
    }

    async fn get_follower(
        &self,
        _request: Request<pb::GetFollowerRequest>,
    ) -> Result<Response<pb::Follower>, Status> {
        Err(Status::unimplemented("not yet"))
    }

    async fn list_followers(
        &self,
        _request: Request<pb::ListFollowersRequest>,
    ) -> Result<Response<pb::ListFollowersResponse>, Status> {
        Err(Status::unimplemented("not yet"))
    }

    async fn tag_follower(
        &self,
        _request: Request<pb::TagFollowerRequest>,
    ) -> Result<Response<pb::Follower>, Status> {
        Err(Status::unimplemented("not yet"))
    }
}

fn timestamp(at: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: at.timestamp_subsec_nanos() as i32,
    }
}

fn ticket_to_wire(row: TicketRow) -> pb::Ticket {
    let state = row
        .state
        .parse::<TicketState>()
        .map(pb::TicketState::from)
        .unwrap_or(pb::TicketState::Unspecified);
    pb::Ticket {
        id: row.id.to_string(),
        account: row.account,
        department: row.department,
        openid: row.openid,
        state: state as i32,
        category: row.category,
        summary: row.summary,
        opened_at: Some(timestamp(row.opened_at)),
        acknowledge_due_at: Some(timestamp(row.acknowledge_due_at)),
        resolve_due_at: Some(timestamp(row.resolve_due_at)),
        overdue: row.overdue,
        assignee: row.assignee,
        awaiting_citizen: row.awaiting_citizen,
        rating: row.rating.map(|r| r as u32).unwrap_or(0),
        closed_at: row.closed_at.map(timestamp),
        thread: Vec::new(),
        history: Vec::new(),
    }
}
