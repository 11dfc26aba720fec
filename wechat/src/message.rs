//! Inbound callback messages and events, parsed into types.
//!
//! Every message keeps its common header and the whole parsed document
//! ([`InboundMessage::fields`]), so an unknown `MsgType` or `Event` is kept, never
//! refused, and no field is lost for a typed one either. The payload types follow
//! wechat-protocol.md §2; content fields WeChat may leave out default to empty.

use sha1::{Digest, Sha1};

use crate::xml::{self, Element, Limits, XmlError};

/// The longest `EventKey` a dedup key carries as sent; a longer one is hashed.
const LONGEST_KEPT_EVENT_KEY: usize = 128;

/// Why an inbound document could not be read as a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// The document itself was refused.
    #[error(transparent)]
    Xml(#[from] XmlError),
    /// A field every message of this kind carries is absent.
    #[error("missing field {0}")]
    MissingField(&'static str),
    /// A field has a value of the wrong shape (e.g. a non-numeric `MsgId`).
    #[error("invalid value for {field}: {value:?}")]
    InvalidField {
        /// Field name as in the XML.
        field: &'static str,
        /// The offending value, cut to 64 characters.
        value: String,
    },
}

impl MessageError {
    /// Returns a short stable code for metric labels and log fields.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Xml(e) => e.reason(),
            Self::MissingField(_) => "missing_field",
            Self::InvalidField { .. } => "invalid_field",
        }
    }
}

/// The fields every callback carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The account's original id (`gh_…`).
    pub to_user_name: String,
    /// The sender's openid (or a system sender such as `mphelper`).
    pub from_user_name: String,
    /// Unix seconds.
    pub create_time: u64,
    /// `MsgType` as sent (`text`, `event`, …).
    pub msg_type: String,
}

/// A 64-bit message id, kept with its original text so it can travel as a string
/// (JavaScript numbers lose precision above 2^53).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MsgId(pub u64);

impl std::fmt::Display for MsgId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A text message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    /// The text exactly as typed.
    pub content: String,
    /// Message id.
    pub msg_id: MsgId,
    /// Set when the user tapped a msgmenu option.
    pub bizmsgmenuid: Option<String>,
    /// Newer docs' `MsgDataId`, when present.
    pub msg_data_id: Option<String>,
    /// Newer docs' `Idx`, when present.
    pub idx: Option<String>,
}

/// An image message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Image URL.
    pub pic_url: String,
    /// Media id for the material API.
    pub media_id: String,
    /// Message id.
    pub msg_id: MsgId,
}

/// A voice message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voice {
    /// Media id for the material API.
    pub media_id: String,
    /// `amr` or `speex`.
    pub format: String,
    /// 16 kHz copy, when WeChat offers one.
    pub media_id_16k: Option<String>,
    /// Speech recognition result, only when recognition is switched on.
    pub recognition: Option<String>,
    /// Message id.
    pub msg_id: MsgId,
}

/// A video or short-video message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Video {
    /// Media id for the material API.
    pub media_id: String,
    /// Thumbnail media id.
    pub thumb_media_id: String,
    /// Message id.
    pub msg_id: MsgId,
}

/// A location message.
#[derive(Debug, Clone, PartialEq)]
pub struct Location {
    /// `Location_X`: latitude.
    pub latitude: f64,
    /// `Location_Y`: longitude.
    pub longitude: f64,
    /// Map zoom.
    pub scale: Option<u32>,
    /// Place description.
    pub label: String,
    /// Message id.
    pub msg_id: MsgId,
}

/// A link message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// URL.
    pub url: String,
    /// Message id.
    pub msg_id: MsgId,
}

/// A scan from a menu button (`scancode_push` / `scancode_waitmsg`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanCode {
    /// The menu key.
    pub key: String,
    /// `ScanCodeInfo/ScanType`, e.g. `qrcode`.
    pub scan_type: String,
    /// `ScanCodeInfo/ScanResult`.
    pub scan_result: String,
}

/// Pictures sent from a menu button (`pic_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendPics {
    /// The menu key.
    pub key: String,
    /// `SendPicsInfo/Count`.
    pub count: u32,
    /// `SendPicsInfo/PicList/item/PicMd5Sum`, in order.
    pub pic_md5_sums: Vec<String>,
}

/// A location picked from a menu button (`location_select`).
#[derive(Debug, Clone, PartialEq)]
pub struct LocationSelect {
    /// The menu key.
    pub key: String,
    /// `SendLocationInfo/Location_X`: latitude.
    pub latitude: Option<f64>,
    /// `SendLocationInfo/Location_Y`: longitude.
    pub longitude: Option<f64>,
    /// Map zoom.
    pub scale: Option<u32>,
    /// Place description.
    pub label: String,
    /// Point-of-interest name, when there is one.
    pub poiname: Option<String>,
}

/// One article's URL in a mass-send result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArticleUrl {
    /// 1-based position (`ArticleIdx`).
    pub idx: u32,
    /// `ArticleUrl`.
    pub url: String,
}

/// The result of a mass send (`MASSSENDJOBFINISH`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MassSendJobFinish {
    /// `MsgID` (capital D), the id the send API returned.
    pub msg_id: MsgId,
    /// `send success`, `send fail`, or a review code `err(n)`.
    pub status: String,
    /// `TotalCount`.
    pub total_count: Option<u64>,
    /// `FilterCount`.
    pub filter_count: Option<u64>,
    /// `SentCount`.
    pub sent_count: Option<u64>,
    /// `ErrorCount`.
    pub error_count: Option<u64>,
    /// `ArticleUrlResult` items, in order.
    pub article_urls: Vec<ArticleUrl>,
}

impl MassSendJobFinish {
    /// Reports whether WeChat says the send succeeded.
    pub fn succeeded(&self) -> bool {
        self.status == "send success"
    }
}

/// The outcome of a template message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateSendStatus {
    /// `success`.
    Success,
    /// `failed…`, with the reason after the prefix (`user block`, `system failed`).
    Failed(String),
    /// Anything else, verbatim.
    Other(String),
}

/// The result of a template message (`TEMPLATESENDJOBFINISH`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateSendJobFinish {
    /// `MsgID`, the id the send API returned.
    pub msg_id: MsgId,
    /// The parsed `Status`.
    pub status: TemplateSendStatus,
}

/// `publish_status` of a `PUBLISHJOBFINISH` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishStatus {
    /// 0: published.
    Success,
    /// 1: still publishing.
    Publishing,
    /// 2: failed the originality check.
    OriginalityFailed,
    /// 3: failed.
    Failed,
    /// 4: failed review.
    ReviewFailed,
    /// 5: deleted by the user.
    UserDeleted,
    /// 6: banned by the platform.
    Banned,
    /// A code this crate does not know yet.
    Other(u32),
}

impl PublishStatus {
    /// Maps WeChat's numeric code.
    pub fn from_code(code: u32) -> Self {
        match code {
            0 => Self::Success,
            1 => Self::Publishing,
            2 => Self::OriginalityFailed,
            3 => Self::Failed,
            4 => Self::ReviewFailed,
            5 => Self::UserDeleted,
            6 => Self::Banned,
            other => Self::Other(other),
        }
    }
}

/// One published article (`article_detail/item`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedArticle {
    /// 1-based position.
    pub idx: u32,
    /// `article_url`.
    pub url: String,
}

/// The result of a free-publish job (`PUBLISHJOBFINISH`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishJobFinish {
    /// `publish_id` as sent (the id `freepublish/submit` returned).
    pub publish_id: String,
    /// The parsed status.
    pub publish_status: PublishStatus,
    /// `article_id`, present on success.
    pub article_id: Option<String>,
    /// `article_detail` items.
    pub articles: Vec<PublishedArticle>,
    /// `fail_idx` values: positions of the articles that failed.
    pub fail_idx: Vec<u32>,
}

/// The event carried by `MsgType=event`.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A follow. `scene` is the QR scene without `qrscene_` for a parametric QR
    /// code, `None` for a plain follow.
    Subscribe {
        /// Scene from the `qrscene_` event key.
        scene: Option<String>,
        /// QR ticket, with a scene.
        ticket: Option<String>,
    },
    /// An unfollow.
    Unsubscribe,
    /// A follower scanned a parametric QR code; `scene` is the event key as sent.
    Scan {
        /// `scene_id` or `scene_str`.
        scene: String,
        /// QR ticket.
        ticket: Option<String>,
    },
    /// A reported location (on entering the chat, or every 5 s).
    Location {
        /// Latitude.
        latitude: f64,
        /// Longitude.
        longitude: f64,
        /// Precision in metres.
        precision: Option<f64>,
    },
    /// A click on a `click` menu button.
    Click {
        /// The menu key.
        key: String,
    },
    /// A click on a `view` menu button.
    View {
        /// The URL.
        url: String,
        /// `MenuId`, for a conditional menu.
        menu_id: Option<String>,
    },
    /// `scancode_push`.
    ScanCodePush(ScanCode),
    /// `scancode_waitmsg`.
    ScanCodeWaitMsg(ScanCode),
    /// `pic_sysphoto`.
    PicSysPhoto(SendPics),
    /// `pic_photo_or_album`.
    PicPhotoOrAlbum(SendPics),
    /// `pic_weixin`.
    PicWeixin(SendPics),
    /// `location_select`.
    LocationSelect(LocationSelect),
    /// `view_miniprogram`.
    ViewMiniprogram {
        /// The page path.
        page_path: String,
        /// `MenuId`.
        menu_id: Option<String>,
    },
    /// `MASSSENDJOBFINISH`.
    MassSendJobFinish(MassSendJobFinish),
    /// `TEMPLATESENDJOBFINISH`.
    TemplateSendJobFinish(TemplateSendJobFinish),
    /// `PUBLISHJOBFINISH`.
    PublishJobFinish(PublishJobFinish),
    /// Any other event (kf_*, user_info_modified, subscribe_msg_*, card_*…); its
    /// fields are in [`InboundMessage::fields`].
    Unknown,
}

/// What a callback carries, by `MsgType`.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// `text`.
    Text(Text),
    /// `image`.
    Image(Image),
    /// `voice`.
    Voice(Voice),
    /// `video`.
    Video(Video),
    /// `shortvideo`.
    ShortVideo(Video),
    /// `location`.
    Location(Location),
    /// `link`.
    Link(Link),
    /// `event`, told apart by `Event`.
    Event {
        /// `Event` exactly as sent (case matters: `SCAN` vs `subscribe`).
        event: String,
        /// `EventKey` as sent, empty when absent.
        event_key: String,
        /// The typed event.
        kind: Event,
    },
    /// Any other `MsgType`; its fields are in [`InboundMessage::fields`].
    Unknown,
}

/// Declares [`InboundType`], its [`ALL`](InboundType::ALL) list and its
/// [`LABELS`](InboundType::LABELS) from one table, so that no type can be left out of
/// the lists that metrics register at start-up.
macro_rules! inbound_types {
    ($($(#[$doc:meta])* $variant:ident => $label:literal,)*) => {
        /// What a callback is, as one of a closed set: every typed message and event
        /// of [`Payload`] and [`Event`], plus one for an unknown `MsgType` and one for
        /// an unknown `Event`. [`InboundMessage::inbound_type`] maps a parsed message
        /// to it with a match the compiler checks for every variant.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum InboundType {
            $($(#[$doc])* $variant,)*
        }

        impl InboundType {
            /// Every type, in the order of [`InboundType::LABELS`].
            pub const ALL: &'static [Self] = &[$(Self::$variant,)*];
            /// Every label [`InboundType::label`] returns.
            pub const LABELS: &'static [&'static str] = &[$($label,)*];

            /// A bounded name for metric labels: the `MsgType` or `Event` as WeChat
            /// spells it for a known type, `unknown_msg` / `unknown_event` otherwise.
            /// Metric values that alert rules read: never rename one.
            pub const fn label(self) -> &'static str {
                match self {
                    $(Self::$variant => $label,)*
                }
            }
        }
    };
}

inbound_types! {
    /// `text`.
    Text => "text",
    /// `image`.
    Image => "image",
    /// `voice`.
    Voice => "voice",
    /// `video`.
    Video => "video",
    /// `shortvideo`.
    ShortVideo => "shortvideo",
    /// `location` (a message, not the `LOCATION` event).
    Location => "location",
    /// `link`.
    Link => "link",
    /// A `MsgType` this crate does not type.
    UnknownMessage => "unknown_msg",
    /// Event `subscribe`.
    Subscribe => "subscribe",
    /// Event `unsubscribe`.
    Unsubscribe => "unsubscribe",
    /// Event `SCAN`.
    Scan => "SCAN",
    /// Event `LOCATION`.
    LocationEvent => "LOCATION",
    /// Event `CLICK`.
    Click => "CLICK",
    /// Event `VIEW`.
    View => "VIEW",
    /// Event `scancode_push`.
    ScanCodePush => "scancode_push",
    /// Event `scancode_waitmsg`.
    ScanCodeWaitMsg => "scancode_waitmsg",
    /// Event `pic_sysphoto`.
    PicSysPhoto => "pic_sysphoto",
    /// Event `pic_photo_or_album`.
    PicPhotoOrAlbum => "pic_photo_or_album",
    /// Event `pic_weixin`.
    PicWeixin => "pic_weixin",
    /// Event `location_select`.
    LocationSelect => "location_select",
    /// Event `view_miniprogram`.
    ViewMiniprogram => "view_miniprogram",
    /// Event `MASSSENDJOBFINISH`.
    MassSendJobFinish => "MASSSENDJOBFINISH",
    /// Event `TEMPLATESENDJOBFINISH`.
    TemplateSendJobFinish => "TEMPLATESENDJOBFINISH",
    /// Event `PUBLISHJOBFINISH`.
    PublishJobFinish => "PUBLISHJOBFINISH",
    /// An `Event` this crate does not type.
    UnknownEvent => "unknown_event",
}

impl InboundType {
    /// Reports whether this is an event (`MsgType=event`).
    pub const fn is_event(self) -> bool {
        !matches!(
            self,
            Self::Text
                | Self::Image
                | Self::Voice
                | Self::Video
                | Self::ShortVideo
                | Self::Location
                | Self::Link
                | Self::UnknownMessage
        )
    }

    /// The `MsgType` (for a message) or `Event` (for an event) the parser reads as
    /// this type; `None` for the two unknown types, which stand for any other name.
    pub const fn wire_name(self) -> Option<&'static str> {
        match self {
            Self::UnknownMessage | Self::UnknownEvent => None,
            known => Some(known.label()),
        }
    }
}

/// A parsed inbound callback.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundMessage {
    /// The common fields.
    pub header: Header,
    /// The typed content.
    pub payload: Payload,
    /// The whole parsed document (root `<xml>`), unknown fields included.
    pub fields: Element,
}

impl InboundMessage {
    /// Parses a plaintext callback body (or a decrypted `Encrypt` text).
    pub fn parse(body: &[u8]) -> Result<Self, MessageError> {
        Self::parse_with_limits(body, Limits::default())
    }

    /// Parses with explicit XML limits.
    pub fn parse_with_limits(body: &[u8], limits: Limits) -> Result<Self, MessageError> {
        let root = xml::parse_with_limits(body, limits)?;
        Self::from_element(root)
    }

    /// Builds the typed message from an already parsed document.
    pub fn from_element(root: Element) -> Result<Self, MessageError> {
        let header = Header {
            to_user_name: required(&root, "ToUserName")?.to_owned(),
            from_user_name: required(&root, "FromUserName")?.to_owned(),
            create_time: parse_num(&root, "CreateTime")?,
            msg_type: required(&root, "MsgType")?.to_owned(),
        };
        let payload = parse_payload(&root, &header.msg_type)?;
        Ok(Self {
            header,
            payload,
            fields: root,
        })
    }

    /// Returns which of the closed set of [`InboundType`]s this message is. The
    /// match has no catch-all arm, so a new [`Payload`] or [`Event`] variant does not
    /// compile until it has a type, and with it a label in [`InboundType::LABELS`].
    pub fn inbound_type(&self) -> InboundType {
        match &self.payload {
            Payload::Text(_) => InboundType::Text,
            Payload::Image(_) => InboundType::Image,
            Payload::Voice(_) => InboundType::Voice,
            Payload::Video(_) => InboundType::Video,
            Payload::ShortVideo(_) => InboundType::ShortVideo,
            Payload::Location(_) => InboundType::Location,
            Payload::Link(_) => InboundType::Link,
            Payload::Unknown => InboundType::UnknownMessage,
            Payload::Event { kind, .. } => match kind {
                Event::Subscribe { .. } => InboundType::Subscribe,
                Event::Unsubscribe => InboundType::Unsubscribe,
                Event::Scan { .. } => InboundType::Scan,
                Event::Location { .. } => InboundType::LocationEvent,
                Event::Click { .. } => InboundType::Click,
                Event::View { .. } => InboundType::View,
                Event::ScanCodePush(_) => InboundType::ScanCodePush,
                Event::ScanCodeWaitMsg(_) => InboundType::ScanCodeWaitMsg,
                Event::PicSysPhoto(_) => InboundType::PicSysPhoto,
                Event::PicPhotoOrAlbum(_) => InboundType::PicPhotoOrAlbum,
                Event::PicWeixin(_) => InboundType::PicWeixin,
                Event::LocationSelect(_) => InboundType::LocationSelect,
                Event::ViewMiniprogram { .. } => InboundType::ViewMiniprogram,
                Event::MassSendJobFinish(_) => InboundType::MassSendJobFinish,
                Event::TemplateSendJobFinish(_) => InboundType::TemplateSendJobFinish,
                Event::PublishJobFinish(_) => InboundType::PublishJobFinish,
                Event::Unknown => InboundType::UnknownEvent,
            },
        }
    }

    /// Reports whether this is a user message (as opposed to an event), which is
    /// what limits a passive news reply to one article.
    pub fn is_user_message(&self) -> bool {
        !matches!(self.payload, Payload::Event { .. })
    }

    /// Returns the `MsgId` of a typed user message; `None` for events and unknown types.
    pub fn msg_id(&self) -> Option<MsgId> {
        match &self.payload {
            Payload::Text(m) => Some(m.msg_id),
            Payload::Image(m) => Some(m.msg_id),
            Payload::Voice(m) => Some(m.msg_id),
            Payload::Video(m) | Payload::ShortVideo(m) => Some(m.msg_id),
            Payload::Location(m) => Some(m.msg_id),
            Payload::Link(m) => Some(m.msg_id),
            Payload::Event { .. } | Payload::Unknown => None,
        }
    }

    /// Returns `("msg", type)` or `("event", event)` for the NATS subject
    /// `wechat.inbound.{account}.{msg|event}.{token}`. The token is lower-case ASCII
    /// letters, digits and `_` only, so it is always one valid subject token.
    pub fn kind(&self) -> (&'static str, String) {
        match &self.payload {
            Payload::Event { event, .. } => ("event", subject_token(event)),
            _ => ("msg", subject_token(&self.header.msg_type)),
        }
    }

    /// Returns the idempotency key (`event_id`) of wechat-protocol.md §4.
    ///
    /// - messages: `{account}:{FromUserName}:{MsgId}`;
    /// - events: `{account}:{FromUserName}:{CreateTime}:{Event}[:{EventKey}]`, plus
    ///   `:{MsgID}` for the mass/template job-finish events and `:{publish_id}` for
    ///   `PUBLISHJOBFINISH`;
    /// - unknown `MsgType` or `Event`: `{account}:{FromUserName}:{CreateTime}:{sha1(body)}`.
    ///
    /// An `EventKey` longer than 128 bytes, and any part (`FromUserName`, `EventKey`,
    /// `publish_id`) holding a control character, is replaced by its SHA-1 in hex: the
    /// key becomes a `Nats-Msg-Id` header, which cannot carry a line break. The parts
    /// are the parsed fields, so a U+0000 the reader dropped is not in them: the key
    /// of such a callback is that of the same callback without it, on every replica.
    ///
    /// `body` is the plaintext XML (the decrypted `Encrypt` text in compatible or
    /// safe mode), since retries repeat the message but may not repeat the cipher.
    pub fn dedup_key(&self, account: &str, body: &[u8]) -> String {
        use std::fmt::Write as _;
        let from = KeyPart::of(&self.header.from_user_name, usize::MAX);
        let time = self.header.create_time;
        if let Some(id) = self.msg_id() {
            return format!("{account}:{from}:{id}");
        }
        match &self.payload {
            // A known event's name is one of the parser's, free of control characters.
            Payload::Event {
                event,
                event_key,
                kind,
            } if *kind != Event::Unknown => {
                let mut key = format!("{account}:{from}:{time}:{event}");
                if !event_key.is_empty() {
                    // A VIEW event's URL may be 1,024 bytes, a mini program's path
                    // long too: the key stays stable and within an event id's 512.
                    let part = KeyPart::of(event_key, LONGEST_KEPT_EVENT_KEY);
                    let _ = write!(key, ":{part}");
                }
                match kind {
                    Event::MassSendJobFinish(e) => {
                        let _ = write!(key, ":{}", e.msg_id);
                    }
                    Event::TemplateSendJobFinish(e) => {
                        let _ = write!(key, ":{}", e.msg_id);
                    }
                    Event::PublishJobFinish(e) => {
                        let _ = write!(key, ":{}", KeyPart::of(&e.publish_id, usize::MAX));
                    }
                    _ => {}
                }
                key
            }
            _ => format!(
                "{account}:{from}:{time}:{}",
                hex::encode(Sha1::digest(body))
            ),
        }
    }
}

/// A part of a dedup key: as sent, or its SHA-1 in hex when it is longer than its
/// limit or holds a control character (a `Nats-Msg-Id` cannot carry `\r` or `\n`,
/// and a key with one made the publish panic, losing the callback for good).
/// Displayed without allocating when kept as sent.
enum KeyPart<'a> {
    Sent(&'a str),
    Hashed(&'a str),
}

impl<'a> KeyPart<'a> {
    fn of(part: &'a str, longest: usize) -> Self {
        // ASCII controls only: a header refuses `\r` and `\n`, and the scan of a few
        // dozen bytes stays off the callback's profile.
        if part.len() > longest || part.bytes().any(|b| b.is_ascii_control()) {
            Self::Hashed(part)
        } else {
            Self::Sent(part)
        }
    }
}

impl std::fmt::Display for KeyPart<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sent(part) => f.write_str(part),
            Self::Hashed(part) => f.write_str(&hex::encode(Sha1::digest(part.as_bytes()))),
        }
    }
}

/// The outer fields of a compatible- or safe-mode body, read before decrypting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundEnvelope {
    /// `ToUserName`, the account's `gh_…` id (present in both modes).
    pub to_user_name: Option<String>,
    /// `Encrypt`, the base64 ciphertext; absent in plaintext mode.
    pub encrypt: Option<String>,
}

impl InboundEnvelope {
    /// Reads `ToUserName` and `Encrypt` from a callback body.
    pub fn parse(body: &[u8]) -> Result<Self, MessageError> {
        let root = xml::parse(body)?;
        Ok(Self {
            to_user_name: root.text_of("ToUserName").map(str::to_owned),
            encrypt: root.text_of("Encrypt").map(str::to_owned),
        })
    }
}

/// Turns a type or event name into one NATS subject token: lower-case ASCII
/// alphanumerics, every other character replaced by `_`; `unknown` if empty.
pub fn subject_token(name: &str) -> String {
    if name.is_empty() {
        return "unknown".to_owned();
    }
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

fn parse_payload(root: &Element, msg_type: &str) -> Result<Payload, MessageError> {
    let text = |name| opt_text(root, name);
    Ok(match msg_type {
        "text" => Payload::Text(Text {
            content: text("Content"),
            msg_id: msg_id(root, "MsgId")?,
            bizmsgmenuid: non_empty(root, "bizmsgmenuid"),
            msg_data_id: non_empty(root, "MsgDataId"),
            idx: non_empty(root, "Idx"),
        }),
        "image" => Payload::Image(Image {
            pic_url: text("PicUrl"),
            media_id: text("MediaId"),
            msg_id: msg_id(root, "MsgId")?,
        }),
        "voice" => Payload::Voice(Voice {
            media_id: text("MediaId"),
            format: text("Format"),
            media_id_16k: non_empty(root, "MediaId16K"),
            recognition: root.text_of("Recognition").map(str::to_owned),
            msg_id: msg_id(root, "MsgId")?,
        }),
        "video" | "shortvideo" => {
            let video = Video {
                media_id: text("MediaId"),
                thumb_media_id: text("ThumbMediaId"),
                msg_id: msg_id(root, "MsgId")?,
            };
            if msg_type == "video" {
                Payload::Video(video)
            } else {
                Payload::ShortVideo(video)
            }
        }
        "location" => Payload::Location(Location {
            latitude: parse_num(root, "Location_X")?,
            longitude: parse_num(root, "Location_Y")?,
            scale: parse_opt_num(root, "Scale")?,
            label: text("Label"),
            msg_id: msg_id(root, "MsgId")?,
        }),
        "link" => Payload::Link(Link {
            title: text("Title"),
            description: text("Description"),
            url: text("Url"),
            msg_id: msg_id(root, "MsgId")?,
        }),
        "event" => {
            let event = required(root, "Event")?.to_owned();
            let event_key = text("EventKey");
            let kind = parse_event(root, &event, &event_key)?;
            Payload::Event {
                event,
                event_key,
                kind,
            }
        }
        _ => Payload::Unknown,
    })
}

fn parse_event(root: &Element, event: &str, key: &str) -> Result<Event, MessageError> {
    let key = key.to_owned();
    Ok(match event {
        "subscribe" => Event::Subscribe {
            scene: key
                .strip_prefix("qrscene_")
                .map(str::to_owned)
                .or_else(|| (!key.is_empty()).then(|| key.clone())),
            ticket: non_empty(root, "Ticket"),
        },
        "unsubscribe" => Event::Unsubscribe,
        "SCAN" => Event::Scan {
            scene: key,
            ticket: non_empty(root, "Ticket"),
        },
        "LOCATION" => Event::Location {
            latitude: parse_num(root, "Latitude")?,
            longitude: parse_num(root, "Longitude")?,
            precision: parse_opt_num(root, "Precision")?,
        },
        "CLICK" => Event::Click { key },
        "VIEW" => Event::View {
            url: key,
            menu_id: non_empty(root, "MenuId"),
        },
        "scancode_push" | "scancode_waitmsg" => {
            let info = root.child("ScanCodeInfo");
            let scan = ScanCode {
                key,
                scan_type: info.map(|i| opt_text(i, "ScanType")).unwrap_or_default(),
                scan_result: info.map(|i| opt_text(i, "ScanResult")).unwrap_or_default(),
            };
            if event == "scancode_push" {
                Event::ScanCodePush(scan)
            } else {
                Event::ScanCodeWaitMsg(scan)
            }
        }
        "pic_sysphoto" | "pic_photo_or_album" | "pic_weixin" => {
            let info = root.child("SendPicsInfo");
            let pic_md5_sums: Vec<String> = info
                .map(|i| {
                    i.descendants_named("PicMd5Sum")
                        .into_iter()
                        .map(|e| e.text.clone())
                        .collect()
                })
                .unwrap_or_default();
            let count = match info {
                Some(i) => parse_opt_num(i, "Count")?,
                None => None,
            };
            let pics = SendPics {
                key,
                // Count and the list agree in practice; the list is the fallback.
                count: count.unwrap_or(u32::try_from(pic_md5_sums.len()).unwrap_or(u32::MAX)),
                pic_md5_sums,
            };
            match event {
                "pic_sysphoto" => Event::PicSysPhoto(pics),
                "pic_photo_or_album" => Event::PicPhotoOrAlbum(pics),
                _ => Event::PicWeixin(pics),
            }
        }
        "location_select" => {
            let empty = Element::default();
            let info = root.child("SendLocationInfo").unwrap_or(&empty);
            Event::LocationSelect(LocationSelect {
                key,
                latitude: parse_opt_num(info, "Location_X")?,
                longitude: parse_opt_num(info, "Location_Y")?,
                scale: parse_opt_num(info, "Scale")?,
                label: opt_text(info, "Label"),
                poiname: non_empty(info, "Poiname"),
            })
        }
        "view_miniprogram" => Event::ViewMiniprogram {
            page_path: key,
            menu_id: non_empty(root, "MenuId"),
        },
        "MASSSENDJOBFINISH" => {
            let mut article_urls = Vec::new();
            if let Some(result) = root.child("ArticleUrlResult") {
                for item in result.descendants_named("item") {
                    if item.child("ArticleIdx").is_some() {
                        article_urls.push(ArticleUrl {
                            idx: parse_num(item, "ArticleIdx")?,
                            url: opt_text(item, "ArticleUrl"),
                        });
                    }
                }
            }
            Event::MassSendJobFinish(MassSendJobFinish {
                msg_id: msg_id(root, "MsgID")?,
                status: opt_text(root, "Status"),
                total_count: parse_opt_num(root, "TotalCount")?,
                filter_count: parse_opt_num(root, "FilterCount")?,
                sent_count: parse_opt_num(root, "SentCount")?,
                error_count: parse_opt_num(root, "ErrorCount")?,
                article_urls,
            })
        }
        "TEMPLATESENDJOBFINISH" => Event::TemplateSendJobFinish(TemplateSendJobFinish {
            msg_id: msg_id(root, "MsgID")?,
            status: template_status(&opt_text(root, "Status")),
        }),
        "PUBLISHJOBFINISH" => {
            let info = root
                .child("PublishEventInfo")
                .ok_or(MessageError::MissingField("PublishEventInfo"))?;
            let publish_id = required(info, "publish_id")?.trim().to_owned();
            let mut articles = Vec::new();
            if let Some(detail) = info.child("article_detail") {
                for item in detail.children_named("item") {
                    articles.push(PublishedArticle {
                        idx: parse_num(item, "idx")?,
                        url: opt_text(item, "article_url"),
                    });
                }
            }
            let mut fail_idx = Vec::new();
            for el in info.children_named("fail_idx") {
                fail_idx.push(parse_value("fail_idx", &el.text)?);
            }
            Event::PublishJobFinish(PublishJobFinish {
                publish_id,
                publish_status: PublishStatus::from_code(parse_num(info, "publish_status")?),
                article_id: non_empty(info, "article_id"),
                articles,
                fail_idx,
            })
        }
        _ => Event::Unknown,
    })
}

fn template_status(status: &str) -> TemplateSendStatus {
    if status == "success" {
        TemplateSendStatus::Success
    } else if let Some(rest) = status.strip_prefix("failed") {
        // Spacing after the prefix varies: `failed:user block`, `failed: system failed`.
        TemplateSendStatus::Failed(rest.trim_start_matches([':', ' ']).trim().to_owned())
    } else {
        TemplateSendStatus::Other(status.to_owned())
    }
}

fn required<'a>(el: &'a Element, name: &'static str) -> Result<&'a str, MessageError> {
    el.text_of(name).ok_or(MessageError::MissingField(name))
}

fn opt_text(el: &Element, name: &str) -> String {
    el.text_of(name).unwrap_or_default().to_owned()
}

fn non_empty(el: &Element, name: &str) -> Option<String> {
    el.text_of(name)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

fn msg_id(el: &Element, name: &'static str) -> Result<MsgId, MessageError> {
    parse_num(el, name).map(MsgId)
}

fn parse_num<T: std::str::FromStr>(el: &Element, name: &'static str) -> Result<T, MessageError> {
    parse_value(name, required(el, name)?)
}

fn parse_opt_num<T: std::str::FromStr>(
    el: &Element,
    name: &'static str,
) -> Result<Option<T>, MessageError> {
    match el.text_of(name).map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => parse_value(name, v).map(Some),
    }
}

fn parse_value<T: std::str::FromStr>(field: &'static str, value: &str) -> Result<T, MessageError> {
    value
        .trim()
        .parse()
        .map_err(|_| MessageError::InvalidField {
            field,
            value: value.chars().take(64).collect(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_of(from: &str, inner: &str) -> String {
        let doc = format!(
            "<xml><ToUserName>gh_city</ToUserName><FromUserName>{from}</FromUserName>\
             <CreateTime>1714000000</CreateTime>{inner}</xml>"
        );
        InboundMessage::parse(doc.as_bytes())
            .unwrap()
            .dedup_key("acct", doc.as_bytes())
    }

    fn click(key: &str) -> String {
        key_of(
            "oUser",
            &format!("<MsgType>event</MsgType><Event>CLICK</Event><EventKey>{key}</EventKey>"),
        )
    }

    #[test]
    fn a_part_with_a_control_character_is_hashed_so_the_key_is_a_valid_header() {
        let broken = click("a&#10;b");
        assert_eq!(
            broken,
            format!(
                "acct:oUser:1714000000:CLICK:{}",
                hex::encode(Sha1::digest(b"a\nb"))
            )
        );
        assert_eq!(broken, click("a&#10;b"), "a retry gets the same key");
        assert_ne!(broken, click("a&#13;b"));
        assert_eq!(click("MENU_A"), "acct:oUser:1714000000:CLICK:MENU_A");
        let sender = key_of(
            "o&#13;&#10;User",
            "<MsgType>text</MsgType><Content>x</Content><MsgId>7</MsgId>",
        );
        assert!(!sender.contains(['\r', '\n']), "{sender:?}");
        let published = key_of(
            "mphelper",
            "<MsgType>event</MsgType><Event>PUBLISHJOBFINISH</Event>\
             <PublishEventInfo><publish_id>1&#10;2</publish_id><publish_status>0</publish_status>\
             </PublishEventInfo>",
        );
        assert!(!published.contains(['\r', '\n']), "{published:?}");
    }
}
