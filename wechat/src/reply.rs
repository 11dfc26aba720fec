//! Passive replies: the XML the callback answers with, plain or encrypted.
//!
//! The addresses are swapped relative to the inbound message (`ToUserName` = the
//! user's openid, `FromUserName` = the account's `gh_…` id). WeChat shows the citizen
//! "该公众号暂时无法提供服务" for a reply it cannot use, so the limits it enforces are
//! checked here before anything is sent. The parsers let `wechat-sim` check what the
//! gateway answered.

use crate::crypto::{CryptoError, EncryptedEnvelope, KeySlot, MessageCrypto};
use crate::message::InboundMessage;
use crate::signature::{self, SignatureError};
use crate::xml::{self, Element, XmlError, push_cdata_element, push_text_element};

/// The body that tells WeChat "no passive reply"; an empty body works too.
pub const NO_REPLY: &str = "success";

/// News articles allowed when answering an event (and in general).
pub const MAX_ARTICLES: usize = 8;
/// News articles allowed when answering a user message.
pub const MAX_ARTICLES_FOR_USER_MESSAGE: usize = 1;

/// Why a reply could not be built or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// A text reply with empty (or whitespace-only) content.
    #[error("text reply has empty content")]
    EmptyText,
    /// A required field such as `MediaId` is empty.
    #[error("reply field {0} is empty")]
    EmptyField(&'static str),
    /// A news reply with no article.
    #[error("news reply has no article")]
    NoArticles,
    /// A news reply with more articles than WeChat shows in this context.
    #[error("news reply has {got} articles, at most {max} allowed here")]
    TooManyArticles {
        /// The limit for this context.
        max: usize,
        /// Articles in the reply.
        got: usize,
    },
    /// Encryption or decryption failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The envelope's `MsgSignature` does not verify.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// The reply XML was refused by the reader.
    #[error(transparent)]
    Xml(#[from] XmlError),
    /// A field a reply must carry is absent.
    #[error("missing field {0}")]
    MissingField(&'static str),
    /// A field has a value of the wrong shape.
    #[error("invalid value for {field}: {value:?}")]
    InvalidField {
        /// Field name as in the XML.
        field: &'static str,
        /// The offending value, cut to 64 characters.
        value: String,
    },
    /// A `MsgType` that is not a passive-reply type.
    #[error("unknown reply type {0:?}")]
    UnknownType(String),
}

impl ReplyError {
    /// Returns a short stable code for metric labels and log fields.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::EmptyText => "empty_text",
            Self::EmptyField(_) => "empty_field",
            Self::NoArticles => "no_articles",
            Self::TooManyArticles { .. } => "too_many_articles",
            Self::Crypto(e) => e.reason(),
            Self::Signature(e) => e.reason(),
            Self::Xml(e) => e.reason(),
            Self::MissingField(_) => "missing_field",
            Self::InvalidField { .. } => "invalid_field",
            Self::UnknownType(_) => "unknown_reply_type",
        }
    }
}

/// What the reply answers, which decides how many news articles WeChat accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answering {
    /// A user message (text, image, voice, video, shortvideo, location, link, or an
    /// unknown `MsgType`, treated conservatively): one article.
    UserMessage,
    /// An event: up to eight articles.
    Event,
}

impl Answering {
    /// Classifies an inbound message.
    pub fn of(inbound: &InboundMessage) -> Self {
        if inbound.is_user_message() {
            Self::UserMessage
        } else {
            Self::Event
        }
    }

    /// Returns the most news articles WeChat accepts in this context.
    pub fn max_articles(self) -> usize {
        match self {
            Self::UserMessage => MAX_ARTICLES_FOR_USER_MESSAGE,
            Self::Event => MAX_ARTICLES,
        }
    }
}

/// One news article.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Article {
    /// Title.
    pub title: String,
    /// Description (shown for a single article).
    pub description: String,
    /// Cover image URL.
    pub pic_url: String,
    /// Link opened on tap.
    pub url: String,
}

/// The content of a passive reply, by `MsgType`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyBody {
    /// `text`; `\n` is a real line break and `<a href>` links work.
    Text {
        /// The text.
        content: String,
    },
    /// `image`.
    Image {
        /// Media id from the material API.
        media_id: String,
    },
    /// `voice`.
    Voice {
        /// Media id from the material API.
        media_id: String,
    },
    /// `video`.
    Video {
        /// Media id from the material API.
        media_id: String,
        /// Title.
        title: String,
        /// Description.
        description: String,
    },
    /// `music`.
    Music {
        /// Title.
        title: String,
        /// Description.
        description: String,
        /// Music URL.
        music_url: String,
        /// High-quality music URL (used on Wi-Fi).
        hq_music_url: String,
        /// Thumbnail media id (required by WeChat).
        thumb_media_id: String,
    },
    /// `news`.
    News(Vec<Article>),
    /// `transfer_customer_service`: hands the chat to human agents.
    TransferCustomerService {
        /// A specific agent account, if any.
        kf_account: Option<String>,
    },
}

impl ReplyBody {
    /// Returns the `MsgType` this body is sent as.
    pub fn msg_type(&self) -> &'static str {
        match self {
            Self::Text { .. } => "text",
            Self::Image { .. } => "image",
            Self::Voice { .. } => "voice",
            Self::Video { .. } => "video",
            Self::Music { .. } => "music",
            Self::News(_) => "news",
            Self::TransferCustomerService { .. } => "transfer_customer_service",
        }
    }
}

/// A passive reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The user's openid (the inbound `FromUserName`).
    pub to_user_name: String,
    /// The account's `gh_…` id (the inbound `ToUserName`).
    pub from_user_name: String,
    /// Unix seconds.
    pub create_time: u64,
    /// The content.
    pub body: ReplyBody,
}

impl Reply {
    /// Builds a reply to `inbound`, swapping its addresses.
    pub fn to(inbound: &InboundMessage, create_time: u64, body: ReplyBody) -> Self {
        Self {
            to_user_name: inbound.header.from_user_name.clone(),
            from_user_name: inbound.header.to_user_name.clone(),
            create_time,
            body,
        }
    }

    /// Checks WeChat's limits for a reply in this context.
    pub fn validate(&self, answering: Answering) -> Result<(), ReplyError> {
        match &self.body {
            // Counted as written: without the characters XML forbids.
            ReplyBody::Text { content }
                if content
                    .chars()
                    .filter(|&c| crate::xml::is_xml_char(c))
                    .all(char::is_whitespace) =>
            {
                Err(ReplyError::EmptyText)
            }
            ReplyBody::Image { media_id } | ReplyBody::Voice { media_id }
                if media_id.is_empty() =>
            {
                Err(ReplyError::EmptyField("MediaId"))
            }
            ReplyBody::Video { media_id, .. } if media_id.is_empty() => {
                Err(ReplyError::EmptyField("MediaId"))
            }
            ReplyBody::Music { thumb_media_id, .. } if thumb_media_id.is_empty() => {
                Err(ReplyError::EmptyField("ThumbMediaId"))
            }
            ReplyBody::News(articles) if articles.is_empty() => Err(ReplyError::NoArticles),
            ReplyBody::News(articles) if articles.len() > answering.max_articles() => {
                Err(ReplyError::TooManyArticles {
                    max: answering.max_articles(),
                    got: articles.len(),
                })
            }
            _ => Ok(()),
        }
    }

    /// Validates and renders the plaintext reply XML.
    pub fn to_xml(&self, answering: Answering) -> Result<String, ReplyError> {
        self.validate(answering)?;
        let mut out = String::with_capacity(256);
        out.push_str("<xml>");
        push_cdata_element(&mut out, "ToUserName", &self.to_user_name);
        push_cdata_element(&mut out, "FromUserName", &self.from_user_name);
        push_text_element(&mut out, "CreateTime", &self.create_time.to_string());
        push_cdata_element(&mut out, "MsgType", self.body.msg_type());
        match &self.body {
            ReplyBody::Text { content } => push_cdata_element(&mut out, "Content", content),
            ReplyBody::Image { media_id } => {
                out.push_str("<Image>");
                push_cdata_element(&mut out, "MediaId", media_id);
                out.push_str("</Image>");
            }
            ReplyBody::Voice { media_id } => {
                out.push_str("<Voice>");
                push_cdata_element(&mut out, "MediaId", media_id);
                out.push_str("</Voice>");
            }
            ReplyBody::Video {
                media_id,
                title,
                description,
            } => {
                out.push_str("<Video>");
                push_cdata_element(&mut out, "MediaId", media_id);
                push_cdata_element(&mut out, "Title", title);
                push_cdata_element(&mut out, "Description", description);
                out.push_str("</Video>");
            }
            ReplyBody::Music {
                title,
                description,
                music_url,
                hq_music_url,
                thumb_media_id,
            } => {
                out.push_str("<Music>");
                push_cdata_element(&mut out, "Title", title);
                push_cdata_element(&mut out, "Description", description);
                push_cdata_element(&mut out, "MusicUrl", music_url);
                push_cdata_element(&mut out, "HQMusicUrl", hq_music_url);
                push_cdata_element(&mut out, "ThumbMediaId", thumb_media_id);
                out.push_str("</Music>");
            }
            ReplyBody::News(articles) => {
                push_text_element(&mut out, "ArticleCount", &articles.len().to_string());
                out.push_str("<Articles>");
                for a in articles {
                    out.push_str("<item>");
                    push_cdata_element(&mut out, "Title", &a.title);
                    push_cdata_element(&mut out, "Description", &a.description);
                    push_cdata_element(&mut out, "PicUrl", &a.pic_url);
                    push_cdata_element(&mut out, "Url", &a.url);
                    out.push_str("</item>");
                }
                out.push_str("</Articles>");
            }
            ReplyBody::TransferCustomerService { kf_account } => {
                if let Some(account) = kf_account {
                    out.push_str("<TransInfo>");
                    push_cdata_element(&mut out, "KfAccount", account);
                    out.push_str("</TransInfo>");
                }
            }
        }
        out.push_str("</xml>");
        Ok(out)
    }

    /// Validates, encrypts and signs the reply; returns the envelope XML for safe
    /// mode (or compatible mode when answering encrypted).
    pub fn to_encrypted_xml(
        &self,
        answering: Answering,
        crypto: &MessageCrypto,
        token: &str,
        timestamp: &str,
        nonce: &str,
    ) -> Result<String, ReplyError> {
        self.to_encrypted_xml_with_key(answering, crypto, KeySlot::Current, token, timestamp, nonce)
    }

    /// Like [`to_encrypted_xml`](Self::to_encrypted_xml), sealed with the key in
    /// `slot`: pass the slot that decrypted the callback, so that during a key
    /// rotation WeChat can read the answer with the key it sent the callback with.
    pub fn to_encrypted_xml_with_key(
        &self,
        answering: Answering,
        crypto: &MessageCrypto,
        slot: KeySlot,
        token: &str,
        timestamp: &str,
        nonce: &str,
    ) -> Result<String, ReplyError> {
        let plain = self.to_xml(answering)?;
        Ok(crypto
            .seal_with_key(slot, token, timestamp, nonce, &plain)?
            .to_xml())
    }

    /// Reads a plaintext reply (no context check; call [`validate`](Self::validate)
    /// with the context the reply answered).
    pub fn parse(body: &[u8]) -> Result<Self, ReplyError> {
        let root = xml::parse(body)?;
        let msg_type = required(&root, "MsgType")?;
        let body = match msg_type {
            "text" => ReplyBody::Text {
                content: required(&root, "Content")?.to_owned(),
            },
            "image" => ReplyBody::Image {
                media_id: nested(&root, "Image", "MediaId")?,
            },
            "voice" => ReplyBody::Voice {
                media_id: nested(&root, "Voice", "MediaId")?,
            },
            "video" => {
                let video = child(&root, "Video")?;
                ReplyBody::Video {
                    media_id: required(video, "MediaId")?.to_owned(),
                    title: optional(video, "Title"),
                    description: optional(video, "Description"),
                }
            }
            "music" => {
                let music = child(&root, "Music")?;
                ReplyBody::Music {
                    title: optional(music, "Title"),
                    description: optional(music, "Description"),
                    music_url: optional(music, "MusicUrl"),
                    hq_music_url: optional(music, "HQMusicUrl"),
                    thumb_media_id: optional(music, "ThumbMediaId"),
                }
            }
            "news" => {
                let articles: Vec<Article> = child(&root, "Articles")?
                    .children_named("item")
                    .map(|item| Article {
                        title: optional(item, "Title"),
                        description: optional(item, "Description"),
                        pic_url: optional(item, "PicUrl"),
                        url: optional(item, "Url"),
                    })
                    .collect();
                let count = required(&root, "ArticleCount")?;
                // A count that disagrees with the list is a broken reply.
                if count.trim().parse::<usize>().ok() != Some(articles.len()) {
                    return Err(invalid("ArticleCount", count));
                }
                ReplyBody::News(articles)
            }
            "transfer_customer_service" => ReplyBody::TransferCustomerService {
                kf_account: root
                    .child("TransInfo")
                    .and_then(|t| t.text_of("KfAccount"))
                    .map(str::to_owned),
            },
            other => return Err(ReplyError::UnknownType(other.to_owned())),
        };
        let create_time = required(&root, "CreateTime")?;
        Ok(Self {
            to_user_name: required(&root, "ToUserName")?.to_owned(),
            from_user_name: required(&root, "FromUserName")?.to_owned(),
            create_time: create_time
                .trim()
                .parse()
                .map_err(|_| invalid("CreateTime", create_time))?,
            body,
        })
    }

    /// Opens an encrypted reply: reads the envelope, verifies its `MsgSignature`
    /// against `token`, decrypts with `crypto` and parses the reply inside.
    pub fn open_encrypted(
        body: &[u8],
        crypto: &MessageCrypto,
        token: &str,
    ) -> Result<Self, ReplyError> {
        let envelope = parse_envelope(body)?;
        signature::verify_msg_signature(
            token,
            &envelope.timestamp,
            &envelope.nonce,
            &envelope.encrypt,
            &envelope.msg_signature,
        )?;
        let plain = crypto.decrypt(&envelope.encrypt)?;
        Self::parse(plain.as_bytes())
    }
}

/// Reads an encrypted reply envelope (`Encrypt`, `MsgSignature`, `TimeStamp`, `Nonce`).
pub fn parse_envelope(body: &[u8]) -> Result<EncryptedEnvelope, ReplyError> {
    let root = xml::parse(body)?;
    Ok(EncryptedEnvelope {
        encrypt: required(&root, "Encrypt")?.to_owned(),
        msg_signature: required(&root, "MsgSignature")?.to_owned(),
        timestamp: required(&root, "TimeStamp")?.to_owned(),
        nonce: required(&root, "Nonce")?.to_owned(),
    })
}

fn child<'a>(el: &'a Element, name: &'static str) -> Result<&'a Element, ReplyError> {
    el.child(name).ok_or(ReplyError::MissingField(name))
}

fn required<'a>(el: &'a Element, name: &'static str) -> Result<&'a str, ReplyError> {
    el.text_of(name).ok_or(ReplyError::MissingField(name))
}

fn nested(el: &Element, outer: &'static str, inner: &'static str) -> Result<String, ReplyError> {
    Ok(required(child(el, outer)?, inner)?.to_owned())
}

fn optional(el: &Element, name: &str) -> String {
    el.text_of(name).unwrap_or_default().to_owned()
}

fn invalid(field: &'static str, value: &str) -> ReplyError {
    ReplyError::InvalidField {
        field,
        value: value.chars().take(64).collect(),
    }
}
