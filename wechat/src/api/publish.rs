//! Drafts (`/cgi-bin/draft/*`) and free publishing (`/cgi-bin/freepublish/*`).
//!
//! An article is written as a draft, submitted for publishing, and WeChat reports the
//! outcome asynchronously (a `PUBLISHJOBFINISH` event, or polling [`Client::publish_status`]).

use serde::{Deserialize, Serialize};

use super::{ApiError, Client, Repeat};

/// One article of a draft.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DraftArticle {
    /// The title.
    pub title: String,
    /// The author.
    #[serde(default)]
    pub author: String,
    /// The summary shown in the feed.
    #[serde(default)]
    pub digest: String,
    /// The HTML body.
    pub content: String,
    /// The "read the original" link.
    #[serde(default)]
    pub content_source_url: String,
    /// The cover image (permanent material media id).
    pub thumb_media_id: String,
    /// 1 opens comments.
    #[serde(default)]
    pub need_open_comment: u8,
    /// 1 restricts comments to followers.
    #[serde(default)]
    pub only_fans_can_comment: u8,
    /// The preview URL, set by WeChat in [`Client::draft_get`] answers.
    #[serde(default, skip_serializing)]
    pub url: String,
}

/// A draft as returned by [`Client::draft_get`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Draft {
    /// The articles.
    pub news_item: Vec<DraftArticle>,
    /// Creation time (Unix seconds), when WeChat gives it.
    #[serde(default)]
    pub create_time: Option<i64>,
    /// Last update time (Unix seconds), when WeChat gives it.
    #[serde(default)]
    pub update_time: Option<i64>,
}

/// WeChat's answer to a publish submission.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PublishSubmitted {
    /// The publish job's id (a decimal string).
    pub publish_id: String,
    /// The article's data id (for statistics).
    #[serde(default)]
    pub msg_data_id: Option<u64>,
}

/// The state of a publish job (`publish_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishState {
    /// 0: published.
    Success,
    /// 1: still publishing.
    Publishing,
    /// 2: refused for originality.
    OriginalityFailed,
    /// 3: failed.
    Failed,
    /// 4: refused in platform review.
    ReviewFailed,
    /// 5: deleted by the user after publishing.
    DeletedByUser,
    /// 6: banned by the platform.
    Banned,
    /// A code this crate does not know.
    Other(i32),
}

/// A publish job's status, from [`Client::publish_status`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PublishStatus {
    /// The publish job's id.
    pub publish_id: String,
    /// The raw status code; see [`PublishStatus::state`].
    pub publish_status: i32,
    /// The published article's id, once published.
    #[serde(default)]
    pub article_id: Option<String>,
    /// The published articles' URLs, once published.
    #[serde(default)]
    pub article_detail: Option<ArticleDetail>,
    /// The indexes of failed articles.
    #[serde(default)]
    pub fail_idx: Vec<u32>,
}

impl PublishStatus {
    /// Returns the typed state.
    pub fn state(&self) -> PublishState {
        match self.publish_status {
            0 => PublishState::Success,
            1 => PublishState::Publishing,
            2 => PublishState::OriginalityFailed,
            3 => PublishState::Failed,
            4 => PublishState::ReviewFailed,
            5 => PublishState::DeletedByUser,
            6 => PublishState::Banned,
            other => PublishState::Other(other),
        }
    }
}

/// The published articles of a job.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ArticleDetail {
    /// How many articles.
    pub count: u32,
    /// Each article's URL.
    #[serde(default)]
    pub item: Vec<PublishedArticle>,
}

/// One published article.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PublishedArticle {
    /// Its index in the draft, from 1.
    pub idx: u32,
    /// Its public URL.
    pub article_url: String,
}

#[derive(Serialize)]
struct Articles<'a> {
    articles: &'a [DraftArticle],
}

#[derive(Serialize)]
struct MediaId<'a> {
    media_id: &'a str,
}

#[derive(Deserialize)]
struct MediaIdOwned {
    media_id: String,
}

#[derive(Serialize)]
struct DeletePublished<'a> {
    article_id: &'a str,
    /// 0 deletes every article of the message; n (1-based) only the n-th.
    index: u32,
}

#[derive(Serialize)]
struct PublishId<'a> {
    publish_id: &'a str,
}

impl Client {
    /// Adds a draft (`POST /cgi-bin/draft/add`) and returns its media id.
    pub async fn draft_add(&self, articles: &[DraftArticle]) -> Result<String, ApiError> {
        // A repeat leaves at most an unused draft, which no follower sees.
        let added: MediaIdOwned = self
            .post("/cgi-bin/draft/add", &Articles { articles })
            .await?;
        Ok(added.media_id)
    }

    /// Reads a draft (`POST /cgi-bin/draft/get`).
    pub async fn draft_get(&self, media_id: &str) -> Result<Draft, ApiError> {
        self.post("/cgi-bin/draft/get", &MediaId { media_id }).await
    }

    /// Deletes a draft (`POST /cgi-bin/draft/delete`).
    pub async fn draft_delete(&self, media_id: &str) -> Result<(), ApiError> {
        self.post_ack("/cgi-bin/draft/delete", &MediaId { media_id }, Repeat::Safe)
            .await
    }

    /// Submits a draft for publishing (`POST /cgi-bin/freepublish/submit`).
    pub async fn publish_submit(&self, media_id: &str) -> Result<PublishSubmitted, ApiError> {
        // It carries no key: a repeat would publish the draft twice.
        self.post_with(
            "/cgi-bin/freepublish/submit",
            &MediaId { media_id },
            Repeat::Once,
        )
        .await
    }

    /// Reads a publish job's status (`POST /cgi-bin/freepublish/get`).
    pub async fn publish_status(&self, publish_id: &str) -> Result<PublishStatus, ApiError> {
        self.post("/cgi-bin/freepublish/get", &PublishId { publish_id })
            .await
    }

    /// Deletes a published article (`POST /cgi-bin/freepublish/delete`): `index` 0
    /// deletes every article of the message, n (1-based) only the n-th. The article
    /// disappears for readers; it cannot be undone.
    pub async fn publish_delete(&self, article_id: &str, index: u32) -> Result<(), ApiError> {
        self.post_ack(
            "/cgi-bin/freepublish/delete",
            &DeletePublished { article_id, index },
            Repeat::Safe,
        )
        .await
    }
}
