//! `stats.v1.StatsService`: thin handlers that decode, check the caller, call
//! `app`, and encode. Wire ⇄ domain conversions live in `convert`, the one status
//! mapping in `error`.
//!
//! Permissions: reading statistics needs `viewer` (admin implies it).

mod convert;
mod error;

use platform::Role;
use platform::grpc::caller;
use proto::stats::v1 as pb;
use sqlx::PgPool;
use tonic::{Request, Response, Status};

use crate::app;
pub use error::GrpcError;

/// Roles that may read statistics (admin implies viewer).
const READERS: &[Role] = &[Role::Viewer];

/// The gRPC service implementation.
#[derive(Clone)]
pub struct StatsGrpc {
    db: PgPool,
}

impl StatsGrpc {
    /// A service reading `db`.
    pub fn new(db: PgPool) -> Self {
        Self { db }
    }
}

#[tonic::async_trait]
impl pb::stats_service_server::StatsService for StatsGrpc {
    async fn get_account_overview(
        &self,
        request: Request<pb::GetAccountOverviewRequest>,
    ) -> Result<Response<pb::AccountOverview>, Status> {
        caller(&request)?.require_any(READERS)?;
        let account = convert::account(request.get_ref()).map_err(GrpcError::from)?;
        let stored = app::overview::account_overview(&self.db, &account)
            .await
            .map_err(GrpcError::from)?;
        Ok(Response::new(convert::overview(&account, stored)))
    }
}
