//! The custom menu (`/cgi-bin/menu/{create,get,delete}`) and conditional menus
//! (`/cgi-bin/menu/{addconditional,delconditional}`): a menu shown only to followers
//! matching a rule (here: a user tag). WeChat shows a conditional menu only while a
//! default menu exists (65303 otherwise).
//!
//! WeChat allows at most 3 top-level buttons of at most 16 bytes' name, each with at
//! most 5 sub buttons of at most 60 bytes' name; it rejects anything else with a
//! 400xx code (see [`ErrCode`](super::ErrCode)).

use serde::{Deserialize, Serialize};

use super::{ApiError, Client, Repeat};

/// A custom menu.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Menu {
    /// The top-level buttons.
    pub button: Vec<Button>,
}

/// What a leaf button does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ButtonType {
    /// Sends a CLICK event with `key`.
    Click,
    /// Opens `url`.
    View,
    /// Scans a code and pushes the result.
    ScancodePush,
    /// Scans a code and waits for a reply.
    ScancodeWaitmsg,
    /// Takes a photo.
    PicSysphoto,
    /// Takes a photo or picks one.
    PicPhotoOrAlbum,
    /// Picks a photo from WeChat's album.
    PicWeixin,
    /// Sends a location.
    LocationSelect,
    /// Sends permanent material `media_id`.
    MediaId,
    /// Opens permanent material `media_id` as a page.
    ViewLimited,
    /// Sends published article `article_id`.
    ArticleId,
    /// Opens published article `article_id`.
    ArticleViewLimited,
    /// Opens a mini program (`appid`, `pagepath`; `url` for old clients).
    Miniprogram,
}

/// A menu button: a leaf with a `type`, or a parent with `sub_button`s.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    /// The leaf's action; `None` for a parent.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ButtonType>,
    /// The label.
    pub name: String,
    /// The event key (click and scan/pic/location types).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The page (view and mini-program types).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The material (media_id and view_limited types).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_id: Option<String>,
    /// The published article (article types).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub article_id: Option<String>,
    /// The mini program's appid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appid: Option<String>,
    /// The mini program's page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagepath: Option<String>,
    /// The children of a parent button.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sub_button: Vec<Button>,
}

impl Button {
    /// Builds a click button sending `key`.
    pub fn click(name: impl Into<String>, key: impl Into<String>) -> Self {
        Self {
            kind: Some(ButtonType::Click),
            name: name.into(),
            key: Some(key.into()),
            ..Self::default()
        }
    }

    /// Builds a button opening `url`.
    pub fn view(name: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            kind: Some(ButtonType::View),
            name: name.into(),
            url: Some(url.into()),
            ..Self::default()
        }
    }

    /// Builds a button opening a mini program page (`url` is the fallback for old clients).
    pub fn mini_program(
        name: impl Into<String>,
        url: impl Into<String>,
        appid: impl Into<String>,
        pagepath: impl Into<String>,
    ) -> Self {
        Self {
            kind: Some(ButtonType::Miniprogram),
            name: name.into(),
            url: Some(url.into()),
            appid: Some(appid.into()),
            pagepath: Some(pagepath.into()),
            ..Self::default()
        }
    }

    /// Builds a parent button holding `children`.
    pub fn parent(name: impl Into<String>, children: Vec<Button>) -> Self {
        Self {
            name: name.into(),
            sub_button: children,
            ..Self::default()
        }
    }
}

/// Who sees a conditional menu. WeChat matches the followers holding every field
/// given; only the tag is modelled (the other fields are deprecated or unused here).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchRule {
    /// The user tag (`tags/create`'s id), as a decimal string as WeChat takes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_id: Option<String>,
}

impl MatchRule {
    /// Followers holding tag `tag_id`.
    pub fn tag(tag_id: u64) -> Self {
        Self {
            tag_id: Some(tag_id.to_string()),
        }
    }
}

/// A conditional menu: buttons and the rule choosing who sees them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConditionalMenu {
    /// The top-level buttons.
    pub button: Vec<Button>,
    /// Who sees it.
    pub matchrule: MatchRule,
}

/// A conditional menu as `menu/get` lists it: WeChat's id and its rule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListedConditionalMenu {
    /// The id `menu/addconditional` answered (`menu/delconditional` takes it).
    pub menuid: String,
    /// The top-level buttons.
    pub button: Vec<Button>,
    /// Who sees it.
    pub matchrule: MatchRule,
    /// The rule's other criteria that are set (`sex`, `country`,
    /// `client_platform_type`, `language`, …, by name), which `matchrule` does not
    /// model: a menu made in WeChat's console for some of a tag's followers only.
    pub other_criteria: Vec<String>,
}

/// Everything `menu/get` answers: the default menu and the conditional menus.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Menus {
    /// The default menu.
    pub menu: Menu,
    /// The conditional menus, as WeChat lists them.
    pub conditional: Vec<ListedConditionalMenu>,
}

#[derive(Deserialize)]
struct MenuInfo {
    menu: Menu,
    #[serde(default)]
    conditionalmenu: Vec<ListedRaw>,
}

// WeChat documents strings for the ids but has answered numbers; older answers name
// the tag `group_id`. Read leniently: a conditional menu not recognised as the tag's
// would be left on WeChat.
#[derive(Deserialize)]
struct ListedRaw {
    #[serde(default)]
    menuid: serde_json::Value,
    #[serde(default)]
    button: Vec<Button>,
    #[serde(default)]
    matchrule: RawRule,
}

#[derive(Default, Deserialize)]
struct RawRule {
    #[serde(default)]
    tag_id: serde_json::Value,
    #[serde(default)]
    group_id: serde_json::Value,
    #[serde(flatten)]
    other: serde_json::Map<String, serde_json::Value>,
}

/// A string or number as its decimal text; `None` for null or an empty string.
fn id_text(value: serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) if s.trim().is_empty() => None,
        serde_json::Value::String(s) => Some(s.trim().to_owned()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl From<ListedRaw> for ListedConditionalMenu {
    fn from(raw: ListedRaw) -> Self {
        Self {
            menuid: id_text(raw.menuid).unwrap_or_default(),
            button: raw.button,
            matchrule: MatchRule {
                tag_id: id_text(raw.matchrule.tag_id).or_else(|| id_text(raw.matchrule.group_id)),
            },
            // WeChat lists every field of a rule, those not set as "" (0 for a number:
            // no criterion has 0 as a value; sex is 1-2, client_platform_type 1-3).
            other_criteria: raw
                .matchrule
                .other
                .into_iter()
                .filter(|(_, value)| id_text(value.clone()).is_some_and(|text| text != "0"))
                .map(|(name, _)| name)
                .collect(),
        }
    }
}

#[derive(Deserialize)]
struct Added {
    // WeChat documents a string; accept a number too.
    menuid: serde_json::Value,
}

#[derive(Serialize)]
struct MenuRef<'a> {
    menuid: &'a str,
}

impl Client {
    /// Replaces the account's menu (`POST /cgi-bin/menu/create`).
    pub async fn menu_create(&self, menu: &Menu) -> Result<(), ApiError> {
        // It replaces the whole menu: a repeat sets the same one.
        self.post_ack("/cgi-bin/menu/create", menu, Repeat::Safe)
            .await
    }

    /// Reads the account's menu (`GET /cgi-bin/menu/get`); 46003 when none is set.
    pub async fn menu_get(&self) -> Result<Menu, ApiError> {
        Ok(self.menu_get_all().await?.menu)
    }

    /// Reads the account's menu and its conditional menus (`GET /cgi-bin/menu/get`'s
    /// `menu` and `conditionalmenu`); 46003 when no menu is set (WeChat then holds no
    /// conditional menu either).
    pub async fn menu_get_all(&self) -> Result<Menus, ApiError> {
        let info: MenuInfo = self.get("/cgi-bin/menu/get", &[]).await?;
        Ok(Menus {
            menu: info.menu,
            conditional: info.conditionalmenu.into_iter().map(Into::into).collect(),
        })
    }

    /// Adds a conditional menu (`POST /cgi-bin/menu/addconditional`) and returns its
    /// `menuid`. WeChat refuses it (65303) while the account has no default menu.
    pub async fn menu_add_conditional(&self, menu: &ConditionalMenu) -> Result<String, ApiError> {
        // A repeat would add a second menu for the rule.
        let added: Added = self
            .post_with("/cgi-bin/menu/addconditional", menu, Repeat::Once)
            .await?;
        Ok(match added.menuid {
            serde_json::Value::String(id) => id,
            other => other.to_string(),
        })
    }

    /// Deletes a conditional menu (`POST /cgi-bin/menu/delconditional`); 65301 when
    /// no conditional menu has that id.
    pub async fn menu_del_conditional(&self, menuid: &str) -> Result<(), ApiError> {
        self.post_ack(
            "/cgi-bin/menu/delconditional",
            &MenuRef { menuid },
            Repeat::Safe,
        )
        .await
    }

    /// Deletes the account's menu (`GET /cgi-bin/menu/delete`), its conditional
    /// menus included.
    pub async fn menu_delete(&self) -> Result<(), ApiError> {
        self.get_ack("/cgi-bin/menu/delete", &[]).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(json: &str) -> Vec<ListedConditionalMenu> {
        let info: MenuInfo = serde_json::from_str(json).unwrap();
        info.conditionalmenu.into_iter().map(Into::into).collect()
    }

    #[test]
    fn menu_get_lists_conditional_menus_with_string_or_number_ids() {
        let got = listed(
            r#"{"menu":{"button":[]},"conditionalmenu":[
                {"button":[{"type":"click","name":"a","key":"k"}],
                 "matchrule":{"tag_id":"2","sex":"","client_platform_type":0,"language":"0"},"menuid":208379533},
                {"button":[],"matchrule":{"group_id":7},"menuid":"208379534"},
                {"button":[],"matchrule":{"tag_id":"","client_platform_type":"1"},"menuid":"1"}]}"#,
        );
        assert_eq!(got[0].menuid, "208379533");
        assert_eq!(got[0].matchrule, MatchRule::tag(2));
        assert_eq!(got[0].button, vec![Button::click("a", "k")]);
        assert_eq!(got[1].menuid, "208379534");
        assert_eq!(got[1].matchrule, MatchRule::tag(7), "the older group_id");
        assert_eq!(got[2].matchrule.tag_id, None, "a rule on no tag");
        assert_eq!(
            got[0].other_criteria,
            Vec::<String>::new(),
            "an empty sex, a 0 platform type are unset"
        );
        assert_eq!(got[2].other_criteria, ["client_platform_type"]);
    }

    #[test]
    fn menu_get_without_conditional_menus_lists_none() {
        assert_eq!(listed(r#"{"menu":{"button":[]}}"#), vec![]);
    }
}
