//! The one mapping from this service's errors to gRPC statuses.

use platform::ErrorCode;
use tonic::Status;

use crate::app::AppError;
use crate::domain::DirectoryInputError;

/// Everything a gRPC handler of this service can fail with.
#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    /// A directory request field is unusable (the message names it).
    #[error(transparent)]
    Directory(#[from] DirectoryInputError),
    #[error(transparent)]
    App(#[from] AppError),
}

impl From<GrpcError> for Status {
    fn from(error: GrpcError) -> Self {
        let code = match &error {
            GrpcError::Directory(_) => ErrorCode::InvalidArgument,
            // ErrorCode::status logs the detail and answers a generic message.
            GrpcError::App(AppError::Database(_)) => ErrorCode::Internal,
        };
        code.status(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::AccountIdError;

    #[test]
    fn input_errors_are_invalid_arguments_that_name_the_field() {
        let status = Status::from(GrpcError::from(DirectoryInputError::from(
            AccountIdError::Empty("account"),
        )));
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(status.message(), "account is required");
    }

    #[test]
    fn database_errors_are_internal_without_their_detail() {
        let status = Status::from(GrpcError::from(AppError::from(sqlx::Error::PoolTimedOut)));
        assert_eq!(status.code(), tonic::Code::Internal);
        assert_eq!(status.message(), "internal error");
    }
}
