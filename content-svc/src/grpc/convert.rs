//! Wire messages ⇄ domain types and store rows, at the service edge.

use chrono::{DateTime, Utc};
use proto::content::v1 as pb;

use super::GrpcError;
use crate::app::articles::{ArticleView, Channel, VersionView};
use crate::domain::article::ArticleContent;
use crate::domain::request::{CreateRequest, RequestId};
use crate::domain::review::{Action, ArticleState};
use crate::domain::service::{RawService, ServiceDraft, ServiceError};
use crate::domain::version::VersionOutcome;
use crate::domain::{DirectoryInputError, ServiceListing};
use crate::store::articles::{ArticleRow, AuditRow, VersionRow};
use crate::store::directory::DirectoryEntryRow;
use crate::store::services::{CategoryRow, ServiceRow};

/// A `ListServices` request as a listing; an empty category means every category.
pub fn listing(request: &pb::ListServicesRequest) -> Result<ServiceListing, DirectoryInputError> {
    ServiceListing::parse(&request.account, &request.category)
}

/// A directory entry as served (its position and creation time stay inside).
pub fn service_entry(row: DirectoryEntryRow) -> pb::ServiceEntry {
    pb::ServiceEntry {
        id: row.id.to_string(),
        account: row.account,
        category: row.category,
        name: row.name,
        url: row.url,
        description: row.description,
        department: row.department,
    }
}

/// A directory service from the wire, checked. An empty department is the caller's.
pub fn service_draft(
    s: &pb::Service,
    caller_department: &str,
) -> Result<ServiceDraft, ServiceError> {
    let department = match s.department.trim() {
        "" => caller_department,
        d => d,
    };
    ServiceDraft::parse(&RawService {
        account: &s.account,
        category: &s.category,
        name: &s.name,
        department,
        description: &s.description,
        how_to_apply: &s.how_to_apply,
        url: &s.url,
        miniprogram_appid: &s.miniprogram_appid,
        miniprogram_path: &s.miniprogram_path,
        hours: &s.hours,
        phone: &s.phone,
        keywords: s.keywords.iter().map(String::as_str).collect(),
        synonyms: s.synonyms.iter().map(String::as_str).collect(),
        also_shown_on: s.also_shown_on.iter().map(String::as_str).collect(),
        enabled: s.enabled,
        position: s.position,
    })
}

/// A directory service as served.
pub fn service(row: ServiceRow) -> pb::Service {
    pb::Service {
        id: row.id.to_string(),
        account: row.account,
        category: row.category,
        name: row.name,
        department: row.department,
        description: row.description,
        how_to_apply: row.how_to_apply,
        url: row.url,
        miniprogram_appid: row.miniprogram_appid,
        miniprogram_path: row.miniprogram_path,
        hours: row.hours,
        phone: row.phone,
        keywords: row.keywords,
        synonyms: row.synonyms,
        also_shown_on: row.also_shown_on,
        enabled: row.enabled,
        position: row.position,
        updated_at: Some(timestamp(row.updated_at)),
        // The caller's, for CreateService only: never answered.
        request_id: String::new(),
    }
}

/// A category as served.
pub fn category(row: CategoryRow) -> pb::Category {
    pb::Category {
        code: row.code,
        name: row.name,
        gbt39666_code: row.gbt39666_code.unwrap_or_default(),
    }
}

/// A search hit as served.
pub fn search_hit(hit: crate::app::search::Hit) -> pb::SearchHit {
    let kind = match hit.row.kind.as_str() {
        "article" => pb::SearchKind::Article,
        _ => pb::SearchKind::Service,
    };
    pb::SearchHit {
        kind: kind as i32,
        id: hit.row.ref_id.to_string(),
        title: hit.row.title,
        snippet: hit.snippet,
        url: hit.row.url,
        category: hit.row.category,
        score: hit.row.rank,
    }
}

/// A create call's request id, with the request as sent without it (`body`, the
/// message after its `request_id` was taken out): none when no id was given.
pub fn create_request(
    request_id: &str,
    body: &impl prost::Message,
) -> Result<Option<CreateRequest>, GrpcError> {
    let id =
        RequestId::parse(request_id).map_err(|e| GrpcError::Invalid(format!("request_id {e}")))?;
    Ok(id.map(|id| CreateRequest {
        id,
        body: body.encode_to_vec(),
    }))
}

/// A directory service id.
pub fn service_id(raw: &str) -> Result<uuid::Uuid, GrpcError> {
    raw.trim()
        .parse()
        .map_err(|_| GrpcError::Invalid("id is not a service id".into()))
}

/// An article id.
pub fn article_id(raw: &str) -> Result<uuid::Uuid, GrpcError> {
    raw.trim()
        .parse()
        .map_err(|_| GrpcError::Invalid("id is not an article id".into()))
}

/// Article content from the wire, validated and sanitised.
pub fn content(raw: Option<pb::ArticleContent>) -> Result<ArticleContent, GrpcError> {
    let raw = raw.ok_or_else(|| GrpcError::Invalid("content is required".into()))?;
    ArticleContent::parse(ArticleContent {
        title: raw.title,
        author: raw.author,
        digest: raw.digest,
        body: raw.body,
        cover_media_id: raw.cover_media_id,
        cover_image_id: match raw.cover_image_id.trim() {
            "" => None,
            id => Some(id.parse().map_err(|_| {
                GrpcError::Invalid("content.cover_image_id is not an image id".into())
            })?),
        },
        source_url: raw.source_url,
        column: raw.column,
        open_comment: raw.open_comment,
        only_fans_can_comment: raw.only_fans_can_comment,
    })
    .map_err(|e| GrpcError::App(e.into()))
}

/// The channel of a new article. An unknown one is refused: taken for the default,
/// a client newer than this server (or a typo) would publish where it did not ask.
pub fn channel(request: &pb::CreateArticleRequest) -> Result<Channel, GrpcError> {
    let known = pb::Channel::try_from(request.channel).map_err(|_| {
        GrpcError::Invalid(format!(
            "channel {} is unknown: FREEPUBLISH (1) or MASS_SEND (2)",
            request.channel
        ))
    })?;
    match known {
        pb::Channel::Unspecified | pb::Channel::Freepublish => Ok(Channel::Freepublish),
        // A tag id beyond i64 would be stored negative and sent to every follower.
        pb::Channel::MassSend if i64::try_from(request.mass_tag_id).is_err() => Err(
            GrpcError::Invalid(format!("mass_tag_id {} is not a tag", request.mass_tag_id)),
        ),
        pb::Channel::MassSend => Ok(Channel::MassSend {
            tag: (request.mass_tag_id > 0).then_some(request.mass_tag_id),
            ignore_reprint: request.send_ignore_reprint,
        }),
    }
}

/// A review's verdict: approve or reject, said in the request. Not said (0) is
/// refused when it could be a forgotten field: read as a rejection, it sent an
/// article back to its editor. `legacy_approve` is the deprecated `bool approve`
/// (field 2) that a govwx of the previous release sends alone: true is never a
/// forgotten field (proto3's default is false), so with no verdict it approves,
/// logged and counted (`content_review_legacy_approvals_total`) until those
/// clients are gone. A verdict contradicted by it (reject with approve=true) is
/// refused rather than guessed.
pub fn verdict(raw: i32, legacy_approve: bool) -> Result<Action, GrpcError> {
    match pb::ReviewVerdict::try_from(raw) {
        Ok(pb::ReviewVerdict::Approve) => Ok(Action::Approve),
        Ok(pb::ReviewVerdict::Reject) if legacy_approve => Err(GrpcError::Invalid(
            "verdict REVIEW_VERDICT_REJECT (2) contradicts approve=true (the deprecated \
             field 2): send approve=false with a rejection, or leave it unset"
                .into(),
        )),
        Ok(pb::ReviewVerdict::Reject) => Ok(Action::Reject),
        Ok(pb::ReviewVerdict::Unspecified) if legacy_approve => {
            tracing::info!(
                "an approval without a verdict, from a client of the previous release (approve=true)"
            );
            metrics::counter!("content_review_legacy_approvals_total").increment(1);
            Ok(Action::Approve)
        }
        Ok(pb::ReviewVerdict::Unspecified) => Err(GrpcError::Invalid(
            "verdict is required: REVIEW_VERDICT_APPROVE (1) or REVIEW_VERDICT_REJECT (2) \
             (approve=false alone is not read as a rejection)"
                .into(),
        )),
        Err(_) => Err(GrpcError::Invalid(format!(
            "verdict {raw} is unknown: REVIEW_VERDICT_APPROVE (1) or REVIEW_VERDICT_REJECT (2)"
        ))),
    }
}

/// A state filter (UNSPECIFIED: every state).
pub fn state_filter(raw: i32) -> Result<Option<ArticleState>, GrpcError> {
    let state = pb::ArticleState::try_from(raw)
        .map_err(|_| GrpcError::Invalid("state is unknown".into()))?;
    Ok(match state {
        pb::ArticleState::Unspecified => None,
        pb::ArticleState::Draft => Some(ArticleState::Draft),
        pb::ArticleState::Submitted => Some(ArticleState::Submitted),
        pb::ArticleState::FirstReviewed => Some(ArticleState::FirstReviewed),
        pb::ArticleState::SecondReviewed => Some(ArticleState::SecondReviewed),
        pb::ArticleState::Approved => Some(ArticleState::Approved),
        pb::ArticleState::Scheduled => Some(ArticleState::Scheduled),
        pb::ArticleState::Publishing => Some(ArticleState::Publishing),
        pb::ArticleState::Published => Some(ArticleState::Published),
        pb::ArticleState::Failed => Some(ArticleState::Failed),
        pb::ArticleState::Retracted => Some(ArticleState::Retracted),
    })
}

fn state(state: &str) -> i32 {
    (match ArticleState::parse(state) {
        Some(ArticleState::Draft) => pb::ArticleState::Draft,
        Some(ArticleState::Submitted) => pb::ArticleState::Submitted,
        Some(ArticleState::FirstReviewed) => pb::ArticleState::FirstReviewed,
        Some(ArticleState::SecondReviewed) => pb::ArticleState::SecondReviewed,
        Some(ArticleState::Approved) => pb::ArticleState::Approved,
        Some(ArticleState::Scheduled) => pb::ArticleState::Scheduled,
        Some(ArticleState::Publishing) => pb::ArticleState::Publishing,
        Some(ArticleState::Published) => pb::ArticleState::Published,
        Some(ArticleState::Failed) => pb::ArticleState::Failed,
        Some(ArticleState::Retracted) => pb::ArticleState::Retracted,
        None => pb::ArticleState::Unspecified,
    }) as i32
}

/// A wire timestamp as a time.
pub fn time(at: Option<prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    let at = at?;
    DateTime::from_timestamp(at.seconds, at.nanos.clamp(0, 999_999_999) as u32)
}

fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: at.timestamp_subsec_nanos() as i32,
    }
}

fn wire_content(c: ArticleContent) -> pb::ArticleContent {
    pb::ArticleContent {
        title: c.title,
        author: c.author,
        digest: c.digest,
        body: c.body,
        cover_media_id: c.cover_media_id,
        source_url: c.source_url,
        column: c.column,
        open_comment: c.open_comment,
        only_fans_can_comment: c.only_fans_can_comment,
        cover_image_id: c
            .cover_image_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
    }
}

/// An article row as served (without screening).
pub fn article_row(row: ArticleRow) -> pb::Article {
    let content = wire_content(row.content());
    pb::Article {
        id: row.id.to_string(),
        account: row.account,
        department: row.department,
        author_id: row.author_id,
        state: state(&row.state),
        version: row.version as u32,
        content: Some(content),
        channel: if row.channel == "mass_send" {
            pb::Channel::MassSend
        } else {
            pb::Channel::Freepublish
        } as i32,
        scheduled_for: row.scheduled_for.map(timestamp),
        url: row.url.unwrap_or_default(),
        msg_data_id: row.msg_data_id.unwrap_or_default(),
        failure: row.failure.unwrap_or_default(),
        hits: Vec::new(),
        updated_at: Some(timestamp(row.updated_at)),
        created_at: Some(timestamp(row.created_at)),
        published_at: row.published_at.map(timestamp),
        message_id: row.message_id.map(|id| id.to_string()).unwrap_or_default(),
        message_position: row.message_position.unwrap_or(0).max(0) as u32,
        send_outcome_unknown: row.send_outcome_unknown,
        correction_of: row
            .correction_of
            .map(|id| id.to_string())
            .unwrap_or_default(),
    }
}

/// What was recorded of the article's hand-over to WeChat; `None` when nothing was.
/// The job id is recorded on the message's headline only, so a member's comes from
/// `headline` (its message's, when the caller may read it).
pub fn wechat_job(row: &ArticleRow, headline: Option<&ArticleRow>) -> Option<pb::WechatJob> {
    let carrier = if row.is_message_member() {
        headline
    } else {
        Some(row)
    };
    let (publish_id, mass_msg_id) = carrier
        .map(|c| (c.publish_id.clone(), c.mass_msg_id.clone()))
        .unwrap_or_default();
    let has_job = publish_id.is_some() || mass_msg_id.is_some();
    let sent_position = row.sent_position.unwrap_or(0).max(0) as u32;
    if !has_job && sent_position == 0 {
        return None;
    }
    // A version without its place (forgotten for a free publication's send again)
    // would name a hand-over the article no longer records.
    let sent_version = if sent_position == 0 {
        0
    } else {
        row.sent_version.unwrap_or(0).max(0) as u32
    };
    // `updated_at` dates the recording of the job id only while the job is awaited
    // in `publishing`: nothing else writes it then (`store::articles::set_job`).
    let handed_at = carrier
        .filter(|c| has_job && c.state() == ArticleState::Publishing)
        .map(|c| timestamp(c.updated_at));
    Some(pb::WechatJob {
        publish_id: publish_id.unwrap_or_default(),
        mass_msg_id: mass_msg_id.unwrap_or_default(),
        sent_position,
        sent_version,
        handed_at,
    })
}

/// An article with the screening of its current version.
pub fn article(view: ArticleView) -> pb::Article {
    let hits = view
        .hits
        .into_iter()
        .map(|(hit, over)| {
            let (by, reason) = over.unwrap_or_default();
            pb::Hit {
                key: hit.key(),
                field: hit.field.to_owned(),
                start: hit.start as u32,
                end: hit.end as u32,
                text: hit.text,
                word: hit.word,
                category: hit.category.as_str().to_owned(),
                overridden: !by.is_empty(),
                override_reason: reason,
                overridden_by: by,
            }
        })
        .collect();
    pb::Article {
        hits,
        ..article_row(view.row)
    }
}

/// An audit row as served.
pub fn audit(row: AuditRow) -> pb::AuditEntry {
    pb::AuditEntry {
        action: row.action,
        from_state: state(&row.from_state),
        to_state: state(&row.to_state),
        actor: row.actor,
        role: row.role,
        version: row.version as u32,
        stage: row.stage.unwrap_or_default(),
        comment: row.comment,
        at: Some(timestamp(row.created_at)),
    }
}

/// The last-reviewed content as served.
pub fn reviewed_content(c: ArticleContent) -> pb::ArticleContent {
    wire_content(c)
}

/// The page size of ListArticles when none is asked for, and the most it answers.
pub const PAGE_SIZE_DEFAULT: u32 = 50;
pub const PAGE_SIZE_MAX: u32 = 200;

/// The page size asked for. Above the maximum is refused, as ListTickets does:
/// quietly answering fewer made a caller's "a short page is the last" wrong.
pub fn page_size(requested: u32) -> Result<i64, GrpcError> {
    match requested {
        0 => Ok(PAGE_SIZE_DEFAULT.into()),
        n if n <= PAGE_SIZE_MAX => Ok(n.into()),
        n => Err(GrpcError::Invalid(format!(
            "page_size must be at most {PAGE_SIZE_MAX} (asked for {n})"
        ))),
    }
}

/// Marks a token keyed on creation (`c{micros}_{id}`); tokens issued before were
/// `{micros}_{id}` of the last change, a position in another order.
const PAGE_TOKEN_CREATED: char = 'c';

/// A page token: the last article's (created_at, id).
pub fn page_token(row: &ArticleRow) -> String {
    format!(
        "{PAGE_TOKEN_CREATED}{}_{}",
        row.created_at.timestamp_micros(),
        row.id
    )
}

/// Parses a page token into the (created_at, id) the next page starts below.
pub fn parse_page_token(raw: &str) -> Result<Option<(DateTime<Utc>, uuid::Uuid)>, GrpcError> {
    if raw.is_empty() {
        return Ok(None);
    }
    let bad = || GrpcError::Invalid("page_token is not one this service issued".into());
    match raw.strip_prefix(PAGE_TOKEN_CREATED) {
        Some(key) => Ok(Some(position(key).ok_or_else(bad)?)),
        // Continuing an older walk in the new order would skip or repeat articles.
        None if position(raw).is_some() => Err(GrpcError::Invalid(
            "page_token is from a listing by last change, which this service no longer \
             gives: list again from the first page (without page_token)"
                .into(),
        )),
        None => Err(bad()),
    }
}

/// `{micros}_{uuid}`.
fn position(raw: &str) -> Option<(DateTime<Utc>, uuid::Uuid)> {
    let (micros, id) = raw.split_once('_')?;
    let micros: i64 = micros.parse().ok()?;
    // Every token issued is a time after 1970; PostgreSQL cannot compare one
    // before 4713 BC at all.
    if micros < 0 {
        return None;
    }
    Some((DateTime::from_timestamp_micros(micros)?, id.parse().ok()?))
}

/// The page size of ListArticleVersions when none is asked for, and the most it
/// answers (a version's row holds its whole body only on GetArticleVersion).
pub const VERSIONS_PAGE_DEFAULT: u32 = 20;
pub const VERSIONS_PAGE_MAX: u32 = 50;

/// A ListArticleVersions page size; above the maximum is refused, as ListArticles does.
pub fn versions_page_size(requested: u32) -> Result<i64, GrpcError> {
    match requested {
        0 => Ok(VERSIONS_PAGE_DEFAULT.into()),
        n if n <= VERSIONS_PAGE_MAX => Ok(n.into()),
        n => Err(GrpcError::Invalid(format!(
            "page_size must be at most {VERSIONS_PAGE_MAX} (asked for {n})"
        ))),
    }
}

/// Marks a versions page token: `v{n}`, the next page lists the versions below n.
const VERSIONS_TOKEN: char = 'v';

/// The token of the page after one whose oldest version is `last`.
pub fn versions_page_token(last: i32) -> String {
    format!("{VERSIONS_TOKEN}{last}")
}

/// The version a versions page starts below (`None`: from the newest).
pub fn parse_versions_page_token(raw: &str) -> Result<Option<i32>, GrpcError> {
    if raw.is_empty() {
        return Ok(None);
    }
    raw.strip_prefix(VERSIONS_TOKEN)
        .and_then(|n| n.parse::<i32>().ok())
        .filter(|n| *n > 1)
        .map(Some)
        .ok_or_else(|| GrpcError::Invalid("page_token is not one this service issued".into()))
}

/// A version number asked for: 1 and up.
pub fn version_number(raw: u32) -> Result<i32, GrpcError> {
    i32::try_from(raw)
        .ok()
        .filter(|v| *v >= 1)
        .ok_or_else(|| GrpcError::Invalid(format!("version must be 1 or more (got {raw})")))
}

/// A version as listed.
pub fn version_summary(view: VersionView) -> pb::ArticleVersionSummary {
    pb::ArticleVersionSummary {
        version: view.summary.version as u32,
        edited_by: view.summary.edited_by,
        created_at: Some(timestamp(view.summary.created_at)),
        title: view.summary.title,
        outcome: match view.outcome {
            VersionOutcome::NotReviewed => pb::VersionOutcome::NotReviewed,
            VersionOutcome::InReview => pb::VersionOutcome::InReview,
            VersionOutcome::Approved => pb::VersionOutcome::Approved,
            VersionOutcome::Rejected => pb::VersionOutcome::Rejected,
            VersionOutcome::Returned => pb::VersionOutcome::Returned,
        } as i32,
        reviews: view.steps.into_iter().map(audit).collect(),
        current: view.current,
    }
}

/// A version with its whole content.
pub fn version(view: VersionView, content: VersionRow) -> pb::ArticleVersion {
    pb::ArticleVersion {
        summary: Some(version_summary(view)),
        settings_recorded: content.settings_recorded(),
        content: Some(wire_content(content.content())),
    }
}

/// An uploaded image as served.
pub fn image(row: crate::store::media::ImageRow) -> pb::Image {
    pb::Image {
        src: format!("{}:{}", crate::domain::article::IMAGE_SCHEME, row.id),
        id: row.id.to_string(),
        account: row.account,
        content_type: row.content_type,
        sha256: row.sha256,
    }
}

/// A multi-article message as served, headline first.
pub fn message(view: crate::app::messages::MessageView) -> pb::ArticleMessage {
    pb::ArticleMessage {
        id: view.message.id.to_string(),
        account: view.message.account,
        articles: view.articles.into_iter().map(article_row).collect(),
    }
}

/// A message id.
pub fn message_id(raw: &str) -> Result<uuid::Uuid, GrpcError> {
    raw.trim()
        .parse()
        .map_err(|_| GrpcError::Invalid("id is not a message id".into()))
}

/// The article ids of a message, in order.
pub fn article_ids(raw: &[String]) -> Result<Vec<uuid::Uuid>, GrpcError> {
    raw.iter()
        .map(|id| {
            id.trim().parse().map_err(|_| {
                GrpcError::Invalid(format!("article_ids: {id:?} is not an article id"))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_channel_is_refused_not_taken_for_freepublish() {
        let request = pb::CreateArticleRequest {
            channel: 7,
            ..Default::default()
        };
        match channel(&request) {
            Err(GrpcError::Invalid(message)) => assert!(message.contains("7"), "{message}"),
            other => panic!("channel 7 was read as {other:?}"),
        }
    }

    #[test]
    fn a_mass_send_tag_beyond_i64_is_refused_not_sent_to_everyone() {
        let request = |tag| pb::CreateArticleRequest {
            channel: pb::Channel::MassSend as i32,
            mass_tag_id: tag,
            ..Default::default()
        };
        assert!(matches!(
            channel(&request(u64::MAX)),
            Err(GrpcError::Invalid(_))
        ));
        assert_eq!(
            channel(&request(134)).ok(),
            Some(Channel::MassSend {
                tag: Some(134),
                ignore_reprint: false
            })
        );
        assert_eq!(
            channel(&request(0)).ok(),
            Some(Channel::MassSend {
                tag: None,
                ignore_reprint: false
            })
        );
    }
}
