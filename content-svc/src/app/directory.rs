//! The convenience-service directory (社保, 医保, 交通, …): listing, and the
//! owning department's (or an admin's) writes, each audited and announced on
//! CONTENT in the transaction of the change.

use chrono::Utc;
use platform::Role;
use platform::outbox::{self, OutboxEvent, OutboxSignal};
use prost::Message as _;
use proto::events::v1 as ev;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::AppError;
use super::articles::Who;
use super::search;
use crate::domain::ServiceListing;
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
    /// Use cases over `db`, announcing through the relay woken by `signal` and
    /// indexing for search with `segmenter`.
    pub fn new(db: PgPool, signal: OutboxSignal, segmenter: Segmenter) -> Self {
        Self {
            db,
            signal,
            segmenter,
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
    /// account showing it must be within the key's reach.
    pub async fn create(&self, who: &Who, draft: ServiceDraft) -> Result<ServiceRow, AppError> {
        may_write_department(who, &draft.department)?;
        for account in draft.accounts() {
            if !who.accounts.contains(account.as_str()) {
                return Err(AppError::Invalid(format!("account {account} not found")));
            }
        }
        let mut tx = self.db.begin().await?;
        require_category(&mut tx, &draft).await?;
        let row = store::upsert(&mut tx, Uuid::now_v7(), &draft).await?;
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
        let mut tx = self.db.begin().await?;
        let current = self.owned(&mut tx, who, id).await?;
        for account in &draft.also_shown_on {
            if !who.accounts.contains(account.as_str()) {
                return Err(AppError::Invalid(format!("account {account} not found")));
            }
        }
        draft.account = crate::domain::AccountId::parse(current.account.clone())
            .map_err(|e| AppError::Invalid(e.to_string()))?;
        draft.department = current.department;
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
        self.record(&mut tx, who, &row, Change::Deleted).await?;
        store::delete(&mut tx, id).await?;
        tx.commit().await?;
        self.signal.notify();
        Ok(())
    }

    /// Loads `text` (a seed file, see `domain::service::parse_seed`) when the
    /// directory holds no service yet; returns how many services were added.
    pub async fn seed(&self, text: &str) -> Result<usize, AppError> {
        let drafts = parse_seed(text)?;
        if store::count(&self.db).await? > 0 {
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
        let mut tx = self.db.begin().await?;
        for draft in &drafts {
            require_category(&mut tx, draft).await?;
            let row = store::upsert(&mut tx, Uuid::now_v7(), draft).await?;
            self.record(&mut tx, &seeder, &row, Change::Created).await?;
        }
        tx.commit().await?;
        self.signal.notify();
        Ok(drafts.len())
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

fn may_write_department(who: &Who, department: &str) -> Result<(), AppError> {
    if is_admin(who) || (who.actor.roles.contains(&Role::Editor) && who.department == department) {
        Ok(())
    } else {
        Err(AppError::Forbidden(format!(
            "only an editor of {department} or an admin may change its services"
        )))
    }
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
