//! The use cases of content-svc, one function each: load with `store`, decide
//! with `domain`, save with `store` and enqueue the event in the same transaction;
//! WeChat is called only after the commit. Every door (gRPC, the consumers, the
//! scheduler) calls these functions, so the rules have one home.
//!
//! Inputs arrive already parsed into domain types: decoding belongs to the door.

pub mod articles;
pub mod directory;
pub mod hall;
pub mod lexicon;
pub mod media;
pub mod menus;
pub mod messages;
pub mod publishing;
pub mod requests;
pub mod search;

use crate::domain::article::ArticleInputError;
use crate::domain::media::ImageError;
use crate::domain::quota::{QuotaExhausted, RateLimited};
use crate::domain::request::RequestIdError;
use crate::domain::review::{ArticleState, ReviewError};
use crate::domain::screening::LexiconError;
use crate::domain::service::ServiceError;

/// Why a use case failed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// No such article, or one the caller may not see (indistinguishable on purpose).
    #[error("article not found")]
    NotFound,
    /// An article of a message whose headline is with WeChat or sent cannot leave it.
    #[error(
        "the article's message {message} is {state} (its headline {headline}); an article \
         of it can no longer be returned for revision"
    )]
    MessageGoingOut {
        message: String,
        headline: String,
        state: ArticleState,
    },
    /// The article (which the caller sees) never had this version.
    #[error("the article has no version {0}")]
    VersionNotFound(i32),
    /// A rule of the workflow or a missing role.
    #[error(transparent)]
    Review(#[from] ReviewError),
    #[error(transparent)]
    Article(#[from] ArticleInputError),
    #[error(transparent)]
    Lexicon(#[from] LexiconError),
    /// A lexicon word put under another spelling of a stored entry (the same word
    /// once normalised: case, width, traditional → simplified).
    #[error(
        "「{word}」 is the lexicon's 「{existing}」 ({category}) once normalised (case, \
         width, traditional → simplified): put 「{existing}」 to change its category, or \
         delete it first"
    )]
    LexiconTaken {
        word: String,
        existing: String,
        category: String,
    },
    /// WeChat's mass-send quota is used up; nothing was sent.
    #[error(transparent)]
    Quota(#[from] QuotaExhausted),
    /// WeChat's per-minute call limit would be broken; nothing was called.
    #[error(transparent)]
    RateLimited(#[from] RateLimited),
    /// An uploaded image WeChat would not take (the message names the field).
    #[error(transparent)]
    Image(#[from] ImageError),
    /// WeChat refused a call this use case needs (its error, verbatim).
    #[error("WeChat refused: {0}")]
    Wechat(String),
    /// WeChat's answer to a call that is not safe to repeat was lost (a timeout, a
    /// 5xx) or was "system busy": it may have taken effect (a preview may be on
    /// the followers' phones), so it is no "try again" (the text says what to check).
    #[error("{0}")]
    OutcomeUnknown(String),
    /// A preview reached the followers at the head of its list and then stopped
    /// (WeChat refused the next one, was unavailable, or the per-minute limit was
    /// reached): the same list again would send those it reached a second preview,
    /// so it is no "try again" but names who is still to get it.
    /// The counts come first: a status message is cut at 200 characters, and 20
    /// real openids are longer; the caller knows its list.
    #[error(
        "the preview was sent to the first {} of {} openids ({}), not to the other {} \
         ({}): preview again to those {} only; {cause}",
        .sent.len(),
        .sent.len() + .not_sent.len(),
        .sent.join(", "),
        .not_sent.len(),
        .not_sent.join(", "),
        .not_sent.len()
    )]
    PreviewPartlySent {
        sent: Vec<String>,
        not_sent: Vec<String>,
        cause: String,
    },
    /// WeChat could not be reached or was busy (a timeout, a 5xx, "system busy"):
    /// nothing changed here, and the same call later may well succeed.
    #[error("WeChat is unavailable, try again: {0}")]
    WechatUnavailable(String),
    /// No such directory service, or one the caller's key does not reach.
    #[error("service not found")]
    ServiceNotFound,
    /// A directory service field is unusable (the message names it).
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// The caller's role or department may not make this change.
    #[error("{0}")]
    Forbidden(String),
    /// A request field is unusable; the message names it.
    #[error("{0}")]
    Invalid(String),
    /// A caller's request id used for another request, or whose service is gone.
    #[error(transparent)]
    Request(#[from] RequestIdError),
    /// The articles to change kept moving between messages while being locked;
    /// nothing was written, and trying again will do.
    #[error("article {article} kept moving between messages while it was being locked; try again")]
    KeptMoving { article: uuid::Uuid },
}

impl From<crate::store::articles::JobLockError> for AppError {
    fn from(error: crate::store::articles::JobLockError) -> Self {
        use crate::store::articles::JobLockError;
        match error {
            JobLockError::Database(error) => Self::Database(error),
            JobLockError::KeptMoving { article, .. } => Self::KeptMoving { article },
        }
    }
}
