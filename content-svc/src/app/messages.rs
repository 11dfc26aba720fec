//! Multi-article messages (多图文): up to 8 approved articles sent as one WeChat
//! message, the first the headline (头条). Each article passes its own three
//! reviews first; a publisher then composes the message (and may recompose it to
//! reorder or change it while all its articles are still approved). From then on
//! the headline carries the message: scheduling, preview and publishing act on the
//! headline and take the others along (one `draft/add` with every article, one
//! `freepublish/submit` or mass send, one quota use), and WeChat's job result moves
//! every article to published (each with its own URL; only the headline's event
//! says `headline`) or failed. The other articles refuse to go out alone.

use platform::Role;
use uuid::Uuid;

use super::AppError;
use super::articles::{Articles, Who, audit_in_place};
use crate::domain::article::check_message_size;
use crate::domain::review::{ArticleState, ReviewError};
use crate::store::articles::{self as articles_store, ArticleRow};
use crate::store::messages::{self as store, MessageRow};

/// A message and its articles, headline first.
#[derive(Debug, Clone)]
pub struct MessageView {
    pub message: MessageRow,
    pub articles: Vec<ArticleRow>,
}

fn require_publisher(who: &Who, action: &'static str) -> Result<(), AppError> {
    if who
        .actor
        .roles
        .iter()
        .any(|r| matches!(r, Role::Publisher | Role::Admin))
    {
        return Ok(());
    }
    Err(ReviewError::RoleNeeded {
        role: "publisher",
        action,
    }
    .into())
}

impl Articles {
    /// Composes a message of `ids` in order (the first the headline), or recomposes
    /// `message` with them. Every article must be approved, on `account`, going out
    /// by the same channel, and in no other message.
    pub async fn compose_message(
        &self,
        who: &Who,
        account: &str,
        message: Option<Uuid>,
        ids: &[Uuid],
    ) -> Result<MessageView, AppError> {
        require_publisher(who, "compose a message")?;
        check_message_size(ids.len())?;
        for (i, id) in ids.iter().enumerate() {
            if ids[..i].contains(id) {
                return Err(AppError::Invalid(format!(
                    "article_ids: {id} is given twice"
                )));
            }
        }
        if !who.accounts.contains(account) {
            return Err(AppError::NotFound);
        }
        // What the caller may not use is refused before any row is locked (and checked
        // again under the locks below; an article's account and department never
        // change): locked first, another account's article or message made a compose
        // that was bound to be refused wait for whatever held it.
        if let Some(id) = message {
            store::get(self.db(), id)
                .await?
                .filter(|m| m.account == account)
                .ok_or(AppError::NotFound)?;
        }
        for article_id in ids {
            let row = articles_store::get(self.db(), *article_id)
                .await?
                .filter(|row| who.sees(row))
                .ok_or(AppError::NotFound)?;
            on_account(&row, account)?;
        }
        let mut tx = self.db().begin().await?;
        let (id, composed) = match message {
            Some(id) => {
                let existing = store::lock(&mut tx, id)
                    .await?
                    .filter(|m| m.account == account)
                    .ok_or(AppError::NotFound)?;
                // Steady while the message is locked: whatever changes a message's
                // articles (compose, dissolve, a return for revision) locks it first.
                let composed = store::articles(&mut *tx, existing.id).await?;
                (id, composed.into_iter().map(|a| a.id).collect())
            }
            None => {
                let id = Uuid::now_v7();
                store::insert(&mut tx, id, account, &who.actor.id).await?;
                (id, Vec::new())
            }
        };
        // Every article this changes is locked first, in id order: the order a verdict
        // on a job takes the articles it writes in (`articles::lock_by_job`). Locked in
        // the order given, [X, H] deadlocked with the verdict on H's job, which holds H
        // and notes in X's trail that X went out with H (PostgreSQL aborted one).
        let touched: Vec<Uuid> = ids.iter().chain(&composed).copied().collect();
        articles_store::lock_in_order(&mut tx, &touched).await?;
        // The drafts this composition makes obsolete (the old message's, an article's
        // own): deleted from WeChat's draft box once committed.
        let mut forgotten = Vec::new();
        if message.is_some() {
            for article in store::articles(&mut *tx, id).await? {
                if article.state() != ArticleState::Approved {
                    return Err(ReviewError::NotComposable {
                        article: article.id.to_string(),
                        state: article.state(),
                    }
                    .into());
                }
                refuse_unsettled(&article)?;
            }
            forgotten.extend(store::clear(&mut tx, id).await?);
        }
        let mut channel: Option<(String, Option<i64>)> = None;
        for (i, article_id) in ids.iter().enumerate() {
            let row = articles_store::lock(&mut tx, *article_id)
                .await?
                .filter(|row| who.sees(row))
                .ok_or(AppError::NotFound)?;
            on_account(&row, account)?;
            if row.state() != ArticleState::Approved {
                return Err(ReviewError::NotComposable {
                    article: row.id.to_string(),
                    state: row.state(),
                }
                .into());
            }
            refuse_unsettled(&row)?;
            if let Some(other) = row.message_id.filter(|m| *m != id) {
                return Err(ReviewError::InAnotherMessage {
                    article: row.id.to_string(),
                    message: other.to_string(),
                }
                .into());
            }
            let this = (row.channel.clone(), row.mass_tag_id);
            match &channel {
                None => channel = Some(this),
                Some(head) if *head != this => {
                    return Err(ReviewError::ChannelMismatch {
                        article: row.id.to_string(),
                        channel: describe(&this),
                        headline_channel: describe(head),
                    }
                    .into());
                }
                Some(_) => {}
            }
            let position = i as i16 + 1;
            if let Some(draft) = store::place(&mut tx, row.id, id, position).await? {
                forgotten.push((row.id, draft));
            }
            audit_in_place(
                &mut tx,
                who,
                &row,
                "compose",
                &format!("article {position} of {} in message {id}", ids.len()),
            )
            .await?;
        }
        tx.commit().await?;
        self.delete_forgotten_drafts(account, forgotten, "recomposed into a message")
            .await;
        self.get_message(who, id).await
    }

    /// A message and its articles, as the caller may see them.
    pub async fn get_message(&self, who: &Who, id: Uuid) -> Result<MessageView, AppError> {
        let message = store::get(self.db(), id)
            .await?
            .filter(|m| who.accounts.contains(&m.account))
            .ok_or(AppError::NotFound)?;
        let articles = store::articles(self.db(), id).await?;
        if !articles.iter().all(|a| who.sees(a)) {
            return Err(AppError::NotFound);
        }
        Ok(MessageView { message, articles })
    }

    /// The headline whose WeChat job a message member's is (the job id is recorded on
    /// the headline only); `None` for an article in no message, a headline, or a
    /// message the caller may not read whole (an editor's, of another department:
    /// left out rather than fail the read).
    pub async fn headline_of(
        &self,
        who: &Who,
        row: &ArticleRow,
    ) -> Result<Option<ArticleRow>, AppError> {
        let Some(message) = row.message_id.filter(|_| row.is_message_member()) else {
            return Ok(None);
        };
        match self.get_message(who, message).await {
            Ok(message) => Ok(message
                .articles
                .into_iter()
                .find(|a| a.is_message_headline())),
            Err(AppError::NotFound) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Takes a message apart while all its articles are still approved (audited on
    /// each); the articles stay approved and may go out alone or in another message.
    pub async fn dissolve_message(&self, who: &Who, id: Uuid) -> Result<usize, AppError> {
        require_publisher(who, "dissolve a message")?;
        let mut tx = self.db().begin().await?;
        let message = store::lock(&mut tx, id)
            .await?
            .filter(|m| who.accounts.contains(&m.account))
            .ok_or(AppError::NotFound)?;
        // In id order, as a verdict on the headline's job takes them: taken out one by
        // one below, in no set order, they could deadlock with it.
        store::lock_articles(&mut tx, id).await?;
        let articles = store::articles(&mut *tx, id).await?;
        for article in &articles {
            if article.state() != ArticleState::Approved {
                return Err(ReviewError::NotComposable {
                    article: article.id.to_string(),
                    state: article.state(),
                }
                .into());
            }
            refuse_unsettled(article)?;
        }
        let forgotten = store::clear(&mut tx, id).await?;
        for article in &articles {
            audit_in_place(
                &mut tx,
                who,
                article,
                "dissolve",
                &format!("message {id} dissolved"),
            )
            .await?;
        }
        store::delete(&mut tx, id).await?;
        tx.commit().await?;
        self.delete_forgotten_drafts(&message.account, forgotten, "its message was dissolved")
            .await;
        Ok(articles.len())
    }

    /// Deletes the WeChat drafts a committed change of messages made every article
    /// forget, one by one (each `(article, media id)`): best effort, as
    /// [`Articles::delete_forgotten_draft`] says. Only drafts of articles whose last
    /// send is settled come here (a message is not changed while one may have gone
    /// out), so none of them is what a send that reached followers was made of.
    async fn delete_forgotten_drafts(
        &self,
        account: &str,
        mut forgotten: Vec<(Uuid, String)>,
        why: &str,
    ) {
        forgotten.sort_by(|a, b| a.1.cmp(&b.1));
        forgotten.dedup_by(|a, b| a.1 == b.1);
        for (article, draft) in forgotten {
            self.delete_forgotten_draft(account, article, &draft, why)
                .await;
        }
    }
}

/// Refuses to change a message (recompose, dissolve) or to put an article in one
/// while an article's last send may have reached followers (`send_outcome_unknown`,
/// set on the headline): WeChat may hold the message as it stood, under the
/// headline's `clientmsgid`. Taken apart, a member would go out alone unconfirmed
/// (the flag is read on the headline only), and a send again under that key would
/// meet 45065 for the old line-up. The publisher settles it first: publishing the
/// headline with `confirm_possible_duplicate` (a scheduled retry may be cancelled
/// first), or RecordPublished once it has failed; a return for revision still takes
/// an article out, carrying the flag.
fn refuse_unsettled(article: &ArticleRow) -> Result<(), AppError> {
    if article.send_outcome_unknown {
        return Err(ReviewError::UnsettledSend {
            article: article.id.to_string(),
        }
        .into());
    }
    Ok(())
}

/// Refuses an article of another account than the message's.
fn on_account(row: &ArticleRow, account: &str) -> Result<(), AppError> {
    if row.account != account {
        return Err(AppError::Invalid(format!(
            "article_ids: {} is on account {}, not {account}",
            row.id, row.account
        )));
    }
    Ok(())
}

fn describe((channel, tag): &(String, Option<i64>)) -> String {
    match tag {
        Some(tag) if *tag > 0 => format!("{channel} to tag {tag}"),
        _ => channel.clone(),
    }
}
