//! Deleting what was published: `freepublish/delete` (by the `article_id` a publish
//! job reported) and `message/mass/delete` (by a mass send's `msg_id`); and a mass
//! send's status (`message/mass/get`).

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

/// `POST /cgi-bin/message/mass/delete {msg_id, article_idx}`: a send of the mock's
/// that went out is `DELETE` from then on, as `message/mass/get` reports it (WeChat
/// deletes only a send that succeeded; any other keeps its status).
pub(crate) fn mass_delete(world: &mut World, req: &Req<'_>) -> Result<Value, WxErr> {
    let account = world.account(&req.appid)?;
    match req.body.get("msg_id").and_then(Value::as_u64) {
        Some(id) if id > 0 => {
            if let Some(job) = account.mass_jobs.get_mut(&id)
                && job.msg_status == "SEND_SUCCESS"
            {
                job.msg_status = "DELETE".to_owned();
            }
            Ok(json!({"errcode": 0, "errmsg": "ok"}))
        }
        _ => Err(WxErr::new(40007, "invalid msg_id")),
    }
}

/// `POST /cgi-bin/message/mass/get {msg_id}`: the send's `msg_status` (WeChat's
/// documentation writes the id as a string; a number is taken too).
pub(crate) fn mass_get(world: &mut World, req: &Req<'_>) -> Result<Value, WxErr> {
    let account = world.account(&req.appid)?;
    let msg_id = match req.body.get("msg_id") {
        Some(Value::String(id)) => id.parse::<u64>().ok(),
        Some(id) => id.as_u64(),
        None => None,
    }
    .ok_or_else(|| WxErr::new(40007, "invalid msg_id"))?;
    let job = account
        .mass_jobs
        .get(&msg_id)
        .ok_or_else(|| WxErr::new(40007, "invalid msg_id"))?;
    Ok(json!({"msg_id": msg_id, "msg_status": job.msg_status}))
}
