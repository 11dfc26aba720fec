//! `GET /wechat/{account}` (URL check) and `POST /wechat/{account}` (callbacks).
//!
//! A POST is checked in a fixed order, each failure with its own reason: account,
//! body size, query, timestamp window, `signature`, then (encrypted) `msg_signature`,
//! decryption and AppID, then the XML. An accepted callback is answered only after
//! JetStream's PubAck; the passive reply is asked for in parallel.

use std::borrow::Cow;
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use platform::ids::{EventId, IdError, OpenId};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Duration, Instant};
use wechat::crypto::KeySlot;
use wechat::message::{InboundEnvelope, InboundMessage, InboundType, MessageError, Payload};
use wechat::reply::{Answering, NO_REPLY, Reply};
use wechat::signature::{verify_msg_signature, verify_signature};
use wechat::xml::XmlError;

use super::{Account, AppState, CallbackError};
use crate::config::{AccountConfig, Mode};
use crate::event::inbound_event;
use crate::log_limit::LogLimiter;
use crate::publish::{Durable, PublishError};
use crate::replay::{Bound, Seen};
use crate::reply::{self, Fetched, ReplyKey, ReplyOutcome, ReplySource, ShareReason, UnsentReply};

/// How long a duplicate callback waits for the shared reply cache to hold its reply
/// (the first delivery's write may still be on its way).
const SHARED_CACHE_WAIT: Duration = Duration::from_millis(250);
/// The first pause before a replay check the ledger failed is tried again, doubling
/// up to [`CLAIM_PAUSE_MAX`].
const CLAIM_PAUSE: Duration = Duration::from_millis(50);
const CLAIM_PAUSE_MAX: Duration = Duration::from_millis(400);
/// The log limiter's cause for a replay check the ledger could not answer.
const LEDGER_UNAVAILABLE: &str = "signature_ledger_unavailable";
/// The log limiter's cause for a callback opened with the previous EncodingAESKey:
/// during a rotation, every callback WeChat still sends under the old key.
const PREVIOUS_KEY: &str = "previous_key_decrypt";
/// The log limiter's causes for a passive reply that is not sent (`invalid`): a
/// responder with a bug answers every callback so, and each is counted in
/// `gateway_replies_total{outcome="invalid"}`.
const REPLY_UNDECODABLE: &str = "passive_reply_undecodable";
const REPLY_REFUSED: &str = "passive_reply_refused";
/// The longest `MsgType` (or `Event`, for an event) a callback may have: it becomes
/// its subject's last token. WeChat's longest is 25 bytes (`subscribe_msg_popup_event`).
const TYPE_NAME_MAX: usize = 64;
/// The longest `echostr` a URL check echoes. WeChat's is a 64-bit number's digits
/// (19-20); letters and some room are allowed, markup and long text are not.
const ECHOSTR_MAX: usize = 64;

/// The query WeChat signs a callback with. Every field is optional here so that a
/// missing one is our `bad_query` naming it. Values borrow from the request's query
/// string unless they had to be percent-decoded (WeChat's never do).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CallbackQuery<'q> {
    signature: Option<Cow<'q, str>>,
    timestamp: Option<Cow<'q, str>>,
    nonce: Option<Cow<'q, str>>,
    echostr: Option<Cow<'q, str>>,
    encrypt_type: Option<Cow<'q, str>>,
    msg_signature: Option<Cow<'q, str>>,
}

impl<'q> CallbackQuery<'q> {
    /// Parses the raw query string. Other parameters (`openid`…) are ignored; a signed
    /// parameter given twice is refused, so no two readers can disagree on its value.
    /// Parsed by hand rather than with axum's `Query` because that one goes through
    /// serde and `serde_path_to_error`, 4% of the gateway's CPU at load.
    pub fn parse(raw: Option<&'q str>) -> Result<Self, CallbackError> {
        let mut query = Self::default();
        for (name, value) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            let field = match name.as_ref() {
                "signature" => &mut query.signature,
                "timestamp" => &mut query.timestamp,
                "nonce" => &mut query.nonce,
                "echostr" => &mut query.echostr,
                "encrypt_type" => &mut query.encrypt_type,
                "msg_signature" => &mut query.msg_signature,
                _ => continue,
            };
            if field.replace(value).is_some() {
                return Err(CallbackError::BadQuery("query"));
            }
        }
        Ok(query)
    }
}

/// The parameters that passed the signature check.
struct Signed<'a> {
    signature: &'a str,
    timestamp: &'a str,
    nonce: &'a str,
}

/// A callback's in-flight place (`MAX_IN_FLIGHT`), given up once the callback waits
/// on a JetStream or ledger attempt that failed or went unanswered: it is then
/// waiting out a stall, not working, and a stall of a few seconds held every place
/// until `PUBLISH_DEADLINE` and refused every callback past them `overloaded`, which
/// WeChat does not redeliver. The callbacks waiting so stay bounded by the body
/// budget and by the connections open at once (`MAX_CONNECTIONS`).
struct Place(Mutex<Option<OwnedSemaphorePermit>>);

impl Place {
    fn leave(&self) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take();
    }
}

/// Answers WeChat's URL check: `echostr` as received, after the signature check.
pub async fn verify_url(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(served) = state.inner.accounts.get(&id) else {
        return state.inner.refuse_unknown_account(true);
    };
    let account = &served.config;
    let checked = async {
        let query = CallbackQuery::parse(query.as_deref())?;
        let signed = authenticate(&state, account, &query, false)?;
        let echostr = query
            .echostr
            .as_deref()
            .ok_or(CallbackError::BadQuery("echostr"))?;
        // A safe-mode POST's signed query never enters the ledger (a write per callback
        // it cannot afford), so one captured from a proxy's log passes here for the
        // timestamp window: what it can make the gateway echo is bounded to the form
        // WeChat's own `echostr` has, never markup or a chosen text.
        if !is_wechat_echostr(echostr) {
            return Err(CallbackError::BadEchostr);
        }
        // Its signed query must not serve again for a plaintext callback, nor, on any
        // account, echo another `echostr` (not signed: a captured check replayed within
        // the timestamp window reflected whatever it was given). URL checks are rare.
        let latest = Instant::now() + state.inner.limits.callback_deadline;
        let echoed = Bound::Body(echostr.as_bytes());
        claim_signature(&state, account, &signed, echoed, latest, None).await?;
        Ok::<_, CallbackError>(echostr.to_owned())
    }
    .await;
    match checked {
        Ok(echostr) => {
            served.count_verified();
            tracing::info!(account = %account.id, "url check passed");
            (
                [
                    (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                    // The echo is the sender's text: never to be sniffed as markup.
                    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                ],
                echostr,
            )
                .into_response()
        }
        Err(error) => error.respond(&state.inner.logs, &account.id, |reason| {
            served.count_refused("url_check", reason);
        }),
    }
}

/// Receives a callback: verify, decrypt, publish durably, answer with the passive reply.
pub async fn receive(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    request: Request,
) -> Response {
    let started = Instant::now();
    let Some(served) = state.inner.accounts.get(&id) else {
        return state.inner.refuse_unknown_account(false);
    };
    let account = &served.config;
    let mut kind = "unknown";
    let response = match handle(
        &state,
        served,
        query.as_deref(),
        request,
        started,
        &mut kind,
    )
    .await
    {
        Ok(response) => response,
        Err(error) => {
            if error.is_held() {
                // WeChat redelivers only a callback it got no answer to in time. Held
                // here, once `handle` has dropped its in-flight place and the body: a
                // ledger or NATS outage must not take every place for the deadline.
                tokio::time::sleep_until(started + state.inner.limits.callback_deadline).await;
            }
            error.respond(&state.inner.logs, &account.id, |reason| {
                served.count_refused(kind, reason);
            })
        }
    };
    served.record_callback_seconds(started.elapsed().as_secs_f64());
    response
}

async fn handle(
    state: &AppState,
    served: &Account,
    query: Option<&str>,
    request: Request,
    started: Instant,
    kind: &mut &'static str,
) -> Result<Response, CallbackError> {
    let inner = &state.inner;
    let limits = &inner.limits;
    let account = &served.config;
    let query = CallbackQuery::parse(query)?;
    let encrypted = match account.mode {
        Mode::Plaintext => false,
        Mode::Safe => true,
        Mode::Compatible => {
            query.msg_signature.is_some() || query.encrypt_type.as_deref() == Some("aes")
        }
    };
    // The query is checked before the body is read: a request that is not signed
    // never holds an in-flight place while its body trickles in.
    let signed = authenticate(state, account, &query, encrypted)?;
    // The bodies being read are bounded in bytes, not by the in-flight places (taken
    // after the read): without it, connections trickling large bodies under one
    // captured signed query each buffered up to MAX_BODY_BYTES, with no bound on
    // their number. Held until the handler ends; none left means refuse now.
    let declared = declared_length(&request);
    if declared.is_some_and(|len| len > limits.max_body_bytes) {
        return Err(CallbackError::BodyTooLarge);
    }
    let Ok(_body_budget) = inner
        .body_budget
        .clone()
        .try_acquire_many_owned(limits.body_kib(declared))
    else {
        return Err(CallbackError::Overloaded);
    };
    // Nor does a signed one past WeChat's deadline, when its answer is of no use. A
    // body that came with the head (nearly all) is read without arming a timer.
    let read = read_body(request, limits.max_body_bytes);
    tokio::pin!(read);
    let body = match futures::poll!(&mut read) {
        std::task::Poll::Ready(body) => body?,
        std::task::Poll::Pending => {
            tokio::time::timeout_at(started + limits.callback_deadline, read)
                .await
                .map_err(|_| CallbackError::BodyTimeout)??
        }
    };
    // A place is taken only now, held until the answer is built or the callback
    // waits out a stall (`Place`); none left means refuse now, not queue. A body
    // still arriving waits on its own timer above, not in a place a callback that
    // came whole needs.
    let Ok(permit) = inner.in_flight.clone().try_acquire_owned() else {
        return Err(CallbackError::Overloaded);
    };
    let place = Place(Mutex::new(Some(permit)));
    if account.mode != Mode::Safe {
        // The signature does not cover the body: bind it to the first body it carried.
        // Encrypted callbacks of a compatible account too, or their signed query,
        // with the encryption dropped, would carry any plaintext body: bound to
        // encrypted bodies, each checked by its `msg_signature` next, since WeChat's
        // retry may be encrypted afresh (`replay`).
        // A ledger that cannot answer is held by `receive` (`is_held`).
        let latest = started + limits.callback_deadline;
        let bound = if encrypted {
            Bound::Encrypted(&body)
        } else {
            Bound::Body(&body)
        };
        claim_signature(state, account, &signed, bound, latest, Some(&place)).await?;
    }
    let (plaintext, opened_with) = open(state, served, &query, &signed, &body, encrypted)?;
    let message = InboundMessage::parse(plaintext.as_bytes())?;
    *kind = message.inbound_type().label();
    if message.header.to_user_name != account.original_id {
        return Err(CallbackError::WrongRecipient);
    }
    // The type names the event's subject, and nats-server closes the connection of a
    // client whose PUB line passes its `max_control_line` (4 KiB): a `MsgType` of
    // 5,000 letters cut every callback of the replica off NATS, at each of its own
    // publish attempts until the deadline, then at each redelivery.
    let (type_name, field) = match &message.payload {
        Payload::Event { event, .. } => (event, "event_too_long"),
        _ => (&message.header.msg_type, "msg_type_too_long"),
    };
    if type_name.len() > TYPE_NAME_MAX {
        return Err(CallbackError::BadType(field));
    }
    // Every consumer reads the sender as an `OpenId` and dead-letters an event whose
    // `FromUserName` it refuses (a control character, blank, too long: only a forged
    // body has one): one alert per consumer for a callback nobody can use.
    OpenId::parse(message.header.from_user_name.as_str()).map_err(CallbackError::BadOpenId)?;

    let event = inbound_event(
        &inner.namespace,
        &account.id,
        &message,
        &plaintext,
        SystemTime::now(),
    );
    // Consumers read the event_id as an `EventId` too (at most 512 bytes); the
    // `wechat` crate bounds an `EventKey` in it, not a `publish_id`.
    EventId::parse(event.event_id.as_str()).map_err(CallbackError::BadEventId)?;
    let key = ReplyKey::of(&event.event_id);
    let publish =
        inner
            .publisher
            .publish_noting(&event, Instant::now() + limits.publish_deadline, || {
                place.leave()
            });
    tokio::pin!(publish);
    // Both run at once; the reply is looked at as soon as it is there, the publish
    // may still be pending (or already done) then.
    let mut published = None;
    let fetched = {
        let fetch = inner.replier.fetch(
            &account.id,
            &key,
            &message,
            event.payload.clone(),
            started + limits.reply_budget,
        );
        tokio::pin!(fetch);
        loop {
            tokio::select! {
                biased;
                fetched = &mut fetch => break fetched,
                result = &mut publish, if published.is_none() => {
                    // Never storable: answered now, the reply not waited for.
                    if let Err(error) = result
                        && let Some(refused) = never_storable(error)
                    {
                        return Err(refused);
                    }
                    published = Some(result);
                }
            }
        }
    };
    // From here a cancelled handler (WeChat closed the connection) shares the reply.
    let mut unsent = match &fetched {
        Fetched::Reply {
            encoded,
            source: ReplySource::Asked | ReplySource::Edge,
        } => Some(UnsentReply::new(
            inner.replier.cache(),
            &account.id,
            key,
            encoded.clone(),
        )),
        _ => None,
    };
    let published = match (published, unsent.as_mut()) {
        (Some(published), _) => published,
        (None, None) => publish.await,
        // A publish still pending at REPLY_SHARE_AFTER answers late if at all, and
        // WeChat's retry (perhaps on another replica, ~5 s after the first delivery)
        // must find the reply already shared, not racing a write queued only at the
        // answer or, for a callback never made durable, past the deadline.
        (None, Some(unsent)) => {
            match tokio::time::timeout_at(started + limits.reply_share_after, &mut publish).await {
                Ok(published) => published,
                Err(_) => {
                    unsent.share(ShareReason::Late);
                    publish.await
                }
            }
        }
    };
    let durable = match published {
        Ok(durable) => durable,
        // No retry can store it (the publisher counted and logged it): WeChat is told
        // at once, and the reply is not shared for a retry that cannot succeed.
        Err(error) if let Some(refused) = never_storable(error) => {
            if let Some(unsent) = unsent {
                unsent.discard();
            }
            return Err(refused);
        }
        Err(_) => {
            // Shared now rather than when the handler returns past the deadline: the
            // retry comes right at WeChat's deadline.
            if let Some(unsent) = unsent.as_mut() {
                unsent.share(ShareReason::Undelivered);
            }
            // WeChat redelivers only a callback it got no answer to: `receive` holds
            // the answer past its deadline, so it never sees one and sends it again.
            return Err(CallbackError::NotDurable);
        }
    };
    let fetched = match fetched {
        // A retry of a callback nobody is asked about has no reply to share.
        Fetched::Reply {
            source: ReplySource::Cached,
            ..
        }
        | Fetched::Nothing(ReplyOutcome::NotAsked) => fetched,
        // A later attempt's duplicate too (`Repeated`): it may be WeChat's retry that
        // met a stall here while another replica had stored and shared the callback.
        // If it was our own earlier attempt, the bucket holds our reply or nothing.
        other if durable != Durable::New => {
            let cache_until =
                (Instant::now() + SHARED_CACHE_WAIT).min(started + limits.callback_deadline);
            match inner
                .replier
                .cache()
                .shared(&account.id, &key, cache_until)
                .await
            {
                // Ours, shared while the publish was pending: still answered by us.
                Some(encoded) if matches!(&other, Fetched::Reply { encoded: ours, .. } if *ours == encoded) => {
                    other
                }
                Some(encoded) => Fetched::Reply {
                    encoded,
                    source: ReplySource::Cached,
                },
                None => other,
            }
        }
        other => other,
    };
    if let Fetched::Nothing(missed) = fetched
        && crate::missed::leaves_marker(&message, missed)
    {
        // The reply was wanted but did not come back: interaction-svc sends it
        // through the customer-service API once this marker is durable. Awaited
        // before the `success`, so a gateway stopping now cannot lose it; one that
        // cannot be stored by WeChat's deadline gets no answer, as an inbound event
        // that cannot, and WeChat's retry asks for the reply again.
        let marker = crate::missed::marker(
            &inner.namespace,
            &account.id,
            &event,
            message.header.create_time,
            missed,
        );
        let until = started + limits.callback_deadline;
        let stored = inner
            .publisher
            .publish_noting(&marker, until, || place.leave())
            .await;
        served.count_missed(stored.is_ok());
        if stored.is_err() {
            // Held past `until` by `receive`.
            return Err(CallbackError::NotDurable);
        }
    }

    let (answer, outcome) = render(
        &inner.logs,
        account,
        &message,
        fetched,
        opened_with,
        &signed,
    );
    served.count_reply(outcome);
    // A fresh reply is in the answer only as `Answered` or `Edge` (else it failed
    // validation, or a retry's shared reply replaced it).
    match (unsent, outcome) {
        (Some(unsent), ReplyOutcome::Answered | ReplyOutcome::Edge) => {
            unsent.answered(started.elapsed() >= limits.reply_share_after);
        }
        (Some(unsent), _) => unsent.discard(),
        (None, _) => {}
    }
    // A later attempt's duplicate counts as accepted (c32de5a): all but always the
    // gateway's own earlier attempt, not a retry from WeChat.
    let duplicate = durable == Durable::Duplicate;
    served.count_answered(message.inbound_type(), duplicate);
    let accepted = if duplicate { "duplicate" } else { "accepted" };
    tracing::debug!(event = %event.log_ref(), accepted, reply = outcome.as_str(), "callback answered");
    let content_type = if matches!(
        outcome,
        ReplyOutcome::Answered | ReplyOutcome::Edge | ReplyOutcome::Cached
    ) {
        "application/xml; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, content_type)],
        answer,
    )
        .into_response())
}

/// Binds a signature an account that takes unencrypted callbacks accepted to the
/// first body it carried, or to encrypted bodies, on any account (see `replay`): the
/// same again is WeChat's retry, another is refused.
///
/// A failed or unanswered attempt (at most a quarter of `PUBLISH_DEADLINE` each) is
/// tried again after a short pause until half of `PUBLISH_DEADLINE` from the claim's
/// start, never past `latest` (the callback's deadline): the check fails closed, so
/// one attempt held every such callback through a JetStream stall of a second or two
/// (a leader change). A retried claim is safe: an attempt that was stored though
/// unanswered makes the next one a `Retry` of the same body.
/// A callback's `place` is given up at the first failed attempt.
async fn claim_signature(
    state: &AppState,
    account: &AccountConfig,
    signed: &Signed<'_>,
    bound: Bound<'_>,
    latest: Instant,
    place: Option<&Place>,
) -> Result<(), CallbackError> {
    let inner = &state.inner;
    let deadline = inner.limits.publish_deadline;
    // Counted from now, not from the request's arrival: its body may be read until
    // CALLBACK_DEADLINE, and a body slower than half of PUBLISH_DEADLINE left a
    // claim no time at all (a false "ledger unavailable", the callback held to 503).
    let until = (Instant::now() + deadline / 2).min(latest);
    let mut pause = CLAIM_PAUSE;
    let claimed = loop {
        let attempt_until = until.min(Instant::now() + deadline / 4);
        let claimed = tokio::time::timeout_at(
            attempt_until,
            inner.signatures.claim(signed.signature, bound),
        )
        .await
        .unwrap_or_else(|_| Err("timed out".to_owned()));
        if claimed.is_ok() {
            break claimed;
        }
        if let Some(place) = place {
            place.leave();
        }
        let next = Instant::now() + pause;
        if next >= until {
            break claimed;
        }
        tokio::time::sleep_until(next).await;
        pause = (pause * 2).min(CLAIM_PAUSE_MAX);
    };
    match claimed {
        Ok(Seen::First | Seen::Retry) => Ok(()),
        Ok(Seen::OtherBody) => Err(CallbackError::ReplayedSignature),
        Err(error) => {
            // Not a pass: the ledger is a stream of its own and can fail while
            // WECHAT_INBOUND takes publishes, and a replayed signature would then carry
            // any body in. Nor a refusal, which WeChat would not retry: the caller
            // holds the callback like one not made durable, and WeChat retries it.
            // Every callback of the outage meets it: a line per account and period.
            metrics::counter!("gateway_replay_check_failed_total").increment(1);
            let now = std::time::Instant::now();
            if let Some(suppressed) = inner.logs.admit(&account.id, LEDGER_UNAVAILABLE, now) {
                tracing::warn!(
                    account = %account.id,
                    %error,
                    suppressed,
                    "signature ledger unavailable; callback not accepted"
                );
            }
            Err(CallbackError::LedgerUnavailable)
        }
    }
}

/// Whether `echostr` has the form WeChat sends: 1 to [`ECHOSTR_MAX`] ASCII letters or
/// digits.
fn is_wechat_echostr(echostr: &str) -> bool {
    (1..=ECHOSTR_MAX).contains(&echostr.len()) && echostr.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The body's `Content-Length`, if it declares one.
fn declared_length(request: &Request) -> Option<usize> {
    request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
}

/// Reads the body up to `limit` bytes; an actual excess is `body_too_large` (a
/// declared one is refused before).
/// Takes the whole request rather than a `HeaderMap` extractor, which would copy every
/// header of every callback to read one.
async fn read_body(request: Request, limit: usize) -> Result<Bytes, CallbackError> {
    axum::body::to_bytes(request.into_body(), limit)
        .await
        .map_err(|error| {
            let too_large = error
                .into_inner()
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some();
            if too_large {
                CallbackError::BodyTooLarge
            } else {
                CallbackError::BodyUnreadable
            }
        })
}

/// Checks the query's presence, the timestamp window and the `signature`.
fn authenticate<'q>(
    state: &AppState,
    account: &AccountConfig,
    query: &'q CallbackQuery,
    needs_msg_signature: bool,
) -> Result<Signed<'q>, CallbackError> {
    use secrecy::ExposeSecret;
    let signature = query
        .signature
        .as_deref()
        .ok_or(CallbackError::BadQuery("signature"))?;
    let timestamp = query
        .timestamp
        .as_deref()
        .ok_or(CallbackError::BadQuery("timestamp"))?;
    let nonce = query
        .nonce
        .as_deref()
        .ok_or(CallbackError::BadQuery("nonce"))?;
    if needs_msg_signature && query.msg_signature.is_none() {
        return Err(CallbackError::BadQuery("msg_signature"));
    }
    let sent: u64 = timestamp
        .parse()
        .map_err(|_| CallbackError::BadQuery("timestamp"))?;
    if now_secs().abs_diff(sent) > state.inner.limits.timestamp_window.as_secs() {
        return Err(CallbackError::StaleTimestamp);
    }
    verify_signature(account.token.expose_secret(), timestamp, nonce, signature)
        .map_err(CallbackError::Signature)?;
    Ok(Signed {
        signature,
        timestamp,
        nonce,
    })
}

/// The message XML: the body itself, or the verified and decrypted `<Encrypt>` with
/// the key that opened it (`None`: the callback came in plain).
fn open<'b>(
    state: &AppState,
    served: &Account,
    query: &CallbackQuery,
    signed: &Signed<'_>,
    body: &'b Bytes,
    encrypted: bool,
) -> Result<(Cow<'b, str>, Option<KeySlot>), CallbackError> {
    use secrecy::ExposeSecret;
    let account = &served.config;
    let not_utf8 = || CallbackError::Message(MessageError::Xml(XmlError::NotUtf8));
    if !encrypted {
        return std::str::from_utf8(body)
            .map(|xml| (Cow::Borrowed(xml), None))
            .map_err(|_| not_utf8());
    }
    // Config guarantees a key for compatible and safe accounts.
    let crypto = account
        .crypto
        .as_ref()
        .ok_or(CallbackError::MissingEncrypt)?;
    let msg_signature = query
        .msg_signature
        .as_deref()
        .ok_or(CallbackError::BadQuery("msg_signature"))?;
    let envelope = InboundEnvelope::parse(body)?;
    let encrypt = envelope.encrypt.ok_or(CallbackError::MissingEncrypt)?;
    verify_msg_signature(
        account.token.expose_secret(),
        signed.timestamp,
        signed.nonce,
        &encrypt,
        msg_signature,
    )
    .map_err(CallbackError::MsgSignature)?;
    let (plaintext, slot) = crypto
        .decrypt_with_slot(&encrypt)
        .map_err(CallbackError::Decrypt)?;
    if slot == KeySlot::Previous {
        // The rotation's progress: WeChat moves to the new key on its own schedule.
        // Every callback until then meets this: counted each, a line per period.
        if let Some(counter) = &served.previous_key_decrypts {
            counter.increment(1);
        }
        let now = std::time::Instant::now();
        if let Some(suppressed) = state.inner.logs.admit(&account.id, PREVIOUS_KEY, now) {
            tracing::info!(
                account = %account.id,
                suppressed,
                "decrypted with the previous EncodingAESKey"
            );
        }
    }
    Ok((Cow::Owned(plaintext), Some(slot)))
}

/// The response body for what the reply path produced, sealed with the key that
/// opened the callback (`opened_with`; plain when it came in plain): mid-rotation,
/// WeChat reads the answer with the key it sent the callback with, not our new one.
fn render(
    logs: &LogLimiter,
    account: &AccountConfig,
    message: &InboundMessage,
    fetched: Fetched,
    opened_with: Option<KeySlot>,
    signed: &Signed<'_>,
) -> (String, ReplyOutcome) {
    use secrecy::ExposeSecret;
    let success = || NO_REPLY.to_owned();
    let (encoded, source) = match fetched {
        Fetched::Nothing(outcome) => return (success(), outcome),
        Fetched::Reply { encoded, source } => (encoded, source),
    };
    let body = match reply::decode(&encoded) {
        Ok(Some(body)) => body,
        Ok(None) => return (success(), ReplyOutcome::NoReply),
        Err(error) => {
            let now = std::time::Instant::now();
            if let Some(suppressed) = logs.admit(&account.id, REPLY_UNDECODABLE, now) {
                tracing::warn!(account = %account.id, %error, suppressed, "passive reply does not decode");
            }
            return (success(), ReplyOutcome::Invalid);
        }
    };
    let reply = Reply::to(message, now_secs(), body);
    let answering = Answering::of(message);
    let xml = match (&account.crypto, opened_with) {
        (Some(crypto), Some(slot)) => reply.to_encrypted_xml_with_key(
            answering,
            crypto,
            slot,
            account.token.expose_secret(),
            signed.timestamp,
            signed.nonce,
        ),
        _ => reply.to_xml(answering),
    };
    match xml {
        Ok(xml) => (
            xml,
            match source {
                ReplySource::Asked => ReplyOutcome::Answered,
                ReplySource::Edge => ReplyOutcome::Edge,
                ReplySource::Cached => ReplyOutcome::Cached,
            },
        ),
        Err(error) => {
            let now = std::time::Instant::now();
            if let Some(suppressed) = logs.admit(&account.id, REPLY_REFUSED, now) {
                tracing::warn!(
                    account = %account.id,
                    reason = error.reason(),
                    suppressed,
                    "passive reply refused"
                );
            }
            (success(), ReplyOutcome::Invalid)
        }
    }
}

/// Registers at 0 every `gateway_callbacks_total` series the alerts read, for each
/// configured account and `unknown`: a series first exported at its first callback
/// would hide that step from `rate()` and `increase()`, so a burst of `not_durable`
/// between two scrapes went unseen, and an account silent on a replica since its
/// start had no `accepted` series at 0 for `GovwxAccountSilent` to see.
pub(super) fn register_counters<'a>(accounts: impl IntoIterator<Item = &'a str>) {
    let zero = |account: &str, kind: &'static str, outcome: &'static str| {
        metrics::counter!(
            "gateway_callbacks_total",
            "account" => account.to_owned(),
            "type" => kind,
            "outcome" => outcome,
        )
        .increment(0);
    };
    zero("unknown", "unknown", "unknown_account");
    zero("unknown", "url_check", "unknown_account");
    for account in accounts {
        for kind in InboundType::LABELS {
            zero(account, kind, "accepted");
            for reason in CallbackError::AFTER_PARSING {
                zero(account, kind, reason);
            }
        }
        for reason in CallbackError::BEFORE_PARSING {
            zero(account, "unknown", reason);
        }
        for reason in CallbackError::URL_CHECK {
            zero(account, "url_check", reason);
        }
        zero(account, "url_check", "verified");
    }
}

/// The refusal of a callback whose event no attempt, ours or WeChat's, can ever
/// store: answered at once, not held for a retry. `None`: not such an error.
fn never_storable(error: PublishError) -> Option<CallbackError> {
    match error {
        PublishError::TooLarge { size } => Some(CallbackError::EventTooLarge { size }),
        // The publisher's guard (`dedup_key` hashes what a header cannot carry, and
        // `EventId` refuses control characters before): the event_id is unusable.
        PublishError::InvalidMessageId => {
            Some(CallbackError::BadEventId(IdError::Control("event_id")))
        }
        PublishError::NotDurable { .. } => None,
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
#[path = "callback_query_props.rs"]
mod query_props;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signed_parameters_are_read_decoded_and_others_ignored() {
        let query = CallbackQuery::parse(Some(
            "signature=abc&timestamp=1700000000&nonce=n%201&openid=o-1&encrypt_type=aes&msg_signature=def",
        ))
        .unwrap();
        assert_eq!(query.signature.as_deref(), Some("abc"));
        assert_eq!(query.nonce.as_deref(), Some("n 1"));
        assert_eq!(query.encrypt_type.as_deref(), Some("aes"));
        assert_eq!(query.msg_signature.as_deref(), Some("def"));
        assert_eq!(query.echostr, None);
        assert_eq!(
            CallbackQuery::parse(None).unwrap(),
            CallbackQuery::default()
        );
    }

    #[test]
    fn only_an_echostr_of_wechats_form_is_echoed() {
        for good in ["1616140317555161061", "abcXYZ09", &"7".repeat(ECHOSTR_MAX)] {
            assert!(is_wechat_echostr(good), "{good}");
        }
        let too_long = "7".repeat(ECHOSTR_MAX + 1);
        for bad in ["", "<b>", "a b", "1%0A2", "１２", "a-b", too_long.as_str()] {
            assert!(!is_wechat_echostr(bad), "{bad}");
        }
    }

    #[test]
    fn a_signed_parameter_given_twice_is_a_bad_query() {
        let error = CallbackQuery::parse(Some("signature=a&nonce=1&signature=b")).unwrap_err();
        assert!(
            matches!(error, CallbackError::BadQuery("query")),
            "{error:?}"
        );
        // Unsigned parameters may repeat: nothing reads them.
        assert!(CallbackQuery::parse(Some("openid=a&openid=b")).is_ok());
    }
}
