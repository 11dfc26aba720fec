//! A custom menu as data and WeChat's limits on it (`menu/create`), checked before
//! any call so a refusal names the rule broken; the buttons built from the directory
//! (a category, the service hall) and how they become WeChat's buttons.
//!
//! The types are stored as JSON (`menu_versions.buttons`), so their serde shape is
//! the stored format: change it only with a migration of the stored versions.

use serde::{Deserialize, Serialize};

/// The prefix of a CLICK key naming a directory category: `category:social_security`.
/// interaction-svc answers such a click with the category's services, so the format
/// is a contract between the two services.
pub const CATEGORY_KEY_PREFIX: &str = "category:";

/// The CLICK key of a directory category.
pub fn category_key(code: &str) -> String {
    format!("{CATEGORY_KEY_PREFIX}{code}")
}

/// What a button does (WeChat's `type`, with the field each kind needs), or a
/// target in the directory that becomes one when the menu is published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// A directory category: published as a CLICK with key `category:{code}`.
    Category {
        code: String,
    },
    /// The account's service hall: published as a VIEW of its page.
    ServiceHall,
    Click {
        key: String,
    },
    View {
        url: String,
    },
    Miniprogram {
        url: String,
        appid: String,
        pagepath: String,
    },
    ScancodePush {
        key: String,
    },
    ScancodeWaitmsg {
        key: String,
    },
    PicSysphoto {
        key: String,
    },
    PicPhotoOrAlbum {
        key: String,
    },
    PicWeixin {
        key: String,
    },
    LocationSelect {
        key: String,
    },
    MediaId {
        media_id: String,
    },
    ArticleId {
        article_id: String,
    },
    ArticleViewLimited {
        article_id: String,
    },
}

/// A top-level button: an action, or a list of 1 to 5 sub-buttons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    pub name: String,
    #[serde(default)]
    pub action: Option<Action>,
    #[serde(default)]
    pub sub_buttons: Vec<SubButton>,
}

/// A button inside a top-level one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubButton {
    pub name: String,
    pub action: Action,
}

/// A rule of WeChat's broken by a menu; the message names it and where.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MenuError {
    #[error("a menu has 1 to 3 top-level buttons; this one has {0}")]
    TopLevelCount(usize),
    #[error("button {top} has {count} sub-buttons; at most 5 are allowed")]
    SubCount { top: usize, count: usize },
    #[error("button {place}: a name is required")]
    EmptyName { place: String },
    #[error(
        "button {place}: the name {name:?} is too long: a top-level name has at most 4 Chinese characters (16 bytes, a Chinese character counting 4), a sub-button's at most 7 (28 bytes)"
    )]
    NameTooLong { place: String, name: String },
    #[error(
        "button {top}: a top-level button has either an action or sub-buttons, not both nor neither"
    )]
    ActionOrSubs { top: usize },
    #[error("button {place}: {field} is required")]
    Missing { place: String, field: &'static str },
    #[error("button {place}: {field} is longer than {max} bytes")]
    FieldTooLong {
        place: String,
        field: &'static str,
        max: usize,
    },
    /// `reason` completes "url …" (`domain::service::check_url`: the hall's rule).
    #[error("button {place}: url {reason}")]
    BadUrl { place: String, reason: String },
    #[error("button {place}: {code:?} is not a directory category")]
    UnknownCategory { place: String, code: String },
    #[error("button {place}: {field} must not hold control characters")]
    Control { place: String, field: &'static str },
    /// A bidirectional formatting character (`domain::text::is_bidi_format`): the
    /// label would read differently from what the screener read.
    #[error("button {place}: {source}")]
    Bidi {
        place: String,
        source: crate::domain::text::TextError,
    },
}

/// WeChat's length of a name: a character beyond ASCII counts 4 bytes (so 16 bytes
/// are 4 Chinese characters, as WeChat's console counts them).
fn name_bytes(name: &str) -> usize {
    name.chars().map(|c| if c.is_ascii() { 1 } else { 4 }).sum()
}

const TOP_NAME_MAX: usize = 16;
/// WeChat's API takes 60 bytes, but its clients show 7 Chinese characters of a
/// sub-button and cut the rest (domain.md, custom menu): a longer label is refused
/// rather than published cut.
const SUB_NAME_MAX: usize = 28;
const KEY_MAX: usize = 128;
const URL_MAX: usize = 1024;

fn check_action(place: &str, action: &Action) -> Result<(), MenuError> {
    let need = |field: &'static str, value: &str, max: usize| {
        if value.trim().is_empty() {
            Err(MenuError::Missing {
                place: place.to_owned(),
                field,
            })
        } else if value.chars().any(char::is_control) {
            Err(MenuError::Control {
                place: place.to_owned(),
                field,
            })
        } else if value.len() > max {
            Err(MenuError::FieldTooLong {
                place: place.to_owned(),
                field,
                max,
            })
        } else {
            Ok(())
        }
    };
    let url = |value: &str| {
        need("url", value, URL_MAX)?;
        crate::domain::service::check_url(value).map_err(|reason| MenuError::BadUrl {
            place: place.to_owned(),
            reason,
        })
    };
    match action {
        Action::Category { code } => {
            if crate::domain::CategoryCode::parse(code).is_err() {
                return Err(MenuError::UnknownCategory {
                    place: place.to_owned(),
                    code: code.clone(),
                });
            }
            need("key", &category_key(code), KEY_MAX)
        }
        Action::ServiceHall => Ok(()),
        Action::Click { key }
        | Action::ScancodePush { key }
        | Action::ScancodeWaitmsg { key }
        | Action::PicSysphoto { key }
        | Action::PicPhotoOrAlbum { key }
        | Action::PicWeixin { key }
        | Action::LocationSelect { key } => need("key", key, KEY_MAX),
        Action::View { url: u } => url(u),
        Action::Miniprogram {
            url: u,
            appid,
            pagepath,
        } => {
            url(u)?;
            need("appid", appid, 32)?;
            need("pagepath", pagepath, URL_MAX)
        }
        Action::MediaId { media_id } => need("media_id", media_id, KEY_MAX),
        Action::ArticleId { article_id } | Action::ArticleViewLimited { article_id } => {
            need("article_id", article_id, KEY_MAX)
        }
    }
}

fn check_name(place: &str, name: &str, max: usize) -> Result<(), MenuError> {
    if name.trim().is_empty() {
        return Err(MenuError::EmptyName {
            place: place.to_owned(),
        });
    }
    if name.chars().any(char::is_control) {
        return Err(MenuError::Control {
            place: place.to_owned(),
            field: "name",
        });
    }
    crate::domain::text::check_bidi("name", name).map_err(|source| MenuError::Bidi {
        place: place.to_owned(),
        source,
    })?;
    if name_bytes(name) > max {
        return Err(MenuError::NameTooLong {
            place: place.to_owned(),
            name: name.to_owned(),
        });
    }
    Ok(())
}

/// Checks a menu against WeChat's limits; the first rule broken is the error.
/// Buttons are numbered from 1 (`2.3` is the third sub-button of the second).
pub fn validate(buttons: &[Button]) -> Result<(), MenuError> {
    if buttons.is_empty() || buttons.len() > 3 {
        return Err(MenuError::TopLevelCount(buttons.len()));
    }
    for (i, button) in buttons.iter().enumerate() {
        let top = i + 1;
        check_name(&top.to_string(), &button.name, TOP_NAME_MAX)?;
        if button.sub_buttons.len() > 5 {
            return Err(MenuError::SubCount {
                top,
                count: button.sub_buttons.len(),
            });
        }
        match (&button.action, button.sub_buttons.is_empty()) {
            (Some(action), true) => check_action(&top.to_string(), action)?,
            (None, false) => {
                for (j, sub) in button.sub_buttons.iter().enumerate() {
                    let place = format!("{top}.{}", j + 1);
                    check_name(&place, &sub.name, SUB_NAME_MAX)?;
                    check_action(&place, &sub.action)?;
                }
            }
            _ => return Err(MenuError::ActionOrSubs { top }),
        }
    }
    Ok(())
}

/// Every button's place and action, top-level ones first in their order.
pub fn actions(buttons: &[Button]) -> Vec<(String, &Action)> {
    let mut out = Vec::new();
    for (i, button) in buttons.iter().enumerate() {
        if let Some(action) = &button.action {
            out.push(((i + 1).to_string(), action));
        }
        for (j, sub) in button.sub_buttons.iter().enumerate() {
            out.push((format!("{}.{}", i + 1, j + 1), &sub.action));
        }
    }
    out
}

/// The directory categories a menu points at, with the button's place.
pub fn categories(buttons: &[Button]) -> Vec<(String, &str)> {
    actions(buttons)
        .into_iter()
        .filter_map(|(place, action)| match action {
            Action::Category { code } => Some((place, code.as_str())),
            _ => None,
        })
        .collect()
}

/// The menu as WeChat takes it: a category becomes a CLICK with its key, the
/// service hall a VIEW of `hall_url` (the account's page).
pub fn resolve(buttons: &[Button], hall_url: &str) -> Vec<Button> {
    let action = |action: &Action| match action {
        Action::Category { code } => Action::Click {
            key: category_key(code),
        },
        Action::ServiceHall => Action::View {
            url: hall_url.to_owned(),
        },
        other => other.clone(),
    };
    buttons
        .iter()
        .map(|button| Button {
            name: button.name.clone(),
            action: button.action.as_ref().map(action),
            sub_buttons: button
                .sub_buttons
                .iter()
                .map(|sub| SubButton {
                    name: sub.name.clone(),
                    action: action(&sub.action),
                })
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn click(name: &str) -> SubButton {
        SubButton {
            name: name.into(),
            action: Action::Click {
                key: "category:social_security".into(),
            },
        }
    }

    fn menu() -> Vec<Button> {
        vec![
            Button {
                name: "办事大厅".into(),
                action: Some(Action::View {
                    url: "https://hall.example.gov.cn".into(),
                }),
                sub_buttons: vec![],
            },
            Button {
                name: "社保医保".into(),
                action: None,
                sub_buttons: vec![click("社保卡补办"), click("医保报销")],
            },
        ]
    }

    #[test]
    fn a_valid_menu_passes() {
        assert_eq!(validate(&menu()), Ok(()));
    }

    #[test]
    fn a_sixth_sub_button_is_refused_with_the_rule_named() {
        let mut m = menu();
        m[1].sub_buttons = (0..6).map(|i| click(&format!("服务{i}"))).collect();
        let err = validate(&m).unwrap_err();
        assert_eq!(err, MenuError::SubCount { top: 2, count: 6 });
        assert!(err.to_string().contains("at most 5"), "{err}");
    }

    #[test]
    fn a_five_character_top_level_name_is_refused() {
        let mut m = menu();
        m[0].name = "网上办事厅".into();
        let err = validate(&m).unwrap_err();
        assert!(
            err.to_string().contains("at most 4 Chinese characters"),
            "{err}"
        );
        m[0].name = "Service".into();
        assert_eq!(validate(&m), Ok(()));
    }

    #[test]
    fn a_sub_button_shows_seven_chinese_characters_and_an_eighth_is_refused() {
        let mut m = menu();
        m[1].sub_buttons = vec![click("公积金提取查询")];
        assert_eq!(validate(&m), Ok(()));
        m[1].sub_buttons = vec![click("住房公积金提取查询")];
        let err = validate(&m).unwrap_err();
        assert!(err.to_string().contains("at most 7 (28 bytes)"), "{err}");
    }

    #[test]
    fn counts_actions_and_fields_are_checked() {
        let mut m = menu();
        m.push(m[0].clone());
        m.push(m[0].clone());
        assert_eq!(validate(&m), Err(MenuError::TopLevelCount(4)));
        let mut m = menu();
        m[0].action = Some(Action::View {
            url: "javascript:x".into(),
        });
        assert!(matches!(validate(&m), Err(MenuError::BadUrl { .. })));
        // The hall's rule: a reader takes the name before '@' for the site.
        let mut m = menu();
        m[0].action = Some(Action::View {
            url: "https://a.gov.cn@evil.example/".into(),
        });
        let refused = validate(&m).unwrap_err().to_string();
        assert!(refused.contains("user name before its host"), "{refused}");
        let mut m = menu();
        m[1].action = Some(Action::Click { key: "k".into() });
        assert_eq!(validate(&m), Err(MenuError::ActionOrSubs { top: 2 }));
    }

    #[test]
    fn directory_buttons_become_a_category_click_and_a_hall_view() {
        let m = vec![Button {
            name: "服务".into(),
            action: None,
            sub_buttons: vec![
                SubButton {
                    name: "社保".into(),
                    action: Action::Category {
                        code: "social_security".into(),
                    },
                },
                SubButton {
                    name: "办事大厅".into(),
                    action: Action::ServiceHall,
                },
            ],
        }];
        assert_eq!(validate(&m), Ok(()));
        assert_eq!(categories(&m), vec![("1.1".to_owned(), "social_security")]);
        let resolved = resolve(&m, "https://wx.example.gov.cn/hall/demo");
        assert_eq!(
            resolved[0].sub_buttons[0].action,
            Action::Click {
                key: "category:social_security".into()
            }
        );
        assert_eq!(
            resolved[0].sub_buttons[1].action,
            Action::View {
                url: "https://wx.example.gov.cn/hall/demo".into()
            }
        );
        let mut bad = m.clone();
        bad[0].sub_buttons[0].action = Action::Category {
            code: "Bad Code".into(),
        };
        assert!(matches!(
            validate(&bad),
            Err(MenuError::UnknownCategory { .. })
        ));
    }

    #[test]
    fn the_stored_json_names_the_type() {
        let json = serde_json::to_value(menu()).unwrap();
        assert_eq!(json[0]["action"]["type"], "view");
        assert_eq!(json[1]["sub_buttons"][0]["action"]["type"], "click");
        let back: Vec<Button> = serde_json::from_value(json).unwrap();
        assert_eq!(back, menu());
    }

    #[test]
    fn a_button_named_with_a_right_to_left_override_is_refused() {
        let mut buttons = vec![Button {
            name: "\u{202E}票发开代\u{202C}".into(),
            sub_buttons: vec![],
            action: Some(Action::ServiceHall),
        }];
        assert_eq!(
            validate(&buttons).unwrap_err().to_string(),
            "button 1: name must not hold U+202E (RIGHT-TO-LEFT OVERRIDE): it changes the \
             order readers see the text in"
        );
        buttons[0].name = "办事大厅".into();
        assert_eq!(validate(&buttons), Ok(()));
    }
}
