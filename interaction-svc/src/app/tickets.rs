//! What departments do with their queues: list and read tickets, acknowledge,
//! assign, answer, close (and ask for a rating), reopen. Each change goes through
//! `store::tickets::lifecycle` in one transaction, then wakes the outbox relay;
//! WeChat is called only outside a transaction.

use std::future::Future;
use std::sync::Arc;

use futures::FutureExt as _;
use futures::future::BoxFuture;
use platform::outbox::OutboxSignal;
use platform::shutdown::Drain;
use sqlx::PgPool;
use tracing::Instrument as _;

use crate::delivery::{AnswerError, Deliverer, DeliveryError, RATING_QUESTION, WINDOW};
use crate::domain::retention::ERASED_OPENID;
use crate::domain::{
    Agent, AnswerText, DeadlinePolicy, Delivery, PageToken, TicketEvent, TicketId, TicketState,
};
use crate::store::thread::{self, Outgoing};
use crate::store::tickets::lifecycle::{self, ActionError, Cause, InFlight};
use crate::store::tickets::{
    self, MessageRow, SYSTEM_ACTOR, TicketQuery, TicketRow, TransitionRow,
};

/// A ticket with its conversation and history.
#[derive(Debug, Clone)]
pub struct TicketView {
    pub ticket: TicketRow,
    /// The newest [`tickets::MAX_THREAD`] messages, oldest first.
    pub thread: Vec<MessageRow>,
    pub earlier_messages: u64,
    /// The newest [`tickets::MAX_HISTORY`] transitions, oldest first.
    pub history: Vec<TransitionRow>,
    pub earlier_transitions: u64,
}

/// Where an assignment moves a ticket.
#[derive(Debug, Clone, Copy)]
pub struct Assignment<'a> {
    /// The new department; `None` keeps the ticket where it is.
    pub department: Option<&'a str>,
    /// The agent who owns it inside the department; empty clears.
    pub assignee: &'a str,
}

/// The ticket use cases, over the database, the deliverer of answers, the relay's
/// wake-up, the deadline policy of intake (a reopened ticket is due again by it) and
/// the service's drain (which waits for answers still being sent). Cheap to clone.
#[derive(Clone)]
pub struct Tickets {
    db: PgPool,
    deliverer: Deliverer,
    outbox: OutboxSignal,
    policy: Arc<DeadlinePolicy>,
    drain: Drain,
}

impl Tickets {
    pub fn new(
        db: PgPool,
        deliverer: Deliverer,
        outbox: OutboxSignal,
        policy: Arc<DeadlinePolicy>,
        drain: Drain,
    ) -> Self {
        Self {
            db,
            deliverer,
            outbox,
            policy,
            drain,
        }
    }

    /// The deadline policy tickets are held to (a routing rule's category must
    /// have a resolve limit in it).
    pub fn deadline_policy(&self) -> &DeadlinePolicy {
        &self.policy
    }

    /// One page of a queue (`query.department` is already what the caller may see).
    pub async fn list(
        &self,
        query: &TicketQuery,
    ) -> Result<(Vec<TicketRow>, Option<PageToken>), sqlx::Error> {
        tickets::list(&self.db, query).await
    }

    /// A ticket with its thread and history, if `agent` may see it.
    pub async fn get(&self, id: TicketId, agent: Agent<'_>) -> Result<TicketView, ActionError> {
        let ticket = tickets::get(&self.db, id)
            .await?
            .filter(|row| agent.reads(row.account.as_str(), &row.department, row.overdue))
            .ok_or(ActionError::NotFound(id))?;
        let thread = tickets::thread(&self.db, id, tickets::MAX_THREAD).await?;
        let history = tickets::history(&self.db, id, tickets::MAX_HISTORY).await?;
        Ok(TicketView {
            ticket,
            thread: thread.rows,
            earlier_messages: thread.omitted,
            history: history.rows,
            earlier_transitions: history.omitted,
        })
    }

    /// A person in the department has seen the ticket.
    pub async fn acknowledge(
        &self,
        id: TicketId,
        agent: Agent<'_>,
        note: &str,
    ) -> Result<TicketRow, ActionError> {
        self.act(id, agent, TicketEvent::Acknowledged, note, |_| Ok(()))
            .await
    }

    /// Moves the ticket to another department and/or names its agent.
    pub async fn assign(
        &self,
        id: TicketId,
        agent: Agent<'_>,
        assignment: Assignment<'_>,
        note: &str,
    ) -> Result<TicketRow, ActionError> {
        let event = TicketEvent::Assigned {
            department: assignment.department,
            assignee: assignment.assignee,
        };
        // An assignment that changes nothing would only clutter the history.
        let changes = |row: &TicketRow| {
            let department = assignment.department.unwrap_or(&row.department);
            if department == row.department && assignment.assignee == row.assignee {
                return Err(ActionError::NoChange(id));
            }
            Ok(())
        };
        self.act(id, agent, event, note, changes).await
    }

    /// Closes the ticket and answers once that is committed; the citizen is asked to
    /// rate the answer in a task of its own (the drain's). The close stands even if
    /// the question cannot be recorded; the citizen then simply is not asked. A
    /// repeat of the close that closed the ticket (same department and note)
    /// returns the ticket as it is.
    pub async fn close(
        &self,
        id: TicketId,
        agent: Agent<'_>,
        note: &str,
    ) -> Result<TicketRow, ActionError> {
        // A ticket closed without an answer must say why, or the history cannot
        // tell a resolved request from a dropped one. "Answered" means in this
        // round, whatever the state now: the citizen's thanks moves it back to
        // acknowledged, and a reopened ticket needs a new answer.
        let actor = agent.actor();
        let mut tx = self.db.begin().await?;
        let before = lock_reached(&mut tx, id, Some(agent)).await?;
        // A department whose close's answer was lost (its deadline, the network)
        // retries it: the same close (same department, same note) of the ticket it
        // closed is answered as the first was, and changes nothing (no second
        // history entry, event or rating question). Any other close of a closed
        // ticket is refused by the state machine below.
        if before.state == TicketState::Closed.as_str()
            && tickets::last_close(&mut tx, id).await? == Some((actor.clone(), note.to_owned()))
        {
            tx.rollback().await?;
            return Ok(before);
        }
        if note.is_empty()
            && before.state != TicketState::Answered.as_str()
            && !tickets::answered_this_round(&mut tx, id).await?
        {
            return Err(ActionError::ReasonRequired(id));
        }
        let closed = lifecycle::change(
            &mut tx,
            &before,
            TicketEvent::Closed,
            Cause::now(&actor, note),
        )
        .await?;
        tx.commit().await?;
        self.outbox.notify();
        // The close is what the caller asked for, and it is committed: answer now.
        // The rating question may wait 20 s (`TURN_WAIT`) behind an answer being
        // sent, then for WeChat (up to 25 s with the shared token), past a
        // department's client deadline (govwx's is 30 s): waiting for it made a
        // close that stood look failed, and its retry was refused as already
        // closed. The question is a task of the drain, so a rolling update still
        // asks it, and no caller leaving can take it along; one the drain's
        // deadline cuts off (it may wait longer than `SHUTDOWN_GRACE`) is said so.
        let this = self.clone();
        let abandoned = AbandonedQuestion(Some(id));
        drop(
            self.drain.spawn(
                async move {
                    let mut abandoned = abandoned;
                    if let Err(error) = this.ask_for_rating(id).await {
                        tracing::error!(ticket = %id, %error, "rating question not recorded");
                    }
                    abandoned.0 = None;
                }
                .in_current_span(),
            ),
        );
        Ok(closed)
    }

    /// Asks the rating questions closes left unasked, up to `limit` tickets: a
    /// close's question task dropped unfinished (the drain's deadline cut it off,
    /// the process ended) or one that could not record its question. Only for a
    /// ticket closed within the citizen's 48-hour window whose citizen is inside it
    /// now and not erased (`store::tickets::owed_rating_questions`), and once: the
    /// question goes through the ticket's turn like the close's own, whose check
    /// (under the ticket's lock) finds any question written since the close, so a
    /// pass on another replica, a pass repeated, or the close's task still running
    /// asks nothing more. Stops between tickets once the drain begins. Returns how
    /// many were asked (sent or held).
    pub async fn ask_owed_rating_questions(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        limit: i64,
    ) -> Result<usize, sqlx::Error> {
        let owed =
            tickets::owed_rating_questions(&self.db, now, QUESTION_OWED_AFTER, WINDOW, limit)
                .await?;
        let mut asked = 0;
        for id in owed {
            if self.drain.is_stopping() {
                break;
            }
            match self.ask_for_rating(id).await {
                Ok(true) => {
                    asked += 1;
                    metrics::counter!("interaction_rating_questions_asked_late_total").increment(1);
                    tracing::info!(ticket = %id, "rating question its close left unasked asked now");
                }
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(ticket = %id, %error, "owed rating question not recorded; retrying next pass");
                }
            }
        }
        Ok(asked)
    }

    /// Records the rating question behind the ticket's answers, then sends (or
    /// holds) it. Whether it was asked (sent or held).
    async fn ask_for_rating(&self, id: TicketId) -> Result<bool, String> {
        // The question rates the ticket as it is closed when its turn comes. Behind
        // an answer still being sent it may wait past a reopen: that ticket is being
        // worked on again, and its next close asks. It may also wait past a reopen
        // and a second close, whose question waits as well: the citizen can rate
        // the ticket once, so the first of them to find it closed asks, and the other
        // finds that question on its way, held, or asked.
        // The ticket as its lock found it when the turn came, not as the close saw it:
        // the citizen may have been erased meanwhile (`rating_due` refuses that).
        let (ticket, question) = match self
            .take_turn(id, None, rating_due, SYSTEM_ACTOR, RATING_QUESTION, None)
            .await
        {
            Ok(Turn::Take(ticket, question)) => (ticket, question),
            // Only a request id finds an earlier answer; the question has none.
            Ok(Turn::Given(..)) => return Ok(false),
            Err(NotAsked::Failed(error)) => return Err(error.to_string()),
            Err(not_asked) => {
                tracing::info!(ticket = %id, reason = %not_asked, "rating question not asked");
                return Ok(false);
            }
        };
        match self.deliverer.ask_for_rating(&ticket, &question).await {
            Ok(Some(_)) => Ok(true),
            Ok(None) => {
                tracing::info!(ticket = %id, "ticket reopened while its rating question was with WeChat; withdrawn, not held");
                Ok(false)
            }
            Err(error) => Err(error.to_string()),
        }
    }

    /// Reopens a closed ticket for a new round: it is due again as if it arrived
    /// now (a new acknowledgement, then a resolution), and the first round's overdue
    /// marks no longer count against it.
    pub async fn reopen(
        &self,
        id: TicketId,
        agent: Agent<'_>,
        note: &str,
    ) -> Result<TicketRow, ActionError> {
        let actor = agent.actor();
        let cause = Cause::now(&actor, note);
        let mut tx = self.db.begin().await?;
        let before = lock_reached(&mut tx, id, Some(agent)).await?;
        if before.openid.as_str() == ERASED_OPENID {
            return Err(ActionError::Erased(id));
        }
        let deadlines = self.policy.deadlines(cause.at, &before.category);
        let after =
            lifecycle::change(&mut tx, &before, TicketEvent::Reopened(deadlines), cause).await?;
        tx.commit().await?;
        self.outbox.notify();
        Ok(after)
    }

    /// Lock, change, commit, wake: every department action but the answer.
    async fn act(
        &self,
        id: TicketId,
        agent: Agent<'_>,
        event: TicketEvent<'_>,
        note: &str,
        admit: impl Fn(&TicketRow) -> Result<(), ActionError>,
    ) -> Result<TicketRow, ActionError> {
        let actor = agent.actor();
        let mut tx = self.db.begin().await?;
        let before = lock_reached(&mut tx, id, Some(agent)).await?;
        admit(&before)?;
        let after = lifecycle::change(&mut tx, &before, event, Cause::now(&actor, note)).await?;
        tx.commit().await?;
        self.outbox.notify();
        Ok(after)
    }

    /// Answers the ticket: checks the agent's scope and the ticket's state, sends
    /// (or holds) the text, and records the answer, the transition and the
    /// `replied` event.
    ///
    /// No transaction is open while WeChat is called: the answer is first committed
    /// as `sending` (which also makes a second answer to the ticket wait its turn,
    /// so answers go out in order), then sent, then settled with the transition in a
    /// second transaction. If WeChat refuses it or cannot be reached, the `sending`
    /// message is removed and nothing stays recorded, so the call can simply be
    /// retried; if WeChat's answer was lost, the citizen may have the message, so it
    /// stays in the thread as `failed` (delivery unknown) and is never sent again.
    /// Everything after the first commit runs even if the caller leaves
    /// ([`Self::outlive_caller`]).
    #[tracing::instrument(skip_all, fields(ticket = %id))]
    ///
    /// `request_id`, the caller's id for this answer, makes a retry safe: a call
    /// whose caller gave up still sends its answer, and the retry reports how that
    /// answer left (waiting while it is being sent) instead of sending it again.
    pub async fn reply(
        &self,
        id: TicketId,
        agent: Agent<'_>,
        text: &AnswerText,
        request_id: Option<&str>,
    ) -> Result<(TicketRow, Delivery), AnswerError> {
        let actor = agent.actor();
        let (row, outgoing) = match self
            .take_turn(
                id,
                Some(agent),
                replyable,
                &actor,
                text.as_str(),
                request_id,
            )
            .await?
        {
            Turn::Take(row, outgoing) => (row, outgoing),
            Turn::Given(row, delivery) => return Ok((row, delivery)),
        };
        let this = self.clone();
        self.outlive_caller(async move { this.deliver(id, row, outgoing, &actor).await })
            .await
    }

    /// Sends answer `outgoing` (committed as `sending`) and settles it: the rest of
    /// [`Self::reply`].
    async fn deliver(
        &self,
        id: TicketId,
        row: TicketRow,
        outgoing: Outgoing,
        actor: &str,
    ) -> Result<(TicketRow, Delivery), AnswerError> {
        let delivery = match self.deliverer.send_answer(&row, &outgoing.body).await {
            Ok(delivery) => delivery,
            Err(error) => {
                let settled = match &error {
                    DeliveryError::OutcomeUnknown(_) => self.give_up(outgoing.id).await,
                    _ => thread::discard(&self.db, outgoing.id).await,
                };
                if let Err(settle) = settled {
                    // The sweeper gives it up later (as delivery unknown).
                    tracing::warn!(error = %settle, "unsent answer not settled");
                }
                return Err(error.into());
            }
        };
        let recorded = self.record_reply(id, &outgoing, delivery, actor).await;
        if recorded.is_err() && delivery == Delivery::Sent {
            // The citizen has the answer but the thread does not say so: the sweeper
            // will mark it `failed` (delivery unknown). Say so loudly.
            tracing::error!(ticket = %id, "answer sent but not recorded");
        }
        // The citizen may have written while it was decided (see
        // `flush_if_window_open`); it stays held if that fails.
        if recorded.is_ok()
            && delivery == Delivery::Held
            && let Err(error) = self
                .deliverer
                .flush_if_window_open(&row.account, &row.openid)
                .await
        {
            tracing::warn!(ticket = %id, %error, "held answer not flushed");
        }
        self.outbox.notify();
        Ok((recorded?, delivery))
    }

    /// Runs `work` in a task of its own, which the drain waits for, and returns its
    /// result. Once a message is committed as `sending`, its caller may leave at any
    /// moment (the agent's deadline, a proxy's timeout) and tonic then drops the
    /// handler: a message left `sending` locks the ticket's next answers out until
    /// the sweeper gives it up as possibly delivered, though WeChat never had it,
    /// and held answers claimed for a flush would be given up the same way.
    async fn outlive_caller<T: Send + 'static>(
        &self,
        work: impl Future<Output = Result<T, AnswerError>> + Send + 'static,
    ) -> Result<T, AnswerError> {
        self.drain
            .spawn(work.in_current_span())
            .await
            .unwrap_or_else(|error| Err(AnswerError::Interrupted(error)))
    }

    /// Marks `sending` message `message` failed with its delivery unknown.
    async fn give_up(&self, message: uuid::Uuid) -> Result<(), sqlx::Error> {
        let mut tx = self.db.begin().await?;
        thread::fail_unknown(&mut tx, message).await?;
        tx.commit().await
    }

    /// Records `text` by `author` as the ticket's next `sending` message once no
    /// other message to it is being sent, waiting (without holding a connection)
    /// for one that is: messages to a ticket reach the citizen in the order they
    /// were given. `admit` checks the locked ticket first, in the transaction that
    /// records the message (its state allows it), and again at every try.
    async fn take_turn<E>(
        &self,
        id: TicketId,
        agent: Option<Agent<'_>>,
        admit: impl for<'t> Fn(&'t mut Tx, &'t TicketRow) -> BoxFuture<'t, Result<(), E>>,
        author: &str,
        text: &str,
        request_id: Option<&str>,
    ) -> Result<Turn, E>
    where
        E: From<ActionError> + From<sqlx::Error>,
    {
        let deadline = tokio::time::Instant::now() + TURN_WAIT;
        loop {
            let mut tx = self.db.begin().await?;
            // The row lock (held for these few statements only) orders two
            // messages recorded at the same moment.
            let row = lock_reached(&mut tx, id, agent).await?;
            // A retry of an answer already recorded reports how that one left, before
            // the state check (the first attempt may have answered the ticket).
            let earlier = match request_id {
                Some(request_id) => thread::answer_of_request(&mut tx, id, request_id).await?,
                None => None,
            };
            let in_flight = match (&earlier, request_id) {
                (Some(_), _) => InFlight::Recorded,
                (None, Some(_)) => InFlight::NotRecorded,
                (None, None) => InFlight::Unidentified,
            };
            match earlier {
                Some((body, _)) if body != text => {
                    return Err(ActionError::RequestReused(id).into());
                }
                Some((_, delivery)) => match delivery.as_str() {
                    "sent" => return Ok(Turn::Given(row, Delivery::Sent)),
                    "held" => return Ok(Turn::Given(row, Delivery::Held)),
                    "sending" => {}
                    _ => return Err(ActionError::EarlierOutcomeUnknown(id).into()),
                },
                None => {
                    admit(&mut tx, &row).await?;
                    if !thread::is_sending(&mut tx, id).await? {
                        let outgoing =
                            thread::insert_sending(&mut tx, id, author, text, request_id).await?;
                        tx.commit().await?;
                        return Ok(Turn::Take(row, outgoing));
                    }
                }
            }
            tx.rollback().await?;
            if tokio::time::Instant::now() >= deadline {
                return Err(ActionError::AnswerInFlight(id, in_flight).into());
            }
            tokio::time::sleep(TURN_POLL).await;
        }
    }

    /// Settles answer `outgoing` (sent or held) and records the reply. A ticket
    /// closed while the answer was on its way stays closed; the answer and a history
    /// entry are recorded all the same, since the citizen has it.
    async fn record_reply(
        &self,
        id: TicketId,
        outgoing: &Outgoing,
        delivery: Delivery,
        actor: &str,
    ) -> Result<TicketRow, ActionError> {
        let mut tx = self.db.begin().await?;
        let before = lifecycle::lock(&mut tx, id, None).await?;
        thread::settle(&mut tx, outgoing.id, delivery.as_str()).await?;
        let note = match delivery {
            Delivery::Held => "held until the citizen writes again",
            Delivery::Sent => "",
        };
        let after = match lifecycle::change(
            &mut tx,
            &before,
            TicketEvent::Replied,
            Cause::now(actor, note),
        )
        .await
        {
            Err(ActionError::Transition(refused)) => {
                tickets::record_transition(
                    &mut tx,
                    id,
                    Some(refused.from),
                    refused.from,
                    actor,
                    "replied",
                    "answer delivered after the ticket changed state",
                )
                .await?;
                // The refused change did not mark the ticket as awaiting its
                // citizen: without it, a held answer would never go out with their
                // next message.
                let mut row = before;
                if delivery == Delivery::Held {
                    thread::await_citizen(&mut tx, id).await?;
                    row.awaiting_citizen = true;
                }
                row
            }
            other => other?,
        };
        tx.commit().await?;
        Ok(after)
    }
}

/// Locks ticket `id` if `agent` reaches it (its department and account); `None`:
/// the platform itself acts. Another account's ticket is `NotFound`, like a missing one.
async fn lock_reached(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    id: TicketId,
    agent: Option<Agent<'_>>,
) -> Result<TicketRow, ActionError> {
    let row = lifecycle::lock(tx, id, agent.as_ref().and_then(Agent::scope)).await?;
    match agent {
        Some(agent) if !agent.reaches(row.account.as_str(), &row.department) => {
            Err(ActionError::NotFound(id))
        }
        _ => Ok(row),
    }
}

/// The transaction `Tickets::take_turn` records a message in.
type Tx = sqlx::Transaction<'static, sqlx::Postgres>;

/// Admits an answer to a ticket whose state allows one.
fn replyable<'t>(_: &'t mut Tx, row: &'t TicketRow) -> BoxFuture<'t, Result<(), ActionError>> {
    let admitted = row
        .state()
        .map_err(ActionError::from)
        .and_then(|state| Ok(TicketEvent::Replied.apply(Some(state))?));
    futures::future::ready(admitted.map(drop)).boxed()
}

/// Admits a rating question to a ticket still closed, of a citizen not erased and
/// still following, that has none pending or asked since it was closed.
fn rating_due<'t>(tx: &'t mut Tx, row: &'t TicketRow) -> BoxFuture<'t, Result<(), NotAsked>> {
    async move {
        if row.state()? != TicketState::Closed {
            return Err(NotAsked::Reopened);
        }
        if row.openid.as_str() == ERASED_OPENID {
            return Err(NotAsked::Erased);
        }
        if tickets::rating_question_pending_or_asked(tx, row.ticket_id()).await? {
            return Err(NotAsked::AlreadyAsked);
        }
        if tickets::citizen_has_unfollowed(tx, row.ticket_id()).await? {
            return Err(NotAsked::Unfollowed);
        }
        Ok(())
    }
    .boxed()
}

/// Warns when dropped still armed: the close's rating question task it travels with
/// was dropped before it finished (the drain's deadline passed and the process
/// ended), so the citizen was not asked now. The held-answer retry asks it later
/// (`Tickets::ask_owed_rating_questions`) if the citizen's window is open.
struct AbandonedQuestion(Option<TicketId>);

impl Drop for AbandonedQuestion {
    fn drop(&mut self) {
        if let Some(ticket) = self.0 {
            tracing::warn!(
                %ticket,
                "rating question abandoned: the service stopped before asking it; \
                 the held-answer retry asks it later if the citizen's window is open"
            );
        }
    }
}

/// How long after a close its rating question counts as owed when none was
/// written: longer than the close's own task may take (its turn, `TURN_WAIT`, then
/// WeChat with the shared token, 25 s), so a question on its way is not raced
/// (which the turn's check would settle anyway: one question either way).
pub const QUESTION_OWED_AFTER: chrono::TimeDelta = chrono::TimeDelta::minutes(2);

/// Why a close's rating question was not asked (`Tickets::ask_for_rating`).
#[derive(Debug, thiserror::Error)]
enum NotAsked {
    /// Reopened before the question's turn came: its next close asks.
    #[error("the ticket was reopened before the question's turn")]
    Reopened,
    /// The citizen's data was erased (EraseCitizen) before the question's turn:
    /// they asked for no more of the service, and the ticket no longer knows them.
    #[error("the citizen was erased before the question's turn")]
    Erased,
    /// Another close's question is on its way or held, or was asked since the
    /// ticket was last closed.
    #[error("the ticket's rating question is already pending or asked")]
    AlreadyAsked,
    /// The citizen unfollowed, or followed again since the close: WeChat would
    /// refuse the question, a refused question is held, and it would go out after a
    /// re-follow days later, their next digit rating a ticket they no longer think
    /// of.
    #[error("the citizen unfollowed, or followed again since the close")]
    Unfollowed,
    #[error(transparent)]
    Failed(#[from] ActionError),
}

impl From<sqlx::Error> for NotAsked {
    fn from(error: sqlx::Error) -> Self {
        Self::Failed(error.into())
    }
}

/// A message's turn in the ticket's thread.
enum Turn {
    /// Recorded as `sending`: this call sends it.
    Take(TicketRow, Outgoing),
    /// The caller's request already recorded this answer, and it left so.
    Given(TicketRow, Delivery),
}

/// How long an answer waits for an earlier answer to the same ticket to leave.
/// Longer than a customer-service call with its retries; past it the caller is
/// told to try again.
const TURN_WAIT: std::time::Duration = std::time::Duration::from_secs(20);
const TURN_POLL: std::time::Duration = std::time::Duration::from_millis(50);

#[cfg(test)]
mod abandoned_question_tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::{AbandonedQuestion, TicketId};

    /// Counts the warnings logged while it is the default subscriber.
    struct Warnings(Arc<AtomicUsize>);

    impl tracing::Subscriber for Warnings {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            if *event.metadata().level() == tracing::Level::WARN {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    fn warnings_while(f: impl FnOnce()) -> usize {
        let count = Arc::new(AtomicUsize::new(0));
        tracing::subscriber::with_default(Warnings(count.clone()), f);
        count.load(Ordering::SeqCst)
    }

    #[test]
    fn a_question_task_dropped_unfinished_is_warned_of_and_a_finished_one_is_not() {
        let ticket = TicketId(uuid::Uuid::now_v7());
        // The task as the close spawns it, dropped (the process ending after the
        // drain's deadline) before its first poll.
        let task = {
            let abandoned = AbandonedQuestion(Some(ticket));
            async move {
                let mut abandoned = abandoned;
                abandoned.0 = None;
            }
        };
        assert_eq!(warnings_while(|| drop(task)), 1, "abandoned unsaid");
        assert_eq!(warnings_while(|| drop(AbandonedQuestion(None))), 0);
    }
}
