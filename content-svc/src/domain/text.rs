//! Free text from requests, checked before anything is done with it (the rule
//! interaction-svc applies to its notes and names):
//! - a comment or reason goes into the audit trail and the event announcing the
//!   step, so it is bounded (an event must fit NATS's 1 MB `max_payload`, or the
//!   outbox cannot publish it);
//! - no control character: PostgreSQL cannot store NUL, so a text holding it would
//!   fail to be recorded after WeChat had been called, and no control character
//!   belongs in a government article anyway. Line breaks and tabs are text in
//!   multi-line fields; single-line fields and identifiers allow none;
//! - no bidirectional formatting character ([`is_bidi_format`]): it changes the
//!   order in which readers see the characters but not the order the sensitive-word
//!   screener reads them, so `\u{202E}票发开代\u{202C}` is screened as 票发开代 and
//!   shown as 代开发票. The rest of Unicode's format (Cf) characters are allowed:
//!   the screener reads through them (it keeps only letters and digits), and text
//!   pasted from Word or the web carries them routinely (U+200B zero width space,
//!   U+FEFF, U+00AD soft hyphen; U+200D and the tag characters build emoji).

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
    #[error(
        "{field} must not hold U+{:04X} ({}): it changes the order readers see the text in",
        u32::from(*.character),
        bidi_name(*.character)
    )]
    Bidi { field: String, character: char },
}

/// Whether `c` is a bidirectional formatting character: the marks (U+200E, U+200F,
/// U+061C), embeddings and overrides (U+202A–U+202E), isolates (U+2066–U+2069), and
/// the deprecated U+206A–U+206F, which some renderers still honour and no text
/// needs.
pub fn is_bidi_format(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{206F}'
    )
}

/// Unicode's name of a bidirectional formatting character, for the error message.
fn bidi_name(c: char) -> &'static str {
    match c {
        '\u{061C}' => "ARABIC LETTER MARK",
        '\u{200E}' => "LEFT-TO-RIGHT MARK",
        '\u{200F}' => "RIGHT-TO-LEFT MARK",
        '\u{202A}' => "LEFT-TO-RIGHT EMBEDDING",
        '\u{202B}' => "RIGHT-TO-LEFT EMBEDDING",
        '\u{202C}' => "POP DIRECTIONAL FORMATTING",
        '\u{202D}' => "LEFT-TO-RIGHT OVERRIDE",
        '\u{202E}' => "RIGHT-TO-LEFT OVERRIDE",
        '\u{2066}' => "LEFT-TO-RIGHT ISOLATE",
        '\u{2067}' => "RIGHT-TO-LEFT ISOLATE",
        '\u{2068}' => "FIRST STRONG ISOLATE",
        '\u{2069}' => "POP DIRECTIONAL ISOLATE",
        _ => "deprecated format character",
    }
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

/// Checks multi-line text: no control character but line breaks and tabs, no
/// bidirectional formatting character.
pub fn check_text(field: &str, value: &str) -> Result<(), TextError> {
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(control(field));
    }
    check_bidi(field, value)
}

/// Checks a single-line field or an identifier: no control character at all, no
/// bidirectional formatting character.
pub fn check_line(field: &str, value: &str) -> Result<(), TextError> {
    if value.chars().any(char::is_control) {
        return Err(control(field));
    }
    check_bidi(field, value)
}

/// Refuses the first bidirectional formatting character, naming it.
pub fn check_bidi(field: &str, value: &str) -> Result<(), TextError> {
    match value.chars().find(|&c| is_bidi_format(c)) {
        Some(character) => Err(TextError::Bidi {
            field: field.to_owned(),
            character,
        }),
        None => Ok(()),
    }
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

    #[test]
    fn a_right_to_left_override_is_refused_naming_its_code_point_in_lines_and_texts() {
        let reversed = "\u{202E}票发开代\u{202C}";
        assert_eq!(
            check_line("name", reversed).unwrap_err().to_string(),
            "name must not hold U+202E (RIGHT-TO-LEFT OVERRIDE): it changes the order \
             readers see the text in"
        );
        assert_eq!(
            check_text("how_to_apply", &format!("第一行\n{reversed}"))
                .unwrap_err()
                .to_string(),
            "how_to_apply must not hold U+202E (RIGHT-TO-LEFT OVERRIDE): it changes the \
             order readers see the text in"
        );
        assert!(
            check_note("comment", "\u{2067}ok")
                .unwrap_err()
                .to_string()
                .contains("U+2067 (RIGHT-TO-LEFT ISOLATE)")
        );
        for c in [
            '\u{061C}', '\u{200E}', '\u{200F}', '\u{202A}', '\u{2069}', '\u{206F}',
        ] {
            assert!(check_line("name", &format!("办{c}事")).is_err(), "{c:?}");
        }
    }

    #[test]
    fn format_characters_that_do_not_reorder_text_are_left_to_the_screener() {
        // Zero width space, BOM, soft hyphen, ZWJ in an emoji, ZWNJ: pasted text
        // carries them, and the screener reads through them.
        for text in [
            "通知\u{200B}",
            "\u{FEFF}通知",
            "停\u{AD}水",
            "👨\u{200D}👩",
            "ک\u{200C}ه",
        ] {
            assert_eq!(check_line("title", text), Ok(()), "{text:?}");
        }
    }

    #[test]
    fn a_directory_service_named_with_a_right_to_left_override_is_refused() {
        use crate::domain::service::{RawService, ServiceDraft};
        let raw = RawService {
            account: "lincheng",
            category: "social_security",
            name: "\u{202E}票发开代\u{202C}",
            department: "税务局",
            url: "https://example.gov.cn/fp",
            ..RawService::default()
        };
        assert_eq!(
            ServiceDraft::parse(&raw).unwrap_err().to_string(),
            "name must not hold U+202E (RIGHT-TO-LEFT OVERRIDE): it changes the order \
             readers see the text in"
        );
        let raw = RawService {
            how_to_apply: "携带身份证\n\u{2067}到窗口\u{2069}",
            name: "发票代开",
            ..raw
        };
        assert!(
            ServiceDraft::parse(&raw)
                .unwrap_err()
                .to_string()
                .starts_with("how_to_apply must not hold U+2067")
        );
    }
}
