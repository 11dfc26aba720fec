//! `content.v1.ContentService`: thin handlers that decode, check the caller,
//! call the store, and encode.

mod error;

use platform::Role;
use platform::grpc::caller;
use proto::content::v1 as pb;
use sqlx::PgPool;
use tonic::{Request, Response, Status};

use crate::domain::ServiceListing;
use crate::store::directory::{self, DirectoryEntryRow};
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
        caller(&request)?.require_any(READERS)?;
        let request = request.into_inner();
        let listing =
            ServiceListing::parse(&request.account, &request.category).map_err(GrpcError::from)?;
        let rows = directory::list(&self.db, &listing)
            .await
            .map_err(GrpcError::from)?;
        Ok(Response::new(pb::ListServicesResponse {
            services: rows.into_iter().map(entry_to_wire).collect(),
        }))
    }
}

fn entry_to_wire(row: DirectoryEntryRow) -> pb::ServiceEntry {
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
