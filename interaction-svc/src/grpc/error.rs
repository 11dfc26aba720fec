//! The one mapping from this service's errors to gRPC statuses.

use platform::ErrorCode;
use tonic::Status;

use crate::delivery::{AnswerError, DeliveryError};
use crate::domain::RuleError;
use crate::domain::follower::FollowerInputError;
use crate::domain::ticket::{AnswerTextError, TicketInputError};
use crate::store::rules::RequestConflict;
use crate::store::tickets::lifecycle::{ActionError, InFlight};

/// Everything a gRPC handler of this service can fail with.
#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    #[error(transparent)]
    Input(#[from] TicketInputError),
    #[error(transparent)]
    FollowerInput(#[from] FollowerInputError),
    #[error(transparent)]
    Rule(#[from] RuleError),
    #[error("text: {0}")]
    Answer(#[from] AnswerTextError),
    /// A request field that is missing or malformed; the message names the field.
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// An account the caller's key does not reach: it looks absent.
    #[error("account {0} not found")]
    AccountNotFound(String),
    #[error("follower {0} not found")]
    FollowerNotFound(String),
    #[error("rule {0} not found")]
    RuleNotFound(String),
    /// An erasure asked while tickets of the citizen are still being handled.
    #[error(
        "the citizen has tickets still being handled: {}; close them (with a note) before erasing their data",
        .0.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    )]
    OpenTickets(Vec<crate::domain::TicketId>),
    /// A create's request_id that names another request, or a rule deleted since.
    #[error(transparent)]
    RuleRequest(#[from] RequestConflict),
    #[error(transparent)]
    Action(#[from] ActionError),
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
    #[error("this api key already holds {0} queue watches; end one before watching again")]
    TooManyWatches(usize),
    #[error("cannot watch the queue: {0}")]
    Watch(String),
    /// A `WatchQueue` resume from a position the stream cannot serve.
    #[error(transparent)]
    Resume(#[from] super::watch::ResumeError),
    /// The answer's task ended without a result; the thread says what happened.
    #[error("{0}")]
    Interrupted(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

impl GrpcError {
    /// An invalid request field.
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }
}

impl From<AnswerError> for GrpcError {
    fn from(error: AnswerError) -> Self {
        match error {
            AnswerError::Action(error) => Self::Action(error),
            AnswerError::Delivery(error) => Self::Delivery(error),
            interrupted @ AnswerError::Interrupted(_) => Self::Interrupted(interrupted.to_string()),
        }
    }
}

/// The request field a rule error is about, so the status names it.
fn rule_field(error: &RuleError) -> &'static str {
    match error {
        RuleError::UnknownKind(_) => "match",
        RuleError::NoPattern(_) | RuleError::OneRegex | RuleError::BadRegex(_) => "patterns",
        RuleError::TextOrNews => "text",
        RuleError::BadNews => "news",
        RuleError::NoAccount => "account",
        RuleError::NoDepartment => "department",
        RuleError::BadId(_) => "id",
        RuleError::Control(field) | RuleError::BadUrl(field) => field,
        RuleError::TooLong { field, .. } => field,
        RuleError::TooManyPatterns => "patterns",
        RuleError::NewsForMessage => "news",
    }
}

/// What an agent is told of an answer whose outcome is unknown: what WeChat did
/// (answered "system busy", or its answer was lost), then what it means. Within
/// platform's 200 characters.
fn outcome_unknown(detail: &wechat::api::ApiError) -> String {
    format!(
        "{}: the message may have reached the citizen. It is in the thread as failed \
         (delivery unknown), not sent again; check with the citizen first",
        crate::delivery::unknown_because(detail)
    )
}

impl From<GrpcError> for Status {
    fn from(error: GrpcError) -> Self {
        if let GrpcError::Rule(rule) = &error {
            return ErrorCode::InvalidArgument.status(format!("{}: {rule}", rule_field(rule)));
        }
        let code = match &error {
            GrpcError::Input(_)
            | GrpcError::FollowerInput(_)
            | GrpcError::Rule(_)
            | GrpcError::Answer(_)
            | GrpcError::Invalid { .. } => ErrorCode::InvalidArgument,
            GrpcError::FollowerNotFound(_)
            | GrpcError::AccountNotFound(_)
            | GrpcError::RuleNotFound(_)
            | GrpcError::Action(ActionError::NotFound(_)) => ErrorCode::NotFound,
            GrpcError::Action(ActionError::RequestReused(_))
            | GrpcError::RuleRequest(RequestConflict::Reused { .. }) => ErrorCode::InvalidArgument,
            GrpcError::RuleRequest(RequestConflict::Deleted { .. }) => {
                ErrorCode::FailedPrecondition
            }
            GrpcError::Action(ActionError::EarlierOutcomeUnknown(_)) => {
                return ErrorCode::FailedPrecondition.status(
                    "an earlier attempt of this answer may have reached the citizen (WeChat's \
                     answer was lost, or it said \"system busy\"); it is in the thread as \
                     failed (delivery unknown), not sent again; ask the citizen",
                );
            }
            GrpcError::Action(ActionError::Transition(_))
            | GrpcError::OpenTickets(_)
            | GrpcError::Action(ActionError::CitizenHasActiveTicket)
            | GrpcError::Action(ActionError::Erased(_))
            | GrpcError::Action(ActionError::NoChange(_))
            | GrpcError::Action(ActionError::ReasonRequired(_)) => ErrorCode::FailedPrecondition,
            GrpcError::Delivery(DeliveryError::Refused(code))
                if *code == wechat::api::ErrCode::OUT_OF_RESPONSE_COUNT =>
            {
                return ErrorCode::FailedPrecondition.status(
                    "the citizen's 48-hour window allows at most 20 messages and they are used \
                     up (WeChat errcode 45047); answer after the citizen writes again",
                );
            }
            // Not UNAVAILABLE: retrying before the quota resets only fails again.
            GrpcError::Delivery(error @ DeliveryError::DailyQuota) => {
                return ErrorCode::FailedPrecondition.status(error.to_string());
            }
            GrpcError::Delivery(DeliveryError::UnknownAccount(_))
            | GrpcError::Delivery(DeliveryError::Refused(_)) => ErrorCode::FailedPrecondition,
            GrpcError::Delivery(DeliveryError::Unavailable(detail)) => {
                // The detail (transport, token cache) is for the log, not the caller.
                tracing::warn!(error = %detail, "wechat api unavailable");
                return ErrorCode::Unavailable
                    .status("WeChat's API is unavailable; nothing was recorded, try again");
            }
            GrpcError::Delivery(DeliveryError::OutcomeUnknown(detail)) => {
                tracing::warn!(error = %detail, "wechat api call's outcome unknown");
                // Not UNAVAILABLE: a client retrying it could give the citizen the
                // answer twice.
                return ErrorCode::FailedPrecondition.status(outcome_unknown(detail));
            }
            // These messages fit platform's 200-character limit with the ticket id:
            // the advice is their point.
            GrpcError::Action(ActionError::AnswerInFlight(id, InFlight::Unidentified)) => {
                // Not UNAVAILABLE, which retry policies retry on their own: the answer
                // in flight may be this text from a call whose caller gave up, and
                // without a request id a retry would go out as a second answer.
                return ErrorCode::FailedPrecondition.status(format!(
                    "another answer to ticket {id} is still being sent; this one was not \
                     recorded. It may be this text from a call that timed out: check the \
                     thread (SENDING) first"
                ));
            }
            GrpcError::Action(ActionError::AnswerInFlight(id, InFlight::NotRecorded)) => {
                // The request id makes a retry safe: it finds the answer if a call
                // recorded it, and records it once otherwise.
                return ErrorCode::Unavailable.status(format!(
                    "another answer to ticket {id} is still being sent; this one was not \
                     recorded. Retrying with the same request_id is safe: it is sent once"
                ));
            }
            GrpcError::Action(ActionError::AnswerInFlight(id, InFlight::Recorded)) => {
                return ErrorCode::Unavailable.status(format!(
                    "this request_id's answer to ticket {id} is recorded and still being \
                     sent. Retrying with the same request_id is safe: it reports how it left, \
                     never sends it twice"
                ));
            }
            GrpcError::TooManyWatches(_) => ErrorCode::ResourceExhausted,
            // platform's codes have no OUT_OF_RANGE, the code gRPC gives a position
            // past what can be served; the messages stay under its 200 characters.
            GrpcError::Resume(resume) => {
                return Status::out_of_range(format!(
                    "{resume}; watch without after and list the queue (ListTickets)"
                ));
            }
            GrpcError::Watch(_) => {
                tracing::warn!(%error, "queue watch failed");
                return ErrorCode::Unavailable.status("the queue cannot be watched now; retry");
            }
            GrpcError::Action(ActionError::Database(_))
            | GrpcError::Delivery(DeliveryError::Database(_))
            | GrpcError::Interrupted(_)
            | GrpcError::Database(_) => ErrorCode::Internal,
        };
        code.status(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use wechat::api::{ApiError, ErrCode};

    use super::*;

    #[test]
    fn an_unknown_outcome_says_whether_wechat_answered_busy_or_its_answer_was_lost() {
        let busy = ApiError::Wechat {
            code: ErrCode(-1),
            msg: "system error".into(),
            unconfirmed: true,
        };
        let status = Status::from(GrpcError::Delivery(DeliveryError::OutcomeUnknown(busy)));
        assert_eq!(status.code(), tonic::Code::FailedPrecondition);
        assert!(
            status
                .message()
                .starts_with("WeChat answered \"system busy\" (-1)"),
            "{}",
            status.message()
        );
        assert!(!status.message().contains("lost"), "{}", status.message());
        let lost = Status::from(GrpcError::Delivery(DeliveryError::OutcomeUnknown(
            ApiError::Timeout,
        )));
        assert!(
            lost.message().starts_with("WeChat's answer was lost"),
            "{}",
            lost.message()
        );
        for status in [status, lost] {
            assert!(
                status.message().chars().count() <= platform::grpc::MAX_STATUS_CHARS
                    && !status.message().ends_with('…'),
                "{}",
                status.message()
            );
        }
    }
}
