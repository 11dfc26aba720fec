//! The person who acts, as a caller names them in the request metadata: the one
//! reading of it for every RPC of this service (articles and menus alike).
//!
//! A gRPC metadata value is visible ASCII, so a name such as 王芳 travels either as
//! `x-actor-bin` (binary metadata: base64 on the wire, UTF-8 once decoded) or
//! percent-encoded UTF-8 in `x-actor` (`%E7%8E%8B%E8%8A%B3`). A present value that
//! is neither is refused: read as "absent", it made the key's department the actor,
//! so the trail named the wrong person and the separation of duties refused a
//! reviewer with "you wrote it".

use tonic::metadata::MetadataMap;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

use crate::domain::text::{self, TextError};

/// The metadata naming the person (visible ASCII, or percent-encoded UTF-8).
pub const ACTOR_HEADER: &str = "x-actor";
/// The same as binary metadata: the name's UTF-8 bytes.
pub const ACTOR_BIN_HEADER: &str = "x-actor-bin";
/// The longest name, in bytes of UTF-8.
pub const MAX_BYTES: usize = 64;

/// Why the named person cannot be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ActorError {
    #[error(
        "x-actor is not ASCII: send a name in other characters as UTF-8 in x-actor-bin, \
         or percent-encoded UTF-8 in x-actor (王芳: %E7%8E%8B%E8%8A%B3)"
    )]
    NotAscii,
    #[error(
        "x-actor has a '%' not followed by two hexadecimal digits: percent-encode the \
         name's UTF-8 bytes (王芳: %E7%8E%8B%E8%8A%B3)"
    )]
    BadEscape,
    #[error("{0} is not UTF-8 once decoded")]
    NotUtf8(&'static str),
    #[error("x-actor and x-actor-bin are both given: send one")]
    Both,
    #[error(
        "x-actor must be a name of at most {MAX_BYTES} bytes of UTF-8 (21 Chinese \
         characters) without ':'"
    )]
    Shape,
    #[error(transparent)]
    Text(#[from] TextError),
    #[error(
        "x-actor must not hold U+{:04X}, a character shown as nothing: li with it would \
         be another person than li to the separation of duties, and li to every reader",
        u32::from(*.character)
    )]
    Invisible { character: char },
}

/// The person named in `metadata`, trimmed; `None` when neither header is given or
/// the name is blank (the key's department then acts).
pub fn person(metadata: &MetadataMap) -> Result<Option<String>, ActorError> {
    let plain = match metadata.get(ACTOR_HEADER) {
        Some(value) => Some(decode_percent(
            value.to_str().map_err(|_| ActorError::NotAscii)?,
        )?),
        None => None,
    };
    let binary = match metadata.get_bin(ACTOR_BIN_HEADER) {
        Some(value) => {
            let bytes = value
                .to_bytes()
                .map_err(|_| ActorError::NotUtf8(ACTOR_BIN_HEADER))?;
            Some(
                String::from_utf8(bytes.to_vec())
                    .map_err(|_| ActorError::NotUtf8(ACTOR_BIN_HEADER))?,
            )
        }
        None => None,
    };
    let name = match (plain, binary) {
        (Some(_), Some(_)) => return Err(ActorError::Both),
        (Some(name), None) | (None, Some(name)) => name,
        (None, None) => return Ok(None),
    };
    let name = name.trim();
    if name.is_empty() {
        return Ok(None);
    }
    if name.len() > MAX_BYTES || name.contains(':') {
        return Err(ActorError::Shape);
    }
    text::check_line(ACTOR_HEADER, name)?;
    if let Some(character) = name.chars().find(|&c| is_invisible(c)) {
        return Err(ActorError::Invisible { character });
    }
    Ok(Some(name.to_owned()))
}

/// Whether `c` is shown as nothing: a format character (Cf: U+200B, U+00AD,
/// U+2060, U+FEFF, the tag characters, …), which text fields allow (pasted text
/// carries them) but a name, compared character for character, must not hold; or
/// one of the other default-ignorable characters (variation selectors, the
/// combining grapheme joiner, the Hangul fillers, the Mongolian selectors).
fn is_invisible(c: char) -> bool {
    c.general_category() == GeneralCategory::Format
        || matches!(
            c,
            '\u{034F}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FFA0}'
                | '\u{E0100}'..='\u{E01EF}'
        )
}

/// `%XX` escapes to their bytes, read as UTF-8; a value without `%` is itself.
fn decode_percent(raw: &str) -> Result<String, ActorError> {
    if !raw.contains('%') {
        return Ok(raw.to_owned());
    }
    let mut bytes = Vec::with_capacity(raw.len());
    let mut rest = raw.as_bytes();
    while let Some((&first, tail)) = rest.split_first() {
        if first == b'%' {
            let hex = tail.get(..2).ok_or(ActorError::BadEscape)?;
            let hex = std::str::from_utf8(hex).map_err(|_| ActorError::BadEscape)?;
            // from_str_radix takes a sign: "+1" is not an escape.
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ActorError::BadEscape);
            }
            bytes.push(u8::from_str_radix(hex, 16).map_err(|_| ActorError::BadEscape)?);
            rest = &tail[2..];
        } else {
            bytes.push(first);
            rest = tail;
        }
    }
    String::from_utf8(bytes).map_err(|_| ActorError::NotUtf8(ACTOR_HEADER))
}

#[cfg(test)]
mod tests {
    use tonic::metadata::{AsciiMetadataValue, BinaryMetadataValue};

    use super::*;

    fn plain(raw: &[u8]) -> MetadataMap {
        let mut map = MetadataMap::new();
        map.insert(
            ACTOR_HEADER,
            AsciiMetadataValue::try_from(raw).expect("header bytes"),
        );
        map
    }

    fn binary(raw: &[u8]) -> MetadataMap {
        let mut map = MetadataMap::new();
        map.insert_bin(ACTOR_BIN_HEADER, BinaryMetadataValue::from_bytes(raw));
        map
    }

    #[test]
    fn an_ascii_name_is_itself_and_a_blank_or_absent_one_is_none() {
        assert_eq!(person(&plain(b" li ")), Ok(Some("li".into())));
        assert_eq!(person(&plain(b"  ")), Ok(None));
        assert_eq!(person(&binary(b"")), Ok(None));
        assert_eq!(person(&MetadataMap::new()), Ok(None));
    }

    #[test]
    fn raw_utf8_in_x_actor_is_refused_not_read_as_absent() {
        assert_eq!(person(&plain("王芳".as_bytes())), Err(ActorError::NotAscii));
    }

    #[test]
    fn a_chinese_name_arrives_as_binary_or_percent_encoded_metadata() {
        assert_eq!(person(&binary("王芳".as_bytes())), Ok(Some("王芳".into())));
        assert_eq!(
            person(&plain(b"%E7%8E%8B%e8%8a%b3")),
            Ok(Some("王芳".into()))
        );
    }

    #[test]
    fn a_broken_escape_non_utf8_both_headers_or_a_control_is_refused() {
        assert_eq!(person(&plain(b"wang%E")), Err(ActorError::BadEscape));
        assert_eq!(person(&plain(b"wang%+1")), Err(ActorError::BadEscape));
        assert_eq!(
            person(&plain(b"%FF")),
            Err(ActorError::NotUtf8(ACTOR_HEADER))
        );
        assert_eq!(
            person(&binary(&[0xff, 0xfe])),
            Err(ActorError::NotUtf8(ACTOR_BIN_HEADER))
        );
        let mut both = plain(b"li");
        both.insert_bin(ACTOR_BIN_HEADER, BinaryMetadataValue::from_bytes(b"li"));
        assert_eq!(person(&both), Err(ActorError::Both));
        assert!(matches!(
            person(&binary("王\n芳".as_bytes())),
            Err(ActorError::Text(_))
        ));
        assert!(matches!(
            person(&plain(b"%E2%80%AEli")),
            Err(ActorError::Text(_))
        ));
    }

    #[test]
    fn a_name_too_long_or_with_a_colon_is_refused() {
        assert_eq!(person(&plain(b"press:li")), Err(ActorError::Shape));
        assert_eq!(
            person(&binary("王".repeat(22).as_bytes())),
            Err(ActorError::Shape)
        );
        assert_eq!(
            person(&binary("王".repeat(21).as_bytes())),
            Ok(Some("王".repeat(21)))
        );
    }

    #[test]
    fn an_invisible_character_in_a_name_is_refused() {
        // li + U+200B passed the separation rule as a person other than li, while
        // every reader of the trail saw "li".
        for name in [
            "li\u{200B}",
            "l\u{AD}i",
            "\u{FEFF}li",
            "li\u{2060}",
            "li\u{E0041}",
            "li\u{FE0F}",
            "li\u{3164}",
        ] {
            let escaped: String = name.bytes().map(|b| format!("%{b:02X}")).collect();
            let plain_read = person(&plain(escaped.as_bytes()));
            assert!(plain_read.is_err(), "{name:?} read as {plain_read:?}");
            let binary_read = person(&binary(name.as_bytes()));
            assert!(binary_read.is_err(), "{name:?} read as {binary_read:?}");
        }
        let refused = person(&binary("li\u{200B}".as_bytes()))
            .map_err(|e| e.to_string())
            .unwrap_err();
        assert!(refused.contains("U+200B"), "{refused}");
        assert_eq!(person(&binary("王芳".as_bytes())), Ok(Some("王芳".into())));
    }
}
