//! Custom menus: saved as numbered versions, published through WeChat's API
//! (`menu/create`; `menu/addconditional` for a conditional menu), restorable.
//!
//! A publication is recorded as `publishing` and committed, WeChat is called with no
//! transaction open, and the outcome is settled in a second transaction. A replica
//! dying mid-call leaves the claim, which a later publication takes over once it is
//! older than [`STALE_CLAIM`] (the client's calls time out long before).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;
use sqlx::PgPool;
use wechat::api::menu as wx;
use wechat::api::{ApiError, Client, ErrCode};

use super::AppError;
use super::lexicon::Lexicon;
use crate::domain::menu::{self, Action, Button, MenuError};
use crate::store::menus::{self as store, MenuRow, Settled, VersionRow};

/// How long a `publishing` claim blocks another publication of the same menu.
pub const STALE_CLAIM: chrono::TimeDelta = chrono::TimeDelta::minutes(2);
/// WeChat's answer to `menu/delconditional` for a menu id it does not hold.
const NO_SUCH_CONDITIONAL_MENU: ErrCode = ErrCode(65301);
/// The longest note on a version, in characters.
pub const NOTE_MAX: usize = 200;

/// Why a menu use case failed. Mapped to a status once, in `grpc::menus`.
#[derive(Debug, thiserror::Error)]
pub enum MenuFailure {
    /// One of WeChat's limits (or a directory target) is broken; the message names
    /// the rule and the button.
    #[error(transparent)]
    Rule(#[from] MenuError),
    /// A request field is unusable; the message names it.
    #[error("{0}")]
    Invalid(String),
    /// No such menu or version.
    #[error("{0}")]
    NotFound(String),
    /// The menu's state does not allow the step; the message names the rule.
    #[error("{0}")]
    Precondition(String),
    /// WeChat refused the call (its error, verbatim); WeChat still shows what it did.
    #[error("WeChat refused the menu: {0}")]
    Wechat(String),
    /// WeChat could not be reached or was busy; nothing was changed.
    #[error("WeChat could not be reached: {0}")]
    Unavailable(String),
    /// The call may have reached WeChat and only its answer was lost (a timeout, a
    /// proxy's 5xx, an unreadable answer): the menu may or may not have changed.
    #[error(
        "WeChat's answer was lost ({0}); the menu may have changed on WeChat: publish again to be sure"
    )]
    OutcomeUnknown(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

impl From<ApiError> for MenuFailure {
    fn from(error: ApiError) -> Self {
        match &error {
            // First: -1 to `menu/addconditional` (not retried: WeChat may have added
            // it) is a busy code, but no "nothing was changed".
            _ if error.outcome_unknown() => Self::OutcomeUnknown(error.to_string()),
            ApiError::Wechat { code, .. } if !code.is_busy() => Self::Wechat(error.to_string()),
            ApiError::Config(_) => Self::Wechat(error.to_string()),
            _ => Self::Unavailable(error.to_string()),
        }
    }
}

/// Which menu of an account: the default one (`tag_id` 0) or the conditional
/// menu of a WeChat user tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuKey {
    pub account: String,
    pub tag_id: i64,
}

impl MenuKey {
    fn describe(&self) -> String {
        if self.tag_id == 0 {
            format!("the default menu of {}", self.account)
        } else {
            format!(
                "the conditional menu of {} for tag {}",
                self.account, self.tag_id
            )
        }
    }
}

/// A menu with its latest version's buttons.
#[derive(Debug, Clone)]
pub struct MenuView {
    pub row: MenuRow,
    pub buttons: Vec<Button>,
}

/// The menu use cases.
#[derive(Clone)]
pub struct Menus {
    db: PgPool,
    clients: Arc<HashMap<String, Client>>,
    hall_base: String,
    lexicon: Lexicon,
}

impl Menus {
    /// Menus over `db`, published with each account's client; the service hall's
    /// pages are under `hall_base` (`HALL_PUBLIC_URL`); button names are screened
    /// with `lexicon`.
    pub fn new(
        db: PgPool,
        clients: HashMap<String, Client>,
        hall_base: &str,
        lexicon: Lexicon,
    ) -> Self {
        Self {
            db,
            clients: Arc::new(clients),
            hall_base: hall_base.trim_end_matches('/').to_owned(),
            lexicon,
        }
    }

    /// The public URL of an account's service hall (a menu's VIEW target).
    pub fn hall_url(&self, account: &str) -> String {
        hall_url(&self.hall_base, account)
    }

    /// One menu; an account's default menu with nothing saved is an empty draft.
    pub async fn get(&self, key: &MenuKey) -> Result<MenuView, MenuFailure> {
        match store::get(&self.db, &key.account, key.tag_id).await? {
            Some(row) => self.view(row).await,
            None if key.tag_id == 0 => Ok(MenuView {
                row: empty_row(key),
                buttons: Vec::new(),
            }),
            None => Err(MenuFailure::NotFound(format!(
                "{} has not been saved",
                key.describe()
            ))),
        }
    }

    /// The account's menus, the default one first.
    pub async fn list(&self, account: &str) -> Result<Vec<MenuView>, MenuFailure> {
        let mut out = Vec::new();
        for row in store::list(&self.db, account).await? {
            out.push(self.view(row).await?);
        }
        Ok(out)
    }

    /// Every version of a menu, newest first.
    pub async fn versions(&self, key: &MenuKey) -> Result<Vec<VersionRow>, MenuFailure> {
        Ok(store::versions(&self.db, &key.account, key.tag_id).await?)
    }

    /// Checks buttons against WeChat's limits and the directory, and answers the
    /// body `menu/create` would receive.
    pub async fn check(
        &self,
        account: &str,
        buttons: &[Button],
    ) -> Result<serde_json::Value, MenuFailure> {
        menu::validate(buttons)?;
        self.check_categories(buttons).await?;
        self.screen_names(buttons).await?;
        let resolved = menu::resolve(buttons, &self.hall_url(account));
        // The hall's URL comes from configuration: it must pass WeChat's rules too.
        menu::validate(&resolved)?;
        Ok(serde_json::to_value(to_wechat(&resolved)).unwrap_or_default())
    }

    /// Refuses a button name with a lexicon word: every follower reads the menu.
    async fn screen_names(&self, buttons: &[Button]) -> Result<(), MenuFailure> {
        let mut names = Vec::new();
        for (i, button) in buttons.iter().enumerate() {
            names.push((format!("button {}", i + 1), button.name.as_str()));
            for (j, sub) in button.sub_buttons.iter().enumerate() {
                names.push((format!("button {}.{}", i + 1, j + 1), sub.name.as_str()));
            }
        }
        match self.lexicon.refusal(&names).await {
            Ok(None) => Ok(()),
            Ok(Some(refusal)) => Err(MenuFailure::Invalid(refusal)),
            Err(AppError::Database(error)) => Err(MenuFailure::Database(error)),
            Err(other) => Err(MenuFailure::Invalid(other.to_string())),
        }
    }

    /// Checks and saves `buttons` as the menu's next version.
    pub async fn save(
        &self,
        key: &MenuKey,
        buttons: &[Button],
        actor: &str,
        note: &str,
    ) -> Result<VersionRow, MenuFailure> {
        let note = note.trim();
        // A NUL (PostgreSQL refuses it in text) or a bidirectional control is the
        // caller's mistake, named, not an internal error.
        crate::domain::text::check_text("note", note)
            .map_err(|e| MenuFailure::Invalid(e.to_string()))?;
        let len = note.chars().count();
        if len > NOTE_MAX {
            return Err(MenuFailure::Invalid(format!(
                "note is {len} characters; at most {NOTE_MAX} are allowed"
            )));
        }
        self.check(&key.account, buttons).await?;
        let mut tx = self.db.begin().await?;
        let row = store::lock(&mut tx, &key.account, key.tag_id).await?;
        let version = store::insert_version(&mut tx, &row, buttons, actor, note).await?;
        tx.commit().await?;
        tracing::info!(account = %key.account, tag_id = key.tag_id, version = version.version, %actor, "menu saved");
        Ok(version)
    }

    /// Publishes `version` (None: the latest) of a menu.
    pub async fn publish(
        &self,
        key: &MenuKey,
        version: Option<i32>,
        actor: &str,
    ) -> Result<MenuView, MenuFailure> {
        let client = self.client(&key.account)?;
        let latest = store::get(&self.db, &key.account, key.tag_id)
            .await?
            .map_or(0, |row| row.latest_version);
        if latest == 0 {
            return Err(MenuFailure::Precondition(format!(
                "{} has no saved version to publish; save one first",
                key.describe()
            )));
        }
        let number = version.unwrap_or(latest);
        let saved = store::version(&self.db, &key.account, key.tag_id, number)
            .await?
            .ok_or_else(|| {
                MenuFailure::NotFound(format!("{} has no version {number}", key.describe()))
            })?;
        // Checked again: a category may have gone, or the hall's URL changed.
        let body = self.check(&key.account, &saved.buttons.0).await?;
        let resolved = menu::resolve(&saved.buttons.0, &self.hall_url(&key.account));

        let mut tx = self.db.begin().await?;
        let row = store::lock(&mut tx, &key.account, key.tag_id).await?;
        refuse_if_under_way(key, &row)?;
        if key.tag_id != 0 {
            // Through the transaction: a second connection waited for while this
            // one holds the menu's lock can wait out the pool's timeout.
            let default = store::get(&mut *tx, &key.account, 0).await?;
            if default.and_then(|d| d.published_version).is_none() {
                return Err(MenuFailure::Precondition(format!(
                    "publish the default menu of {} first: WeChat shows a conditional menu only beside a default one",
                    key.account
                )));
            }
        }
        let id = store::begin_publication(&mut tx, &row, Some(number), actor, Some(&body)).await?;
        tx.commit().await?;

        // No transaction is open across the call. The call and the settling run in
        // a task of their own, awaited here: a caller giving up (a cancelled RPC
        // drops this future) must not leave the claim unsettled and a conditional
        // menu WeChat added unrecorded. The task is bounded by the client's timeouts.
        let this = self.clone();
        let (key, client) = (key.clone(), client.clone());
        let task = tokio::spawn(async move {
            let outcome = if key.tag_id == 0 {
                client
                    .menu_create(&to_wechat(&resolved))
                    .await
                    .map(|()| None)
                    .map_err(MenuFailure::from)
            } else {
                this.add_conditional(&client, &key, &row, id, &resolved)
                    .await
            };
            let settled = match &outcome {
                Ok(menuid) => Settled::Done {
                    version: Some(number),
                    wechat_menuid: menuid.clone(),
                },
                Err(error) => Settled::Failed(error.to_string()),
            };
            this.settle(&key, id, &settled).await?;
            outcome.map(|_| key)
        });
        let key = joined(task.await)??;
        tracing::info!(account = %key.account, tag_id = key.tag_id, version = number, %actor, "menu published");
        self.get(&key).await
    }

    /// Adds the conditional menu of `key` (publication `publication`), then deletes
    /// the ones it replaces: the one `row` names, those an earlier delete left on
    /// WeChat (`menus.stale_menuids`) and the tag's menus WeChat listed before the
    /// add that the service lost track of, so no older menu of the tag stays to
    /// match its followers (WeChat matches conditional menus newest first). Added
    /// first: an add that fails leaves the tag's followers the menu they saw.
    /// Answers the new menu's id. A replaced menu that cannot be deleted is kept as
    /// stale and deleted by the next publication or `DeleteConditionalMenu`.
    async fn add_conditional(
        &self,
        client: &Client,
        key: &MenuKey,
        row: &MenuRow,
        publication: i64,
        resolved: &[Button],
    ) -> Result<Option<String>, MenuFailure> {
        let menu = wx::ConditionalMenu {
            button: to_wechat(resolved).button,
            matchrule: wx::MatchRule {
                tag_id: Some(key.tag_id.to_string()),
            },
        };
        // What WeChat holds for the tag before the add: after an add whose answer is
        // lost, a menu listed only afterwards is one it may have added.
        let before = self.tag_menus(client, key).await;
        let added = client.menu_add_conditional(&menu).await;
        let mut replaced = store::stale_menuids(&self.db, &key.account, key.tag_id).await?;
        let mut listed = Vec::new();
        match &added {
            Ok(_) => {
                replaced.extend(row.wechat_menuid.clone());
                listed = before.unwrap_or_default();
            }
            Err(error) if error.outcome_unknown() => {
                // WeChat may have added it: what the tag holds now and did not before
                // goes, so the failed publication leaves WeChat showing what it
                // showed (without the first listing, all but the recorded one goes).
                if let Some(now) = self.tag_menus(client, key).await {
                    listed = now
                        .into_iter()
                        .filter(|id| before.as_ref().is_none_or(|b| !b.contains(id)))
                        .collect();
                }
            }
            Err(_) => {}
        }
        if added.is_err() {
            // The recorded one still shows.
            replaced.retain(|old| Some(old) != row.wechat_menuid.as_ref());
            listed.retain(|old| Some(old) != row.wechat_menuid.as_ref());
        }
        let menuid = added.as_ref().ok().map(String::as_str);
        self.delete_ours(client, key, publication, menuid, replaced, listed)
            .await?;
        Ok(Some(added?))
    }

    /// Deletes, after publication `publication` of `key` added `added` (or not),
    /// the conditional menus it replaces: `replaced` (ids the service recorded) and
    /// `listed` (ids WeChat listed for the tag that the service did not know of).
    /// The row is read again first: a publication that took the claim over (older
    /// than [`STALE_CLAIM`]) may have added a menu since. The menu it recorded stays;
    /// while it is under way the menu it adds cannot be told from the listed ones,
    /// which then stay for the next publication to list. `added` is then not the
    /// row's menu: it goes, or while the other publication is under way is kept as
    /// stale for the next one.
    async fn delete_ours(
        &self,
        client: &Client,
        key: &MenuKey,
        publication: i64,
        added: Option<&str>,
        mut replaced: Vec<String>,
        mut listed: Vec<String>,
    ) -> Result<(), MenuFailure> {
        let current = store::get(&self.db, &key.account, key.tag_id).await?;
        if let Some(current) = current.filter(|c| c.publishing_id != Some(publication)) {
            let shown = current.wechat_menuid.as_deref();
            replaced.retain(|id| Some(id.as_str()) != shown);
            listed.retain(|id| Some(id.as_str()) != shown);
            let other_live = under_way(&current);
            if other_live && !listed.is_empty() {
                tracing::warn!(account = %key.account, tag_id = key.tag_id, ?listed,
                    "another publication of the menu is under way; the conditional menus the service did not know of are left for the next one");
                listed.clear();
            }
            if let Some(added) = added {
                if other_live {
                    store::track_stale(
                        &self.db,
                        &key.account,
                        key.tag_id,
                        &[added.to_owned()],
                        &[],
                    )
                    .await?;
                } else {
                    replaced.push(added.to_owned());
                }
            }
        }
        if !listed.is_empty() {
            tracing::warn!(account = %key.account, tag_id = key.tag_id, orphans = ?listed,
                "deleting conditional menus of the tag the service did not know of");
        }
        let mut ids = replaced;
        for id in listed {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        ids.dedup();
        self.delete_replaced(client, key, &ids).await?;
        Ok(())
    }

    /// The conditional menus WeChat lists for the tag of `key` (`menu/get`'s
    /// `conditionalmenu`), or None when the listing fails (logged: a lost menu is
    /// found by the next listing).
    async fn tag_menus(&self, client: &Client, key: &MenuKey) -> Option<Vec<String>> {
        match list_tag_menus(client, key).await {
            Ok(ids) => Some(ids),
            Err(error) => {
                tracing::warn!(account = %key.account, tag_id = key.tag_id, %error,
                    "the conditional menus could not be listed; a lost one is deleted later");
                None
            }
        }
    }

    /// Deletes conditional menus `ids` of `key` (65301: already gone), records each
    /// that stays on WeChat as stale, the others as gone, and answers those that
    /// stay with their errors.
    async fn delete_replaced(
        &self,
        client: &Client,
        key: &MenuKey,
        ids: &[String],
    ) -> Result<Vec<(String, ApiError)>, MenuFailure> {
        let (mut gone, mut left) = (Vec::new(), Vec::new());
        for old in ids {
            match client.menu_del_conditional(old).await {
                Ok(()) => gone.push(old.clone()),
                Err(error) if error.code() == Some(NO_SUCH_CONDITIONAL_MENU) => {
                    gone.push(old.clone())
                }
                Err(error) => {
                    tracing::warn!(account = %key.account, tag_id = key.tag_id, %old, %error,
                        "a conditional menu could not be deleted; kept to delete later");
                    left.push((old.clone(), error));
                }
            }
        }
        if !ids.is_empty() {
            let kept: Vec<String> = left.iter().map(|(id, _)| id.clone()).collect();
            store::track_stale(&self.db, &key.account, key.tag_id, &kept, &gone).await?;
        }
        Ok(left)
    }

    /// Saves a copy of `version` as the newest version and publishes it.
    pub async fn restore(
        &self,
        key: &MenuKey,
        version: i32,
        actor: &str,
    ) -> Result<MenuView, MenuFailure> {
        self.client(&key.account)?;
        let saved = store::version(&self.db, &key.account, key.tag_id, version)
            .await?
            .ok_or_else(|| {
                MenuFailure::NotFound(format!("{} has no version {version}", key.describe()))
            })?;
        let copy = self
            .save(
                key,
                &saved.buttons.0,
                actor,
                &format!("restored from version {version}"),
            )
            .await?;
        self.publish(key, Some(copy.version), actor).await
    }

    /// Takes a conditional menu off WeChat, with the tag's menus WeChat lists that
    /// the service lost track of; its versions stay.
    pub async fn unpublish_conditional(
        &self,
        key: &MenuKey,
        actor: &str,
    ) -> Result<MenuView, MenuFailure> {
        if key.tag_id == 0 {
            return Err(MenuFailure::Invalid(
                "tag_id is required: only a conditional menu is deleted (the default menu is replaced by publishing another version)".to_owned(),
            ));
        }
        let client = self.client(&key.account)?;
        // A menu whose add lost its answer, its listing failing too, has no recorded
        // id: WeChat's list finds it.
        let recorded = store::get(&self.db, &key.account, key.tag_id).await?;
        if recorded.is_none_or(|r| r.wechat_menuid.is_none())
            && store::stale_menuids(&self.db, &key.account, key.tag_id)
                .await?
                .is_empty()
            && list_tag_menus(client, key).await?.is_empty()
        {
            return Err(MenuFailure::Precondition(format!(
                "{} is not on WeChat",
                key.describe()
            )));
        }
        let mut tx = self.db.begin().await?;
        let row = store::lock(&mut tx, &key.account, key.tag_id).await?;
        refuse_if_under_way(key, &row)?;
        let menuid = row.wechat_menuid.clone();
        let id = store::begin_publication(&mut tx, &row, None, actor, None).await?;
        tx.commit().await?;
        // In a task of its own, as in `publish`: a cancelled caller still settles.
        let this = self.clone();
        let (key, client) = (key.clone(), client.clone());
        let task = tokio::spawn(async move {
            let mut ids = store::stale_menuids(&this.db, &key.account, key.tag_id).await?;
            ids.extend(menuid.clone());
            match list_tag_menus(&client, &key).await {
                Ok(listed) => ids.extend(
                    listed
                        .into_iter()
                        .filter(|id| !ids.contains(id))
                        .collect::<Vec<_>>(),
                ),
                // Without an id recorded, only the list names what to delete.
                Err(error) if menuid.is_none() => {
                    this.settle(&key, id, &Settled::Failed(error.to_string()))
                        .await?;
                    return Err(error.into());
                }
                Err(error) => {
                    tracing::warn!(account = %key.account, tag_id = key.tag_id, %error,
                        "the conditional menus could not be listed; a lost one is deleted later");
                }
            }
            let left = this.delete_replaced(&client, &key, &ids).await?;
            // The recorded menu (or, without one, any of the tag's) left on WeChat fails it.
            match left
                .into_iter()
                .find(|(id, _)| menuid.as_ref().is_none_or(|m| m == id))
            {
                Some((_, error)) => {
                    this.settle(&key, id, &Settled::Failed(error.to_string()))
                        .await?;
                    Err(error.into())
                }
                None => {
                    let done = Settled::Done {
                        version: None,
                        wechat_menuid: None,
                    };
                    this.settle(&key, id, &done).await?;
                    Ok::<_, MenuFailure>(key)
                }
            }
        });
        let key = joined(task.await)??;
        self.get(&key).await
    }

    async fn settle(&self, key: &MenuKey, id: i64, settled: &Settled) -> Result<(), MenuFailure> {
        let mut tx = self.db.begin().await?;
        store::settle(&mut tx, &key.account, key.tag_id, id, settled).await?;
        tx.commit().await?;
        Ok(())
    }

    fn client(&self, account: &str) -> Result<&Client, MenuFailure> {
        self.clients.get(account).ok_or_else(|| {
            MenuFailure::Precondition(format!(
                "account {account} has no WeChat API credentials (WECHAT_ACCOUNTS)"
            ))
        })
    }

    async fn check_categories(&self, buttons: &[Button]) -> Result<(), MenuFailure> {
        let wanted = menu::categories(buttons);
        if wanted.is_empty() {
            return Ok(());
        }
        let codes: Vec<String> = wanted.iter().map(|(_, c)| (*c).to_owned()).collect();
        let known = store::known_categories(&self.db, &codes).await?;
        if let Some((place, code)) = wanted
            .into_iter()
            .find(|(_, c)| !known.iter().any(|k| k == c))
        {
            return Err(MenuError::UnknownCategory {
                place,
                code: code.to_owned(),
            }
            .into());
        }
        Ok(())
    }

    async fn view(&self, row: MenuRow) -> Result<MenuView, MenuFailure> {
        let buttons = if row.latest_version == 0 {
            Vec::new()
        } else {
            store::version(&self.db, &row.account, row.tag_id, row.latest_version)
                .await?
                .map(|v| v.buttons.0)
                .unwrap_or_default()
        };
        Ok(MenuView { row, buttons })
    }
}

/// A publication task's result; its panic is the caller's.
fn joined<T>(result: Result<T, tokio::task::JoinError>) -> Result<T, MenuFailure> {
    result.map_err(|error| match error.try_into_panic() {
        Ok(panic) => std::panic::resume_unwind(panic),
        Err(error) => MenuFailure::Unavailable(format!("the publication was stopped: {error}")),
    })
}

/// Whether a publication of `row` holds a claim not yet taken over.
fn under_way(row: &MenuRow) -> bool {
    row.state == "publishing"
        && row
            .publishing_since
            .is_some_and(|since| Utc::now() - since < STALE_CLAIM)
}

/// The ids of the conditional menus WeChat lists for the tag of `key` (`menu/get`'s
/// `conditionalmenu`: an id the service never learned cannot be found otherwise)
/// whose rule is the tag alone: one with more criteria (sex, country, client
/// platform, language…) was made in WeChat's console and is not the service's.
async fn list_tag_menus(client: &Client, key: &MenuKey) -> Result<Vec<String>, ApiError> {
    let listed = match client.menu_get_all().await {
        Ok(menus) => menus.conditional,
        // No default menu: WeChat holds no conditional menu either.
        Err(error) if error.code() == Some(ErrCode::MENU_NOT_EXIST) => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    let tag = key.tag_id.to_string();
    Ok(listed
        .into_iter()
        .filter(|m| {
            m.matchrule.tag_id.as_deref() == Some(tag.as_str()) && m.other_criteria.is_empty()
        })
        .map(|m| m.menuid)
        .filter(|id| !id.is_empty())
        .collect())
}

fn refuse_if_under_way(key: &MenuKey, row: &MenuRow) -> Result<(), MenuFailure> {
    if under_way(row)
        && let Some(since) = row.publishing_since
    {
        return Err(MenuFailure::Precondition(format!(
            "a publication of {} is under way since {}; one at a time",
            key.describe(),
            since.format("%H:%M:%S UTC")
        )));
    }
    Ok(())
}

fn empty_row(key: &MenuKey) -> MenuRow {
    MenuRow {
        account: key.account.clone(),
        tag_id: key.tag_id,
        latest_version: 0,
        state: "draft".to_owned(),
        published_version: None,
        publishing_id: None,
        publishing_since: None,
        wechat_menuid: None,
        last_error: String::new(),
        updated_at: Utc::now(),
    }
}

/// `{base}/hall/{account}`, the account percent-encoded beyond `[A-Za-z0-9_.-]`.
pub fn hall_url(base: &str, account: &str) -> String {
    let mut encoded = String::new();
    for byte in account.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("{}/hall/{encoded}", base.trim_end_matches('/'))
}

/// WeChat's form of resolved buttons (directory targets already turned into a
/// CLICK or VIEW by `domain::menu::resolve`).
fn to_wechat(buttons: &[Button]) -> wx::Menu {
    wx::Menu {
        button: buttons
            .iter()
            .map(|button| match &button.action {
                Some(action) => leaf(&button.name, action),
                None => wx::Button::parent(
                    button.name.clone(),
                    button
                        .sub_buttons
                        .iter()
                        .map(|sub| leaf(&sub.name, &sub.action))
                        .collect(),
                ),
            })
            .collect(),
    }
}

fn leaf(name: &str, action: &Action) -> wx::Button {
    let with = |kind: wx::ButtonType| wx::Button {
        kind: Some(kind),
        name: name.to_owned(),
        ..wx::Button::default()
    };
    let keyed = |kind, key: &str| wx::Button {
        key: Some(key.to_owned()),
        ..with(kind)
    };
    match action {
        Action::Click { key } => keyed(wx::ButtonType::Click, key),
        // Resolved before; kept total so a stray one still publishes as intended.
        Action::Category { code } => keyed(wx::ButtonType::Click, &menu::category_key(code)),
        Action::ServiceHall => with(wx::ButtonType::View),
        Action::View { url } => wx::Button::view(name, url),
        Action::Miniprogram {
            url,
            appid,
            pagepath,
        } => wx::Button::mini_program(name, url, appid, pagepath),
        Action::ScancodePush { key } => keyed(wx::ButtonType::ScancodePush, key),
        Action::ScancodeWaitmsg { key } => keyed(wx::ButtonType::ScancodeWaitmsg, key),
        Action::PicSysphoto { key } => keyed(wx::ButtonType::PicSysphoto, key),
        Action::PicPhotoOrAlbum { key } => keyed(wx::ButtonType::PicPhotoOrAlbum, key),
        Action::PicWeixin { key } => keyed(wx::ButtonType::PicWeixin, key),
        Action::LocationSelect { key } => keyed(wx::ButtonType::LocationSelect, key),
        Action::MediaId { media_id } => wx::Button {
            media_id: Some(media_id.clone()),
            ..with(wx::ButtonType::MediaId)
        },
        Action::ArticleId { article_id } => wx::Button {
            article_id: Some(article_id.clone()),
            ..with(wx::ButtonType::ArticleId)
        },
        Action::ArticleViewLimited { article_id } => wx::Button {
            article_id: Some(article_id.clone()),
            ..with(wx::ButtonType::ArticleViewLimited)
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hall_url_encodes_the_account() {
        assert_eq!(
            hall_url("https://wx.example.gov.cn/", "lincheng"),
            "https://wx.example.gov.cn/hall/lincheng"
        );
        assert_eq!(hall_url("http://h", "a b"), "http://h/hall/a%20b");
    }

    #[test]
    fn wechat_json_has_the_category_key_and_the_hall_view() {
        let buttons = vec![
            Button {
                name: "社保".into(),
                action: Some(Action::Click {
                    key: menu::category_key("social_security"),
                }),
                sub_buttons: vec![],
            },
            Button {
                name: "更多".into(),
                action: None,
                sub_buttons: vec![menu::SubButton {
                    name: "办事大厅".into(),
                    action: Action::View {
                        url: "https://h/hall/demo".into(),
                    },
                }],
            },
        ];
        let json = serde_json::to_value(to_wechat(&buttons)).unwrap();
        assert_eq!(json["button"][0]["type"], "click");
        assert_eq!(json["button"][0]["key"], "category:social_security");
        assert_eq!(json["button"][1]["sub_button"][0]["type"], "view");
        assert_eq!(
            json["button"][1]["sub_button"][0]["url"],
            "https://h/hall/demo"
        );
    }
}
