//! Article use cases: write, review (三审), schedule and publish, and apply WeChat's
//! job-finish results. Each transition locks the article, decides with
//! `domain::review`, saves the state, the audit row and the CONTENT event in one
//! transaction; WeChat is called only after the commit.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use platform::Role;
use platform::grpc::AccountScope;
use platform::outbox::{self, OutboxEvent, OutboxSignal};
use prost::Message as _;
use proto::events::v1 as ev;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::AppError;
use super::lexicon::Lexicon;
use super::media::{self as images, Media};
use super::publishing::{self, Publisher, SendError};
use crate::domain::article::{ArticleContent, client_msg_id};
use crate::domain::quota::{self, QuotaExhausted};
use crate::domain::request::{CreateKind, CreateRequest};
use crate::domain::review::{
    self, Action, Actor, ArticleState, Decision, ReviewHistory, ReviewStage, Subject,
};
use crate::domain::screening::{Hit, Screener};
use crate::domain::search::Segmenter;
use crate::domain::version::{self, ReviewStep, VersionOutcome};
use crate::store::articles::{self as store, ArticleRow, Audit, Claimed, ListFilter, NewArticle};
use crate::store::lexicon as ledger;
use crate::store::messages;
use wechat::api::mass::MassStatus;
use wechat::message::MassSendJobFinish;

/// Sends that fail transiently are retried this many times, with backoff.
const MAX_ATTEMPTS: i32 = 5;
/// Who the trail names for the steps of a send the service takes by itself (a
/// claim, a retry, a send refused or given up, one of unknown outcome failed):
/// (actor, role).
const SCHEDULER: (&str, &str) = ("scheduler", "system");
/// Who the trail names for WeChat's verdict on a job.
const WECHAT: (&str, &str) = ("system", "wechat");
/// The audit action of the one edit WeChat allows after sending.
const POST_PUBLISH_EDIT: &str = "post_publish_edit";

/// Who is calling: the person, their department and the accounts the key reaches.
#[derive(Debug, Clone)]
pub struct Who {
    pub actor: Actor,
    pub department: String,
    pub accounts: AccountScope,
}

impl Who {
    /// Reviewers, publishers and admins see every department's articles on their
    /// accounts; an editor only their department's.
    pub(crate) fn sees(&self, row: &ArticleRow) -> bool {
        self.accounts.contains(&row.account)
            && (row.department == self.department
                || self
                    .actor
                    .roles
                    .iter()
                    .any(|r| matches!(r, Role::Reviewer | Role::Publisher | Role::Admin)))
    }

    pub(crate) fn role_name(&self) -> String {
        let names: Vec<&str> = self
            .actor
            .roles
            .iter()
            .map(|r| match r {
                Role::Editor => "editor",
                Role::Reviewer => "reviewer",
                Role::Publisher => "publisher",
                Role::Agent => "agent",
                Role::Admin => "admin",
                Role::Viewer => "viewer",
            })
            .collect();
        names.join(",")
    }
}

/// Records `action` of `who` on `row` that leaves its state and version as they are
/// (putting it into a message, taking it out, dissolving the message).
pub(crate) async fn audit_in_place(
    tx: &mut Transaction<'_, Postgres>,
    who: &Who,
    row: &ArticleRow,
    action: &str,
    comment: &str,
) -> Result<(), sqlx::Error> {
    store::audit(
        tx,
        &Audit {
            article_id: row.id,
            action,
            from: row.state(),
            to: row.state(),
            actor: &who.actor.id,
            role: &who.role_name(),
            version: row.version,
            stage: None,
            comment,
        },
    )
    .await
}

/// How an article goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Freepublish,
    /// Mass send to every follower (`None`) or one tag.
    MassSend {
        tag: Option<u64>,
        ignore_reprint: bool,
    },
}

/// What a publisher says of a send of unknown outcome found in WeChat.
#[derive(Debug, Clone, Copy)]
pub struct RecordPublished<'a> {
    /// The article's URL in WeChat (`https://mp.weixin.qq.com/…`).
    pub url: &'a str,
    /// WeChat's id of the publication, when known (a free publication's
    /// `article_id`, which a retraction needs).
    pub msg_data_id: Option<&'a str>,
    /// When WeChat published it, when known; now otherwise.
    pub at: Option<DateTime<Utc>>,
    pub comment: &'a str,
}

/// What a publisher's send (publish now, or a schedule) carries besides its action.
#[derive(Debug, Clone, Copy, Default)]
pub struct SendOptions {
    /// The time to schedule for.
    pub at: Option<DateTime<Utc>>,
    /// The publisher checked WeChat's console: the last send, whose outcome is
    /// unknown, did not reach followers (`domain::review::check_send_again`).
    pub confirm_possible_duplicate: bool,
}

/// The audit action of a publisher's confirmation that a send of unknown outcome
/// did not reach followers.
const CONFIRM_POSSIBLE_DUPLICATE: &str = "confirm_possible_duplicate";

/// A hit of the current version and its override, if any: (reviewer, reason).
pub type ScreenedHit = (Hit, Option<(String, String)>);

/// An article as a caller sees it: the row and the screening of its current version.
#[derive(Debug, Clone)]
pub struct ArticleView {
    pub row: ArticleRow,
    pub hits: Vec<ScreenedHit>,
}

impl ArticleView {
    /// Hits nobody overrode.
    pub fn open_hits(&self) -> usize {
        self.hits.iter().filter(|(_, o)| o.is_none()).count()
    }
}

/// The article use cases.
#[derive(Clone)]
pub struct Articles {
    db: PgPool,
    lexicon: Lexicon,
    signal: OutboxSignal,
    publisher: Publisher,
    media: Media,
    segmenter: Segmenter,
}

impl Articles {
    /// Use cases over `db`, announcing through the relay woken by `signal`; a
    /// published article is indexed for search with `segmenter`.
    pub fn new(
        db: PgPool,
        lexicon: Lexicon,
        signal: OutboxSignal,
        publisher: Publisher,
        segmenter: Segmenter,
    ) -> Self {
        // Every WeChat call these use cases make passes the per-minute ledger.
        let publisher = publisher.with_gate(db.clone());
        let media = Media::new(db.clone(), publisher.clone());
        Self {
            db,
            lexicon,
            signal,
            publisher,
            media,
            segmenter,
        }
    }

    /// The image use cases (uploads for bodies and covers).
    pub fn media(&self) -> &Media {
        &self.media
    }

    /// The database these use cases work on (for the message use cases).
    pub(crate) fn db(&self) -> &PgPool {
        &self.db
    }

    /// The lexicon these use cases screen with.
    pub fn lexicon(&self) -> &Lexicon {
        &self.lexicon
    }

    /// Creates a draft owned by the caller's department. A retry of a call that gave
    /// `request` is answered with the article that call created, as it is now.
    pub async fn create(
        &self,
        who: &Who,
        account: &str,
        content: ArticleContent,
        channel: Channel,
        request: Option<&CreateRequest>,
    ) -> Result<ArticleView, AppError> {
        require(who, Role::Editor, "create an article")?;
        if !who.accounts.contains(account) {
            return Err(AppError::NotFound);
        }
        let id = Uuid::now_v7();
        let (channel_name, tag, ignore) = match channel {
            Channel::Freepublish => ("freepublish", None, false),
            Channel::MassSend {
                tag,
                ignore_reprint,
            } => {
                let tag = tag
                    .map(i64::try_from)
                    .transpose()
                    .map_err(|_| AppError::Invalid("the mass send's tag id is too large".into()))?;
                ("mass_send", tag, ignore_reprint)
            }
        };
        let mut tx = self.db.begin().await?;
        let kind = CreateKind::Article;
        if let Some(earlier) =
            super::requests::claim(&mut tx, account, request, kind, &who.department, id).await?
        {
            drop(tx);
            return self.get(who, earlier).await;
        }
        images::check_images(&mut tx, account, &content).await?;
        store::insert(
            &mut tx,
            &NewArticle {
                id,
                account,
                department: &who.department,
                author_id: &who.actor.id,
                content: &content,
                channel: channel_name,
                mass_tag_id: tag,
                send_ignore_reprint: ignore,
            },
        )
        .await?;
        tx.commit().await?;
        self.get(who, id).await
    }

    /// Edits a draft: a new version, the previous kept. `read` is the version the
    /// edit was made on, when the client says: each save replaces the whole content,
    /// so a save made on a version replaced since would silently drop that change.
    pub async fn update(
        &self,
        who: &Who,
        id: Uuid,
        content: ArticleContent,
        read: Option<i32>,
    ) -> Result<ArticleView, AppError> {
        require(who, Role::Editor, "edit an article")?;
        let mut tx = self.db.begin().await?;
        let row = self.lock_visible(&mut tx, who, id).await?;
        own_department(who, &row, "edits")?;
        if !row.state().editable() {
            return Err(review::ReviewError::WrongState {
                state: row.state(),
                action: "edited",
            }
            .into());
        }
        review::check_read_version(read, row.version)?;
        images::check_images(&mut tx, &row.account, &content).await?;
        store::update_content(&mut tx, id, row.version + 1, &content, &who.actor.id).await?;
        tx.commit().await?;
        self.get(who, id).await
    }

    /// Reads an article with the screening of its current version.
    pub async fn get(&self, who: &Who, id: Uuid) -> Result<ArticleView, AppError> {
        let row = store::get(&self.db, id).await?.ok_or(AppError::NotFound)?;
        if !who.sees(&row) {
            return Err(AppError::NotFound);
        }
        self.view(row).await
    }

    async fn view(&self, row: ArticleRow) -> Result<ArticleView, AppError> {
        let hits = screen(&*self.lexicon.screener().await?, &row.content());
        let overrides = store::overrides(&self.db, row.id, row.version).await?;
        let hits = hits
            .into_iter()
            .map(|hit| {
                let o = overrides
                    .iter()
                    .find(|(key, _, _)| *key == hit.key())
                    .map(|(_, who, why)| (who.clone(), why.clone()));
                (hit, o)
            })
            .collect();
        Ok(ArticleView { row, hits })
    }

    /// Refuses when an article of `rows` has a hit of its current version that no
    /// reviewer overrode: the lexicon may have grown since it was approved (a
    /// message's other articles go out with their headline, a scheduled article
    /// long after it was approved).
    async fn refuse_open_hits(
        db: &mut sqlx::PgConnection,
        screener: &Screener,
        rows: &[ArticleRow],
    ) -> Result<(), AppError> {
        for row in rows {
            let hits = screen(screener, &row.content());
            let open = open_hits(&mut *db, row, &hits).await?;
            if open > 0 {
                return Err(review::ReviewError::ArticleOpenHits {
                    article: row.id.to_string(),
                    hits: open,
                }
                .into());
            }
        }
        Ok(())
    }

    /// The audit trail and the version last reviewed, if any (so a reviewer sees
    /// the diff, and an audit what was approved).
    pub async fn history(
        &self,
        view: &ArticleView,
    ) -> Result<(Vec<store::AuditRow>, Option<store::VersionRow>), AppError> {
        let audit = store::audit_trail(&self.db, view.row.id).await?;
        let reviewed = store::last_reviewed(&self.db, view.row.id).await?;
        Ok((audit, reviewed))
    }

    /// A page of the article's versions below `before` (the newest when `None`),
    /// newest first, each with its review; and whether older ones are left.
    /// Whoever may read the article may read its versions.
    pub async fn versions(
        &self,
        who: &Who,
        id: Uuid,
        before: Option<i32>,
        limit: i64,
    ) -> Result<(Vec<VersionView>, bool), AppError> {
        let row = self.visible(who, id).await?;
        // One more than the page tells whether another page follows.
        let mut versions = store::versions(&self.db, id, before, limit + 1).await?;
        let more = versions.len() as i64 > limit;
        versions.truncate(limit as usize);
        let numbers: Vec<i32> = versions.iter().map(|v| v.version).collect();
        let mut steps: HashMap<i32, Vec<store::AuditRow>> = HashMap::new();
        for step in store::review_steps(&self.db, id, &numbers).await? {
            steps.entry(step.version).or_default().push(step);
        }
        let views = versions
            .into_iter()
            .map(|summary| {
                let own = steps.remove(&summary.version).unwrap_or_default();
                version_view(summary, own, row.version)
            })
            .collect();
        Ok((views, more))
    }

    /// One version of the article, whole, with its review.
    pub async fn version(
        &self,
        who: &Who,
        id: Uuid,
        version: i32,
    ) -> Result<(VersionView, store::VersionRow), AppError> {
        let row = self.visible(who, id).await?;
        let (summary, content) = store::version(&self.db, id, version)
            .await?
            .ok_or(AppError::VersionNotFound(version))?;
        let steps = store::review_steps(&self.db, id, &[version]).await?;
        Ok((version_view(summary, steps, row.version), content))
    }

    /// The article, if the caller may see it; `NotFound` otherwise, as for a
    /// missing one.
    async fn visible(&self, who: &Who, id: Uuid) -> Result<ArticleRow, AppError> {
        let row = store::get(&self.db, id).await?.ok_or(AppError::NotFound)?;
        if !who.sees(&row) {
            return Err(AppError::NotFound);
        }
        Ok(row)
    }

    /// Lists the articles the caller sees, most recently changed first.
    pub async fn list(
        &self,
        who: &Who,
        account: Option<&str>,
        state: Option<ArticleState>,
        limit: i64,
        before: Option<(DateTime<Utc>, Uuid)>,
    ) -> Result<Vec<ArticleRow>, AppError> {
        if account.is_some_and(|a| !who.accounts.contains(a)) {
            return Ok(Vec::new());
        }
        let sees_all_departments = who
            .actor
            .roles
            .iter()
            .any(|r| matches!(r, Role::Reviewer | Role::Publisher | Role::Admin));
        let accounts = match &who.accounts {
            AccountScope::All => None,
            AccountScope::Only(set) => Some(set.iter().cloned().collect()),
        };
        Ok(store::list(
            &self.db,
            &ListFilter {
                accounts,
                account,
                department: (!sees_all_departments).then_some(who.department.as_str()),
                state,
                limit,
                before,
            },
        )
        .await?)
    }

    /// Opens `act`'s transaction and locks article `id` (NOT_FOUND unless `who` may
    /// see it) after its message, in the lock order every multi-article transaction
    /// takes. A return may take the article out of its message and close the others
    /// up: the message FOR UPDATE, then its articles in id order. Any other action
    /// takes the message FOR KEY SHARE, as the foreign key check of the article's
    /// second write would: taken then, with the article held, a schedule, cancel or
    /// publish of a headline deadlocked with a ComposeMessage or DissolveMessage
    /// holding the message and waiting for the headline. (Taken before the article is
    /// found visible: an article the caller may not see is still NOT_FOUND, its
    /// message locked a moment.) The message is read before the article is locked: if
    /// a compose or dissolve moved the article meanwhile, it starts again, so the
    /// message held is the article's; after three such moves it goes on regardless
    /// (the deadlock it risks then is detected and answered as an internal error).
    async fn lock_for_action(
        &self,
        who: &Who,
        id: Uuid,
        action: &Action,
    ) -> Result<(Transaction<'static, Postgres>, ArticleRow), AppError> {
        const TRIES: usize = 3;
        for attempt in 1.. {
            let mut tx = self.db.begin().await?;
            let message = if *action == Action::Return {
                let message = store::get(&mut *tx, id).await?.and_then(|r| r.message_id);
                if let Some(message) = message {
                    messages::lock(&mut tx, message).await?;
                    messages::lock_articles(&mut tx, message).await?;
                }
                message
            } else {
                messages::share_key_of(&mut tx, id).await?
            };
            let row = self.lock_visible(&mut tx, who, id).await?;
            if row.message_id == message || attempt == TRIES {
                return Ok((tx, row));
            }
            // Its locks go now, not when the pool gets round to the dropped transaction.
            tx.rollback().await?;
        }
        unreachable!("the last try returns")
    }

    /// Submits, withdraws, approves or rejects, schedules or cancels, or publishes
    /// now. `overrides` (hit key, reason) are recorded first (reviewers and
    /// publishers only); `send` has the time to schedule for and the publisher's
    /// confirmation of a send again after one of unknown outcome; `read_version`,
    /// when given, is the version the actor read, refused if no longer current.
    #[allow(clippy::too_many_arguments)]
    pub async fn act(
        &self,
        who: &Who,
        id: Uuid,
        action: Action,
        comment: &str,
        overrides: &[(String, String)],
        send: SendOptions,
        read_version: Option<i32>,
    ) -> Result<ArticleView, AppError> {
        let at = send.at;
        // Before the transaction: the screener may read the lexicon, and a second
        // connection waited for while this one holds the article's lock can wait out
        // the pool's timeout when every connection is held the same way.
        let screener = self.lexicon.screener().await?;
        let (mut tx, row) = self.lock_for_action(who, id, &action).await?;
        review::check_read_version(read_version, row.version)?;
        if action == Action::Submit {
            own_department(who, &row, "submits")?;
        }
        let goes_out = matches!(
            action,
            Action::Schedule | Action::CancelSchedule | Action::Publish
        );
        if goes_out {
            refuse_member(&row)?;
            if row.is_message_headline() {
                let members = check_members_ready(&mut tx, &row).await?;
                if action != Action::CancelSchedule {
                    Self::refuse_open_hits(&mut tx, &screener, &members).await?;
                }
            }
        }
        let hits = screen(&screener, &row.content());
        let recorded = record_overrides(&mut tx, who, &row, &hits, overrides).await?;
        audit_overrides(&mut tx, who, &row, &recorded).await?;
        let open_hits = open_hits(&mut tx, &row, &hits).await?;
        let history = ReviewHistory {
            passed: store::round_reviews(&mut tx, id, row.round)
                .await?
                .into_iter()
                .filter_map(|(stage, who)| Some((ReviewStage::parse(&stage)?, who)))
                .collect(),
        };
        let writers = store::writers(&mut *tx, id).await?;
        let submitters = store::submitters(&mut *tx, id).await?;
        let decision = review::decide(
            &Subject {
                state: row.state(),
                author: &row.author_id,
                writers: &writers,
                submitters: &submitters,
                history: &history,
                open_hits,
            },
            &who.actor,
            &action,
            comment,
        )?;
        // Drafts may be incomplete; what goes to review must be sendable.
        if action == Action::Submit && !row.content().has_cover() {
            return Err(review::ReviewError::NoCover {
                article: id.to_string(),
            }
            .into());
        }
        if matches!(action, Action::Schedule | Action::Publish) {
            // Before anything is reserved or sent: WeChat may hold the last send.
            if review::check_send_again(row.send_outcome_unknown, send.confirm_possible_duplicate)?
            {
                // Not cleared yet: until WeChat takes this send (`set_job`), a
                // cancel, return or rate-limited fall-back must find the message
                // still unsettled, or it could be dissolved and a member sent alone.
                store::confirm_send(&mut *tx, id).await?;
                // The job confirmed as not having reached anybody: a 45065 naming it
                // again is not waited for a second time.
                store::set_confirmed_job(&mut tx, id, row.mass_msg_id.as_deref()).await?;
                let failure = match row.failure.as_deref().map(str::trim) {
                    Some(failure) if !failure.is_empty() => format!(" (last failure: {failure})"),
                    _ => String::new(),
                };
                store::audit(
                    &mut tx,
                    &Audit {
                        article_id: id,
                        action: CONFIRM_POSSIBLE_DUPLICATE,
                        from: row.state(),
                        to: row.state(),
                        actor: &who.actor.id,
                        role: &who.role_name(),
                        version: row.version,
                        stage: None,
                        comment: &format!(
                            "confirmed that the last send, whose outcome was unknown, did not \
                             reach followers; sent again{failure}"
                        ),
                    },
                )
                .await?;
            }
            // A new send: the ids of a failed job before it would hide this one,
            // cut off mid-way, from the stuck-send sweep (which looks for none).
            store::forget_job(&mut tx, id).await?;
        }
        if action == Action::Schedule {
            let at = at.ok_or_else(|| AppError::Invalid("at is required".into()))?;
            if at < Utc::now() - chrono::Duration::seconds(60) {
                return Err(AppError::Invalid("at is in the past".into()));
            }
            store::set_schedule(&mut tx, id, Some(at)).await?;
        }
        if action == Action::CancelSchedule {
            store::set_schedule(&mut tx, id, None).await?;
            // A mass send waiting to retry holds a reservation; nothing went out
            // unless an attempt's answer was lost, which the release keeps.
            ledger::release(&mut *tx, id).await?;
        }
        // The drafts of the message the returned article leaves, forgotten as its
        // other articles close up: deleted once committed, as the article's own.
        let mut left_drafts = Vec::new();
        if action == Action::Return {
            // A message goes out whole: a draft in it would hold every other back.
            if let Some(message) = row.message_id {
                left_drafts = self
                    .take_out_of_message(&mut tx, who, &row, message)
                    .await?;
            }
            // The schedule is cancelled, as CancelSchedule does.
            store::set_schedule(&mut tx, id, None).await?;
            ledger::release(&mut *tx, id).await?;
            // WeChat's draft was made of the version approved: a send after the
            // revision must make one of the new version.
            store::forget_draft(&mut *tx, id).await?;
        }
        // Deleted from WeChat's draft box once the return is committed: no article
        // keeps it any more, and no transaction is held across a WeChat call. Not
        // when a send of it may have gone out (a free publication that may be live,
        // a mass job awaiting its verdict): that is what the send was made of, for
        // a publisher to settle.
        let forgotten = if action == Action::Return && !row.send_outcome_unknown {
            row.media_id.clone()
        } else {
            None
        };
        // A new send of it: one the stuck-send sweep gave up, still under way, no
        // longer keeps a draft or hands it over (its token is not this one).
        let send_token = if action == Action::Publish {
            Some(store::begin_send(&mut *tx, id).await?)
        } else {
            None
        };
        if action == Action::Publish {
            // Published anew (after a failure, too): the send has all its retries.
            store::reset_attempts(&mut tx, id).await?;
            self.reserve_quota(&mut tx, &row, None).await?;
            // WeChat's per-minute limit, checked (not counted) before the article
            // moves; each call is counted when it is made.
            for api in publishing::send_apis(&row) {
                publishing::check(&mut tx, &row.account, api, 1)
                    .await
                    .map_err(refusal)?;
            }
        }
        if let (Action::Approve, Some(stage)) = (&action, decision.stage) {
            store::record_review(&mut tx, id, row.round, stage, &who.actor.id, row.version).await?;
        }
        let comment = match (&action, at) {
            (Action::Schedule, Some(at)) => review::schedule_comment(at, comment),
            // The draft stays in WeChat's draft box while the article forgets it: the
            // trail is where a publisher settling the send finds it, to delete it then.
            (Action::Return, _) if row.send_outcome_unknown && row.media_id.is_some() => {
                let kept = row.media_id.as_deref().unwrap_or_default();
                tracing::warn!(article = %id, media_id = kept, "returned with its send's outcome unknown: its WeChat draft is kept, not deleted");
                review::kept_draft_comment(kept, comment)
            }
            _ => comment.to_owned(),
        };
        self.apply(
            &mut tx,
            &row,
            &action,
            decision,
            &who.actor.id,
            &who.role_name(),
            &comment,
            at,
            None,
        )
        .await?;
        tx.commit().await?;
        self.signal.notify();
        if let Some(draft) = forgotten {
            self.delete_unkept_draft(&row, &draft, "returned for revision")
                .await;
        }
        for (article, draft) in left_drafts {
            self.delete_forgotten_draft(
                &row.account,
                article,
                &draft,
                "its message's article was returned for revision",
            )
            .await;
        }
        if let Some(token) = send_token {
            self.send_under(id, Some(token)).await?;
        }
        self.get(who, id).await
    }

    /// Records a reviewer's overrides of hits of the current version (each with a
    /// reason, audited), without moving the article: a draft with an overridden hit
    /// may then be submitted.
    pub async fn override_hits(
        &self,
        who: &Who,
        id: Uuid,
        overrides: &[(String, String)],
        read_version: Option<i32>,
    ) -> Result<ArticleView, AppError> {
        if overrides.is_empty() {
            return Err(AppError::Invalid(
                "overrides: at least one is required".into(),
            ));
        }
        // Read before the transaction (see `act`).
        let screener = self.lexicon.screener().await?;
        let mut tx = self.db.begin().await?;
        let row = self.lock_visible(&mut tx, who, id).await?;
        review::check_read_version(read_version, row.version)?;
        let hits = screen(&screener, &row.content());
        let recorded = record_overrides(&mut tx, who, &row, &hits, overrides).await?;
        audit_overrides(&mut tx, who, &row, &recorded).await?;
        tx.commit().await?;
        self.get(who, id).await
    }

    /// Retracts a published article: deleted on WeChat first (outside any
    /// transaction), then recorded (state, audit, `retracted` event).
    pub async fn retract(
        &self,
        who: &Who,
        id: Uuid,
        reason: &str,
    ) -> Result<ArticleView, AppError> {
        let row = store::get(&self.db, id).await?.ok_or(AppError::NotFound)?;
        if !who.sees(&row) {
            return Err(AppError::NotFound);
        }
        let check = |row: &ArticleRow| {
            review::decide(
                &Subject {
                    state: row.state(),
                    author: &row.author_id,
                    writers: &[],
                    submitters: &[],
                    history: &ReviewHistory::default(),
                    open_hits: 0,
                },
                &who.actor,
                &Action::Retract,
                reason,
            )
        };
        check(&row)?;
        // In a message, WeChat's ids are the headline's and the article is deleted
        // by its place; a lone article is deleted whole (index 0).
        let (job, index) = match (row.message_id, row.message_position) {
            (Some(message), Some(_)) if row.is_message_member() => {
                let head = crate::store::messages::articles(&self.db, message)
                    .await?
                    .into_iter()
                    .find(|a| a.message_position == Some(1))
                    .ok_or(AppError::NotFound)?;
                // WeChat's place for it: where it was sent, not where it stands.
                (head, sent_place(&row))
            }
            (Some(_), Some(_)) => (row.clone(), sent_place(&row)),
            _ => (row.clone(), 0),
        };
        self.publisher.retract(&job, index).await.map_err(refusal)?;
        let mut tx = self.db.begin().await?;
        let row = self.lock_visible(&mut tx, who, id).await?;
        let decision = check(&row)?;
        self.apply(
            &mut tx,
            &row,
            &Action::Retract,
            decision,
            &who.actor.id,
            &who.role_name(),
            reason,
            None,
            None,
        )
        .await?;
        tx.commit().await?;
        self.signal.notify();
        self.get(who, id).await
    }

    /// Starts a correction of a published article: a correction notice (a new draft
    /// of the same department, linked to the original) that goes through review like
    /// any article; the original's trail and a `corrected` event record it.
    pub async fn correct(
        &self,
        who: &Who,
        id: Uuid,
        reason: &str,
        notice: ArticleContent,
    ) -> Result<ArticleView, AppError> {
        let mut tx = self.db.begin().await?;
        let row = self.lock_visible(&mut tx, who, id).await?;
        let decision = review::decide(
            &Subject {
                state: row.state(),
                author: &row.author_id,
                writers: &[],
                submitters: &[],
                history: &ReviewHistory::default(),
                open_hits: 0,
            },
            &who.actor,
            &Action::Correct,
            reason,
        )?;
        images::check_images(&mut tx, &row.account, &notice).await?;
        let notice_id = Uuid::now_v7();
        store::insert(
            &mut tx,
            &NewArticle {
                id: notice_id,
                account: &row.account,
                department: &row.department,
                author_id: &who.actor.id,
                content: &notice,
                channel: &row.channel,
                mass_tag_id: row.mass_tag_id,
                send_ignore_reprint: row.send_ignore_reprint,
            },
        )
        .await?;
        store::set_correction_of(&mut tx, notice_id, id).await?;
        self.apply(
            &mut tx,
            &row,
            &Action::Correct,
            decision,
            &who.actor.id,
            &who.role_name(),
            reason,
            None,
            Some(notice_id),
        )
        .await?;
        tx.commit().await?;
        self.signal.notify();
        let notice = store::get(&self.db, notice_id)
            .await?
            .ok_or(AppError::NotFound)?;
        self.view(notice).await
    }

    /// Records the one small edit WeChat allows of a sent article (at most 20
    /// characters of the body's text, once; title and cover fixed), as a new
    /// version with the reason in the audit trail. WeChat's API has no call for it:
    /// the publisher applies it in mp.weixin.qq.com; this records what was allowed
    /// and by whom. Publishers only; the new body passes the sensitive-word gate.
    pub async fn edit_published(
        &self,
        who: &Who,
        id: Uuid,
        body: String,
        reason: &str,
    ) -> Result<ArticleView, AppError> {
        require(who, Role::Publisher, "record an edit after publishing")?;
        if reason.trim().is_empty() {
            return Err(review::ReviewError::ReasonRequired("edit a published article").into());
        }
        // Read before the transaction (see `act`).
        let screener = self.lexicon.screener().await?;
        let mut tx = self.db.begin().await?;
        let row = self.lock_visible(&mut tx, who, id).await?;
        if row.state() != ArticleState::Published {
            return Err(review::ReviewError::WrongState {
                state: row.state(),
                action: "edited after publishing",
            }
            .into());
        }
        if store::count_actions(&mut tx, id, POST_PUBLISH_EDIT).await? > 0 {
            return Err(review::ReviewError::AlreadyEdited.into());
        }
        let content = ArticleContent::parse(ArticleContent {
            body,
            ..row.content()
        })?;
        if content.body_images() != row.content().body_images() {
            return Err(AppError::Invalid(
                "body: an edit after publishing cannot change the images".into(),
            ));
        }
        let before = crate::domain::article::strip_html(&row.body);
        let after = crate::domain::article::strip_html(&content.body);
        let changed = review::post_publish_edit_size(&before, &after);
        if changed == 0 {
            return Err(AppError::Invalid("body: the edit changes no text".into()));
        }
        if changed > review::POST_PUBLISH_EDIT_MAX {
            return Err(review::ReviewError::EditTooLarge(changed).into());
        }
        // The edit moves the hits a reviewer overrode in the published text (their
        // keys hold offsets): each keeps its override, matched by field and word;
        // only a hit the edit brings in is refused.
        let mut overridden: HashMap<(String, String), Vec<(String, String)>> = HashMap::new();
        for (key, reviewer, reason) in store::overrides(&mut *tx, id, row.version).await? {
            if let Some((field, word)) = Hit::field_and_word(&key) {
                overridden
                    .entry((field.to_owned(), word.to_owned()))
                    .or_default()
                    .push((reviewer, reason));
            }
        }
        let mut carried = Vec::new();
        let mut new_hits = 0;
        for hit in screen(&screener, &content) {
            match overridden
                .get_mut(&(hit.field.to_owned(), hit.word.clone()))
                .and_then(Vec::pop)
            {
                Some((reviewer, reason)) => carried.push((hit.key(), reviewer, reason)),
                None => new_hits += 1,
            }
        }
        if new_hits > 0 {
            return Err(review::ReviewError::OpenHits(new_hits).into());
        }
        let version = row.version + 1;
        store::update_content(&mut tx, id, version, &content, &who.actor.id).await?;
        for (key, reviewer, reason) in &carried {
            store::add_override(&mut tx, id, version, key, reviewer, reason).await?;
        }
        store::audit(
            &mut tx,
            &Audit {
                article_id: id,
                action: POST_PUBLISH_EDIT,
                from: row.state(),
                to: row.state(),
                actor: &who.actor.id,
                role: &who.role_name(),
                version,
                stage: None,
                comment: &format!(
                    "{} ({changed} character(s) changed; applied by hand in mp.weixin.qq.com)",
                    reason.trim()
                ),
            },
        )
        .await?;
        // Search shows the text readers now see (none for an article without a
        // URL: index_article skips it).
        let mut edited = row.clone();
        edited.body = content.body.clone();
        edited.version = version;
        super::search::index_article(
            &mut tx,
            &self.segmenter,
            &edited,
            row.url.as_deref().unwrap_or_default(),
        )
        .await?;
        tx.commit().await?;
        self.get(who, id).await
    }

    /// Records as published an article whose last send's outcome was unknown (and
    /// which was failed for it): the publisher found it in the account's published
    /// list (mp.weixin.qq.com) and gives its URL. Publishers only; audited
    /// (`record_published`, who, the URL and `comment`) and announced as
    /// `published`. A message's headline takes the articles that went with it
    /// along (their URLs are WeChat's to show).
    pub async fn record_published(
        &self,
        who: &Who,
        id: Uuid,
        record: RecordPublished<'_>,
    ) -> Result<ArticleView, AppError> {
        require(who, Role::Publisher, "record an article as published")?;
        crate::domain::article::check_article_url(record.url).map_err(AppError::Invalid)?;
        let now = Utc::now();
        let at = record.at.unwrap_or(now);
        if at > now + chrono::Duration::seconds(60) {
            return Err(AppError::Invalid("published_at is in the future".into()));
        }
        let mut tx = self.db.begin().await?;
        // A message and then its articles, in id order, are locked first, as
        // ComposeMessage, a send and a verdict on one take them. A headline in no
        // message takes only its own row (a recorded outcome notes nothing on the
        // others sent with it).
        // Read through the transaction, not a second connection (see `act`).
        if let Some(message) = store::get(&mut *tx, id).await?.and_then(|r| r.message_id) {
            messages::lock(&mut tx, message).await?;
            messages::lock_articles(&mut tx, message).await?;
        }
        let row = self.lock_visible(&mut tx, who, id).await?;
        refuse_member(&row)?;
        review::check_record_published(row.state(), row.send_outcome_unknown)?;
        store::set_send_outcome_unknown(&mut *tx, id, false).await?;
        let note = match record.comment.trim() {
            "" => String::new(),
            comment => format!("; {comment}"),
        };
        let outcome = Outcome::Recorded {
            url: Some(record.url.to_owned()),
            msg_data_id: record.msg_data_id.map(str::to_owned),
            at,
            comment: format!(
                "recorded as published by hand: the send whose outcome was unknown is in \
                 WeChat's published list at {}{note}",
                record.url
            ),
        };
        let role = who.role_name();
        self.finish_message(
            &mut tx,
            &row,
            outcome,
            &Uuid::now_v7().to_string(),
            (who.actor.id.as_str(), role.as_str()),
        )
        .await?;
        tx.commit().await?;
        self.signal.notify();
        self.get(who, id).await
    }

    /// Sends a preview of an approved article to named followers before it goes
    /// out (audited; the state does not change).
    pub async fn preview(
        &self,
        who: &Who,
        id: Uuid,
        openids: &[String],
    ) -> Result<usize, AppError> {
        require(who, Role::Publisher, "preview")?;
        if openids.is_empty() || openids.len() > 20 || openids.iter().any(|o| o.trim().is_empty()) {
            return Err(AppError::Invalid(
                "openids: 1 to 20 non-empty openids are required".into(),
            ));
        }
        // The openids are previewed one after the other as given: one named twice
        // would get two previews.
        let twice = named_twice(openids);
        if !twice.is_empty() {
            return Err(AppError::Invalid(format!(
                "openids: {} named more than once; each is sent one preview per time named",
                twice.join(", ")
            )));
        }
        let row = store::get(&self.db, id).await?.ok_or(AppError::NotFound)?;
        if !who.sees(&row) {
            return Err(AppError::NotFound);
        }
        if !matches!(
            row.state(),
            ArticleState::Approved | ArticleState::Scheduled
        ) {
            return Err(review::ReviewError::WrongState {
                state: row.state(),
                action: "previewed",
            }
            .into());
        }
        refuse_member(&row)?;
        let rows = self.message_rows(&row).await?;
        // Screened as the send is: a preview reaches real followers, and a word may
        // have joined the lexicon since the article was approved.
        let screener = self.lexicon.screener().await?;
        Self::refuse_open_hits(&mut *self.db.acquire().await?, &screener, &rows).await?;
        let drafts = self.media.drafts(&rows).await.map_err(refusal)?;
        // A draft the headline keeps (an earlier preview's) is reused; one made now is
        // this preview's, to keep for the send or to delete: left, it would sit in the
        // account's draft box with no article knowing of it.
        let made = row.media_id.is_none();
        let mut media_id = self
            .publisher
            .make_draft(&row, &drafts)
            .await
            .map_err(refusal)?;
        // Read again, locked, before any follower is reached: an article returned for
        // revision (or sent) while its draft was being made is not previewed as it
        // stood. A draft made now is kept onto the article here, before the preview,
        // not after: two previews at once each made one, and the one kept after both
        // previews left the other's followers with a preview of a deleted draft. The
        // loser deletes its own and previews the winner's.
        let mut owned = made;
        let mut lost = None;
        {
            let mut tx = self.db.begin().await?;
            let before = store::lock(&mut tx, id).await?.ok_or(AppError::NotFound)?;
            if !matches!(
                before.state(),
                ArticleState::Approved | ArticleState::Scheduled
            ) {
                drop(tx);
                if made {
                    self.delete_unkept_draft(&row, &media_id, "made by a preview its article left")
                        .await;
                }
                return Err(review::ReviewError::WrongState {
                    state: before.state(),
                    action: "previewed (it changed while its preview was being prepared; \
                             nothing was sent)",
                }
                .into());
            }
            if made {
                let composed = match before.message_id {
                    Some(message) if before.is_message_headline() => {
                        crate::store::messages::articles(&mut *tx, message).await?
                    }
                    _ => vec![before.clone()],
                };
                // A recompose meanwhile: previewed as it stood, its draft deleted after.
                if same_articles(&rows, &composed) {
                    match before.media_id {
                        None => {
                            store::set_media_id(&mut *tx, id, &media_id).await?;
                            owned = false;
                        }
                        Some(winner) if winner != media_id => {
                            lost = Some(std::mem::replace(&mut media_id, winner));
                            owned = false;
                        }
                        Some(_) => owned = false,
                    }
                }
            }
            tx.commit().await?;
        }
        if let Some(mine) = lost {
            self.delete_unkept_draft(&row, &mine, "made by a preview, another's kept meanwhile")
                .await;
        }
        let previewed = self.publisher.preview(&row, &media_id, openids).await;
        let sent = previewed.sent;
        let maybe = matches!(previewed.stopped, Some(SendError::OutcomeUnknown(_)));
        // What reached followers' phones is audited, whatever stopped the rest.
        let comment = (sent > 0 || maybe).then(|| match &previewed.stopped {
            None => format!("{sent} follower(s)"),
            Some(_) if maybe => format!(
                "{sent} of {} follower(s), and perhaps the next: WeChat's answer was lost",
                openids.len()
            ),
            Some(_) => format!(
                "{sent} of {} follower(s): stopped at {}",
                openids.len(),
                openids[sent]
            ),
        });
        // The answer (who got the preview) is settled before the bookkeeping and
        // stands if that fails: answered INTERNAL, the caller learnt nothing of the
        // previews on followers' phones, and a retry of the same list sent each of
        // them a second.
        let answer = match previewed.stopped {
            None => Ok(sent),
            Some(error) => Err(preview_stopped(openids, sent, error)),
        };
        let noted = self
            .note_preview(who, &row, &rows, &media_id, owned, comment.as_deref())
            .await;
        match noted {
            // A draft kept onto the article is the article's now: whatever forgot it
            // meanwhile (a return, a recompose) deleted it.
            Ok(kept) => {
                if owned && !kept {
                    self.delete_unkept_draft(
                        &row,
                        &media_id,
                        "made by a preview, kept by no article",
                    )
                    .await;
                }
            }
            // The draft is left as it is: the commit may have kept it onto the
            // article before its answer was lost, and a kept draft deleted would fail
            // every later send.
            Err(error) => {
                tracing::warn!(
                    article = %id,
                    %error,
                    sent,
                    actor = %who.actor.id,
                    audit = comment.as_deref().unwrap_or(""),
                    draft = %media_id,
                    "a preview went out but was not recorded: its audit row is missing, and \
                     a draft it made may be kept by no article"
                );
                metrics::counter!("content_preview_unrecorded_total").increment(1);
            }
        }
        answer
    }

    /// Records a preview of `row` (made of `rows`) that went out with the draft
    /// `media_id`: the draft is kept for the send if the article can still use it,
    /// and what reached followers (`comment`; none when nobody was reached) is
    /// audited. Returns whether the article keeps the draft.
    async fn note_preview(
        &self,
        who: &Who,
        row: &ArticleRow,
        rows: &[ArticleRow],
        media_id: &str,
        owned: bool,
        comment: Option<&str>,
    ) -> Result<bool, AppError> {
        let id = row.id;
        let mut tx = self.db.begin().await?;
        // The draft is kept for the send only if it is still the message: a
        // recompose while WeChat made it forgot the old draft, and keeping this one
        // would send the old composition. Locked, so a recompose waits or has won.
        let now = store::lock(&mut tx, id).await?.ok_or(AppError::NotFound)?;
        // Nor once the article has left the states a send reuses a draft from: a
        // return meanwhile forgot the draft (the version approved goes back to its
        // editor), and a send started meanwhile makes its own.
        let sendable = matches!(
            now.state(),
            ArticleState::Approved | ArticleState::Scheduled
        );
        let composed = match now.message_id {
            Some(message) if now.is_message_headline() => {
                crate::store::messages::articles(&mut *tx, message).await?
            }
            _ => vec![now.clone()],
        };
        // Nor over another draft: one kept meanwhile (a preview of the article by
        // someone else) stays, and a reused draft the article no longer keeps was
        // forgotten (and deleted) by whatever changed it. Kept when the preview
        // stopped part-way too: the draft is as good, and a preview to the rest reuses
        // it.
        let kept = sendable
            && same_articles(rows, &composed)
            && match now.media_id.as_deref() {
                None => owned,
                Some(kept) => kept == media_id,
            };
        if kept && now.media_id.is_none() {
            store::set_media_id(&mut *tx, id, media_id).await?;
        } else if !kept {
            tracing::info!(article = %id, state = %now.state(), "article returned, sent or recomposed during its preview, or another draft kept meanwhile; its draft is not kept");
        }
        if let Some(comment) = comment {
            store::audit(
                &mut tx,
                &Audit {
                    article_id: id,
                    action: "preview",
                    from: row.state(),
                    to: row.state(),
                    actor: &who.actor.id,
                    role: &who.role_name(),
                    version: row.version,
                    stage: None,
                    comment,
                },
            )
            .await?;
        }
        tx.commit().await?;
        Ok(kept)
    }

    /// Before a mass send: the account's ledger is locked, checked against WeChat's
    /// quota and the send reserved, in the transaction that moves the article to
    /// publishing (or, for a scheduled send, just before the call); a refusal never
    /// reaches WeChat.
    ///
    /// Under a send `token` (a scheduled send's), whether the article is still in
    /// that send is asked once the ledger is locked: a send stalled at the lock may
    /// have been given up by the stuck-send sweep meanwhile, and a failed article
    /// must not take a quota slot. `Ok(false)`: it left the send, nothing reserved.
    async fn reserve_quota(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        row: &ArticleRow,
        token: Option<i64>,
    ) -> Result<bool, AppError> {
        if row.channel != "mass_send" {
            return Ok(true);
        }
        let kind = self.publisher.kind(&row.account).ok_or_else(|| {
            AppError::Invalid(format!(
                "account {} has no WeChat API credentials",
                row.account
            ))
        })?;
        ledger::lock_ledger(tx, &row.account).await?;
        if let Some(token) = token
            && !store::under_send(&mut **tx, row.id, row.version, token).await?
        {
            return Ok(false);
        }
        if ledger::is_reserved(tx, row.id).await? {
            // A retry of this send (its send generation), which already counted.
            return Ok(true);
        }
        let now = Utc::now();
        let sent =
            ledger::sends_since(&mut **tx, &row.account, now - chrono::Duration::days(32)).await?;
        quota::check_mass_send(kind, &sent, now)?;
        ledger::reserve(tx, &row.account, row.id).await?;
        Ok(true)
    }

    /// The mass-send quota of an account: (kind, used, limit, next possible send).
    pub async fn quota_status(
        &self,
        who: &Who,
        account: &str,
    ) -> Result<(quota::AccountKind, u32, u32, Option<DateTime<Utc>>), AppError> {
        if !who.accounts.contains(account) {
            return Err(AppError::NotFound);
        }
        let kind = self.publisher.kind(account).ok_or(AppError::NotFound)?;
        let now = Utc::now();
        let sent = ledger::sends_since(&self.db, account, now - chrono::Duration::days(32)).await?;
        let limit = match kind {
            quota::AccountKind::Subscription => 1,
            quota::AccountKind::Service => 4,
        };
        Ok(match quota::check_mass_send(kind, &sent, now) {
            Ok(()) => {
                // Count what the current period holds: one check per possible use.
                let mut remaining = 0u32;
                let mut probe = sent.clone();
                while remaining < limit && quota::check_mass_send(kind, &probe, now).is_ok() {
                    probe.push(now);
                    remaining += 1;
                }
                (kind, limit - remaining, limit, None)
            }
            Err(QuotaExhausted { next_at, .. }) => (kind, limit, limit, Some(next_at)),
        })
    }

    /// WeChat's per-minute limit for an account: per API called in the last minute,
    /// (api, calls, when the next is possible if none is now).
    pub async fn call_rates(
        &self,
        who: &Who,
        account: &str,
    ) -> Result<Vec<(String, usize, Option<DateTime<Utc>>)>, AppError> {
        if !who.accounts.contains(account) {
            return Err(AppError::NotFound);
        }
        let now = Utc::now();
        let usage =
            crate::store::api_calls::usage(&self.db, account, now - chrono::Duration::seconds(60))
                .await?;
        Ok(usage
            .into_iter()
            .map(|(api, calls)| {
                let next = quota::check_rate(quota::CALLS_PER_MINUTE, &calls, 1, now)
                    .err()
                    .map(|(_, at)| at);
                (api, calls.len(), next)
            })
            .collect())
    }

    #[allow(clippy::too_many_arguments)]
    async fn apply(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        row: &ArticleRow,
        action: &Action,
        decision: Decision,
        actor: &str,
        role: &str,
        comment: &str,
        at: Option<DateTime<Utc>>,
        linked: Option<Uuid>,
    ) -> Result<(), AppError> {
        store::set_state(tx, row.id, decision.next, *action == Action::Submit).await?;
        store::audit(
            tx,
            &Audit {
                article_id: row.id,
                action: action_name(action),
                from: row.state(),
                to: decision.next,
                actor,
                role,
                version: row.version,
                stage: decision.stage,
                comment,
            },
        )
        .await?;
        let transition = match (action, decision.stage) {
            (Action::Submit, _) => Some(ev::ArticleTransition::Submitted),
            (Action::Withdraw, _) => Some(ev::ArticleTransition::Withdrawn),
            (Action::Approve, Some(ReviewStage::Final)) => Some(ev::ArticleTransition::Approved),
            (Action::Approve, _) => Some(ev::ArticleTransition::Reviewed),
            (Action::Reject, _) => Some(ev::ArticleTransition::Rejected),
            // Not a rejection: the article had passed its three reviews, and a
            // consumer counting rejections per stage must not count it.
            (Action::Return, _) => Some(ev::ArticleTransition::Returned),
            (Action::Schedule | Action::CancelSchedule, _) => {
                Some(ev::ArticleTransition::Scheduled)
            }
            (Action::Confirm | Action::RecordPublished, _) => {
                Some(ev::ArticleTransition::Published)
            }
            (Action::Fail, _) => Some(ev::ArticleTransition::Failed),
            (Action::Retract, _) => Some(ev::ArticleTransition::Retracted),
            (Action::Correct, _) => Some(ev::ArticleTransition::Corrected),
            (Action::Publish, _) => None,
        };
        if let Some(transition) = transition {
            let mut event = event_of(row, transition, actor);
            event.stage = match decision.stage {
                Some(ReviewStage::First) => ev::ReviewStage::First,
                Some(ReviewStage::Second) => ev::ReviewStage::Second,
                Some(ReviewStage::Final) => ev::ReviewStage::Final,
                None => ev::ReviewStage::Unspecified,
            } as i32;
            event.reason = comment.to_owned();
            if *action == Action::Schedule {
                event.scheduled_for = at.map(timestamp);
            }
            if let Some(linked) = linked {
                event.correction_of = linked.to_string();
            }
            if *action == Action::Retract {
                event.message_index = message_index(row);
            }
            announce(tx, &self.segmenter, row, event, &Uuid::now_v7().to_string()).await?;
        }
        Ok(())
    }

    /// Takes an article being returned for revision out of its message. The others
    /// stay approved (or failed) and close up in their order, the next one the
    /// headline if the headline is returned; the message's WeChat draft is forgotten,
    /// and its schedule cancelled (a mass send's reservation given back), so nothing
    /// goes out that the publisher did not compose: they recompose it (the revised
    /// article back in once approved again) or send it as it now is. A message left
    /// empty is deleted. Not once its headline is with WeChat or sent.
    ///
    /// Returns the drafts the others forgot (the message's, kept on its headline),
    /// for the caller to delete from WeChat once committed; not one whose send may
    /// have gone out (`send_outcome_unknown`): that stays in WeChat's box, named in
    /// a warn line, for whoever settles the send.
    async fn take_out_of_message(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        who: &Who,
        row: &ArticleRow,
        message: Uuid,
    ) -> Result<Vec<(Uuid, String)>, AppError> {
        let members = messages::articles(&mut **tx, message).await?;
        if let Some(head) = members.first().filter(|h| h.message_position == Some(1))
            && !matches!(
                head.state(),
                ArticleState::Approved | ArticleState::Scheduled | ArticleState::Failed
            )
        {
            return Err(AppError::MessageGoingOut {
                message: message.to_string(),
                headline: head.id.to_string(),
                state: head.state(),
            });
        }
        let total = members.len();
        let head_unknown = members
            .first()
            .is_some_and(|h| h.message_position == Some(1) && h.send_outcome_unknown);
        messages::take_out(tx, row.id).await?;
        audit_in_place(
            tx,
            who,
            row,
            "compose",
            &format!(
                "taken out of message {message} (article {} of {total}) to be revised",
                row.message_position.unwrap_or_default()
            ),
        )
        .await?;
        if head_unknown && row.message_position != Some(1) {
            // The flag is read on the headline, but WeChat may have the whole message,
            // this article among it: sent again alone (its own clientmsgid, or a new
            // free publication), it needs the same confirmation.
            store::set_send_outcome_unknown(&mut **tx, row.id, true).await?;
        }
        let rest: Vec<ArticleRow> = members.into_iter().filter(|m| m.id != row.id).collect();
        if rest.is_empty() {
            messages::delete(tx, message).await?;
            return Ok(Vec::new());
        }
        if row.message_position == Some(1) && row.send_outcome_unknown {
            // The flag guards a send again and is read on the headline only: WeChat may
            // have the whole message, so the next headline needs the same confirmation.
            store::set_send_outcome_unknown(&mut **tx, rest[0].id, true).await?;
        }
        let mut forgotten = Vec::new();
        for (i, member) in rest.iter().enumerate() {
            let position = i as i16 + 1;
            // In order, each into the place just freed: (message, position) is unique.
            if let Some(draft) = messages::place(tx, member.id, message, position).await? {
                if member.send_outcome_unknown {
                    tracing::warn!(article = %member.id, media_id = %draft, "its message's article was returned with its send's outcome unknown: the message's WeChat draft is kept, not deleted");
                } else {
                    forgotten.push((member.id, draft));
                }
            }
            audit_in_place(
                tx,
                who,
                member,
                "compose",
                &format!(
                    "article {position} of {} in message {message}: article {} was \
                     returned for revision and taken out",
                    rest.len(),
                    row.id
                ),
            )
            .await?;
            if member.state() == ArticleState::Scheduled {
                store::set_schedule(tx, member.id, None).await?;
                ledger::release(&mut **tx, member.id).await?;
                self.apply(
                    tx,
                    member,
                    &Action::CancelSchedule,
                    Decision {
                        next: ArticleState::Approved,
                        stage: None,
                    },
                    &who.actor.id,
                    &who.role_name(),
                    &format!(
                        "the message's article {} was returned for revision: recompose \
                         the message and schedule it again",
                        row.id
                    ),
                    None,
                    None,
                )
                .await?;
            }
        }
        Ok(forgotten)
    }

    async fn lock_visible(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        who: &Who,
        id: Uuid,
    ) -> Result<ArticleRow, AppError> {
        let row = store::lock(tx, id).await?.ok_or(AppError::NotFound)?;
        if !who.sees(&row) {
            return Err(AppError::NotFound);
        }
        Ok(row)
    }

    /// Hands an article in `publishing` to WeChat and records the job; a transient
    /// failure puts it back on the schedule with backoff, a permanent one fails it
    /// with WeChat's error (and gives back a mass-send reservation).
    /// It is the send the article is under now (its `send_token`); the scheduler
    /// and a publish name theirs ([`Articles::send_under`]).
    pub async fn send(&self, id: Uuid) -> Result<(), AppError> {
        self.send_under(id, None).await
    }

    /// [`Articles::send`] of the send `token` began (a claim's, a publish's): one
    /// the article has left since (cancelled, or given up by the stuck-send sweep
    /// and perhaps published again: another token) is not made.
    async fn send_under(&self, id: Uuid, token: Option<i64>) -> Result<(), AppError> {
        let row = store::get(&self.db, id).await?.ok_or(AppError::NotFound)?;
        match token {
            Some(token) if row.send_token != token || row.state() != ArticleState::Publishing => {
                return self.left_send(&row, token, None).await;
            }
            _ if row.state() != ArticleState::Publishing => return Ok(()),
            _ => {}
        }
        let token = row.send_token;
        // Screened again as it goes: a word may have joined the lexicon since the
        // article was scheduled (or since its last attempt).
        let rows = self.message_rows(&row).await?;
        let screener = self.lexicon.screener().await?;
        let screened =
            Self::refuse_open_hits(&mut *self.db.acquire().await?, &screener, &rows).await;
        if let Err(AppError::Review(refused)) = screened {
            tracing::warn!(article = %id, %refused, "send held back by the lexicon");
            return self
                .fail_send(&row, token, refused.to_string(), Failing::Release)
                .await;
        }
        screened?;
        // A scheduled mass send meets the quota here (publish-now reserved already).
        let mut tx = self.db.begin().await?;
        match self.reserve_quota(&mut tx, &row, Some(token)).await {
            Ok(true) => tx.commit().await?,
            Ok(false) => {
                drop(tx);
                return self.left_send(&row, token, None).await;
            }
            Err(AppError::Database(error)) => return Err(error.into()),
            // The quota, or an account without credentials: nothing to retry.
            Err(refused) => {
                drop(tx);
                tracing::warn!(article = %id, %refused, "scheduled mass send refused before calling wechat");
                return self
                    .fail_send(&row, token, refused.to_string(), Failing::Plain)
                    .await;
            }
        }
        if !self.members_follow(&row, token, &rows[1..]).await? {
            return self.left_send(&row, token, None).await;
        }
        let sent = match self.media.drafts(&rows).await {
            Ok(drafts) => {
                let sent: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
                self.hand_over(&row, token, &sent, &drafts).await
            }
            Err(error) => Err(error),
        };
        // The quota WeChat may have counted stays counted, even if the send is
        // cancelled or fails for good later.
        // A mass send that may have reached WeChat goes again only after WeChat's
        // minute for a repeated clientmsgid (45066 within it would tell nothing).
        let (sent, not_before) = match sent {
            Err(SendError::AnswerLost(reason)) => {
                // The reservation of this generation (its clientmsgid) stays counted
                // whichever send of it WeChat may have taken.
                ledger::answer_lost(&self.db, id).await?;
                // Should its retries fail too, a send again may push it twice. Only
                // on the send still under way: one the article left since (below)
                // marks nothing over the next send's.
                store::mark_answer_lost(&self.db, id, row.version, token).await?;
                (
                    Err(SendError::Transient(reason)),
                    publishing::CLIENT_MSG_ID_WAIT,
                )
            }
            Err(SendError::RetryTooFast(reason)) => (
                Err(SendError::Transient(reason)),
                publishing::CLIENT_MSG_ID_WAIT,
            ),
            other => (other, Duration::ZERO),
        };
        // A failure of a send the article has left since (the stuck-send sweep gave it
        // up and it was published again) is not this article's any more: retried,
        // failed or its quota released, it would undo the next send's. Read without a
        // lock: the sweep waits PUBLISHING_STUCK_AFTER, not the few statements to the
        // writes below (retry_at checks again under its lock).
        if matches!(
            &sent,
            Err(error) if !matches!(error, SendError::Moved { .. } | SendError::Database(_))
        ) && !store::under_send(&self.db, id, row.version, token).await?
        {
            tracing::warn!(article = %id, send_token = token, error = ?sent.as_ref().err(), "send failed after its article left it (given up by the stuck-send sweep); its failure is not recorded over the next send");
            return Ok(());
        }
        match sent {
            Ok(handed) => {
                let recorded = store::set_sent_job(
                    &self.db,
                    id,
                    token,
                    Some(&handed.media_id),
                    handed.publish_id.as_deref(),
                    handed.mass_msg_id.as_deref(),
                    handed.msg_data_id.as_deref(),
                )
                .await?;
                if !recorded {
                    // Handed over, then the article left this send (the sweep gave it
                    // up after the ledger slot was taken): its job is not recorded
                    // over the next send's; the sweep's mark stands.
                    tracing::warn!(article = %id, send_token = token, publish_id = ?handed.publish_id, mass_msg_id = ?handed.mass_msg_id, "article handed to wechat by a send it had left meanwhile; job not recorded, its outcome stays unknown");
                    return Ok(());
                }
                tracing::info!(article = %id, publish_id = ?handed.publish_id, mass_msg_id = ?handed.mass_msg_id, "article handed to wechat");
                Ok(())
            }
            Err(SendError::Database(error)) => Err(error.into()),
            // Whatever moved it (a cancel, a return, the stuck-send sweep) settled its
            // state and quota.
            Err(SendError::Moved { draft }) => self.left_send(&row, token, draft).await,
            // WeChat was not called: back on the schedule for when the limit allows,
            // without using up an attempt.
            Err(SendError::RateLimited(limited)) => {
                tracing::warn!(article = %id, %limited, "send waits for wechat's per-minute limit");
                self.retry_at(&row, token, limited.next_at, &limited.to_string(), false)
                    .await
            }
            // WeChat already took a send under this `clientmsgid` (the retry's 45065)
            // and names its job: an attempt whose answer was lost, or the send of
            // unknown outcome a publisher confirmed sending again. Taken is not sent:
            // that job may yet fail (WeChat's review), so it is recorded as this
            // send's job and the article stays `publishing` for its verdict, the
            // MASSSENDJOBFINISH (redelivered: it found no article before) or the
            // reconciliation's `message/mass/get`, as for any send handed over.
            // The same job the article already failed under as outcome unknown, which a
            // publisher confirmed had not reached followers: its verdict said nothing
            // (an undocumented status, or WeChat no longer knew it), and waiting again
            // only fails it again a reconciliation period later, for a day. Failed at
            // once, still of unknown outcome, the job kept for a verdict still to come.
            // Whether the reconciliation asks about it stands as when the article
            // failed under it (`awaited_job` untouched): a verdict it had said nothing
            // (asked again, it says the same), one still awaited is asked about.
            Err(SendError::AlreadySent {
                msg_id: Some(msg_id),
            }) if store::confirmed_job(&self.db, id).await?.as_deref() == Some(msg_id.as_str()) => {
                tracing::warn!(article = %id, %msg_id, "confirmed mass send again met 45065 for the same job it already failed under as outcome unknown; failed at once, not waited for again");
                let reason = format!(
                    "WeChat still holds job {msg_id} under this send's clientmsgid (45065), \
                     the send already failed as outcome unknown: it cannot go again under \
                     that key until WeChat forgets it, 24 h after it was first sent. If it is \
                     in the account's sent messages, record it published (RecordPublished)"
                );
                // The job and the failure in one transaction: committed apart, the
                // article would show `publishing` holding the job in between, and the
                // job's callback landing then would record it from this line-up.
                let mut tx = self.db.begin().await?;
                // Before the job is written: the failure's articles, in their order.
                if !self.locked_under_send(&mut tx, &row, token).await? {
                    return Ok(());
                }
                store::set_job(&mut *tx, id, None, None, Some(&msg_id), None).await?;
                store::set_send_outcome_unknown(&mut *tx, id, true).await?;
                let event_id = Uuid::now_v7().to_string();
                self.finish_within(&mut tx, id, Outcome::Unknown(reason), &event_id, SCHEDULER)
                    .await?;
                tx.commit().await?;
                self.signal.notify();
                Ok(())
            }
            Err(SendError::AlreadySent {
                msg_id: Some(msg_id),
            }) => {
                let mut tx = self.db.begin().await?;
                if !self.locked_under_send(&mut tx, &row, token).await? {
                    return Ok(());
                }
                store::set_job(&mut *tx, id, None, None, Some(&msg_id), None).await?;
                store::audit(
                    &mut tx,
                    &Audit {
                        article_id: id,
                        action: "already_sent",
                        from: ArticleState::Publishing,
                        to: ArticleState::Publishing,
                        actor: WECHAT.0,
                        role: WECHAT.1,
                        version: row.version,
                        stage: None,
                        comment: &format!(
                            "WeChat already has this send from an earlier attempt (its \
                             clientmsgid refused as used, 45065): job {msg_id}, whose \
                             verdict decides whether it went out"
                        ),
                    },
                )
                .await?;
                tx.commit().await?;
                tracing::warn!(article = %id, %msg_id, "mass send already taken by wechat in an earlier attempt; waiting for that job's verdict");
                Ok(())
            }
            // Taken under this `clientmsgid` by a hand-over of the message as it stood
            // before an article was returned: WeChat's job is that message, not this
            // one, so neither its places nor who went out can be recorded from this
            // line-up. Failed as outcome unknown, for a publisher to settle by
            // RecordPublished, which announces the places as first sent. The job is
            // kept and its verdict awaited (`store::await_verdict`): no callback may
            // come for it (none came for the lost send), so the reconciliation asks
            // `message/mass/get`, and the verdict is applied as its late
            // MASSSENDJOBFINISH would be (`finish_message`: published only while the
            // message is still as that job took it; else noted for the publisher).
            Err(SendError::LineupChanged { msg_id }) => {
                let job = msg_id.as_deref().unwrap_or("not named");
                tracing::warn!(article = %id, job, "mass send already taken by wechat under this clientmsgid with the message as it stood before an article was returned; failed as outcome unknown for a publisher to settle");
                let reason = format!(
                    "WeChat already took this send's clientmsgid (45065, job {job}) with the \
                     message as it stood before an article was returned: it may have gone \
                     out so; check the account's sent messages and record it published \
                     (RecordPublished) if it is there (a send again meets the same answer \
                     while WeChat keeps the key, 24 h)"
                );
                // The job, its awaiting, the flag and the failure in one transaction:
                // committed apart, the article showed `publishing` holding the job in
                // between, and the job's callback landing then (redelivered: it found
                // no article before) recorded this line-up as published, the changed
                // message's check skipped, and the failure after it was ignored.
                let mut tx = self.db.begin().await?;
                // Before the job is written: the failure's articles, in their order.
                if !self.locked_under_send(&mut tx, &row, token).await? {
                    return Ok(());
                }
                if let Some(msg_id) = &msg_id {
                    store::set_job(&mut *tx, id, None, None, Some(msg_id), None).await?;
                    store::await_verdict(&mut *tx, id, msg_id).await?;
                }
                store::set_send_outcome_unknown(&mut *tx, id, true).await?;
                let event_id = Uuid::now_v7().to_string();
                self.finish_within(&mut tx, id, Outcome::Unknown(reason), &event_id, SCHEDULER)
                    .await?;
                tx.commit().await?;
                self.signal.notify();
                Ok(())
            }
            // Taken by an earlier attempt whose answer was lost, WeChat's answer not
            // naming the job: no verdict can be asked for or matched, so it is
            // published, its job id, URLs and counts unknown, and the quota it used
            // kept (should WeChat fail that job, its MASSSENDJOBFINISH is dropped as a
            // job no article holds, a warn line and GovwxJobFinishUnrecorded).
            Err(SendError::AlreadySent { msg_id: None }) => {
                tracing::warn!(article = %id, "mass send already taken by wechat in an earlier attempt, its job not named; recorded as published");
                let event_id = Uuid::now_v7().to_string();
                let mut tx = self.db.begin().await?;
                if !self.locked_under_send(&mut tx, &row, token).await? {
                    return Ok(());
                }
                self.finish_within(&mut tx, id, Outcome::AlreadySent, &event_id, WECHAT)
                    .await?;
                tx.commit().await?;
                self.signal.notify();
                Ok(())
            }
            // Submitted, perhaps: a second submit could publish it twice, so a
            // person decides, at once rather than when the stuck sweep would.
            Err(SendError::OutcomeUnknown(reason)) => {
                tracing::warn!(article = %id, %reason, "freepublish/submit's answer was lost; article failed, not submitted again");
                let reason = format!(
                    "WeChat's answer to the submission was lost ({reason}): it may have \
                     published the article; check the account's published list \
                     (mp.weixin.qq.com) before publishing it again, and record it as \
                     published (RecordPublished) with its URL if it is there"
                );
                self.fail_send(&row, token, reason, Failing::OutcomeUnknown)
                    .await
            }
            Err(SendError::Transient(reason)) if row.attempts < MAX_ATTEMPTS => {
                let backoff = Duration::from_secs(5u64 << row.attempts.clamp(0, 6)).max(not_before);
                tracing::warn!(article = %id, %reason, attempts = row.attempts, "send failed transiently; retrying later");
                let at = Utc::now() + chrono::Duration::from_std(backoff).unwrap_or_default();
                self.retry_at(&row, token, at, &reason, true).await
            }
            Err(error) => {
                let reason = match error {
                    SendError::Transient(r) => {
                        format!("gave up after {} attempts: {r}", row.attempts)
                    }
                    SendError::Permanent(r) => r,
                    other => other.to_string(),
                };
                tracing::warn!(article = %id, %reason, "send failed for good");
                self.fail_send(&row, token, reason, Failing::Release).await
            }
        }
    }

    /// Ends send `token` of `row`, which found the article had left it (cancelled,
    /// returned, or failed by the stuck-send sweep and perhaps published again)
    /// before it handed anything to WeChat. Whatever moved it settled its state and
    /// quota; what this send alone knows is settled here. A warn line, as the
    /// article's next send or the sweep's verdict may read otherwise. The sweep's
    /// mark that it may have gone out is false: cleared, when no other send has
    /// begun and nothing else had marked it (`store::clear_swept_mark`), with a
    /// trail row. `draft`, made by this send and kept by no article, is deleted
    /// from WeChat's draft box, best effort, no transaction open.
    async fn left_send(
        &self,
        row: &ArticleRow,
        token: i64,
        draft: Option<String>,
    ) -> Result<(), AppError> {
        tracing::warn!(
            article = %row.id,
            account = %row.account,
            send_token = token,
            "article left publishing while it was being sent (cancelled, returned, or given \
             up by the stuck-send sweep and perhaps published again); not sent"
        );
        let mut tx = self.db.begin().await?;
        if store::clear_swept_mark(&mut *tx, row.id, token).await? {
            let now = store::get(&mut *tx, row.id)
                .await?
                .ok_or(AppError::NotFound)?;
            store::audit(
                &mut tx,
                &Audit {
                    article_id: row.id,
                    action: "send_not_made",
                    from: now.state(),
                    to: now.state(),
                    actor: SCHEDULER.0,
                    role: SCHEDULER.1,
                    version: now.version,
                    stage: None,
                    comment: "the send the stuck-send sweep gave up as of unknown outcome \
                              never reached WeChat (the article had left it when it came to \
                              hand it over): nothing went out, so publishing it again needs \
                              no confirmation",
                },
            )
            .await?;
            tracing::warn!(article = %row.id, "the send failed as of unknown outcome never reached wechat; its mark cleared");
        }
        tx.commit().await?;
        if let Some(draft) = draft {
            self.delete_unkept_draft(row, &draft, "left by its send")
                .await;
        }
        Ok(())
    }

    /// Deletes `draft`, a WeChat draft of `row` no article keeps any more (`why`),
    /// from the account's draft box: best effort, outside any transaction, a warn
    /// line and `content_wechat_draft_delete_failures_total` if it cannot (it stays
    /// there, for someone to delete in WeChat's console). One already gone counts as
    /// deleted ([`Publisher::delete_draft`]).
    async fn delete_unkept_draft(&self, row: &ArticleRow, draft: &str, why: &str) {
        self.delete_forgotten_draft(&row.account, row.id, draft, why)
            .await;
    }

    /// [`Articles::delete_unkept_draft`] for `draft` of `article` on `account`.
    pub(crate) async fn delete_forgotten_draft(
        &self,
        account: &str,
        article: Uuid,
        draft: &str,
        why: &str,
    ) {
        match self.publisher.delete_draft(account, draft).await {
            Ok(()) => {
                tracing::info!(%article, media_id = %draft, why, "wechat draft no article keeps deleted")
            }
            Err(error) => {
                metrics::counter!("content_wechat_draft_delete_failures_total").increment(1);
                tracing::warn!(
                    %article,
                    %account,
                    media_id = %draft,
                    why,
                    %error,
                    "cannot delete a wechat draft no article keeps; it stays in the account's \
                     draft box"
                )
            }
        }
    }

    /// Fails send `token` of `row`, which did not (or may not) reach WeChat, with
    /// `reason`; `how` says what else the failure writes. Only while the article is
    /// still under that send, checked under its lock: a send the stuck-send sweep
    /// gave up, whose failure lands after the publisher published again, would
    /// fail the next send (or give back its reservation).
    async fn fail_send(
        &self,
        row: &ArticleRow,
        token: i64,
        reason: String,
        how: Failing,
    ) -> Result<(), AppError> {
        let mut tx = self.db.begin().await?;
        if !self.locked_under_send(&mut tx, row, token).await? {
            return Ok(());
        }
        match how {
            Failing::Plain => {}
            Failing::Release => ledger::release(&mut *tx, row.id).await?,
            Failing::OutcomeUnknown => {
                store::set_send_outcome_unknown(&mut *tx, row.id, true).await?
            }
        }
        let event_id = Uuid::now_v7().to_string();
        self.finish_within(
            &mut tx,
            row.id,
            Outcome::Failed(reason),
            &event_id,
            SCHEDULER,
        )
        .await?;
        tx.commit().await?;
        self.signal.notify();
        Ok(())
    }

    /// Locks the articles of `row`'s job (as [`Self::finish_within`] does, which
    /// locks them again) and tells whether the article is still under send `token`,
    /// with a warn line when it is not: the outcome of a send the article left
    /// (the stuck-send sweep gave it up, and perhaps it was published again) is
    /// not recorded over the next send's.
    async fn locked_under_send(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        row: &ArticleRow,
        token: i64,
    ) -> Result<bool, AppError> {
        store::lock_job_articles(tx, row.id).await?;
        let under = store::under_send(&mut **tx, row.id, row.version, token).await?;
        if !under {
            tracing::warn!(
                article = %row.id,
                send_token = token,
                "the outcome of a send came after its article left it (given up by the \
                 stuck-send sweep, perhaps published again); not recorded over the next send"
            );
        }
        Ok(under)
    }

    /// Makes the draft and hands it to WeChat. The draft's media id is kept as soon
    /// as WeChat gives it, so a retry (or a publish after a failure) reuses it.
    /// Each article's place in what is sent (`sent`, headline first) is recorded
    /// just before the send call: WeChat's verdict, its URLs and the datacube count
    /// from it, whatever becomes of the message later (a member returned after a send
    /// of unknown outcome moves the others up). A mass send records them once per
    /// `clientmsgid` (`store::hand_over_lineup`): a 45065 names the job of the key's
    /// first hand-over, and one for a line-up changed since is
    /// [`SendError::LineupChanged`].
    async fn hand_over(
        &self,
        row: &ArticleRow,
        token: i64,
        sent: &[Uuid],
        drafts: &[wechat::api::publish::DraftArticle],
    ) -> Result<publishing::Handed, SendError> {
        let media_id = self.publisher.make_draft(row, drafts).await?;
        if row.media_id.as_deref() != Some(media_id.as_str())
            && !store::keep_sent_draft(&self.db, row.id, row.version, token, &media_id).await?
        {
            return Err(SendError::Moved {
                draft: Some(media_id),
            });
        }
        // A mass send's key: a retry (lost answer) or a confirmed send again reuses it,
        // and its 45065 names the job of the line-up the key was first handed over with.
        let key = (row.channel == "mass_send").then(|| client_msg_id(row.id, row.send_generation));
        let lineup = store::hand_over_lineup(&self.db, sent, key.as_deref()).await?;
        // A reused draft (a preview's, an earlier attempt's) wrote nothing above that
        // would notice a cancel or return since the row was read.
        if !store::still_publishing(&self.db, row.id, row.version, token).await? {
            if let (store::Lineup::Fresh, Some(key)) = (&lineup, key.as_deref()) {
                store::release_lineup(&self.db, key).await?;
            }
            // Its draft, if this send made it, is kept on the article for the next
            // send (the publish again under way may be reusing it): not deleted.
            return Err(SendError::Moved { draft: None });
        }
        // The token is checked again once the call's ledger slot is held.
        let handed = self.publisher.send(row, token, &media_id).await;
        match (&handed, lineup, key.as_deref()) {
            // A new job under the key: no earlier hand-over reached WeChat with it.
            (Ok(_), store::Lineup::Changed, _) => {
                store::record_lineup(&self.db, sent, key.as_deref()).await?;
            }
            (Err(SendError::AlreadySent { msg_id }), store::Lineup::Changed, _) => {
                return Err(SendError::LineupChanged {
                    msg_id: msg_id.clone(),
                });
            }
            // WeChat answered the key's first send without taking it.
            (
                Err(SendError::Transient(_) | SendError::Permanent(_) | SendError::RateLimited(_)),
                store::Lineup::Fresh,
                Some(key),
            ) => store::release_lineup(&self.db, key).await?,
            _ => {}
        }
        handed
    }

    /// Puts a send back on the schedule for `at` (`counted`: the attempt stands).
    /// The other articles of its message go back to `approved` while it waits: left
    /// in `publishing`, they made the headline impossible to cancel, reschedule or
    /// publish now (its members must be ready), and the next attempt takes them again.
    /// Only while the article is still under send `token`: one it left meanwhile
    /// (the stuck-send sweep gave it up and it was published again) would put the
    /// next send's article back on the schedule.
    async fn retry_at(
        &self,
        head: &ArticleRow,
        token: i64,
        at: DateTime<Utc>,
        reason: &str,
        counted: bool,
    ) -> Result<(), AppError> {
        let mut tx = self.db.begin().await?;
        // The headline and its message's articles, in id order, before the headline
        // is written (`move_members` locks them again).
        store::lock_job_articles(&mut tx, head.id).await?;
        if !store::under_send(&mut *tx, head.id, head.version, token).await? {
            tracing::warn!(article = %head.id, send_token = token, %reason, "send to retry was left by its article meanwhile; not put back on the schedule");
            return Ok(());
        }
        sqlx::query(
            "UPDATE articles SET scheduled_for = coalesce(scheduled_for, now()),
                attempts = CASE WHEN $2 THEN attempts ELSE greatest(attempts - 1, 0) END
              WHERE id = $1",
        )
        .bind(head.id)
        .bind(counted)
        .execute(&mut *tx)
        .await?;
        if let Some(message) = head.message_id.filter(|_| head.is_message_headline()) {
            let mut members = crate::store::messages::articles(&mut *tx, message).await?;
            members.retain(|member| member.id != head.id);
            move_members(
                &mut tx,
                &members,
                &[ArticleState::Publishing],
                ArticleState::Approved,
                &format!(
                    "back with the message's headline {}, which waits to retry: {reason}",
                    head.id
                ),
            )
            .await?;
        }
        if store::retry_later(&mut *tx, head.id, at, reason).await? {
            let attempts = if counted {
                head.attempts
            } else {
                (head.attempts - 1).max(0)
            };
            store::audit(
                &mut tx,
                &Audit {
                    article_id: head.id,
                    action: "retry",
                    from: ArticleState::Publishing,
                    to: ArticleState::Scheduled,
                    actor: SCHEDULER.0,
                    role: SCHEDULER.1,
                    version: head.version,
                    stage: None,
                    comment: &review::retry_comment(reason, at, counted, attempts, MAX_ATTEMPTS),
                },
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The articles that go out with `head`: itself, then the rest of its message.
    async fn message_rows(&self, head: &ArticleRow) -> Result<Vec<ArticleRow>, AppError> {
        match head.message_id {
            Some(message) if head.is_message_headline() => {
                Ok(crate::store::messages::articles(&self.db, message).await?)
            }
            _ => Ok(vec![head.clone()]),
        }
    }

    /// Moves the other articles of a message to publishing with their headline
    /// (audited; the `published` or `failed` events follow WeChat's verdict).
    ///
    /// Only while the headline is still in send `token`: one the stuck-send sweep
    /// gave up meanwhile (failed, perhaps published again) would leave its members
    /// in publishing for good, the sweep passing over them. `Ok(false)`: the
    /// headline left the send; nothing moved.
    async fn members_follow(
        &self,
        head: &ArticleRow,
        token: i64,
        members: &[ArticleRow],
    ) -> Result<bool, AppError> {
        if members.is_empty() {
            return Ok(true);
        }
        let mut tx = self.db.begin().await?;
        store::lock_job_articles(&mut tx, head.id).await?;
        if !store::under_send(&mut *tx, head.id, head.version, token).await? {
            return Ok(false);
        }
        move_members(
            &mut tx,
            members,
            &[ArticleState::Approved, ArticleState::Failed],
            ArticleState::Publishing,
            &format!("with the message's headline {}", head.id),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Claims due scheduled articles and sends each (the scheduler's tick); returns
    /// how many it claimed.
    pub async fn send_due(&self, limit: i64) -> Result<usize, AppError> {
        self.send_due_unless(limit, || false).await
    }

    /// [`Articles::send_due`] until `stopping` says so (the drain began): checked
    /// before the claim, which then claims nothing, and before each send. The
    /// articles claimed but not yet sent when it does go back to `scheduled`
    /// ([`Articles::release_claims`]), so another replica, or this one's next start,
    /// sends them: cut off by the shutdown grace mid-batch they would be failed as
    /// outcome unknown, for a person to check each, though WeChat never saw them. A
    /// send already begun is finished, or left to the stuck sweep if the grace cuts
    /// it off. Returns how many it claimed.
    pub async fn send_due_unless(
        &self,
        limit: i64,
        stopping: impl Fn() -> bool,
    ) -> Result<usize, AppError> {
        if stopping() {
            return Ok(0);
        }
        // The claim and its audit rows commit before WeChat is called: the trail says
        // when the scheduler took it and which attempt it was.
        let mut tx = self.db.begin().await?;
        let claimed = store::claim_due(&mut tx, limit).await?;
        for claim in &claimed {
            store::audit(
                &mut tx,
                &Audit {
                    article_id: claim.id,
                    action: "claim",
                    from: ArticleState::Scheduled,
                    to: ArticleState::Publishing,
                    actor: SCHEDULER.0,
                    role: SCHEDULER.1,
                    version: claim.version,
                    stage: None,
                    comment: &review::claim_comment(
                        claim.scheduled_for,
                        claim.next_attempt_at,
                        claim.attempts,
                        MAX_ATTEMPTS,
                    ),
                },
            )
            .await?;
        }
        tx.commit().await?;
        for (sent, Claimed { id, send_token, .. }) in claimed.iter().enumerate() {
            if stopping() {
                self.release_claims(&claimed[sent..]).await?;
                break;
            }
            // Under the claim's token: one the sweep gave up while the sends before
            // it ran (and perhaps published again since) is not sent.
            if let Err(error) = self.send_under(*id, Some(*send_token)).await {
                tracing::error!(article = %id, %error, "scheduled send failed");
            }
        }
        Ok(claimed.len())
    }

    /// Puts claimed articles whose send has not begun back on the schedule, with an
    /// audit row each, in a transaction of its own (no WeChat call in it).
    async fn release_claims(&self, claims: &[Claimed]) -> Result<(), AppError> {
        let ids: Vec<Uuid> = claims.iter().map(|claim| claim.id).collect();
        let mut tx = self.db.begin().await?;
        let released = store::release_claimed(&mut tx, &ids).await?;
        for (id, version) in &released {
            store::audit(
                &mut tx,
                &Audit {
                    article_id: *id,
                    action: "release",
                    from: ArticleState::Publishing,
                    to: ArticleState::Scheduled,
                    actor: SCHEDULER.0,
                    role: SCHEDULER.1,
                    version: *version,
                    stage: None,
                    comment: "the service is stopping before this article's send began: \
                              back on the schedule, no attempt used",
                },
            )
            .await?;
        }
        tx.commit().await?;
        tracing::info!(
            released = released.len(),
            "service stopping; claimed articles not yet sent put back on the schedule"
        );
        Ok(())
    }

    /// Fails articles whose send's outcome is unknown: in `publishing` for longer
    /// than `after` with no WeChat job recorded (the caller of a publish-now went
    /// away mid-send, the replica stopped after its claim, or the job id could not be
    /// saved). None is sent again: WeChat may have taken it, and a mass send pushed
    /// twice is worse than one article waiting for a person. Each goes through the
    /// failed send's path (state, audit, `failed` event, its message along); a
    /// mass send's quota reservation stays, as WeChat may have counted it. Each row
    /// is failed by one replica; returns how many were failed here.
    ///
    /// Every one found is tried once, `batch` at a time in id order, each batch
    /// after the last one seen: one that cannot be failed (its transaction failing
    /// every time) is passed, not found again at the head of every batch, where it
    /// left one fewer for the rest each time, and where a batch of them failing
    /// none ended the sweep with others waiting behind them. An error is logged and
    /// the rest still swept; the first is returned after them.
    pub async fn fail_unknown_sends(&self, after: Duration, batch: i64) -> Result<usize, AppError> {
        // Found without a lock, then each failed in a transaction of its own that
        // takes its message row and articles in the one order first: a batch held
        // FOR UPDATE (then written twice, the second write waiting for its message
        // row) deadlocked with a ComposeMessage or DissolveMessage holding that row
        // and waiting for the headline.
        let reason = format!(
            "the send's outcome is unknown: no WeChat job was recorded within {}; check \
             the account's WeChat console (mp.weixin.qq.com) for this article before \
             publishing it again, and record it as published (RecordPublished) if it \
             went out",
            humantime::format_duration(after)
        );
        let batch = batch.max(1);
        let mut failed = 0;
        let mut outcome = Ok(());
        let mut seen = None;
        loop {
            let stuck = match store::stuck(&self.db, after, seen, batch).await {
                Ok(stuck) => stuck,
                Err(error) => {
                    outcome = outcome.and(Err(error.into()));
                    break;
                }
            };
            for &id in &stuck {
                match self.fail_unknown_send(id, after, &reason).await {
                    Ok(true) => failed += 1,
                    Ok(false) => {}
                    Err(error) => {
                        tracing::warn!(article = %id, %error, "a send of unknown outcome could not be failed");
                        outcome = outcome.and(Err(error));
                    }
                }
            }
            seen = stuck.last().copied();
            // Short of a batch: none left after the last one seen.
            if (stuck.len() as i64) < batch {
                break;
            }
        }
        // Those committed are announced even if another one failed.
        if failed > 0 {
            self.signal.notify();
        }
        outcome.map(|()| failed)
    }

    /// Fails article `id` as a send of unknown outcome if, locked, it still is one
    /// (another replica's sweep, a verdict or a publisher may have settled it since
    /// it was found); returns whether it did.
    async fn fail_unknown_send(
        &self,
        id: Uuid,
        after: Duration,
        reason: &str,
    ) -> Result<bool, AppError> {
        let mut tx = self.db.begin().await?;
        store::lock_job_articles(&mut tx, id).await?;
        let Some(row) = store::lock_if_stuck(&mut tx, id, after).await? else {
            return Ok(false);
        };
        tracing::warn!(article = %row.id, account = %row.account, since = %row.updated_at, "send outcome unknown; article failed");
        // A send again needs the publisher's confirmation that nobody got it (unless
        // this send finds it never handed anything over: `left_send`).
        store::mark_swept(&mut *tx, row.id).await?;
        self.finish_message(
            &mut tx,
            &row,
            Outcome::Failed(reason.to_owned()),
            &Uuid::now_v7().to_string(),
            SCHEDULER,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Each account with an article in `publishing`, and how many seconds its oldest
    /// has been with WeChat (`jobs/publishing_age.rs`).
    pub async fn oldest_publishing_by_account(&self) -> Result<Vec<(String, f64)>, AppError> {
        Ok(crate::store::publishing_age::oldest_by_account(&self.db).await?)
    }

    /// Settles articles whose WeChat job has had no verdict for longer than `after`
    /// (the job-finish callback lost, or not yet come): takes up to `limit` (each by
    /// one replica, leased for `after`: `store::claim_unsettled`), asks WeChat how
    /// each job stands with no transaction open, and applies what it says through
    /// [`Articles::apply_job_result`], as the callback would have been. A job still
    /// going, or one that could not be asked about or settled (WeChat or the
    /// database failing for it), is asked about again `after` later; the others of
    /// the batch are asked about all the same. Once `stopping` says so (the drain
    /// began), no more are asked: the leases of those not asked yet are given back,
    /// so another replica takes them at its next look. Returns what came of each
    /// asked.
    pub async fn reconcile_jobs(
        &self,
        after: Duration,
        limit: i64,
        stopping: impl Fn() -> bool,
    ) -> Result<Vec<Reconciled>, AppError> {
        let mut tx = self.db.begin().await?;
        let taken = store::claim_unsettled(&mut tx, after, limit).await?;
        tx.commit().await?;
        let mut results = Vec::with_capacity(taken.len());
        for (asked, job) in taken.iter().enumerate() {
            if stopping() {
                self.release_leases(&taken[asked..]).await;
                break;
            }
            let result = match self.reconcile(job, after).await {
                Ok(result) => result,
                Err(error) => Reconciled::LookupFailed {
                    channel: job.channel(),
                    error: error.to_string(),
                },
            };
            match &result {
                Reconciled::Settled { published, channel } => tracing::warn!(
                    article = %job.id,
                    account = %job.account,
                    channel,
                    outcome = if *published { "published" } else { "failed" },
                    handed_at = %job.handed_at,
                    "wechat's job-finish callback never came; article settled from the job's status"
                ),
                Reconciled::OutcomeUnknown { channel, job_gone } if job.awaited => {
                    tracing::warn!(
                        article = %job.id,
                        account = %job.account,
                        channel,
                        job = job.mass_msg_id.as_deref().unwrap_or(""),
                        job_gone,
                        failed_at = %job.handed_at,
                        "wechat's answer on the awaited job of a send already failed as \
                         outcome unknown does not say how it ended (a job it no longer knows, \
                         or a status it has not documented); no longer asked about, left for \
                         a publisher to settle (RecordPublished)"
                    )
                }
                Reconciled::OutcomeUnknown { channel, job_gone } => tracing::warn!(
                    article = %job.id,
                    account = %job.account,
                    channel,
                    job_gone,
                    handed_at = %job.handed_at,
                    "wechat's answer does not say how the article's job ended; article failed \
                     with its send's outcome unknown, for a publisher to settle"
                ),
                Reconciled::LookupFailed { channel, error } => tracing::warn!(
                    article = %job.id,
                    account = %job.account,
                    channel,
                    %error,
                    "cannot ask wechat how the article's job stands, or apply its answer; asking again later"
                ),
                Reconciled::LeftToPublisher { channel, gave_up } => tracing::warn!(
                    article = %job.id,
                    account = %job.account,
                    channel,
                    job = job.mass_msg_id.as_deref().unwrap_or(""),
                    gave_up,
                    failed_at = %job.handed_at,
                    "the job of a send failed as outcome unknown cannot settle it (wechat \
                     published the message as it stood before a change, or no verdict \
                     within a day); no longer asked about, left for a publisher to settle \
                     (RecordPublished)"
                ),
                Reconciled::StillPublishing { .. } | Reconciled::AlreadySettled { .. } => {}
            }
            results.push(result);
        }
        Ok(results)
    }

    /// Gives back the leases of jobs taken but not asked about (the drain began).
    /// Best effort: a lease not given back only delays its job by a period.
    async fn release_leases(&self, jobs: &[store::Unsettled]) {
        if let Err(error) = store::release_unsettled(&self.db, jobs).await {
            tracing::warn!(
                jobs = jobs.len(),
                %error,
                "cannot give back the reconciliation's leases; those jobs wait a period"
            );
        }
    }

    /// Asks WeChat about one taken job and applies its verdict. A job WeChat does
    /// not know fails as outcome unknown once it has been with WeChat for
    /// [`JOB_GONE_AFTER`] × `after`; before, it is a failed lookup, asked again.
    /// The job of an article already failed as outcome unknown (`job.awaited`) is
    /// asked about likewise, for [`AWAITED_VERDICT_FOR`] at most, and its verdict
    /// applied as its late callback's would be.
    async fn reconcile(
        &self,
        job: &store::Unsettled,
        after: Duration,
    ) -> Result<Reconciled, AppError> {
        let channel = job.channel();
        let reference = match (&job.publish_id, &job.mass_msg_id) {
            (Some(publish_id), _) => Job::Publish(publish_id),
            (None, Some(msg_id)) => Job::Mass(msg_id),
            // Its job was forgotten (a send again) since the lease.
            (None, None) => return Ok(Reconciled::AlreadySettled { channel }),
        };
        if job.awaited && Utc::now() - job.handed_at >= AWAITED_VERDICT_FOR {
            return self.give_up_awaiting(job, reference).await;
        }
        let asked = match reference {
            Job::Publish(publish_id) => self
                .publisher
                .publish_status(&job.account, publish_id)
                .await
                .map(|status| {
                    let urls = status
                        .article_detail
                        .map(|detail| {
                            detail
                                .item
                                .into_iter()
                                .map(|a| (a.idx, a.article_url))
                                .collect()
                        })
                        .unwrap_or_default();
                    Outcome::of_publish_job(
                        u32::try_from(status.publish_status).unwrap_or(u32::MAX),
                        urls,
                        status.article_id,
                        &status.fail_idx,
                        job.handed_at,
                    )
                }),
            Job::Mass(msg_id) => self
                .publisher
                .mass_status(&job.account, msg_id)
                .await
                .map(|status| Outcome::of_mass_status(&status.msg_status, job.handed_at)),
        };
        let job_gone = matches!(asked, Err(SendError::NoSuchJob(_)));
        let gone_since = job.handed_at
            + chrono::Duration::from_std(after * JOB_GONE_AFTER).unwrap_or(chrono::Duration::MAX);
        let outcome = match asked {
            Ok(Some(outcome)) => outcome,
            Ok(None) => return Ok(Reconciled::StillPublishing { channel }),
            Err(SendError::Database(error)) => return Err(error.into()),
            Err(SendError::NoSuchJob(error)) if Utc::now() >= gone_since => {
                Outcome::Unknown(format!(
                    "WeChat no longer knows the send's job ({error}) and its job-finish \
                     callback never came: whether it went out is unknown; {SETTLE_UNKNOWN}"
                ))
            }
            Err(error) => {
                return Ok(Reconciled::LookupFailed {
                    channel,
                    error: error.to_string(),
                });
            }
        };
        let settled = match &outcome {
            Outcome::Published { .. } => Reconciled::Settled {
                published: true,
                channel,
            },
            Outcome::Unknown(_) => Reconciled::OutcomeUnknown { channel, job_gone },
            _ => Reconciled::Settled {
                published: false,
                channel,
            },
        };
        let mut tx = self.db.begin().await?;
        // Still failed and awaiting this job's verdict: else its callback (or a
        // publisher's send again, or RecordPublished) got there in between.
        if let (true, Job::Mass(msg_id)) = (job.awaited, reference)
            && !store::lock_awaiting(&mut tx, job.id, msg_id).await?
        {
            return Ok(Reconciled::AlreadySettled { channel });
        }
        // `message/mass/get` gives no counts: its SEND_FAIL cannot say nobody got it.
        let moved = self
            .apply_verdict(
                &mut tx,
                &job.account,
                reference,
                outcome,
                &Uuid::now_v7().to_string(),
                false,
            )
            .await?;
        tx.commit().await?;
        if moved == Some(true) {
            self.signal.notify();
        }
        Ok(match (job.awaited, moved, settled) {
            (_, Some(true), settled) => settled,
            // A failed article does not move but to `published`; the verdict was
            // applied all the same: a SEND_FAIL moved its key on, a status that says
            // nothing left it as it was, and a published one for a message changed
            // since it went out was noted in its trail for a publisher.
            (
                true,
                Some(false),
                Reconciled::Settled {
                    published: true, ..
                },
            ) => Reconciled::LeftToPublisher {
                channel,
                gave_up: false,
            },
            (true, Some(false), settled) => settled,
            // Its callback (or a publisher's send again) got there in between.
            _ => Reconciled::AlreadySettled { channel },
        })
    }

    /// Stops asking about the awaited job of an article failed as outcome unknown
    /// whose verdict has not come within [`AWAITED_VERDICT_FOR`]: left to a
    /// publisher, who has been told for that day (GovwxSendOutcomeUnknown).
    async fn give_up_awaiting(
        &self,
        job: &store::Unsettled,
        reference: Job<'_>,
    ) -> Result<Reconciled, AppError> {
        let channel = job.channel();
        let Job::Mass(msg_id) = reference else {
            return Ok(Reconciled::AlreadySettled { channel });
        };
        let mut tx = self.db.begin().await?;
        // Still failed as outcome unknown, awaiting this job: else its callback, a
        // send again or a publisher's RecordPublished (which leaves `awaited_job` as
        // it was) settled it since the claim, and there is nothing to give up.
        if !store::lock_awaiting(&mut tx, job.id, msg_id).await? {
            store::stop_awaiting(&mut *tx, job.id, msg_id).await?;
            tx.commit().await?;
            return Ok(Reconciled::AlreadySettled { channel });
        }
        let Some(row) = store::lock(&mut tx, job.id).await? else {
            return Ok(Reconciled::AlreadySettled { channel });
        };
        store::stop_awaiting(&mut *tx, job.id, msg_id).await?;
        // The trail says why nobody asks any more, for the publisher who settles it.
        note_verdict(
            &mut tx,
            &row,
            SCHEDULER,
            &format!(
                "no longer asked about: WeChat gave no verdict on job {msg_id} within \
                     {} of the send's failure; whether it went out is unknown, left for a \
                     publisher to settle (RecordPublished, or a send again confirming a \
                     possible duplicate)",
                humantime::format_duration(AWAITED_VERDICT_FOR.to_std().unwrap_or_default())
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(Reconciled::LeftToPublisher {
            channel,
            gave_up: true,
        })
    }

    /// Applies WeChat's verdict on a job (`publish_id` or mass `msg_id`) of `account`:
    /// published with its URL, or failed with WeChat's reason. The one door for a
    /// verdict, whether its job-finish callback brought it or the reconciliation
    /// asked WeChat for it: under the article's lock, only an article still in
    /// `publishing` moves, so whichever comes second changes nothing (but a
    /// published verdict for one failed as outcome unknown records it as
    /// published: see `finish_message`). Unknown jobs
    /// are ignored (another tool may publish on the same account): `None`;
    /// otherwise whether the article moved. Runs in the caller's transaction.
    pub async fn apply_job_result(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        account: &str,
        job: Job<'_>,
        outcome: Outcome,
        event_id: &str,
    ) -> Result<Option<bool>, AppError> {
        self.apply_verdict(tx, account, job, outcome, event_id, true)
            .await
    }

    /// [`Self::apply_job_result`]; `counted`: the verdict says how many followers the
    /// send reached (a `MASSSENDJOBFINISH`), unlike `message/mass/get`'s status, whose
    /// SEND_FAIL cannot rule out that some followers got it.
    async fn apply_verdict(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        account: &str,
        job: Job<'_>,
        outcome: Outcome,
        event_id: &str,
        counted: bool,
    ) -> Result<Option<bool>, AppError> {
        let (publish_id, msg_id) = match job {
            Job::Publish(id) => (Some(id), None),
            Job::Mass(id) => (None, Some(id)),
        };
        let Some(row) = store::lock_by_job(tx, account, publish_id, msg_id).await? else {
            return Ok(None);
        };
        // A verdict for a job awaited after its send failed as outcome unknown (a 45065
        // for a changed line-up): had now, whichever door brought it, so the
        // reconciliation stops asking about it.
        let awaited = match job {
            Job::Mass(msg_id) => store::stop_awaiting(&mut **tx, row.id, msg_id).await?,
            Job::Publish(_) => false,
        };
        // WeChat says this mass send's job failed: its clientmsgid is spent on a send
        // that reached nobody, and a send again under it would be refused as already
        // sent (45065) and recorded published. Only WeChat's verdict moves the key on:
        // a send whose outcome is unknown keeps it, so its retry cannot push twice.
        if matches!(job, Job::Mass(_))
            && matches!(outcome, Outcome::Failed(_))
            && row.state() == ArticleState::Publishing
        {
            store::next_send_generation(tx, row.id).await?;
            // Nothing of this send reached anybody (an attempt whose answer was
            // lost would have taken this clientmsgid and left no job to fail) — when
            // WeChat counted it so. `message/mass/get`'s SEND_FAIL counts nothing, and
            // a `send fail` may have reached some followers (its MASSSENDJOBFINISH,
            // later, would count them and be ignored for a failed article): the key
            // moves on, but a send again needs the publisher's confirmation.
            store::set_send_outcome_unknown(&mut **tx, row.id, !counted).await?;
        }
        // WeChat's verdict that the job of a mass send already failed as outcome
        // unknown failed: nobody got it after all. Its clientmsgid moves on, or a
        // confirmed send again would meet 45065 under this failed job, and the flag
        // goes (no confirmation needed); the state stays `failed`, with a trail row.
        // `message/mass/get`'s SEND_FAIL for an awaited job (the reconciliation asked)
        // counts nothing: as for a send in `publishing`, the key moves on but the
        // flag stays, a send again needing the publisher's confirmation. (Not for a
        // job whose verdict was had: a `send fail` counting followers kept its key.)
        if let (Job::Mass(msg_id), Outcome::Failed(reason)) = (job, &outcome)
            && (counted || awaited)
            && row.state() == ArticleState::Failed
            && row.send_outcome_unknown
        {
            store::next_send_generation(tx, row.id).await?;
            store::set_send_outcome_unknown(&mut **tx, row.id, !counted).await?;
            let comment = if counted {
                format!(
                    "WeChat's verdict came after the send failed as outcome unknown: \
                     job {msg_id} failed ({reason}), so nobody got it; it may be \
                     published again without confirming a possible duplicate"
                )
            } else {
                format!(
                    "WeChat's verdict came after the send failed as outcome unknown: \
                     job {msg_id} failed ({reason}); its clientmsgid moves on, so a send \
                     again goes out as a new send, confirming a possible duplicate"
                )
            };
            note_verdict(tx, &row, WECHAT, &comment).await?;
            if counted {
                tracing::warn!(
                    article = %row.id,
                    %msg_id,
                    %reason,
                    "wechat failed the job of a mass send failed as outcome unknown; its \
                     clientmsgid moves on and a send again needs no confirmation"
                );
            } else {
                tracing::warn!(
                    article = %row.id,
                    %msg_id,
                    %reason,
                    "wechat's message/mass/get failed the job of a mass send failed as \
                     outcome unknown; its clientmsgid moves on, and a send again still \
                     needs confirm_possible_duplicate (mass/get counts nobody)"
                );
            }
            return Ok(Some(false));
        }
        // A verdict of unknown outcome (a `send fail` counting followers it was sent to)
        // for a mass send already failed by one that counted nothing: some followers
        // have it, so a send again needs the publisher's confirmation after all (its
        // key moved on with the first verdict, so nothing else would stop a second
        // push). Counted and audited as any send failed as outcome unknown.
        if let (Job::Mass(msg_id), Outcome::Unknown(reason)) = (job, &outcome)
            && row.state() == ArticleState::Failed
            && !row.send_outcome_unknown
        {
            store::set_send_outcome_unknown(&mut **tx, row.id, true).await?;
            note_verdict(
                tx,
                &row,
                WECHAT,
                &format!(
                    "WeChat's verdict came after the send failed: job {msg_id} is of \
                         unknown outcome ({reason}); it may have reached followers, so a \
                         send again needs confirm_possible_duplicate"
                ),
            )
            .await?;
            count_failed_outcome_unknown(tx, &row).await?;
            tracing::warn!(
                article = %row.id,
                %msg_id,
                %reason,
                "wechat's verdict on a failed mass send says some followers may have it; \
                 marked as a send whose outcome is unknown"
            );
            return Ok(Some(false));
        }
        // A verdict of unknown outcome for the awaited job: from `message/mass/get`,
        // one that says nothing of how it ended (a job WeChat no longer knows, a
        // status it has not documented); from its MASSSENDJOBFINISH (`counted`), a
        // `send fail` counting followers it reached (or an undocumented status). The
        // article stays as it failed (outcome unknown), and nobody asks again; its
        // trail says so for the publisher, with what the verdict said: a callback's
        // `send fail` does say how it ended, reaching some followers, whom a send
        // again would reach twice.
        if let (Job::Mass(msg_id), Outcome::Unknown(reason), true) = (job, &outcome, awaited)
            && row.state() == ArticleState::Failed
            && row.send_outcome_unknown
        {
            let comment = if counted {
                format!("no longer asked about: WeChat's verdict on job {msg_id} came: {reason}")
            } else {
                format!(
                    "no longer asked about: WeChat's answer on job {msg_id} does not say \
                     how it ended ({reason})"
                )
            };
            note_verdict(tx, &row, WECHAT, &comment).await?;
            tracing::warn!(
                article = %row.id,
                %msg_id,
                %reason,
                "wechat's verdict on the awaited job of a mass send failed as outcome \
                 unknown does not settle it; no longer asked about, left for a publisher \
                 to settle"
            );
            return Ok(Some(false));
        }
        if matches!(outcome, Outcome::Unknown(_)) && row.state() == ArticleState::Publishing {
            // WeChat may have it: a send again needs the publisher's confirmation,
            // and RecordPublished may settle it. A mass send keeps its clientmsgid,
            // so a retry cannot push it twice.
            store::set_send_outcome_unknown(&mut **tx, row.id, true).await?;
        }
        let moved = self
            .finish_message(tx, &row, outcome, event_id, WECHAT)
            .await?;
        Ok(Some(moved))
    }

    /// Applies `outcome` to article `id` (and its message), `by` (actor, role) in
    /// the trail, in the caller's transaction, for a failure that must be seen
    /// together with what the caller wrote before it (the caller notifies the relay
    /// after its commit).
    async fn finish_within(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        id: Uuid,
        outcome: Outcome,
        event_id: &str,
        by: (&str, &str),
    ) -> Result<(), AppError> {
        // The message row first (FOR KEY SHARE), then the headline, its message's
        // articles and those sent with it in id order, as a ComposeMessage takes
        // them. Taken the headline first and the rest in position order, they
        // deadlocked with a compose of the same articles.
        store::lock_job_articles(tx, id).await?;
        let row = store::lock(tx, id).await?.ok_or(AppError::NotFound)?;
        self.finish_message(tx, &row, outcome, event_id, by).await?;
        Ok(())
    }

    /// Applies a verdict to a headline and to every article of its message that
    /// went out with it, each with its own URL (WeChat's `idx` is the position);
    /// returns whether the headline moved.
    async fn finish_message(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        head: &ArticleRow,
        outcome: Outcome,
        event_id: &str,
        by: (&str, &str),
    ) -> Result<bool, AppError> {
        // WeChat's verdict on a send already failed as outcome unknown (its status
        // was one WeChat has not documented, or its job id went unknown for a
        // while): it went out after all, so it is recorded as published, as a
        // publisher's RecordPublished would, and audited as such by the system.
        let mut settles_unknown = head.state() == ArticleState::Failed
            && head.send_outcome_unknown
            && matches!(outcome, Outcome::Published { .. });
        // Only while the message holds what went out (each article at the place it was
        // handed over at, `sent_position`), whatever URLs the verdict carries (a
        // MASSSENDJOBFINISH may have none): a member returned for revision since has
        // moved the others up, and it, which did go out, is not in the message.
        let members = match head.message_id.filter(|_| head.is_message_headline()) {
            Some(message) => crate::store::messages::articles(&mut **tx, message)
                .await?
                .into_iter()
                .filter(|m| m.message_position.is_some_and(|p| p > 1))
                .collect(),
            None => Vec::new(),
        };
        // Whether the verdict is noted on the headline as a message changed since.
        let mut noted_changed = false;
        if let (true, Outcome::Published { urls, .. }) = (settles_unknown, &outcome) {
            // A revision since is not what went out either (the old text did).
            let changed = sent_place(head) != 1
                || revised_since_sent(head)
                || members
                    .iter()
                    .any(|m| sent_place(m) != current_place(m) || revised_since_sent(m));
            if changed {
                tracing::warn!(
                    article = %head.id,
                    urls = %log_urls(urls),
                    "wechat published a message failed as a send whose outcome is unknown, \
                     but the message changed since it went out; left for a publisher to \
                     settle (RecordPublished)"
                );
                note_unrecorded_verdict(
                    tx,
                    head,
                    urls,
                    "the message changed since it went out (an article was returned): \
                     left for a publisher to settle (RecordPublished)",
                )
                .await?;
                settles_unknown = false;
                noted_changed = true;
            }
        }
        // The articles handed over under this send's key that have left the message
        // since (returned for revision: a draft, or on their way again) went out too,
        // at their places: the verdict moves none of them, but each one's trail says
        // so, or a publisher may confirm it did not go out and push it twice. Only
        // when the verdict is taken up (the headline moves, or is noted), not for a
        // repeat of one already had.
        if let Outcome::Published { urls, .. } = &outcome
            && (settles_unknown || noted_changed || head.state() == ArticleState::Publishing)
        {
            let still_in: Vec<Uuid> = members.iter().map(|m| m.id).chain([head.id]).collect();
            note_sent_with_but_left(tx, head, urls, &still_in).await?;
        }
        // WeChat says the send went out, but its article left it since (returned for
        // revision: a draft, or further on its way again) or was failed for a known
        // reason: the verdict moves nothing, but whoever sends it again must know it
        // reached followers, so it is not dropped at info level.
        if let Outcome::Published { urls, .. } = &outcome
            && !settles_unknown
            && !matches!(
                head.state(),
                ArticleState::Publishing | ArticleState::Published | ArticleState::Failed
            )
        {
            tracing::warn!(
                article = %head.id,
                state = head.state().as_str(),
                urls = %log_urls(urls),
                "wechat published a send whose article has left it since (returned for \
                 revision); not recorded as published, for a publisher to know it went out"
            );
            note_unrecorded_verdict(
                tx,
                head,
                urls,
                "the article has left that send since (returned for revision): not \
                 recorded as published; sending it again reaches followers a second time",
            )
            .await?;
            // A returned headline took none of the others with it: they went out with
            // it all the same (the next one now carries the flag), and each one's trail
            // must say so too.
            note_sent_with_but_left(tx, head, urls, &[head.id]).await?;
        }
        if let (true, Outcome::Published { urls, .. }) = (settles_unknown, &outcome) {
            tracing::warn!(
                article = %head.id,
                urls = %log_urls(urls),
                "wechat published an article failed as a send whose outcome is unknown; \
                 recorded as published"
            );
        }
        let msg_data_id = head.msg_data_id.as_deref();
        let moved = self
            .finish_in(
                tx,
                head,
                &outcome,
                sent_place(head),
                msg_data_id,
                settles_unknown,
                event_id,
                by,
            )
            .await?;
        if moved && matches!(outcome, Outcome::Failed(_) | Outcome::Unknown(_)) {
            count_failed_outcome_unknown(tx, head).await?;
        }
        if members.is_empty() {
            return Ok(moved);
        }
        let msg_data_id = match &outcome {
            Outcome::Published { msg_data_id, .. } => {
                msg_data_id.clone().or_else(|| head.msg_data_id.clone())
            }
            Outcome::AlreadySent => head.msg_data_id.clone(),
            Outcome::Recorded { msg_data_id, .. } => {
                msg_data_id.clone().or_else(|| head.msg_data_id.clone())
            }
            Outcome::Failed(_) | Outcome::Unknown(_) => None,
        };
        // The URL a publisher found is the article's they record; the others' are
        // WeChat's to show.
        let outcome = match outcome {
            Outcome::Recorded {
                msg_data_id,
                at,
                comment,
                ..
            } => Outcome::Recorded {
                url: None,
                msg_data_id,
                at,
                comment,
            },
            other => other,
        };
        for member in members {
            let Some(member) = store::lock(tx, member.id).await? else {
                continue;
            };
            self.finish_in(
                tx,
                &member,
                &outcome,
                sent_place(&member),
                msg_data_id.as_deref(),
                settles_unknown,
                event_id,
                by,
            )
            .await?;
        }
        Ok(moved)
    }

    /// Applies a verdict to one article, the `idx`-th of its message; returns
    /// whether it moved (a verdict for an article no longer in `publishing` does not,
    /// unless `settles_unknown`: WeChat published a message that was failed as
    /// outcome unknown).
    #[allow(clippy::too_many_arguments)]
    async fn finish_in(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        row: &ArticleRow,
        outcome: &Outcome,
        idx: u32,
        message_data_id: Option<&str>,
        settles_unknown: bool,
        event_id: &str,
        by: (&str, &str),
    ) -> Result<bool, AppError> {
        let action = match outcome {
            Outcome::Published { .. } if settles_unknown => Action::RecordPublished,
            Outcome::Published { .. } | Outcome::AlreadySent => Action::Confirm,
            Outcome::Failed(_) | Outcome::Unknown(_) => Action::Fail,
            Outcome::Recorded { .. } => Action::RecordPublished,
        };
        let system = Actor {
            id: "system".into(),
            roles: Vec::new(),
        };
        let history = ReviewHistory::default();
        let decision = match review::decide(
            &Subject {
                state: row.state(),
                author: &row.author_id,
                writers: &[],
                submitters: &[],
                history: &history,
                open_hits: 0,
            },
            &system,
            &action,
            "",
        ) {
            Ok(decision) => decision,
            // A late or repeated verdict for an article that moved on changes nothing,
            // but for the URL WeChat's status answer could not give.
            Err(error) => {
                if !self.fill_url(tx, row, outcome, idx).await? {
                    tracing::info!(article = %row.id, %error, "job result ignored");
                }
                return Ok(false);
            }
        };
        let now = Utc::now();
        let (comment, event) = match outcome {
            Outcome::Published {
                urls,
                msg_data_id,
                sent,
                total,
                at,
                taken_down,
            } => {
                let now = *at;
                let url = urls
                    .iter()
                    .find(|(i, _)| *i == idx)
                    .map(|(_, url)| url.clone());
                if taken_down.is_some() {
                    // Its URL (a fill_url's later) stays out of the citizens' search.
                    store::set_taken_down(&mut **tx, row.id).await?;
                }
                let msg_data_id = msg_data_id
                    .clone()
                    .filter(|_| idx == 1)
                    .or_else(|| message_data_id.map(str::to_owned));
                store::set_outcome(
                    tx,
                    row.id,
                    url.as_deref(),
                    msg_data_id.as_deref(),
                    None,
                    Some(now),
                )
                .await?;
                let mut event = event_of(row, ev::ArticleTransition::Published, "system");
                event.url = url.clone().unwrap_or_default();
                event.msg_data_id = msg_data_id
                    .or_else(|| row.msg_data_id.clone())
                    .unwrap_or_default();
                // The first article of a message is its headline (头条).
                event.headline = idx == 1;
                event.message_index = idx;
                // A message's counts are the message's: on its headline only, so a
                // consumer summing them counts each send once.
                if idx == 1 {
                    event.sent_count = *sent;
                    event.total_count = *total;
                }
                event.published_at = Some(timestamp(now));
                let mut comment = match taken_down {
                    Some(why) => why.clone(),
                    None => url.clone().unwrap_or_default(),
                };
                if settles_unknown {
                    comment = format!(
                        "WeChat's verdict came after the send failed as outcome unknown: \
                         it went out ({comment})"
                    );
                }
                (comment, event)
            }
            Outcome::AlreadySent => {
                store::set_outcome(tx, row.id, None, message_data_id, None, Some(now)).await?;
                let mut event = event_of(row, ev::ArticleTransition::Published, "system");
                event.msg_data_id = message_data_id.unwrap_or_default().to_owned();
                event.headline = idx == 1;
                event.message_index = idx;
                event.published_at = Some(timestamp(now));
                (ALREADY_SENT.to_owned(), event)
            }
            Outcome::Failed(reason) | Outcome::Unknown(reason) => {
                store::set_outcome(tx, row.id, None, None, Some(reason), None).await?;
                let mut event = event_of(row, ev::ArticleTransition::Failed, "system");
                event.reason = reason.clone();
                (reason.clone(), event)
            }
            Outcome::Recorded {
                url,
                msg_data_id,
                at,
                comment,
            } => {
                // The URL the publisher found is the recorded article's (the others
                // of its message are given none: finish_message).
                let url = url.as_deref();
                let msg_data_id = msg_data_id.as_deref().or(message_data_id);
                store::set_outcome(tx, row.id, url, msg_data_id, None, Some(*at)).await?;
                let mut event = event_of(row, ev::ArticleTransition::Published, by.0);
                event.url = url.unwrap_or_default().to_owned();
                event.msg_data_id = msg_data_id
                    .map(str::to_owned)
                    .or_else(|| row.msg_data_id.clone())
                    .unwrap_or_default();
                event.headline = idx == 1;
                event.message_index = idx;
                event.published_at = Some(timestamp(*at));
                (comment.clone(), event)
            }
        };
        store::set_state(tx, row.id, decision.next, false).await?;
        if decision.next == ArticleState::Published {
            // Its outcome is known now: WeChat took it (a retry's 45065, a late
            // verdict) or a publisher found it.
            store::set_send_outcome_unknown(&mut **tx, row.id, false).await?;
        }
        store::audit(
            tx,
            &Audit {
                article_id: row.id,
                action: action_name(&action),
                from: row.state(),
                to: decision.next,
                actor: by.0,
                role: by.1,
                version: row.version,
                stage: None,
                comment: &comment,
            },
        )
        .await?;
        announce(
            tx,
            &self.segmenter,
            row,
            event,
            &format!("{event_id}:{}", row.id),
        )
        .await?;
        Ok(true)
    }

    /// Gives a published article without a URL the one a late verdict brings: a
    /// send settled by the reconciliation from `message/mass/get` (or a
    /// `freepublish/get` answer without `article_detail`) has none, and its
    /// job-finish callback, if it comes after all, has them. No transition and no
    /// second `published` event; the search index takes the URL. Returns whether
    /// it filled one.
    async fn fill_url(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        row: &ArticleRow,
        outcome: &Outcome,
        idx: u32,
    ) -> Result<bool, AppError> {
        let Outcome::Published { urls, .. } = outcome else {
            return Ok(false);
        };
        if row.state() != ArticleState::Published || row.url.is_some() {
            return Ok(false);
        }
        let Some((_, url)) = urls.iter().find(|(i, _)| *i == idx) else {
            return Ok(false);
        };
        if !store::fill_url(&mut **tx, row.id, url).await? {
            return Ok(false);
        }
        super::search::index_article(tx, &self.segmenter, row, url).await?;
        tracing::info!(
            article = %row.id,
            %url,
            "a late job-finish callback gave the published article its url"
        );
        Ok(true)
    }

    /// Wakes the relay (after a consumer's commit).
    pub fn notify(&self) {
        self.signal.notify();
    }
}

/// A WeChat job an article was handed to.
#[derive(Debug, Clone, Copy)]
pub enum Job<'a> {
    /// `freepublish/submit`'s `publish_id`.
    Publish(&'a str),
    /// `message/mass/sendall`'s `msg_id`.
    Mass(&'a str),
}

/// Counts a message whose headline was just failed with its send's outcome unknown
/// (`content_send_outcome_unknown_total{account, channel}`): the one signal an
/// operator gets that a publisher must check WeChat and settle it. Every way there
/// (a lost answer, the stuck-send sweep, an undocumented status, a job WeChat no
/// longer knows) sets the flag before failing, some in this transaction after `head`
/// was read, so the flag is read back. Counted before the commit: a commit that
/// fails and is retried counts twice, which an alert on "any" does not mind.
async fn count_failed_outcome_unknown(
    tx: &mut Transaction<'_, Postgres>,
    head: &ArticleRow,
) -> Result<(), AppError> {
    if store::get(&mut **tx, head.id)
        .await?
        .is_some_and(|row| row.send_outcome_unknown)
    {
        metrics::counter!(
            "content_send_outcome_unknown_total",
            "account" => head.account.clone(),
            "channel" => head.channel.clone()
        )
        .increment(1);
    }
    Ok(())
}

/// Notes in the trail of every article handed over under `head`'s send key other
/// than `still_in` (returned since, or left behind by a returned headline) that
/// WeChat published the message it went out in, at its place: the verdict moves
/// none of them, but a publisher must not confirm it did not go out and push it twice.
async fn note_sent_with_but_left(
    tx: &mut Transaction<'_, Postgres>,
    head: &ArticleRow,
    urls: &[(u32, String)],
    still_in: &[Uuid],
) -> Result<(), AppError> {
    let job = head.mass_msg_id.as_deref().unwrap_or("not named");
    for left in store::sent_with_but_left(&mut **tx, head.id, still_in).await? {
        let place = sent_place(&left);
        let own: Vec<(u32, String)> = urls.iter().filter(|(i, _)| *i == place).cloned().collect();
        tracing::warn!(
            article = %left.id,
            headline = %head.id,
            place,
            job,
            "wechat published a message an article went out in, changed since (an \
             article returned for revision); not recorded as published, noted in its trail"
        );
        note_unrecorded_verdict(
            tx,
            &left,
            &own,
            &format!(
                "it went out at place {place} in job {job} (the message of {}), which \
                 has changed since (it or another article returned for revision): not \
                 recorded as published; sending it again reaches followers a second time",
                head.id
            ),
        )
        .await?;
    }
    Ok(())
}

/// Writes in `row`'s trail (no transition) that WeChat said its send went out, at
/// `urls`, though the verdict is not recorded as a publication, and `why`.
async fn note_unrecorded_verdict(
    tx: &mut Transaction<'_, Postgres>,
    row: &ArticleRow,
    urls: &[(u32, String)],
    why: &str,
) -> Result<(), AppError> {
    let urls = if urls.is_empty() {
        "no URLs given".to_owned()
    } else {
        log_urls(urls)
    };
    note_verdict(
        tx,
        row,
        WECHAT,
        &format!("WeChat's verdict: the send went out ({urls}); {why}"),
    )
    .await
}

/// Writes in `row`'s trail (no transition) what came of a verdict on its send, by
/// `actor` (WeChat's answer, or the scheduler that stopped waiting for one).
async fn note_verdict(
    tx: &mut Transaction<'_, Postgres>,
    row: &ArticleRow,
    actor: (&str, &str),
    comment: &str,
) -> Result<(), AppError> {
    store::audit(
        tx,
        &Audit {
            article_id: row.id,
            action: "wechat_verdict",
            from: row.state(),
            to: row.state(),
            actor: actor.0,
            role: actor.1,
            version: row.version,
            stage: None,
            comment,
        },
    )
    .await?;
    Ok(())
}

/// A verdict's URLs for a log line: `idx=url` by place.
pub fn log_urls(urls: &[(u32, String)]) -> String {
    urls.iter()
        .map(|(idx, url)| format!("{idx}={url}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// What failing a send writes besides the failure ([`Articles::fail_send`]).
#[derive(Debug, Clone, Copy)]
enum Failing {
    Plain,
    /// Nothing went out: a mass send's reservation is given back.
    Release,
    /// It may have gone out (a lost answer): marked so for a publisher to settle.
    OutcomeUnknown,
}

/// WeChat's verdict on a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Published {
        /// Each article's URL by its place in the message (WeChat's `idx`, from 1).
        urls: Vec<(u32, String)>,
        msg_data_id: Option<String>,
        sent: u64,
        total: u64,
        /// When WeChat finished the job (its callback's `CreateTime`): the article's
        /// publication time, whenever the callback is applied (a backlog drained
        /// after midnight must not move it to the next day).
        at: DateTime<Utc>,
        /// Why WeChat no longer shows it, when it went out and was taken down since
        /// (deleted by the account, banned by the platform): published for the
        /// ledger and the duplicate guard, but never offered to citizens' search.
        taken_down: Option<String>,
    },
    /// A mass send WeChat had already taken in an earlier attempt whose answer was
    /// lost: published, its job id, URLs and counts unknown.
    AlreadySent,
    Failed(String),
    /// WeChat's answer does not say how the job ended (a status it has not
    /// documented, or a job id it no longer knows): failed with its send's outcome
    /// unknown, so a publisher settles it (`RecordPublished`, or a send again
    /// confirming a possible duplicate).
    Unknown(String),
    /// A publisher found in WeChat a send whose outcome was unknown (and which was
    /// failed for it): published at `at`, the headline at `url`; `comment` is the
    /// trail's.
    Recorded {
        url: Option<String>,
        msg_data_id: Option<String>,
        at: DateTime<Utc>,
        comment: String,
    },
}

impl Outcome {
    /// WeChat's verdict on a free publication's job from its `publish_status`, as
    /// `PUBLISHJOBFINISH` and `freepublish/get` both report it (with the articles'
    /// URLs by place, its `article_id` and the failed places); `None` while it is
    /// still publishing (1). 5 ("deleted by the user after success") and 6 ("banned
    /// by the platform after success") are publications that went out and were
    /// taken down since: published, as `of_mass_status` takes `DELETE` (a failure
    /// would let the article be sent again, banned content among it), but taken
    /// down, so not searchable; their URLs are dropped (dead links). A status WeChat
    /// has not documented is [`Outcome::Unknown`] (with a warning): waiting for it
    /// would ask `freepublish/get` for ever, and failing it outright would let it
    /// be sent again blindly. `at` is when WeChat finished it, as far as is known.
    pub fn of_publish_job(
        status: u32,
        urls: Vec<(u32, String)>,
        article_id: Option<String>,
        fail_idx: &[u32],
        at: DateTime<Utc>,
    ) -> Option<Self> {
        let taken_down = match status {
            5 => Some("deleted by the account after it went out"),
            6 => Some("banned by the platform after it went out"),
            _ => None,
        };
        let describe = match status {
            0 | 5 | 6 => {
                return Some(Self::Published {
                    urls: if taken_down.is_some() {
                        Vec::new()
                    } else {
                        urls
                    },
                    msg_data_id: article_id,
                    sent: 0,
                    total: 0,
                    at,
                    taken_down: taken_down.map(|why| format!("publish_status {status}: {why}")),
                });
            }
            // WeChat sends another callback when it is done.
            1 => return None,
            2 => "originality check failed",
            3 => "publishing failed",
            4 => "WeChat's review refused it",
            _ => {
                tracing::warn!(
                    publish_status = status,
                    "wechat reported a publish_status it has not documented; the article \
                     fails as a send whose outcome is unknown"
                );
                return Some(Self::Unknown(format!(
                    "publish_status {status}, which WeChat has not documented: whether the \
                     article went out is unknown; {SETTLE_UNKNOWN}"
                )));
            }
        };
        let places = if fail_idx.is_empty() {
            String::new()
        } else {
            format!(" (fail_idx {fail_idx:?})")
        };
        Some(Self::Failed(format!(
            "publish_status {status}: {describe}{places}"
        )))
    }

    /// WeChat's verdict on a mass send from its `MASSSENDJOBFINISH` (`at`: the
    /// callback's time): `send success` is published with its URLs and counts;
    /// `send fail` and a review code `err(n)` are the failures WeChat documents;
    /// any other `Status` is [`Outcome::Unknown`] (with a warning), as in
    /// [`Self::of_mass_status`]: failing it outright would move its clientmsgid on
    /// and let a publisher send it again unconfirmed, twice to followers if it went
    /// out.
    pub fn of_mass_job_finish(job: &MassSendJobFinish, at: DateTime<Utc>) -> Self {
        let counts = format!(
            "sent {}, errors {}",
            job.sent_count.unwrap_or(0),
            job.error_count.unwrap_or(0)
        );
        let status = job.status.as_str();
        let review_code = status
            .strip_prefix("err(")
            .and_then(|rest| rest.strip_suffix(')'))
            .is_some_and(|code| !code.is_empty());
        if job.succeeded() {
            Self::Published {
                urls: job
                    .article_urls
                    .iter()
                    .map(|a| (a.idx, a.url.clone()))
                    .collect(),
                msg_data_id: None,
                sent: job.sent_count.unwrap_or(0),
                total: job.total_count.unwrap_or(0),
                at,
                taken_down: None,
            }
        } else if status == "send fail" && job.sent_count.unwrap_or(0) > 0 {
            // WeChat documents that a `send success` may have failed for some
            // followers, not that a `send fail` reached none: failing it outright
            // would move its clientmsgid on, and a send again would reach these
            // followers twice unconfirmed.
            tracing::warn!(
                msg_id = %job.msg_id,
                sent = job.sent_count.unwrap_or(0),
                "wechat's MASSSENDJOBFINISH says send fail but counts followers it was \
                 sent to; the article fails as a send whose outcome is unknown"
            );
            Self::Unknown(format!(
                "mass send status {status:?} ({counts}): WeChat says the send failed but \
                 counts followers it reached; {SETTLE_UNKNOWN}"
            ))
        } else if status == "send fail" || review_code {
            Self::Failed(format!("mass send status {status:?} ({counts})"))
        } else {
            tracing::warn!(
                mass_status = status,
                msg_id = %job.msg_id,
                "wechat's MASSSENDJOBFINISH has a Status it has not documented; the article \
                 fails as a send whose outcome is unknown"
            );
            Self::Unknown(format!(
                "mass send status {status:?} ({counts}), which WeChat has not documented: \
                 whether the message went out is unknown; {SETTLE_UNKNOWN}"
            ))
        }
    }

    /// WeChat's verdict on a mass send's job from `message/mass/get`'s `msg_status`;
    /// `None` while it is still going out (`SENDING`). `DELETE` is a send that went
    /// out and was deleted since (in WeChat's console): it reached followers, so it
    /// is published, as its `MASSSENDJOBFINISH` said, but taken down (not
    /// searchable). A status WeChat has not documented is [`Outcome::Unknown`], as
    /// in [`Self::of_publish_job`]. The counts are unknown (0).
    pub fn of_mass_status(status: &str, at: DateTime<Utc>) -> Option<Self> {
        let published = |taken_down: Option<String>| {
            Some(Self::Published {
                urls: Vec::new(),
                msg_data_id: None,
                sent: 0,
                total: 0,
                at,
                taken_down,
            })
        };
        match status {
            MassStatus::SUCCESS => published(None),
            MassStatus::DELETED => published(Some(format!(
                "mass send status {status}: deleted after it went out"
            ))),
            MassStatus::FAILED => Some(Self::Failed(format!(
                "mass send status {status} (message/mass/get: its MASSSENDJOBFINISH never \
                 came, and mass/get does not count the followers it reached); {SETTLE_UNKNOWN}"
            ))),
            MassStatus::SENDING => None,
            _ => {
                tracing::warn!(
                    msg_status = status,
                    "wechat reported a mass send status it has not documented; the article \
                     fails as a send whose outcome is unknown"
                );
                Some(Self::Unknown(format!(
                    "mass send status {status}, which WeChat has not documented: whether the \
                     message went out is unknown; {SETTLE_UNKNOWN}"
                )))
            }
        }
    }
}

/// What asking WeChat about one job whose verdict did not come led to; `channel`
/// is `freepublish` or `mass_send`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reconciled {
    /// WeChat's answer moved the article: `published`, or failed.
    Settled {
        published: bool,
        channel: &'static str,
    },
    /// WeChat is still at it; asked again later.
    StillPublishing { channel: &'static str },
    /// WeChat's answer did not say how the job ended: the article failed with its
    /// send's outcome unknown, for a publisher to settle. `job_gone`: WeChat no
    /// longer knows the job id (asked about for [`JOB_GONE_AFTER`] periods);
    /// otherwise it answered a status it has not documented.
    OutcomeUnknown {
        channel: &'static str,
        job_gone: bool,
    },
    /// Its verdict arrived between the lease and the answer: nothing to do.
    AlreadySettled { channel: &'static str },
    /// The job of a send already failed as outcome unknown (a 45065 for a changed
    /// line-up), whose answer cannot settle it: WeChat published the message as it
    /// stood before an article was returned or revised (noted in the article's
    /// trail), or, `gave_up`, no verdict came within [`AWAITED_VERDICT_FOR`]. Not
    /// asked about again: a publisher settles it (`RecordPublished`).
    LeftToPublisher {
        channel: &'static str,
        gave_up: bool,
    },
    /// WeChat could not be asked, or refused (the per-minute limit, a timeout, a
    /// job it does not know for fewer than [`JOB_GONE_AFTER`] periods), or its
    /// verdict could not be applied to the article (a database error): asked
    /// again later.
    LookupFailed {
        channel: &'static str,
        error: String,
    },
}

/// How many reconciliation periods a job WeChat answers it does not know (53500,
/// 40007) is asked about before its article fails as a send whose outcome is
/// unknown: a job id is not forgotten that soon, so a few answers rule out a
/// passing fault, and asking for ever would keep the alert firing with no way out.
pub const JOB_GONE_AFTER: u32 = 3;

/// How long after its send failed (with a 45065 for a changed line-up) the job of a
/// send of unknown outcome is asked about at most (`message/mass/get`, every
/// `PUBLISH_RECONCILE_AFTER`). WeChat keeps a mass send's `clientmsgid` for 24 hours
/// from the send, which came before that failure, and a job's MASSSENDJOBFINISH
/// comes minutes after it is sent: a day without a verdict is no job still going out
/// but a status that never settles or a lookup that keeps failing (a day of 144
/// calls at the default period). By then GovwxSendOutcomeUnknown has asked a
/// publisher for a day to settle it, and the key no longer holds the send again back.
pub const AWAITED_VERDICT_FOR: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// The channel names of the metrics and logs (the articles' `channel` column).
const FREEPUBLISH: &str = "freepublish";
const MASS_SEND: &str = "mass_send";

impl store::Unsettled {
    /// The channel its job went out on, for metrics and logs.
    fn channel(&self) -> &'static str {
        if self.publish_id.is_none() && self.mass_msg_id.is_some() {
            MASS_SEND
        } else {
            FREEPUBLISH
        }
    }
}

/// What a publisher does about an [`Outcome::Unknown`] article (its failure reason's
/// end).
const SETTLE_UNKNOWN: &str = "check the account's WeChat console (mp.weixin.qq.com) for \
     it, and record it as published (RecordPublished) if it went out, or publish it again \
     confirming a possible duplicate";

/// The audit comment of an [`Outcome::AlreadySent`] article.
const ALREADY_SENT: &str = "sent by an earlier attempt whose answer from WeChat was lost \
     (WeChat refused the retry's clientmsgid as already used); its job id, URL and counts \
     are unknown";

/// Checks and stores overrides: reviewers, publishers and admins only, each with a
/// reason, each naming a hit of the current version.
async fn record_overrides(
    tx: &mut Transaction<'_, Postgres>,
    who: &Who,
    row: &ArticleRow,
    hits: &[Hit],
    overrides: &[(String, String)],
) -> Result<Vec<(String, String)>, AppError> {
    if overrides.is_empty() {
        return Ok(Vec::new());
    }
    if !who
        .actor
        .roles
        .iter()
        .any(|r| matches!(r, Role::Reviewer | Role::Publisher | Role::Admin))
    {
        return Err(review::ReviewError::RoleNeeded {
            role: "reviewer",
            action: "override a sensitive-word hit",
        }
        .into());
    }
    // Overriding a hit is a reviewer's judgement of someone else's text.
    let writers = store::writers(&mut **tx, row.id).await?;
    review::check_not_a_writer(&who.actor.id, &row.author_id, &writers)?;
    let submitters = store::submitters(&mut **tx, row.id).await?;
    review::check_not_a_submitter(&who.actor.id, &submitters)?;
    for (key, reason) in overrides {
        if reason.trim().is_empty() {
            return Err(AppError::Invalid(format!(
                "overrides: a reason is required for {key}"
            )));
        }
        if !hits.iter().any(|h| h.key() == *key) {
            return Err(AppError::Invalid(format!(
                "overrides: {key} is not a hit of version {}",
                row.version
            )));
        }
    }
    // Only those stored: the first reason given for a hit stands (GetArticle shows
    // it), so an audit row of a later one would name a reason that counts nowhere.
    let mut recorded = Vec::new();
    for (key, reason) in overrides {
        if store::add_override(tx, row.id, row.version, key, &who.actor.id, reason.trim()).await? {
            recorded.push((key.clone(), reason.clone()));
        }
    }
    Ok(recorded)
}

/// The audit row of overrides, wherever they were given (`OverrideHits`, or with a
/// review): who, the version, and each hit's key with its reason; none when no
/// override was recorded.
async fn audit_overrides(
    tx: &mut Transaction<'_, Postgres>,
    who: &Who,
    row: &ArticleRow,
    overrides: &[(String, String)],
) -> Result<(), sqlx::Error> {
    if overrides.is_empty() {
        return Ok(());
    }
    let comment = overrides
        .iter()
        .map(|(key, reason)| format!("{key}: {}", reason.trim()))
        .collect::<Vec<_>>()
        .join("; ");
    store::audit(
        tx,
        &Audit {
            article_id: row.id,
            action: "override",
            from: row.state(),
            to: row.state(),
            actor: &who.actor.id,
            role: &who.role_name(),
            version: row.version,
            stage: None,
            comment: &comment,
        },
    )
    .await
}

/// Writing and submitting stay with the article's department (admins aside): a
/// key that also reviews or publishes sees every department's articles, but its
/// editor writes for their own.
fn own_department(who: &Who, row: &ArticleRow, verb: &str) -> Result<(), AppError> {
    if row.department == who.department || who.actor.roles.contains(&Role::Admin) {
        return Ok(());
    }
    Err(AppError::Forbidden(format!(
        "an editor {verb} only their department's articles; this one is {}'s",
        row.department
    )))
}

/// A member of a message goes out with its headline, never alone.
fn refuse_member(row: &ArticleRow) -> Result<(), AppError> {
    match (row.message_id, row.message_position) {
        (Some(message), Some(position)) if row.is_message_member() => {
            Err(review::ReviewError::MessageMember {
                position,
                message: message.to_string(),
            }
            .into())
        }
        _ => Ok(()),
    }
}

/// The hits of `content`'s screened fields. The screener is read before any
/// connection is held (see `Articles::act`).
fn screen(screener: &Screener, content: &ArticleContent) -> Vec<Hit> {
    let fields = content.screened_fields();
    screener.screen_all(fields.iter().map(|(f, t)| (*f, t.as_str())))
}

/// Whether two readings of a message hold the same articles, in the same order and
/// versions: a draft made from one is the other's.
fn same_articles(a: &[ArticleRow], b: &[ArticleRow]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(a, b)| a.id == b.id && a.version == b.version)
}

/// How many of `hits` (of `row`'s current version) no reviewer has overridden.
async fn open_hits(
    db: &mut sqlx::PgConnection,
    row: &ArticleRow,
    hits: &[Hit],
) -> Result<usize, sqlx::Error> {
    if hits.is_empty() {
        return Ok(0);
    }
    let overridden = store::overrides(db, row.id, row.version).await?;
    Ok(hits
        .iter()
        .filter(|h| !overridden.iter().any(|(k, _, _)| *k == h.key()))
        .count())
}

/// Moves each of `members` (a message's articles other than its headline) that is
/// in one of `from` to `to`, audited as the message's doing with `comment`. The
/// caller has locked them all in id order first ([`store::lock_job_articles`]):
/// locked here one by one in position order, they deadlocked with a ComposeMessage
/// taking the same articles in id order.
async fn move_members(
    tx: &mut Transaction<'_, Postgres>,
    members: &[ArticleRow],
    from: &[ArticleState],
    to: ArticleState,
    comment: &str,
) -> Result<(), sqlx::Error> {
    for member in members {
        let Some(row) = store::lock(tx, member.id).await? else {
            continue;
        };
        if !from.contains(&row.state()) {
            continue;
        }
        store::set_state(tx, row.id, to, false).await?;
        store::audit(
            tx,
            &Audit {
                article_id: row.id,
                action: "publish",
                from: row.state(),
                to,
                actor: "system",
                role: "message",
                version: row.version,
                stage: None,
                comment,
            },
        )
        .await?;
    }
    Ok(())
}

/// Before a headline is scheduled or sent: every other article of its message must
/// still be ready to go (approved, or failed with it before). Returns them.
async fn check_members_ready(
    tx: &mut Transaction<'_, Postgres>,
    head: &ArticleRow,
) -> Result<Vec<ArticleRow>, AppError> {
    let Some(message) = head.message_id else {
        return Ok(Vec::new());
    };
    let mut members = crate::store::messages::articles(&mut **tx, message).await?;
    members.retain(|member| member.id != head.id);
    for member in &members {
        if !matches!(
            member.state(),
            ArticleState::Approved | ArticleState::Failed
        ) {
            return Err(review::ReviewError::NotComposable {
                article: member.id.to_string(),
                state: member.state(),
            }
            .into());
        }
    }
    Ok(members)
}

/// A send that could not happen, as the caller of an RPC sees it.
fn refusal(error: SendError) -> AppError {
    match error {
        SendError::RateLimited(limited) => AppError::RateLimited(limited),
        SendError::Database(error) => AppError::Database(error),
        // Retryable, so a caller's retry policy may act on it (it was
        // FAILED_PRECONDITION, which says: change something first).
        SendError::Transient(error) => AppError::WechatUnavailable(error),
        // Not "WeChat refused": the call may have taken effect.
        SendError::OutcomeUnknown(text) => AppError::OutcomeUnknown(text),
        other => AppError::Wechat(other.to_string()),
    }
}

/// The answer to a preview that stopped at `openids[sent]` with `error`. Before
/// any follower was reached it is the call's own error (the same request may go
/// again); after, a retry of the same list would send those reached a second
/// preview, so the answer names who got it and who did not (a lost answer's text,
/// [`SendError::OutcomeUnknown`], already does).
fn preview_stopped(openids: &[String], sent: usize, error: SendError) -> AppError {
    if sent == 0 || matches!(error, SendError::OutcomeUnknown(_)) {
        return refusal(error);
    }
    let cause = match error {
        SendError::Permanent(text) => format!("WeChat refused {}: {text}", openids[sent]),
        SendError::Transient(text) => format!("WeChat did not take {}: {text}", openids[sent]),
        other => other.to_string(),
    };
    tracing::warn!(sent, of = openids.len(), %cause, "a preview stopped part-way");
    AppError::PreviewPartlySent {
        sent: openids[..sent].to_vec(),
        not_sent: openids[sent..].to_vec(),
        cause,
    }
}

/// The openids that occur more than once in `openids`, each once, in the order of
/// their first occurrence.
fn named_twice(openids: &[String]) -> Vec<&str> {
    let mut seen = std::collections::HashSet::new();
    let mut twice: Vec<&str> = Vec::new();
    for openid in openids {
        if !seen.insert(openid.as_str()) && !twice.contains(&openid.as_str()) {
            twice.push(openid);
        }
    }
    twice
}

fn require(who: &Who, role: Role, action: &'static str) -> Result<(), AppError> {
    if who.actor.roles.contains(&role) || who.actor.roles.contains(&Role::Admin) {
        return Ok(());
    }
    Err(review::ReviewError::RoleNeeded {
        role: match role {
            Role::Editor => "editor",
            Role::Reviewer => "reviewer",
            Role::Publisher => "publisher",
            _ => "admin",
        },
        action,
    }
    .into())
}

fn action_name(action: &Action) -> &'static str {
    match action {
        Action::Submit => "submit",
        Action::Withdraw => "withdraw",
        Action::Approve => "approve",
        Action::Reject => "reject",
        Action::Schedule => "schedule",
        Action::CancelSchedule => "cancel_schedule",
        Action::Publish => "publish",
        Action::Confirm => "confirm",
        Action::Fail => "fail",
        Action::Retract => "retract",
        Action::Correct => "correct",
        Action::Return => "return",
        Action::RecordPublished => "record_published",
    }
}

fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: at.timestamp_subsec_nanos() as i32,
    }
}

fn event_of(
    row: &ArticleRow,
    transition: ev::ArticleTransition,
    actor: &str,
) -> ev::ArticleChanged {
    ev::ArticleChanged {
        header: Some(ev::EventHeader {
            event_id: String::new(),
            account: row.account.clone(),
            occurred_at: Some(timestamp(Utc::now())),
        }),
        transition: transition as i32,
        article_id: row.id.to_string(),
        department: row.department.clone(),
        title: row.title.clone(),
        version: row.version as u32,
        actor: actor.to_owned(),
        channel: if row.channel == "mass_send" {
            ev::PublishChannel::MassSend
        } else {
            ev::PublishChannel::Freepublish
        } as i32,
        url: row.url.clone().unwrap_or_default(),
        msg_data_id: row.msg_data_id.clone().unwrap_or_default(),
        ..Default::default()
    }
}

/// A version as a reviewer lists it: its review steps and what they came to.
#[derive(Debug, Clone)]
pub struct VersionView {
    pub summary: store::VersionSummaryRow,
    pub outcome: VersionOutcome,
    pub steps: Vec<store::AuditRow>,
    pub current: bool,
}

fn version_view(
    summary: store::VersionSummaryRow,
    steps: Vec<store::AuditRow>,
    current: i32,
) -> VersionView {
    let outcome = version::outcome(
        steps
            .iter()
            .filter_map(|s| ReviewStep::from_audit(&s.action, s.stage.as_deref())),
    );
    VersionView {
        current: summary.version == current,
        summary,
        outcome,
        steps,
    }
}

/// An article's place in the message it went out in, 1-based as WeChat's `idx`
/// and the datacube's `{msg_data_id}_{index}`: the place it was handed over at
/// (`sent_place`).
fn message_index(row: &ArticleRow) -> u32 {
    sent_place(row)
}

/// An article's place in the message as it was last handed to WeChat
/// (`sent_position`, migration 0024); for a send handed over before that column,
/// its current place.
fn sent_place(row: &ArticleRow) -> u32 {
    match row.sent_position {
        Some(position) if position > 0 => position as u32,
        _ => current_place(row),
    }
}

/// Whether the article was revised since it was last handed to WeChat
/// (`sent_version`, migration 0028; unknown before it: not revised).
fn revised_since_sent(row: &ArticleRow) -> bool {
    row.sent_version.is_some_and(|sent| sent != row.version)
}

/// An article's place in its message as it stands: a lone article is its
/// message's first.
fn current_place(row: &ArticleRow) -> u32 {
    match (row.message_id, row.message_position) {
        (Some(_), Some(position)) if position > 0 => position as u32,
        _ => 1,
    }
}

/// The subject token of a transition: its name in lower case without the prefix.
pub fn transition_token(transition: ev::ArticleTransition) -> String {
    transition
        .as_str_name()
        .trim_start_matches("ARTICLE_TRANSITION_")
        .to_ascii_lowercase()
}

/// Enqueues the event of an article's change and keeps the search index in step:
/// a published article is indexed, a retracted one removed. A published article
/// without a URL is not indexed (the citizens' search would link nowhere; a
/// taken-down one has none): it is when its URL comes (`fill_url`).
async fn announce(
    tx: &mut Transaction<'_, Postgres>,
    segmenter: &Segmenter,
    row: &ArticleRow,
    mut event: ev::ArticleChanged,
    event_id: &str,
) -> Result<(), AppError> {
    if let Some(header) = event.header.as_mut() {
        header.event_id = event_id.to_owned();
    }
    let transition = ev::ArticleTransition::try_from(event.transition).unwrap_or_default();
    let subject = format!(
        "content.{}.article.{}",
        row.account,
        transition_token(transition)
    );
    let payload = event.encode_to_vec();
    outbox::enqueue(
        tx,
        OutboxEvent {
            subject: &subject,
            event_id,
            payload: &payload,
        },
    )
    .await?;
    match transition {
        ev::ArticleTransition::Published if !event.url.is_empty() => {
            super::search::index_article(tx, segmenter, row, &event.url).await?;
        }
        ev::ArticleTransition::Retracted => super::search::unindex_article(tx, row.id).await?,
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_publish_jobs_status_reads_the_same_from_its_callback_and_from_freepublish_get() {
        let at = Utc::now();
        assert_eq!(Outcome::of_publish_job(1, Vec::new(), None, &[], at), None);
        assert_eq!(
            Outcome::of_publish_job(4, Vec::new(), None, &[1, 2], at),
            Some(Outcome::Failed(
                "publish_status 4: WeChat's review refused it (fail_idx [1, 2])".into()
            ))
        );
        assert_eq!(
            Outcome::of_publish_job(0, vec![(1, "u".into())], Some("A".into()), &[], at),
            Some(Outcome::Published {
                urls: vec![(1, "u".into())],
                msg_data_id: Some("A".into()),
                sent: 0,
                total: 0,
                at,
                taken_down: None,
            })
        );
    }

    #[test]
    fn a_publication_deleted_or_banned_after_success_is_published_taken_down_and_an_undocumented_status_is_of_unknown_outcome()
     {
        let at = Utc::now();
        for (status, why) in [
            (
                5,
                "publish_status 5: deleted by the account after it went out",
            ),
            (
                6,
                "publish_status 6: banned by the platform after it went out",
            ),
        ] {
            assert_eq!(
                Outcome::of_publish_job(status, vec![(1, "u".into())], Some("A".into()), &[1], at),
                Some(Outcome::Published {
                    urls: Vec::new(),
                    msg_data_id: Some("A".into()),
                    sent: 0,
                    total: 0,
                    at,
                    taken_down: Some(why.into()),
                }),
                "publish_status {status}"
            );
        }
        for status in [7, u32::MAX] {
            let outcome = Outcome::of_publish_job(status, Vec::new(), None, &[], at);
            let Some(Outcome::Unknown(reason)) = outcome else {
                panic!("publish_status {status}: {outcome:?}");
            };
            assert!(
                reason.starts_with(&format!(
                    "publish_status {status}, which WeChat has not documented"
                )),
                "{reason}"
            );
            assert!(reason.contains("RecordPublished"), "{reason}");
        }
    }

    #[test]
    fn a_mass_send_deleted_after_going_out_is_published_taken_down_one_still_going_is_left_and_an_undocumented_status_is_of_unknown_outcome()
     {
        let at = Utc::now();
        assert!(matches!(
            Outcome::of_mass_status("DELETE", at),
            Some(Outcome::Published {
                taken_down: Some(_),
                ..
            })
        ));
        assert!(matches!(
            Outcome::of_mass_status("SEND_SUCCESS", at),
            Some(Outcome::Published {
                taken_down: None,
                ..
            })
        ));
        assert!(matches!(
            Outcome::of_mass_status("SEND_FAIL", at),
            Some(Outcome::Failed(_))
        ));
        assert_eq!(Outcome::of_mass_status("SENDING", at), None);
        assert!(matches!(
            Outcome::of_mass_status("SOMETHING_NEW", at),
            Some(Outcome::Unknown(_))
        ));
    }

    #[test]
    fn a_masssendjobfinish_fails_only_on_the_statuses_wechat_documents_as_failures() {
        let at = Utc::now();
        let job = |status: &str| MassSendJobFinish {
            msg_id: wechat::message::MsgId(1000001),
            status: status.into(),
            total_count: Some(7),
            filter_count: Some(7),
            sent_count: Some(7),
            error_count: Some(0),
            article_urls: vec![wechat::message::ArticleUrl {
                idx: 1,
                url: "https://mp.weixin.qq.com/s/x".into(),
            }],
        };
        assert!(matches!(
            Outcome::of_mass_job_finish(&job("send success"), at),
            Outcome::Published { sent: 7, total: 7, ref urls, .. } if urls.len() == 1
        ));
        for failed in ["send fail", "err(10001)", "err(20013)"] {
            let nobody = MassSendJobFinish {
                sent_count: Some(0),
                ..job(failed)
            };
            assert!(
                matches!(Outcome::of_mass_job_finish(&nobody, at), Outcome::Failed(_)),
                "{failed}"
            );
        }
        for unknown in ["send pending", "", "err()", "error", "SEND_SUCCESS"] {
            assert!(
                matches!(
                    Outcome::of_mass_job_finish(&job(unknown), at),
                    Outcome::Unknown(_)
                ),
                "{unknown:?}"
            );
        }
    }

    #[test]
    fn a_send_fail_that_reached_some_followers_is_of_unknown_outcome() {
        let job = MassSendJobFinish {
            msg_id: wechat::message::MsgId(1000001),
            status: "send fail".into(),
            total_count: Some(5003),
            filter_count: Some(5003),
            sent_count: Some(5000),
            error_count: Some(3),
            article_urls: Vec::new(),
        };
        let outcome = Outcome::of_mass_job_finish(&job, Utc::now());
        assert!(
            matches!(&outcome, Outcome::Unknown(reason) if reason.contains("sent 5000")),
            "{outcome:?}"
        );
    }

    #[test]
    fn subjects_name_the_transition_in_lower_case() {
        assert_eq!(
            transition_token(ev::ArticleTransition::Published),
            "published"
        );
        assert_eq!(
            transition_token(ev::ArticleTransition::Withdrawn),
            "withdrawn"
        );
    }
}
