//! Ticket RPCs: the queue (list, get, watch) and the department's actions.

use platform::Caller;
use platform::grpc::AccountScope;
use platform::grpc::{caller, caller_key};
use proto::interaction::v1 as pb;
use tonic::{Request, Response, Status};

use super::{
    AGENTS, GrpcError, InteractionGrpc, MAX_NAME_CHARS, MAX_NOTE_CHARS, READERS, bounded, convert,
    name, non_empty, request_id, watch,
};
use crate::app::tickets::Assignment;
use crate::domain::{Agent, AnswerText, PageSize, PageToken, TicketId, TicketState};
use crate::store::tickets::TicketQuery;

impl InteractionGrpc {
    pub(super) async fn list_tickets(
        &self,
        request: Request<pb::ListTicketsRequest>,
    ) -> Result<Response<pb::ListTicketsResponse>, Status> {
        let caller = caller(&request)?.clone();
        caller.require_any(READERS)?;
        let request = request.into_inner();
        let department = if self
            .agent(&caller, "")
            .reads_overdue_everywhere(request.overdue_only)
        {
            // The supervision office's list of breached deadlines (`Agent::reads`):
            // every department's, or the one it names.
            let named = request.department.trim();
            (!named.is_empty()).then(|| named.to_owned())
        } else {
            queue_of(&caller, &request.department)?
        };
        if let Some(department) = &department {
            // An admin's typo would list nothing and look like an empty queue.
            self.known_department("department", department)?;
        }
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
            account: non_empty("account", &request.account)?,
            openid: non_empty("openid", &request.openid)?,
            accounts: caller.accounts.filter(),
            page_size: PageSize::parse(request.page_size).map_err(GrpcError::from)?,
            after: PageToken::decode(&request.page_token).map_err(GrpcError::from)?,
        };
        let (rows, next) = self.tickets.list(&query).await.map_err(GrpcError::from)?;
        Ok(Response::new(pb::ListTicketsResponse {
            tickets: rows.into_iter().map(convert::ticket).collect(),
            next_page_token: next.map(|t| t.encode()).unwrap_or_default(),
        }))
    }

    pub(super) async fn get_ticket(
        &self,
        request: Request<pb::GetTicketRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        let caller = caller(&request)?.clone();
        caller.require_any(READERS)?;
        let id = TicketId::parse(&request.get_ref().id).map_err(GrpcError::from)?;
        let view = self
            .tickets
            .get(id, self.agent(&caller, ""))
            .await
            .map_err(GrpcError::from)?;
        Ok(Response::new(convert::ticket_view(view)))
    }

    pub(super) async fn watch_queue_stream(
        &self,
        request: Request<pb::WatchQueueRequest>,
    ) -> Result<Response<watch::QueueStream>, Status> {
        let caller = caller(&request)?.clone();
        let key = caller_key(&request)?;
        caller.require_any(READERS)?;
        let department = queue_of(&caller, &request.get_ref().department)?;
        if !request.get_ref().department.trim().is_empty()
            && let Some(department) = &department
        {
            // An admin's typo would watch a queue nobody routes to: silent forever.
            self.known_department("department", department)?;
        }
        let watched = watch::Watched {
            department,
            accounts: caller.accounts.filter(),
        };
        let holder = watch::Holder {
            caller,
            key,
            keys: self.keys.clone(),
        };
        let after = request.get_ref().after;
        let progress = request.get_ref().progress;
        let watching = self.watch.watch(watched, holder, after, progress).await?;
        let mut response = Response::new(watching.events);
        // Sent with the response's headers, before any event: a client that sees
        // no event before the stream ends still has a point to resume from.
        response.metadata_mut().insert(
            watch::POSITION_HEADER,
            watching
                .start
                .to_string()
                .parse()
                .expect("digits are ASCII"),
        );
        Ok(response)
    }

    pub(super) async fn acknowledge_ticket(
        &self,
        request: Request<pb::TicketActionRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        let (caller, id, note) = ticket_action(&request)?;
        let row = self
            .tickets
            .acknowledge(id, self.agent(&caller, ""), note)
            .await
            .map_err(GrpcError::from)?;
        Ok(Response::new(convert::ticket(row)))
    }

    pub(super) async fn assign_ticket(
        &self,
        request: Request<pb::AssignTicketRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        let caller = caller(&request)?.clone();
        caller.require_any(AGENTS)?;
        let request = request.into_inner();
        let id = TicketId::parse(&request.id).map_err(GrpcError::from)?;
        let department = name("department", &request.department, MAX_NAME_CHARS)?;
        let assignee = name("assignee", &request.assignee, MAX_NAME_CHARS)?;
        let note = bounded("note", &request.note, MAX_NOTE_CHARS)?;
        if !department.is_empty() {
            self.known_department("department", department)?;
            let view = self
                .tickets
                .get(id, self.agent(&caller, ""))
                .await
                .map_err(GrpcError::from)?;
            self.serves_account("department", department, view.ticket.account.as_str())?;
        }
        let assignment = Assignment {
            department: (!department.is_empty()).then_some(department),
            assignee,
        };
        let row = self
            .tickets
            .assign(id, self.agent(&caller, ""), assignment, note)
            .await
            .map_err(GrpcError::from)?;
        Ok(Response::new(convert::ticket(row)))
    }

    pub(super) async fn reply_to_ticket(
        &self,
        request: Request<pb::ReplyToTicketRequest>,
    ) -> Result<Response<pb::ReplyToTicketResponse>, Status> {
        let caller = caller(&request)?.clone();
        caller.require_any(AGENTS)?;
        let request = request.into_inner();
        let id = TicketId::parse(&request.id).map_err(GrpcError::from)?;
        let text = AnswerText::parse(&request.text).map_err(GrpcError::from)?;
        let agent = name("agent", &request.agent, MAX_NAME_CHARS)?;
        // Checked as every create's is (`platform::ids::RequestId`).
        let request_id = request_id(&request.request_id)?;
        let (row, delivery) = self
            .tickets
            .reply(id, self.agent(&caller, agent), &text, request_id)
            .await
            .map_err(GrpcError::from)?;
        Ok(Response::new(pb::ReplyToTicketResponse {
            ticket: Some(convert::ticket(row)),
            delivery: convert::delivery(delivery) as i32,
        }))
    }

    pub(super) async fn close_ticket(
        &self,
        request: Request<pb::TicketActionRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        let (caller, id, note) = ticket_action(&request)?;
        let row = self
            .tickets
            .close(id, self.agent(&caller, ""), note)
            .await
            .map_err(GrpcError::from)?;
        Ok(Response::new(convert::ticket(row)))
    }

    pub(super) async fn reopen_ticket(
        &self,
        request: Request<pb::TicketActionRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        let (caller, id, note) = ticket_action(&request)?;
        let row = self
            .tickets
            .reopen(id, self.agent(&caller, ""), note)
            .await
            .map_err(GrpcError::from)?;
        Ok(Response::new(convert::ticket(row)))
    }
}

impl InteractionGrpc {
    /// The caller as the application knows it, with the agent it names (may be empty).
    fn agent<'a>(&'a self, caller: &'a Caller, name: &'a str) -> Agent<'a> {
        agent_of(caller, name, &self.watch.escalation_department)
    }
}

/// The agent a caller's key makes, naming `name`; `escalation` is the supervision
/// department's name.
pub(super) fn agent_of<'a>(caller: &'a Caller, name: &'a str, escalation: &str) -> Agent<'a> {
    Agent {
        department: &caller.department,
        admin: caller.is_admin(),
        name,
        accounts: match &caller.accounts {
            AccountScope::All => None,
            AccountScope::Only(accounts) => Some(accounts),
        },
        supervises: caller.department == escalation,
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

/// The caller, ticket id and note of Acknowledge/Close/Reopen (agents only).
fn ticket_action(
    request: &Request<pb::TicketActionRequest>,
) -> Result<(Caller, TicketId, &str), Status> {
    let caller = caller(request)?.clone();
    caller.require_any(AGENTS)?;
    let id = TicketId::parse(&request.get_ref().id).map_err(GrpcError::from)?;
    let note = bounded("note", &request.get_ref().note, MAX_NOTE_CHARS)?;
    Ok((caller, id, note))
}
