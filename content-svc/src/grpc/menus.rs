//! `content.v1.MenuService`: decode, check the caller, call `app::menus`, encode.
//! Any role reaching the account reads; admin or publisher checks, writes and publishes.
//! `MenuFailure` gets its status here, in [`status`], and nowhere else.

use platform::Role;
use platform::grpc::{Caller, caller};
use proto::content::v1 as pb;
use tonic::{Request, Response, Status};

use crate::app::menus::{MenuFailure, MenuKey, MenuView, Menus};
use crate::domain::menu::{Action, Button, SubButton};
use crate::store::menus::VersionRow;

/// Who may read menus.
const READERS: &[Role] = &Role::ALL;
/// Who may check (`ValidateMenu`, `SaveMenu`'s dry run), save, publish, restore and
/// delete menus. A check names a button's lexicon word, so it is not for every role:
/// a viewer or agent key would read the lexicon through it.
const WRITERS: &[Role] = &[Role::Admin, Role::Publisher];

type Reply<T> = Result<Response<T>, Status>;

/// The gRPC door of the menus.
#[derive(Clone)]
pub struct MenuGrpc {
    menus: Menus,
}

impl MenuGrpc {
    pub fn new(menus: Menus) -> Self {
        Self { menus }
    }
}

/// The one mapping of a menu failure to a status.
fn status(failure: MenuFailure) -> Status {
    let code = match &failure {
        MenuFailure::Rule(_) | MenuFailure::Invalid(_) => platform::ErrorCode::InvalidArgument,
        MenuFailure::NotFound(_) => platform::ErrorCode::NotFound,
        MenuFailure::Precondition(_) | MenuFailure::Wechat(_) => {
            platform::ErrorCode::FailedPrecondition
        }
        MenuFailure::Unavailable(_) | MenuFailure::OutcomeUnknown(_) => {
            platform::ErrorCode::Unavailable
        }
        MenuFailure::Database(_) => platform::ErrorCode::Internal,
    };
    code.status(failure.to_string())
}

/// Checks the caller's role and reach; another account looks absent.
fn authorize<'r, T>(
    request: &'r Request<T>,
    roles: &[Role],
    account: &str,
) -> Result<&'r Caller, Status> {
    let caller = caller(request)?;
    caller.require_any(roles)?;
    let account = account.trim();
    if account.is_empty() {
        return Err(Status::invalid_argument("account is required"));
    }
    if !caller.may_access(account) {
        return Err(Status::not_found(format!("account {account} not found")));
    }
    Ok(caller)
}

fn key(account: &str, tag_id: u64) -> Result<MenuKey, Status> {
    crate::domain::text::check_line("account", account)
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
    let tag_id = i64::try_from(tag_id)
        .map_err(|_| Status::invalid_argument("tag_id is not a WeChat user tag id"))?;
    Ok(MenuKey {
        account: account.trim().to_owned(),
        tag_id,
    })
}

fn version(number: u32) -> Result<i32, Status> {
    i32::try_from(number).map_err(|_| Status::invalid_argument("version is out of range"))
}

#[tonic::async_trait]
impl pb::menu_service_server::MenuService for MenuGrpc {
    async fn get_menu(&self, request: Request<pb::MenuRef>) -> Reply<pb::Menu> {
        let req = request.get_ref();
        authorize(&request, READERS, &req.account)?;
        let view = self
            .menus
            .get(&key(&req.account, req.tag_id)?)
            .await
            .map_err(status)?;
        Ok(Response::new(menu(view)))
    }

    async fn list_menus(
        &self,
        request: Request<pb::ListMenusRequest>,
    ) -> Reply<pb::ListMenusResponse> {
        let account = request.get_ref().account.trim().to_owned();
        authorize(&request, READERS, &account)?;
        let views = self.menus.list(&account).await.map_err(status)?;
        Ok(Response::new(pb::ListMenusResponse {
            menus: views.into_iter().map(menu).collect(),
        }))
    }

    async fn list_menu_versions(
        &self,
        request: Request<pb::MenuRef>,
    ) -> Reply<pb::ListMenuVersionsResponse> {
        let req = request.get_ref();
        authorize(&request, READERS, &req.account)?;
        let key = key(&req.account, req.tag_id)?;
        let published = self
            .menus
            .get(&key)
            .await
            .map_err(status)?
            .row
            .published_version;
        let rows = self.menus.versions(&key).await.map_err(status)?;
        Ok(Response::new(pb::ListMenuVersionsResponse {
            versions: rows
                .into_iter()
                .map(|row| {
                    let live = published == Some(row.version);
                    menu_version(row, live)
                })
                .collect(),
        }))
    }

    async fn save_menu(&self, request: Request<pb::SaveMenuRequest>) -> Reply<pb::MenuVersion> {
        let req = request.get_ref();
        let caller = authorize(&request, WRITERS, &req.account)?;
        let actor = super::actor_id(&request, caller)?;
        let key = key(&req.account, req.tag_id)?;
        let buttons = buttons(&req.buttons)?;
        let row = self
            .menus
            .save(&key, &buttons, &actor, &req.note)
            .await
            .map_err(status)?;
        Ok(Response::new(menu_version(row, false)))
    }

    async fn validate_menu(
        &self,
        request: Request<pb::ValidateMenuRequest>,
    ) -> Reply<pb::ValidateMenuResponse> {
        let req = request.get_ref();
        authorize(&request, WRITERS, &req.account)?;
        let buttons = buttons(&req.buttons)?;
        let body = self
            .menus
            .check(req.account.trim(), &buttons)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ValidateMenuResponse {
            wechat_json: body.to_string(),
        }))
    }

    async fn publish_menu(&self, request: Request<pb::PublishMenuRequest>) -> Reply<pb::Menu> {
        let req = request.get_ref();
        let caller = authorize(&request, WRITERS, &req.account)?;
        let actor = super::actor_id(&request, caller)?;
        let number = match req.version {
            0 => None,
            n => Some(version(n)?),
        };
        let view = self
            .menus
            .publish(&key(&req.account, req.tag_id)?, number, &actor)
            .await
            .map_err(status)?;
        Ok(Response::new(menu(view)))
    }

    async fn restore_menu_version(
        &self,
        request: Request<pb::RestoreMenuVersionRequest>,
    ) -> Reply<pb::Menu> {
        let req = request.get_ref();
        let caller = authorize(&request, WRITERS, &req.account)?;
        let actor = super::actor_id(&request, caller)?;
        if req.version == 0 {
            return Err(Status::invalid_argument("version is required"));
        }
        let view = self
            .menus
            .restore(
                &key(&req.account, req.tag_id)?,
                version(req.version)?,
                &actor,
            )
            .await
            .map_err(status)?;
        Ok(Response::new(menu(view)))
    }

    async fn delete_conditional_menu(&self, request: Request<pb::MenuRef>) -> Reply<pb::Menu> {
        let req = request.get_ref();
        let caller = authorize(&request, WRITERS, &req.account)?;
        let actor = super::actor_id(&request, caller)?;
        let view = self
            .menus
            .unpublish_conditional(&key(&req.account, req.tag_id)?, &actor)
            .await
            .map_err(status)?;
        Ok(Response::new(menu(view)))
    }
}

// ---------------------------------------------------------------- wire ⇄ domain

/// Decodes the buttons; a shape the domain cannot hold (a type on a button with
/// sub-buttons, a third level) is INVALID_ARGUMENT naming the button.
fn buttons(wire: &[pb::MenuButton]) -> Result<Vec<Button>, Status> {
    wire.iter()
        .enumerate()
        .map(|(i, b)| {
            let place = (i + 1).to_string();
            let own = match b.r#type() {
                pb::MenuButtonType::Unspecified => None,
                _ => Some(action(&place, b)?),
            };
            let sub_buttons = b
                .sub_buttons
                .iter()
                .enumerate()
                .map(|(j, s)| {
                    let place = format!("{place}.{}", j + 1);
                    if !s.sub_buttons.is_empty() {
                        return Err(Status::invalid_argument(format!(
                            "button {place}: a sub-button cannot hold sub-buttons (menus have two levels)"
                        )));
                    }
                    Ok(SubButton {
                        name: s.name.clone(),
                        action: action(&place, s)?,
                    })
                })
                .collect::<Result<Vec<_>, Status>>()?;
            Ok(Button {
                name: b.name.clone(),
                action: own,
                sub_buttons,
            })
        })
        .collect()
}

fn action(place: &str, b: &pb::MenuButton) -> Result<Action, Status> {
    use pb::MenuButtonType as T;
    let key = || b.key.clone();
    Ok(match b.r#type() {
        T::Unspecified => {
            return Err(Status::invalid_argument(format!(
                "button {place}: type is required"
            )));
        }
        T::Click => Action::Click { key: key() },
        T::View => Action::View { url: b.url.clone() },
        T::Miniprogram => Action::Miniprogram {
            url: b.url.clone(),
            appid: b.appid.clone(),
            pagepath: b.pagepath.clone(),
        },
        T::ScancodePush => Action::ScancodePush { key: key() },
        T::ScancodeWaitmsg => Action::ScancodeWaitmsg { key: key() },
        T::PicSysphoto => Action::PicSysphoto { key: key() },
        T::PicPhotoOrAlbum => Action::PicPhotoOrAlbum { key: key() },
        T::PicWeixin => Action::PicWeixin { key: key() },
        T::LocationSelect => Action::LocationSelect { key: key() },
        T::MediaId => Action::MediaId {
            media_id: b.media_id.clone(),
        },
        T::ArticleId => Action::ArticleId {
            article_id: b.article_id.clone(),
        },
        T::ArticleViewLimited => Action::ArticleViewLimited {
            article_id: b.article_id.clone(),
        },
        T::Category => Action::Category {
            code: b.category.trim().to_owned(),
        },
        T::ServiceHall => Action::ServiceHall,
    })
}

fn wire_button(name: &str, action: Option<&Action>, subs: &[SubButton]) -> pb::MenuButton {
    use pb::MenuButtonType as T;
    let mut out = pb::MenuButton {
        name: name.to_owned(),
        sub_buttons: subs
            .iter()
            .map(|s| wire_button(&s.name, Some(&s.action), &[]))
            .collect(),
        ..Default::default()
    };
    let Some(action) = action else {
        return out;
    };
    let kind = match action {
        Action::Click { key } => {
            out.key = key.clone();
            T::Click
        }
        Action::View { url } => {
            out.url = url.clone();
            T::View
        }
        Action::Miniprogram {
            url,
            appid,
            pagepath,
        } => {
            out.url = url.clone();
            out.appid = appid.clone();
            out.pagepath = pagepath.clone();
            T::Miniprogram
        }
        Action::ScancodePush { key } => {
            out.key = key.clone();
            T::ScancodePush
        }
        Action::ScancodeWaitmsg { key } => {
            out.key = key.clone();
            T::ScancodeWaitmsg
        }
        Action::PicSysphoto { key } => {
            out.key = key.clone();
            T::PicSysphoto
        }
        Action::PicPhotoOrAlbum { key } => {
            out.key = key.clone();
            T::PicPhotoOrAlbum
        }
        Action::PicWeixin { key } => {
            out.key = key.clone();
            T::PicWeixin
        }
        Action::LocationSelect { key } => {
            out.key = key.clone();
            T::LocationSelect
        }
        Action::MediaId { media_id } => {
            out.media_id = media_id.clone();
            T::MediaId
        }
        Action::ArticleId { article_id } => {
            out.article_id = article_id.clone();
            T::ArticleId
        }
        Action::ArticleViewLimited { article_id } => {
            out.article_id = article_id.clone();
            T::ArticleViewLimited
        }
        Action::Category { code } => {
            out.category = code.clone();
            T::Category
        }
        Action::ServiceHall => T::ServiceHall,
    };
    out.set_type(kind);
    out
}

fn wire_buttons(buttons: &[Button]) -> Vec<pb::MenuButton> {
    buttons
        .iter()
        .map(|b| wire_button(&b.name, b.action.as_ref(), &b.sub_buttons))
        .collect()
}

fn timestamp(at: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

fn menu(view: MenuView) -> pb::Menu {
    let row = view.row;
    let state = match row.state.as_str() {
        "draft" => pb::MenuState::Draft,
        "publishing" => pb::MenuState::Publishing,
        "published" => pb::MenuState::Published,
        "failed" => pb::MenuState::Failed,
        _ => pb::MenuState::Unspecified,
    };
    pb::Menu {
        account: row.account,
        tag_id: u64::try_from(row.tag_id).unwrap_or(0),
        latest_version: u32::try_from(row.latest_version).unwrap_or(0),
        buttons: wire_buttons(&view.buttons),
        state: state.into(),
        published_version: row
            .published_version
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(0),
        last_error: row.last_error,
        wechat_menuid: row.wechat_menuid.unwrap_or_default(),
        updated_at: Some(timestamp(row.updated_at)),
    }
}

fn menu_version(row: VersionRow, published: bool) -> pb::MenuVersion {
    pb::MenuVersion {
        account: row.account,
        tag_id: u64::try_from(row.tag_id).unwrap_or(0),
        version: u32::try_from(row.version).unwrap_or(0),
        buttons: wire_buttons(&row.buttons.0),
        saved_by: row.saved_by,
        saved_at: Some(timestamp(row.saved_at)),
        note: row.note,
        published,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buttons_round_trip_through_the_wire() {
        let domain = vec![
            Button {
                name: "社保".into(),
                action: Some(Action::Category {
                    code: "social_security".into(),
                }),
                sub_buttons: vec![],
            },
            Button {
                name: "更多".into(),
                action: None,
                sub_buttons: vec![SubButton {
                    name: "办事大厅".into(),
                    action: Action::ServiceHall,
                }],
            },
        ];
        assert_eq!(buttons(&wire_buttons(&domain)).unwrap(), domain);
    }

    #[test]
    fn a_third_level_is_refused_naming_the_button() {
        let mut wire = wire_buttons(&[Button {
            name: "更多".into(),
            action: None,
            sub_buttons: vec![SubButton {
                name: "a".into(),
                action: Action::ServiceHall,
            }],
        }]);
        wire[0].sub_buttons[0]
            .sub_buttons
            .push(pb::MenuButton::default());
        let status = buttons(&wire).unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(
            status.message().contains("button 1.1"),
            "{}",
            status.message()
        );
    }
}
