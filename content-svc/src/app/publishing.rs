//! Sending an article through the WeChat API client, outside any transaction:
//! `draft/add` then `freepublish/submit` (no push, no quota) or `message/mass/sendall`
//! (pushed, counted; `clientmsgid` = the article's id so a retry cannot send twice).
//! WeChat answers asynchronously; the job-finish consumer closes the loop.

use std::collections::HashMap;
use std::sync::Arc;

use wechat::api::mass::{MassContent, MassSend};
use wechat::api::publish::DraftArticle;
use wechat::api::{ApiError, Client};

use crate::domain::quota::AccountKind;
use crate::store::articles::ArticleRow;

/// What WeChat gave back for a send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handed {
    pub media_id: String,
    pub publish_id: Option<String>,
    pub mass_msg_id: Option<String>,
    pub msg_data_id: Option<String>,
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
}

impl From<ApiError> for SendError {
    fn from(error: ApiError) -> Self {
        let transient = match &error {
            ApiError::Timeout
            | ApiError::Http(_)
            | ApiError::Status(_)
            | ApiError::TokenCache(_) => true,
            ApiError::Wechat { code, .. } => code.is_busy() || code.0 == 45009 || code.0 == 45011,
            ApiError::Decode(_) | ApiError::Config(_) => false,
        };
        if transient {
            Self::Transient(error.to_string())
        } else {
            Self::Permanent(error.to_string())
        }
    }
}

/// One API client per account this install publishes to.
#[derive(Clone, Default)]
pub struct Publisher {
    clients: Arc<HashMap<String, (Client, AccountKind)>>,
}

impl Publisher {
    /// A publisher over ready clients, keyed by account id.
    pub fn new(clients: HashMap<String, (Client, AccountKind)>) -> Self {
        Self {
            clients: Arc::new(clients),
        }
    }

    /// The account's kind (its mass-send quota), if the account is configured.
    pub fn kind(&self, account: &str) -> Option<AccountKind> {
        self.clients.get(account).map(|(_, kind)| *kind)
    }

    /// Hands `article` to WeChat.
    #[tracing::instrument(skip_all, fields(article = %article.id, account = %article.account))]
    pub async fn send(&self, article: &ArticleRow) -> Result<Handed, SendError> {
        let (client, _) = self.clients.get(&article.account).ok_or_else(|| {
            SendError::Permanent(format!(
                "account {} has no WeChat API credentials",
                article.account
            ))
        })?;
        let draft = draft(article);
        // A retry after the draft was made reuses it rather than adding another.
        let media_id = match &article.media_id {
            Some(media_id) => media_id.clone(),
            None => client.draft_add(std::slice::from_ref(&draft)).await?,
        };
        if article.channel == "mass_send" {
            let content = MassContent::mpnews(&media_id);
            let mut send = match article.mass_tag_id {
                Some(tag) if tag > 0 => MassSend::to_tag(tag as u64, content),
                _ => MassSend::to_all(content),
            }
            .client_msg_id(article.id.to_string());
            send.send_ignore_reprint = u8::from(article.send_ignore_reprint);
            let sent = client.mass_send(&send).await?;
            Ok(Handed {
                media_id,
                publish_id: None,
                mass_msg_id: Some(sent.msg_id.to_string()),
                msg_data_id: sent.msg_data_id.map(|id| id.to_string()),
            })
        } else {
            let submitted = client.publish_submit(&media_id).await?;
            Ok(Handed {
                media_id,
                publish_id: Some(submitted.publish_id),
                mass_msg_id: None,
                msg_data_id: submitted.msg_data_id.map(|id| id.to_string()),
            })
        }
    }

    /// Deletes a published article on WeChat (`freepublish/delete` by its
    /// `article_id`, or `message/mass/delete` by the mass send's `msg_id`).
    #[tracing::instrument(skip_all, fields(article = %article.id, account = %article.account))]
    pub async fn retract(&self, article: &ArticleRow) -> Result<(), SendError> {
        let client = self.client(&article.account)?;
        if article.channel == "mass_send" {
            let msg_id = article
                .mass_msg_id
                .as_deref()
                .and_then(|id| id.parse::<u64>().ok())
                .ok_or_else(|| SendError::Permanent("no mass send to delete".into()))?;
            client.mass_delete(msg_id, 0).await?;
        } else {
            let article_id = article
                .msg_data_id
                .as_deref()
                .ok_or_else(|| SendError::Permanent("no published article to delete".into()))?;
            client.publish_delete(article_id, 0).await?;
        }
        Ok(())
    }

    /// Sends a preview of the article to each of `openids` (as a mass send would
    /// show it), making its draft first if needed; returns the draft's media id.
    #[tracing::instrument(skip_all, fields(article = %article.id, account = %article.account))]
    pub async fn preview(
        &self,
        article: &ArticleRow,
        openids: &[String],
    ) -> Result<String, SendError> {
        let client = self.client(&article.account)?;
        let media_id = match &article.media_id {
            Some(media_id) => media_id.clone(),
            None => {
                client
                    .draft_add(std::slice::from_ref(&draft(article)))
                    .await?
            }
        };
        let content = MassContent::mpnews(&media_id);
        for openid in openids {
            client.mass_preview(openid, &content).await?;
        }
        Ok(media_id)
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

/// The draft of an article as WeChat takes it.
fn draft(article: &ArticleRow) -> DraftArticle {
    DraftArticle {
        title: article.title.clone(),
        author: article.author_name.clone(),
        digest: article.digest.clone(),
        content: article.body.clone(),
        content_source_url: article.source_url.clone(),
        thumb_media_id: article.cover_media_id.clone(),
        need_open_comment: u8::from(article.open_comment),
        only_fans_can_comment: u8::from(article.only_fans_can_comment),
        url: String::new(),
    }
}
