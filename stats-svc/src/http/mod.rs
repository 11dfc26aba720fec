//! The dashboard: server-rendered pages on stats-svc's own HTTP port, ECharts served
//! from the binary (no JS build, no CDN). Each page calls one `app` function.
//!
//! Who may look: a browser on loopback without logging in (when
//! `DASHBOARD_TRUST_LOOPBACK`, the default); anyone else logs in once with an API key
//! holding the `viewer` role and gets a session cookie (stored in PostgreSQL, so every
//! replica knows it). A key scoped to some accounts sees only those.

mod pages;

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use chrono::Utc;
use platform::Role;
use platform::grpc::{AuthInterceptor, key_digest};
use serde::Deserialize;
use sqlx::PgPool;

use crate::app;
use crate::app::ranking::ListContext;
use crate::config::StatsSettings;
use crate::domain::AccountId;
use crate::domain::departments::DepartmentView;
use crate::domain::reach;
use crate::domain::rollup::office_day;
use crate::domain::wci::{V14_2, WciVersion};
use crate::jobs::Clock;
use crate::store::sessions::{self, Session};

/// The vendored Apache ECharts (see `static/README.md`).
const ECHARTS: &[u8] = include_bytes!("../../static/echarts.min.js");
const COOKIE: &str = "stats_session";
/// How long a session lasts.
const SESSION_HOURS: i64 = 8;

/// What the pages need.
#[derive(Clone)]
pub struct DashboardState {
    pub db: PgPool,
    pub settings: StatsSettings,
    /// The keys in use (reloaded with the gRPC server's): who may log in, and whether
    /// a session's key still may.
    pub auth: AuthInterceptor,
    /// Whether a loopback peer needs no login.
    pub trust_loopback: bool,
    /// What "today" is for the pages (tests fix it); sessions expire by the system clock.
    pub clock: Clock,
}

/// The dashboard's routes; serve with `into_make_service_with_connect_info::<SocketAddr>()`.
pub fn router(state: DashboardState) -> Router {
    Router::new()
        .route("/", get(overview))
        .route("/account/{account}", get(account))
        .route("/ranking", get(ranking))
        .route("/login", get(login_form).post(login))
        .route("/static/echarts.min.js", get(echarts))
        .with_state(state)
}

/// Who is looking.
struct Viewer {
    /// `None`: every account.
    accounts: Option<Vec<String>>,
    /// Whose departments' figures it reads (gRPC's rule).
    departments: DepartmentView,
}

impl Viewer {
    fn may_see(&self, account: &str) -> bool {
        self.accounts
            .as_ref()
            .is_none_or(|list| list.iter().any(|a| a == account))
    }
}

async fn viewer(
    state: &DashboardState,
    peer: SocketAddr,
    headers: &HeaderMap,
) -> Result<Option<Viewer>, Response> {
    if state.trust_loopback && peer.ip().is_loopback() {
        return Ok(Some(Viewer {
            accounts: None,
            departments: DepartmentView::All,
        }));
    }
    let Some(id) = cookie(headers) else {
        return Ok(None);
    };
    match sessions::find(&state.db, &id).await {
        // The key's current caller, not the one at login: a removed key (or one
        // that lost the viewer role) ends the session, narrowed accounts apply now.
        Ok(found) => Ok(found
            .and_then(|s| state.auth.caller_with_digest(&s.key_digest))
            .filter(|caller| caller.has_role(Role::Viewer))
            .map(|caller| Viewer {
                accounts: caller.accounts.filter(),
                departments: DepartmentView::of(
                    &caller.department,
                    caller.is_admin(),
                    &state.settings.all_departments,
                ),
            })),
        Err(error) => Err(internal(error)),
    }
}

fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

fn internal(error: impl std::fmt::Display) -> Response {
    tracing::error!(%error, "dashboard page failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Html(pages::error("服务内部错误")),
    )
        .into_response()
}

fn to_login() -> Response {
    Redirect::to("/login").into_response()
}

async fn overview(
    State(state): State<DashboardState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let viewer = match viewer(&state, peer, &headers).await {
        Ok(Some(viewer)) => viewer,
        Ok(None) => return to_login(),
        Err(response) => return response,
    };
    let now = (state.clock)();
    let today = office_day(now, state.settings.office);
    match app::dashboard::overview(
        &state.db,
        &state.settings.rules,
        &state.settings.install,
        viewer.accounts.as_deref(),
        now,
        state.settings.office,
        &state.settings.calendar,
        &viewer.departments,
    )
    .await
    {
        Ok((lines, alarms)) => Html(pages::overview(
            today,
            &lines,
            &alarms,
            viewer.departments.is_cut(),
            state.settings.rules.stale_after_days,
        ))
        .into_response(),
        Err(error) => internal(error),
    }
}

#[derive(Deserialize)]
struct AccountQuery {
    days: Option<u64>,
}

async fn account(
    State(state): State<DashboardState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(account): Path<String>,
    Query(query): Query<AccountQuery>,
) -> Response {
    let viewer = match viewer(&state, peer, &headers).await {
        Ok(Some(viewer)) => viewer,
        Ok(None) => return to_login(),
        Err(response) => return response,
    };
    let not_found =
        || (StatusCode::NOT_FOUND, Html(pages::error("没有这个公众号"))).into_response();
    let Ok(id) = AccountId::parse(account.as_str()) else {
        return not_found();
    };
    if !viewer.may_see(id.as_str()) {
        return not_found();
    }
    let days = query.days.unwrap_or(90).clamp(7, 366);
    match app::dashboard::account_page(
        &state.db,
        &state.settings.rules,
        &id,
        (state.clock)(),
        days,
        state.settings.office,
        &state.settings.calendar,
        &viewer.departments,
    )
    .await
    {
        Ok(page) => Html(pages::account(
            id.as_str(),
            days,
            &page,
            state.settings.office,
        ))
        .into_response(),
        Err(error) => internal(error),
    }
}

#[derive(Deserialize)]
struct RankingQuery {
    month: Option<String>,
    version: Option<String>,
}

async fn ranking(
    State(state): State<DashboardState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<RankingQuery>,
) -> Response {
    let viewer = match viewer(&state, peer, &headers).await {
        Ok(Some(viewer)) => viewer,
        Ok(None) => return to_login(),
        Err(response) => return response,
    };
    let now = (state.clock)();
    let today = office_day(now, state.settings.office);
    let month = match query.month.as_deref().filter(|m| !m.is_empty()) {
        // The running month is empty for its first week (day-7 figures come on day 8).
        None => reach::last_finished_month(today),
        Some(raw) => match crate::domain::rollup::parse_month(raw) {
            Some(month) => month,
            None => {
                return (
                    StatusCode::BAD_REQUEST,
                    Html(pages::error("月份格式应为 YYYY-MM")),
                )
                    .into_response();
            }
        },
    };
    let version = query
        .version
        .as_deref()
        .and_then(WciVersion::by_name)
        .unwrap_or(V14_2);
    let context = ListContext {
        accounts: viewer.accounts.as_deref(),
        install: &state.settings.install,
        version,
        now,
        office: state.settings.office,
        calendar: &state.settings.calendar,
    };
    match app::dashboard::ranking_page(&state.db, &context, month).await {
        Ok((ranking, trend)) => {
            Html(pages::ranking(month, version, &ranking, &trend)).into_response()
        }
        Err(app::AppError::MonthNotBegun(not_begun)) => (
            StatusCode::BAD_REQUEST,
            Html(pages::error(&format!(
                "月份 {} 尚未开始（本月为 {}），没有排名",
                not_begun.month, not_begun.current
            ))),
        )
            .into_response(),
        Err(error) => internal(error),
    }
}

async fn login_form() -> Html<String> {
    Html(pages::login(None))
}

#[derive(Deserialize)]
struct LoginForm {
    key: String,
}

async fn login(
    State(state): State<DashboardState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let key = form.key.trim();
    let Some(caller) = state
        .auth
        .caller_for(key)
        .filter(|c| c.has_role(Role::Viewer))
    else {
        return (
            StatusCode::UNAUTHORIZED,
            Html(pages::login(Some("密钥无效或没有查看权限"))),
        )
            .into_response();
    };
    let id = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let session = Session {
        department: caller.department.clone(),
        accounts: caller.accounts.filter(),
        key_digest: key_digest(key).to_vec(),
    };
    let expires = Utc::now() + chrono::TimeDelta::hours(SESSION_HOURS);
    if let Err(error) = sessions::create(&state.db, &id, &session, expires).await {
        return internal(error);
    }
    // Behind the ingress that terminates TLS the browser speaks HTTPS: the cookie
    // must then never travel in clear. Plain HTTP (a port-forward, loopback) keeps
    // working without it.
    let secure = if behind_https(&headers) {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        SESSION_HOURS * 3600
    );
    let mut response = Redirect::to("/").into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// Whether the request reached the proxy in front of us over HTTPS.
fn behind_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(',').next())
        .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}

async fn echarts() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        ECHARTS,
    )
}
