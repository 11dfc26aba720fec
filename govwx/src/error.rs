//! Every failure of a command, as one line and an exit code.

use tonic::Code;

use crate::output::one_line;

/// Why a command failed. `Display` is the one line printed after `govwx: `.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Missing or unusable configuration: no key, a bad address or CA file.
    #[error("{0}")]
    Config(String),
    /// Bad input that never reached a server (an unreadable file, say).
    #[error("{0}")]
    Input(String),
    /// The service could not be reached at all.
    #[error("cannot reach {service} at {addr}: {reason}")]
    Unreachable {
        service: &'static str,
        addr: String,
        reason: String,
    },
    /// The service answered with an error status.
    #[error("{}", status_line(service, addr, status))]
    Status {
        service: &'static str,
        addr: String,
        status: tonic::Status,
    },
    /// `lexicon check` found sensitive words (they are printed on stdout).
    #[error("{count} sensitive-word hit(s) in {file}")]
    Hits { count: usize, file: String },
    /// `articles publish` was answered with the article FAILED; the failure says why
    /// (and whether WeChat may have published it all the same).
    #[error("article {id} was not published: {}", one_line(failure))]
    NotPublished { id: String, failure: String },
    /// Standard output could not be written.
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

impl Error {
    /// The process exit code; the table is in the crate's README.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Config(_) => 78,
            Error::Input(_) => 65,
            Error::Unreachable { .. } => 69,
            Error::Output(_) => 74,
            Error::Hits { .. } => 6,
            Error::NotPublished { .. } => 7,
            Error::Status { status, .. } => match status.code() {
                Code::NotFound => 3,
                Code::Unauthenticated | Code::PermissionDenied => 4,
                Code::InvalidArgument
                | Code::FailedPrecondition
                | Code::AlreadyExists
                | Code::OutOfRange => 5,
                Code::Unavailable | Code::DeadlineExceeded => 69,
                _ => 1,
            },
        }
    }

    /// Whether a `watch` should reconnect after this error rather than give up.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Unreachable { .. } => true,
            Error::Status { status, .. } => matches!(
                status.code(),
                Code::Unavailable
                    | Code::Unknown
                    | Code::Internal
                    | Code::Aborted
                    | Code::Cancelled
                    | Code::DeadlineExceeded
                    | Code::ResourceExhausted
            ),
            _ => false,
        }
    }
}

/// `CODE: the server's message — what to do`, on one line.
fn status_line(service: &str, addr: &str, status: &tonic::Status) -> String {
    let code = status.code();
    // A server's message may quote what a citizen or an editor wrote.
    let message = one_line(status.message());
    let hint = match code {
        Code::Unauthenticated => " (check GOVWX_API_KEY or --key-file)",
        Code::PermissionDenied => " (use a key of a department and role that may do this)",
        Code::NotFound => " (or it belongs to another department or account)",
        _ => "",
    };
    match code {
        Code::Unavailable | Code::DeadlineExceeded => {
            format!("{} from {service} at {addr}: {message}", code_name(code))
        }
        _ => format!("{}: {message}{hint}", code_name(code)),
    }
}

/// The canonical gRPC name of `code`, as grpcurl and the gRPC docs spell it.
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: Code, message: &str) -> Error {
        Error::Status {
            service: "interaction-svc",
            addr: "http://127.0.0.1:50051".into(),
            status: tonic::Status::new(code, message),
        }
    }

    #[test]
    fn a_status_is_one_line_with_its_code_and_a_hint() {
        let error = status(
            Code::PermissionDenied,
            "department transport needs\none of [agent]",
        );
        let line = error.to_string();
        assert_eq!(line.lines().count(), 1);
        assert!(line.starts_with("PERMISSION_DENIED: department transport needs one of [agent]"));
        assert_eq!(error.exit_code(), 4);
    }

    #[test]
    fn an_unavailable_server_is_named_by_its_address() {
        let error = status(Code::Unavailable, "connection reset");
        assert!(
            error
                .to_string()
                .contains("interaction-svc at http://127.0.0.1:50051")
        );
        assert_eq!(error.exit_code(), 69);
        assert!(error.is_transient());
        assert!(!status(Code::Unauthenticated, "unknown api key").is_transient());
    }
}
