//! Answers to citizens through WeChat's customer-service API.
//!
//! WeChat accepts a customer-service message only within 48 hours of the citizen's
//! last interaction (errcode 45015 outside it) and at most 20 per window (45047).
//! An answer outside the window is therefore *held*: stored with delivery `held`,
//! the ticket marked `awaiting_citizen`, and sent by [`Deliverer::flush_held`] as
//! soon as the citizen writes again (the inbound consumer calls it); a flush a busy
//! or unreachable WeChat did not take is retried by [`Deliverer::retry_held`]
//! (`jobs::held_retry`) while the window is open.
//!
//! No transaction is open while WeChat is called: a message is committed as
//! `sending` first and settled afterwards (`store::thread`); answering a ticket is
//! `app::tickets::Tickets::reply`.

use platform::ids::{AccountId, OpenId};
use std::collections::HashMap;
use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use platform::nats::Namespace;
use sqlx::PgPool;
use wechat::api::custom::CustomMessage;
use wechat::api::{ApiError, Client, ErrCode};
use wechat::token::{SharedCacheConfig, SharedTokenCache, TokenSource};

use crate::config::WechatApiConfig;
use crate::domain::Delivery;
use crate::store::tickets::{self, ActionError, TicketRow};
use crate::store::{followers_read, thread};

/// The question sent after a ticket is closed; the citizen's next lone digit is the
/// rating (recorded by the inbound consumer, see `domain::rating`).
pub const RATING_QUESTION: &str = "请对本次答复评分，回复数字1-5";

/// WeChat's customer-service window after a citizen's last interaction.
pub const WINDOW: TimeDelta = TimeDelta::hours(48);

/// What left a customer-service call's outcome unknown, as an agent is told it:
/// WeChat answering "system busy" to a message it does not dedup (the client did
/// not retry it: `ApiError::Wechat { unconfirmed: true }`) is not an answer lost,
/// and saying "lost" sent agents looking for a network fault.
pub fn unknown_because(error: &ApiError) -> &'static str {
    match error {
        ApiError::Wechat {
            unconfirmed: true, ..
        } => "WeChat answered \"system busy\" (-1), as it may after sending",
        _ => "WeChat's answer was lost (a timeout, a 5xx)",
    }
}

/// Why an answer could not be delivered (a held answer is not a failure).
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The ticket's account has no API credentials on this install.
    #[error("account {0} has no WeChat API credentials configured")]
    UnknownAccount(String),
    /// WeChat refused the message for a reason retrying will not fix soon (45047: the
    /// window's 20 messages are used up; 40003: unknown openid; 48001: not allowed).
    #[error("WeChat refused the message (errcode {0})")]
    Refused(ErrCode),
    /// WeChat could not be reached, or refused the call for now (its per-minute
    /// limit, a busy token fetch); nothing was sent and the caller may try again.
    #[error("WeChat API unavailable: {0}")]
    Unavailable(#[source] ApiError),
    /// The account's daily quota of customer-service messages is used up (45009):
    /// nothing was sent, and WeChat refuses every message until it resets the quota.
    /// Not retried before then (a retry only fails the same way): a reply or missed
    /// reply is given up, held answers wait for the reset (`daily_quota_reset`).
    #[error(
        "WeChat's daily quota of customer-service messages is used up (errcode 45009); \
         it resets at midnight, Beijing time"
    )]
    DailyQuota,
    /// WeChat's answer was lost (a timeout, a proxy's 5xx), or WeChat answered
    /// "system busy", which it may answer after sending: the message may have reached
    /// the citizen. It is recorded as failed and never sent again.
    #[error("{because}, the message may have reached the citizen: {0}", because = unknown_because(.0))]
    OutcomeUnknown(#[source] ApiError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// Why a reply to a ticket failed: the ticket refused it, or WeChat did.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    #[error(transparent)]
    Action(#[from] ActionError),
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
    /// The task sending the answer ended without a result (it panicked, or the
    /// runtime stopped): the answer may or may not be on its way.
    #[error("the answer's delivery stopped unexpectedly ({0}); see the ticket's thread")]
    Interrupted(#[source] tokio::task::JoinError),
}

impl From<sqlx::Error> for AnswerError {
    fn from(error: sqlx::Error) -> Self {
        Self::Action(ActionError::Database(error))
    }
}

/// Sends answers with one API client per account. Cheap to clone.
#[derive(Clone)]
pub struct Deliverer {
    db: PgPool,
    clients: Arc<HashMap<String, Client>>,
    /// The first wait before held answers a busy WeChat did not take are retried.
    retry_backoff: TimeDelta,
}

impl std::fmt::Debug for Deliverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deliverer")
            .field("accounts", &self.clients.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Deliverer {
    /// A deliverer over ready clients, keyed by account id.
    pub fn new(db: PgPool, clients: HashMap<String, Client>) -> Self {
        Self {
            db,
            clients: Arc::new(clients),
            retry_backoff: TimeDelta::minutes(1),
        }
    }

    /// Waits `backoff` (doubling with each failure) before retrying held answers a
    /// busy or unreachable WeChat did not take (`HELD_RETRY_BACKOFF`; default 1 minute).
    pub fn with_retry_backoff(mut self, backoff: std::time::Duration) -> Self {
        self.retry_backoff = TimeDelta::from_std(backoff).unwrap_or(thread::RETRY_BACKOFF_MAX);
        self
    }

    /// Builds a client per configured account, all sharing the access-token cache in
    /// the namespace's NATS KV bucket (one token per appid across every replica and
    /// every service).
    pub async fn connect(
        db: PgPool,
        jetstream: &async_nats::jetstream::Context,
        namespace: &Namespace,
        config: &WechatApiConfig,
    ) -> Result<Self, ApiError> {
        let bucket = namespace.name(wechat::token::DEFAULT_BUCKET);
        let cache = SharedTokenCache::open(jetstream, SharedCacheConfig::new(bucket)).await?;
        let tokens = TokenSource::from(cache);
        let mut clients = HashMap::new();
        for account in &config.accounts {
            let client = Client::builder(&account.appid, account.secret.clone(), tokens.clone())
                .base_url(&config.base_url)
                .build()?;
            clients.insert(account.id.clone(), client);
        }
        Ok(Self::new(db, clients))
    }

    fn client(&self, account: &AccountId) -> Result<&Client, DeliveryError> {
        self.clients
            .get(account.as_str())
            .ok_or_else(|| DeliveryError::UnknownAccount(account.to_string()))
    }

    /// Sends `text` to the citizen of `ticket` if they are inside the 48-hour window;
    /// otherwise (or if WeChat says 45015) reports it held. Writes nothing. While
    /// anything is held for the citizen it is held too, behind it: the flush that
    /// follows sends them all, oldest first, so a new answer never overtakes one
    /// the citizen has not had yet.
    #[tracing::instrument(skip_all, fields(ticket = %ticket.id, account = %ticket.account))]
    pub async fn send_answer(
        &self,
        ticket: &TicketRow,
        text: &str,
    ) -> Result<Delivery, DeliveryError> {
        let client = self.client(&ticket.account)?;
        if tickets::citizen::awaits_citizen(&self.db, &ticket.account, &ticket.openid).await? {
            record_outcome(&ticket.account, "held");
            return Ok(Delivery::Held);
        }
        let last =
            followers_read::last_interaction(&self.db, &ticket.account, &ticket.openid).await?;
        let in_window = last.is_some_and(|at| Utc::now() - at < WINDOW);
        if !in_window {
            // Calling WeChat would only cost quota to learn 45015.
            record_outcome(&ticket.account, "held");
            return Ok(Delivery::Held);
        }
        let outcome = classify(
            client
                .send_custom_message(&CustomMessage::text(ticket.openid.as_str(), text))
                .await,
        );
        record_outcome(
            &ticket.account,
            match &outcome {
                Ok(Delivery::Sent) => "sent",
                Ok(Delivery::Held) => "held",
                Err(DeliveryError::Refused(_) | DeliveryError::DailyQuota) => "refused",
                Err(DeliveryError::OutcomeUnknown(_)) => "unknown",
                Err(_) => "unavailable",
            },
        );
        outcome
    }

    /// Sends every answer held for citizen `openid` of `account`, oldest first, and
    /// marks them sent; a ticket with nothing held any more stops awaiting the
    /// citizen. Call it after the citizen's message is committed (their window is
    /// open again). Stops at the first message WeChat does not take; what was sent
    /// before it stays marked sent, the rest stays held. A message whose answer from
    /// WeChat was lost is given up (`failed`, delivery unknown), not held: the
    /// citizen may have it. Returns how many were sent.
    ///
    /// The held messages are claimed (`sending`) and committed before WeChat is
    /// called, so a concurrent flush finds nothing to send twice.
    #[tracing::instrument(skip_all, fields(account = %account))]
    pub async fn flush_held(
        &self,
        account: &AccountId,
        openid: &OpenId,
    ) -> Result<usize, DeliveryError> {
        let client = self.client(account)?;
        let held = thread::claim_held(&self.db, account, openid).await?;
        if held.is_empty() {
            return Ok(0);
        }
        let mut sent = Vec::with_capacity(held.len());
        let mut failure = None;
        for message in &held {
            let result = client
                .send_custom_message(&CustomMessage::text(openid.as_str(), &message.body))
                .await;
            match classify(result) {
                Ok(Delivery::Sent) => sent.push(message.id),
                // Still outside the window (or unfollowed): keep the rest held.
                Ok(Delivery::Held) => break,
                Err(error) => {
                    failure = Some(error);
                    break;
                }
            }
        }
        let unknown = match &failure {
            Some(DeliveryError::OutcomeUnknown(_)) => Some(held[sent.len()].id),
            _ => None,
        };
        let kept: Vec<uuid::Uuid> = held[sent.len() + usize::from(unknown.is_some())..]
            .iter()
            .map(|m| m.id)
            .collect();
        // A transient failure inside the window is retried by the sweeper's held-answer
        // pass; otherwise the citizen's next message brings the rest.
        let then = match &failure {
            Some(DeliveryError::Unavailable(_)) => thread::Kept::Retry {
                backoff: self.retry_backoff,
            },
            // No use retrying before the quota resets; after it, the window (48 h)
            // usually still lasts.
            Some(DeliveryError::DailyQuota) => thread::Kept::RetryAt {
                at: daily_quota_reset(Utc::now()),
            },
            _ => thread::Kept::UntilCitizenWrites,
        };
        let mut tx = self.db.begin().await?;
        thread::settle_flush(&mut tx, &sent, &kept, then).await?;
        if let Some(message) = unknown {
            thread::fail_unknown(&mut tx, message).await?;
        }
        tx.commit().await?;
        record_flush(account, sent.len());
        tracing::info!(sent = sent.len(), held = kept.len(), "held answers flushed");
        match failure {
            Some(error) => Err(error),
            None => Ok(sent.len()),
        }
    }

    /// Retries the held answers due at `now` (their flush met a transient WeChat
    /// failure) of citizens whose window is still open, up to `limit` messages'
    /// citizens per call; safe on every replica at once (see
    /// `thread::lease_due_retries`). Returns how many citizens were tried and how
    /// many answers were sent.
    #[tracing::instrument(skip_all)]
    pub async fn retry_held(
        &self,
        now: chrono::DateTime<Utc>,
        limit: i64,
        drain: &platform::shutdown::Drain,
    ) -> Result<RetryReport, DeliveryError> {
        let citizens = thread::lease_due_retries(&self.db, now, WINDOW, limit).await?;
        let mut report = RetryReport::default();
        for (account, openid) in &citizens {
            // What is left keeps its lease and is retried once it runs out.
            if drain.is_stopping() {
                break;
            }
            report.citizens += 1;
            match self.flush_held(account, openid).await {
                Ok(sent) => report.sent += sent,
                Err(error) => {
                    tracing::warn!(%error, account = %account, "held answers retried, not sent; retrying later")
                }
            }
        }
        Ok(report)
    }

    /// Sends what is held for the citizen if their window is open now. Call it after
    /// an answer was recorded held: a citizen who wrote while it was being decided
    /// had their held answers flushed before it was `held` (it was still `sending`),
    /// so without this it would wait for their next message.
    pub async fn flush_if_window_open(
        &self,
        account: &AccountId,
        openid: &OpenId,
    ) -> Result<usize, DeliveryError> {
        let last = followers_read::last_interaction(&self.db, account, openid).await?;
        if last.is_some_and(|at| Utc::now() - at < WINDOW) {
            self.flush_held(account, openid).await
        } else {
            Ok(0)
        }
    }

    /// Asks the citizen of a closed ticket to rate the answer and records the
    /// request (`rating_requested_at`). Outside the window, or if WeChat fails, the
    /// question is held like an answer and goes out when the citizen writes again;
    /// if WeChat's answer was lost it is given up instead (the citizen may have it)
    /// and counts as asked. A question WeChat did not take while the ticket was
    /// reopened is withdrawn, not held (`None`): the reopen withdraws what is held,
    /// but could not see it on its way.
    /// `question` is the [`RATING_QUESTION`], already committed as `sending`
    /// (`app::tickets` waits for the ticket's turn, so it follows the answers).
    #[tracing::instrument(skip_all, fields(ticket = %ticket.id))]
    pub async fn ask_for_rating(
        &self,
        ticket: &TicketRow,
        question: &thread::Outgoing,
    ) -> Result<Option<Delivery>, DeliveryError> {
        let outcome = self.send_answer(ticket, RATING_QUESTION).await;
        let mut tx = self.db.begin().await?;
        let closed = tickets::lock_closed(&mut tx, ticket.ticket_id()).await?;
        let delivery = match outcome {
            Err(DeliveryError::OutcomeUnknown(error)) => {
                tracing::warn!(%error, "rating question may not have been sent; not sending it again");
                thread::fail_unknown(&mut tx, question.id).await?;
                Delivery::Sent
            }
            outcome => {
                let delivery = outcome.unwrap_or_else(|error| {
                    tracing::warn!(%error, "rating question not sent; holding it");
                    Delivery::Held
                });
                if delivery == Delivery::Held && !closed {
                    thread::withdraw(&mut tx, question.id).await?;
                    tx.commit().await?;
                    return Ok(None);
                }
                thread::settle(&mut tx, question.id, delivery.as_str()).await?;
                delivery
            }
        };
        tickets::record_rating_request(&mut tx, ticket, delivery).await?;
        tx.commit().await?;
        if delivery == Delivery::Held
            && let Err(error) = self
                .flush_if_window_open(&ticket.account, &ticket.openid)
                .await
        {
            tracing::warn!(%error, "held rating question not flushed");
        }
        Ok(Some(delivery))
    }
}

/// What became of a reply the gateway missed ([`Deliverer::send_missed_reply`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MissedReply {
    /// Sent now through the customer-service API.
    Sent,
    /// Sent or given up by an earlier delivery of the marker: nothing was sent now.
    AlreadyHandled,
    /// Being sent by another delivery of the marker: ask again later (WeChat may not
    /// take it, and it is handed back for sending).
    BeingSent,
    /// The callback was applied and decided no reply.
    NoReply,
    /// The callback is not applied yet (its consumer lags): ask again later.
    NotApplied,
    /// WeChat refused it, or its answer was lost (the citizen may have it): given up,
    /// never sent again.
    GivenUp,
    /// WeChat did not take it (busy, over a quota, unreachable): handed back for
    /// another send, with the sends that failed so far (`send_failures`, counted in its
    /// row whichever replica sent).
    Unavailable {
        failures: u32,
        /// WeChat's error, for the log and a dead letter's reason.
        error: String,
    },
}

impl Deliverer {
    /// Sends, through the customer-service API, the passive reply decided for
    /// callback `event_id` when it was applied (`store::decided_replies`), which the
    /// gateway did not get in time (`events.v1.ReplyMissed`). Once: the reply is
    /// claimed (`sending`) and committed before WeChat is called, so a redelivered
    /// marker, or two replicas, send nothing twice. A busy or unreachable WeChat hands
    /// it back ([`MissedReply::Unavailable`], its failed sends counted) for the
    /// marker's redelivery.
    #[tracing::instrument(skip_all)]
    pub async fn send_missed_reply(&self, event_id: &str) -> Result<MissedReply, DeliveryError> {
        use crate::store::decided_replies::{self, Claimed};
        let decided = match decided_replies::claim(&self.db, event_id).await? {
            Claimed::Reply(decided) => decided,
            Claimed::Handled => return Ok(MissedReply::AlreadyHandled),
            Claimed::BeingSent => return Ok(MissedReply::BeingSent),
            Claimed::NoReply => return Ok(MissedReply::NoReply),
            Claimed::NotApplied => return Ok(MissedReply::NotApplied),
        };
        let client = match self.client(&decided.account) {
            Ok(client) => client,
            Err(error) => {
                decided_replies::settle(&self.db, event_id, "failed").await?;
                return Err(error);
            }
        };
        let Some(message) = missed_message(decided.openid.as_str(), &decided.reply) else {
            // Nothing the customer-service API carries (a media reply: interaction-svc
            // decides none).
            decided_replies::settle(&self.db, event_id, "failed").await?;
            return Ok(MissedReply::GivenUp);
        };
        let outcome = classify(client.send_custom_message(&message).await);
        record_outcome(
            &decided.account,
            match &outcome {
                Ok(Delivery::Sent) => "missed_reply_sent",
                Err(DeliveryError::Unavailable(_)) => "missed_reply_unavailable",
                _ => "missed_reply_given_up",
            },
        );
        match outcome {
            Ok(Delivery::Sent) => {
                decided_replies::settle(&self.db, event_id, "sent").await?;
                Ok(MissedReply::Sent)
            }
            Err(DeliveryError::Unavailable(error)) => {
                Ok(match decided_replies::release(&self.db, event_id).await? {
                    Some(failures) => MissedReply::Unavailable {
                        failures,
                        error: error.to_string(),
                    },
                    // No longer `sending`: the sweeper gave it up meanwhile.
                    None => MissedReply::AlreadyHandled,
                })
            }
            // 45015 (the window the callback itself opened is closed: an unfollow, a
            // marker past 48 hours), a refusal, or an answer lost.
            Ok(Delivery::Held) | Err(_) => {
                decided_replies::settle(&self.db, event_id, "failed").await?;
                Ok(MissedReply::GivenUp)
            }
        }
    }
}

/// The customer-service message carrying an encoded `PassiveReply` to `openid`: a
/// text, or a news reply's first card (WeChat's limit for a customer-service news
/// message, and all a reply to a citizen's message holds).
fn missed_message(openid: &str, encoded: &[u8]) -> Option<CustomMessage> {
    use prost::Message as _;
    use proto::events::v1::{PassiveReply, passive_reply::Body};
    match PassiveReply::decode(encoded).ok()?.body? {
        Body::Text(text) => Some(CustomMessage::text(openid, text.content)),
        Body::News(news) => {
            let card = news.articles.into_iter().next()?;
            Some(CustomMessage::news(
                openid,
                wechat::api::custom::NewsArticle {
                    title: card.title,
                    description: card.description,
                    url: card.url,
                    picurl: card.pic_url,
                },
            ))
        }
        _ => None,
    }
}

/// What one pass of [`Deliverer::retry_held`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryReport {
    /// Citizens whose held answers were tried again.
    pub citizens: usize,
    /// Answers sent.
    pub sent: usize,
}

/// When WeChat's daily quota of customer-service messages resets after `now`: the
/// next midnight Beijing time (UTC+8, no daylight saving), a minute late so the
/// retry does not race the reset.
fn daily_quota_reset(now: chrono::DateTime<Utc>) -> chrono::DateTime<Utc> {
    const BEIJING: TimeDelta = TimeDelta::hours(8);
    let beijing_day = (now + BEIJING).date_naive();
    let next_midnight = beijing_day
        .succ_opt()
        .and_then(|day| day.and_hms_opt(0, 0, 0))
        .map(|midnight| midnight.and_utc() - BEIJING);
    next_midnight.unwrap_or(now + TimeDelta::days(1)) + TimeDelta::minutes(1)
}

/// What a customer-service call's result means for the answer.
fn classify(result: Result<(), ApiError>) -> Result<Delivery, DeliveryError> {
    match result {
        Ok(()) => Ok(Delivery::Sent),
        // First: "system busy" to a message WeChat may have sent anyway (the client
        // does not retry it) is not a "try again", whatever its code says.
        Err(error) if error.outcome_unknown() => {
            tracing::warn!(%error, "customer-service call's outcome unknown");
            Err(DeliveryError::OutcomeUnknown(error))
        }
        Err(ApiError::Wechat { code, .. }) if code == ErrCode::RESPONSE_OUT_OF_TIME => {
            Ok(Delivery::Held)
        }
        Err(ApiError::Wechat { code, msg, .. }) if code == ErrCode::API_DAILY_QUOTA => {
            tracing::warn!(%code, %msg, "customer-service messages' daily quota used up until midnight, Beijing time");
            Err(DeliveryError::DailyQuota)
        }
        // -1 here came from a token fetch (the message itself was never sent).
        Err(ApiError::Wechat { code, .. })
            if code.is_busy() || code == ErrCode::API_MINUTE_QUOTA =>
        {
            Err(DeliveryError::Unavailable(ApiError::Wechat {
                code,
                msg: String::new(),
                unconfirmed: false,
            }))
        }
        Err(ApiError::Wechat { code, msg, .. }) => {
            tracing::warn!(%code, %msg, "wechat refused a customer-service message");
            Err(DeliveryError::Refused(code))
        }
        Err(error) => {
            tracing::warn!(%error, "customer-service call failed");
            Err(DeliveryError::Unavailable(error))
        }
    }
}

fn record_outcome(account: &AccountId, outcome: &'static str) {
    metrics::counter!(
        "interaction_answers_total",
        "account" => account.to_string(),
        "outcome" => outcome
    )
    .increment(1);
}

fn record_flush(account: &AccountId, sent: usize) {
    metrics::counter!("interaction_held_answers_sent_total", "account" => account.to_string())
        .increment(sent as u64);
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_daily_quota_resets_after_the_next_midnight_beijing_time() {
        let at = |s: &str| s.parse::<chrono::DateTime<Utc>>().unwrap();
        // 15:59 UTC is 23:59 in Beijing: the reset is a minute away.
        assert_eq!(
            super::daily_quota_reset(at("2026-12-07T15:59:00Z")),
            at("2026-12-07T16:01:00Z")
        );
        // 16:00 UTC is midnight in Beijing: the next reset is a day later.
        assert_eq!(
            super::daily_quota_reset(at("2026-12-07T16:00:00Z")),
            at("2026-12-08T16:01:00Z")
        );
        assert_eq!(
            super::daily_quota_reset(at("2026-12-31T03:00:00Z")),
            at("2026-12-31T16:01:00Z")
        );
    }

    use super::*;

    fn wechat(code: i64) -> Result<(), ApiError> {
        Err(ApiError::Wechat {
            code: ErrCode(code),
            msg: "x".into(),
            unconfirmed: false,
        })
    }

    #[test]
    fn busy_to_a_message_wechat_may_have_sent_is_an_unknown_outcome_not_a_retry() {
        let busy = Err(ApiError::Wechat {
            code: ErrCode::SYSTEM_BUSY,
            msg: "system error".into(),
            unconfirmed: true,
        });
        assert!(matches!(
            classify(busy),
            Err(DeliveryError::OutcomeUnknown(_))
        ));
    }

    #[test]
    fn the_daily_quota_used_up_fails_at_once_with_its_reason() {
        let error = classify(wechat(45009)).unwrap_err();
        assert!(matches!(error, DeliveryError::DailyQuota), "{error:?}");
        assert!(
            error.to_string().contains("midnight, Beijing time"),
            "{error}"
        );
    }

    #[test]
    fn out_of_window_holds_quota_refuses_and_busy_is_unavailable() {
        assert!(matches!(classify(Ok(())), Ok(Delivery::Sent)));
        assert!(matches!(classify(wechat(45015)), Ok(Delivery::Held)));
        assert!(matches!(
            classify(wechat(45047)),
            Err(DeliveryError::Refused(ErrCode(45047)))
        ));
        assert!(matches!(
            classify(wechat(-1)),
            Err(DeliveryError::Unavailable(_))
        ));
        assert!(matches!(
            classify(Err(ApiError::Timeout)),
            Err(DeliveryError::OutcomeUnknown(_))
        ));
        assert!(matches!(
            classify(Err(ApiError::Status(502))),
            Err(DeliveryError::OutcomeUnknown(_))
        ));
        assert!(matches!(
            classify(Err(ApiError::Config("x".into()))),
            Err(DeliveryError::Unavailable(_))
        ));
    }
}
