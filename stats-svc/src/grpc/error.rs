//! The one mapping from this service's errors to gRPC statuses.

use platform::ErrorCode;
use tonic::Status;

use crate::app::AppError;
use crate::domain::InboundError;
use crate::domain::figures::EntryRefused;

/// Everything a gRPC handler of this service can fail with.
#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    /// A request field is unusable (the message names it).
    #[error(transparent)]
    Input(#[from] InboundError),
    /// A request field is malformed (the message names it).
    #[error("{field}: {reason}")]
    Field { field: &'static str, reason: String },
    /// The account is outside the caller's key (answered like an unknown one).
    #[error("account not found")]
    AccountNotFound,
    #[error(transparent)]
    App(#[from] AppError),
}

impl GrpcError {
    /// A malformed field.
    pub fn field(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Field {
            field,
            reason: reason.into(),
        }
    }
}

impl From<GrpcError> for Status {
    fn from(error: GrpcError) -> Self {
        let code = match &error {
            GrpcError::Input(_) | GrpcError::Field { .. } => ErrorCode::InvalidArgument,
            GrpcError::AccountNotFound => ErrorCode::NotFound,
            GrpcError::App(AppError::Figures(refused)) => match refused {
                EntryRefused::Nothing => ErrorCode::InvalidArgument,
                EntryRefused::UnknownArticle(_) => ErrorCode::NotFound,
                // Likes above the reads the same entry gives: the request contradicts itself.
                EntryRefused::AboveReads {
                    reads_entered: true,
                    ..
                } => ErrorCode::InvalidArgument,
                // The request is well formed; what is stored decides against it.
                EntryRefused::NotTheDatacubeId(_)
                | EntryRefused::DatacubeFigures(_)
                | EntryRefused::PublishedOn { .. }
                | EntryRefused::Headline { .. }
                | EntryRefused::AboveReads { .. }
                | EntryRefused::SharesWithoutReads(_)
                | EntryRefused::MonthFinal { .. } => ErrorCode::FailedPrecondition,
            },
            GrpcError::App(AppError::MonthNotBegun(_) | AppError::WeekNotBegun(_)) => {
                ErrorCode::InvalidArgument
            }
            // ErrorCode::status logs the detail and answers a generic message.
            GrpcError::App(AppError::Database(_) | AppError::Wechat(_)) => ErrorCode::Internal,
        };
        code.status(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_errors_are_invalid_arguments_that_name_the_field() {
        let status = Status::from(GrpcError::from(InboundError::MissingAccount));
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(status.message(), "account is required");
    }

    #[test]
    fn refused_entries_say_why_with_the_code_of_their_cause() {
        let status = Status::from(GrpcError::from(AppError::from(
            EntryRefused::UnknownArticle("made-up".into()),
        )));
        assert_eq!(status.code(), tonic::Code::NotFound);
        assert!(status.message().contains("\"made-up\" is not known"));
        let status = Status::from(GrpcError::from(AppError::from(
            EntryRefused::DatacubeFigures("2026111001_1".into()),
        )));
        assert_eq!(status.code(), tonic::Code::FailedPrecondition);
        assert!(status.message().contains("come from WeChat's datacube"));
        let status = Status::from(GrpcError::from(AppError::from(EntryRefused::Nothing)));
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
    }

    #[test]
    fn likes_above_the_reads_are_invalid_only_against_the_entrys_own_reads() {
        let above = |reads_entered| {
            Status::from(GrpcError::from(AppError::from(EntryRefused::AboveReads {
                id: "art-42".into(),
                zaikan: 0,
                likes: 500,
                shares: 0,
                reads: 400,
                reads_entered,
            })))
        };
        assert_eq!(above(true).code(), tonic::Code::InvalidArgument);
        assert_eq!(above(false).code(), tonic::Code::FailedPrecondition);
        assert!(
            above(false)
                .message()
                .starts_with("likes 500 is above its reads")
        );
    }

    #[test]
    fn a_week_not_begun_is_an_invalid_argument_naming_it() {
        let day = |s: &str| s.parse::<chrono::NaiveDate>().unwrap();
        let status = Status::from(GrpcError::from(AppError::from(
            crate::app::ranking::WeekNotBegun {
                first: day("2027-05-02"),
                today: day("2026-12-07"),
            },
        )));
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(
            status.message(),
            "the week from 2027-05-02 has not begun (the office's day is 2026-12-07)"
        );
    }

    #[test]
    fn database_errors_are_internal_without_their_detail() {
        let status = Status::from(GrpcError::from(AppError::from(sqlx::Error::PoolTimedOut)));
        assert_eq!(status.code(), tonic::Code::Internal);
        assert_eq!(status.message(), "internal error");
    }
}
