//! What a simulated citizen does, and the plaintext callback XML for it.

use wechat::xml::{push_cdata_element, push_text_element};

/// A simulated follower: an openid and its own CreateTime clock.
///
/// The gateway's dedup key of an event is `{account}:{openid}:{CreateTime}:{Event}…`,
/// so two events of one follower in the same second would be one event to it. The
/// clock therefore never hands out a CreateTime twice (it runs ahead of the wall
/// clock when a follower is busier than one callback a second).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Follower {
    /// The follower's openid for this account (28 characters, like WeChat's).
    pub openid: String,
    last_create_time: u64,
}

impl Follower {
    /// Creates a follower with this openid.
    pub fn new(openid: impl Into<String>) -> Self {
        Self {
            openid: openid.into(),
            last_create_time: 0,
        }
    }

    /// Builds a WeChat-shaped openid (`o` + 27 characters) from a run tag and an index,
    /// so followers of different runs never share an openid.
    pub fn numbered(run_tag: &str, index: u64) -> Self {
        let tag: String = run_tag
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(8)
            .collect();
        let mut openid = format!("o{tag}_{index:x}");
        while openid.len() < 28 {
            openid.insert(1 + tag.len(), '0');
        }
        Self::new(openid)
    }

    /// Returns the next CreateTime for this follower: `now`, or one past the last
    /// one handed out when that is later.
    pub fn next_create_time(&mut self, now: u64) -> u64 {
        let t = now.max(self.last_create_time + 1);
        self.last_create_time = t;
        t
    }
}

/// One thing a citizen does that WeChat reports to the gateway.
#[derive(Debug, Clone, PartialEq)]
pub enum CitizenAction {
    /// Follows the account (plain follow: no `EventKey`).
    Subscribe,
    /// Follows by scanning a parametric QR code: `EventKey=qrscene_{scene}` + `Ticket`.
    SubscribeWithScene {
        /// The scene (a number or a ≤64-character string).
        scene: String,
    },
    /// Sends a text message.
    Text {
        /// The text, typically Chinese.
        content: String,
    },
    /// Sends a picture.
    Image {
        /// The picture's URL on WeChat's CDN.
        pic_url: String,
        /// The media id.
        media_id: String,
    },
    /// Sends a voice message, transcribed by WeChat's speech recognition.
    Voice {
        /// The media id.
        media_id: String,
        /// `amr` or `speex`.
        format: String,
        /// The transcription (`Recognition`).
        recognition: String,
    },
    /// Sends a location as a message.
    Location {
        /// `Location_X`.
        latitude: f64,
        /// `Location_Y`.
        longitude: f64,
        /// Map zoom.
        scale: u32,
        /// The place's label.
        label: String,
    },
    /// Reports its location when entering the chat (`LOCATION` event).
    LocationEvent {
        /// Latitude.
        latitude: f64,
        /// Longitude.
        longitude: f64,
        /// Precision in metres.
        precision: f64,
    },
    /// Taps a `click` menu button.
    Click {
        /// The menu key.
        key: String,
    },
    /// Taps a `view` menu button (opens a URL).
    View {
        /// The URL (the `EventKey`).
        url: String,
        /// The menu id, as WeChat sends it.
        menu_id: Option<String>,
    },
    /// Unfollows the account.
    Unsubscribe,
}

impl CitizenAction {
    /// Returns a short stable label for logs and stats (`text`, `event.subscribe`, …).
    pub fn label(&self) -> &'static str {
        match self {
            Self::Subscribe => "event.subscribe",
            Self::SubscribeWithScene { .. } => "event.subscribe_scene",
            Self::Text { .. } => "text",
            Self::Image { .. } => "image",
            Self::Voice { .. } => "voice",
            Self::Location { .. } => "location",
            Self::LocationEvent { .. } => "event.LOCATION",
            Self::Click { .. } => "event.CLICK",
            Self::View { .. } => "event.VIEW",
            Self::Unsubscribe => "event.unsubscribe",
        }
    }

    /// Returns whether this is a user message (it carries a `MsgId`) rather than an event.
    pub fn is_message(&self) -> bool {
        matches!(
            self,
            Self::Text { .. } | Self::Image { .. } | Self::Voice { .. } | Self::Location { .. }
        )
    }

    /// Returns one example of every action, in a fixed order (for tests and smoke runs).
    pub fn every_kind() -> Vec<Self> {
        vec![
            Self::Subscribe,
            Self::SubscribeWithScene {
                scene: "1001".to_owned(),
            },
            Self::Text {
                content: "你好，请问社保卡丢了怎么补办？".to_owned(),
            },
            Self::Image {
                pic_url: "http://mmbiz.qpic.cn/mmbiz_jpg/demo/0".to_owned(),
                media_id: "media_image_demo_0001".to_owned(),
            },
            Self::Voice {
                media_id: "media_voice_demo_0001".to_owned(),
                format: "amr".to_owned(),
                recognition: "医保报销需要带什么材料".to_owned(),
            },
            Self::Location {
                latitude: 25.770_5,
                longitude: 113.014_6,
                scale: 15,
                label: "湖南省郴州市北湖区人民东路".to_owned(),
            },
            Self::LocationEvent {
                latitude: 25.770_5,
                longitude: 113.014_6,
                precision: 65.0,
            },
            Self::Click {
                key: "MENU_SOCIAL_SECURITY".to_owned(),
            },
            Self::View {
                url: "https://gov.example.cn/bus".to_owned(),
                menu_id: Some("1001".to_owned()),
            },
            Self::Unsubscribe,
        ]
    }

    /// Renders the plaintext callback XML WeChat would send for this action.
    ///
    /// `msg_id` is used only by messages; events have none.
    pub fn to_xml(&self, to: &str, from: &str, create_time: u64, msg_id: u64) -> String {
        let mut out = String::with_capacity(384);
        out.push_str("<xml>");
        push_cdata_element(&mut out, "ToUserName", to);
        push_cdata_element(&mut out, "FromUserName", from);
        push_text_element(&mut out, "CreateTime", &create_time.to_string());
        let event = |out: &mut String, name: &str| {
            push_cdata_element(out, "MsgType", "event");
            push_cdata_element(out, "Event", name);
        };
        match self {
            Self::Subscribe => {
                event(&mut out, "subscribe");
                push_cdata_element(&mut out, "EventKey", "");
            }
            Self::SubscribeWithScene { scene } => {
                event(&mut out, "subscribe");
                push_cdata_element(&mut out, "EventKey", &format!("qrscene_{scene}"));
                push_cdata_element(
                    &mut out,
                    "Ticket",
                    &format!("gQH47joAAAAAAAAAASxodHRwOi8vd2VpeGluLnFxLmNvbS9xL{scene}"),
                );
            }
            Self::Text { content } => {
                push_cdata_element(&mut out, "MsgType", "text");
                push_cdata_element(&mut out, "Content", content);
            }
            Self::Image { pic_url, media_id } => {
                push_cdata_element(&mut out, "MsgType", "image");
                push_cdata_element(&mut out, "PicUrl", pic_url);
                push_cdata_element(&mut out, "MediaId", media_id);
            }
            Self::Voice {
                media_id,
                format,
                recognition,
            } => {
                push_cdata_element(&mut out, "MsgType", "voice");
                push_cdata_element(&mut out, "MediaId", media_id);
                push_cdata_element(&mut out, "Format", format);
                push_cdata_element(&mut out, "MediaId16K", &format!("{media_id}_16k"));
                push_cdata_element(&mut out, "Recognition", recognition);
            }
            Self::Location {
                latitude,
                longitude,
                scale,
                label,
            } => {
                push_cdata_element(&mut out, "MsgType", "location");
                push_text_element(&mut out, "Location_X", &format!("{latitude:.6}"));
                push_text_element(&mut out, "Location_Y", &format!("{longitude:.6}"));
                push_text_element(&mut out, "Scale", &scale.to_string());
                push_cdata_element(&mut out, "Label", label);
            }
            Self::LocationEvent {
                latitude,
                longitude,
                precision,
            } => {
                event(&mut out, "LOCATION");
                push_text_element(&mut out, "Latitude", &format!("{latitude:.6}"));
                push_text_element(&mut out, "Longitude", &format!("{longitude:.6}"));
                push_text_element(&mut out, "Precision", &format!("{precision:.6}"));
            }
            Self::Click { key } => {
                event(&mut out, "CLICK");
                push_cdata_element(&mut out, "EventKey", key);
            }
            Self::View { url, menu_id } => {
                event(&mut out, "VIEW");
                push_cdata_element(&mut out, "EventKey", url);
                if let Some(menu_id) = menu_id {
                    push_text_element(&mut out, "MenuId", menu_id);
                }
            }
            Self::Unsubscribe => {
                event(&mut out, "unsubscribe");
                push_cdata_element(&mut out, "EventKey", "");
            }
        }
        if self.is_message() {
            push_text_element(&mut out, "MsgId", &msg_id.to_string());
        }
        out.push_str("</xml>");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_follower_never_gets_the_same_create_time_twice() {
        let mut f = Follower::new("o1");
        assert_eq!(f.next_create_time(100), 100);
        assert_eq!(f.next_create_time(100), 101);
        assert_eq!(f.next_create_time(100), 102);
        assert_eq!(f.next_create_time(200), 200);
    }

    #[test]
    fn numbered_openids_look_like_wechat_openids_and_differ_by_run() {
        let a = Follower::numbered("run1", 7);
        let b = Follower::numbered("run2", 7);
        assert_eq!(a.openid.len(), 28);
        assert!(a.openid.starts_with('o'));
        assert_ne!(a.openid, b.openid);
    }

    #[test]
    fn every_kind_parses_as_the_wechat_crate_reads_it() {
        for action in CitizenAction::every_kind() {
            let xml = action.to_xml("gh_demo00000001", "o-test", 1_700_000_000, 42);
            let parsed = wechat::message::InboundMessage::parse(xml.as_bytes())
                .unwrap_or_else(|e| panic!("{}: {e}", action.label()));
            assert_eq!(parsed.header.from_user_name, "o-test");
            assert_eq!(parsed.msg_id().is_some(), action.is_message());
        }
    }
}
