//! Realistic callbacks of every documented type (wechat-protocol.md §2), each with the
//! subject and event_id it must produce. `{a}` stands for the account id; an event_id
//! ending in `#` is the account:from:time prefix of a body-hash key.

use crate::helpers::ORIGINAL_ID;

pub struct Sample {
    pub name: &'static str,
    pub xml: String,
    /// After `wechat.inbound.{account}.`
    pub subject: &'static str,
    pub event_id: &'static str,
}

fn wrap(from: &str, time: u64, inner: &str) -> String {
    format!(
        "<xml><ToUserName><![CDATA[{ORIGINAL_ID}]]></ToUserName><FromUserName><![CDATA[{from}]]></FromUserName><CreateTime>{time}</CreateTime>{inner}</xml>"
    )
}

pub fn all() -> Vec<Sample> {
    let u = "oUser8q7ou2gfYjqLzSIWZf0rs";
    let s = |name, from: &str, time, inner: &str, subject, event_id| Sample {
        name,
        xml: wrap(from, time, inner),
        subject,
        event_id,
    };
    vec![
        s(
            "text",
            u,
            1700000001,
            "<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[路灯坏了 <a>]]></Content><MsgId>6054768590064713728</MsgId>",
            "msg.text",
            "{a}:oUser8q7ou2gfYjqLzSIWZf0rs:6054768590064713728",
        ),
        s(
            "image",
            u,
            1700000002,
            "<MsgType><![CDATA[image]]></MsgType><PicUrl><![CDATA[http://mmbiz.qpic.cn/x.jpg]]></PicUrl><MediaId><![CDATA[media_img_1]]></MediaId><MsgId>6054768590064713729</MsgId>",
            "msg.image",
            "{a}:oUser8q7ou2gfYjqLzSIWZf0rs:6054768590064713729",
        ),
        s(
            "voice with recognition",
            u,
            1700000003,
            "<MsgType><![CDATA[voice]]></MsgType><MediaId><![CDATA[media_voice]]></MediaId><Format><![CDATA[amr]]></Format><MediaId16K><![CDATA[media_16k]]></MediaId16K><Recognition><![CDATA[我要投诉噪音]]></Recognition><MsgId>6054768590064713730</MsgId>",
            "msg.voice",
            "{a}:oUser8q7ou2gfYjqLzSIWZf0rs:6054768590064713730",
        ),
        s(
            "video",
            u,
            1700000004,
            "<MsgType><![CDATA[video]]></MsgType><MediaId><![CDATA[media_video]]></MediaId><ThumbMediaId><![CDATA[thumb]]></ThumbMediaId><MsgId>6054768590064713731</MsgId>",
            "msg.video",
            "{a}:oUser8q7ou2gfYjqLzSIWZf0rs:6054768590064713731",
        ),
        s(
            "shortvideo",
            u,
            1700000005,
            "<MsgType><![CDATA[shortvideo]]></MsgType><MediaId><![CDATA[media_sv]]></MediaId><ThumbMediaId><![CDATA[thumb]]></ThumbMediaId><MsgId>6054768590064713732</MsgId>",
            "msg.shortvideo",
            "{a}:oUser8q7ou2gfYjqLzSIWZf0rs:6054768590064713732",
        ),
        s(
            "location",
            u,
            1700000006,
            "<MsgType><![CDATA[location]]></MsgType><Location_X>25.770000</Location_X><Location_Y>113.010000</Location_Y><Scale>15</Scale><Label><![CDATA[郴州市北湖区]]></Label><MsgId>6054768590064713733</MsgId>",
            "msg.location",
            "{a}:oUser8q7ou2gfYjqLzSIWZf0rs:6054768590064713733",
        ),
        s(
            "link",
            u,
            1700000007,
            "<MsgType><![CDATA[link]]></MsgType><Title><![CDATA[通知]]></Title><Description><![CDATA[desc]]></Description><Url><![CDATA[https://example.org/a]]></Url><MsgId>6054768590064713734</MsgId>",
            "msg.link",
            "{a}:oUser8q7ou2gfYjqLzSIWZf0rs:6054768590064713734",
        ),
        s(
            "subscribe",
            u,
            1700000008,
            "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event><EventKey><![CDATA[]]></EventKey>",
            "event.subscribe",
            "{a}:oUser8q7ou2gfYjqLzSIWZf0rs:1700000008:subscribe",
        ),
        s(
            "subscribe with qrscene",
            u,
            1700000009,
            "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event><EventKey><![CDATA[qrscene_123123]]></EventKey><Ticket><![CDATA[TICKET]]></Ticket>",
            "event.subscribe",
            "{a}:oUser8q7ou2gfYjqLzSIWZf0rs:1700000009:subscribe:qrscene_123123",
        ),
        s(
            "unsubscribe",
            u,
            1700000010,
            "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[unsubscribe]]></Event><EventKey><![CDATA[]]></EventKey>",
            "event.unsubscribe",
            "{a}:oUser8q7ou2gfYjqLzSIWZf0rs:1700000010:unsubscribe",
        ),
        s(
            "SCAN",
            u,
            1700000011,
            "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[SCAN]]></Event><EventKey><![CDATA[123123]]></EventKey><Ticket><![CDATA[TICKET]]></Ticket>",
            "event.scan",
            "{a}:oUser8q7ou2gfYjqLzSIWZf0rs:1700000011:SCAN:123123",
        ),
        s(
            "LOCATION",
            u,
            1700000012,
            "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[LOCATION]]></Event><Latitude>23.137466</Latitude><Longitude>113.352425</Longitude><Precision>119.385040</Precision>",
            "event.location",
            "{a}:oUser8q7ou2gfYjqLzSIWZf0rs:1700000012:LOCATION",
        ),
        s(
            "CLICK",
            u,
            1700000013,
            "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[CLICK]]></Event><EventKey><![CDATA[MENU_CONTACT]]></EventKey>",
            "event.click",
            "{a}:oUser8q7ou2gfYjqLzSIWZf0rs:1700000013:CLICK:MENU_CONTACT",
        ),
        s(
            "VIEW",
            u,
            1700000014,
            "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[VIEW]]></Event><EventKey><![CDATA[https://www.example.gov.cn/]]></EventKey><MenuId>208379533</MenuId>",
            "event.view",
            "{a}:oUser8q7ou2gfYjqLzSIWZf0rs:1700000014:VIEW:https://www.example.gov.cn/",
        ),
        s(
            "scancode_push",
            u,
            1700000015,
            "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[scancode_push]]></Event><EventKey><![CDATA[scan_1]]></EventKey><ScanCodeInfo><ScanType><![CDATA[qrcode]]></ScanType><ScanResult><![CDATA[1]]></ScanResult></ScanCodeInfo>",
            "event.scancode_push",
            "{a}:oUser8q7ou2gfYjqLzSIWZf0rs:1700000015:scancode_push:scan_1",
        ),
        s(
            "pic_sysphoto",
            u,
            1700000016,
            "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[pic_sysphoto]]></Event><EventKey><![CDATA[photo_1]]></EventKey><SendPicsInfo><Count>1</Count><PicList><item><PicMd5Sum><![CDATA[1b5f7c23b5bf75682a53e7b6d163e185]]></PicMd5Sum></item></PicList></SendPicsInfo>",
            "event.pic_sysphoto",
            "{a}:oUser8q7ou2gfYjqLzSIWZf0rs:1700000016:pic_sysphoto:photo_1",
        ),
        s(
            "location_select",
            u,
            1700000017,
            "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[location_select]]></Event><EventKey><![CDATA[loc_1]]></EventKey><SendLocationInfo><Location_X><![CDATA[23]]></Location_X><Location_Y><![CDATA[113]]></Location_Y><Scale><![CDATA[15]]></Scale><Label><![CDATA[ 广州市海珠区]]></Label><Poiname><![CDATA[]]></Poiname></SendLocationInfo>",
            "event.location_select",
            "{a}:oUser8q7ou2gfYjqLzSIWZf0rs:1700000017:location_select:loc_1",
        ),
        s(
            "MASSSENDJOBFINISH",
            "oSystem",
            1700000018,
            "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[MASSSENDJOBFINISH]]></Event><MsgID>1000001625</MsgID><Status><![CDATA[send success]]></Status><TotalCount>100</TotalCount><FilterCount>80</FilterCount><SentCount>75</SentCount><ErrorCount>5</ErrorCount>",
            "event.masssendjobfinish",
            "{a}:oSystem:1700000018:MASSSENDJOBFINISH:1000001625",
        ),
        s(
            "TEMPLATESENDJOBFINISH",
            u,
            1700000019,
            "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event><MsgID>200163836</MsgID><Status><![CDATA[failed:user block]]></Status>",
            "event.templatesendjobfinish",
            "{a}:oUser8q7ou2gfYjqLzSIWZf0rs:1700000019:TEMPLATESENDJOBFINISH:200163836",
        ),
        s(
            "PUBLISHJOBFINISH",
            "mphelper",
            1700000020,
            "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[PUBLISHJOBFINISH]]></Event><PublishEventInfo><publish_id>2247503051</publish_id><publish_status>0</publish_status><article_id><![CDATA[b5O2OUs25HBxRceL7hfReg-U9QGeq9zQjiDvy]]></article_id><article_detail><count>1</count><item><idx>1</idx><article_url><![CDATA[https://mp.weixin.qq.com/s/x]]></article_url></item></article_detail></PublishEventInfo>",
            "event.publishjobfinish",
            "{a}:mphelper:1700000020:PUBLISHJOBFINISH:2247503051",
        ),
        s(
            "unknown event",
            u,
            1700000021,
            "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[wxa_media_check]]></Event><trace_id><![CDATA[967e945cd8a3e458f3c74dcb886068e9]]></trace_id>",
            "event.wxa_media_check",
            "{a}:oUser8q7ou2gfYjqLzSIWZf0rs:1700000021:#",
        ),
        s(
            "unknown msg type",
            u,
            1700000022,
            "<MsgType><![CDATA[miniprogrampage]]></MsgType><Title><![CDATA[t]]></Title><AppId><![CDATA[wxapp]]></AppId>",
            "msg.miniprogrampage",
            "{a}:oUser8q7ou2gfYjqLzSIWZf0rs:1700000022:#",
        ),
    ]
}

/// A text message from `from` with `msg_id` (for tests that need many distinct ones).
pub fn text(from: &str, msg_id: u64, content: &str) -> String {
    wrap(
        from,
        1700000100,
        &format!(
            "<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId>"
        ),
    )
}
