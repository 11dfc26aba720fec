//! Mass send to all followers or a tag (`POST /cgi-bin/message/mass/sendall`) and
//! preview to one follower (`POST /cgi-bin/message/mass/preview`); a send's status
//! (`POST /cgi-bin/message/mass/get`) and its deletion.
//!
//! Subscription accounts may mass-send once a day, service accounts four times a month;
//! past that WeChat answers [`ErrCode::NO_MASS_SEND_QUOTA`](super::ErrCode::NO_MASS_SEND_QUOTA) (45028), which is returned, never
//! retried.

use serde::{Deserialize, Serialize};

use super::custom::{MediaRef, Text};
use super::{ApiError, Client, Repeat};

/// The content of a mass message, tagged by `msgtype`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "msgtype", rename_all = "lowercase")]
pub enum MassContent {
    /// A published article (draft media id).
    MpNews {
        /// The draft's media id.
        mpnews: MediaRef,
    },
    /// Plain text.
    Text {
        /// The text.
        text: Text,
    },
    /// Images.
    Image {
        /// The images.
        images: MassImages,
    },
    /// A voice clip.
    Voice {
        /// The media reference.
        voice: MediaRef,
    },
}

/// The images of an image mass message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MassImages {
    /// The images' media ids.
    pub media_ids: Vec<String>,
}

impl MassContent {
    /// Builds article content from a draft's media id.
    pub fn mpnews(media_id: impl Into<String>) -> Self {
        Self::MpNews {
            mpnews: MediaRef {
                media_id: media_id.into(),
            },
        }
    }

    /// Builds text content.
    pub fn text(content: impl Into<String>) -> Self {
        Self::Text {
            text: Text {
                content: content.into(),
            },
        }
    }
}

/// Who receives a mass send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MassFilter {
    /// Every follower.
    pub is_to_all: bool,
    /// The followers carrying this tag (when not to all).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag_id: Option<u64>,
}

/// A mass send request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MassSend {
    /// The recipients.
    pub filter: MassFilter,
    /// The content.
    #[serde(flatten)]
    pub content: MassContent,
    /// 1: send even when the article is judged a reprint.
    pub send_ignore_reprint: u8,
    /// An idempotency key: WeChat refuses a second send with the same id (45065).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clientmsgid: Option<String>,
}

impl MassSend {
    /// Sends `content` to every follower.
    pub fn to_all(content: MassContent) -> Self {
        Self::with_filter(
            MassFilter {
                is_to_all: true,
                tag_id: None,
            },
            content,
        )
    }

    /// Sends `content` to the followers with tag `tag_id`.
    pub fn to_tag(tag_id: u64, content: MassContent) -> Self {
        Self::with_filter(
            MassFilter {
                is_to_all: false,
                tag_id: Some(tag_id),
            },
            content,
        )
    }

    /// Sets the idempotency key.
    pub fn client_msg_id(mut self, id: impl Into<String>) -> Self {
        self.clientmsgid = Some(id.into());
        self
    }

    fn with_filter(filter: MassFilter, content: MassContent) -> Self {
        Self {
            filter,
            content,
            send_ignore_reprint: 0,
            clientmsgid: None,
        }
    }
}

/// WeChat's receipt for a mass send; the outcome arrives as `MASSSENDJOBFINISH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct MassSent {
    /// The send job's id.
    pub msg_id: u64,
    /// The article's data id (for statistics), for article sends.
    #[serde(default)]
    pub msg_data_id: Option<u64>,
}

/// WeChat's receipt for a preview.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct PreviewSent {
    /// The preview's id, when WeChat gives one.
    #[serde(default)]
    pub msg_id: Option<u64>,
}

/// A mass send's status, from [`Client::mass_status`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MassStatus {
    /// `SEND_SUCCESS`, `SENDING`, `SEND_FAIL` or `DELETE` (sent, then deleted).
    pub msg_status: String,
}

impl MassStatus {
    /// WeChat's status of a send that went out.
    pub const SUCCESS: &'static str = "SEND_SUCCESS";
    /// WeChat's status of a send still going out.
    pub const SENDING: &'static str = "SENDING";
    /// WeChat's status of a send that failed.
    pub const FAILED: &'static str = "SEND_FAIL";
    /// WeChat's status of a send that went out and was deleted since.
    pub const DELETED: &'static str = "DELETE";
}

#[derive(Serialize)]
struct MassGet<'a> {
    /// A string, as WeChat's documentation writes it.
    msg_id: &'a str,
}

#[derive(Serialize)]
struct MassDelete {
    msg_id: u64,
    /// 0 deletes every article of the message; n (1-based) only the n-th.
    article_idx: u32,
}

#[derive(Serialize)]
struct Preview<'a> {
    touser: &'a str,
    #[serde(flatten)]
    content: &'a MassContent,
}

/// What a mass send with a `clientmsgid` came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MassSendOutcome {
    /// WeChat took it now.
    Sent(MassSent),
    /// WeChat had taken a send with this `clientmsgid` before (45065: an earlier
    /// attempt whose answer was lost went out); nothing was sent now. `msg_id` is
    /// that send's job id, when WeChat's answer names it.
    AlreadyTaken {
        /// The earlier send's job id.
        msg_id: Option<u64>,
    },
}

impl Client {
    /// Mass-sends to all followers or a tag (`POST /cgi-bin/message/mass/sendall`).
    pub async fn mass_send(&self, send: &MassSend) -> Result<MassSent, ApiError> {
        let repeat = Repeat::keyed(send.clientmsgid.as_deref());
        self.post_with("/cgi-bin/message/mass/sendall", send, repeat)
            .await
    }

    /// Mass-sends like [`Client::mass_send`], but a 45065 answer (the
    /// `clientmsgid`'s send was taken earlier) is an outcome keeping the earlier
    /// send's `msg_id`, so the caller can record it like a send's job id (the job's
    /// `MASSSENDJOBFINISH` names it, and deleting the send needs it).
    pub async fn mass_send_keyed(&self, send: &MassSend) -> Result<MassSendOutcome, ApiError> {
        #[derive(Deserialize)]
        struct Taken {
            errcode: i64,
            #[serde(default)]
            msg_id: Option<u64>,
        }
        let repeat = Repeat::keyed(send.clientmsgid.as_deref());
        self.post_reading("/cgi-bin/message/mass/sendall", send, repeat, |bytes| {
            if let Ok(taken) = serde_json::from_slice::<Taken>(bytes)
                && taken.errcode == super::ErrCode::DUPLICATE_CLIENT_MSG_ID.0
            {
                return Ok(MassSendOutcome::AlreadyTaken {
                    msg_id: taken.msg_id,
                });
            }
            super::decode(bytes).map(MassSendOutcome::Sent)
        })
        .await
    }

    /// Sends a preview of mass content to one follower (`POST /cgi-bin/message/mass/preview`).
    pub async fn mass_preview(
        &self,
        touser: &str,
        content: &MassContent,
    ) -> Result<PreviewSent, ApiError> {
        self.post_with(
            "/cgi-bin/message/mass/preview",
            &Preview { touser, content },
            Repeat::Once,
        )
        .await
    }

    /// Reads a mass send's status (`POST /cgi-bin/message/mass/get`): how the job of
    /// `msg_id` (the id [`Client::mass_send`] returned) stands.
    pub async fn mass_status(&self, msg_id: &str) -> Result<MassStatus, ApiError> {
        self.post("/cgi-bin/message/mass/get", &MassGet { msg_id })
            .await
    }

    /// Deletes a sent mass message (`POST /cgi-bin/message/mass/delete`) for its
    /// readers: `article_idx` 0 for every article, n (1-based) for the n-th.
    pub async fn mass_delete(&self, msg_id: u64, article_idx: u32) -> Result<(), ApiError> {
        self.post_ack(
            "/cgi-bin/message/mass/delete",
            &MassDelete {
                msg_id,
                article_idx,
            },
            Repeat::Safe,
        )
        .await
    }
}
