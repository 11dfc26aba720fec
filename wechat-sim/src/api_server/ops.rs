//! WeChat's API behaviour, one plain function per endpoint over the simulated [`World`].

use std::collections::HashMap;

use axum::http::Method;
use chrono::{DateTime, Datelike, Duration as ChronoDuration, NaiveDate, Utc};
use serde_json::{Value, json};

use super::job_callbacks::MassJobEnd;
use super::state::{Account, AccountKind, ClientMsg, Publish, TokenRec, Window, World, WxErr};

/// A decoded API request.
pub(crate) struct Req<'a> {
    /// The account the access token belongs to (empty on the token endpoints).
    pub(crate) appid: String,
    pub(crate) query: &'a HashMap<String, String>,
    pub(crate) body: Value,
    pub(crate) now: DateTime<Utc>,
}

pub(crate) type Op = fn(&mut World, &Req<'_>) -> Result<Value, WxErr>;

/// One WeChat endpoint the mock serves.
pub(crate) struct Endpoint {
    pub(crate) method: Method,
    pub(crate) path: &'static str,
    /// Whether the call needs `access_token`.
    pub(crate) auth: bool,
    pub(crate) op: Op,
}

const fn ep(method: Method, path: &'static str, auth: bool, op: Op) -> Endpoint {
    Endpoint {
        method,
        path,
        auth,
        op,
    }
}

/// Every endpoint the `wechat` crate's client calls.
pub(crate) const ENDPOINTS: &[Endpoint] = &[
    ep(Method::GET, "/cgi-bin/token", false, token),
    ep(Method::POST, "/cgi-bin/stable_token", false, stable_token),
    ep(
        Method::POST,
        "/cgi-bin/message/custom/send",
        true,
        custom_send,
    ),
    ep(
        Method::POST,
        "/cgi-bin/message/template/send",
        true,
        template_send,
    ),
    ep(
        Method::POST,
        "/cgi-bin/message/mass/sendall",
        true,
        mass_sendall,
    ),
    ep(
        Method::POST,
        "/cgi-bin/message/mass/preview",
        true,
        mass_preview,
    ),
    ep(Method::POST, "/cgi-bin/draft/add", true, draft_add),
    ep(Method::POST, "/cgi-bin/draft/get", true, draft_get),
    ep(Method::POST, "/cgi-bin/draft/delete", true, draft_delete),
    ep(
        Method::POST,
        "/cgi-bin/material/del_material",
        true,
        del_material,
    ),
    ep(
        Method::POST,
        "/cgi-bin/freepublish/submit",
        true,
        publish_submit,
    ),
    ep(Method::POST, "/cgi-bin/freepublish/get", true, publish_get),
    ep(
        Method::POST,
        "/cgi-bin/freepublish/delete",
        true,
        super::ops_publish::publish_delete,
    ),
    ep(
        Method::POST,
        "/cgi-bin/message/mass/delete",
        true,
        super::ops_publish::mass_delete,
    ),
    ep(
        Method::POST,
        "/cgi-bin/message/mass/get",
        true,
        super::ops_publish::mass_get,
    ),
    ep(Method::POST, "/cgi-bin/menu/create", true, menu_create),
    ep(Method::GET, "/cgi-bin/menu/get", true, menu_get),
    ep(Method::GET, "/cgi-bin/menu/delete", true, menu_delete),
    ep(
        Method::POST,
        "/cgi-bin/menu/addconditional",
        true,
        menu_add_conditional,
    ),
    ep(
        Method::POST,
        "/cgi-bin/menu/delconditional",
        true,
        menu_del_conditional,
    ),
    ep(Method::GET, "/cgi-bin/user/info", true, user_info),
    ep(
        Method::POST,
        "/cgi-bin/user/info/batchget",
        true,
        user_batchget,
    ),
    ep(Method::GET, "/cgi-bin/user/get", true, user_get),
    ep(Method::POST, "/cgi-bin/tags/create", true, tags_create),
    ep(Method::GET, "/cgi-bin/tags/get", true, tags_get),
    ep(
        Method::POST,
        "/cgi-bin/tags/members/batchtagging",
        true,
        tags_tagging,
    ),
    ep(
        Method::POST,
        "/cgi-bin/tags/members/batchuntagging",
        true,
        tags_untagging,
    ),
    ep(
        Method::POST,
        "/datacube/getusersummary",
        true,
        dc_user_summary,
    ),
    ep(
        Method::POST,
        "/datacube/getusercumulate",
        true,
        dc_user_cumulate,
    ),
    ep(
        Method::POST,
        "/datacube/getarticlesummary",
        true,
        dc_article_summary,
    ),
    ep(
        Method::POST,
        "/datacube/getarticletotal",
        true,
        dc_article_total,
    ),
    ep(Method::POST, "/datacube/getuserread", true, dc_user_read),
];

fn ok() -> Value {
    json!({"errcode": 0, "errmsg": "ok"})
}

fn ok_with(mut extra: Value) -> Value {
    if let Value::Object(map) = &mut extra {
        map.insert("errcode".into(), json!(0));
        map.insert("errmsg".into(), json!("ok"));
    }
    extra
}

fn str_field<'a>(body: &'a Value, field: &str) -> Option<&'a str> {
    body.get(field).and_then(Value::as_str)
}

fn required<'a>(body: &'a Value, field: &str) -> Result<&'a str, WxErr> {
    str_field(body, field)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| WxErr::new(47001, format!("data format error: missing {field}")))
}

fn std_to_chrono(d: std::time::Duration) -> ChronoDuration {
    ChronoDuration::from_std(d).unwrap_or(ChronoDuration::MAX)
}

// ---------------------------------------------------------------- tokens

impl World {
    /// Checks an access token the way WeChat does and returns its account.
    pub(crate) fn authorize(
        &self,
        token: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<String, WxErr> {
        let token = token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| WxErr::new(41001, "access_token missing"))?;
        let invalid = || {
            WxErr::new(
                40001,
                "invalid credential, access_token is invalid or not latest, could get access_token by getStableAccessToken",
            )
        };
        let rec = self.tokens.get(token).ok_or_else(invalid)?;
        if rec.revoked {
            return Err(invalid());
        }
        if let Some(at) = rec.superseded_at
            && at + std_to_chrono(self.config.token_grace) <= now
        {
            return Err(invalid());
        }
        if rec.expires_at <= now {
            return Err(WxErr::new(42001, "access_token expired"));
        }
        Ok(rec.appid.clone())
    }

    fn check_secret(&mut self, appid: &str, secret: &str) -> Result<(), WxErr> {
        let account = self.account(appid)?;
        if account.secret != secret {
            return Err(WxErr::new(40125, "invalid appsecret"));
        }
        Ok(())
    }

    fn issue(&mut self, appid: &str, previous: Option<String>, now: DateTime<Utc>) -> String {
        if let Some(prev) = previous.and_then(|p| self.tokens.get_mut(&p))
            && prev.superseded_at.is_none()
        {
            prev.superseded_at = Some(now);
        }
        let token = format!(
            "SIM_{}_{}_{}",
            appid,
            self.next_id(),
            uuid::Uuid::new_v4().simple()
        );
        self.tokens.insert(
            token.clone(),
            TokenRec {
                appid: appid.to_owned(),
                expires_at: now + std_to_chrono(self.config.token_ttl),
                superseded_at: None,
                revoked: false,
            },
        );
        token
    }

    fn token_answer(&self, token: &str, now: DateTime<Utc>) -> Value {
        let expires_in = self
            .tokens
            .get(token)
            .map_or(0, |t| (t.expires_at - now).num_seconds());
        json!({"access_token": token, "expires_in": expires_in})
    }
}

fn token(world: &mut World, req: &Req<'_>) -> Result<Value, WxErr> {
    if req.query.get("grant_type").map(String::as_str) != Some("client_credential") {
        return Err(WxErr::new(40002, "invalid grant_type"));
    }
    let appid = req
        .query
        .get("appid")
        .map(String::as_str)
        .unwrap_or_default();
    let secret = req
        .query
        .get("secret")
        .map(String::as_str)
        .unwrap_or_default();
    world.check_secret(appid, secret)?;
    // Every /token fetch issues a new token and starts the previous one's grace.
    let previous = world.account(appid)?.classic_token.take();
    let token = world.issue(appid, previous, req.now);
    world.account(appid)?.classic_token = Some(token.clone());
    Ok(world.token_answer(&token, req.now))
}

fn stable_token(world: &mut World, req: &Req<'_>) -> Result<Value, WxErr> {
    if str_field(&req.body, "grant_type") != Some("client_credential") {
        return Err(WxErr::new(40002, "invalid grant_type"));
    }
    let appid = str_field(&req.body, "appid").unwrap_or_default();
    let secret = str_field(&req.body, "secret").unwrap_or_default();
    world.check_secret(appid, secret)?;
    let force = req
        .body
        .get("force_refresh")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let now = req.now;
    let current = world.account(appid)?.stable_token.clone();
    if force {
        let interval = std_to_chrono(world.config.force_refresh_interval);
        let account = world.account(appid)?;
        account
            .force_refreshes
            .retain(|t| now - *t < ChronoDuration::days(1));
        if account.force_refreshes.len() >= 20 {
            return Err(WxErr::new(45009, "reach max api daily quota limit"));
        }
        if account
            .force_refreshes
            .last()
            .is_some_and(|t| now - *t < interval)
        {
            return Err(WxErr::new(
                45011,
                "api minute-quota reach limit, force_refresh at most once per 30s",
            ));
        }
        account.force_refreshes.push(now);
        // "强制刷新模式，会导致上次获取的 access_token 失效": the previous stable token
        // dies at once, with none of /token's grace.
        if let Some(previous) = current.as_ref().and_then(|t| world.tokens.get_mut(t)) {
            previous.revoked = true;
        }
    } else if let Some(token) = &current {
        let renew = std_to_chrono(world.config.stable_renew_before);
        let live = world.authorize(Some(token), now).is_ok();
        let far = world
            .tokens
            .get(token)
            .is_some_and(|t| t.expires_at - now > renew);
        if live && far {
            return Ok(world.token_answer(token, now));
        }
    }
    let token = world.issue(appid, current, now);
    world.account(appid)?.stable_token = Some(token.clone());
    Ok(world.token_answer(&token, now))
}

// ---------------------------------------------------------------- messages

fn custom_send(world: &mut World, req: &Req<'_>) -> Result<Value, WxErr> {
    let window = world.config.cs_window;
    let cap = world.config.cs_window_cap;
    let account = world.account(&req.appid)?;
    let touser = required(&req.body, "touser")?;
    let msgtype = required(&req.body, "msgtype")?;
    validate_custom_content(&req.body, msgtype)?;
    let follower = account
        .follower(touser)
        .ok_or_else(|| WxErr::new(40003, "invalid openid"))?;
    if !follower.subscribed {
        return Err(WxErr::new(
            45015,
            "response out of time limit or subscription is canceled",
        ));
    }
    let slot: &mut Window = account
        .windows
        .get_mut(touser)
        .filter(|w| req.now - w.opened_at < std_to_chrono(window))
        .ok_or_else(|| {
            WxErr::new(
                45015,
                "response out of time limit or subscription is canceled",
            )
        })?;
    if slot.sent >= cap {
        return Err(WxErr::new(45047, "out of response count limit"));
    }
    slot.sent += 1;
    Ok(ok())
}

fn validate_custom_content(body: &Value, msgtype: &str) -> Result<(), WxErr> {
    let part = body
        .get(msgtype)
        .ok_or_else(|| WxErr::new(47001, format!("data format error: missing {msgtype}")))?;
    match msgtype {
        "text" => {
            required(part, "content").map_err(|_| WxErr::new(44004, "empty content"))?;
        }
        "image" | "voice" | "mpnews" => {
            required(part, "media_id").map_err(|_| WxErr::new(40007, "invalid media_id"))?;
        }
        "news" => {
            let articles = part.get("articles").and_then(Value::as_array);
            match articles.map(Vec::len) {
                Some(1) => {}
                Some(0) | None => return Err(WxErr::new(44003, "empty news data")),
                Some(_) => return Err(WxErr::new(45008, "article size out of limit")),
            }
        }
        "miniprogrampage" => {
            for field in ["title", "appid", "pagepath", "thumb_media_id"] {
                required(part, field)?;
            }
        }
        _ => return Err(WxErr::new(40008, "invalid message type")),
    }
    Ok(())
}

fn template_send(world: &mut World, req: &Req<'_>) -> Result<Value, WxErr> {
    let id = world.next_id();
    let account = world.account(&req.appid)?;
    if account.kind != AccountKind::Service {
        return Err(WxErr::new(48001, "api unauthorized"));
    }
    let touser = required(&req.body, "touser")?;
    if str_field(&req.body, "template_id").is_none_or(str::is_empty) {
        return Err(WxErr::new(40037, "invalid template_id"));
    }
    if !req.body.get("data").is_some_and(Value::is_object) {
        return Err(WxErr::new(47001, "data format error: data"));
    }
    match account.follower(touser) {
        None => Err(WxErr::new(40003, "invalid openid")),
        Some(f) if !f.subscribed => Err(WxErr::new(43004, "require subscribe")),
        Some(_) => Ok(ok_with(json!({"msgid": 3_000_000_000u64 + id}))),
    }
}

fn mass_content(account: &Account, body: &Value) -> Result<bool, WxErr> {
    let msgtype = required(body, "msgtype")?;
    let part = body
        .get(msgtype)
        .or_else(|| (msgtype == "image").then(|| body.get("images")).flatten())
        .ok_or_else(|| WxErr::new(47001, format!("data format error: missing {msgtype}")))?;
    match msgtype {
        "mpnews" => {
            let media_id =
                required(part, "media_id").map_err(|_| WxErr::new(40007, "invalid media_id"))?;
            if !account.drafts.contains_key(media_id) {
                return Err(WxErr::new(40007, "invalid media_id"));
            }
            Ok(true)
        }
        "text" => {
            required(part, "content").map_err(|_| WxErr::new(44004, "empty content"))?;
            Ok(false)
        }
        "image" => {
            if part
                .get("media_ids")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty)
            {
                return Err(WxErr::new(40007, "invalid media_id"));
            }
            Ok(false)
        }
        "voice" => {
            required(part, "media_id").map_err(|_| WxErr::new(40007, "invalid media_id"))?;
            Ok(false)
        }
        _ => Err(WxErr::new(40008, "invalid message type")),
    }
}

fn mass_sendall(world: &mut World, req: &Req<'_>) -> Result<Value, WxErr> {
    let id = world.next_id();
    let now = req.now;
    let account = world.account(&req.appid)?;
    let filter = req
        .body
        .get("filter")
        .ok_or_else(|| WxErr::new(47001, "data format error: missing filter"))?;
    let to_all = filter
        .get("is_to_all")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if !to_all {
        let tag = filter.get("tag_id").and_then(Value::as_u64);
        if !tag.is_some_and(|t| account.tags.contains_key(&t)) {
            return Err(WxErr::new(45159, "invalid tag id"));
        }
    }
    let is_article = mass_content(account, &req.body)?;
    if let Some(client_id) = str_field(&req.body, "clientmsgid") {
        // WeChat remembers a clientmsgid for 24 hours, and refuses any repeat within
        // a minute of the send as too fast (the send is not carried out again).
        account
            .mass_client_ids
            .retain(|_, taken| now - taken.taken_at < ChronoDuration::hours(24));
        if let Some(taken) = account.mass_client_ids.get(client_id) {
            if now - taken.taken_at < ChronoDuration::seconds(60) {
                return Err(WxErr::new(
                    45066,
                    "clientmsgid retry too fast, retry after 1 minute",
                ));
            }
            // WeChat's answer names the send it took, as a first answer would.
            return Err(WxErr {
                msg_id: Some(taken.msg_id),
                ..WxErr::new(45065, "clientmsgid exist")
            });
        }
    }
    let used = mass_sends_in_period(account.kind, &account.mass_sends, now);
    let quota = match account.kind {
        AccountKind::Subscription => 1,
        AccountKind::Service => 4,
    };
    if used >= quota {
        return Err(WxErr::new(45028, "has no masssend quota"));
    }
    account.mass_sends.push(now);
    let msg_id = 1_000_000_000u64 + id;
    // Only a send WeChat took ends as `end_next_mass_send_with` said.
    let end = world
        .next_mass_ends
        .pop_front()
        .unwrap_or_else(MassJobEnd::sent);
    let account = world.account(&req.appid)?;
    account.mass_jobs.insert(msg_id, end);
    if let Some(client_id) = str_field(&req.body, "clientmsgid") {
        account.mass_client_ids.insert(
            client_id.to_owned(),
            ClientMsg {
                taken_at: now,
                msg_id,
            },
        );
    }
    let mut answer = json!({"msg_id": msg_id});
    if is_article {
        answer["msg_data_id"] = json!(2_247_000_000u64 + id);
    }
    Ok(ok_with(answer))
}

fn mass_preview(world: &mut World, req: &Req<'_>) -> Result<Value, WxErr> {
    let id = world.next_id();
    let now = req.now;
    let account = world.account(&req.appid)?;
    let touser = required(&req.body, "touser")?;
    mass_content(account, &req.body)?;
    if !account.follower(touser).is_some_and(|f| f.subscribed) {
        return Err(WxErr::new(40003, "invalid openid"));
    }
    account
        .previews
        .retain(|t| now - *t < ChronoDuration::days(1));
    if account.previews.len() >= 100 {
        return Err(WxErr::new(45009, "reach max api daily quota limit"));
    }
    account.previews.push(now);
    Ok(json!({"errcode": 0, "errmsg": "preview success", "msg_id": 1_000_000_000u64 + id}))
}

// ---------------------------------------------------------------- drafts and publishing

fn draft_add(world: &mut World, req: &Req<'_>) -> Result<Value, WxErr> {
    let id = world.next_id();
    let account = world.account(&req.appid)?;
    let articles = req
        .body
        .get("articles")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| WxErr::new(44003, "empty news data"))?;
    if articles.len() > 8 {
        return Err(WxErr::new(45008, "article size out of limit"));
    }
    let mut stored = Vec::new();
    for (idx, article) in articles.iter().enumerate() {
        required(article, "title")?;
        required(article, "content")?;
        required(article, "thumb_media_id").map_err(|_| WxErr::new(40007, "invalid media_id"))?;
        let mut article = article.clone();
        article["url"] = json!(format!(
            "https://mp.weixin.qq.com/s?__biz=sim&mid={id}&idx={}",
            idx + 1
        ));
        stored.push(article);
    }
    let media_id = format!("DRAFT_{id}");
    account
        .drafts
        .insert(media_id.clone(), Value::Array(stored));
    Ok(json!({"media_id": media_id}))
}

fn draft_get(world: &mut World, req: &Req<'_>) -> Result<Value, WxErr> {
    let account = world.account(&req.appid)?;
    let media_id = required(&req.body, "media_id")?;
    let articles = account
        .drafts
        .get(media_id)
        .ok_or_else(|| WxErr::new(40007, "invalid media_id"))?;
    Ok(json!({"news_item": articles}))
}

fn draft_delete(world: &mut World, req: &Req<'_>) -> Result<Value, WxErr> {
    let account = world.account(&req.appid)?;
    let media_id = required(&req.body, "media_id")?;
    account
        .drafts
        .remove(media_id)
        .ok_or_else(|| WxErr::new(40007, "invalid media_id"))?;
    Ok(ok())
}

/// `material/del_material`: a permanent image `material/add_material` answered
/// this account (`MATERIAL_{n}`) and not deleted since; another account's, or one
/// deleted already, is 40007, as WeChat answers it.
fn del_material(world: &mut World, req: &Req<'_>) -> Result<Value, WxErr> {
    world.account(&req.appid)?;
    let media_id = required(&req.body, "media_id")?;
    if world.materials.get(media_id) != Some(&req.appid) {
        return Err(WxErr::new(40007, "invalid media_id"));
    }
    world.materials.remove(media_id);
    Ok(ok())
}

fn publish_submit(world: &mut World, req: &Req<'_>) -> Result<Value, WxErr> {
    let id = world.next_id();
    let account = world.account(&req.appid)?;
    let media_id = required(&req.body, "media_id")?;
    let articles = account
        .drafts
        .get(media_id)
        .and_then(Value::as_array)
        .map(Vec::len)
        .ok_or_else(|| WxErr::new(40007, "invalid media_id"))?;
    // Only a job WeChat took ends as `end_next_publish_with` said: a refused submit
    // leaves the outcome for the next one.
    let outcome = world.next_publish_outcomes.pop_front().unwrap_or(0);
    let account = world.account(&req.appid)?;
    let publish_id = format!("{}", 2_000_000_000u64 + id);
    account.publishes.insert(
        publish_id.clone(),
        Publish {
            media_id: media_id.to_owned(),
            articles,
            polls: 0,
            outcome,
        },
    );
    Ok(ok_with(
        json!({"publish_id": publish_id, "msg_data_id": 2_247_000_000u64 + id}),
    ))
}

fn publish_get(world: &mut World, req: &Req<'_>) -> Result<Value, WxErr> {
    let polls_needed = world.config.publish_polls;
    let account = world.account(&req.appid)?;
    let publish_id = required(&req.body, "publish_id")?.to_owned();
    let job = account
        .publishes
        .get_mut(&publish_id)
        .ok_or_else(|| WxErr::new(53500, "publish task not exist"))?;
    job.polls += 1;
    if job.polls <= polls_needed {
        return Ok(json!({"publish_id": publish_id, "publish_status": 1, "fail_idx": []}));
    }
    let (media_id, count) = (job.media_id.clone(), job.articles);
    if job.outcome != 0 {
        let fail_idx: Vec<usize> = (1..=count).collect();
        return Ok(
            json!({"publish_id": publish_id, "publish_status": job.outcome, "fail_idx": fail_idx}),
        );
    }
    // Like WeChat, a published draft leaves the draft box.
    account.drafts.remove(&media_id);
    let items: Vec<Value> = (1..=count)
        .map(|idx| json!({"idx": idx, "article_url": format!("https://mp.weixin.qq.com/s/sim-{publish_id}-{idx}")}))
        .collect();
    Ok(json!({
        "publish_id": publish_id,
        "publish_status": 0,
        "article_id": format!("ARTICLE_{publish_id}"),
        "article_detail": {"count": count, "item": items},
        "fail_idx": [],
    }))
}

// ---------------------------------------------------------------- menu

const LEAF_TYPES: &[&str] = &[
    "click",
    "view",
    "scancode_push",
    "scancode_waitmsg",
    "pic_sysphoto",
    "pic_photo_or_album",
    "pic_weixin",
    "location_select",
    "media_id",
    "view_limited",
    "article_id",
    "article_view_limited",
    "miniprogram",
];

/// Validates one button; `sub` selects the sub-button error codes and limits.
fn validate_button(button: &Value, sub: bool) -> Result<(), WxErr> {
    let (name_max, name_code, type_code) = if sub {
        (60, 40025, 40024)
    } else {
        (16, 40018, 40017)
    };
    let name = str_field(button, "name").unwrap_or_default();
    if name.is_empty() || name.len() > name_max {
        return Err(WxErr::new(name_code, "invalid button name size"));
    }
    let children = button
        .get("sub_button")
        .and_then(Value::as_array)
        .filter(|c| !c.is_empty());
    if let Some(children) = children {
        if sub {
            return Err(WxErr::new(40022, "invalid sub button level"));
        }
        if children.len() > 5 {
            return Err(WxErr::new(40023, "invalid sub button size"));
        }
        return children
            .iter()
            .try_for_each(|child| validate_button(child, true));
    }
    let kind = str_field(button, "type").unwrap_or_default();
    if !LEAF_TYPES.contains(&kind) {
        return Err(WxErr::new(type_code, "invalid button type"));
    }
    let need = |field: &str, max: usize, code: i64| -> Result<(), WxErr> {
        match str_field(button, field) {
            Some(v) if !v.is_empty() && v.len() <= max => Ok(()),
            _ => Err(WxErr::new(code, format!("invalid button {field} size"))),
        }
    };
    let (key_code, url_code) = if sub { (40026, 40027) } else { (40019, 40020) };
    match kind {
        "view" => need("url", 1024, url_code),
        "miniprogram" => {
            need("url", 1024, url_code)?;
            need("appid", 64, type_code)?;
            need("pagepath", 1024, type_code)
        }
        "media_id" | "view_limited" => need("media_id", 128, type_code),
        "article_id" | "article_view_limited" => need("article_id", 128, type_code),
        _ => need("key", 128, key_code),
    }
}

/// The request's `button` list, checked against WeChat's limits.
fn valid_buttons(body: &Value) -> Result<&Vec<Value>, WxErr> {
    let buttons = body
        .get("button")
        .and_then(Value::as_array)
        .ok_or_else(|| WxErr::new(47001, "data format error: missing button"))?;
    if buttons.is_empty() || buttons.len() > 3 {
        return Err(WxErr::new(40016, "invalid button size"));
    }
    buttons.iter().try_for_each(|b| validate_button(b, false))?;
    Ok(buttons)
}

fn menu_create(world: &mut World, req: &Req<'_>) -> Result<Value, WxErr> {
    let account = world.account(&req.appid)?;
    let buttons = valid_buttons(&req.body)?;
    account.menu = Some(json!({"button": buttons}));
    Ok(ok())
}

fn menu_get(world: &mut World, req: &Req<'_>) -> Result<Value, WxErr> {
    let account = world.account(&req.appid)?;
    let menu = account
        .menu
        .clone()
        .ok_or_else(|| WxErr::new(46003, "menu no exist"))?;
    if account.conditional_menus.is_empty() {
        return Ok(json!({"menu": menu}));
    }
    let conditional: Vec<Value> = account
        .conditional_menus
        .iter()
        .map(|(id, m)| {
            let mut m = m.clone();
            m["menuid"] = json!(id);
            m
        })
        .collect();
    Ok(json!({"menu": menu, "conditionalmenu": conditional}))
}

/// WeChat deletes the conditional menus with the default one.
fn menu_delete(world: &mut World, req: &Req<'_>) -> Result<Value, WxErr> {
    let account = world.account(&req.appid)?;
    account.menu = None;
    account.conditional_menus.clear();
    Ok(ok())
}

/// A conditional menu needs a default menu (65303) and a non-empty rule (65304);
/// only the tag rule is modelled, and the tag must exist (the mock answers an
/// unknown one with 45159, "invalid tag id", as for a mass send to a tag).
fn menu_add_conditional(world: &mut World, req: &Req<'_>) -> Result<Value, WxErr> {
    let account = world.account(&req.appid)?;
    if account.menu.is_none() {
        return Err(WxErr::new(65303, "there is no default menu"));
    }
    let buttons = valid_buttons(&req.body)?;
    let rule = req
        .body
        .get("matchrule")
        .and_then(Value::as_object)
        .filter(|r| {
            r.values()
                .any(|v| v.as_str().is_some_and(|s| !s.is_empty()))
        })
        .ok_or_else(|| WxErr::new(65304, "match rule empty"))?;
    if let Some(tag) = rule.get("tag_id").and_then(Value::as_str) {
        let known = tag
            .parse::<u64>()
            .is_ok_and(|t| t <= 2 || account.tags.contains_key(&t));
        if !known {
            return Err(WxErr::new(45159, "invalid tag id"));
        }
    }
    let id = account
        .conditional_menus
        .keys()
        .next_back()
        .map_or(208_379_533, |last| last + 1);
    account
        .conditional_menus
        .insert(id, json!({"button": buttons, "matchrule": rule}));
    Ok(json!({"menuid": id.to_string()}))
}

fn menu_del_conditional(world: &mut World, req: &Req<'_>) -> Result<Value, WxErr> {
    let account = world.account(&req.appid)?;
    let id = required(&req.body, "menuid")?
        .parse::<u64>()
        .ok()
        .filter(|id| account.conditional_menus.contains_key(id))
        .ok_or_else(|| WxErr::new(65301, "no such conditional menu"))?;
    account.conditional_menus.remove(&id);
    Ok(ok())
}

// ---------------------------------------------------------------- users and tags

fn user_json(account: &Account, openid: &str) -> Result<Value, WxErr> {
    let follower = account
        .follower(openid)
        .ok_or_else(|| WxErr::new(40003, "invalid openid"))?;
    if !follower.subscribed {
        return Ok(json!({"subscribe": 0, "openid": openid}));
    }
    Ok(json!({
        "subscribe": 1,
        "openid": openid,
        "language": "zh_CN",
        "subscribe_time": follower.subscribe_time.timestamp(),
        "remark": "",
        "groupid": 0,
        "tagid_list": follower.tags,
        "subscribe_scene": "ADD_SCENE_QR_CODE",
        "qr_scene": 0,
        "qr_scene_str": "",
    }))
}

fn user_info(world: &mut World, req: &Req<'_>) -> Result<Value, WxErr> {
    let account = world.account(&req.appid)?;
    let openid = req
        .query
        .get("openid")
        .ok_or_else(|| WxErr::new(40003, "invalid openid"))?;
    user_json(account, openid)
}

fn user_batchget(world: &mut World, req: &Req<'_>) -> Result<Value, WxErr> {
    let account = world.account(&req.appid)?;
    let list = req
        .body
        .get("user_list")
        .and_then(Value::as_array)
        .ok_or_else(|| WxErr::new(47001, "data format error: missing user_list"))?;
    if list.is_empty() || list.len() > 100 {
        return Err(WxErr::new(40032, "invalid openid list size"));
    }
    let infos = list
        .iter()
        .map(|item| user_json(account, str_field(item, "openid").unwrap_or_default()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(json!({"user_info_list": infos}))
}

fn user_get(world: &mut World, req: &Req<'_>) -> Result<Value, WxErr> {
    let page_size = world.config.follower_page_size;
    let account = world.account(&req.appid)?;
    let subscribed: Vec<&str> = account
        .followers
        .iter()
        .filter(|f| f.subscribed)
        .map(|f| f.openid.as_str())
        .collect();
    let start = match req.query.get("next_openid").filter(|n| !n.is_empty()) {
        None => 0,
        Some(next) => {
            subscribed
                .iter()
                .position(|o| o == next)
                .ok_or_else(|| WxErr::new(40003, "invalid next_openid"))?
                + 1
        }
    };
    let page: Vec<&str> = subscribed
        .iter()
        .skip(start)
        .take(page_size)
        .copied()
        .collect();
    let mut answer = json!({
        "total": subscribed.len(),
        "count": page.len(),
        "next_openid": page.last().copied().unwrap_or_default(),
    });
    if !page.is_empty() {
        answer["data"] = json!({"openid": page});
    }
    Ok(answer)
}

fn tags_create(world: &mut World, req: &Req<'_>) -> Result<Value, WxErr> {
    let account = world.account(&req.appid)?;
    let name = req
        .body
        .pointer("/tag/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if name.is_empty() {
        return Err(WxErr::new(45157, "invalid tag name"));
    }
    if name.len() > 30 {
        return Err(WxErr::new(45158, "tag name too long"));
    }
    if account.tags.values().any(|n| n == name) {
        return Err(WxErr::new(45157, "invalid tag name"));
    }
    if account.tags.len() >= 100 {
        return Err(WxErr::new(45056, "too many tags"));
    }
    // 0, 1 and 2 are WeChat's reserved tags.
    let id = account.tags.keys().next_back().map_or(100, |last| last + 1);
    account.tags.insert(id, name.to_owned());
    Ok(json!({"tag": {"id": id, "name": name}}))
}

fn tags_get(world: &mut World, req: &Req<'_>) -> Result<Value, WxErr> {
    let account = world.account(&req.appid)?;
    let tags: Vec<Value> = account
        .tags
        .iter()
        .map(|(id, name)| {
            let count = account
                .followers
                .iter()
                .filter(|f| f.subscribed && f.tags.contains(id))
                .count();
            json!({"id": id, "name": name, "count": count})
        })
        .collect();
    Ok(json!({"tags": tags}))
}

fn tagging(world: &mut World, req: &Req<'_>, add: bool) -> Result<Value, WxErr> {
    let account = world.account(&req.appid)?;
    let tag = req
        .body
        .get("tagid")
        .and_then(Value::as_u64)
        .filter(|t| account.tags.contains_key(t))
        .ok_or_else(|| WxErr::new(45159, "invalid tag id"))?;
    let openids: Vec<String> = req
        .body
        .get("openid_list")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(|o| o.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if openids.is_empty() || openids.len() > 50 {
        return Err(WxErr::new(40032, "invalid openid list size"));
    }
    // Validate everything before changing anything, as WeChat's batch is all-or-nothing.
    for openid in &openids {
        let follower = account
            .follower(openid)
            .filter(|f| f.subscribed)
            .ok_or_else(|| WxErr::new(40003, "invalid openid"))?;
        if add && !follower.tags.contains(&tag) && follower.tags.len() >= 20 {
            return Err(WxErr::new(45059, "user too many tags"));
        }
    }
    for openid in &openids {
        if let Some(follower) = account.follower_mut(openid) {
            follower.tags.retain(|t| *t != tag);
            if add {
                follower.tags.push(tag);
            }
        }
    }
    Ok(ok())
}

fn tags_tagging(world: &mut World, req: &Req<'_>) -> Result<Value, WxErr> {
    tagging(world, req, true)
}

fn tags_untagging(world: &mut World, req: &Req<'_>) -> Result<Value, WxErr> {
    tagging(world, req, false)
}

// ---------------------------------------------------------------- datacube

/// Parses and checks a datacube range: end before today, begin ≤ end, span ≤ `max_days`.
fn date_range(body: &Value, max_days: i64, now: DateTime<Utc>) -> Result<Vec<NaiveDate>, WxErr> {
    let parse = |field: &str| {
        str_field(body, field)
            .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
            .ok_or_else(|| WxErr::new(61500, "date format error"))
    };
    let (begin, end) = (parse("begin_date")?, parse("end_date")?);
    let span = (end - begin).num_days() + 1;
    if begin > end || end >= now.date_naive() || span > max_days {
        return Err(WxErr::new(61501, "date range error"));
    }
    Ok(begin.iter_days().take(span as usize).collect())
}

/// A deterministic pseudo-random number for (appid, date, salt), so repeated queries agree.
fn sample(appid: &str, date: NaiveDate, salt: u64, max: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in appid
        .bytes()
        .chain(date.to_string().into_bytes())
        .chain(salt.to_le_bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h % max
}

fn date_str(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn counters(appid: &str, date: NaiveDate, salt: u64) -> Value {
    let read_user = 100 + sample(appid, date, salt, 5000);
    json!({
        "int_page_read_user": read_user,
        "int_page_read_count": read_user + sample(appid, date, salt + 1, 800),
        "ori_page_read_user": read_user / 10,
        "ori_page_read_count": read_user / 8,
        "share_user": read_user / 20,
        "share_count": read_user / 15,
        "add_to_fav_user": read_user / 30,
        "add_to_fav_count": read_user / 28,
    })
}

fn merge(mut base: Value, extra: Value) -> Value {
    if let (Value::Object(b), Value::Object(e)) = (&mut base, extra) {
        b.extend(e);
    }
    base
}

fn dc_user_summary(world: &mut World, req: &Req<'_>) -> Result<Value, WxErr> {
    world.account(&req.appid)?;
    let days = date_range(&req.body, 7, req.now)?;
    let list: Vec<Value> = days
        .iter()
        .flat_map(|d| {
            [0, 30].map(|source| {
                json!({
                    "ref_date": date_str(*d),
                    "user_source": source,
                    "new_user": sample(&req.appid, *d, 10 + source, 300),
                    "cancel_user": sample(&req.appid, *d, 20 + source, 40),
                })
            })
        })
        .collect();
    Ok(json!({"list": list}))
}

fn dc_user_cumulate(world: &mut World, req: &Req<'_>) -> Result<Value, WxErr> {
    world.account(&req.appid)?;
    let days = date_range(&req.body, 7, req.now)?;
    let list: Vec<Value> = days
        .iter()
        .map(|d| {
            // Grows by about 50 a day from a fixed origin, so consecutive ranges line up.
            let since = (*d - NaiveDate::from_ymd_opt(2020, 1, 1).unwrap_or_default()).num_days().max(0) as u64;
            json!({"ref_date": date_str(*d), "cumulate_user": 10_000 + since * 50 + sample(&req.appid, *d, 30, 50)})
        })
        .collect();
    Ok(json!({"list": list}))
}

fn article_id(d: NaiveDate, n: u64) -> String {
    format!("{}{:02}_{}", d.format("%Y%m%d"), 1, n)
}

fn dc_article_summary(world: &mut World, req: &Req<'_>) -> Result<Value, WxErr> {
    world.account(&req.appid)?;
    let days = date_range(&req.body, 1, req.now)?;
    let list: Vec<Value> = days
        .iter()
        .flat_map(|d| {
            (1..=2u64).map(move |n| (*d, n))
        })
        .map(|(d, n)| {
            merge(
                json!({"ref_date": date_str(d), "msgid": article_id(d, n), "title": format!("模拟文章 {n}")}),
                counters(&req.appid, d, 40 + n),
            )
        })
        .collect();
    Ok(json!({"list": list}))
}

fn dc_article_total(world: &mut World, req: &Req<'_>) -> Result<Value, WxErr> {
    world.account(&req.appid)?;
    let days = date_range(&req.body, 1, req.now)?;
    let list: Vec<Value> = days
        .iter()
        .flat_map(|d| (1..=2u64).map(move |n| (*d, n)))
        .map(|(d, n)| {
            let details: Vec<Value> = (0..3)
                .map(|offset| {
                    let stat = d + ChronoDuration::days(offset);
                    merge(
                        json!({"stat_date": date_str(stat), "target_user": 10_000 + sample(&req.appid, d, 60, 1000)}),
                        counters(&req.appid, stat, 50 + n),
                    )
                })
                .collect();
            json!({"ref_date": date_str(d), "msgid": article_id(d, n), "title": format!("模拟文章 {n}"), "details": details})
        })
        .collect();
    Ok(json!({"list": list}))
}

fn dc_user_read(world: &mut World, req: &Req<'_>) -> Result<Value, WxErr> {
    world.account(&req.appid)?;
    let days = date_range(&req.body, 3, req.now)?;
    let list: Vec<Value> = days
        .iter()
        .map(|d| {
            merge(
                json!({"ref_date": date_str(*d), "user_source": 99_999_999}),
                counters(&req.appid, *d, 70),
            )
        })
        .collect();
    Ok(json!({"list": list}))
}

/// Mass sends counted against the quota at `now`: a subscription account's of the
/// same day, a service account's of the same month, in Beijing time (+08:00) as
/// WeChat counts them (by UTC, a send at 23:00 Beijing time and one at 01:00 the
/// next morning fell on one day).
fn mass_sends_in_period(kind: AccountKind, sends: &[DateTime<Utc>], now: DateTime<Utc>) -> usize {
    let beijing = chrono::FixedOffset::east_opt(8 * 3600).expect("+08:00 is a valid offset");
    let now = now.with_timezone(&beijing);
    sends
        .iter()
        .map(|t| t.with_timezone(&beijing))
        .filter(|t| match kind {
            AccountKind::Subscription => t.date_naive() == now.date_naive(),
            AccountKind::Service => t.year() == now.year() && t.month() == now.month(),
        })
        .count()
}

#[cfg(test)]
mod quota_tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().expect("a time")
    }

    #[test]
    fn mass_send_quotas_are_counted_by_beijing_day_and_month() {
        // 23:00 on 15 January in Beijing, and 01:00 on the 16th: two days.
        let sends = [at("2026-01-15T23:00:00+08:00")];
        let next_morning = at("2026-01-16T01:00:00+08:00");
        assert_eq!(
            mass_sends_in_period(AccountKind::Subscription, &sends, next_morning),
            0
        );
        let same_evening = at("2026-01-15T23:30:00+08:00");
        assert_eq!(
            mass_sends_in_period(AccountKind::Subscription, &sends, same_evening),
            1
        );
        // 23:00 on 31 January in Beijing, and 01:00 on 1 February: two months.
        let sends = [at("2026-01-31T23:00:00+08:00")];
        let february = at("2026-02-01T01:00:00+08:00");
        assert_eq!(
            mass_sends_in_period(AccountKind::Service, &sends, february),
            0
        );
        // 00:30 on 1 February in Beijing is still 31 January in UTC.
        let sends = [at("2026-02-01T00:30:00+08:00")];
        assert_eq!(
            mass_sends_in_period(AccountKind::Service, &sends, february),
            1
        );
    }
}

#[cfg(test)]
mod publish_tests {
    use super::super::ops_publish::{mass_delete, mass_get};
    use super::super::state::{DEMO_APPID, SimConfig, SimState};
    use super::*;

    fn req<'a>(query: &'a HashMap<String, String>, body: Value) -> Req<'a> {
        Req {
            appid: DEMO_APPID.to_owned(),
            query,
            body,
            now: Utc::now(),
        }
    }

    #[test]
    fn a_refused_submit_leaves_the_queued_outcome_for_the_next_job() {
        let sim = SimState::new(SimConfig {
            publish_polls: 0,
            ..SimConfig::default()
        });
        sim.end_next_publish_with(4);
        let query = HashMap::new();
        let mut world = sim.lock();
        let refused = publish_submit(&mut world, &req(&query, json!({"media_id": "none"})));
        assert!(refused.is_err());
        world
            .account(DEMO_APPID)
            .unwrap()
            .drafts
            .insert("M".into(), json!([{"title": "t"}]));
        let taken = publish_submit(&mut world, &req(&query, json!({"media_id": "M"}))).unwrap();
        let publish_id = taken["publish_id"].as_str().unwrap().to_owned();
        let status = publish_get(&mut world, &req(&query, json!({"publish_id": publish_id})));
        assert_eq!(status.unwrap()["publish_status"], 4);
    }

    #[test]
    fn a_deleted_mass_send_reports_delete() {
        let sim = SimState::new(SimConfig::default());
        let query = HashMap::new();
        let mut world = sim.lock();
        world
            .account(DEMO_APPID)
            .unwrap()
            .mass_jobs
            .insert(1_000_000_001, MassJobEnd::sent());
        mass_delete(
            &mut world,
            &req(&query, json!({"msg_id": 1_000_000_001u64})),
        )
        .unwrap();
        let status = mass_get(&mut world, &req(&query, json!({"msg_id": "1000000001"}))).unwrap();
        assert_eq!(status["msg_status"], "DELETE");
    }

    /// A mass send of a text to every follower, under `clientmsgid` `key`.
    fn text_to_all(key: &str) -> Value {
        json!({
            "filter": {"is_to_all": true},
            "msgtype": "text",
            "text": {"content": "停水通知"},
            "clientmsgid": key,
        })
    }

    fn status_of(world: &mut World, query: &HashMap<String, String>, taken: &Value) -> Value {
        let msg_id = taken["msg_id"].as_u64().expect("a msg_id");
        mass_get(world, &req(query, json!({"msg_id": msg_id.to_string()}))).unwrap()["msg_status"]
            .clone()
    }

    #[test]
    fn the_next_mass_send_taken_ends_as_told_and_a_refused_one_leaves_it_for_the_next() {
        let sim = SimState::new(SimConfig::default());
        sim.end_next_mass_send_with(MassJobEnd::send_fail());
        sim.end_next_mass_send_with(MassJobEnd::refused(20013));
        let query = HashMap::new();
        let mut world = sim.lock();
        // Refused before it was taken: no job, the ending stays queued.
        let refused = mass_sendall(
            &mut world,
            &req(
                &query,
                json!({"filter": {"is_to_all": true}, "msgtype": "text"}),
            ),
        );
        assert!(refused.is_err());
        let failed = mass_sendall(&mut world, &req(&query, text_to_all("a"))).unwrap();
        assert_eq!(status_of(&mut world, &query, &failed), "SEND_FAIL");
        // A repeated clientmsgid is not a send taken either (45066 within the minute).
        let again = mass_sendall(&mut world, &req(&query, text_to_all("a")));
        assert_eq!(again.unwrap_err().code, 45066);
        let review = mass_sendall(&mut world, &req(&query, text_to_all("b"))).unwrap();
        assert_eq!(status_of(&mut world, &query, &review), "SEND_FAIL");
        assert_eq!(
            world.account(DEMO_APPID).unwrap().mass_jobs[&review["msg_id"].as_u64().unwrap()],
            MassJobEnd::refused(20013)
        );
        // Nothing more queued: the next send goes out, as every send did before.
        let sent = mass_sendall(&mut world, &req(&query, text_to_all("c"))).unwrap();
        assert_eq!(status_of(&mut world, &query, &sent), "SEND_SUCCESS");
    }

    #[test]
    fn a_mass_send_still_going_out_reports_sending_and_a_failed_one_cannot_be_deleted() {
        let sim = SimState::new(SimConfig::default());
        sim.end_next_mass_send_with(MassJobEnd::sending());
        sim.end_next_mass_send_with(MassJobEnd::send_fail());
        let query = HashMap::new();
        let mut world = sim.lock();
        let sending = mass_sendall(&mut world, &req(&query, text_to_all("a"))).unwrap();
        assert_eq!(status_of(&mut world, &query, &sending), "SENDING");
        let failed = mass_sendall(&mut world, &req(&query, text_to_all("b"))).unwrap();
        mass_delete(
            &mut world,
            &req(&query, json!({"msg_id": failed["msg_id"]})),
        )
        .unwrap();
        // WeChat deletes only a send that went out.
        assert_eq!(status_of(&mut world, &query, &failed), "SEND_FAIL");
    }
}
