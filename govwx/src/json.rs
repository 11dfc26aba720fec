//! The JSON shapes of `--json`: the proto messages with lower-case enum names and
//! times in the office's zone.

use proto::interaction::v1 as pb;
use serde_json::{Value, json};

use crate::output::{Out, enum_name};

pub fn state(value: i32) -> String {
    pb::TicketState::try_from(value).map_or_else(
        |_| value.to_string(),
        |s| enum_name(s.as_str_name(), "TICKET_STATE_"),
    )
}

pub fn delivery(value: i32) -> String {
    pb::DeliveryStatus::try_from(value).map_or_else(
        |_| value.to_string(),
        |s| enum_name(s.as_str_name(), "DELIVERY_STATUS_"),
    )
}

pub fn direction(value: i32) -> String {
    pb::Direction::try_from(value).map_or_else(
        |_| value.to_string(),
        |s| enum_name(s.as_str_name(), "DIRECTION_"),
    )
}

pub fn queue_kind(value: i32) -> String {
    pb::QueueEventKind::try_from(value).map_or_else(
        |_| value.to_string(),
        |s| enum_name(s.as_str_name(), "QUEUE_EVENT_KIND_"),
    )
}

pub fn match_kind(value: i32) -> String {
    pb::MatchKind::try_from(value).map_or_else(
        |_| value.to_string(),
        |s| enum_name(s.as_str_name(), "MATCH_KIND_"),
    )
}

pub fn ticket(out: &Out, t: &pb::Ticket) -> Value {
    let mut value = json!({
        "id": t.id,
        "account": t.account,
        "department": t.department,
        "openid": t.openid,
        "state": state(t.state),
        "category": t.category,
        "summary": t.summary,
        "opened_at": out.json_time(t.opened_at.as_ref()),
        "acknowledge_due_at": out.json_time(t.acknowledge_due_at.as_ref()),
        "resolve_due_at": out.json_time(t.resolve_due_at.as_ref()),
        "overdue": t.overdue,
        "assignee": t.assignee,
        "awaiting_citizen": t.awaiting_citizen,
        "rating": t.rating,
        "closed_at": out.json_time(t.closed_at.as_ref()),
    });
    if !t.thread.is_empty() || !t.history.is_empty() {
        value["thread"] = t.thread.iter().map(|m| message(out, m)).collect();
        value["history"] = t.history.iter().map(|h| transition(out, h)).collect();
        value["earlier_messages"] = t.earlier_messages.into();
        value["earlier_transitions"] = t.earlier_transitions.into();
    }
    value
}

fn message(out: &Out, m: &pb::TicketMessage) -> Value {
    json!({
        "id": m.id,
        "direction": direction(m.direction),
        "author": m.author,
        "msg_type": m.msg_type,
        "text": m.text,
        "at": out.json_time(m.at.as_ref()),
        "delivery": delivery(m.delivery),
    })
}

fn transition(out: &Out, h: &pb::TicketTransition) -> Value {
    json!({
        "from": state(h.from),
        "to": state(h.to),
        "actor": h.actor,
        "action": h.action,
        "note": h.note,
        "at": out.json_time(h.at.as_ref()),
    })
}

pub fn reply_rule(r: &pb::ReplyRule) -> Value {
    json!({
        "id": r.id,
        "account": r.account,
        "match": match_kind(r.r#match),
        "patterns": r.patterns,
        "priority": r.priority,
        "text": r.text,
        "news": r.news.iter().map(|n| json!({
            "title": n.title, "description": n.description, "pic_url": n.pic_url, "url": n.url,
        })).collect::<Vec<_>>(),
        "resolves": r.resolves,
        "enabled": r.enabled,
    })
}

pub fn routing_rule(r: &pb::RoutingRule) -> Value {
    json!({
        "id": r.id,
        "account": r.account,
        "keywords": r.keywords,
        "category": r.category,
        "department": r.department,
        "priority": r.priority,
    })
}

pub fn follower(out: &Out, f: &pb::Follower) -> Value {
    let located = f.location_at.is_some();
    json!({
        "account": f.account,
        "openid": f.openid,
        "subscribed": f.subscribed,
        "subscribed_at": out.json_time(f.subscribed_at.as_ref()),
        "unsubscribed_at": out.json_time(f.unsubscribed_at.as_ref()),
        "qr_scene": f.qr_scene,
        "last_interaction_at": out.json_time(f.last_interaction_at.as_ref()),
        "latitude": if located { json!(f.latitude) } else { Value::Null },
        "longitude": if located { json!(f.longitude) } else { Value::Null },
        "location_at": out.json_time(f.location_at.as_ref()),
        "tags": f.tags,
    })
}
