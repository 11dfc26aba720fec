//! Sending an article through the WeChat API client, outside any transaction:
//! `draft/add` (its media id kept at once, so a retry reuses the draft) then
//! `freepublish/submit` (no push, no quota) or `message/mass/sendall`
//! (pushed, counted; `clientmsgid` = the headline's id and send generation, so a
//! retry cannot send twice).
//! A multi-article message is one draft of its articles, headline first.
//! WeChat answers asynchronously; the job-finish consumer closes the loop.
//!
//! Every call first passes the [`CallGate`]: WeChat's 60 calls a minute per account
//! and API, counted in a ledger every replica shares, so a call WeChat would refuse
//! (45009/45011) is not made.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;
use sqlx::{PgPool, Postgres, Transaction};
use wechat::api::mass::{MassContent, MassSend, MassSendOutcome, MassStatus};
use wechat::api::media::ImageFile;
use wechat::api::publish::{DraftArticle, PublishStatus};
use wechat::api::{ApiError, Client, ErrCode};

use crate::domain::article::client_msg_id;
use crate::domain::quota::{self, AccountKind, CALLS_PER_MINUTE, RateLimited};
use crate::store::api_calls;
use crate::store::articles::{self, ArticleRow};

/// The API names the ledger counts (WeChat's paths without `/cgi-bin/`).
pub mod api {
    pub const DRAFT_ADD: &str = "draft/add";
    pub const DRAFT_DELETE: &str = "draft/delete";
    pub const FREEPUBLISH_SUBMIT: &str = "freepublish/submit";
    pub const FREEPUBLISH_DELETE: &str = "freepublish/delete";
    pub const FREEPUBLISH_GET: &str = "freepublish/get";
    pub const MASS_SENDALL: &str = "message/mass/sendall";
    pub const MASS_PREVIEW: &str = "message/mass/preview";
    pub const MASS_DELETE: &str = "message/mass/delete";
    pub const MASS_GET: &str = "message/mass/get";
    pub const UPLOADIMG: &str = "media/uploadimg";
    pub const ADD_MATERIAL: &str = "material/add_material";
    pub const DEL_MATERIAL: &str = "material/del_material";
}

/// What WeChat gave back for a send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handed {
    pub media_id: String,
    pub publish_id: Option<String>,
    pub mass_msg_id: Option<String>,
    pub msg_data_id: Option<String>,
}

/// How far down its list of openids a preview got.
#[derive(Debug)]
pub struct Previewed {
    /// How many of the openids, from the first, WeChat took the preview for.
    pub sent: usize,
    /// Why it stopped before the end of the list (the preview to `openids[sent]`
    /// failed, or was not made): `None` when every openid was sent to.
    pub stopped: Option<SendError>,
}

/// Why a send did not reach WeChat's queue.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Worth another attempt later (timeout, transport, busy, rate limit).
    #[error("transient: {0}")]
    Transient(String),
    /// WeChat refused it; the publisher must act (the text is WeChat's error).
    #[error("{0}")]
    Permanent(String),
    /// WeChat already holds a mass send with this headline's `clientmsgid`: an
    /// earlier attempt, whose answer was lost, went out. Nothing was sent again.
    /// `msg_id` is that send's job id, as WeChat's 45065 answer names it.
    #[error("wechat already took this mass send (clientmsgid) in an earlier attempt")]
    AlreadySent { msg_id: Option<String> },
    /// As [`SendError::AlreadySent`], but the key was first handed over with another
    /// line-up (an article returned since): WeChat's job `msg_id` is that message, not
    /// the one handed over now, and which of its articles went out at which places is
    /// for a publisher to settle.
    #[error(
        "wechat already took this mass send (clientmsgid) with the message as it stood \
         before it changed"
    )]
    LineupChanged { msg_id: Option<String> },
    /// WeChat's answer to a mass send was lost (a timeout, a proxy's 5xx, an
    /// unreadable body), or was -1 until the client's last try or its repeat's 45066
    /// (`ApiError::outcome_unknown`): it may have gone out and been counted. Retried like a
    /// transient failure: the same `clientmsgid` cannot send it twice.
    #[error("{0}")]
    AnswerLost(String),
    /// WeChat refused a mass send's retry as too fast (45066): an earlier attempt
    /// with its `clientmsgid` reached WeChat less than a minute ago. Nothing was sent
    /// now; retried with the same `clientmsgid` no sooner than [`CLIENT_MSG_ID_WAIT`].
    #[error("{0}")]
    RetryTooFast(String),
    /// WeChat's answer to `freepublish/submit` was lost (a timeout, a proxy's 5xx,
    /// an unreadable body), or was "system busy" (-1), which WeChat may answer after
    /// publishing (the client does not retry a submit on it): the article may be
    /// published. Unlike a mass send it
    /// carries no key WeChat would refuse a second time, so it is never retried.
    #[error("{0}")]
    OutcomeUnknown(String),
    /// WeChat does not know the job asked about (`freepublish/get`'s 53500,
    /// `message/mass/get`'s 40007): not a fault of the call, and no verdict.
    #[error("wechat does not know the job: {0}")]
    NoSuchJob(String),
    /// The per-minute limit would be broken: nothing was called.
    #[error(transparent)]
    RateLimited(#[from] RateLimited),
    /// The article left this send (cancelled, returned, edited, or failed by the
    /// stuck-send sweep and perhaps published again since: another send token)
    /// while its draft was being made or before it was handed over: nothing was
    /// kept or sent. `draft` is the WeChat draft this send made and no article
    /// keeps, for deleting.
    #[error("the article left publishing while it was being sent")]
    Moved { draft: Option<String> },
    /// The ledger could not be read.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

impl From<ApiError> for SendError {
    fn from(error: ApiError) -> Self {
        let transient = match &error {
            ApiError::Timeout
            | ApiError::Http(_)
            | ApiError::Status(_)
            | ApiError::TokenCache(_)
            | ApiError::TokenUnavailable(_) => true,
            // -1 to a call the client does not repeat (WeChat may have carried it
            // out: a preview) is no "try again".
            ApiError::Wechat {
                unconfirmed: true, ..
            } => false,
            // The daily quota lasts until WeChat resets it: retrying (5 attempts
            // over 2.5 minutes) only fails the same way.
            ApiError::Wechat { code, .. } if *code == ErrCode::API_DAILY_QUOTA => {
                return Self::Permanent(format!(
                    "{error}: WeChat's daily quota for this call is used up; it resets at \
                     midnight, Beijing time: publish again after then"
                ));
            }
            ApiError::Wechat { code, .. } => {
                code.is_busy()
                    || *code == ErrCode::API_MINUTE_QUOTA
                    || *code == ErrCode::CLIENT_MSG_ID_RETRY_TOO_FAST
            }
            ApiError::Decode(_) | ApiError::Config(_) => false,
        };
        if transient {
            Self::Transient(error.to_string())
        } else {
            Self::Permanent(error.to_string())
        }
    }
}

/// What a publisher is told of a preview to `openids[i]` whose answer was lost.
fn preview_maybe_sent(openids: &[String], i: usize, error: &ApiError) -> String {
    let mut text = format!(
        "the preview to {} may have been sent: WeChat's answer was lost ({error})",
        openids[i]
    );
    if i > 0 {
        text.push_str(&format!("; it was sent to {}", openids[..i].join(", ")));
    }
    if i + 1 < openids.len() {
        text.push_str(&format!(
            "; it was not sent to {}",
            openids[i + 1..].join(", ")
        ));
    }
    text.push_str(
        ". Previewing again sends a second preview to each openid given: ask whether it \
         arrived, and preview only to those it did not reach",
    );
    text
}

/// A status lookup's error: [`SendError::NoSuchJob`] when WeChat answers `unknown`
/// (its errcode for a job id it does not know), as any other call's otherwise.
fn no_such_job(error: ApiError, unknown: ErrCode) -> SendError {
    if error.code() == Some(unknown) {
        SendError::NoSuchJob(error.to_string())
    } else {
        error.into()
    }
}

/// How long a mass send waits before it goes again with the same `clientmsgid`
/// after an attempt that may have reached WeChat (a lost answer, or 45066): WeChat
/// refuses a repeated `clientmsgid` within a minute of the send (45066), and only a
/// retry it takes as a repeat (45065) says the first went out.
pub const CLIENT_MSG_ID_WAIT: std::time::Duration = std::time::Duration::from_secs(65);

/// WeChat's per-minute limit, checked and counted before each call.
#[derive(Clone)]
pub struct CallGate {
    db: PgPool,
}

impl CallGate {
    /// A gate counting in `db`'s `api_call_ledger`.
    pub fn new(db: PgPool) -> Self {
        Self { db }
    }

    /// Counts one call of `api` for `account`, or refuses it saying when it is possible.
    pub async fn reserve(&self, account: &str, api: &str) -> Result<(), SendError> {
        let mut tx = self.db.begin().await?;
        check(&mut tx, account, api, 1).await?;
        api_calls::record(&mut tx, account, api, Utc::now()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// [`CallGate::reserve`] for the hand-over of send `token` of `head` (its
    /// `freepublish/submit` or mass send): counted only if the article is still
    /// `head.version` in `publishing` under that send once the ledger's lock is
    /// held, else [`SendError::Moved`]. A send that found itself still under way
    /// and then waited here (for the lock, or for its connection) may have been
    /// given up by the stuck-send sweep and the article published again meanwhile:
    /// the read after the lock sees every write committed before it. The row is read,
    /// not locked: `act()` locks it and then the ledger, so a lock taken here after
    /// the ledger's could deadlock with it, and one taken before would hold the sweep
    /// and the publisher behind a send waiting for the ledger.
    pub async fn reserve_send(
        &self,
        head: &ArticleRow,
        token: i64,
        api: &str,
    ) -> Result<(), SendError> {
        let mut tx = self.db.begin().await?;
        check(&mut tx, &head.account, api, 1).await?;
        if !articles::under_send(&mut *tx, head.id, head.version, token).await? {
            return Err(SendError::Moved { draft: None });
        }
        api_calls::record(&mut tx, &head.account, api, Utc::now()).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Refuses when `wanted` more calls of `api` would break the limit (without
/// counting them); `tx` holds the ledger's lock for the account's API.
pub async fn check(
    tx: &mut Transaction<'_, Postgres>,
    account: &str,
    api: &str,
    wanted: usize,
) -> Result<(), SendError> {
    api_calls::lock(tx, account, api).await?;
    let now = Utc::now();
    let calls =
        api_calls::calls_since(tx, account, api, now - chrono::Duration::seconds(60)).await?;
    quota::check_rate(CALLS_PER_MINUTE, &calls, wanted, now).map_err(|(used, next_at)| {
        SendError::RateLimited(RateLimited {
            account: account.to_owned(),
            api: api.to_owned(),
            used,
            limit: CALLS_PER_MINUTE,
            next_at,
        })
    })
}

/// The APIs a send of `row` calls (for the check before moving it to publishing).
pub fn send_apis(row: &ArticleRow) -> [&'static str; 2] {
    if row.channel == "mass_send" {
        [api::DRAFT_ADD, api::MASS_SENDALL]
    } else {
        [api::DRAFT_ADD, api::FREEPUBLISH_SUBMIT]
    }
}

/// One API client per account this install publishes to.
#[derive(Clone, Default)]
pub struct Publisher {
    clients: Arc<HashMap<String, (Client, AccountKind)>>,
    gate: Option<CallGate>,
}

impl Publisher {
    /// A publisher over ready clients, keyed by account id.
    pub fn new(clients: HashMap<String, (Client, AccountKind)>) -> Self {
        Self {
            clients: Arc::new(clients),
            gate: None,
        }
    }

    /// The same clients, each call counted against the per-minute limit in `db`.
    pub fn with_gate(mut self, db: PgPool) -> Self {
        self.gate = Some(CallGate::new(db));
        self
    }

    /// The account's kind (its mass-send quota), if the account is configured.
    pub fn kind(&self, account: &str) -> Option<AccountKind> {
        self.clients.get(account).map(|(_, kind)| *kind)
    }

    /// [`Publisher::pass`] for a hand-over (see [`CallGate::reserve_send`]). Without
    /// a gate (no ledger) the send's own check before it stands alone.
    async fn pass_send(&self, head: &ArticleRow, token: i64, api: &str) -> Result<(), SendError> {
        match &self.gate {
            Some(gate) => gate.reserve_send(head, token, api).await,
            None => Ok(()),
        }
    }

    async fn pass(&self, account: &str, api: &str) -> Result<(), SendError> {
        match &self.gate {
            Some(gate) => gate.reserve(account, api).await,
            None => Ok(()),
        }
    }

    /// Makes the message's WeChat draft (`draft/add`): `drafts` are its articles,
    /// the headline (`head`) first; a single article is a message of one. A draft
    /// already made for `head` (kept by an earlier attempt or a preview) is reused.
    pub async fn make_draft(
        &self,
        head: &ArticleRow,
        drafts: &[DraftArticle],
    ) -> Result<String, SendError> {
        if let Some(media_id) = &head.media_id {
            return Ok(media_id.clone());
        }
        let client = self.client(&head.account)?;
        self.pass(&head.account, api::DRAFT_ADD).await?;
        Ok(client.draft_add(drafts).await?)
    }

    /// Deletes a WeChat draft no article keeps (`draft/delete`): made by a send the
    /// article left meanwhile, or kept by an article returned for revision; left, it
    /// would sit in the account's draft box. One WeChat no longer has (deleted
    /// already: 40007) counts as deleted, so a delete again is harmless.
    pub async fn delete_draft(&self, account: &str, media_id: &str) -> Result<(), SendError> {
        let client = self.client(account)?;
        self.pass(account, api::DRAFT_DELETE).await?;
        match client.draft_delete(media_id).await {
            Err(error) if error.code() == Some(ErrCode::INVALID_MEDIA_ID) => Ok(()),
            done => Ok(done?),
        }
    }

    /// Hands the draft `media_id` of `head`'s message to WeChat: `freepublish/submit`
    /// or the mass send.
    #[tracing::instrument(skip_all, fields(article = %head.id, account = %head.account))]
    /// `token` is the send's: one the article has left by the time the call is
    /// counted is not made ([`CallGate::reserve_send`]).
    pub async fn send(
        &self,
        head: &ArticleRow,
        token: i64,
        media_id: &str,
    ) -> Result<Handed, SendError> {
        let client = self.client(&head.account)?;
        let media_id = media_id.to_owned();
        if head.channel == "mass_send" {
            let content = MassContent::mpnews(&media_id);
            let mut send = match head.mass_tag_id {
                Some(tag) if tag > 0 => MassSend::to_tag(tag as u64, content),
                _ => MassSend::to_all(content),
            }
            .client_msg_id(client_msg_id(head.id, head.send_generation));
            send.send_ignore_reprint = u8::from(head.send_ignore_reprint);
            self.pass_send(head, token, api::MASS_SENDALL).await?;
            let sent = match client.mass_send_keyed(&send).await {
                Ok(MassSendOutcome::Sent(sent)) => sent,
                Ok(MassSendOutcome::AlreadyTaken { msg_id }) => {
                    return Err(SendError::AlreadySent {
                        msg_id: msg_id.map(|id| id.to_string()),
                    });
                }
                // First: a 45066 answering the client's own repeat of an attempt
                // answered -1 is unconfirmed, as that attempt may have gone out.
                Err(error) if error.outcome_unknown() => {
                    return Err(SendError::AnswerLost(error.to_string()));
                }
                Err(error @ ApiError::Wechat { code, .. })
                    if code == ErrCode::CLIENT_MSG_ID_RETRY_TOO_FAST =>
                {
                    return Err(SendError::RetryTooFast(error.to_string()));
                }
                Err(error) => return Err(error.into()),
            };
            Ok(Handed {
                media_id,
                publish_id: None,
                mass_msg_id: Some(sent.msg_id.to_string()),
                msg_data_id: sent.msg_data_id.map(|id| id.to_string()),
            })
        } else {
            self.pass_send(head, token, api::FREEPUBLISH_SUBMIT).await?;
            let submitted = client.publish_submit(&media_id).await.map_err(|error| {
                if error.outcome_unknown() {
                    SendError::OutcomeUnknown(error.to_string())
                } else {
                    error.into()
                }
            })?;
            Ok(Handed {
                media_id,
                publish_id: Some(submitted.publish_id),
                mass_msg_id: None,
                msg_data_id: submitted.msg_data_id.map(|id| id.to_string()),
            })
        }
    }

    /// Deletes a published article on WeChat (`freepublish/delete` by its
    /// `article_id`, or `message/mass/delete` by the mass send's `msg_id`); `job` is
    /// the row holding the message's WeChat ids (the headline's), `index` the
    /// article's place in the message (0: the whole message).
    #[tracing::instrument(skip_all, fields(article = %job.id, account = %job.account))]
    pub async fn retract(&self, job: &ArticleRow, index: u32) -> Result<(), SendError> {
        let client = self.client(&job.account)?;
        if job.channel == "mass_send" {
            let msg_id = job
                .mass_msg_id
                .as_deref()
                .and_then(|id| id.parse::<u64>().ok())
                .ok_or_else(|| SendError::Permanent("no mass send to delete".into()))?;
            self.pass(&job.account, api::MASS_DELETE).await?;
            client.mass_delete(msg_id, index).await?;
        } else {
            let article_id = job
                .msg_data_id
                .as_deref()
                .ok_or_else(|| SendError::Permanent("no published article to delete".into()))?;
            self.pass(&job.account, api::FREEPUBLISH_DELETE).await?;
            client.publish_delete(article_id, index).await?;
        }
        Ok(())
    }

    /// Asks WeChat how a free publication's job stands (`freepublish/get`), for a job
    /// whose `PUBLISHJOBFINISH` did not come.
    pub async fn publish_status(
        &self,
        account: &str,
        publish_id: &str,
    ) -> Result<PublishStatus, SendError> {
        let client = self.client(account)?;
        self.pass(account, api::FREEPUBLISH_GET).await?;
        client
            .publish_status(publish_id)
            .await
            .map_err(|error| no_such_job(error, ErrCode::PUBLISH_NOT_FOUND))
    }

    /// Asks WeChat how a mass send's job stands (`message/mass/get`), for a job whose
    /// `MASSSENDJOBFINISH` did not come.
    pub async fn mass_status(&self, account: &str, msg_id: &str) -> Result<MassStatus, SendError> {
        let client = self.client(account)?;
        self.pass(account, api::MASS_GET).await?;
        client
            .mass_status(msg_id)
            .await
            .map_err(|error| no_such_job(error, ErrCode::INVALID_MEDIA_ID))
    }

    /// Sends a preview of draft `media_id` (`head`'s message, made or kept with
    /// [`Publisher::make_draft`]) to each of `openids` in turn, as a mass send would
    /// show it. A call that fails stops the loop, and what was done is answered all
    /// the same ([`Previewed`]): the followers before it have the preview on their
    /// phones, so the caller must not be told "try again" with the same list.
    #[tracing::instrument(skip_all, fields(article = %head.id, account = %head.account))]
    pub async fn preview(
        &self,
        head: &ArticleRow,
        media_id: &str,
        openids: &[String],
    ) -> Previewed {
        let mut previewed = Previewed {
            sent: 0,
            stopped: None,
        };
        let client = match self.client(&head.account) {
            Ok(client) => client,
            Err(error) => {
                previewed.stopped = Some(error);
                return previewed;
            }
        };
        let content = MassContent::mpnews(media_id);
        for (i, openid) in openids.iter().enumerate() {
            if let Err(error) = self.pass(&head.account, api::MASS_PREVIEW).await {
                previewed.stopped = Some(error);
                break;
            }
            if let Err(error) = client.mass_preview(openid, &content).await {
                // A preview reaches a follower's phone and has no key WeChat
                // would refuse a second time: one whose answer was lost is not
                // "try again", which would send it twice.
                previewed.stopped = Some(if error.outcome_unknown() {
                    SendError::OutcomeUnknown(preview_maybe_sent(openids, i, &error))
                } else {
                    error.into()
                });
                break;
            }
            previewed.sent = i + 1;
        }
        previewed
    }

    /// Uploads an image for a body (`media/uploadimg`); returns its WeChat URL.
    pub async fn upload_image(
        &self,
        account: &str,
        image: ImageFile<'_>,
    ) -> Result<String, SendError> {
        let client = self.client(account)?;
        self.pass(account, api::UPLOADIMG).await?;
        Ok(client.upload_image(image).await?)
    }

    /// Makes an image a permanent material (`material/add_material`); returns its media id.
    pub async fn add_image_material(
        &self,
        account: &str,
        image: ImageFile<'_>,
    ) -> Result<String, SendError> {
        let client = self.client(account)?;
        self.pass(account, api::ADD_MATERIAL).await?;
        Ok(client.add_image_material(image).await?.media_id)
    }

    /// Deletes a permanent material (`material/del_material`). One WeChat no longer
    /// has (deleted already: 40007) counts as deleted, as in [`Self::delete_draft`]:
    /// not a failure to log and count.
    pub async fn delete_material(&self, account: &str, media_id: &str) -> Result<(), SendError> {
        let client = self.client(account)?;
        self.pass(account, api::DEL_MATERIAL).await?;
        match client.delete_material(media_id).await {
            Err(error) if error.code() == Some(ErrCode::INVALID_MEDIA_ID) => Ok(()),
            done => Ok(done?),
        }
    }

    fn client(&self, account: &str) -> Result<&Client, SendError> {
        self.clients
            .get(account)
            .map(|(client, _)| client)
            .ok_or_else(|| {
                SendError::Permanent(format!("account {account} has no WeChat API credentials"))
            })
    }
}

/// The draft of an article as WeChat takes it, with its body and cover as given
/// (already rewritten to WeChat's image URLs and material id).
pub fn draft(article: &ArticleRow, body: String, thumb_media_id: String) -> DraftArticle {
    DraftArticle {
        title: article.title.clone(),
        author: article.author_name.clone(),
        digest: article.digest.clone(),
        content: body,
        content_source_url: article.source_url.clone(),
        thumb_media_id,
        need_open_comment: u8::from(article.open_comment),
        only_fans_can_comment: u8::from(article.only_fans_can_comment),
        url: String::new(),
    }
}
