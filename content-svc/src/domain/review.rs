//! The review workflow (三审) as a pure state machine: who may do what, in which
//! state, and what the article becomes. Separation of duties: the three reviews are
//! by three different people, none of them the author.

use std::fmt;

use platform::Role;

/// Where an article is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArticleState {
    /// Being written; the author may edit it.
    Draft,
    /// Waiting for the first review (初审).
    Submitted,
    /// First review passed; waiting for the second (复审).
    FirstReviewed,
    /// Second review passed; waiting for the final approval (终审).
    SecondReviewed,
    /// Final approval given: may be scheduled or published.
    Approved,
    /// Due to be sent at its scheduled time.
    Scheduled,
    /// Handed to WeChat; waiting for the job-finish callback.
    Publishing,
    /// WeChat confirmed it.
    Published,
    /// WeChat (or a send) refused it for good; the publisher may try again.
    Failed,
    /// Deleted after publishing.
    Retracted,
}

impl ArticleState {
    /// Every state, in workflow order.
    pub const ALL: [ArticleState; 10] = [
        Self::Draft,
        Self::Submitted,
        Self::FirstReviewed,
        Self::SecondReviewed,
        Self::Approved,
        Self::Scheduled,
        Self::Publishing,
        Self::Published,
        Self::Failed,
        Self::Retracted,
    ];

    /// The state's stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Submitted => "submitted",
            Self::FirstReviewed => "first_reviewed",
            Self::SecondReviewed => "second_reviewed",
            Self::Approved => "approved",
            Self::Scheduled => "scheduled",
            Self::Publishing => "publishing",
            Self::Published => "published",
            Self::Failed => "failed",
            Self::Retracted => "retracted",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// The review stage an article in this state waits for, if any.
    pub const fn pending_stage(self) -> Option<ReviewStage> {
        match self {
            Self::Submitted => Some(ReviewStage::First),
            Self::FirstReviewed => Some(ReviewStage::Second),
            Self::SecondReviewed => Some(ReviewStage::Final),
            _ => None,
        }
    }

    /// Whether the content may still be edited (only drafts; a rejected article is a draft again).
    pub const fn editable(self) -> bool {
        matches!(self, Self::Draft)
    }
}

impl fmt::Display for ArticleState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The three review stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReviewStage {
    /// 初审
    First,
    /// 复审
    Second,
    /// 终审
    Final,
}

impl ReviewStage {
    /// The stage's stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::First => "first",
            Self::Second => "second",
            Self::Final => "final",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::First, Self::Second, Self::Final]
            .into_iter()
            .find(|s| s.as_str() == name)
    }

    /// The role a stage needs: the first two reviews are the reviewers'; the final
    /// approval is the publisher's (the office that answers for what goes out).
    pub const fn role(self) -> Role {
        match self {
            Self::First | Self::Second => Role::Reviewer,
            Self::Final => Role::Publisher,
        }
    }
}

/// Who acts: a person (as vouched for by their department's key) and the roles of the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// A stable id of the person, e.g. `office:wang`.
    pub id: String,
    pub roles: Vec<Role>,
}

impl Actor {
    fn has(&self, role: Role) -> bool {
        self.roles.contains(&role) || self.roles.contains(&Role::Admin)
    }
}

/// What the review history of the current submission says (who reviewed at which stage).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReviewHistory {
    /// (stage, reviewer id) of each passed stage of the current submission.
    pub passed: Vec<(ReviewStage, String)>,
}

/// What an actor asks to do to an article.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Submit,
    /// The author takes a submitted article back to draft.
    Withdraw,
    Approve,
    Reject,
    Schedule,
    CancelSchedule,
    /// Hand to WeChat now (the publisher, or the scheduler when due).
    Publish,
    /// WeChat's job-finish callback said it went out.
    Confirm,
    /// WeChat refused it, or a send failed for good.
    Fail,
    /// Delete a published article (with a reason).
    Retract,
    /// Publish a correction notice for a published article.
    Correct,
    /// Send an approved, scheduled or failed article back to draft for revision
    /// (with a reason): a mistake noticed after the final approval.
    Return,
    /// A publisher found in WeChat an article whose send's outcome was unknown (and
    /// which was failed for it): recorded as published by hand
    /// ([`check_record_published`]; the publisher's role is the use case's check).
    RecordPublished,
}

/// A refused action, saying which rule or which role.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReviewError {
    #[error("the {role} role is needed to {action}")]
    RoleNeeded {
        role: &'static str,
        action: &'static str,
    },
    #[error("an article that is {state} cannot be {action}")]
    WrongState {
        state: ArticleState,
        action: &'static str,
    },
    #[error("the author of an article, or anyone who edited it, may not review it")]
    AuthorReviews,
    #[error("whoever submitted an article for review may not review it")]
    SubmitterReviews,
    #[error(
        "{actor} may be {other}, who {did}: a department acting without naming a person \
         (x-actor) stands for each of its people"
    )]
    MayBeSamePerson {
        actor: String,
        other: String,
        did: String,
    },
    #[error(
        "{hits} sensitive-word hit(s) of article {article} are not overridden; a reviewer \
         must override each with a reason"
    )]
    ArticleOpenHits { article: String, hits: usize },
    #[error("{reviewer} already did the {stage} review; each review needs a different person")]
    SameReviewer {
        reviewer: String,
        stage: &'static str,
    },
    #[error(
        "article {article} has no cover (cover_media_id or cover_image_id); WeChat's draft \
         needs one, so it cannot be submitted without"
    )]
    NoCover { article: String },
    #[error("the article changed since you read it: version {current} is current")]
    StaleVersion { current: i32 },
    #[error("only the author may withdraw an article")]
    NotAuthor,
    #[error("a reason is required to {0}")]
    ReasonRequired(&'static str),
    #[error(
        "{0} sensitive-word hit(s) are not overridden; a reviewer must override each with a reason"
    )]
    OpenHits(usize),
    #[error(
        "the article is number {position} of message {message}; only the message's headline (number 1) is previewed, scheduled and published, and takes it along"
    )]
    MessageMember { position: i16, message: String },
    #[error("article {article} is {state}; only approved articles make up a message")]
    NotComposable {
        article: String,
        state: ArticleState,
    },
    #[error(
        "article {article} goes out by {channel}; every article of a message goes out as its headline does ({headline_channel})"
    )]
    ChannelMismatch {
        article: String,
        channel: String,
        headline_channel: String,
    },
    #[error("article {article} already belongs to message {message}")]
    InAnotherMessage { article: String, message: String },
    #[error("WeChat allows one edit of a sent article; it was edited after publishing already")]
    AlreadyEdited,
    #[error(
        "WeChat allows an edit of at most 20 characters after sending (title and cover fixed); this one changes {0}"
    )]
    EditTooLarge(usize),
    /// (Within the 200 characters of a status message.)
    #[error(
        "the last send may have reached followers (its outcome is unknown): check the \
         account's sent messages in WeChat's console, then publish again with \
         confirm_possible_duplicate if they did not get it"
    )]
    PossibleDuplicate,
    /// (Within the 200 characters of a status message.)
    #[error(
        "article {article}'s last send may have reached followers as its message stood: \
         settle it first (publish with confirm_possible_duplicate; once failed, RecordPublished)"
    )]
    UnsettledSend { article: String },
    /// (Within the 200 characters of a status message.)
    #[error(
        "the article's last send has a known outcome (WeChat refused it, or it never \
         reached WeChat): publish it again rather than record it as published"
    )]
    OutcomeKnown,
}

/// The facts a decision needs.
#[derive(Debug, Clone)]
pub struct Subject<'a> {
    pub state: ArticleState,
    /// The author's person id.
    pub author: &'a str,
    /// Everyone who wrote a version of it (the author too): none of them reviews it.
    pub writers: &'a [String],
    /// Who submitted it for the current round: they do not review it
    /// either (a colleague of the department who sent another's draft to review
    /// answers for it as its writers do: no one person does two stages).
    pub submitters: &'a [String],
    pub history: &'a ReviewHistory,
    /// Sensitive-word hits in the current version that no reviewer has overridden.
    pub open_hits: usize,
}

/// The decided outcome: the next state and, for a review, the stage it passed or failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub next: ArticleState,
    pub stage: Option<ReviewStage>,
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Editor => "editor",
        Role::Reviewer => "reviewer",
        Role::Publisher => "publisher",
        Role::Agent => "agent",
        Role::Admin => "admin",
        Role::Viewer => "viewer",
    }
}

fn need(actor: &Actor, role: Role, action: &'static str) -> Result<(), ReviewError> {
    if actor.has(role) {
        Ok(())
    } else {
        Err(ReviewError::RoleNeeded {
            role: role_name(role),
            action,
        })
    }
}

/// Decides whether `actor` may do `action` to the article and what it becomes.
/// `reason` is the comment given (required to reject, retract and correct).
pub fn decide(
    subject: &Subject<'_>,
    actor: &Actor,
    action: &Action,
    reason: &str,
) -> Result<Decision, ReviewError> {
    use ArticleState as S;
    let state = subject.state;
    let wrong = |action| Err(ReviewError::WrongState { state, action });
    let to = |next| Ok(Decision { next, stage: None });
    match action {
        Action::Submit => {
            need(actor, Role::Editor, "submit")?;
            if state != S::Draft {
                return wrong("submitted");
            }
            gate(subject)?;
            to(S::Submitted)
        }
        Action::Withdraw => {
            need(actor, Role::Editor, "withdraw")?;
            if subject.state.pending_stage().is_none() {
                return wrong("withdrawn");
            }
            if actor.id != subject.author {
                return Err(ReviewError::NotAuthor);
            }
            to(S::Draft)
        }
        Action::Approve | Action::Reject => {
            let verb = if *action == Action::Approve {
                "approve"
            } else {
                "reject"
            };
            let Some(stage) = state.pending_stage() else {
                return wrong(if *action == Action::Approve {
                    "approved"
                } else {
                    "rejected"
                });
            };
            need(actor, stage.role(), verb)?;
            check_not_a_writer(&actor.id, subject.author, subject.writers)?;
            check_not_a_submitter(&actor.id, subject.submitters)?;
            for (done, who) in &subject.history.passed {
                if *who == actor.id {
                    return Err(ReviewError::SameReviewer {
                        reviewer: actor.id.clone(),
                        stage: done.as_str(),
                    });
                }
                if may_be_same_person(&actor.id, who) {
                    return Err(ReviewError::MayBeSamePerson {
                        actor: actor.id.clone(),
                        other: who.clone(),
                        did: format!("did the {} review", done.as_str()),
                    });
                }
            }
            if *action == Action::Reject {
                if reason.trim().is_empty() {
                    return Err(ReviewError::ReasonRequired("reject"));
                }
                return Ok(Decision {
                    next: S::Draft,
                    stage: Some(stage),
                });
            }
            gate(subject)?;
            let next = match stage {
                ReviewStage::First => S::FirstReviewed,
                ReviewStage::Second => S::SecondReviewed,
                ReviewStage::Final => S::Approved,
            };
            Ok(Decision {
                next,
                stage: Some(stage),
            })
        }
        Action::Schedule => {
            need(actor, Role::Publisher, "schedule")?;
            if !matches!(state, S::Approved | S::Scheduled | S::Failed) {
                return wrong("scheduled");
            }
            gate(subject)?;
            to(S::Scheduled)
        }
        Action::CancelSchedule => {
            need(actor, Role::Publisher, "cancel a schedule")?;
            if state != S::Scheduled {
                return wrong("unscheduled");
            }
            to(S::Approved)
        }
        Action::Publish => {
            need(actor, Role::Publisher, "publish")?;
            if !matches!(state, S::Approved | S::Scheduled | S::Failed) {
                return wrong("published");
            }
            gate(subject)?;
            to(S::Publishing)
        }
        Action::Confirm => match state {
            S::Publishing => to(S::Published),
            _ => wrong("confirmed"),
        },
        Action::Fail => match state {
            S::Publishing | S::Scheduled => to(S::Failed),
            _ => wrong("failed"),
        },
        Action::RecordPublished => match state {
            S::Failed => to(S::Published),
            _ => wrong("recorded as published"),
        },
        Action::Retract => {
            need(actor, Role::Publisher, "retract")?;
            if state != S::Published {
                return wrong("retracted");
            }
            if reason.trim().is_empty() {
                return Err(ReviewError::ReasonRequired("retract"));
            }
            to(S::Retracted)
        }
        Action::Correct => {
            need(actor, Role::Publisher, "correct")?;
            // The urgent order in practice is retract first, then publish the notice
            // (domain.md §3), so a retracted original may be corrected too.
            if !matches!(state, S::Published | S::Retracted) {
                return wrong("corrected");
            }
            if reason.trim().is_empty() {
                return Err(ReviewError::ReasonRequired("correct"));
            }
            // The original stays as it is; the correction is a new article (a notice
            // linked to it) that goes through review like any other.
            to(state)
        }
        Action::Return => {
            // A review decision, as a rejection is; any stage's reviewer may spot
            // the mistake (先审后发: nothing goes out that a reviewer doubts).
            if !(actor.has(Role::Reviewer) || actor.has(Role::Publisher)) {
                return Err(ReviewError::RoleNeeded {
                    role: "reviewer or publisher",
                    action: "return an article for revision",
                });
            }
            // Not once it is with WeChat (publishing) or out (published: retract,
            // then correct); before approval a rejection does it.
            if !matches!(state, S::Approved | S::Scheduled | S::Failed) {
                return wrong("returned for revision");
            }
            if reason.trim().is_empty() {
                return Err(ReviewError::ReasonRequired(
                    "return an article for revision",
                ));
            }
            // A draft again: its next submission opens a new round of three reviews.
            to(S::Draft)
        }
    }
}

/// Whether a publisher's send (publish now, or a schedule) may go. While the
/// article's last send has an unknown outcome (WeChat's answer was lost, or the send
/// was cut off mid-way), WeChat may have pushed it: a mass send's `clientmsgid`
/// stops a second push for 24 hours only, and a free publication has none. So a
/// send again needs the publisher's explicit confirmation that the followers did
/// not get it; returns whether that confirmation is what let it go (to be audited).
pub fn check_send_again(outcome_unknown: bool, confirmed: bool) -> Result<bool, ReviewError> {
    match (outcome_unknown, confirmed) {
        (false, _) => Ok(false),
        (true, true) => Ok(true),
        (true, false) => Err(ReviewError::PossibleDuplicate),
    }
}

/// Whether a publisher may record an article as published by hand: only a failed
/// one whose last send's outcome is unknown (WeChat's answer to it was lost, or it
/// was cut off mid-way), which WeChat may hold. One WeChat refused, or that never
/// reached it, is published again instead: recorded published, it would claim a
/// publication nobody made.
pub fn check_record_published(
    state: ArticleState,
    outcome_unknown: bool,
) -> Result<(), ReviewError> {
    if state != ArticleState::Failed {
        return Err(ReviewError::WrongState {
            state,
            action: "recorded as published",
        });
    }
    if !outcome_unknown {
        return Err(ReviewError::OutcomeKnown);
    }
    Ok(())
}

/// Whether two actor ids may name the same person, for the separation of duties.
/// An id is `department:person`, or the department alone when the caller named
/// nobody (no `x-actor`): that may be any of the department's people, so it
/// conflicts with each of them, and they with it. (Only the author's own rights,
/// such as a withdrawal, need the very same id.)
pub fn may_be_same_person(a: &str, b: &str) -> bool {
    match (a.split_once(':'), b.split_once(':')) {
        (Some(_), Some(_)) | (None, None) => a == b,
        (None, Some((department, _))) => a == department,
        (Some((department, _)), None) => b == department,
    }
}

/// Refuses `actor` (an id) a review or an override of an article that `author`
/// wrote and `writers` edited, when they may be the same person
/// ([`may_be_same_person`]).
pub fn check_not_a_writer(
    actor: &str,
    author: &str,
    writers: &[String],
) -> Result<(), ReviewError> {
    let writers = || std::iter::once(author).chain(writers.iter().map(String::as_str));
    if writers().any(|writer| writer == actor) {
        return Err(ReviewError::AuthorReviews);
    }
    match writers().find(|writer| may_be_same_person(actor, writer)) {
        Some(writer) => Err(ReviewError::MayBeSamePerson {
            actor: actor.to_owned(),
            other: writer.to_owned(),
            did: "wrote a version of the article".to_owned(),
        }),
        None => Ok(()),
    }
}

/// Refuses `actor` (an id) a review or an override of an article that one of
/// `submitters` submitted, when they may be the same person
/// ([`may_be_same_person`]): submitting is a stage of its own.
pub fn check_not_a_submitter(actor: &str, submitters: &[String]) -> Result<(), ReviewError> {
    if submitters.iter().any(|submitter| submitter == actor) {
        return Err(ReviewError::SubmitterReviews);
    }
    match submitters
        .iter()
        .find(|submitter| may_be_same_person(actor, submitter))
    {
        Some(submitter) => Err(ReviewError::MayBeSamePerson {
            actor: actor.to_owned(),
            other: submitter.clone(),
            did: "submitted the article for review".to_owned(),
        }),
        None => Ok(()),
    }
}

/// A hit that nobody overrode blocks every step that moves an article forward.
fn gate(subject: &Subject<'_>) -> Result<(), ReviewError> {
    if subject.open_hits > 0 {
        return Err(ReviewError::OpenHits(subject.open_hits));
    }
    Ok(())
}

/// WeChat allows one edit of at most 20 characters after sending, title and cover
/// fixed (domain.md §3): whether `before` → `after` of a published body fits.
pub fn post_publish_edit_allowed(before: &str, after: &str) -> bool {
    post_publish_edit_size(before, after) <= POST_PUBLISH_EDIT_MAX
}

/// The most characters WeChat lets a post-publish edit change.
pub const POST_PUBLISH_EDIT_MAX: usize = 20;

/// How many characters an edit changes: the longer side of what differs between
/// the common prefix and the common suffix.
pub fn post_publish_edit_size(before: &str, after: &str) -> usize {
    let a: Vec<char> = before.chars().collect();
    let b: Vec<char> = after.chars().collect();
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    (a.len() - prefix - suffix).max(b.len() - prefix - suffix)
}

/// How far ahead an article may be scheduled: a year. A later time is a typo,
/// and one in the year 200000 would wait in the schedule for ever.
pub const SCHEDULE_AHEAD_MAX_DAYS: i64 = 366;

/// Checks the time an article is scheduled for, `now` being now; the message
/// names the field (`at`).
pub fn check_schedule_time(
    at: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), String> {
    if at > now + chrono::Duration::days(SCHEDULE_AHEAD_MAX_DAYS) {
        return Err(format!(
            "at ({}) is more than {SCHEDULE_AHEAD_MAX_DAYS} days ahead",
            at.to_rfc3339()
        ));
    }
    Ok(())
}

/// The audit comment of a schedule: the time it was set for, in Beijing time (ISO
/// 8601, +08:00), since a reschedule overwrites `scheduled_for` and the trail is
/// then the only record of who set which time; the publisher's comment follows.
pub fn schedule_comment(at: chrono::DateTime<chrono::Utc>, comment: &str) -> String {
    let at = beijing(at);
    match comment.trim() {
        "" => format!("scheduled for {at}"),
        comment => format!("scheduled for {at}: {comment}"),
    }
}

/// A return's trail comment when the article's send may have gone out: the WeChat
/// draft it was made of is kept (not deleted) and named, for whoever settles the send.
pub fn kept_draft_comment(media_id: &str, comment: &str) -> String {
    let kept = format!(
        "WeChat draft {media_id} kept: its send's outcome is unknown; delete it once settled"
    );
    match comment.trim() {
        "" => kept,
        comment => format!("{comment} ({kept})"),
    }
}

/// A time as the office reads it in the trail: ISO 8601 in Beijing time (+08:00).
pub fn beijing(at: chrono::DateTime<chrono::Utc>) -> String {
    let offset = chrono::FixedOffset::east_opt(8 * 3600).expect("+08:00 is a valid offset");
    at.with_timezone(&offset)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

/// The audit comment of the scheduler's claim of a due article: when it was due
/// and which attempt this is, so a send later than its time is explained by the
/// trail (a retry's own time, the attempts before it).
pub fn claim_comment(
    scheduled_for: Option<chrono::DateTime<chrono::Utc>>,
    retry_at: Option<chrono::DateTime<chrono::Utc>>,
    attempt: i32,
    max_attempts: i32,
) -> String {
    let due = match (scheduled_for, retry_at) {
        (Some(at), Some(retry)) => format!(
            "a retry due {} (scheduled for {})",
            beijing(retry),
            beijing(at)
        ),
        (Some(at), None) => format!("due {}", beijing(at)),
        (None, Some(retry)) => format!("a retry due {}", beijing(retry)),
        (None, None) => "due".to_owned(),
    };
    format!("claimed for sending: {due}; attempt {attempt} of {max_attempts}")
}

/// The audit comment of a send put back on the schedule: why, and when it goes
/// again. `counted`: the failed attempt counts against `max_attempts` (a wait for
/// WeChat's per-minute limit does not); `attempts` is how many were used.
pub fn retry_comment(
    reason: &str,
    at: chrono::DateTime<chrono::Utc>,
    counted: bool,
    attempts: i32,
    max_attempts: i32,
) -> String {
    let at = beijing(at);
    if counted {
        format!(
            "the send failed ({reason}); sent again at {at}, attempt {} of {max_attempts}",
            attempts + 1
        )
    } else {
        format!("{reason}; sent again at {at}, no attempt used")
    }
}

/// Refuses a review, an override or an edit of a version other than the one read
/// (`read`, when given): the editor may have withdrawn, edited and resubmitted since,
/// and an approval applies to the current version; another editor may have saved,
/// and an edit replaces the whole content.
pub fn check_read_version(read: Option<i32>, current: i32) -> Result<(), ReviewError> {
    match read {
        Some(read) if read != current => Err(ReviewError::StaleVersion { current }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_send_again_after_an_unknown_outcome_needs_the_publishers_confirmation() {
        assert_eq!(check_send_again(false, false), Ok(false));
        assert_eq!(check_send_again(false, true), Ok(false));
        assert_eq!(check_send_again(true, true), Ok(true));
        let refused = check_send_again(true, false).unwrap_err().to_string();
        assert!(
            refused.starts_with("the last send may have reached followers")
                && refused.chars().count() <= 200
                && refused.contains("WeChat's console")
                && refused.contains("confirm_possible_duplicate"),
            "{refused}"
        );
    }

    #[test]
    fn an_article_is_scheduled_at_most_a_year_ahead() {
        let now = chrono::Utc::now();
        assert!(check_schedule_time(now + chrono::Duration::days(366), now).is_ok());
        let err = check_schedule_time(now + chrono::Duration::days(367), now).unwrap_err();
        assert!(err.starts_with("at ("), "{err}");
    }

    fn actor(id: &str, role: Role) -> Actor {
        Actor {
            id: id.into(),
            roles: vec![role],
        }
    }

    fn walk(
        state: ArticleState,
        history: &ReviewHistory,
        who: &Actor,
        action: Action,
    ) -> Result<Decision, ReviewError> {
        decide(
            &Subject {
                state,
                author: "dept:li",
                writers: &[],
                submitters: &[],
                history,
                open_hits: 0,
            },
            who,
            &action,
            "ok",
        )
    }

    #[test]
    fn a_schedules_comment_names_its_time_in_beijing_time() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-06T12:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(
            schedule_comment(at, ""),
            "scheduled for 2026-12-06T20:00:00+08:00"
        );
        assert_eq!(
            schedule_comment(at, " 晚间推送 "),
            "scheduled for 2026-12-06T20:00:00+08:00: 晚间推送"
        );
    }

    #[test]
    fn the_schedulers_claim_and_retry_say_when_and_which_attempt_in_beijing_time() {
        let at = |t: &str| chrono::DateTime::parse_from_rfc3339(t).unwrap().to_utc();
        assert_eq!(
            claim_comment(Some(at("2026-12-06T02:00:00Z")), None, 1, 5),
            "claimed for sending: due 2026-12-06T10:00:00+08:00; attempt 1 of 5"
        );
        assert_eq!(
            claim_comment(
                Some(at("2026-12-06T02:00:00Z")),
                Some(at("2026-12-06T02:03:05Z")),
                2,
                5
            ),
            "claimed for sending: a retry due 2026-12-06T10:03:05+08:00 (scheduled for \
             2026-12-06T10:00:00+08:00); attempt 2 of 5"
        );
        assert_eq!(
            retry_comment("busy", at("2026-12-06T02:00:10Z"), true, 1, 5),
            "the send failed (busy); sent again at 2026-12-06T10:00:10+08:00, attempt 2 of 5"
        );
        assert_eq!(
            retry_comment("60 a minute", at("2026-12-06T02:01:00Z"), false, 1, 5),
            "60 a minute; sent again at 2026-12-06T10:01:00+08:00, no attempt used"
        );
    }

    #[test]
    fn an_approved_scheduled_or_failed_article_is_returned_to_draft_with_a_reason() {
        let reviewer = actor("office:wang", Role::Reviewer);
        let publisher = actor("office:chen", Role::Publisher);
        let history = ReviewHistory::default();
        for state in [
            ArticleState::Approved,
            ArticleState::Scheduled,
            ArticleState::Failed,
        ] {
            for who in [&reviewer, &publisher] {
                assert_eq!(
                    walk(state, &history, who, Action::Return).unwrap().next,
                    ArticleState::Draft,
                    "{state} by {}",
                    who.id
                );
            }
        }
        let subject = Subject {
            state: ArticleState::Approved,
            author: "dept:li",
            writers: &[],
            submitters: &[],
            history: &history,
            open_hits: 0,
        };
        assert_eq!(
            decide(&subject, &reviewer, &Action::Return, " ").unwrap_err(),
            ReviewError::ReasonRequired("return an article for revision")
        );
        assert_eq!(
            walk(
                ArticleState::Approved,
                &history,
                &actor("dept:li", Role::Editor),
                Action::Return
            )
            .unwrap_err()
            .to_string(),
            "the reviewer or publisher role is needed to return an article for revision"
        );
        for state in [
            ArticleState::Draft,
            ArticleState::Submitted,
            ArticleState::SecondReviewed,
            ArticleState::Publishing,
            ArticleState::Published,
            ArticleState::Retracted,
        ] {
            assert!(
                matches!(
                    walk(state, &history, &publisher, Action::Return),
                    Err(ReviewError::WrongState { .. })
                ),
                "{state}"
            );
        }
    }

    #[test]
    fn a_retracted_article_may_be_corrected_and_stays_retracted() {
        let publisher = actor("office:chen", Role::Publisher);
        let history = ReviewHistory::default();
        let d = walk(
            ArticleState::Retracted,
            &history,
            &publisher,
            Action::Correct,
        )
        .unwrap();
        assert_eq!(d.next, ArticleState::Retracted);
        let d = walk(
            ArticleState::Published,
            &history,
            &publisher,
            Action::Correct,
        )
        .unwrap();
        assert_eq!(d.next, ArticleState::Published);
        assert!(
            walk(
                ArticleState::Approved,
                &history,
                &publisher,
                Action::Correct
            )
            .is_err()
        );
    }

    #[test]
    fn only_a_failed_article_of_unknown_outcome_is_recorded_as_published() {
        assert_eq!(check_record_published(ArticleState::Failed, true), Ok(()));
        assert_eq!(
            check_record_published(ArticleState::Failed, false),
            Err(ReviewError::OutcomeKnown)
        );
        assert!(matches!(
            check_record_published(ArticleState::Publishing, true),
            Err(ReviewError::WrongState { .. })
        ));
        let publisher = actor("office:chen", Role::Publisher);
        let history = ReviewHistory::default();
        let d = walk(
            ArticleState::Failed,
            &history,
            &publisher,
            Action::RecordPublished,
        )
        .unwrap();
        assert_eq!(d.next, ArticleState::Published);
        assert!(
            walk(
                ArticleState::Published,
                &history,
                &publisher,
                Action::RecordPublished
            )
            .is_err()
        );
    }

    #[test]
    fn an_article_goes_through_three_reviews_by_three_people_to_publishing() {
        let author = actor("dept:li", Role::Editor);
        let mut history = ReviewHistory::default();
        let d = walk(ArticleState::Draft, &history, &author, Action::Submit).unwrap();
        assert_eq!(d.next, ArticleState::Submitted);
        let mut state = d.next;
        for (who, role, expected) in [
            ("office:wang", Role::Reviewer, ArticleState::FirstReviewed),
            ("office:zhao", Role::Reviewer, ArticleState::SecondReviewed),
            ("office:chen", Role::Publisher, ArticleState::Approved),
        ] {
            let d = walk(state, &history, &actor(who, role), Action::Approve).unwrap();
            assert_eq!(d.next, expected);
            history.passed.push((d.stage.unwrap(), who.into()));
            state = d.next;
        }
        let publisher = actor("office:chen", Role::Publisher);
        assert_eq!(
            walk(state, &history, &publisher, Action::Publish)
                .unwrap()
                .next,
            ArticleState::Publishing
        );
        assert_eq!(
            walk(
                ArticleState::Publishing,
                &history,
                &publisher,
                Action::Confirm
            )
            .unwrap()
            .next,
            ArticleState::Published
        );
    }

    #[test]
    fn the_same_person_cannot_do_two_reviews() {
        let history = ReviewHistory {
            passed: vec![(ReviewStage::First, "office:wang".into())],
        };
        let error = walk(
            ArticleState::FirstReviewed,
            &history,
            &actor("office:wang", Role::Reviewer),
            Action::Approve,
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "office:wang already did the first review; each review needs a different person"
        );
    }

    #[test]
    fn the_author_cannot_review_their_own_article() {
        let who = Actor {
            id: "dept:li".into(),
            roles: vec![Role::Editor, Role::Reviewer],
        };
        let error = walk(
            ArticleState::Submitted,
            &ReviewHistory::default(),
            &who,
            Action::Approve,
        )
        .unwrap_err();
        assert_eq!(error, ReviewError::AuthorReviews);
    }

    #[test]
    fn a_department_acting_without_a_named_person_conflicts_with_each_of_its_people() {
        assert!(may_be_same_person("press", "press:li"));
        assert!(may_be_same_person("press:li", "press"));
        assert!(may_be_same_person("press", "press"));
        assert!(!may_be_same_person("press:li", "press:wang"));
        assert!(!may_be_same_person("press", "media:li"));
        assert!(!may_be_same_person("press", "media"));
        assert!(!may_be_same_person("press", "pressroom:li"));

        // Written by the department, reviewed by one of its people, and the other way.
        for (author, reviewer) in [("press", "press:li"), ("press:li", "press")] {
            let subject = Subject {
                state: ArticleState::Submitted,
                author,
                writers: &[],
                submitters: &[],
                history: &ReviewHistory::default(),
                open_hits: 0,
            };
            let refused = decide(
                &subject,
                &actor(reviewer, Role::Reviewer),
                &Action::Approve,
                "",
            )
            .unwrap_err();
            assert_eq!(
                refused,
                ReviewError::MayBeSamePerson {
                    actor: reviewer.into(),
                    other: author.into(),
                    did: "wrote a version of the article".into(),
                },
                "{author} → {reviewer}"
            );
        }
        // An earlier review by the department, then one of its people, and the other way.
        for (first, second) in [("media", "media:wang"), ("media:wang", "media")] {
            let history = ReviewHistory {
                passed: vec![(ReviewStage::First, first.into())],
            };
            let refused = walk(
                ArticleState::FirstReviewed,
                &history,
                &actor(second, Role::Reviewer),
                Action::Approve,
            )
            .unwrap_err();
            assert_eq!(
                refused.to_string(),
                format!(
                    "{second} may be {first}, who did the first review: a department acting \
                     without naming a person (x-actor) stands for each of its people"
                )
            );
        }
        // Another department's bare key, and two named people, are different people.
        assert!(
            walk(
                ArticleState::Submitted,
                &ReviewHistory::default(),
                &actor("media", Role::Reviewer),
                Action::Approve,
            )
            .is_ok()
        );
        let history = ReviewHistory {
            passed: vec![(ReviewStage::First, "media:wang".into())],
        };
        assert!(
            walk(
                ArticleState::FirstReviewed,
                &history,
                &actor("media:zhao", Role::Reviewer),
                Action::Approve,
            )
            .is_ok()
        );
    }

    #[test]
    fn final_approval_needs_the_publisher_role() {
        let error = walk(
            ArticleState::SecondReviewed,
            &ReviewHistory::default(),
            &actor("office:x", Role::Reviewer),
            Action::Approve,
        )
        .unwrap_err();
        assert_eq!(error.to_string(), "the publisher role is needed to approve");
    }

    #[test]
    fn nobody_who_submitted_an_article_reviews_it_nor_their_unnamed_department() {
        let submitters = ["dept:zhou".to_owned()];
        let subject = Subject {
            state: ArticleState::Submitted,
            author: "dept:li",
            writers: &[],
            submitters: &submitters,
            history: &ReviewHistory::default(),
            open_hits: 0,
        };
        let review = |id| decide(&subject, &actor(id, Role::Reviewer), &Action::Approve, "");
        assert_eq!(review("dept:zhou"), Err(ReviewError::SubmitterReviews));
        assert!(matches!(
            review("dept"),
            Err(ReviewError::MayBeSamePerson { .. })
        ));
        assert!(review("office:wang").is_ok());
    }

    #[test]
    fn nobody_who_edited_an_article_reviews_it() {
        let writers = ["dept:li".to_owned(), "dept:zhou".to_owned()];
        let subject = Subject {
            state: ArticleState::Submitted,
            author: "dept:li",
            writers: &writers,
            submitters: &[],
            history: &ReviewHistory::default(),
            open_hits: 0,
        };
        assert_eq!(
            decide(
                &subject,
                &actor("dept:zhou", Role::Reviewer),
                &Action::Approve,
                ""
            )
            .unwrap_err(),
            ReviewError::AuthorReviews
        );
        assert!(
            decide(
                &subject,
                &actor("office:wang", Role::Reviewer),
                &Action::Approve,
                ""
            )
            .is_ok()
        );
    }

    #[test]
    fn rejection_needs_a_reason_and_returns_the_article_to_draft() {
        let who = actor("office:wang", Role::Reviewer);
        let subject = Subject {
            state: ArticleState::Submitted,
            author: "dept:li",
            writers: &[],
            submitters: &[],
            history: &ReviewHistory::default(),
            open_hits: 0,
        };
        assert_eq!(
            decide(&subject, &who, &Action::Reject, " ").unwrap_err(),
            ReviewError::ReasonRequired("reject")
        );
        assert_eq!(
            decide(&subject, &who, &Action::Reject, "数据有误")
                .unwrap()
                .next,
            ArticleState::Draft
        );
    }

    #[test]
    fn an_open_sensitive_word_hit_blocks_submission_and_approval() {
        let subject = Subject {
            state: ArticleState::Draft,
            author: "dept:li",
            writers: &[],
            submitters: &[],
            history: &ReviewHistory::default(),
            open_hits: 2,
        };
        assert_eq!(
            decide(
                &subject,
                &actor("dept:li", Role::Editor),
                &Action::Submit,
                ""
            )
            .unwrap_err(),
            ReviewError::OpenHits(2)
        );
        let subject = Subject {
            state: ArticleState::Submitted,
            ..subject
        };
        assert_eq!(
            decide(
                &subject,
                &actor("office:wang", Role::Reviewer),
                &Action::Approve,
                ""
            )
            .unwrap_err(),
            ReviewError::OpenHits(2)
        );
    }

    #[test]
    fn only_drafts_are_submitted_and_only_published_articles_retracted() {
        let editor = actor("dept:li", Role::Editor);
        assert!(matches!(
            walk(
                ArticleState::Approved,
                &ReviewHistory::default(),
                &editor,
                Action::Submit
            ),
            Err(ReviewError::WrongState { .. })
        ));
        let publisher = actor("office:chen", Role::Publisher);
        assert!(
            walk(
                ArticleState::Approved,
                &ReviewHistory::default(),
                &publisher,
                Action::Retract
            )
            .is_err()
        );
        assert_eq!(
            walk(
                ArticleState::Published,
                &ReviewHistory::default(),
                &publisher,
                Action::Retract
            )
            .unwrap()
            .next,
            ArticleState::Retracted
        );
    }

    #[test]
    fn only_the_author_withdraws_a_submission() {
        let other = actor("dept:zhang", Role::Editor);
        assert_eq!(
            walk(
                ArticleState::Submitted,
                &ReviewHistory::default(),
                &other,
                Action::Withdraw
            )
            .unwrap_err(),
            ReviewError::NotAuthor
        );
        let author = actor("dept:li", Role::Editor);
        assert_eq!(
            walk(
                ArticleState::FirstReviewed,
                &ReviewHistory::default(),
                &author,
                Action::Withdraw
            )
            .unwrap()
            .next,
            ArticleState::Draft
        );
    }

    #[test]
    fn an_edit_after_publishing_is_at_most_twenty_characters() {
        assert!(post_publish_edit_allowed(
            "今天下午三点停水",
            "今天下午四点停水"
        ));
        assert!(!post_publish_edit_allowed("短", &"长".repeat(30)));
    }

    #[test]
    fn states_round_trip_through_their_stored_names() {
        for state in ArticleState::ALL {
            assert_eq!(ArticleState::parse(state.as_str()), Some(state));
        }
    }
}
