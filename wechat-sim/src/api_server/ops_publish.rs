//! Deleting what was published: `freepublish/delete` (by the `article_id` a publish
//! job reported) and `message/mass/delete` (by a mass send's `msg_id`).

use serde_json::{Value, json};

use super::ops::Req;
use super::state::{World, WxErr};

/// `POST /cgi-bin/freepublish/delete {article_id, index}`.
pub(crate) fn publish_delete(world: &mut World, req: &Req<'_>) -> Result<Value, WxErr> {
    let account = world.account(&req.appid)?;
    let article_id = req
        .body
        .get("article_id")
        .and_then(Value::as_str)
        .ok_or_else(|| WxErr::new(47001, "data format error: missing article_id"))?;
    // Publish jobs report `ARTICLE_{publish_id}` (see ops.rs `publish_get` and the job
    // callbacks); anything else was never published here.
    let known = article_id
        .strip_prefix("ARTICLE_")
        .is_some_and(|publish_id| account.publishes.remove(publish_id).is_some());
    if !known {
        return Err(WxErr::new(53600, "article_id is invalid"));
    }
    Ok(json!({"errcode": 0, "errmsg": "ok"}))
}

/// `POST /cgi-bin/message/mass/delete {msg_id, article_idx}`.
pub(crate) fn mass_delete(world: &mut World, req: &Req<'_>) -> Result<Value, WxErr> {
    world.account(&req.appid)?;
    match req.body.get("msg_id").and_then(Value::as_u64) {
        Some(id) if id > 0 => Ok(json!({"errcode": 0, "errmsg": "ok"})),
        _ => Err(WxErr::new(40007, "invalid msg_id")),
    }
}
