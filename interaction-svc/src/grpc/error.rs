//! The one mapping from this service's errors to gRPC statuses.

use platform::ErrorCode;
use tonic::Status;

use crate::domain::ticket::TicketInputError;

/// Everything a gRPC handler of this service can fail with.
#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    #[error(transparent)]
    Input(#[from] TicketInputError),
    #[error("ticket {0} not found")]
    TicketNotFound(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

impl From<GrpcError> for Status {
    fn from(error: GrpcError) -> Self {
        let code = match &error {
            GrpcError::Input(_) => ErrorCode::InvalidArgument,
            GrpcError::TicketNotFound(_) => ErrorCode::NotFound,
            GrpcError::Database(_) => ErrorCode::Internal,
        };
        code.status(error.to_string())
    }
}
