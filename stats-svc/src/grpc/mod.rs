//! `stats.v1.StatsService`: thin handlers that decode, check the caller,
//! call the store, and encode.

mod error;

use platform::Role;
use platform::grpc::caller;
use proto::stats::v1 as pb;
use sqlx::PgPool;
use tonic::{Request, Response, Status};

use crate::domain::AccountId;
use crate::store::account_inbound;
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
        let account = AccountId::parse(&request.get_ref().account).map_err(GrpcError::from)?;
        let stored = account_inbound::get(&self.db, &account)
            .await
            .map_err(GrpcError::from)?;
        Ok(Response::new(pb::AccountOverview {
            account: account.as_str().to_owned(),
            messages: stored.counts.messages,
            events: stored.counts.events,
            subscribes: stored.counts.subscribes,
            unsubscribes: stored.counts.unsubscribes,
            last_inbound_at: stored.last_inbound_at.map(|at| prost_types::Timestamp {
                seconds: at.timestamp(),
                // Always below 2e9 (a leap second is at most 1_999_999_999).
                nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
            }),
        }))
    }
}
