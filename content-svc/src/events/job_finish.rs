//! `PUBLISHJOBFINISH` and `MASSSENDJOBFINISH` from `WECHAT_INBOUND` (one durable
//! consumer each: NATS 2.9 takes one filter subject per consumer). Each callback is
//! claimed by its event id and applied in one transaction: the article becomes
//! published (URL, msg_data_id) or failed (WeChat's reason). A verdict whose
//! callback never comes is asked of WeChat by `jobs::reconcile`, through the same
//! `Articles::apply_job_result`: whichever comes second changes nothing. A callback
//! for the job an article failed as outcome unknown awaits (a 45065 for a changed
//! line-up) is applied the same way, and ends the reconciliation's asking about it.

use std::time::Duration;

use platform::consumer::{EventHandler, HandleError, Received};
use platform::inbound::InboundEvent;
use platform::nats::{ConsumerSpec, PATIENT_DELIVERIES, WAITING_MAX_ACK_PENDING, WECHAT_INBOUND};
use wechat::message::{Event, Payload, PublishStatus};

use crate::app::AppError;
use crate::app::articles::{Articles, Job, Outcome};

/// How long a result for a job no article holds waits (`HandleError::NotYet`) before
/// it is taken for another tool's job.
const UNRECORDED_GRACE: chrono::TimeDelta = chrono::TimeDelta::seconds(120);

/// The free-publish results.
pub const PUBLISH_CONSUMER: ConsumerSpec = ConsumerSpec {
    stream: WECHAT_INBOUND,
    durable: "content-publishjobfinish",
    filter_subject: "wechat.inbound.*.event.publishjobfinish",
    max_deliver: PATIENT_DELIVERIES,
    ack_wait: Duration::from_secs(30),
    max_ack_pending: WAITING_MAX_ACK_PENDING,
};

/// The mass-send results.
pub const MASS_CONSUMER: ConsumerSpec = ConsumerSpec {
    stream: WECHAT_INBOUND,
    durable: "content-masssendjobfinish",
    filter_subject: "wechat.inbound.*.event.masssendjobfinish",
    max_deliver: PATIENT_DELIVERIES,
    ack_wait: Duration::from_secs(30),
    max_ack_pending: WAITING_MAX_ACK_PENDING,
};

/// What a callback says about which job.
fn verdict(event: &InboundEvent) -> Option<(String, bool, Outcome)> {
    let Payload::Event { kind, .. } = &event.message.payload else {
        return None;
    };
    match kind {
        Event::PublishJobFinish(job) => {
            // Still publishing: WeChat sends another callback when it is done.
            let outcome = Outcome::of_publish_job(
                code(job.publish_status),
                // Every article's URL by its place (idx 1 is the headline).
                job.articles
                    .iter()
                    .map(|a| (a.idx, a.url.clone()))
                    .collect(),
                job.article_id.clone(),
                &job.fail_idx,
                event.occurred_at,
            )?;
            Some((job.publish_id.clone(), true, outcome))
        }
        Event::MassSendJobFinish(job) => {
            let outcome = Outcome::of_mass_job_finish(job, event.occurred_at);
            Some((job.msg_id.to_string(), false, outcome))
        }
        _ => None,
    }
}

fn code(status: PublishStatus) -> u32 {
    match status {
        PublishStatus::Success => 0,
        PublishStatus::Publishing => 1,
        PublishStatus::OriginalityFailed => 2,
        PublishStatus::Failed => 3,
        PublishStatus::ReviewFailed => 4,
        PublishStatus::UserDeleted => 5,
        PublishStatus::Banned => 6,
        PublishStatus::Other(n) => n,
    }
}

async fn apply(
    articles: &Articles,
    db: &sqlx::PgPool,
    received: &Received<InboundEvent>,
) -> Result<(), HandleError> {
    let event = &received.event;
    let Some((job, is_publish, outcome)) = verdict(event) else {
        return Ok(());
    };
    let mut tx = db.begin().await.map_err(HandleError::database)?;
    if !platform::db::claim_event(&mut tx, event.event_id.as_str())
        .await
        .map_err(HandleError::database)?
    {
        return Ok(());
    }
    let job = if is_publish {
        Job::Publish(&job)
    } else {
        Job::Mass(&job)
    };
    let applied = articles
        .apply_job_result(
            &mut tx,
            event.account.as_str(),
            job,
            outcome.clone(),
            event.event_id.as_str(),
        )
        .await
        .map_err(|error| match error {
            AppError::Database(e) => HandleError::database(e),
            moving @ AppError::KeptMoving { .. } => HandleError::Transient(moving.to_string()),
            other => HandleError::Permanent(other.to_string()),
        })?;
    if applied.is_none() && chrono::Utc::now() - event.occurred_at < UNRECORDED_GRACE {
        // WeChat can report a job before the sender has recorded its id (the
        // callback races the API answer): roll the claim back and let the runner
        // deliver it again. An older unknown job is another tool's, and is dropped.
        return Err(HandleError::NotYet(format!(
            "job {} not recorded yet",
            match job {
                Job::Publish(id) | Job::Mass(id) => id,
            }
        )));
    }
    tx.commit().await.map_err(HandleError::database)?;
    match applied {
        Some(true) => articles.notify(),
        Some(false) => {}
        None => dropped(event.account.as_str(), job, &outcome),
    }
    Ok(())
}

/// Logs and counts a verdict for a job no article holds, dropped after the grace:
/// another tool's job, or one of ours whose id was never recorded (a submit whose
/// answer was lost leaves its article `failed` with `send_outcome_unknown`). The
/// line gives what a publisher needs to settle such an article with
/// `RecordPublished`: the job id, WeChat's article id and URLs.
fn dropped(account: &str, job: Job<'_>, outcome: &Outcome) {
    let (channel, job_id) = match job {
        Job::Publish(id) => ("freepublish", id),
        Job::Mass(id) => ("mass_send", id),
    };
    // By account too: a job no article holds is another tool's (or someone's)
    // publishing with that account's credentials, or one of its lost sends.
    metrics::counter!(
        "content_job_finish_unrecorded_total",
        "account" => account.to_owned(),
        "channel" => channel
    )
    .increment(1);
    match outcome {
        Outcome::Published {
            urls, msg_data_id, ..
        } => {
            tracing::warn!(
                account,
                channel,
                job_id,
                article_id = msg_data_id.as_deref().unwrap_or(""),
                urls = %crate::app::articles::log_urls(urls),
                "wechat published a job no article holds; dropped (if it is an article whose \
                 send outcome is unknown, settle it with RecordPublished)"
            );
        }
        Outcome::Failed(reason) | Outcome::Unknown(reason) => tracing::warn!(
            account,
            channel,
            job_id,
            reason,
            "wechat failed a job no article holds; dropped"
        ),
        Outcome::AlreadySent | Outcome::Recorded { .. } => {}
    }
}

/// Applies `PUBLISHJOBFINISH`.
pub struct PublishFinished {
    pub articles: Articles,
    pub db: sqlx::PgPool,
}

impl EventHandler for PublishFinished {
    const CONSUMER: ConsumerSpec = PUBLISH_CONSUMER;
    type Event = InboundEvent;

    async fn handle(&self, event: &Received<InboundEvent>) -> Result<(), HandleError> {
        apply(&self.articles, &self.db, event).await
    }
}

/// Applies `MASSSENDJOBFINISH`.
pub struct MassSendFinished {
    pub articles: Articles,
    pub db: sqlx::PgPool,
}

impl EventHandler for MassSendFinished {
    const CONSUMER: ConsumerSpec = MASS_CONSUMER;
    type Event = InboundEvent;

    async fn handle(&self, event: &Received<InboundEvent>) -> Result<(), HandleError> {
        apply(&self.articles, &self.db, event).await
    }
}
