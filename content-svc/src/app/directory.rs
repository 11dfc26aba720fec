//! The convenience-service directory (社保, 医保, 交通, …): listing, and the
//! owning department's (or an admin's) writes, each audited and announced on
//! CONTENT in the transaction of the change.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::Utc;
use platform::Role;
use platform::outbox::{self, OutboxEvent, OutboxSignal};
use prost::Message as _;
use proto::events::v1 as ev;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::AppError;
use super::articles::Who;
use super::lexicon::Lexicon;
use super::{requests, search};
use crate::domain::ServiceListing;
use crate::domain::request::{CreateKind, CreateRequest, RequestIdError};
use crate::domain::screening::Screener;
use crate::domain::search::Segmenter;
use crate::domain::service::{ServiceDraft, parse_seed};
use crate::store::directory::{self, DirectoryEntryRow};
use crate::store::services::{self as store, CategoryRow, ServiceRow};

/// Lists an account's directory entries (all categories or one) in display order:
/// by category, then position, then name.
pub async fn list_services(
    db: &PgPool,
    listing: &ServiceListing,
) -> Result<Vec<DirectoryEntryRow>, AppError> {
    Ok(directory::list(db, listing).await?)
}

/// The directory's use cases.
#[derive(Clone)]
pub struct Directory {
    db: PgPool,
    signal: OutboxSignal,
    segmenter: Segmenter,
    lexicon: Lexicon,
    /// The accounts this install serves (WECHAT_ACCOUNTS), which an import's lines
    /// may name; `None`: any (the demo install, see [`Directory::serving`]).
    served: Option<BTreeSet<String>>,
}

/// At most this many services per import (a city's whole directory is a few hundred).
pub const IMPORT_MAX: usize = 5_000;

/// What an import did, or would do, with one line of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedLine {
    /// The line of the file (1-based).
    pub line: usize,
    pub id: Uuid,
    pub account: String,
    pub name: String,
    pub change: ImportChange,
}

/// Whether an imported line made a new service, changed one, or matched it exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportChange {
    Created,
    Updated,
    Unchanged,
}

impl ImportChange {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Unchanged => "unchanged",
        }
    }
}

/// What a write did, for the audit trail and the event's subject.
#[derive(Debug, Clone, Copy)]
enum Change {
    Created,
    Updated,
    Deleted,
}

impl Change {
    fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Deleted => "deleted",
        }
    }
}

impl Directory {
    /// Use cases over `db`, announcing through the relay woken by `signal`,
    /// indexing for search with `segmenter` and screening with `lexicon`.
    pub fn new(db: PgPool, signal: OutboxSignal, segmenter: Segmenter, lexicon: Lexicon) -> Self {
        Self {
            db,
            signal,
            segmenter,
            lexicon,
            served: None,
        }
    }

    /// Limits an import's lines to `accounts`, the ones this install serves: the
    /// hall and interaction-svc's directory answers show only those, so a service of
    /// another account (a typo, a file written for another install) would be seen by
    /// nobody. Without it (the demo install, WECHAT_ACCOUNTS unset) any account goes.
    pub fn serving(mut self, accounts: impl IntoIterator<Item = String>) -> Self {
        self.served = Some(accounts.into_iter().collect());
        self
    }

    /// Refuses `account` (named in `field`) when this install does not serve it.
    fn check_served(&self, field: &str, account: &str) -> Result<(), String> {
        match &self.served {
            Some(served) if !served.contains(account) => Err(format!(
                "{field} {account} is not served by this install (WECHAT_ACCOUNTS: {}): no \
                 hall or answer would show the service",
                served
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            _ => Ok(()),
        }
    }

    /// Refuses a draft with a lexicon word in a text citizens read (the hall, the
    /// directory answers); `at` prefixes the refusal (an import's line).
    fn screen(screener: &Screener, draft: &ServiceDraft, at: &str) -> Result<(), AppError> {
        let texts = [
            ("name", draft.name.as_str()),
            ("description", &draft.description),
            ("how_to_apply", &draft.how_to_apply),
            ("hours", &draft.hours),
        ]
        .into_iter()
        .map(|(field, text)| (format!("{at}{field}"), text))
        .chain(
            draft
                .keywords
                .iter()
                .map(|k| (format!("{at}keywords"), k.as_str())),
        )
        .chain(
            draft
                .synonyms
                .iter()
                .map(|s| (format!("{at}synonyms"), s.as_str())),
        )
        .collect::<Vec<_>>();
        match super::lexicon::refusal(screener, &texts) {
            Some(refusal) => Err(AppError::Invalid(refusal)),
            None => Ok(()),
        }
    }

    /// Every category in display order.
    pub async fn categories(&self) -> Result<Vec<CategoryRow>, AppError> {
        Ok(store::categories(&self.db).await?)
    }

    /// One service, if the caller's key reaches one of the accounts showing it.
    pub async fn get(&self, who: &Who, id: Uuid) -> Result<ServiceRow, AppError> {
        let row = store::get(&self.db, id)
            .await?
            .ok_or(AppError::ServiceNotFound)?;
        if !visible(who, &row) {
            return Err(AppError::ServiceNotFound);
        }
        Ok(row)
    }

    /// Creates a service. An editor creates for their own department only; every
    /// account showing it must be within the key's reach. A retry of a call that
    /// gave `request` is answered with the service that call created, as it is now.
    pub async fn create(
        &self,
        who: &Who,
        draft: ServiceDraft,
        request: Option<&CreateRequest>,
    ) -> Result<ServiceRow, AppError> {
        may_write_department(who, &draft.department)?;
        for account in draft.accounts() {
            if !who.accounts.contains(account.as_str()) {
                return Err(AppError::Invalid(format!("account {account} not found")));
            }
        }
        // Read before the transaction: the lexicon's read would wait for a second
        // connection while this one is held.
        let screener = self.lexicon.screener().await?;
        let mut tx = self.db.begin().await?;
        let id = Uuid::now_v7();
        let kind = CreateKind::Service;
        let account = draft.account.as_str();
        if let Some(earlier) =
            requests::claim(&mut tx, account, request, kind, &who.department, id).await?
        {
            drop(tx);
            return match store::get(&self.db, earlier).await? {
                Some(row) if visible(who, &row) => Ok(row),
                Some(_) => Err(AppError::ServiceNotFound),
                None => Err(RequestIdError::Gone {
                    id: request
                        .map(|r| r.id.as_str().to_owned())
                        .unwrap_or_default(),
                    what: "service",
                    result: earlier,
                }
                .into()),
            };
        }
        Self::screen(&screener, &draft, "")?;
        require_category(&mut tx, &draft).await?;
        let row = store::upsert(&mut tx, id, &draft).await?;
        self.record(&mut tx, who, &row, Change::Created).await?;
        tx.commit().await?;
        self.signal.notify();
        Ok(row)
    }

    /// Replaces a service's fields; its owning account and department stay.
    pub async fn update(
        &self,
        who: &Who,
        id: Uuid,
        mut draft: ServiceDraft,
    ) -> Result<ServiceRow, AppError> {
        // Read before the transaction (see `create`).
        let screener = self.lexicon.screener().await?;
        let mut tx = self.db.begin().await?;
        let current = self.owned(&mut tx, who, id).await?;
        check_shares(who, &current.also_shown_on, &draft.also_shown_on).map_err(|e| e.at(""))?;
        if current.enabled && !draft.enabled {
            check_withdrawal(who, &current.also_shown_on).map_err(|e| e.at(""))?;
        }
        draft.account = crate::domain::AccountId::parse(current.account.clone())
            .map_err(|e| AppError::Invalid(e.to_string()))?;
        draft.department = current.department;
        Self::screen(&screener, &draft, "")?;
        require_category(&mut tx, &draft).await?;
        let row = store::upsert(&mut tx, id, &draft).await?;
        self.record(&mut tx, who, &row, Change::Updated).await?;
        tx.commit().await?;
        self.signal.notify();
        Ok(row)
    }

    /// Deletes a service (the audit trail keeps it as it was).
    pub async fn delete(&self, who: &Who, id: Uuid) -> Result<(), AppError> {
        let mut tx = self.db.begin().await?;
        let row = self.owned(&mut tx, who, id).await?;
        check_withdrawal(who, &row.also_shown_on).map_err(|e| e.at(""))?;
        self.record(&mut tx, who, &row, Change::Deleted).await?;
        store::delete(&mut tx, id).await?;
        tx.commit().await?;
        self.signal.notify();
        Ok(())
    }

    /// Loads `text` (a seed file, see `domain::service::parse_seed`) when the
    /// directory holds no service yet; returns how many services were added.
    /// Replicas starting together seed once: the check and the load hold one lock.
    pub async fn seed(&self, text: &str) -> Result<usize, AppError> {
        let drafts = parse_seed(text)?;
        let mut tx = self.db.begin().await?;
        store::lock_seed(&mut tx).await?;
        if store::count(&mut *tx).await? > 0 {
            return Ok(0);
        }
        let seeder = Who {
            actor: crate::domain::review::Actor {
                id: "seed".into(),
                roles: vec![Role::Admin],
            },
            department: "seed".into(),
            accounts: platform::grpc::AccountScope::All,
        };
        for draft in &drafts {
            require_category(&mut tx, draft).await?;
            let row = store::upsert(&mut tx, Uuid::now_v7(), draft).await?;
            self.record(&mut tx, &seeder, &row, Change::Created).await?;
        }
        tx.commit().await?;
        self.signal.notify();
        Ok(drafts.len())
    }

    /// Imports a seed file (see `domain::service::parse_seed`) for `who`: every line
    /// is checked before anything is written (the file's format and fields, the
    /// category, the key's accounts, the department's right to write, a name used
    /// twice), each refusal naming its line; then all services are written in one
    /// transaction, each created or updated one audited and announced as
    /// CreateService/UpdateService do. A service is matched by account, department and
    /// name (another department's service of the same name is another service), so
    /// importing the same file again changes nothing; services absent from the file
    /// stay. With `dry_run` the plan is returned and nothing is written.
    pub async fn import(
        &self,
        who: &Who,
        text: &str,
        dry_run: bool,
    ) -> Result<Vec<ImportedLine>, AppError> {
        let drafts = parse_seed(text)?;
        let lines = seed_line_numbers(text);
        debug_assert_eq!(lines.len(), drafts.len());
        if drafts.is_empty() {
            return Err(AppError::Invalid(
                "the file holds no service line (only comments or blank lines)".into(),
            ));
        }
        if drafts.len() > IMPORT_MAX {
            return Err(AppError::Invalid(format!(
                "the file holds {} services; at most {IMPORT_MAX} are imported at once",
                drafts.len()
            )));
        }
        let categories: HashSet<String> = store::categories(&self.db)
            .await?
            .into_iter()
            .map(|c| c.code)
            .collect();
        let screener = self.lexicon.screener().await?;
        let mut seen: HashMap<(&str, &str, &str), usize> = HashMap::new();
        for (draft, &line) in drafts.iter().zip(&lines) {
            let at = |reason: String| AppError::Invalid(format!("seed line {line}: {reason}"));
            let key = (
                draft.account.as_str(),
                draft.department.as_str(),
                draft.name.as_str(),
            );
            if let Some(first) = seen.insert(key, line) {
                return Err(at(format!(
                    "{} of {} on {} is already on line {first}; a name is imported once per \
                     account and department",
                    draft.name, draft.department, draft.account
                )));
            }
            if !categories.contains(draft.category.as_str()) {
                return Err(at(format!(
                    "category {} is not a directory category (see ListCategories)",
                    draft.category
                )));
            }
            // The accounts it is shared with are checked against the service as it
            // is, once it is read (below).
            if !who.accounts.contains(draft.account.as_str()) {
                return Err(at(format!("account {} not found", draft.account)));
            }
            self.check_served("account", draft.account.as_str())
                .map_err(&at)?;
            for other in &draft.also_shown_on {
                self.check_served("also_shown_on", other.as_str())
                    .map_err(&at)?;
            }
            may_write_department(who, &draft.department)
                .map_err(|e| AppError::Forbidden(format!("seed line {line}: {e}")))?;
            Self::screen(&screener, draft, &format!("seed line {line}: "))?;
        }

        let mut tx = self.db.begin().await?;
        let mut by_account: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for draft in &drafts {
            by_account
                .entry(draft.account.as_str())
                .or_default()
                .push(draft.name.clone());
        }
        // Matched by account, department and name: another department's service of the
        // same name on the account (its own page) is not this line's.
        let mut existing: HashMap<(String, String, String), Vec<ServiceRow>> = HashMap::new();
        // Locks in account order, so two imports never wait on each other in a cycle.
        for (account, names) in &by_account {
            directory::lock_account_for_import(&mut tx, account).await?;
            for row in directory::owned_by_names_for_update(&mut tx, account, names).await? {
                existing
                    .entry((
                        row.account.clone(),
                        row.department.clone(),
                        row.name.clone(),
                    ))
                    .or_default()
                    .push(row);
            }
        }
        let mut plan = Vec::with_capacity(drafts.len());
        for (draft, &line) in drafts.iter().zip(&lines) {
            let at = |reason: String| AppError::Invalid(format!("seed line {line}: {reason}"));
            let key = (
                draft.account.as_str().to_owned(),
                draft.department.clone(),
                draft.name.clone(),
            );
            let (id, change) = match existing.get(&key).map(Vec::as_slice) {
                None | Some([]) => {
                    check_shares(who, &[], &draft.also_shown_on)
                        .map_err(|e| e.at(&format!("seed line {line}: ")))?;
                    (Uuid::now_v7(), ImportChange::Created)
                }
                Some([row]) => {
                    check_shares(who, &row.also_shown_on, &draft.also_shown_on)
                        .map_err(|e| e.at(&format!("seed line {line}: ")))?;
                    if row.enabled && !draft.enabled {
                        check_withdrawal(who, &row.also_shown_on)
                            .map_err(|e| e.at(&format!("seed line {line}: ")))?;
                    }
                    may_write_department(who, &row.department)
                        .map_err(|e| AppError::Forbidden(format!("seed line {line}: {e}")))?;
                    let change = if same_fields(row, draft) {
                        ImportChange::Unchanged
                    } else {
                        ImportChange::Updated
                    };
                    (row.id, change)
                }
                Some(rows) => {
                    return Err(at(format!(
                        "{} has {} services of {} named {}; delete or rename all but one first",
                        draft.account,
                        rows.len(),
                        draft.department,
                        draft.name
                    )));
                }
            };
            plan.push(ImportedLine {
                line,
                id,
                account: draft.account.as_str().to_owned(),
                name: draft.name.clone(),
                change,
            });
        }
        if dry_run {
            tx.rollback().await?;
            return Ok(plan);
        }
        let mut wrote = false;
        for (draft, planned) in drafts.iter().zip(&plan) {
            let change = match planned.change {
                ImportChange::Unchanged => continue,
                ImportChange::Created => Change::Created,
                ImportChange::Updated => Change::Updated,
            };
            let row = store::upsert(&mut tx, planned.id, draft).await?;
            self.record(&mut tx, who, &row, change).await?;
            wrote = true;
        }
        tx.commit().await?;
        if wrote {
            self.signal.notify();
        }
        Ok(plan)
    }

    /// The service `id` locked for a change by `who`: NOT_FOUND when their key does
    /// not reach it, PERMISSION_DENIED when it belongs to another department.
    async fn owned(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        who: &Who,
        id: Uuid,
    ) -> Result<ServiceRow, AppError> {
        let row = store::get_for_update(tx, id)
            .await?
            .ok_or(AppError::ServiceNotFound)?;
        if !who.accounts.contains(&row.account) {
            return Err(AppError::ServiceNotFound);
        }
        may_write_department(who, &row.department)?;
        Ok(row)
    }

    /// The audit row and the CONTENT event of a change, in its transaction.
    async fn record(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        who: &Who,
        row: &ServiceRow,
        change: Change,
    ) -> Result<(), AppError> {
        store::audit(tx, row.id, change.as_str(), &who.actor.id, &who.department).await?;
        match change {
            Change::Deleted => search::unindex_service(tx, row.id).await?,
            _ => search::index_service(tx, &self.segmenter, row).await?,
        }
        let event_id = Uuid::now_v7().to_string();
        let accounts = match change {
            Change::Deleted => Vec::new(),
            _ => std::iter::once(row.account.clone())
                .chain(row.also_shown_on.iter().cloned())
                .collect(),
        };
        let now = Utc::now();
        let event = ev::DirectoryServiceChanged {
            header: Some(ev::EventHeader {
                event_id: event_id.clone(),
                account: row.account.clone(),
                occurred_at: Some(prost_types::Timestamp {
                    seconds: now.timestamp(),
                    nanos: i32::try_from(now.timestamp_subsec_nanos()).unwrap_or(0),
                }),
            }),
            change: change.as_str().to_owned(),
            service_id: row.id.to_string(),
            category: row.category.clone(),
            name: row.name.clone(),
            department: row.department.clone(),
            description: row.description.clone(),
            url: row.url.clone(),
            keywords: row.keywords.clone(),
            synonyms: row.synonyms.clone(),
            accounts,
            enabled: row.enabled,
            actor: who.actor.id.clone(),
        };
        let subject = format!("content.{}.directory.{}", row.account, change.as_str());
        let payload = event.encode_to_vec();
        outbox::enqueue(
            tx,
            OutboxEvent {
                subject: &subject,
                event_id: &event_id,
                payload: &payload,
            },
        )
        .await?;
        Ok(())
    }
}

fn is_admin(who: &Who) -> bool {
    who.actor.roles.contains(&Role::Admin)
}

fn visible(who: &Who, row: &ServiceRow) -> bool {
    who.accounts.contains(&row.account)
        || row.also_shown_on.iter().any(|a| who.accounts.contains(a))
}

/// Why a service's `also_shown_on` cannot be written by a key.
#[derive(Debug)]
enum ShareRefusal {
    /// An account the key does not reach, not yet sharing the service.
    NotFound(String),
    /// An account the key does not reach, sharing the service, left out.
    Removed(String),
    /// An account the key does not reach, sharing the service, which deleting or
    /// disabling it would take it off.
    Withdrawn(String),
}

impl ShareRefusal {
    fn at(self, prefix: &str) -> AppError {
        match self {
            Self::NotFound(account) => {
                AppError::Invalid(format!("{prefix}account {account} not found"))
            }
            Self::Removed(account) => AppError::Forbidden(format!(
                "{prefix}the service is also shown on {account}, which your key does not \
                 reach: keep it in also_shown_on (only a key reaching {account} may remove it)"
            )),
            Self::Withdrawn(account) => AppError::Forbidden(format!(
                "{prefix}the service is also shown on {account}, which your key does not \
                 reach: only a key reaching {account} may delete or disable it"
            )),
        }
    }
}

/// Checks a service's new `wanted` sharing against its `current` one for `who`: an
/// account the key does not reach may stay (an editor of the owning account sends
/// back what `GetService` answered) but may be neither added (it looks absent, as
/// everywhere else) nor removed (that would take the service off a directory the
/// key does not reach: refused rather than kept silently, so the caller sees it).
fn check_shares(
    who: &Who,
    current: &[String],
    wanted: &[crate::domain::AccountId],
) -> Result<(), ShareRefusal> {
    let reached = |account: &str| who.accounts.contains(account);
    if let Some(added) = wanted
        .iter()
        .find(|a| !reached(a.as_str()) && !current.iter().any(|c| c == a.as_str()))
    {
        return Err(ShareRefusal::NotFound(added.as_str().to_owned()));
    }
    if let Some(removed) = current
        .iter()
        .find(|c| !reached(c.as_str()) && !wanted.iter().any(|a| a.as_str() == c.as_str()))
    {
        return Err(ShareRefusal::Removed(removed.clone()));
    }
    Ok(())
}

/// Deleting or disabling a service takes it off every account it is also shown on:
/// refused, as leaving one out of also_shown_on is (see [`check_shares`]), while one
/// of them is beyond the key.
fn check_withdrawal(who: &Who, current: &[String]) -> Result<(), ShareRefusal> {
    match current.iter().find(|c| !who.accounts.contains(c.as_str())) {
        Some(account) => Err(ShareRefusal::Withdrawn(account.clone())),
        None => Ok(()),
    }
}

fn may_write_department(who: &Who, department: &str) -> Result<(), AppError> {
    if is_admin(who) || (who.actor.roles.contains(&Role::Editor) && who.department == department) {
        Ok(())
    } else {
        Err(AppError::Forbidden(format!(
            "only an editor of {department} or an admin may change its services"
        )))
    }
}

/// The line numbers of a seed file's service lines, in the order `parse_seed`
/// returns them (it skips the same blank and comment lines).
fn seed_line_numbers(text: &str) -> Vec<usize> {
    crate::domain::service::without_bom(text)
        .lines()
        .enumerate()
        .filter(|(_, line)| !(line.trim().is_empty() || line.trim_start().starts_with('#')))
        .map(|(index, _)| index + 1)
        .collect()
}

/// Whether saving `draft` over `row` would change nothing.
fn same_fields(row: &ServiceRow, draft: &ServiceDraft) -> bool {
    row.category == draft.category.as_str()
        && row.description == draft.description
        && row.how_to_apply == draft.how_to_apply
        && row.url == draft.url
        && row.miniprogram_appid == draft.miniprogram_appid
        && row.miniprogram_path == draft.miniprogram_path
        && row.hours == draft.hours
        && row.phone == draft.phone
        && row.keywords == draft.keywords
        && row.synonyms == draft.synonyms
        && row
            .also_shown_on
            .iter()
            .eq(draft.also_shown_on.iter().map(|a| a.as_str()))
        && row.enabled == draft.enabled
        && row.position == draft.position
}

async fn require_category(
    tx: &mut Transaction<'_, Postgres>,
    draft: &ServiceDraft,
) -> Result<(), AppError> {
    if store::category_exists(tx, draft.category.as_str()).await? {
        Ok(())
    } else {
        Err(AppError::Invalid(format!(
            "category {} is not a directory category (see ListCategories)",
            draft.category
        )))
    }
}
