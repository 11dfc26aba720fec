//! `govwx articles …`: drafts, the three-level review (三审), scheduling, publishing.

use chrono::{DateTime, NaiveDateTime, TimeZone};
use proto::content::v1::{
    self as pb, ArticleContent, ArticleRef, ArticleState, CreateArticleRequest, GetArticleRequest,
    GetArticleVersionRequest, GetQuotaStatusRequest, HitOverride, ListArticleVersionsRequest,
    ListArticlesRequest, OverrideHitsRequest, PublishArticleRequest, RecordPublishedRequest,
    ReturnForRevisionRequest, ReviewArticleRequest, ScheduleArticleRequest, UpdateArticleRequest,
};
use serde_json::{Value, json};
use tonic::Request;

use crate::cli::{ActorArg, ArticleStateArg, Articles, ContentArgs, Decision};
use crate::client::Target;
use crate::error::Error;
use crate::output::{Out, enum_name, fields, or_dash, shorten, table};

/// The metadata naming the person who acts (content-svc's `x-actor`): visible ASCII.
const ACTOR_HEADER: &str = "x-actor";
/// The same as binary metadata (UTF-8): how a name in Chinese is sent.
const ACTOR_BIN_HEADER: &str = "x-actor-bin";

pub async fn run(command: Articles, target: &Target, out: &Out) -> Result<(), Error> {
    let mut client = target.content().await?;
    let status = |s| target.status(s);
    let publishing = matches!(command, Articles::Publish { .. });
    let article = match command {
        Articles::List {
            account,
            state,
            limit,
            page_token,
        } => {
            let request = ListArticlesRequest {
                account: account.account,
                state: state.map_or(0, |s| article_state(s) as i32),
                page_size: limit.unwrap_or(0),
                page_token: page_token.unwrap_or_default(),
            };
            let page = client
                .list_articles(request)
                .await
                .map_err(status)?
                .into_inner();
            return print_list(out, &page);
        }
        Articles::Show { id } => {
            let detail = client
                .get_article(GetArticleRequest { id })
                .await
                .map_err(status)?
                .into_inner();
            return print_detail(out, &detail);
        }
        Articles::Versions {
            id,
            number: Some(version),
            ..
        } => {
            let version = client
                .get_article_version(GetArticleVersionRequest { id, version })
                .await
                .map_err(status)?
                .into_inner();
            return print_version(out, &version);
        }
        Articles::Versions {
            id,
            number: None,
            limit,
            page_token,
        } => {
            let request = ListArticleVersionsRequest {
                id,
                page_size: limit.unwrap_or(0),
                page_token: page_token.unwrap_or_default(),
            };
            let page = client
                .list_article_versions(request)
                .await
                .map_err(status)?
                .into_inner();
            return print_versions(out, &page);
        }
        Articles::Quota { account } => {
            let request = GetQuotaStatusRequest {
                account: account.account,
            };
            let quota = client
                .get_quota_status(request)
                .await
                .map_err(status)?
                .into_inner();
            if out.json {
                return out.document(&json!({
                    "account": quota.account,
                    "kind": quota.kind,
                    "used": quota.used,
                    "limit": quota.limit,
                    "next_possible_at": out.json_time(quota.next_possible_at.as_ref()),
                }));
            }
            let next = if quota.next_possible_at.is_some() {
                out.time(quota.next_possible_at.as_ref())
            } else {
                "now".to_owned()
            };
            return out.line(&fields(&[
                ("account", quota.account),
                ("kind", quota.kind),
                ("used", format!("{} of {}", quota.used, quota.limit)),
                ("next possible", next),
            ]));
        }
        Articles::Create {
            account,
            content,
            mass_send,
            tag,
            request_id,
            actor,
        } => {
            let channel = if mass_send {
                pb::Channel::MassSend
            } else {
                pb::Channel::Freepublish
            };
            let content = read_content(content)?;
            let request_id = super::request_id(
                request_id,
                "to get the article this call creates instead of creating another",
            );
            let message = CreateArticleRequest {
                account: account.account,
                content: Some(content),
                channel: channel as i32,
                mass_tag_id: tag,
                send_ignore_reprint: false,
                request_id: request_id.clone(),
            };
            let created = client.create_article(acting(message, &actor)?).await;
            // The article may have been created all the same: the id finds it.
            if created.as_ref().is_err_and(super::may_have_been_done) {
                eprintln!(
                    "govwx: to retry without creating a second article, add --request-id \
                     {request_id}"
                );
            }
            created
        }
        Articles::Update {
            id,
            content,
            read_version,
            actor,
        } => {
            // UpdateArticle replaces the whole content: a field the command does not
            // name is the draft's, else it would be dropped (the cover too, and the
            // article then refused at submission).
            let read = client
                .get_article(GetArticleRequest { id: id.clone() })
                .await
                .map_err(status)?
                .into_inner()
                .article
                .unwrap_or_default();
            let content = updated_content(content, read.content.unwrap_or_default())?;
            // The version the edit is based on: the one the editor read
            // (`--read-version`), else the one the kept fields were just read from. An
            // edit saved by someone else since is refused, not silently overwritten
            // with its old text.
            let message = UpdateArticleRequest {
                id,
                content: Some(content),
                version: Some(read_version.unwrap_or(read.version)),
            };
            client.update_article(acting(message, &actor)?).await
        }
        Articles::Submit { id, actor } => {
            client
                .submit_article(acting(refer(id, None), &actor)?)
                .await
        }
        Articles::Withdraw { id, comment, actor } => {
            client
                .withdraw_article(acting(refer(id, comment), &actor)?)
                .await
        }
        Articles::Review {
            id,
            decision,
            comment,
            overrides,
            read_version,
            actor,
        } => {
            let version = match read_version {
                Some(version) => version,
                None => current_version(&mut client, &id).await.map_err(status)?,
            };
            let message = review_request(
                id,
                decision,
                comment.unwrap_or_default(),
                parse_overrides(&overrides)?,
                version,
            );
            client.review_article(acting(message, &actor)?).await
        }
        Articles::Return {
            id,
            reason,
            read_version,
            actor,
        } => {
            let version = match read_version {
                Some(version) => version,
                None => current_version(&mut client, &id).await.map_err(status)?,
            };
            let message = ReturnForRevisionRequest {
                id,
                reason,
                version,
            };
            client.return_for_revision(acting(message, &actor)?).await
        }
        Articles::Override {
            id,
            overrides,
            read_version,
            actor,
        } => {
            let version = match read_version {
                Some(version) => version,
                None => current_version(&mut client, &id).await.map_err(status)?,
            };
            let message = OverrideHitsRequest {
                id,
                overrides: parse_overrides(&overrides)?,
                version,
            };
            client.override_hits(acting(message, &actor)?).await
        }
        Articles::Schedule {
            id,
            at,
            confirm_possible_duplicate,
            actor,
        } => {
            let at = parse_time("--at", &at, out)?;
            let message = ScheduleArticleRequest {
                id,
                at: Some(prost_types::Timestamp {
                    seconds: at.timestamp(),
                    nanos: 0,
                }),
                confirm_possible_duplicate,
            };
            client.schedule_article(acting(message, &actor)?).await
        }
        Articles::Cancel { id, actor } => {
            client
                .cancel_schedule(acting(refer(id, None), &actor)?)
                .await
        }
        Articles::Publish {
            id,
            confirm_possible_duplicate,
            actor,
        } => {
            let message = PublishArticleRequest {
                id,
                comment: String::new(),
                confirm_possible_duplicate,
            };
            client.publish_article(acting(message, &actor)?).await
        }
        Articles::RecordPublished {
            id,
            url,
            comment,
            msg_data_id,
            published_at,
            actor,
        } => {
            let published_at = published_at
                .map(|raw| parse_time("--published-at", &raw, out))
                .transpose()?
                .map(|at| prost_types::Timestamp {
                    seconds: at.timestamp(),
                    nanos: 0,
                });
            let message = RecordPublishedRequest {
                id,
                url,
                comment: comment.unwrap_or_default(),
                msg_data_id: msg_data_id.unwrap_or_default(),
                published_at,
            };
            client.record_published(acting(message, &actor)?).await
        }
    };
    let article = match article {
        Ok(article) => article.into_inner(),
        Err(error) => {
            // content-svc names the request field; this is the flag that sets it.
            if error.code() == tonic::Code::FailedPrecondition
                && error.message().contains("confirm_possible_duplicate")
            {
                eprintln!(
                    "govwx: once you have checked that the followers did not get it, re-run \
                     with --confirm-possible-duplicate"
                );
            }
            return Err(status(error));
        }
    };
    if out.json {
        out.document(&article_json(out, &article))?;
    } else {
        let mut line = format!("article {}: {}", article.id, state_label(&article));
        let open_hits = article.hits.iter().filter(|h| !h.overridden).count();
        if open_hits > 0 {
            line.push_str(&format!(
                "; {open_hits} sensitive-word hit(s) to settle (govwx articles show {})",
                article.id
            ));
        }
        out.line(&line)?;
    }
    // PublishArticle answers OK with the article FAILED when WeChat refused it or its
    // answer was lost (then it may be published already): a script must not go on.
    if publishing && article.state == ArticleState::Failed as i32 {
        return Err(Error::NotPublished {
            id: article.id,
            failure: article.failure,
        });
    }
    Ok(())
}

fn refer(id: String, comment: Option<String>) -> ArticleRef {
    ArticleRef {
        id,
        comment: comment.unwrap_or_default(),
    }
}

/// `message` as a request naming the acting person, if given: an ASCII name as
/// `x-actor` (what every content-svc reads), any other (王芳) as `x-actor-bin`, its
/// UTF-8 bytes, since an ASCII metadata value cannot carry it. A `%` goes binary
/// too: in `x-actor` content-svc reads it as the start of an escape.
pub(crate) fn acting<T>(message: T, actor: &ActorArg) -> Result<Request<T>, Error> {
    let mut request = Request::new(message);
    let Some(actor) = actor
        .actor
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty())
    else {
        return Ok(request);
    };
    if actor.chars().any(char::is_control) {
        return Err(Error::Input(format!(
            "--actor {actor:?}: a name without control characters"
        )));
    }
    let metadata = request.metadata_mut();
    if actor
        .bytes()
        .all(|b| (b.is_ascii_graphic() || b == b' ') && b != b'%')
    {
        let value = actor
            .parse()
            .map_err(|_| Error::Input(format!("--actor {actor:?}: not a metadata value")))?;
        metadata.insert(ACTOR_HEADER, value);
    } else {
        metadata.insert_bin(
            ACTOR_BIN_HEADER,
            tonic::metadata::BinaryMetadataValue::from_bytes(actor.as_bytes()),
        );
    }
    Ok(request)
}

fn article_state(state: ArticleStateArg) -> ArticleState {
    match state {
        ArticleStateArg::Draft => ArticleState::Draft,
        ArticleStateArg::Submitted => ArticleState::Submitted,
        ArticleStateArg::FirstReviewed => ArticleState::FirstReviewed,
        ArticleStateArg::SecondReviewed => ArticleState::SecondReviewed,
        ArticleStateArg::Approved => ArticleState::Approved,
        ArticleStateArg::Scheduled => ArticleState::Scheduled,
        ArticleStateArg::Publishing => ArticleState::Publishing,
        ArticleStateArg::Published => ArticleState::Published,
        ArticleStateArg::Failed => ArticleState::Failed,
        ArticleStateArg::Retracted => ArticleState::Retracted,
    }
}

fn state_name(value: i32) -> String {
    ArticleState::try_from(value).map_or_else(
        |_| value.to_string(),
        |s| enum_name(s.as_str_name(), "ARTICLE_STATE_"),
    )
}

fn channel_name(value: i32) -> String {
    pb::Channel::try_from(value).map_or_else(
        |_| value.to_string(),
        |c| enum_name(c.as_str_name(), "CHANNEL_"),
    )
}

/// What a publisher is to do about a send whose outcome content-svc does not know
/// (Article.send_outcome_unknown): nothing else tells them the article may be out.
const OUTCOME_UNKNOWN: &str = "outcome unknown: may have been sent — check the account, then \
     record-published or publish again with --confirm-possible-duplicate";

/// What the state means for whoever acts next.
fn state_label(article: &pb::Article) -> String {
    let waiting = match ArticleState::try_from(article.state) {
        Ok(ArticleState::Submitted) => " (waits for the first review)",
        Ok(ArticleState::FirstReviewed) => " (waits for the second review)",
        Ok(ArticleState::SecondReviewed) => " (waits for the final approval)",
        _ if failed_with_outcome_unknown(article) => {
            return format!("{} ({OUTCOME_UNKNOWN})", state_name(article.state));
        }
        _ => "",
    };
    format!("{}{waiting}", state_name(article.state))
}

/// Whether the publisher must find out whether a failed send went out: the flag
/// alone also stays on an article a retry published, or one scheduled to retry,
/// where neither record-published nor a confirmed send applies.
fn failed_with_outcome_unknown(article: &pb::Article) -> bool {
    article.send_outcome_unknown
        && ArticleState::try_from(article.state) == Ok(ArticleState::Failed)
}

/// The state in a list's column: the outcome-unknown flag short, `show` says more.
fn state_column(article: &pb::Article) -> String {
    if failed_with_outcome_unknown(article) {
        format!("{} (outcome unknown)", state_name(article.state))
    } else {
        state_name(article.state)
    }
}

/// The article's current version, sent with a review or an override so that it
/// applies only to that version (content-svc refuses it if the article changed).
async fn current_version(
    client: &mut pb::content_service_client::ContentServiceClient<crate::client::Authed>,
    id: &str,
) -> Result<u32, tonic::Status> {
    let detail = client
        .get_article(GetArticleRequest { id: id.to_owned() })
        .await?
        .into_inner();
    Ok(detail.article.map_or(0, |a| a.version))
}

/// Reads the body file; Markdown becomes HTML (the server sanitises it either way).
fn read_content(args: ContentArgs) -> Result<ArticleContent, Error> {
    let body = read_body(&args.file)?;
    Ok(ArticleContent {
        title: args.title,
        author: args.author,
        digest: args.digest,
        body,
        cover_media_id: args.cover.unwrap_or_default(),
        source_url: args.source_url,
        column: args.column,
        open_comment: args.comments,
        only_fans_can_comment: args.fans_only_comments,
        // Fields the server grows (an uploaded cover, say) keep their defaults.
        ..ArticleContent::default()
    })
}

/// An update's content: the body and each field given, the draft's (`current`)
/// value for the others; a cover given replaces an uploaded image too.
fn updated_content(
    args: crate::cli::UpdateContentArgs,
    current: ArticleContent,
) -> Result<ArticleContent, Error> {
    let body = read_body(&args.file)?;
    // Every field is named (no `..`): one the server grows must be decided here, not
    // silently reset again.
    let (cover_media_id, cover_image_id) = match args.cover {
        Some(cover) => (cover, String::new()),
        None => (current.cover_media_id, current.cover_image_id),
    };
    Ok(ArticleContent {
        title: args.title.unwrap_or(current.title),
        author: args.author.unwrap_or(current.author),
        digest: args.digest.unwrap_or(current.digest),
        body,
        cover_media_id,
        cover_image_id,
        source_url: args.source_url.unwrap_or(current.source_url),
        column: args.column.unwrap_or(current.column),
        open_comment: args.comments.unwrap_or(current.open_comment),
        only_fans_can_comment: args
            .fans_only_comments
            .unwrap_or(current.only_fans_can_comment),
    })
}

/// A body file: Markdown (`.md`, `.markdown`) turned into HTML, or HTML as it is.
fn read_body(file: &std::path::Path) -> Result<String, Error> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Error::Input(format!("cannot read {}: {e}", file.display())))?;
    let markdown = file
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("md") || e.eq_ignore_ascii_case("markdown"));
    if !markdown {
        return Ok(text);
    }
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, pulldown_cmark::Parser::new(&text));
    Ok(html)
}

/// `KEY=REASON` pairs.
/// The review request, with the deprecated `approve` set alongside `verdict`: a
/// content-svc replica of the previous release reads only `approve`, and without it
/// an approval would read there as false, a rejection (during a rolling update).
#[allow(deprecated)]
fn review_request(
    id: String,
    decision: Decision,
    comment: String,
    overrides: Vec<HitOverride>,
    version: u32,
) -> ReviewArticleRequest {
    let verdict = match decision {
        Decision::Approve => pb::ReviewVerdict::Approve,
        Decision::Reject => pb::ReviewVerdict::Reject,
    };
    ReviewArticleRequest {
        id,
        verdict: verdict as i32,
        approve: verdict == pb::ReviewVerdict::Approve,
        comment,
        overrides,
        version,
    }
}

fn parse_overrides(raw: &[String]) -> Result<Vec<HitOverride>, Error> {
    raw.iter()
        .map(|pair| {
            let (key, reason) = pair
                .split_once('=')
                .ok_or_else(|| Error::Input(format!("--override {pair:?}: expected KEY=REASON")))?;
            Ok(HitOverride {
                key: key.trim().to_owned(),
                reason: reason.trim().to_owned(),
            })
        })
        .collect()
}

/// `YYYY-MM-DD HH:MM` in the office's zone, or RFC 3339 (the value of `flag`).
fn parse_time(flag: &str, raw: &str, out: &Out) -> Result<DateTime<chrono::FixedOffset>, Error> {
    if let Ok(at) = DateTime::parse_from_rfc3339(raw) {
        return Ok(at);
    }
    NaiveDateTime::parse_from_str(raw, "%Y-%m-%d %H:%M")
        .ok()
        .and_then(|naive| out.tz.from_local_datetime(&naive).single())
        .ok_or_else(|| {
            Error::Input(format!(
                "{flag} {raw:?}: expected YYYY-MM-DD HH:MM (in {}) or RFC 3339",
                out.tz
            ))
        })
}

fn article_json(out: &Out, a: &pb::Article) -> Value {
    let content = a.content.clone().unwrap_or_default();
    json!({
        "id": a.id,
        "account": a.account,
        "department": a.department,
        "author_id": a.author_id,
        "state": state_name(a.state),
        "version": a.version,
        "content": content_json(&content),
        "channel": channel_name(a.channel),
        "scheduled_for": out.json_time(a.scheduled_for.as_ref()),
        "url": a.url,
        "msg_data_id": a.msg_data_id,
        "failure": a.failure,
        "send_outcome_unknown": a.send_outcome_unknown,
        "hits": a.hits.iter().map(|h| json!({
            "field": h.field,
            "start": h.start,
            "end": h.end,
            "text": h.text,
            "word": h.word,
            "category": h.category,
            "key": h.key,
            "overridden": h.overridden,
            "override_reason": h.override_reason,
            "overridden_by": h.overridden_by,
        })).collect::<Vec<_>>(),
        "updated_at": out.json_time(a.updated_at.as_ref()),
        "published_at": out.json_time(a.published_at.as_ref()),
    })
}

fn content_json(c: &ArticleContent) -> Value {
    json!({
        "title": c.title,
        "author": c.author,
        "digest": c.digest,
        "body": c.body,
        "cover_media_id": c.cover_media_id,
        "cover_image_id": c.cover_image_id,
        "source_url": c.source_url,
        "column": c.column,
        "open_comment": c.open_comment,
        "only_fans_can_comment": c.only_fans_can_comment,
    })
}

/// The settings a version saved before content-svc kept them per version does not
/// have: null ("not recorded"), not the empty or false value the wire carries.
const VERSION_SETTINGS: [&str; 6] = [
    "cover_media_id",
    "cover_image_id",
    "source_url",
    "column",
    "open_comment",
    "only_fans_can_comment",
];

fn reviewed_json(c: &ArticleContent, settings_recorded: bool) -> Value {
    let mut value = content_json(c);
    if !settings_recorded && let Some(fields) = value.as_object_mut() {
        for name in VERSION_SETTINGS {
            fields.insert(name.to_owned(), Value::Null);
        }
    }
    value
}

/// The lines of the version last reviewed, when the article changed since: what
/// the reviewers passed besides the text, or that it was not recorded.
fn reviewed_fields(detail: &pb::ArticleDetail) -> Option<String> {
    let c = detail.last_reviewed_content.as_ref()?;
    let recorded = detail.last_reviewed_settings_recorded;
    let setting = |value: String| {
        if recorded {
            or_dash(&value)
        } else {
            "not recorded".to_owned()
        }
    };
    let cover = if c.cover_image_id.is_empty() {
        c.cover_media_id.clone()
    } else {
        format!("image:{}", c.cover_image_id)
    };
    let comments = match (c.open_comment, c.only_fans_can_comment) {
        (false, _) => "closed",
        (true, false) => "open",
        (true, true) => "followers only",
    };
    Some(fields(&[
        ("title", c.title.clone()),
        ("digest", or_dash(&c.digest)),
        ("cover", setting(cover)),
        ("阅读原文", setting(c.source_url.clone())),
        ("comments", setting(comments.to_owned())),
    ]))
}

fn print_list(out: &Out, page: &pb::ListArticlesResponse) -> Result<(), Error> {
    if out.json {
        let articles: Vec<_> = page.articles.iter().map(|a| article_json(out, a)).collect();
        return out.document(&json!({
            "articles": articles,
            "next_page_token": page.next_page_token,
        }));
    }
    if page.articles.is_empty() {
        eprintln!("no articles");
        return Ok(());
    }
    let rows = page.articles.iter().map(|a| {
        let title = a.content.as_ref().map_or("", |c| c.title.as_str());
        vec![
            a.id.clone(),
            state_column(a),
            shorten(title, 32),
            a.department.clone(),
            channel_name(a.channel),
            a.version.to_string(),
            out.time(a.updated_at.as_ref()),
        ]
    });
    out.line(&table(
        &[
            "id",
            "state",
            "title",
            "department",
            "channel",
            "version",
            "updated",
        ],
        rows,
    ))?;
    if !page.next_page_token.is_empty() {
        eprintln!("more: --page-token {}", page.next_page_token);
    }
    Ok(())
}

fn outcome_name(value: i32) -> String {
    pb::VersionOutcome::try_from(value)
        .map(|o| enum_name(o.as_str_name(), "VERSION_OUTCOME_"))
        .unwrap_or_else(|_| format!("unknown({value})"))
}

fn audit_json(out: &Out, e: &pb::AuditEntry) -> Value {
    json!({
        "action": e.action,
        "from_state": state_name(e.from_state),
        "to_state": state_name(e.to_state),
        "actor": e.actor,
        "role": e.role,
        "version": e.version,
        "stage": e.stage,
        "comment": e.comment,
        "at": out.json_time(e.at.as_ref()),
    })
}

fn version_json(out: &Out, v: &pb::ArticleVersionSummary) -> Value {
    json!({
        "version": v.version,
        "edited_by": v.edited_by,
        "created_at": out.json_time(v.created_at.as_ref()),
        "title": v.title,
        "outcome": outcome_name(v.outcome),
        "current": v.current,
        "reviews": v.reviews.iter().map(|e| audit_json(out, e)).collect::<Vec<_>>(),
    })
}

/// Who decided a version's outcome: its last review step (nobody for a version
/// not reviewed).
fn decided_by(v: &pb::ArticleVersionSummary) -> String {
    match v.reviews.last() {
        Some(step) if step.action != "submit" => step.actor.clone(),
        _ => "-".to_owned(),
    }
}

fn print_versions(out: &Out, page: &pb::ListArticleVersionsResponse) -> Result<(), Error> {
    if out.json {
        let versions: Vec<_> = page.versions.iter().map(|v| version_json(out, v)).collect();
        return out.document(&json!({
            "versions": versions,
            "next_page_token": page.next_page_token,
        }));
    }
    if page.versions.is_empty() {
        eprintln!("no versions");
        return Ok(());
    }
    let rows = page.versions.iter().map(|v| {
        let version = if v.current {
            format!("{} (current)", v.version)
        } else {
            v.version.to_string()
        };
        vec![
            version,
            v.edited_by.clone(),
            out.time(v.created_at.as_ref()),
            outcome_name(v.outcome),
            decided_by(v),
            shorten(&v.title, 32),
        ]
    });
    out.line(&table(
        &[
            "version",
            "saved by",
            "saved",
            "review",
            "decided by",
            "title",
        ],
        rows,
    ))?;
    if !page.next_page_token.is_empty() {
        eprintln!("more: --page-token {}", page.next_page_token);
    }
    Ok(())
}

fn print_version(out: &Out, version: &pb::ArticleVersion) -> Result<(), Error> {
    let v = version.summary.clone().unwrap_or_default();
    let c = version.content.clone().unwrap_or_default();
    if out.json {
        let mut value = version_json(out, &v);
        if let Some(fields) = value.as_object_mut() {
            fields.insert(
                "content".to_owned(),
                reviewed_json(&c, version.settings_recorded),
            );
            fields.insert(
                "settings_recorded".to_owned(),
                Value::Bool(version.settings_recorded),
            );
        }
        return out.document(&value);
    }
    let setting = |value: String| {
        if version.settings_recorded {
            or_dash(&value)
        } else {
            "not recorded".to_owned()
        }
    };
    let cover = if c.cover_image_id.is_empty() {
        c.cover_media_id.clone()
    } else {
        format!("image:{}", c.cover_image_id)
    };
    let mut text = fields(&[
        (
            "version",
            if v.current {
                format!("{} (current)", v.version)
            } else {
                v.version.to_string()
            },
        ),
        ("saved by", v.edited_by.clone()),
        ("saved", out.time(v.created_at.as_ref())),
        ("review", outcome_name(v.outcome)),
        ("title", c.title.clone()),
        ("author", or_dash(&c.author)),
        ("digest", or_dash(&c.digest)),
        ("cover", setting(cover)),
        ("阅读原文", setting(c.source_url.clone())),
    ]);
    text.push_str(
        "

BODY
",
    );
    text.push_str(&c.body);
    if !v.reviews.is_empty() {
        let rows = v.reviews.iter().map(|e| {
            vec![
                out.time(e.at.as_ref()),
                e.actor.clone(),
                e.action.clone(),
                or_dash(&e.stage),
                or_dash(&e.comment),
            ]
        });
        text.push_str(
            "

REVIEW
",
        );
        text.push_str(&table(&["at", "actor", "action", "stage", "comment"], rows));
    }
    out.line(&text)
}

/// The article's WeChat job as content-svc recorded it: what an operator gives
/// WeChat, and the place (WeChat's idx) a publisher matches a URL of the job with.
fn job_fields(out: &Out, job: &pb::WechatJob) -> String {
    let mut pairs = Vec::new();
    if !job.publish_id.is_empty() {
        pairs.push(("publish id", job.publish_id.clone()));
    }
    if !job.mass_msg_id.is_empty() {
        pairs.push(("mass msg id", job.mass_msg_id.clone()));
    }
    if pairs.is_empty() {
        pairs.push(("job id", "not recorded".to_owned()));
    }
    if job.handed_at.is_some() {
        pairs.push(("handed over", out.time(job.handed_at.as_ref())));
    }
    pairs.push((
        "place sent",
        match job.sent_position {
            0 => "not recorded".to_owned(),
            place => place.to_string(),
        },
    ));
    pairs.push((
        "version sent",
        match job.sent_version {
            0 => "not recorded".to_owned(),
            version => version.to_string(),
        },
    ));
    fields(&pairs)
}

/// [`job_fields`] for `--json`: null for what was not recorded (0 or empty on the
/// wire).
fn job_json(out: &Out, job: &pb::WechatJob) -> Value {
    let text = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    let number = |n: u32| (n != 0).then_some(n);
    json!({
        "publish_id": text(&job.publish_id),
        "mass_msg_id": text(&job.mass_msg_id),
        "sent_position": number(job.sent_position),
        "sent_version": number(job.sent_version),
        "handed_at": out.json_time(job.handed_at.as_ref()),
    })
}

fn print_detail(out: &Out, detail: &pb::ArticleDetail) -> Result<(), Error> {
    let a = detail.article.clone().unwrap_or_default();
    if out.json {
        let audit: Vec<_> = detail
            .audit
            .iter()
            .map(|e| {
                json!({
                    "action": e.action,
                    "from_state": state_name(e.from_state),
                    "to_state": state_name(e.to_state),
                    "actor": e.actor,
                    "role": e.role,
                    "version": e.version,
                    "stage": e.stage,
                    "comment": e.comment,
                    "at": out.json_time(e.at.as_ref()),
                })
            })
            .collect();
        return out.document(&json!({
            "article": article_json(out, &a),
            "audit": audit,
            "last_reviewed_version": detail.last_reviewed_version,
            "last_reviewed_content": detail.last_reviewed_content.as_ref().map(|c| {
                reviewed_json(c, detail.last_reviewed_settings_recorded)
            }),
            "last_reviewed_settings_recorded": detail.last_reviewed_settings_recorded,
            "wechat_job": detail.wechat_job.as_ref().map(|j| job_json(out, j)),
        }));
    }
    let content = a.content.clone().unwrap_or_default();
    let mut text = fields(&[
        ("id", a.id.clone()),
        ("account", a.account.clone()),
        ("department", a.department.clone()),
        ("author", or_dash(&a.author_id)),
        ("state", state_label(&a)),
        ("version", a.version.to_string()),
        ("title", content.title.clone()),
        ("digest", or_dash(&content.digest)),
        ("channel", channel_name(a.channel)),
        ("scheduled for", out.time(a.scheduled_for.as_ref())),
        ("url", or_dash(&a.url)),
        ("failure", or_dash(&a.failure)),
        ("updated", out.time(a.updated_at.as_ref())),
        ("published", out.time(a.published_at.as_ref())),
    ]);
    if let Some(job) = &detail.wechat_job {
        text.push_str("\n\nWECHAT JOB\n");
        text.push_str(&job_fields(out, job));
    }
    if !a.hits.is_empty() {
        let rows = a.hits.iter().map(|h| {
            vec![
                h.key.clone(),
                h.field.clone(),
                h.text.clone(),
                h.word.clone(),
                h.category.clone(),
                if h.overridden {
                    format!("overridden by {}: {}", h.overridden_by, h.override_reason)
                } else {
                    "open".to_owned()
                },
            ]
        });
        text.push_str("\n\nSENSITIVE WORDS\n");
        text.push_str(&table(
            &["key", "field", "text", "word", "category", "status"],
            rows,
        ));
    }
    if let Some(reviewed) = reviewed_fields(detail) {
        text.push_str(&format!(
            "\n\nLAST REVIEWED (version {}, changed since)\n",
            detail.last_reviewed_version
        ));
        text.push_str(&reviewed);
    }
    if !detail.audit.is_empty() {
        let rows = detail.audit.iter().map(|e| {
            vec![
                out.time(e.at.as_ref()),
                e.actor.clone(),
                e.action.clone(),
                or_dash(&e.stage),
                format!("{} → {}", state_name(e.from_state), state_name(e.to_state)),
                e.version.to_string(),
                or_dash(&e.comment),
            ]
        });
        text.push_str("\n\nREVIEW TRAIL\n");
        text.push_str(&table(
            &[
                "at", "actor", "action", "stage", "state", "version", "comment",
            ],
            rows,
        ));
    }
    out.line(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(name: &str) -> Request<()> {
        acting(
            (),
            &ActorArg {
                actor: Some(name.into()),
            },
        )
        .expect("a name govwx sends")
    }

    #[test]
    #[allow(deprecated)]
    fn a_review_request_carries_approve_for_servers_of_the_previous_release() {
        let approval = review_request("a1".into(), Decision::Approve, String::new(), vec![], 3);
        assert_eq!(approval.verdict, pb::ReviewVerdict::Approve as i32);
        assert!(
            approval.approve,
            "an approval reads as approve=true on a server that reads only field 2: {approval:?}"
        );
        let rejection = review_request("a1".into(), Decision::Reject, "链接有误".into(), vec![], 3);
        assert_eq!(rejection.verdict, pb::ReviewVerdict::Reject as i32);
        assert!(!rejection.approve, "{rejection:?}");
    }

    #[test]
    fn only_a_failed_article_is_flagged_outcome_unknown() {
        let article = |state: ArticleState| pb::Article {
            state: state as i32,
            send_outcome_unknown: true,
            ..Default::default()
        };
        let failed = article(ArticleState::Failed);
        assert!(state_label(&failed).contains("record-published"));
        assert!(state_column(&failed).contains("outcome unknown"));
        for state in [ArticleState::Published, ArticleState::Scheduled] {
            let settled = article(state);
            assert!(
                !state_label(&settled).contains("outcome unknown"),
                "{state:?}"
            );
            assert!(
                !state_column(&settled).contains("outcome unknown"),
                "{state:?}"
            );
        }
    }

    fn utc() -> Out {
        Out {
            json: false,
            tz: chrono::FixedOffset::east_opt(0).expect("utc"),
        }
    }

    #[test]
    fn the_job_shows_its_id_the_hand_over_and_the_place_and_version_sent() {
        let job = pb::WechatJob {
            mass_msg_id: "1000000001".into(),
            sent_position: 2,
            sent_version: 3,
            handed_at: Some(prost_types::Timestamp {
                seconds: 1_796_515_200,
                nanos: 0,
            }),
            ..Default::default()
        };
        let text = job_fields(&utc(), &job);
        let lines: Vec<_> = text
            .lines()
            .map(str::split_whitespace)
            .map(Iterator::collect::<Vec<_>>)
            .collect();
        assert_eq!(
            lines,
            [
                vec!["mass", "msg", "id:", "1000000001"],
                vec!["handed", "over:", "2026-12-06", "00:00"],
                vec!["place", "sent:", "2"],
                vec!["version", "sent:", "3"],
            ],
            "{text}"
        );
        let json = job_json(&utc(), &job);
        assert_eq!(json["mass_msg_id"], "1000000001");
        assert_eq!(json["publish_id"], Value::Null);
        assert_eq!(json["sent_position"], 2);
        assert_eq!(json["sent_version"], 3);
        assert_eq!(json["handed_at"], "2026-12-06T00:00:00+00:00");
    }

    #[test]
    fn what_the_job_did_not_record_is_said_so_not_shown_as_0() {
        let job = pb::WechatJob {
            publish_id: "2247483999".into(),
            ..Default::default()
        };
        let text = job_fields(&utc(), &job);
        assert!(text.contains("publish id"), "{text}");
        assert!(!text.contains("handed over"), "{text}");
        assert_eq!(text.matches("not recorded").count(), 2, "{text}");
        let json = job_json(&utc(), &job);
        assert_eq!(json["sent_position"], Value::Null);
        assert_eq!(json["handed_at"], Value::Null);
    }

    #[test]
    fn a_chinese_name_is_sent_as_x_actor_bin_and_an_ascii_one_as_x_actor() {
        let chinese = sent(" 王芳 ");
        let bin = chinese
            .metadata()
            .get_bin(ACTOR_BIN_HEADER)
            .expect("binary");
        assert_eq!(bin.to_bytes().expect("base64").as_ref(), "王芳".as_bytes());
        assert!(chinese.metadata().get(ACTOR_HEADER).is_none());

        let ascii = sent("zhang.wei");
        assert_eq!(ascii.metadata().get(ACTOR_HEADER).unwrap(), "zhang.wei");
        assert!(ascii.metadata().get_bin(ACTOR_BIN_HEADER).is_none());

        let percent = sent("li%20");
        let bin = percent
            .metadata()
            .get_bin(ACTOR_BIN_HEADER)
            .expect("binary");
        assert_eq!(bin.to_bytes().expect("base64").as_ref(), b"li%20");
    }

    #[test]
    fn a_name_with_a_control_character_is_refused_before_sending() {
        let refused = acting(
            (),
            &ActorArg {
                actor: Some("王\n芳".into()),
            },
        );
        assert!(matches!(refused, Err(Error::Input(_))));
    }
}
