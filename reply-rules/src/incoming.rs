//! What a WeChat callback means to this service: a follow, an unfollow, a menu
//! click, a citizen's message, … Both doors (the inbound consumer and the reply path)
//! classify a callback here, so they always agree.

use wechat::message::{Event, InboundMessage, Payload, ScanCode};

/// Senders that are WeChat itself, not citizens (job-finish events).
const SYSTEM_SENDERS: [&str; 1] = ["mphelper"];

/// How many characters of the first message a ticket's summary keeps.
const SUMMARY_CHARS: usize = 60;

/// The answer to a voice message WeChat did not transcribe (no `Recognition`).
pub const VOICE_UNREADABLE: &str = "暂不支持收听语音，请用文字描述您的诉求。";
/// The answer to a video or short video.
pub const VIDEO_UNREADABLE: &str = "暂不支持观看视频，请用文字描述您的诉求。";

/// A callback, as interaction-svc sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A follow, possibly through a parametric QR code.
    Subscribe {
        scene: Option<String>,
    },
    Unsubscribe,
    /// A follower scanned a parametric QR code: answered with the subscribe greeting,
    /// as the same scan by someone not yet following is (WeChat opens the chat, and
    /// silence there looks like a dead channel).
    Scan {
        scene: String,
    },
    /// A location the citizen's client reports by itself: recorded, but it does not
    /// open the 48-hour window.
    Location {
        latitude: f64,
        longitude: f64,
        precision: Option<f64>,
    },
    /// A `click` menu button, or a `scancode_push` one: WeChat's client shows or opens
    /// what was scanned by itself, so only the button's key is ours to answer.
    Click {
        key: String,
    },
    /// Another action that opens the 48-hour window: a message of a type this
    /// platform does not know.
    OtherInteraction,
    /// Another event from a citizen that does not open the window (WeChat opens it
    /// for messages, follows, QR scans and the click and scan-code menus only): a
    /// link or mini-program menu, a photo or location menu (whose picture or location
    /// comes as a message of its own), an event this platform does not know.
    Activity,
    /// A citizen's message; `text` is what rules and routing look at. A
    /// `scancode_waitmsg` menu button comes as one too (`menu_key`): WeChat's client
    /// shows "消息接收中" and leaves the scan result to the account, so it is something
    /// the citizen sends, for a rule of the button's key or else a person.
    Message(CitizenMessage),
    /// A job-finish event or another system notice: not from a citizen.
    System,
}

/// A citizen's message, reduced to what a ticket's thread and the rules need.
#[derive(Debug, Clone, PartialEq)]
pub struct CitizenMessage {
    /// WeChat's MsgType (`text`, `image`, `voice`, …).
    pub msg_type: String,
    /// The words rules, the directory and routing read: the text, or the voice
    /// recognition. Empty for anything else: a picture, and also a location or a link,
    /// whose label or title names a place or a page, not the citizen's question (a
    /// location labelled 社保大厦 is no question about 社保, and must reach a person
    /// with its coordinates rather than get 社保's keyword answer).
    pub text: String,
    /// The thread entry: the text, or a description of the media.
    pub body: String,
    /// A reported location, for the follower record.
    pub location: Option<(f64, f64)>,
    /// The key of the scan-code menu button that sent it (`scancode_waitmsg`), which
    /// `menu_click` rules match; `None` for a message the citizen wrote.
    pub menu_key: Option<String>,
}

impl CitizenMessage {
    /// The ticket summary: the first characters of the body.
    pub fn summary(&self) -> String {
        self.body.chars().take(SUMMARY_CHARS).collect()
    }

    /// What to tell the citizen when nobody can read the message: an untranscribed
    /// voice message or a video is only a media_id in a thread, which no department
    /// desk can play, so it must not become a ticket. `None` for anything readable
    /// (a picture's URL opens in the desk's browser).
    pub fn unreadable(&self) -> Option<&'static str> {
        match self.msg_type.as_str() {
            "voice" if self.text.is_empty() => Some(VOICE_UNREADABLE),
            "video" | "shortvideo" => Some(VIDEO_UNREADABLE),
            _ => None,
        }
    }
}

impl Incoming {
    /// Classifies a parsed callback. Its texts hold no U+0000: the `wechat` reader
    /// drops the character from every field it parses.
    pub fn of(message: &InboundMessage) -> Self {
        if SYSTEM_SENDERS.contains(&message.header.from_user_name.as_str()) {
            return Self::System;
        }
        let citizen = |msg_type: &str, text: String, body: String| {
            Self::Message(CitizenMessage {
                msg_type: msg_type.to_owned(),
                text,
                body,
                location: None,
                menu_key: None,
            })
        };
        match &message.payload {
            Payload::Text(m) => citizen("text", m.content.clone(), m.content.clone()),
            Payload::Voice(m) => match m.recognition.as_deref().map(str::trim) {
                Some(words) if !words.is_empty() => {
                    citizen("voice", words.to_owned(), format!("[语音] {words}"))
                }
                _ => citizen(
                    "voice",
                    String::new(),
                    format!("[语音] media_id={}", m.media_id),
                ),
            },
            Payload::Image(m) => citizen("image", String::new(), format!("[图片] {}", m.pic_url)),
            Payload::Video(m) => citizen(
                "video",
                String::new(),
                format!("[视频] media_id={}", m.media_id),
            ),
            Payload::ShortVideo(m) => citizen(
                "shortvideo",
                String::new(),
                format!("[小视频] media_id={}", m.media_id),
            ),
            Payload::Location(m) => Self::Message(CitizenMessage {
                msg_type: "location".to_owned(),
                text: String::new(),
                body: format!("[位置] {} ({}, {})", m.label, m.latitude, m.longitude),
                location: Some((m.latitude, m.longitude)),
                menu_key: None,
            }),
            Payload::Link(m) => citizen(
                "link",
                String::new(),
                format!("[链接] {} {}", m.title, m.url),
            ),
            Payload::Event { kind, .. } => match kind {
                Event::Subscribe { scene, .. } => Self::Subscribe {
                    scene: scene.clone(),
                },
                Event::Unsubscribe => Self::Unsubscribe,
                Event::Scan { scene, .. } => Self::Scan {
                    scene: scene.clone(),
                },
                Event::Location {
                    latitude,
                    longitude,
                    precision,
                } => Self::Location {
                    latitude: *latitude,
                    longitude: *longitude,
                    precision: *precision,
                },
                Event::Click { key } | Event::ScanCodePush(ScanCode { key, .. }) => {
                    Self::Click { key: key.clone() }
                }
                Event::ScanCodeWaitMsg(scan) => Self::Message(CitizenMessage {
                    msg_type: "scancode".to_owned(),
                    text: String::new(),
                    body: format!("[扫码] {} ({})", scan.scan_result, scan.scan_type),
                    location: None,
                    menu_key: Some(scan.key.clone()),
                }),
                Event::MassSendJobFinish(_)
                | Event::TemplateSendJobFinish(_)
                | Event::PublishJobFinish(_) => Self::System,
                Event::View { .. }
                | Event::ViewMiniprogram { .. }
                | Event::PicSysPhoto(_)
                | Event::PicPhotoOrAlbum(_)
                | Event::PicWeixin(_)
                | Event::LocationSelect(_)
                | Event::Unknown => Self::Activity,
            },
            // An unknown MsgType still came from the citizen; it counts as an interaction.
            Payload::Unknown => Self::OtherInteraction,
        }
    }

    /// Whether the sender is a citizen whose follower record this updates.
    pub fn is_from_citizen(&self) -> bool {
        !matches!(self, Self::System)
    }

    /// Whether interaction-svc may give it a passive reply: a message, a follow, a QR
    /// scan, a click or scan-code menu button. The rest — an unfollow (nobody reads a
    /// reply), a reported location, a link or photo menu, a message of an unknown type,
    /// a system notice — it always answers with nothing, whatever it knows, so the
    /// gateway answers `success` without asking (and leaves no missed-reply marker when
    /// interaction-svc is down). `decide` in interaction-svc starts from this.
    pub fn may_get_passive_reply(&self) -> bool {
        matches!(
            self,
            Self::Message(_) | Self::Subscribe { .. } | Self::Scan { .. } | Self::Click { .. }
        )
    }

    /// Whether it opens the 48-hour customer-service window: a message, a follow, a
    /// QR scan, a click or scan-code menu button. An unfollow does not (nobody can be
    /// messaged after it), nor a reported location or a link menu.
    pub fn is_interaction(&self) -> bool {
        !matches!(
            self,
            Self::System | Self::Unsubscribe | Self::Location { .. } | Self::Activity
        )
    }

    /// The menu key `menu_click` rules match: a click's, or a scan-code button's.
    pub fn menu_key(&self) -> Option<&str> {
        match self {
            Self::Click { key } => Some(key),
            Self::Message(message) => message.menu_key.as_deref(),
            _ => None,
        }
    }

    /// The citizen's message, if it is one.
    pub fn message(&self) -> Option<&CitizenMessage> {
        match self {
            Self::Message(message) => Some(message),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(xml: &str) -> InboundMessage {
        InboundMessage::parse(xml.as_bytes()).unwrap()
    }

    fn message(from: &str, body: &str) -> String {
        format!(
            "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[{from}]]></FromUserName>\
             <CreateTime>1700000000</CreateTime>{body}</xml>"
        )
    }

    #[test]
    fn nul_characters_are_dropped_from_what_a_callback_means() {
        let text = message(
            "o1",
            "<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[停\u{0}水\u{0}]]></Content><MsgId>7</MsgId>",
        );
        let Incoming::Message(m) = Incoming::of(&parse(&text)) else {
            panic!("a message")
        };
        assert_eq!((m.text.as_str(), m.body.as_str()), ("停水", "停水"));

        let silent = message(
            "o1",
            "<MsgType><![CDATA[voice]]></MsgType><MediaId><![CDATA[m]]></MediaId>\
             <Format><![CDATA[amr]]></Format><Recognition><![CDATA[\u{0} ]]></Recognition><MsgId>7</MsgId>",
        );
        let Incoming::Message(m) = Incoming::of(&parse(&silent)) else {
            panic!("a message")
        };
        assert_eq!(m.unreadable(), Some(VOICE_UNREADABLE));
        assert_eq!(m.body, "[语音] media_id=m");

        let click = message(
            "o1",
            "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[CLICK]]></Event>\
             <EventKey><![CDATA[guide\u{0}]]></EventKey>",
        );
        assert_eq!(
            Incoming::of(&parse(&click)),
            Incoming::Click {
                key: "guide".into()
            }
        );
    }

    #[test]
    fn a_voice_message_is_read_through_its_recognition() {
        let xml = message(
            "o1",
            "<MsgType><![CDATA[voice]]></MsgType><MediaId><![CDATA[m]]></MediaId>\
             <Format><![CDATA[amr]]></Format><Recognition><![CDATA[路灯坏了]]></Recognition><MsgId>7</MsgId>",
        );
        let Incoming::Message(m) = Incoming::of(&parse(&xml)) else {
            panic!("a message")
        };
        assert_eq!(m.text, "路灯坏了");
        assert_eq!(m.msg_type, "voice");
        assert_eq!(m.unreadable(), None);
    }

    #[test]
    fn untranscribed_voice_and_video_are_unreadable_and_pictures_are_not() {
        let message_of = |body: &str| {
            let Incoming::Message(m) = Incoming::of(&parse(&message("o1", body))) else {
                panic!("a message: {body}")
            };
            m
        };
        let silent = message_of(
            "<MsgType><![CDATA[voice]]></MsgType><MediaId><![CDATA[m]]></MediaId>\
             <Format><![CDATA[amr]]></Format><Recognition><![CDATA[ ]]></Recognition><MsgId>7</MsgId>",
        );
        assert_eq!(silent.unreadable(), Some(VOICE_UNREADABLE));
        let untranscribed = message_of(
            "<MsgType><![CDATA[voice]]></MsgType><MediaId><![CDATA[m]]></MediaId>\
             <Format><![CDATA[amr]]></Format><MsgId>8</MsgId>",
        );
        assert_eq!(untranscribed.unreadable(), Some(VOICE_UNREADABLE));
        for kind in ["video", "shortvideo"] {
            let video = message_of(&format!(
                "<MsgType><![CDATA[{kind}]]></MsgType><MediaId><![CDATA[m]]></MediaId>\
                 <ThumbMediaId><![CDATA[t]]></ThumbMediaId><MsgId>9</MsgId>"
            ));
            assert_eq!(video.unreadable(), Some(VIDEO_UNREADABLE), "{kind}");
        }
        let picture = message_of(
            "<MsgType><![CDATA[image]]></MsgType><PicUrl><![CDATA[http://mmbiz/p]]></PicUrl>\
             <MediaId><![CDATA[m]]></MediaId><MsgId>10</MsgId>",
        );
        assert_eq!(picture.unreadable(), None);
    }

    #[test]
    fn follows_clicks_and_job_finish_events_are_told_apart() {
        let subscribe = message(
            "o1",
            "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event>\
             <EventKey><![CDATA[qrscene_metro]]></EventKey>",
        );
        assert_eq!(
            Incoming::of(&parse(&subscribe)),
            Incoming::Subscribe {
                scene: Some("metro".into())
            }
        );
        let click = message(
            "o1",
            "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[CLICK]]></Event>\
             <EventKey><![CDATA[HOTLINE]]></EventKey>",
        );
        assert_eq!(
            Incoming::of(&parse(&click)),
            Incoming::Click {
                key: "HOTLINE".into()
            }
        );
        let finish = message(
            "mphelper",
            "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[MASSSENDJOBFINISH]]></Event>\
             <MsgID>1</MsgID><Status><![CDATA[send success]]></Status><TotalCount>1</TotalCount>\
             <FilterCount>1</FilterCount><SentCount>1</SentCount><ErrorCount>0</ErrorCount>",
        );
        let finish = Incoming::of(&parse(&finish));
        assert_eq!(finish, Incoming::System);
        assert!(!finish.is_from_citizen());
        assert!(!Incoming::Unsubscribe.is_interaction());
    }

    #[test]
    fn only_messages_follows_scans_and_click_or_scan_menus_open_the_window() {
        let event = |body: &str| {
            Incoming::of(&parse(&message(
                "o1",
                &format!("<MsgType><![CDATA[event]]></MsgType>{body}"),
            )))
        };
        let view = event(
            "<Event><![CDATA[VIEW]]></Event><EventKey><![CDATA[https://gov.example.cn]]></EventKey>",
        );
        let location = event(
            "<Event><![CDATA[LOCATION]]></Event><Latitude>25.77</Latitude>\
             <Longitude>113.01</Longitude><Precision>30</Precision>",
        );
        let unknown = event("<Event><![CDATA[user_info_modified]]></Event>");
        let scan_menu = event(
            "<Event><![CDATA[scancode_push]]></Event><EventKey><![CDATA[SCAN]]></EventKey>\
             <ScanCodeInfo><ScanType><![CDATA[qrcode]]></ScanType>\
             <ScanResult><![CDATA[1]]></ScanResult></ScanCodeInfo>",
        );
        let click = event("<Event><![CDATA[CLICK]]></Event><EventKey><![CDATA[K]]></EventKey>");
        let text = Incoming::of(&parse(&message(
            "o1",
            "<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[你好]]></Content><MsgId>1</MsgId>",
        )));

        for closed in [&view, &location, &unknown] {
            assert!(closed.is_from_citizen(), "{closed:?}");
            assert!(!closed.is_interaction(), "{closed:?}");
        }
        for open in [&scan_menu, &click, &text] {
            assert!(open.is_interaction(), "{open:?}");
        }
    }

    #[test]
    fn only_messages_follows_scans_and_click_or_scan_menus_may_get_a_passive_reply() {
        let of = |from: &str, body: &str| Incoming::of(&parse(&message(from, body)));
        let event = |body: &str| of("o1", &format!("<MsgType><![CDATA[event]]></MsgType>{body}"));
        let answerable = [
            of(
                "o1",
                "<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[你好]]></Content><MsgId>1</MsgId>",
            ),
            event("<Event><![CDATA[subscribe]]></Event><EventKey><![CDATA[]]></EventKey>"),
            event("<Event><![CDATA[SCAN]]></Event><EventKey><![CDATA[metro]]></EventKey>"),
            event("<Event><![CDATA[CLICK]]></Event><EventKey><![CDATA[K]]></EventKey>"),
            event(
                "<Event><![CDATA[scancode_waitmsg]]></Event><EventKey><![CDATA[SCAN]]></EventKey>\
                 <ScanCodeInfo><ScanType><![CDATA[qrcode]]></ScanType>\
                 <ScanResult><![CDATA[1]]></ScanResult></ScanCodeInfo>",
            ),
        ];
        let silent = [
            event("<Event><![CDATA[unsubscribe]]></Event>"),
            event(
                "<Event><![CDATA[VIEW]]></Event><EventKey><![CDATA[https://gov.example.cn]]></EventKey>",
            ),
            event(
                "<Event><![CDATA[LOCATION]]></Event><Latitude>25.77</Latitude>\
                 <Longitude>113.01</Longitude><Precision>30</Precision>",
            ),
            event("<Event><![CDATA[user_info_modified]]></Event>"),
            of(
                "o1",
                "<MsgType><![CDATA[hologram]]></MsgType><MsgId>2</MsgId>",
            ),
            of(
                "mphelper",
                "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[MASSSENDJOBFINISH]]></Event>\
                 <MsgID>1</MsgID><Status><![CDATA[send success]]></Status><TotalCount>1</TotalCount>\
                 <FilterCount>1</FilterCount><SentCount>1</SentCount><ErrorCount>0</ErrorCount>",
            ),
        ];
        for incoming in &answerable {
            assert!(incoming.may_get_passive_reply(), "{incoming:?}");
        }
        for incoming in &silent {
            assert!(!incoming.may_get_passive_reply(), "{incoming:?}");
        }
    }

    #[test]
    fn a_location_or_a_link_carries_no_words_for_rules_and_keeps_what_it_points_at() {
        use crate::rules::{MatchKind, RuleSet, answer_without_state};
        use crate::testing::rule;

        let rules = RuleSet::new([
            rule(MatchKind::Contains, &["社保"], 0, 0, "social security"),
            rule(MatchKind::Exact, &["社保大厦"], 9, 0, "the building"),
            rule(MatchKind::Regex, &["."], 0, 0, "anything"),
        ]);
        let location = Incoming::of(&parse(&message(
            "o1",
            "<MsgType><![CDATA[location]]></MsgType><Location_X>25.77</Location_X>\
             <Location_Y>113.01</Location_Y><Scale>15</Scale>\
             <Label><![CDATA[社保大厦]]></Label><MsgId>11</MsgId>",
        )));
        let link = Incoming::of(&parse(&message(
            "o1",
            "<MsgType><![CDATA[link]]></MsgType><Title><![CDATA[社保卡补办指南]]></Title>\
             <Description><![CDATA[社保 公积金]]></Description>\
             <Url><![CDATA[https://mp.weixin.qq.com/s/abc]]></Url><MsgId>12</MsgId>",
        )));
        for incoming in [&location, &link] {
            assert_eq!(rules.answer(incoming), None, "{incoming:?}");
            assert_eq!(answer_without_state(&rules, incoming), None, "{incoming:?}");
            let m = incoming.message().expect("a message");
            assert_eq!(m.text, "", "{incoming:?}");
            assert_eq!(m.unreadable(), None, "{incoming:?}");
        }
        let m = location.message().unwrap();
        assert_eq!(m.body, "[位置] 社保大厦 (25.77, 113.01)");
        assert_eq!(m.location, Some((25.77, 113.01)));
        let m = link.message().unwrap();
        assert_eq!(
            m.body,
            "[链接] 社保卡补办指南 https://mp.weixin.qq.com/s/abc"
        );
    }

    #[test]
    fn a_scan_code_button_that_waits_is_a_message_carrying_the_result() {
        use crate::testing::scan;
        assert_eq!(
            scan("SCAN_PUSH", false, "https://x.cn"),
            Incoming::Click {
                key: "SCAN_PUSH".into()
            }
        );
        let waits = scan("SCAN_WAIT", true, "6901234567892");
        assert!(waits.is_interaction());
        assert_eq!(waits.menu_key(), Some("SCAN_WAIT"));
        assert_eq!(
            waits.message(),
            Some(&CitizenMessage {
                msg_type: "scancode".into(),
                text: String::new(),
                body: "[扫码] 6901234567892 (qrcode)".into(),
                location: None,
                menu_key: Some("SCAN_WAIT".into()),
            })
        );
        assert_eq!(crate::testing::text("SCAN_WAIT").menu_key(), None);
    }

    #[test]
    fn a_summary_keeps_the_first_characters() {
        let m = CitizenMessage {
            msg_type: "text".into(),
            text: String::new(),
            body: "字".repeat(100),
            location: None,
            menu_key: None,
        };
        assert_eq!(m.summary().chars().count(), 60);
    }
}
