//! Template messages (`POST /cgi-bin/message/template/send`), for verified service accounts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ApiError, Client, Repeat};

/// A template message to one follower.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemplateMessage {
    /// The recipient's openid.
    pub touser: String,
    /// The template id from the account's template library.
    pub template_id: String,
    /// The page opened on tap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// A mini-program page opened on tap (takes precedence over `url`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub miniprogram: Option<MiniProgramLink>,
    /// The template's fields, by keyword (`thing1`, `time2`, …).
    pub data: BTreeMap<String, TemplateValue>,
    /// An idempotency key: WeChat drops a repeat with the same id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_msg_id: Option<String>,
}

/// A link into a mini program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MiniProgramLink {
    /// The mini program's appid.
    pub appid: String,
    /// The page path.
    pub pagepath: String,
}

/// One template field value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateValue {
    /// The value shown.
    pub value: String,
}

impl TemplateMessage {
    /// Builds a message with no fields yet.
    pub fn new(touser: impl Into<String>, template_id: impl Into<String>) -> Self {
        Self {
            touser: touser.into(),
            template_id: template_id.into(),
            url: None,
            miniprogram: None,
            data: BTreeMap::new(),
            client_msg_id: None,
        }
    }

    /// Adds the field `key` with `value`.
    pub fn field(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.data.insert(
            key.into(),
            TemplateValue {
                value: value.into(),
            },
        );
        self
    }

    /// Sets the page opened on tap.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// Sets the idempotency key.
    pub fn client_msg_id(mut self, id: impl Into<String>) -> Self {
        self.client_msg_id = Some(id.into());
        self
    }
}

/// WeChat's receipt for a template message; the outcome arrives later as a
/// `TEMPLATESENDJOBFINISH` event carrying the same `msgid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct TemplateSent {
    /// The message id (64-bit).
    pub msgid: u64,
}

impl Client {
    /// Sends a template message (`POST /cgi-bin/message/template/send`).
    ///
    /// Subscription accounts get 48001; non-followers 43004.
    pub async fn send_template_message(
        &self,
        message: &TemplateMessage,
    ) -> Result<TemplateSent, ApiError> {
        // Without its key, a repeat would send the citizen the message twice.
        let repeat = Repeat::keyed(message.client_msg_id.as_deref());
        self.post_with("/cgi-bin/message/template/send", message, repeat)
            .await
    }
}
