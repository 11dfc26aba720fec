//! The one mapping from this service's errors to gRPC statuses.

use platform::ErrorCode;
use tonic::Status;

use crate::domain::InboundError;

/// Everything a gRPC handler of this service can fail with.
#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    /// A request field is unusable (the message names it).
    #[error(transparent)]
    Input(#[from] InboundError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

impl From<GrpcError> for Status {
    fn from(error: GrpcError) -> Self {
        let code = match &error {
            GrpcError::Input(_) => ErrorCode::InvalidArgument,
            // ErrorCode::status logs the detail and answers a generic message.
            GrpcError::Database(_) => ErrorCode::Internal,
        };
        code.status(error.to_string())
    }
}
