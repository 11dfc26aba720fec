//! `stats.v1.StatsService`: thin handlers that decode, check the caller, call
//! `app`, and encode. Wire ⇄ domain conversions live in `convert`, the one status
//! mapping in `error`.
//!
//! Permissions: reading statistics needs `viewer` (admin implies it); a key reads
//! every department's figures only if it is an admin's or its department is named
//! in `STATS_ALL_DEPARTMENTS`, else its own department's; entering an
//! article's figures needs `editor` or `publisher`. An account outside the caller's
//! key answers NOT_FOUND, like an unknown one, so accounts cannot be probed.

mod convert;
mod error;

use crate::jobs::Clock;
use platform::Role;
use platform::grpc::{Caller, caller};
use proto::stats::v1 as pb;
use sqlx::PgPool;
use tonic::{Request, Response, Status};

use crate::app;
use crate::app::ranking::{EnteredBy, ListContext};
use crate::config::StatsSettings;
use crate::domain::AccountId;
use crate::domain::departments::DepartmentView;
use crate::domain::figures::FigureEntry;
use crate::domain::rollup::{Metric, office_day};
use crate::domain::wci::{V14_2, WciVersion};
pub use error::GrpcError;

/// Roles that may read statistics (admin implies viewer).
const READERS: &[Role] = &[Role::Viewer];
/// Roles that may enter an article's figures.
const FIGURE_WRITERS: &[Role] = &[Role::Editor, Role::Publisher];

/// The gRPC service implementation.
#[derive(Clone)]
pub struct StatsGrpc {
    db: PgPool,
    settings: StatsSettings,
    /// The time a figure entry is judged at (its month final or not); tests fix it.
    clock: Clock,
}

impl StatsGrpc {
    /// A service reading `db`, at the time `clock` tells.
    pub fn new(db: PgPool, settings: StatsSettings, clock: Clock) -> Self {
        Self {
            db,
            settings,
            clock,
        }
    }
}

/// Which departments' figures the caller reads.
fn department_view(caller: &Caller, settings: &StatsSettings) -> DepartmentView {
    DepartmentView::of(
        &caller.department,
        caller.is_admin(),
        &settings.all_departments,
    )
}

/// The account `raw` if the caller's key reaches it.
fn scoped(caller: &Caller, raw: &str) -> Result<AccountId, GrpcError> {
    let account = convert::account_id(raw)?;
    if !caller.may_access(account.as_str()) {
        return Err(GrpcError::AccountNotFound);
    }
    Ok(account)
}

#[tonic::async_trait]
impl pb::stats_service_server::StatsService for StatsGrpc {
    async fn get_account_overview(
        &self,
        request: Request<pb::GetAccountOverviewRequest>,
    ) -> Result<Response<pb::AccountOverview>, Status> {
        let caller = caller(&request)?;
        caller.require_any(READERS)?;
        let account = convert::account(request.get_ref()).map_err(GrpcError::from)?;
        // Another account's figures look absent to this key.
        if !caller.may_access(account.as_str()) {
            return Err(GrpcError::AccountNotFound.into());
        }
        let stored = app::overview::account_overview(&self.db, &account)
            .await
            .map_err(GrpcError::from)?;
        Ok(Response::new(convert::overview(&account, stored)))
    }

    async fn get_daily_series(
        &self,
        request: Request<pb::GetDailySeriesRequest>,
    ) -> Result<Response<pb::DailySeries>, Status> {
        let caller = caller(&request)?;
        caller.require_any(READERS)?;
        let req = request.get_ref();
        let account = scoped(caller, &req.account)?;
        let metric = Metric::parse(&req.metric).ok_or_else(|| {
            GrpcError::field("metric", format!("{:?} is not a known metric", req.metric))
        })?;
        let (from, to) = convert::range(&req.from, &req.to)?;
        let view = department_view(caller, &self.settings);
        let (points, before) =
            app::rollups::daily_series(&self.db, &account, metric, from, to, &view)
                .await
                .map_err(GrpcError::from)?;
        Ok(Response::new(convert::series(
            &account,
            metric.as_str(),
            points,
            before,
        )))
    }

    async fn get_department_scorecard(
        &self,
        request: Request<pb::GetDepartmentScorecardRequest>,
    ) -> Result<Response<pb::DepartmentScorecard>, Status> {
        let caller = caller(&request)?;
        caller.require_any(READERS)?;
        let req = request.get_ref();
        let account = scoped(caller, &req.account)?;
        let (from, to) = convert::range(&req.from, &req.to)?;
        let scores = app::rollups::department_scorecard_in(
            &self.db,
            &account,
            from,
            to,
            (self.clock)(),
            self.settings.office,
            &self.settings.calendar,
        )
        .await
        .map_err(GrpcError::from)?;
        // A desk's key reads its own department's line only (docs/security.md).
        let view = department_view(caller, &self.settings);
        Ok(Response::new(pb::DepartmentScorecard {
            account: account.as_str().to_owned(),
            departments: scores
                .iter()
                .filter(|s| view.sees(&s.department))
                .map(convert::score)
                .collect(),
        }))
    }

    async fn record_article_figures(
        &self,
        request: Request<pb::RecordArticleFiguresRequest>,
    ) -> Result<Response<pb::RecordArticleFiguresResponse>, Status> {
        let caller = caller(&request)?;
        caller.require_any(FIGURE_WRITERS)?;
        let req = request.get_ref();
        let account = scoped(caller, &req.account)?;
        if req.article_id.trim().is_empty() {
            return Err(GrpcError::field("article_id", "is required").into());
        }
        let count = |field: &'static str, value: u64| {
            i64::try_from(value).map_err(|_| GrpcError::field(field, "is too large"))
        };
        let published_on = if req.published_on.is_empty() {
            None
        } else {
            Some(convert::day("published_on", &req.published_on)?)
        };
        let entry = FigureEntry {
            title: req.title.clone(),
            published_on,
            headline: req.headline,
            reads: count("reads", req.reads)?,
            zaikan: count("zaikan", req.zaikan)?,
            likes: count("likes", req.likes)?,
            shares: count("shares", req.shares)?,
        };
        let by = EnteredBy {
            department: caller.department.clone(),
            key_id: caller.key_id.clone(),
        };
        app::ranking::record_article_figures(
            &self.db,
            &account,
            req.article_id.trim(),
            &entry,
            &by,
            (self.clock)(),
            self.settings.office,
            &self.settings.calendar,
        )
        .await
        .map_err(GrpcError::from)?;
        Ok(Response::new(pb::RecordArticleFiguresResponse {}))
    }

    async fn get_monthly_ranking(
        &self,
        request: Request<pb::GetMonthlyRankingRequest>,
    ) -> Result<Response<pb::MonthlyRanking>, Status> {
        let caller = caller(&request)?;
        caller.require_any(READERS)?;
        let req = request.get_ref();
        let version = if req.version.is_empty() {
            V14_2
        } else {
            WciVersion::by_name(&req.version).ok_or_else(|| {
                GrpcError::field(
                    "version",
                    format!("{:?} is not one of v14.2, v13, provincial", req.version),
                )
            })?
        };
        let scope = caller.accounts.filter();
        let context = ListContext {
            accounts: scope.as_deref(),
            install: &self.settings.install,
            version,
            now: (self.clock)(),
            office: self.settings.office,
            calendar: &self.settings.calendar,
        };
        let (ranking, week_from) = if req.week_of.is_empty() {
            let first = convert::month(&req.month)?;
            let ranking = app::ranking::monthly_ranking(&self.db, &context, first)
                .await
                .map_err(GrpcError::from)?;
            (ranking, String::new())
        } else {
            let day = convert::day("week_of", &req.week_of)?;
            let ranking = app::ranking::weekly_ranking(&self.db, &context, day)
                .await
                .map_err(GrpcError::from)?;
            (ranking, app::ranking::week_span(day).0.to_string())
        };
        Ok(Response::new(pb::MonthlyRanking {
            month: req.month.clone(),
            version: version.name.to_owned(),
            accounts: ranking.list.iter().map(convert::ranked).collect(),
            week_from,
            provisional: ranking.provisional,
            final_on: ranking.final_on.to_string(),
        }))
    }

    async fn list_alarms(
        &self,
        request: Request<pb::ListAlarmsRequest>,
    ) -> Result<Response<pb::AlarmList>, Status> {
        let caller = caller(&request)?;
        caller.require_any(READERS)?;
        let req = request.get_ref();
        let (from, to) = convert::range(&req.from, &req.to)?;
        // No account: every account the key reaches.
        let accounts = if req.account.is_empty() {
            caller.accounts.filter()
        } else {
            Some(vec![scoped(caller, &req.account)?.as_str().to_owned()])
        };
        let view = department_view(caller, &self.settings);
        let rows = app::inspection::list_alarms(&self.db, accounts.as_deref(), from, to, &view)
            .await
            .map_err(GrpcError::from)?;
        Ok(Response::new(pb::AlarmList {
            alarms: rows.into_iter().map(convert::alarm_row).collect(),
        }))
    }

    async fn get_readiness_report(
        &self,
        request: Request<pb::GetReadinessReportRequest>,
    ) -> Result<Response<pb::ReadinessReport>, Status> {
        let caller = caller(&request)?;
        caller.require_any(READERS)?;
        let req = request.get_ref();
        let account = scoped(caller, &req.account)?;
        let now = (self.clock)();
        let day = if req.date.is_empty() {
            office_day(now, self.settings.office)
        } else {
            convert::day("date", &req.date)?
        };
        let report = app::inspection::readiness(
            &self.db,
            &self.settings.rules,
            &account,
            day,
            now,
            self.settings.office,
            &self.settings.calendar,
            &department_view(caller, &self.settings),
        )
        .await
        .map_err(GrpcError::from)?;
        Ok(Response::new(convert::readiness(&account, day, report)))
    }
}
