//! `content.v1.ContentService`: thin handlers that decode, check the caller,
//! call `app`, and encode. Wire ⇄ domain conversions live in `convert`, the one
//! status mapping in `error`.
//!
//! Permissions: any authenticated caller may read the directory. Articles: see
//! the README's roles table; the workflow's own role rules live in
//! `domain::review` so every door applies them alike.

pub(crate) mod actor;
mod convert;
mod directory_import;
mod error;
pub mod menus;
mod screen_text;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use platform::grpc::{AccountScope, Caller, caller};
use platform::{Drain, Role};
use proto::content::v1 as pb;
use sqlx::PgPool;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use crate::app;
use crate::app::articles::{Articles, RecordPublished, SendOptions, Who};
use crate::app::directory::Directory;
use crate::app::search::Search;
use crate::domain::review::{Action, Actor};
use crate::domain::screening::Entry;
use crate::domain::search::SearchQuery;
use crate::domain::text;
use crate::store::search::SearchFilter;
pub use error::GrpcError;

/// Any authenticated caller may read the directory.
const READERS: &[Role] = &Role::ALL;
/// Who may use the article RPCs at all (each step checks its own role).
const WORKFLOW: &[Role] = &[Role::Editor, Role::Reviewer, Role::Publisher];
/// Who may write the directory (an editor their department's services, an admin any).
const DIRECTORY_WRITERS: &[Role] = &[Role::Editor, Role::Admin];
/// Who may read the lexicon.
const LEXICON_READERS: &[Role] = &[Role::Reviewer, Role::Publisher];

/// The gRPC service implementation.
#[derive(Clone)]
pub struct ContentGrpc {
    db: PgPool,
    articles: Articles,
    directory: Directory,
    search: Search,
    /// Holds the sends a caller hung up on, so a drain waits for them too.
    drain: Drain,
    /// The calls finished on a task of their own that are under way.
    in_flight: InFlight,
}

impl ContentGrpc {
    /// A service reading and writing `db`.
    pub fn new(
        db: PgPool,
        articles: Articles,
        directory: Directory,
        search: Search,
        drain: Drain,
    ) -> Self {
        Self {
            db,
            articles,
            directory,
            search,
            drain,
            in_flight: InFlight::default(),
        }
    }
}

/// `department:person` with the person named in the metadata ([`actor`]), or the
/// department alone when none is named. That may be any of the department's people,
/// so the separation of duties takes it for each of them
/// ([`may_be_same_person`](crate::domain::review::may_be_same_person)).
pub(crate) fn actor_id<T>(request: &Request<T>, caller: &Caller) -> Result<String, Status> {
    let person = actor::person(request.metadata()).map_err(GrpcError::from)?;
    Ok(match person {
        Some(person) => format!("{}:{person}", caller.department),
        None => caller.department.clone(),
    })
}

/// The acting person ([`actor_id`]) with the key's roles and reach.
fn who<T>(request: &Request<T>, allowed: &[Role]) -> Result<Who, Status> {
    let caller: &Caller = caller(request)?;
    caller.require_any(allowed)?;
    let id = actor_id(request, caller)?;
    Ok(Who {
        actor: Actor {
            id,
            roles: caller.roles.iter().copied().collect(),
        },
        department: caller.department.clone(),
        accounts: caller.accounts.clone(),
    })
}

type Reply<T> = Result<Response<T>, Status>;

/// A comment or reason, checked before anything is done with it.
fn note<'a>(field: &str, value: &'a str) -> Result<&'a str, GrpcError> {
    text::check_note(field, value)?;
    Ok(value)
}

/// A single-line field or an identifier (an account, an openid, a word): no
/// control character, so it cannot fail in PostgreSQL after a side effect.
fn line<'a>(field: &str, value: &'a str) -> Result<&'a str, GrpcError> {
    text::check_line(field, value)?;
    Ok(value)
}

/// Another account looks absent to this key (`AppError::NotFound` would say
/// "article not found" of an account).
fn reach(who: &Who, account: &str) -> Result<(), Status> {
    if who.accounts.contains(account) {
        Ok(())
    } else {
        Err(Status::not_found(format!("account {account} not found")))
    }
}

/// The lexicon has no account: it screens every account's articles, so only a key
/// reaching every account may change it (a county's admin may not change the city's).
fn lexicon_writer<T>(request: &Request<T>) -> Result<Who, Status> {
    let who = who(request, &[Role::Admin])?;
    if who.accounts != AccountScope::All {
        return Err(GrpcError::from(app::AppError::Forbidden(
            "the lexicon screens every account's articles: only an admin key reaching all \
             accounts may change it"
                .into(),
        ))
        .into());
    }
    Ok(who)
}

/// The version a reviewer read: 0 (an older client) is not checked.
fn read_version(version: u32) -> Result<Option<i32>, GrpcError> {
    if version == 0 {
        return Ok(None);
    }
    i32::try_from(version)
        .map(Some)
        .map_err(|_| GrpcError::Invalid(format!("version: {version} is not a version")))
}

/// Hit overrides as (key, reason), each key a [`line`], each reason a [`note`].
fn overrides(raw: Vec<pb::HitOverride>) -> Result<Vec<(String, String)>, GrpcError> {
    raw.into_iter()
        .enumerate()
        .map(|(i, o)| {
            line(&format!("overrides[{i}].key"), &o.key)?;
            note(&format!("overrides[{i}].reason"), &o.reason)?;
            Ok((o.key, o.reason))
        })
        .collect()
}

impl ContentGrpc {
    #[allow(clippy::too_many_arguments)]
    async fn act(
        &self,
        who: &Who,
        id: &str,
        action: Action,
        comment: &str,
        overrides: &[(String, String)],
        send: SendOptions,
        read_version: Option<i32>,
    ) -> Reply<pb::Article> {
        let comment = note("comment", comment)?.to_owned();
        let id = convert::article_id(id)?;
        let call = InFlight::action(&action);
        let (articles, who_now, overrides) =
            (self.articles.clone(), who.clone(), overrides.to_vec());
        let view = self
            .to_the_end(call, who, id, &[], async move {
                let who = who_now;
                articles
                    .act(&who, id, action, &comment, &overrides, send, read_version)
                    .await
            })
            .await?
            .map_err(GrpcError::from)?;
        Ok(Response::new(convert::article(view)))
    }

    /// Runs a use case that may call WeChat on a task of its own: tonic drops a
    /// call's future when its caller hangs up (govwx's `--timeout`, a proxy, Ctrl-C),
    /// and a send cut between its steps would be left `publishing` for the stuck-send
    /// sweep to fail as of unknown outcome. What the caller started is finished and
    /// recorded: the task is the drain's (a rolling update waits for it) and keeps the
    /// call's span (its department labels the use case's logs).
    ///
    /// One such call per caller (its actor and the accounts its key reaches), call,
    /// article and `to` (a preview's openids; empty for the others) at a time: a second while the first is under way is `ABORTED`,
    /// not started. A script repeating a call with a short timeout while WeChat or the
    /// per-minute ledger's lock is slow otherwise piled up a task per attempt, each
    /// holding a pool connection, and each finished preview reached real followers.
    /// A preview of the article to other people is another call, not a repeat.
    async fn to_the_end<T: Send + 'static>(
        &self,
        call: Call,
        who: &Who,
        article: uuid::Uuid,
        to: &[String],
        work: impl std::future::Future<Output = T> + Send + 'static,
    ) -> Result<T, Status> {
        // The caller is the actor and the accounts its key reaches: keys of one
        // department name on different accounts (press@chenzhou, press@yizhang) are
        // different callers, and an ABORTED must not tell one of them that another's
        // article exists and what is being done to it.
        let caller = match &who.accounts {
            AccountScope::All => format!("{}@*", who.actor.id),
            AccountScope::Only(accounts) => format!(
                "{}@{}",
                who.actor.id,
                accounts
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join("+")
            ),
        };
        let running = match self.in_flight.enter(call, &caller, article, to) {
            Ok(running) => running,
            Err(overlap) if overlap.is_empty() => {
                return Err(Status::aborted(format!(
                    "{} (article {article}): an identical earlier call, perhaps one whose \
                     caller hung up, is being finished; try again once it has finished",
                    call.what
                )));
            }
            Err(overlap) => {
                return Err(Status::aborted(format!(
                    "{} (article {article}) to {}: an earlier call to them, perhaps one \
                     whose caller hung up, is being finished; try again once it has \
                     finished, or leave them out",
                    call.what,
                    overlap.join(", ")
                )));
            }
        };
        let work = async move {
            let done = work.await;
            drop(running);
            done
        };
        self.on_the_drain(work).await
    }

    /// Runs a use case on a task of the drain's, in the call's span: what it does
    /// after its commit (deleting the WeChat drafts a compose or dissolve made
    /// articles forget) is not dropped, silently, with the call's future when the
    /// caller hangs up, and a draining pod waits for it.
    async fn on_the_drain<T: Send + 'static>(
        &self,
        work: impl std::future::Future<Output = T> + Send + 'static,
    ) -> Result<T, Status> {
        self.drain
            .spawn(work.in_current_span())
            .await
            .map_err(|error| {
                tracing::error!(%error, "a use case's task ended without an answer");
                Status::internal("internal error")
            })
    }
}

/// A call [`ContentGrpc::to_the_end`] finishes on its own task: its name in the
/// refusal of a second one under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Call {
    what: &'static str,
}

impl Call {
    const PREVIEW: Self = Self {
        what: "a preview of this article is still being sent",
    };
    const RETRACT: Self = Self {
        what: "a retraction of this article is still being sent",
    };
    const CORRECT: Self = Self {
        what: "a correction of this article is still being sent",
    };
    const EDIT_PUBLISHED: Self = Self {
        what: "an edit of this published article is still being sent",
    };
}

/// Who a call under way is by, what it is, of which article, and to whom (a
/// preview's openids, sorted and each once: the same people in another order are
/// the same preview).
type CallKey = (String, Call, uuid::Uuid, Vec<String>);

/// The calls [`ContentGrpc::to_the_end`] is running, by caller, call, article and
/// the preview's openids.
#[derive(Clone, Default)]
struct InFlight(Arc<Mutex<HashSet<CallKey>>>);

impl InFlight {
    /// The call of a workflow action.
    fn action(action: &Action) -> Call {
        Call {
            what: match action {
                Action::Publish => "a publish of this article is still being sent",
                Action::Submit => "a submission of this article is still under way",
                Action::Withdraw => "a withdrawal of this article is still under way",
                Action::Approve => "an approval of this article is still under way",
                Action::Reject => "a rejection of this article is still under way",
                Action::Schedule => "a schedule of this article is still under way",
                Action::CancelSchedule => "a cancel of this article's schedule is still under way",
                Action::Return => "a return of this article is still under way",
                _ => "a step of this article is still under way",
            },
        }
    }

    /// Marks `call` of `article` by `caller` to `to` as under way until the returned
    /// guard drops. Refused when it already is, or (a preview) when one of the same
    /// caller and article under way is to any of the same people: a preview to
    /// [A, B, C] being finished after its caller hung up, then one to [B, C], gave B
    /// and C two. The error names those people (empty: an identical call).
    fn enter(
        &self,
        call: Call,
        caller: &str,
        article: uuid::Uuid,
        to: &[String],
    ) -> Result<Running, Vec<String>> {
        let mut to = to.to_vec();
        to.sort();
        to.dedup();
        let mut running = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let mut overlap: Vec<String> = running
            .iter()
            .filter(|(c, k, a, _)| c == caller && *k == call && *a == article)
            .flat_map(|(_, _, _, theirs)| theirs.iter().filter(|o| to.contains(o)))
            .cloned()
            .collect();
        overlap.sort();
        overlap.dedup();
        if !overlap.is_empty() {
            return Err(overlap);
        }
        let key = (caller.to_owned(), call, article, to);
        if !running.insert(key.clone()) {
            return Err(Vec::new());
        }
        Ok(Running {
            set: self.clone(),
            key,
        })
    }
}

/// A call under way; it leaves [`InFlight`] when dropped (finished, or its task
/// ended anyhow).
struct Running {
    set: InFlight,
    key: CallKey,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.set
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.key);
    }
}

#[tonic::async_trait]
impl pb::content_service_server::ContentService for ContentGrpc {
    async fn list_services(
        &self,
        request: Request<pb::ListServicesRequest>,
    ) -> Reply<pb::ListServicesResponse> {
        let caller = caller(&request)?;
        caller.require_any(READERS)?;
        line("account", &request.get_ref().account)?;
        let listing = convert::listing(request.get_ref()).map_err(GrpcError::from)?;
        // Another account's directory looks absent to this key.
        if !caller.may_access(listing.account.as_str()) {
            return Err(Status::not_found(format!(
                "account {} not found",
                listing.account
            )));
        }
        let rows = app::directory::list_services(&self.db, &listing)
            .await
            .map_err(GrpcError::from)?;
        Ok(Response::new(pb::ListServicesResponse {
            services: rows.into_iter().map(convert::service_entry).collect(),
        }))
    }

    async fn list_categories(
        &self,
        request: Request<pb::ListCategoriesRequest>,
    ) -> Reply<pb::ListCategoriesResponse> {
        caller(&request)?.require_any(READERS)?;
        let rows = self.directory.categories().await.map_err(GrpcError::from)?;
        Ok(Response::new(pb::ListCategoriesResponse {
            categories: rows.into_iter().map(convert::category).collect(),
        }))
    }

    async fn get_service(&self, request: Request<pb::ServiceRef>) -> Reply<pb::Service> {
        let who = who(&request, READERS)?;
        let id = convert::service_id(&request.get_ref().id)?;
        let row = self
            .directory
            .get(&who, id)
            .await
            .map_err(GrpcError::from)?;
        Ok(Response::new(convert::service(row)))
    }

    async fn create_service(&self, request: Request<pb::Service>) -> Reply<pb::Service> {
        let who = who(&request, DIRECTORY_WRITERS)?;
        let mut req = request.into_inner();
        let request_id = std::mem::take(&mut req.request_id);
        let create = convert::create_request(&request_id, &req)?;
        let draft = convert::service_draft(&req, &who.department)
            .map_err(|e| GrpcError::from(crate::app::AppError::from(e)))?;
        // Another account looks absent to this key.
        if !who.accounts.contains(draft.account.as_str()) {
            return Err(Status::not_found(format!(
                "account {} not found",
                draft.account
            )));
        }
        let row = self
            .directory
            .create(&who, draft, create.as_ref())
            .await
            .map_err(GrpcError::from)?;
        Ok(Response::new(convert::service(row)))
    }

    async fn update_service(&self, request: Request<pb::Service>) -> Reply<pb::Service> {
        let who = who(&request, DIRECTORY_WRITERS)?;
        let id = convert::service_id(&request.get_ref().id)?;
        let draft = convert::service_draft(request.get_ref(), &who.department)
            .map_err(|e| GrpcError::from(crate::app::AppError::from(e)))?;
        let row = self
            .directory
            .update(&who, id, draft)
            .await
            .map_err(GrpcError::from)?;
        Ok(Response::new(convert::service(row)))
    }

    async fn delete_service(
        &self,
        request: Request<pb::ServiceRef>,
    ) -> Reply<pb::DeleteServiceResponse> {
        let who = who(&request, DIRECTORY_WRITERS)?;
        let id = convert::service_id(&request.get_ref().id)?;
        self.directory
            .delete(&who, id)
            .await
            .map_err(GrpcError::from)?;
        Ok(Response::new(pb::DeleteServiceResponse {}))
    }

    async fn search(&self, request: Request<pb::SearchRequest>) -> Reply<pb::SearchResponse> {
        let caller = caller(&request)?;
        caller.require_any(READERS)?;
        let req = request.get_ref();
        let account = line("account", req.account.trim())?;
        if account.is_empty() {
            return Err(Status::invalid_argument("account is required"));
        }
        text::check_text("query", &req.query).map_err(GrpcError::from)?;
        // Another account's documents look absent to this key.
        if !caller.may_access(account) {
            return Err(Status::not_found(format!("account {account} not found")));
        }
        let query = SearchQuery::parse(self.search.segmenter(), &req.query)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let kind = match pb::SearchKind::try_from(req.kind) {
            Ok(pb::SearchKind::Unspecified) => None,
            Ok(pb::SearchKind::Service) => Some("service"),
            Ok(pb::SearchKind::Article) => Some("article"),
            Err(_) => return Err(Status::invalid_argument("kind is not a SearchKind")),
        };
        let category = match req.category.trim() {
            "" => None,
            code => Some(
                crate::domain::CategoryCode::parse(code)
                    .map_err(GrpcError::from)?
                    .as_str()
                    .to_owned(),
            ),
        };
        let limit = match req.limit {
            0 => app::search::LIMIT_DEFAULT,
            n if i64::from(n) <= app::search::LIMIT_MAX => i64::from(n),
            _ => {
                return Err(Status::invalid_argument(format!(
                    "limit must be 1 to {}",
                    app::search::LIMIT_MAX
                )));
            }
        };
        let filter = SearchFilter {
            account,
            kind,
            category: category.as_deref(),
            limit,
        };
        let hits = self
            .search
            .search(&query, &filter)
            .await
            .map_err(GrpcError::from)?;
        Ok(Response::new(pb::SearchResponse {
            hits: hits.into_iter().map(convert::search_hit).collect(),
        }))
    }

    async fn create_article(
        &self,
        request: Request<pb::CreateArticleRequest>,
    ) -> Reply<pb::Article> {
        let who = who(&request, &[Role::Editor])?;
        let mut req = request.into_inner();
        let request_id = std::mem::take(&mut req.request_id);
        let create = convert::create_request(&request_id, &req)?;
        let account = line("account", req.account.trim())?.to_owned();
        if account.is_empty() {
            return Err(GrpcError::Invalid("account is required".into()).into());
        }
        reach(&who, &account)?;
        let channel = convert::channel(&req)?;
        let content = convert::content(req.content)?;
        let view = self
            .articles
            .create(&who, &account, content, channel, create.as_ref())
            .await
            .map_err(GrpcError::from)?;
        Ok(Response::new(convert::article(view)))
    }

    async fn update_article(
        &self,
        request: Request<pb::UpdateArticleRequest>,
    ) -> Reply<pb::Article> {
        let who = who(&request, &[Role::Editor])?;
        let req = request.into_inner();
        let id = convert::article_id(&req.id)?;
        let content = convert::content(req.content)?;
        let read = req
            .version
            .map(|v| {
                i32::try_from(v)
                    .map_err(|_| GrpcError::Invalid(format!("version: {v} is not a version")))
            })
            .transpose()?;
        let view = self
            .articles
            .update(&who, id, content, read)
            .await
            .map_err(GrpcError::from)?;
        Ok(Response::new(convert::article(view)))
    }

    async fn get_article(
        &self,
        request: Request<pb::GetArticleRequest>,
    ) -> Reply<pb::ArticleDetail> {
        let who = who(&request, WORKFLOW)?;
        let id = convert::article_id(&request.get_ref().id)?;
        let view = self.articles.get(&who, id).await.map_err(GrpcError::from)?;
        let (audit, reviewed) = self
            .articles
            .history(&view)
            .await
            .map_err(GrpcError::from)?;
        let changed = reviewed
            .as_ref()
            .is_some_and(|v| v.version != view.row.version);
        let headline = self
            .articles
            .headline_of(&who, &view.row)
            .await
            .map_err(GrpcError::from)?;
        let wechat_job = convert::wechat_job(&view.row, headline.as_ref());
        Ok(Response::new(pb::ArticleDetail {
            wechat_job,
            last_reviewed_version: reviewed.as_ref().map(|v| v.version as u32).unwrap_or(0),
            last_reviewed_settings_recorded: reviewed
                .as_ref()
                .is_some_and(|v| v.settings_recorded()),
            last_reviewed_content: reviewed
                .filter(|_| changed)
                .map(|v| convert::reviewed_content(v.content())),
            article: Some(convert::article(view)),
            audit: audit.into_iter().map(convert::audit).collect(),
        }))
    }

    async fn list_article_versions(
        &self,
        request: Request<pb::ListArticleVersionsRequest>,
    ) -> Reply<pb::ListArticleVersionsResponse> {
        let who = who(&request, WORKFLOW)?;
        let req = request.get_ref();
        let id = convert::article_id(&req.id)?;
        let size = convert::versions_page_size(req.page_size)?;
        let before = convert::parse_versions_page_token(&req.page_token)?;
        let (versions, more) = self
            .articles
            .versions(&who, id, before, size)
            .await
            .map_err(GrpcError::from)?;
        let next_page_token = versions
            .last()
            .filter(|_| more)
            .map(|v| convert::versions_page_token(v.summary.version))
            .unwrap_or_default();
        Ok(Response::new(pb::ListArticleVersionsResponse {
            versions: versions.into_iter().map(convert::version_summary).collect(),
            next_page_token,
        }))
    }

    async fn get_article_version(
        &self,
        request: Request<pb::GetArticleVersionRequest>,
    ) -> Reply<pb::ArticleVersion> {
        let who = who(&request, WORKFLOW)?;
        let req = request.get_ref();
        let id = convert::article_id(&req.id)?;
        let version = convert::version_number(req.version)?;
        let (view, content) = self
            .articles
            .version(&who, id, version)
            .await
            .map_err(GrpcError::from)?;
        Ok(Response::new(convert::version(view, content)))
    }

    async fn list_articles(
        &self,
        request: Request<pb::ListArticlesRequest>,
    ) -> Reply<pb::ListArticlesResponse> {
        let who = who(&request, WORKFLOW)?;
        let req = request.into_inner();
        let state = convert::state_filter(req.state)?;
        let before = convert::parse_page_token(&req.page_token)?;
        let size = convert::page_size(req.page_size)?;
        let account = line("account", req.account.trim())?;
        let rows = self
            .articles
            .list(
                &who,
                (!account.is_empty()).then_some(account),
                state,
                size,
                before,
            )
            .await
            .map_err(GrpcError::from)?;
        let next_page_token = if rows.len() as i64 == size {
            rows.last().map(convert::page_token).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListArticlesResponse {
            articles: rows.into_iter().map(convert::article_row).collect(),
            next_page_token,
        }))
    }

    async fn submit_article(&self, request: Request<pb::ArticleRef>) -> Reply<pb::Article> {
        let who = who(&request, &[Role::Editor])?;
        let req = request.into_inner();
        let send = SendOptions::default();
        self.act(&who, &req.id, Action::Submit, &req.comment, &[], send, None)
            .await
    }

    async fn withdraw_article(&self, request: Request<pb::ArticleRef>) -> Reply<pb::Article> {
        let who = who(&request, &[Role::Editor])?;
        let req = request.into_inner();
        let send = SendOptions::default();
        self.act(
            &who,
            &req.id,
            Action::Withdraw,
            &req.comment,
            &[],
            send,
            None,
        )
        .await
    }

    async fn review_article(
        &self,
        request: Request<pb::ReviewArticleRequest>,
    ) -> Reply<pb::Article> {
        let who = who(&request, &[Role::Reviewer, Role::Publisher])?;
        let req = request.into_inner();
        #[allow(deprecated)]
        let legacy_approve = req.approve;
        let action = convert::verdict(req.verdict, legacy_approve)?;
        let overrides = overrides(req.overrides)?;
        let send = SendOptions::default();
        let read = read_version(req.version)?;
        self.act(&who, &req.id, action, &req.comment, &overrides, send, read)
            .await
    }

    async fn override_hits(&self, request: Request<pb::OverrideHitsRequest>) -> Reply<pb::Article> {
        let who = who(&request, &[Role::Reviewer, Role::Publisher])?;
        let req = request.into_inner();
        let id = convert::article_id(&req.id)?;
        let overrides = overrides(req.overrides)?;
        let read = read_version(req.version)?;
        let view = self
            .articles
            .override_hits(&who, id, &overrides, read)
            .await
            .map_err(GrpcError::from)?;
        Ok(Response::new(convert::article(view)))
    }

    async fn return_for_revision(
        &self,
        request: Request<pb::ReturnForRevisionRequest>,
    ) -> Reply<pb::Article> {
        let who = who(&request, &[Role::Reviewer, Role::Publisher])?;
        let req = request.into_inner();
        note("reason", &req.reason)?;
        let read = read_version(req.version)?;
        let send = SendOptions::default();
        self.act(&who, &req.id, Action::Return, &req.reason, &[], send, read)
            .await
    }

    async fn schedule_article(
        &self,
        request: Request<pb::ScheduleArticleRequest>,
    ) -> Reply<pb::Article> {
        let who = who(&request, &[Role::Publisher])?;
        let req = request.into_inner();
        let at = req
            .at
            .ok_or_else(|| GrpcError::Invalid("at is required".into()))?;
        let at = convert::time(Some(at))
            .ok_or_else(|| GrpcError::Invalid("at is not a time this service can keep".into()))?;
        crate::domain::review::check_schedule_time(at, chrono::Utc::now())
            .map_err(GrpcError::Invalid)?;
        let send = SendOptions {
            at: Some(at),
            confirm_possible_duplicate: req.confirm_possible_duplicate,
        };
        self.act(&who, &req.id, Action::Schedule, "", &[], send, None)
            .await
    }

    async fn cancel_schedule(&self, request: Request<pb::ArticleRef>) -> Reply<pb::Article> {
        let who = who(&request, &[Role::Publisher])?;
        let req = request.into_inner();
        self.act(
            &who,
            &req.id,
            Action::CancelSchedule,
            &req.comment,
            &[],
            SendOptions::default(),
            None,
        )
        .await
    }

    async fn publish_article(
        &self,
        request: Request<pb::PublishArticleRequest>,
    ) -> Reply<pb::Article> {
        let who = who(&request, &[Role::Publisher])?;
        let req = request.into_inner();
        let send = SendOptions {
            at: None,
            confirm_possible_duplicate: req.confirm_possible_duplicate,
        };
        self.act(
            &who,
            &req.id,
            Action::Publish,
            &req.comment,
            &[],
            send,
            None,
        )
        .await
    }

    async fn preview_article(
        &self,
        request: Request<pb::PreviewArticleRequest>,
    ) -> Reply<pb::PreviewArticleResponse> {
        let who = who(&request, &[Role::Publisher])?;
        let req = request.into_inner();
        let id = convert::article_id(&req.id)?;
        for (i, openid) in req.openids.iter().enumerate() {
            line(&format!("openids[{i}]"), openid)?;
        }
        let articles = self.articles.clone();
        let caller = who.clone();
        let to = req.openids.clone();
        let sent = self
            .to_the_end(Call::PREVIEW, &caller, id, &to, async move {
                articles.preview(&who, id, &req.openids).await
            })
            .await?
            .map_err(GrpcError::from)?;
        Ok(Response::new(pb::PreviewArticleResponse {
            sent: sent as u32,
        }))
    }

    async fn retract_article(&self, request: Request<pb::ArticleRef>) -> Reply<pb::Article> {
        let who = who(&request, &[Role::Publisher])?;
        let req = request.into_inner();
        note("comment", &req.comment)?;
        let id = convert::article_id(&req.id)?;
        let articles = self.articles.clone();
        let caller = who.clone();
        let view = self
            .to_the_end(Call::RETRACT, &caller, id, &[], async move {
                articles.retract(&who, id, &req.comment).await
            })
            .await?
            .map_err(GrpcError::from)?;
        Ok(Response::new(convert::article(view)))
    }

    async fn correct_article(
        &self,
        request: Request<pb::CorrectArticleRequest>,
    ) -> Reply<pb::Article> {
        let who = who(&request, &[Role::Publisher])?;
        let req = request.into_inner();
        note("reason", &req.reason)?;
        let id = convert::article_id(&req.id)?;
        let notice = convert::content(req.notice)?;
        let articles = self.articles.clone();
        let caller = who.clone();
        let view = self
            .to_the_end(Call::CORRECT, &caller, id, &[], async move {
                articles.correct(&who, id, &req.reason, notice).await
            })
            .await?
            .map_err(GrpcError::from)?;
        Ok(Response::new(convert::article(view)))
    }

    async fn edit_published_article(
        &self,
        request: Request<pb::EditPublishedArticleRequest>,
    ) -> Reply<pb::Article> {
        let who = who(&request, &[Role::Publisher])?;
        let req = request.into_inner();
        note("reason", &req.reason)?;
        text::check_text("body", &req.body).map_err(GrpcError::from)?;
        let id = convert::article_id(&req.id)?;
        let articles = self.articles.clone();
        let caller = who.clone();
        let view = self
            .to_the_end(Call::EDIT_PUBLISHED, &caller, id, &[], async move {
                articles
                    .edit_published(&who, id, req.body, &req.reason)
                    .await
            })
            .await?
            .map_err(GrpcError::from)?;
        Ok(Response::new(convert::article(view)))
    }

    async fn record_published(
        &self,
        request: Request<pb::RecordPublishedRequest>,
    ) -> Reply<pb::Article> {
        let who = who(&request, &[Role::Publisher])?;
        let req = request.into_inner();
        let comment = note("comment", &req.comment)?;
        let url = line("url", req.url.trim())?;
        let msg_data_id = line("msg_data_id", req.msg_data_id.trim())?;
        let at = match req.published_at {
            Some(at) => Some(convert::time(Some(at)).ok_or_else(|| {
                GrpcError::Invalid("published_at is not a time this service can keep".into())
            })?),
            None => None,
        };
        let id = convert::article_id(&req.id)?;
        let record = RecordPublished {
            url,
            msg_data_id: (!msg_data_id.is_empty()).then_some(msg_data_id),
            at,
            comment,
        };
        let view = self
            .articles
            .record_published(&who, id, record)
            .await
            .map_err(GrpcError::from)?;
        Ok(Response::new(convert::article(view)))
    }

    async fn upload_image(&self, request: Request<pb::UploadImageRequest>) -> Reply<pb::Image> {
        let who = who(&request, &[Role::Editor])?;
        let mut req = request.into_inner();
        let request_id = std::mem::take(&mut req.request_id);
        let create = convert::create_request(&request_id, &req)?;
        let account = line("account", req.account.trim())?;
        if account.is_empty() {
            return Err(GrpcError::Invalid("account is required".into()).into());
        }
        reach(&who, account)?;
        let image = self
            .articles
            .media()
            .upload(&who, account, &req.data, create.as_ref())
            .await
            .map_err(GrpcError::from)?;
        Ok(Response::new(convert::image(image)))
    }

    async fn compose_message(
        &self,
        request: Request<pb::ComposeMessageRequest>,
    ) -> Reply<pb::ArticleMessage> {
        let who = who(&request, &[Role::Publisher])?;
        let req = request.into_inner();
        let account = line("account", req.account.trim())?;
        if account.is_empty() {
            return Err(GrpcError::Invalid("account is required".into()).into());
        }
        reach(&who, account)?;
        let message = match req.message_id.trim() {
            "" => None,
            id => Some(convert::message_id(id)?),
        };
        let ids = convert::article_ids(&req.article_ids)?;
        let (articles, account) = (self.articles.clone(), account.to_owned());
        let view = self
            .on_the_drain(async move {
                articles
                    .compose_message(&who, &account, message, &ids)
                    .await
            })
            .await?
            .map_err(GrpcError::from)?;
        Ok(Response::new(convert::message(view)))
    }

    async fn get_message(&self, request: Request<pb::MessageRef>) -> Reply<pb::ArticleMessage> {
        let who = who(&request, WORKFLOW)?;
        let id = convert::message_id(&request.get_ref().id)?;
        let view = self
            .articles
            .get_message(&who, id)
            .await
            .map_err(GrpcError::from)?;
        Ok(Response::new(convert::message(view)))
    }

    async fn dissolve_message(
        &self,
        request: Request<pb::MessageRef>,
    ) -> Reply<pb::DissolveMessageResponse> {
        let who = who(&request, &[Role::Publisher])?;
        let id = convert::message_id(&request.get_ref().id)?;
        let articles = self.articles.clone();
        let articles = self
            .on_the_drain(async move { articles.dissolve_message(&who, id).await })
            .await?
            .map_err(GrpcError::from)?;
        Ok(Response::new(pb::DissolveMessageResponse {
            articles: articles as u32,
        }))
    }

    async fn list_lexicon(
        &self,
        request: Request<pb::ListLexiconRequest>,
    ) -> Reply<pb::ListLexiconResponse> {
        caller(&request)?.require_any(LEXICON_READERS)?;
        let category = request.get_ref().category.trim();
        let rows = self
            .articles
            .lexicon()
            .list((!category.is_empty()).then_some(category))
            .await
            .map_err(GrpcError::from)?;
        Ok(Response::new(pb::ListLexiconResponse {
            entries: rows
                .into_iter()
                .map(|(word, category)| pb::LexiconEntry { word, category })
                .collect(),
        }))
    }

    async fn put_lexicon_entry(
        &self,
        request: Request<pb::LexiconEntry>,
    ) -> Reply<pb::LexiconEntry> {
        let who = lexicon_writer(&request)?;
        let req = request.into_inner();
        line("category", &req.category)?;
        line("word", &req.word)?;
        let entry =
            Entry::parse(req.category.trim(), &req.word).map_err(|e| GrpcError::App(e.into()))?;
        self.articles
            .lexicon()
            .put(&entry, &who.actor.id)
            .await
            .map_err(GrpcError::from)?;
        Ok(Response::new(pb::LexiconEntry {
            word: entry.word.clone(),
            category: entry.category_name().to_owned(),
        }))
    }

    async fn delete_lexicon_entry(
        &self,
        request: Request<pb::DeleteLexiconEntryRequest>,
    ) -> Reply<pb::DeleteLexiconEntryResponse> {
        let who = lexicon_writer(&request)?;
        let word = line("word", &request.get_ref().word)?;
        let deleted = self
            .articles
            .lexicon()
            .delete(word, &who.actor.id)
            .await
            .map_err(GrpcError::from)?;
        Ok(Response::new(pb::DeleteLexiconEntryResponse { deleted }))
    }

    async fn get_quota_status(
        &self,
        request: Request<pb::GetQuotaStatusRequest>,
    ) -> Reply<pb::QuotaStatus> {
        let who = who(&request, &[Role::Publisher, Role::Reviewer])?;
        let account = line("account", request.get_ref().account.trim())?.to_owned();
        if account.is_empty() {
            return Err(GrpcError::Invalid("account is required".into()).into());
        }
        reach(&who, &account)?;
        let (kind, used, limit, next) =
            self.articles
                .quota_status(&who, &account)
                .await
                .map_err(|e| match e {
                    // The only thing missing here is the account (WeChat's kind unknown).
                    app::AppError::NotFound => {
                        Status::not_found(format!("account {account} not found"))
                    }
                    e => GrpcError::from(e).into(),
                })?;
        let rates = self
            .articles
            .call_rates(&who, &account)
            .await
            .map_err(GrpcError::from)?;
        Ok(Response::new(pb::QuotaStatus {
            account,
            kind: match kind {
                crate::domain::quota::AccountKind::Subscription => "subscription",
                crate::domain::quota::AccountKind::Service => "service",
            }
            .to_owned(),
            used,
            limit,
            next_possible_at: next.map(|t| prost_types::Timestamp {
                seconds: t.timestamp(),
                nanos: 0,
            }),
            calls: rates
                .into_iter()
                .map(|(api, used, next)| pb::ApiCallRate {
                    api,
                    used: used as u32,
                    limit: crate::domain::quota::CALLS_PER_MINUTE as u32,
                    next_possible_at: next.map(|t| prost_types::Timestamp {
                        seconds: t.timestamp(),
                        nanos: t.timestamp_subsec_nanos() as i32,
                    }),
                })
                .collect(),
        }))
    }

    async fn import_services(
        &self,
        r: Request<pb::ImportServicesRequest>,
    ) -> Reply<pb::ImportServicesResponse> {
        self.import_services_door(r).await
    }

    async fn screen_text(
        &self,
        r: Request<pb::ScreenTextRequest>,
    ) -> Reply<pb::ScreenTextResponse> {
        self.screen_text_door(r).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn people(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn a_preview_to_people_an_unfinished_one_is_reaching_is_refused_naming_them() {
        let in_flight = InFlight::default();
        let article = uuid::Uuid::nil();
        let first = in_flight
            .enter(Call::PREVIEW, "chen", article, &people(&["A", "B", "C"]))
            .unwrap_or_else(|_| panic!("the first preview runs"));
        let overlap = in_flight
            .enter(Call::PREVIEW, "chen", article, &people(&["C", "B"]))
            .err();
        assert_eq!(
            overlap,
            Some(people(&["B", "C"])),
            "B and C would get the preview twice"
        );
        assert!(
            in_flight
                .enter(Call::PREVIEW, "chen", article, &people(&["D"]))
                .is_ok(),
            "other people are another preview"
        );
        drop(first);
        assert!(
            in_flight
                .enter(Call::PREVIEW, "chen", article, &people(&["B", "C"]))
                .is_ok()
        );
    }
}
