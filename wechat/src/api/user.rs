//! Followers (`/cgi-bin/user/*`) and tags (`/cgi-bin/tags/*`).

use serde::{Deserialize, Serialize};

use super::{ApiError, Client, Repeat};

/// The most openids [`Client::users_info`] takes in one call.
pub const MAX_BATCH_INFO: usize = 100;
/// The most openids [`Client::tag_users`] and [`Client::untag_users`] take in one call.
pub const MAX_BATCH_TAGGING: usize = 50;

/// A user's profile as WeChat still exposes it (no nickname or avatar since 2021).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct UserInfo {
    /// 1 if the user follows the account; 0 otherwise (then only `openid` is set).
    pub subscribe: u8,
    /// The user's openid.
    pub openid: String,
    /// The user's language.
    #[serde(default)]
    pub language: Option<String>,
    /// When the user last followed (Unix seconds).
    #[serde(default)]
    pub subscribe_time: Option<i64>,
    /// The unionid, when the account is bound to an open platform.
    #[serde(default)]
    pub unionid: Option<String>,
    /// The account's remark on the user.
    #[serde(default)]
    pub remark: String,
    /// The user's tags.
    #[serde(default)]
    pub tagid_list: Vec<u64>,
    /// How the user came to follow (`ADD_SCENE_QR_CODE`, …).
    #[serde(default)]
    pub subscribe_scene: Option<String>,
    /// The numeric QR scene, when followed through a parametric QR code.
    #[serde(default)]
    pub qr_scene: Option<u64>,
    /// The string QR scene, when followed through a parametric QR code.
    #[serde(default)]
    pub qr_scene_str: Option<String>,
}

/// One page of the follower list (`GET /cgi-bin/user/get`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FollowerPage {
    /// All followers of the account.
    pub total: u64,
    /// Openids on this page.
    pub count: u64,
    /// The openids, absent on an empty page.
    #[serde(default)]
    pub data: Option<OpenIdList>,
    /// Pass it to get the next page; the page after the last one is empty.
    #[serde(default)]
    pub next_openid: String,
}

impl FollowerPage {
    /// Returns the page's openids.
    pub fn openids(&self) -> &[String] {
        self.data.as_ref().map_or(&[], |d| &d.openid)
    }
}

/// A list of openids.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OpenIdList {
    /// The openids.
    pub openid: Vec<String>,
}

/// A tag just created.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Tag {
    /// The tag id (0–2 are reserved by WeChat).
    pub id: u64,
    /// The name.
    pub name: String,
}

/// A tag with its follower count, from [`Client::tags`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TagInfo {
    /// The tag id.
    pub id: u64,
    /// The name.
    pub name: String,
    /// How many followers carry it.
    #[serde(default)]
    pub count: u64,
}

#[derive(Serialize)]
struct BatchGet<'a> {
    user_list: Vec<BatchGetItem<'a>>,
}

#[derive(Serialize)]
struct BatchGetItem<'a> {
    openid: &'a str,
    lang: &'a str,
}

#[derive(Deserialize)]
struct UserInfoList {
    user_info_list: Vec<UserInfo>,
}

#[derive(Serialize)]
struct NewTag<'a> {
    tag: NewTagName<'a>,
}

#[derive(Serialize)]
struct NewTagName<'a> {
    name: &'a str,
}

#[derive(Deserialize)]
struct CreatedTag {
    tag: Tag,
}

#[derive(Deserialize)]
struct TagList {
    tags: Vec<TagInfo>,
}

#[derive(Serialize)]
struct Tagging<'a> {
    openid_list: &'a [String],
    tagid: u64,
}

impl Client {
    /// Reads one user's profile (`GET /cgi-bin/user/info`).
    pub async fn user_info(&self, openid: &str) -> Result<UserInfo, ApiError> {
        self.get(
            "/cgi-bin/user/info",
            &[("openid", openid), ("lang", "zh_CN")],
        )
        .await
    }

    /// Reads up to [`MAX_BATCH_INFO`] profiles in one call (`POST /cgi-bin/user/info/batchget`).
    pub async fn users_info(&self, openids: &[String]) -> Result<Vec<UserInfo>, ApiError> {
        let body = BatchGet {
            user_list: openids
                .iter()
                .map(|openid| BatchGetItem {
                    openid,
                    lang: "zh_CN",
                })
                .collect(),
        };
        let list: UserInfoList = self.post("/cgi-bin/user/info/batchget", &body).await?;
        Ok(list.user_info_list)
    }

    /// Reads one page of followers after `next_openid` (`GET /cgi-bin/user/get`); WeChat
    /// pages by 10,000.
    pub async fn followers(&self, next_openid: Option<&str>) -> Result<FollowerPage, ApiError> {
        let query: &[(&str, &str)] = match next_openid {
            Some(next) if !next.is_empty() => &[("next_openid", next)],
            _ => &[],
        };
        self.get("/cgi-bin/user/get", query).await
    }

    /// Reads every follower's openid by walking [`Client::followers`] pages.
    pub async fn all_followers(&self) -> Result<Vec<String>, ApiError> {
        let mut all = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let page = self.followers(next.as_deref()).await?;
            if page.count == 0 || page.openids().is_empty() {
                return Ok(all);
            }
            all.extend_from_slice(page.openids());
            // A next_openid that does not move would loop forever; stop instead.
            if page.next_openid.is_empty() || next.as_deref() == Some(page.next_openid.as_str()) {
                return Ok(all);
            }
            next = Some(page.next_openid);
        }
    }

    /// Creates a tag (`POST /cgi-bin/tags/create`).
    pub async fn tag_create(&self, name: &str) -> Result<Tag, ApiError> {
        // A repeat of a create WeChat carried out is refused as a duplicate name
        // (45157) while the tag exists: not retried.
        let created: CreatedTag = self
            .post_with(
                "/cgi-bin/tags/create",
                &NewTag {
                    tag: NewTagName { name },
                },
                Repeat::Once,
            )
            .await?;
        Ok(created.tag)
    }

    /// Lists the account's tags (`GET /cgi-bin/tags/get`).
    pub async fn tags(&self) -> Result<Vec<TagInfo>, ApiError> {
        let list: TagList = self.get("/cgi-bin/tags/get", &[]).await?;
        Ok(list.tags)
    }

    /// Tags up to [`MAX_BATCH_TAGGING`] followers (`POST /cgi-bin/tags/members/batchtagging`).
    pub async fn tag_users(&self, tag_id: u64, openids: &[String]) -> Result<(), ApiError> {
        let body = Tagging {
            openid_list: openids,
            tagid: tag_id,
        };
        self.post_ack("/cgi-bin/tags/members/batchtagging", &body, Repeat::Safe)
            .await
    }

    /// Untags up to [`MAX_BATCH_TAGGING`] followers (`POST /cgi-bin/tags/members/batchuntagging`).
    pub async fn untag_users(&self, tag_id: u64, openids: &[String]) -> Result<(), ApiError> {
        let body = Tagging {
            openid_list: openids,
            tagid: tag_id,
        };
        self.post_ack("/cgi-bin/tags/members/batchuntagging", &body, Repeat::Safe)
            .await
    }
}
