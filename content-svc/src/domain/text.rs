//! Free text from requests, checked before anything is done with it (the rule
//! interaction-svc applies to its notes and names):
//! - a comment or reason goes into the audit trail and the event announcing the
//!   step, so it is bounded (an event must fit NATS's 1 MB `max_payload`, or the
//!   outbox cannot publish it);
//! - no control character: PostgreSQL cannot store NUL, so a text holding it would
//!   fail to be recorded after WeChat had been called, and no control character
//!   belongs in a government article anyway. Line breaks and tabs are text in
//!   multi-line fields; single-line fields and identifiers allow none.

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
    #[error("{field} must not hold control characters")]
    Control { field: String },
}

/// Checks a comment or reason: multi-line text of at most [`NOTE_MAX_CHARS`]
/// characters.
pub fn check_note(field: &str, value: &str) -> Result<(), TextError> {
    let len = value.chars().count();
    if len > NOTE_MAX_CHARS {
        return Err(TextError::TooLong {
            field: field.to_owned(),
            len,
            max: NOTE_MAX_CHARS,
        });
    }
    check_text(field, value)
}

/// Checks multi-line text: no control character but line breaks and tabs.
pub fn check_text(field: &str, value: &str) -> Result<(), TextError> {
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(control(field));
    }
    Ok(())
}

/// Checks a single-line field or an identifier: no control character at all.
pub fn check_line(field: &str, value: &str) -> Result<(), TextError> {
    if value.chars().any(char::is_control) {
        return Err(control(field));
    }
    Ok(())
}

fn control(field: &str) -> TextError {
    TextError::Control {
        field: field.to_owned(),
    }
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

    #[test]
    fn line_breaks_and_tabs_are_text_in_notes_but_not_in_single_lines() {
        assert_eq!(check_note("comment", "第一行\r\n\t第二行"), Ok(()));
        assert_eq!(
            check_note("comment", "内容有误\u{0}撤回")
                .unwrap_err()
                .to_string(),
            "comment must not hold control characters"
        );
        assert!(check_text("body", "a\u{7}b").is_err());
        assert!(check_line("title", "停水\n通知").is_err());
        assert_eq!(check_line("title", "停水通知"), Ok(()));
    }
}
