//! Customer-service messages (`POST /cgi-bin/message/custom/send`).
//!
//! WeChat only delivers them within 48 hours of the citizen's last interaction, and at
//! most 20 per such window: outside it the call fails with
//! [`ErrCode::RESPONSE_OUT_OF_TIME`](super::ErrCode::RESPONSE_OUT_OF_TIME) (45015), past the cap with
//! [`ErrCode::OUT_OF_RESPONSE_COUNT`](super::ErrCode::OUT_OF_RESPONSE_COUNT) (45047). Neither is retried.

use serde::{Deserialize, Serialize};

use super::{ApiError, Client, Repeat};

/// A customer-service message to one follower.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CustomMessage {
    /// The recipient's openid.
    pub touser: String,
    /// The content, tagged by `msgtype`.
    #[serde(flatten)]
    pub body: CustomBody,
    /// Sends as a named customer-service agent instead of the account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customservice: Option<KfAccount>,
}

/// The content of a [`CustomMessage`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "msgtype", rename_all = "lowercase")]
pub enum CustomBody {
    /// Plain text; newlines and `<a href>` links work.
    Text {
        /// The text.
        text: Text,
    },
    /// An image uploaded as media.
    Image {
        /// The media reference.
        image: MediaRef,
    },
    /// One news card linking to a page (WeChat allows exactly one).
    News {
        /// The card.
        news: News,
    },
    /// A mini-program card.
    #[serde(rename = "miniprogrampage")]
    MiniProgramPage {
        /// The card.
        miniprogrampage: MiniProgramPage,
    },
}

/// Text content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Text {
    /// The text.
    pub content: String,
}

/// A reference to uploaded media.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaRef {
    /// The `media_id` from the material APIs.
    pub media_id: String,
}

/// The articles of a news message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct News {
    /// The articles (one for customer-service messages).
    pub articles: Vec<NewsArticle>,
}

/// One news card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewsArticle {
    /// The card title.
    pub title: String,
    /// The card description.
    pub description: String,
    /// The page opened on tap.
    pub url: String,
    /// The card picture.
    pub picurl: String,
}

/// A mini-program card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MiniProgramPage {
    /// The card title.
    pub title: String,
    /// The mini program's appid (it must be linked to the account).
    pub appid: String,
    /// The page path inside the mini program.
    pub pagepath: String,
    /// The card's thumbnail media id.
    pub thumb_media_id: String,
}

/// A customer-service agent account (`name@wechat_id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KfAccount {
    /// The agent account.
    pub kf_account: String,
}

impl CustomMessage {
    /// Builds a text message.
    pub fn text(touser: impl Into<String>, content: impl Into<String>) -> Self {
        Self::new(
            touser,
            CustomBody::Text {
                text: Text {
                    content: content.into(),
                },
            },
        )
    }

    /// Builds an image message.
    pub fn image(touser: impl Into<String>, media_id: impl Into<String>) -> Self {
        Self::new(
            touser,
            CustomBody::Image {
                image: MediaRef {
                    media_id: media_id.into(),
                },
            },
        )
    }

    /// Builds a one-card news message.
    pub fn news(touser: impl Into<String>, article: NewsArticle) -> Self {
        Self::new(
            touser,
            CustomBody::News {
                news: News {
                    articles: vec![article],
                },
            },
        )
    }

    /// Builds a mini-program card message.
    pub fn mini_program(touser: impl Into<String>, page: MiniProgramPage) -> Self {
        Self::new(
            touser,
            CustomBody::MiniProgramPage {
                miniprogrampage: page,
            },
        )
    }

    /// Sends the message as the agent `kf_account`.
    pub fn as_agent(mut self, kf_account: impl Into<String>) -> Self {
        self.customservice = Some(KfAccount {
            kf_account: kf_account.into(),
        });
        self
    }

    fn new(touser: impl Into<String>, body: CustomBody) -> Self {
        Self {
            touser: touser.into(),
            body,
            customservice: None,
        }
    }
}

impl Client {
    /// Sends a customer-service message (`POST /cgi-bin/message/custom/send`).
    ///
    /// Fails with 45015 outside the citizen's 48-hour window and 45047 after 20 messages
    /// in one window; both are returned, not retried.
    pub async fn send_custom_message(&self, message: &CustomMessage) -> Result<(), ApiError> {
        // It carries no key WeChat would know a repeat by: a -1 is not retried.
        self.post_ack("/cgi-bin/message/custom/send", message, Repeat::Once)
            .await
    }
}
