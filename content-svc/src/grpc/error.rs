//! The one mapping from this service's errors to gRPC statuses.

use platform::ErrorCode;
use tonic::Status;

use crate::app::AppError;
use crate::domain::DirectoryInputError;
use crate::domain::request::RequestIdError;
use crate::domain::review::ReviewError;
use crate::domain::text::TextError;

/// Everything a gRPC handler of this service can fail with.
#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    /// A directory request field is unusable (the message names it).
    #[error(transparent)]
    Directory(#[from] DirectoryInputError),
    /// A request field is unusable (the message names it).
    #[error("{0}")]
    Invalid(String),
    /// A free-text field is too long (the message names it).
    #[error(transparent)]
    Text(#[from] TextError),
    /// The person named in the metadata cannot be read (`actor`).
    #[error(transparent)]
    Actor(#[from] super::actor::ActorError),
    #[error(transparent)]
    App(#[from] AppError),
}

impl From<GrpcError> for Status {
    fn from(error: GrpcError) -> Self {
        let code = match &error {
            GrpcError::Directory(_)
            | GrpcError::Invalid(_)
            | GrpcError::Text(_)
            | GrpcError::Actor(_) => ErrorCode::InvalidArgument,
            GrpcError::App(app) => match app {
                AppError::NotFound | AppError::ServiceNotFound | AppError::VersionNotFound(_) => {
                    ErrorCode::NotFound
                }
                AppError::Service(_) => ErrorCode::InvalidArgument,
                AppError::LexiconTaken { .. } => ErrorCode::AlreadyExists,
                AppError::Forbidden(_) => ErrorCode::PermissionDenied,
                AppError::Article(_) | AppError::Lexicon(_) | AppError::Invalid(_) => {
                    ErrorCode::InvalidArgument
                }
                AppError::Review(ReviewError::RoleNeeded { .. }) => ErrorCode::PermissionDenied,
                AppError::Review(_) => ErrorCode::FailedPrecondition,
                AppError::Quota(_) | AppError::RateLimited(_) => ErrorCode::ResourceExhausted,
                AppError::Image(_) => ErrorCode::InvalidArgument,
                AppError::Request(RequestIdError::Gone { .. }) => ErrorCode::NotFound,
                AppError::Request(_) => ErrorCode::InvalidArgument,
                AppError::Wechat(_)
                | AppError::OutcomeUnknown(_)
                | AppError::PreviewPartlySent { .. }
                | AppError::MessageGoingOut { .. } => ErrorCode::FailedPrecondition,
                AppError::KeptMoving { .. } | AppError::WechatUnavailable(_) => {
                    ErrorCode::Unavailable
                }
                // ErrorCode::status logs the detail and answers a generic message.
                AppError::Database(_) => ErrorCode::Internal,
            },
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

    #[test]
    fn workflow_refusals_say_the_rule_or_the_role() {
        let status = Status::from(GrpcError::from(AppError::from(ReviewError::AuthorReviews)));
        assert_eq!(status.code(), tonic::Code::FailedPrecondition);
        let status = Status::from(GrpcError::from(AppError::from(ReviewError::RoleNeeded {
            role: "publisher",
            action: "publish",
        })));
        assert_eq!(status.code(), tonic::Code::PermissionDenied);
        assert_eq!(status.message(), "the publisher role is needed to publish");
    }

    #[test]
    fn articles_that_kept_moving_while_locked_are_worth_trying_again() {
        let status = Status::from(GrpcError::from(AppError::KeptMoving {
            article: uuid::Uuid::nil(),
        }));
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert!(
            status.message().contains("try again"),
            "{}",
            status.message()
        );
    }
}
