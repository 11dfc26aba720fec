//! `govwx menu …`: an account's custom menus (content-svc's `MenuService`). A menu
//! file is WeChat's menu JSON plus the `category` and `service_hall` types.

use std::path::Path;

use proto::content::v1::{
    ListMenusRequest, Menu as MenuPb, MenuButton, MenuButtonType, MenuRef, MenuState,
    PublishMenuRequest, SaveMenuRequest, ValidateMenuRequest,
};
use serde_json::{Value, json};

use super::articles::acting;
use crate::cli::Menu;
use crate::client::Target;
use crate::error::Error;
use crate::output::{Out, fields, or_dash, table};

pub async fn run(command: Menu, target: &Target, out: &Out) -> Result<(), Error> {
    let mut client = target.menu().await?;
    let status = |s| target.status(s);
    match command {
        Menu::Show {
            account,
            tag,
            versions,
        } => {
            let reference = MenuRef {
                account: account.account.clone(),
                tag_id: tag,
            };
            if versions {
                let versions = client
                    .list_menu_versions(reference)
                    .await
                    .map_err(status)?
                    .into_inner()
                    .versions;
                if out.json {
                    let versions: Vec<_> = versions
                        .iter()
                        .map(|v| {
                            json!({
                                "version": v.version, "saved_by": v.saved_by,
                                "saved_at": out.json_time(v.saved_at.as_ref()),
                                "note": v.note, "published": v.published,
                                "button": buttons_json(&v.buttons),
                            })
                        })
                        .collect();
                    return out.document(&json!({ "versions": versions }));
                }
                if versions.is_empty() {
                    eprintln!("no saved versions");
                    return Ok(());
                }
                let rows = versions.iter().map(|v| {
                    vec![
                        v.version.to_string(),
                        out.time(v.saved_at.as_ref()),
                        v.saved_by.clone(),
                        if v.published { "yes" } else { "" }.to_owned(),
                        or_dash(&v.note),
                    ]
                });
                return out.line(&table(
                    &["version", "saved", "by", "published", "note"],
                    rows,
                ));
            }
            let menu = client
                .get_menu(reference)
                .await
                .map_err(status)?
                .into_inner();
            if out.json {
                return out.document(&menu_json(out, &menu));
            }
            let others = client
                .list_menus(ListMenusRequest {
                    account: account.account,
                })
                .await
                .map_err(status)?
                .into_inner()
                .menus
                .into_iter()
                .filter(|m| m.tag_id != tag)
                .map(|m| m.tag_id.to_string())
                .collect::<Vec<_>>();
            out.line(&fields(&[
                ("account", menu.account.clone()),
                ("menu", which(menu.tag_id)),
                ("state", state_name(menu.state).to_owned()),
                ("version", menu.latest_version.to_string()),
                ("published", menu.published_version.to_string()),
                ("updated", out.time(menu.updated_at.as_ref())),
                ("error", or_dash(&menu.last_error)),
                ("other menus (tags)", or_dash(&others.join(", "))),
            ]))?;
            if menu.buttons.is_empty() {
                return Ok(());
            }
            out.line("")?;
            out.line(&table(
                &["button", "type", "target"],
                button_rows(&menu.buttons),
            ))
        }
        Menu::Validate { file, account } => {
            let buttons = read_menu(&file)?;
            let checked = client
                .validate_menu(ValidateMenuRequest {
                    account: account.account,
                    buttons,
                })
                .await
                .map_err(status)?
                .into_inner();
            if out.json {
                let wechat: Value =
                    serde_json::from_str(&checked.wechat_json).unwrap_or(Value::Null);
                return out.document(&json!({ "valid": true, "wechat": wechat }));
            }
            eprintln!(
                "{}: a valid menu; menu/create would receive:",
                file.display()
            );
            out.line(&checked.wechat_json)
        }
        Menu::Publish {
            file,
            account,
            tag,
            version,
            note,
            actor,
        } => {
            let version = match file {
                Some(file) => {
                    let buttons = read_menu(&file)?;
                    let saved = client
                        .save_menu(acting(
                            SaveMenuRequest {
                                account: account.account.clone(),
                                tag_id: tag,
                                buttons,
                                note,
                            },
                            &actor,
                        )?)
                        .await
                        .map_err(status)?
                        .into_inner();
                    eprintln!("saved as version {}", saved.version);
                    saved.version
                }
                None => version.unwrap_or(0),
            };
            let menu = client
                .publish_menu(acting(
                    PublishMenuRequest {
                        account: account.account,
                        tag_id: tag,
                        version,
                    },
                    &actor,
                )?)
                .await
                .map_err(status)?
                .into_inner();
            if out.json {
                return out.document(&menu_json(out, &menu));
            }
            if menu.state == MenuState::Failed as i32 {
                return Err(Error::Input(format!(
                    "WeChat refused the menu: {}",
                    or_dash(&menu.last_error)
                )));
            }
            out.line(&format!(
                "{} of {}: version {} {}",
                which(menu.tag_id),
                menu.account,
                menu.published_version,
                state_name(menu.state)
            ))
        }
    }
}

fn which(tag: u64) -> String {
    if tag == 0 {
        "default".into()
    } else {
        format!("conditional (tag {tag})")
    }
}

fn state_name(state: i32) -> &'static str {
    match MenuState::try_from(state) {
        Ok(MenuState::Draft) => "draft",
        Ok(MenuState::Publishing) => "publishing",
        Ok(MenuState::Published) => "published",
        Ok(MenuState::Failed) => "failed",
        _ => "none",
    }
}

/// The file's names of the button types, as WeChat spells them.
const TYPES: [(&str, MenuButtonType); 14] = [
    ("click", MenuButtonType::Click),
    ("view", MenuButtonType::View),
    ("miniprogram", MenuButtonType::Miniprogram),
    ("scancode_push", MenuButtonType::ScancodePush),
    ("scancode_waitmsg", MenuButtonType::ScancodeWaitmsg),
    ("pic_sysphoto", MenuButtonType::PicSysphoto),
    ("pic_photo_or_album", MenuButtonType::PicPhotoOrAlbum),
    ("pic_weixin", MenuButtonType::PicWeixin),
    ("location_select", MenuButtonType::LocationSelect),
    ("media_id", MenuButtonType::MediaId),
    ("article_id", MenuButtonType::ArticleId),
    ("article_view_limited", MenuButtonType::ArticleViewLimited),
    ("category", MenuButtonType::Category),
    ("service_hall", MenuButtonType::ServiceHall),
];

fn type_name(kind: i32) -> &'static str {
    TYPES
        .iter()
        .find(|(_, t)| *t as i32 == kind)
        .map_or("", |(name, _)| name)
}

/// Reads a menu file; a shape error names the button (`button 2.3`) and field.
fn read_menu(file: &Path) -> Result<Vec<MenuButton>, Error> {
    let text = super::lexicon::read_text(file)?;
    let bad = |what: String| Error::Input(format!("{}: {what}", file.display()));
    let doc: Value = serde_json::from_str(&text).map_err(|e| bad(format!("not JSON ({e})")))?;
    let top = doc
        .get("button")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("needs a \"button\" array (WeChat's menu JSON)".into()))?;
    top.iter()
        .enumerate()
        .map(|(i, b)| parse_button(b, &format!("button {}", i + 1), true).map_err(&bad))
        .collect()
}

fn parse_button(value: &Value, at: &str, top: bool) -> Result<MenuButton, String> {
    let object = value
        .as_object()
        .ok_or_else(|| format!("{at} is not an object"))?;
    let text = |field: &str| -> Result<String, String> {
        match object.get(field) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(format!("{at}: {field} must be a string")),
        }
    };
    let kind = match text("type")?.as_str() {
        "" => MenuButtonType::Unspecified,
        name => {
            TYPES
                .iter()
                .find(|(n, _)| *n == name)
                .ok_or_else(|| {
                    format!(
                        "{at}: unknown type {name:?} (one of {})",
                        TYPES.map(|(n, _)| n).join(", ")
                    )
                })?
                .1
        }
    };
    let sub_buttons = match object.get("sub_button") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(subs)) if top => subs
            .iter()
            .enumerate()
            .map(|(j, b)| parse_button(b, &format!("{at}.{}", j + 1), false))
            .collect::<Result<_, _>>()?,
        Some(Value::Array(_)) => return Err(format!("{at}: a sub-button has no sub_button")),
        Some(_) => return Err(format!("{at}: sub_button must be an array")),
    };
    Ok(MenuButton {
        name: text("name")?,
        r#type: kind as i32,
        key: text("key")?,
        url: text("url")?,
        appid: text("appid")?,
        pagepath: text("pagepath")?,
        media_id: text("media_id")?,
        article_id: text("article_id")?,
        category: text("category")?,
        sub_buttons,
    })
}

/// Buttons as WeChat's JSON (empty fields left out).
fn buttons_json(buttons: &[MenuButton]) -> Value {
    Value::Array(
        buttons
            .iter()
            .map(|b| {
                let mut object = serde_json::Map::new();
                object.insert("name".into(), b.name.clone().into());
                if b.r#type != MenuButtonType::Unspecified as i32 {
                    object.insert("type".into(), type_name(b.r#type).into());
                }
                for (field, value) in [
                    ("key", &b.key),
                    ("url", &b.url),
                    ("appid", &b.appid),
                    ("pagepath", &b.pagepath),
                    ("media_id", &b.media_id),
                    ("article_id", &b.article_id),
                    ("category", &b.category),
                ] {
                    if !value.is_empty() {
                        object.insert(field.into(), value.clone().into());
                    }
                }
                if !b.sub_buttons.is_empty() {
                    object.insert("sub_button".into(), buttons_json(&b.sub_buttons));
                }
                Value::Object(object)
            })
            .collect(),
    )
}

fn menu_json(out: &Out, menu: &MenuPb) -> Value {
    json!({
        "account": menu.account,
        "tag_id": menu.tag_id,
        "state": state_name(menu.state),
        "latest_version": menu.latest_version,
        "published_version": menu.published_version,
        "last_error": menu.last_error,
        "wechat_menuid": menu.wechat_menuid,
        "updated_at": out.json_time(menu.updated_at.as_ref()),
        "button": buttons_json(&menu.buttons),
    })
}

/// One row per button, sub-buttons indented under theirs.
fn button_rows(buttons: &[MenuButton]) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for b in buttons {
        rows.push(button_row(b, ""));
        for s in &b.sub_buttons {
            rows.push(button_row(s, "  └ "));
        }
    }
    rows
}

fn button_row(b: &MenuButton, indent: &str) -> Vec<String> {
    let target = [
        &b.key,
        &b.url,
        &b.category,
        &b.media_id,
        &b.article_id,
        &b.pagepath,
    ]
    .into_iter()
    .find(|v| !v.is_empty())
    .cloned()
    .unwrap_or_default();
    let kind = match type_name(b.r#type) {
        "" if !b.sub_buttons.is_empty() => "(sub-buttons)",
        name => name,
    };
    vec![
        format!("{indent}{}", b.name),
        kind.to_owned(),
        or_dash(&target),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_menu_file_reads_back_as_the_same_json() {
        let doc = json!({"button": [
            {"name": "办事", "sub_button": [
                {"name": "社保", "type": "category", "category": "social_security"},
                {"name": "办事大厅", "type": "service_hall"}
            ]},
            {"name": "官网", "type": "view", "url": "https://example.gov.cn/"}
        ]});
        let buttons: Vec<MenuButton> = doc["button"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, b)| parse_button(b, &format!("button {}", i + 1), true).unwrap())
            .collect();
        assert_eq!(
            buttons[0].sub_buttons[0].r#type,
            MenuButtonType::Category as i32
        );
        assert_eq!(buttons_json(&buttons), doc["button"]);
    }

    #[test]
    fn a_bad_button_is_named() {
        let err =
            parse_button(&json!({"name": "x", "type": "clik"}), "button 2", true).unwrap_err();
        assert!(err.starts_with("button 2: unknown type \"clik\""), "{err}");
        let err = parse_button(
            &json!({"name": "a", "sub_button": [{"name": "b", "sub_button": []}]}),
            "button 1",
            true,
        )
        .unwrap_err();
        assert_eq!(err, "button 1.1: a sub-button has no sub_button");
    }
}
