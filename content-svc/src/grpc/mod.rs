//! `content.v1.ContentService`: thin handlers that decode, check the caller,
//! call `app`, and encode. Wire ⇄ domain conversions live in `convert`, the one
//! status mapping in `error`.
//!
//! Permissions: any authenticated caller may read the directory.

mod convert;
mod error;

use platform::Role;
use platform::grpc::caller;
use proto::content::v1 as pb;
use sqlx::PgPool;
use tonic::{Request, Response, Status};

use crate::app;
pub use error::GrpcError;

/// Any authenticated caller may read the directory.
const READERS: &[Role] = &Role::ALL;

/// The gRPC service implementation.
#[derive(Clone)]
pub struct ContentGrpc {
    db: PgPool,
}

impl ContentGrpc {
    /// A service reading and writing `db`.
    pub fn new(db: PgPool) -> Self {
        Self { db }
    }
}

#[tonic::async_trait]
impl pb::content_service_server::ContentService for ContentGrpc {
    async fn list_services(
        &self,
        request: Request<pb::ListServicesRequest>,
    ) -> Result<Response<pb::ListServicesResponse>, Status> {
        let caller = caller(&request)?;
        caller.require_any(READERS)?;
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
}
