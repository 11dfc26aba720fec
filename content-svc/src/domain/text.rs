//! Free text from requests: a comment or reason goes into the audit trail and the
//! event announcing the step, so it is bounded (an event must fit NATS's 1 MB
//! `max_payload`, or the outbox cannot publish it).

/// The most characters of a comment or reason (interaction-svc's note limit).
pub const NOTE_MAX_CHARS: usize = 500;

/// A free-text field that breaks a rule; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("{field} is {len} characters; at most {max} are allowed")]
    TooLong {
        field: String,
        len: usize,
        max: usize,
    },
}

/// Checks a comment or reason: at most [`NOTE_MAX_CHARS`] characters.
pub fn check_note(field: &str, value: &str) -> Result<(), TextError> {
    let len = value.chars().count();
    if len > NOTE_MAX_CHARS {
        return Err(TextError::TooLong {
            field: field.to_owned(),
            len,
            max: NOTE_MAX_CHARS,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_of_500_characters_passes_and_one_more_is_refused_by_name() {
        assert_eq!(check_note("comment", &"很".repeat(500)), Ok(()));
        let err = check_note("comment", &"很".repeat(501)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "comment is 501 characters; at most 500 are allowed"
        );
    }
}
