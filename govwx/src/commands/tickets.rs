//! `govwx tickets …`: the department queue.

use std::io::Read;
use std::time::Duration;

use futures::StreamExt;
use proto::interaction::v1::{
    AssignTicketRequest, DeliveryStatus, GetTicketRequest, ListTicketsRequest, QueueEvent,
    QueueEventKind, ReplyToTicketRequest, Ticket, TicketActionRequest, TicketState,
    WatchQueueRequest,
};
use serde_json::json;

use crate::cli::{StateArg, Tickets};
use crate::client::Target;
use crate::error::Error;
use crate::json;
use crate::output::{Out, fields, or_dash, shorten, table};

/// The widest a summary or message text gets in a table, in terminal cells.
const TEXT_WIDTH: usize = 40;
/// The longest pause between two reconnection attempts of `watch`.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

pub async fn run(command: Tickets, target: &Target, out: &Out) -> Result<(), Error> {
    if let Tickets::Watch { department } = command {
        return watch(target, out, department.unwrap_or_default()).await;
    }
    let mut client = target.interaction().await?;
    let status = |s| target.status(s);
    match command {
        Tickets::List {
            department,
            state,
            overdue,
            account,
            openid,
            limit,
            page_token,
        } => {
            let request = ListTicketsRequest {
                department: department.unwrap_or_default(),
                states: state.into_iter().map(|s| ticket_state(s) as i32).collect(),
                page_size: limit.unwrap_or(0),
                page_token: page_token.unwrap_or_default(),
                overdue_only: overdue,
                account: account.unwrap_or_default(),
                openid: openid.unwrap_or_default(),
            };
            let page = client
                .list_tickets(request)
                .await
                .map_err(status)?
                .into_inner();
            if out.json {
                let tickets: Vec<_> = page.tickets.iter().map(|t| json::ticket(out, t)).collect();
                return out.document(&json!({
                    "tickets": tickets,
                    "next_page_token": page.next_page_token,
                }));
            }
            print_list(out, &page.tickets)?;
            if !page.next_page_token.is_empty() {
                eprintln!("more: --page-token {}", page.next_page_token);
            }
            Ok(())
        }
        Tickets::Show { id } => {
            let ticket = client
                .get_ticket(GetTicketRequest { id })
                .await
                .map_err(status)?
                .into_inner();
            if out.json {
                return out.document(&json::ticket(out, &ticket));
            }
            print_ticket(out, &ticket)
        }
        Tickets::Ack { id, note } => {
            let request = action(id, note);
            let ticket = client.acknowledge_ticket(request).await.map_err(status)?;
            done(out, &ticket.into_inner())
        }
        Tickets::Assign {
            id,
            department,
            assignee,
            note,
        } => {
            let request = AssignTicketRequest {
                id,
                department: department.unwrap_or_default(),
                assignee: assignee.unwrap_or_default(),
                note: note.unwrap_or_default(),
            };
            let ticket = client.assign_ticket(request).await.map_err(status)?;
            done(out, &ticket.into_inner())
        }
        Tickets::Reply {
            id,
            text,
            agent,
            request_id,
        } => {
            let text = if text == "-" { read_stdin()? } else { text };
            let request_id = super::request_id(
                request_id,
                "to learn how this answer left instead of sending it twice",
            );
            let request = ReplyToTicketRequest {
                id: id.clone(),
                text,
                agent: agent.unwrap_or_default(),
                request_id: request_id.clone(),
            };
            let response = match client.reply_to_ticket(request).await {
                Ok(response) => response.into_inner(),
                Err(error) => {
                    // The answer may be on its way: the same id makes a retry safe.
                    if super::may_have_been_done(&error) {
                        eprintln!(
                            "govwx: to retry this answer without sending it twice, add \
                             --request-id {request_id}"
                        );
                    }
                    return Err(status(error));
                }
            };
            let ticket = response.ticket.unwrap_or_default();
            if out.json {
                return out.document(&json!({
                    "ticket": json::ticket(out, &ticket),
                    "delivery": json::delivery(response.delivery),
                }));
            }
            let what = match DeliveryStatus::try_from(response.delivery) {
                Ok(DeliveryStatus::Sent) => "sent to the citizen".to_owned(),
                Ok(DeliveryStatus::Held) => "held: the citizen is outside the 48-hour window; \
                                             it is sent when they write again"
                    .to_owned(),
                Ok(DeliveryStatus::Failed) => {
                    "refused by WeChat (the citizen may have unfollowed)".to_owned()
                }
                _ => json::delivery(response.delivery),
            };
            out.line(&format!(
                "ticket {}: answer {what}; now {}",
                ticket.id,
                json::state(ticket.state)
            ))
        }
        Tickets::Close { id, note } => {
            let ticket = client
                .close_ticket(action(id, note))
                .await
                .map_err(status)?;
            done(out, &ticket.into_inner())
        }
        Tickets::Reopen { id, note } => {
            let ticket = client
                .reopen_ticket(action(id, note))
                .await
                .map_err(status)?;
            done(out, &ticket.into_inner())
        }
        Tickets::Watch { .. } => unreachable!("handled above"),
    }
}

fn ticket_state(state: StateArg) -> TicketState {
    match state {
        StateArg::Open => TicketState::Open,
        StateArg::Acknowledged => TicketState::Acknowledged,
        StateArg::Answered => TicketState::Answered,
        StateArg::Closed => TicketState::Closed,
        StateArg::Reopened => TicketState::Reopened,
    }
}

fn action(id: String, note: Option<String>) -> TicketActionRequest {
    TicketActionRequest {
        id,
        note: note.unwrap_or_default(),
    }
}

fn read_stdin() -> Result<String, Error> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| Error::Input(format!("cannot read the answer from standard input: {e}")))?;
    Ok(text.trim_end().to_owned())
}

/// The ticket after an action: its new state in one line, or the whole ticket as JSON.
fn done(out: &Out, ticket: &Ticket) -> Result<(), Error> {
    if out.json {
        return out.document(&json::ticket(out, ticket));
    }
    out.line(&format!(
        "ticket {}: {} ({}{})",
        ticket.id,
        state_label(ticket),
        ticket.department,
        if ticket.assignee.is_empty() {
            String::new()
        } else {
            format!(", {}", ticket.assignee)
        }
    ))
}

/// The state with the flags a department acts on.
fn state_label(ticket: &Ticket) -> String {
    let mut label = json::state(ticket.state);
    if ticket.overdue {
        label.push_str(", overdue");
    }
    if ticket.awaiting_citizen {
        label.push_str(", held");
    }
    label
}

fn print_list(out: &Out, tickets: &[Ticket]) -> Result<(), Error> {
    if tickets.is_empty() {
        eprintln!("no tickets");
        return Ok(());
    }
    let rows = tickets.iter().map(|t| {
        vec![
            t.id.clone(),
            state_label(t),
            t.department.clone(),
            or_dash(&t.category),
            shorten(&t.summary, TEXT_WIDTH),
            out.time(t.opened_at.as_ref()),
            out.time(t.resolve_due_at.as_ref()),
        ]
    });
    out.line(&table(
        &[
            "id",
            "state",
            "department",
            "category",
            "summary",
            "opened",
            "due",
        ],
        rows,
    ))
}

/// A thread message's delivery as `tickets show` prints it. An answer still being
/// sent says so: a reply that timed out sends the agent here to look for it before
/// answering again.
fn delivery_label(delivery: i32) -> String {
    match DeliveryStatus::try_from(delivery) {
        Ok(DeliveryStatus::Sending) => "sending (WeChat has not answered yet)".to_owned(),
        _ => json::delivery(delivery),
    }
}

fn print_ticket(out: &Out, t: &Ticket) -> Result<(), Error> {
    let rating = if t.rating == 0 {
        "-".to_owned()
    } else {
        t.rating.to_string()
    };
    let mut text = fields(&[
        ("id", t.id.clone()),
        ("account", t.account.clone()),
        ("citizen", t.openid.clone()),
        ("department", t.department.clone()),
        ("assignee", or_dash(&t.assignee)),
        ("state", state_label(t)),
        ("category", or_dash(&t.category)),
        ("summary", t.summary.clone()),
        ("opened", out.time(t.opened_at.as_ref())),
        ("acknowledge by", out.time(t.acknowledge_due_at.as_ref())),
        ("resolve by", out.time(t.resolve_due_at.as_ref())),
        ("closed", out.time(t.closed_at.as_ref())),
        ("rating", rating),
    ]);
    if !t.thread.is_empty() {
        let rows = t.thread.iter().map(|m| {
            vec![
                out.time(m.at.as_ref()),
                m.author.clone(),
                m.msg_type.clone(),
                delivery_label(m.delivery),
                m.text.clone(),
            ]
        });
        text.push_str("\n\nTHREAD\n");
        if t.earlier_messages > 0 {
            text.push_str(&format!(
                "({} earlier messages not shown)\n",
                t.earlier_messages
            ));
        }
        text.push_str(&table(&["at", "from", "type", "delivery", "text"], rows));
    }
    if !t.history.is_empty() {
        let rows = t.history.iter().map(|h| {
            vec![
                out.time(h.at.as_ref()),
                h.actor.clone(),
                h.action.clone(),
                format!("{} → {}", json::state(h.from), json::state(h.to)),
                or_dash(&h.note),
            ]
        });
        text.push_str("\n\nHISTORY\n");
        if t.earlier_transitions > 0 {
            text.push_str(&format!(
                "({} earlier entries not shown)\n",
                t.earlier_transitions
            ));
        }
        text.push_str(&table(&["at", "actor", "action", "state", "note"], rows));
    }
    out.line(&text)
}

/// Streams the queue; reconnects with a growing pause (up to [`MAX_BACKOFF`]) after
/// the link or the server goes away, resuming after the last change it printed (or
/// the position the watch started at), so nothing made meanwhile is missed or
/// printed twice; gives up only on an error a retry cannot fix (a wrong key, a
/// refused department).
async fn watch(target: &Target, out: &Out, department: String) -> Result<(), Error> {
    let mut backoff = Duration::from_secs(1);
    let mut position = None;
    loop {
        match watch_once(target, out, department.clone(), &mut backoff, &mut position).await {
            // A draining server ends every watch; its replacement may take a moment.
            Ok(()) => eprintln!(
                "govwx: {} at {} ended the watch; reconnecting in {}s",
                target.service,
                target.addr,
                backoff.as_secs()
            ),
            Err(error) if resume_refused(&error) => {
                // The server keeps a bounded past: say plainly what is lost, and
                // watch from now on at once.
                eprintln!(
                    "govwx: {error}; the changes since the last one printed cannot be \
                     replayed: watching from now on; list the queue (govwx tickets list) \
                     for what was missed"
                );
                position = None;
                continue;
            }
            Err(error) if error.is_transient() => {
                eprintln!("govwx: {error}; reconnecting in {}s", backoff.as_secs());
            }
            Err(error) => return Err(error),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Whether the server refused to resume from the position given (OUT_OF_RANGE).
fn resume_refused(error: &Error) -> bool {
    matches!(error, Error::Status { status, .. } if status.code() == tonic::Code::OutOfRange)
}

/// One watch call, resumed after `position` when there is one: returns when the
/// server ends the stream, `position` left at the last change printed or the last
/// progress position the server sent, whichever came later.
async fn watch_once(
    target: &Target,
    out: &Out,
    department: String,
    backoff: &mut Duration,
    position: &mut Option<u64>,
) -> Result<(), Error> {
    // A watch runs as long as it is read: no --timeout on it.
    let mut client = target.interaction_stream().await?;
    let queue = if department.is_empty() {
        "the key's queue".to_owned()
    } else {
        format!("{department}'s queue")
    };
    let response = client
        .watch_queue(WatchQueueRequest {
            department,
            after: *position,
            // Keeps the resume point moving while other queues are busy and this one
            // is quiet, so a reconnection stays within what the server replays.
            progress: true,
        })
        .await
        .map_err(|s| target.status(s))?;
    let resumed = position.is_some();
    if position.is_none() {
        // Where this watch starts: a watch that ends before any change resumes here.
        *position = response
            .metadata()
            .get("x-queue-position")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
    }
    let mut stream = response.into_inner();
    // The server starts its consumer before it answers, so from this line on no
    // change is missed; scripts (and the tests) wait for it before acting.
    if resumed {
        eprintln!(
            "govwx: watching {queue} at {} (resumed after the last change printed)",
            target.addr
        );
    } else {
        eprintln!("govwx: watching {queue} at {}", target.addr);
    }
    *backoff = Duration::from_secs(1);
    while let Some(event) = stream.next().await {
        let event = event.map_err(|s| target.status(s))?;
        if shown(&event) {
            print_event(out, &event)?;
        }
        *position = Some(event.position);
    }
    Ok(())
}

/// Whether a queue event is printed: a progress event only moves the resume point.
fn shown(event: &QueueEvent) -> bool {
    event.kind != QueueEventKind::Progress as i32
}

fn print_event(out: &Out, event: &QueueEvent) -> Result<(), Error> {
    let ticket = event.ticket.clone().unwrap_or_default();
    if out.json {
        return out.json_line(&json!({
            "kind": json::queue_kind(event.kind),
            "ticket": json::ticket(out, &ticket),
            "position": event.position,
        }));
    }
    let now = chrono::Utc::now().with_timezone(&out.tz);
    out.line(&format!(
        "{}  {}  {}  {}  {}  {}",
        now.format("%H:%M:%S"),
        json::queue_kind(event.kind),
        ticket.id,
        ticket.department,
        state_label(&ticket),
        shorten(&ticket.summary, TEXT_WIDTH)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_on_its_way_shows_as_sending_not_unspecified() {
        assert_eq!(
            delivery_label(DeliveryStatus::Sending as i32),
            "sending (WeChat has not answered yet)"
        );
        assert_eq!(json::delivery(DeliveryStatus::Sending as i32), "sending");
        assert_eq!(delivery_label(DeliveryStatus::Sent as i32), "sent");
    }

    #[test]
    fn a_progress_event_is_not_printed_and_a_ticket_change_is() {
        let progress = QueueEvent {
            kind: QueueEventKind::Progress as i32,
            ticket: None,
            position: 42,
        };
        assert!(!shown(&progress));
        let opened = QueueEvent {
            kind: QueueEventKind::Opened as i32,
            ticket: Some(Ticket::default()),
            position: 43,
        };
        assert!(shown(&opened));
    }
}
