//! Identifiers every service passes around, parsed once at the edge so that an
//! empty account or openid cannot travel further in.

use std::fmt;

/// Why a raw identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{0} is required")]
    Empty(&'static str),
    #[error("{what} is longer than {max} bytes")]
    TooLong { what: &'static str, max: usize },
    #[error("{0} must not hold control characters")]
    Control(&'static str),
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $what:literal, $max:literal) => {
        string_id!($(#[$doc])* $name, $what, $max, |_raw: &str| Ok(()));
    };
    ($(#[$doc:meta])* $name:ident, $what:literal, $max:literal, $check:expr) => {
        $(#[$doc])*
        ///
        /// Binds to and reads from a `text` column as it is (values are parsed on the
        /// way in, so what the database holds is valid).
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, sqlx::Type)]
        #[sqlx(transparent)]
        pub struct $name(String);

        impl $name {
            /// Accepts a non-blank id of at most
            #[doc = concat!(stringify!($max), " bytes.")]
            pub fn parse(raw: impl Into<String>) -> Result<Self, IdError> {
                let raw = raw.into();
                if raw.trim().is_empty() {
                    return Err(IdError::Empty($what));
                }
                if raw.len() > $max {
                    return Err(IdError::TooLong { what: $what, max: $max });
                }
                let check: fn(&str) -> Result<(), IdError> = $check;
                check(&raw)?;
                Ok(Self(raw))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

string_id!(
    /// An account on this install: the callback URL's path segment (`chenzhou`).
    AccountId,
    "account",
    64
);
string_id!(
    /// A citizen's openid for one account (WeChat's `FromUserName`). WeChat's are
    /// letters, digits, `-` and `_`: one holding a control character comes only from
    /// a forged plaintext body, and is refused here rather than kept in rows and logs.
    OpenId,
    "openid",
    128,
    |raw: &str| if raw.chars().any(char::is_control) {
        Err(IdError::Control("openid"))
    } else {
        Ok(())
    }
);
string_id!(
    /// An event's idempotency key: stable across redeliveries and WeChat's retries.
    EventId,
    "event_id",
    512
);

/// A caller's id for one call it may retry (`request_id` of the creates, of
/// ReplyToTicket…): the same on every retry, so the retry is answered with what the
/// first call did instead of doing it again. A UUID is 36 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestId(String);

/// Why a request id was refused (the field's name is the caller's to add).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RequestIdError {
    #[error("must be at most {} characters", RequestId::MAX_CHARS)]
    TooLong,
    #[error("must not hold control characters")]
    Control,
}

impl RequestId {
    /// The most characters of a request id.
    pub const MAX_CHARS: usize = 64;

    /// The field as sent, trimmed; empty (or blank) is none: such a call is not
    /// matched with any other. An identifier: no control character at all.
    pub fn parse(raw: &str) -> Result<Option<Self>, RequestIdError> {
        let value = raw.trim();
        if value.is_empty() {
            return Ok(None);
        }
        if value.chars().count() > Self::MAX_CHARS {
            return Err(RequestIdError::TooLong);
        }
        if value.chars().any(char::is_control) {
            return Err(RequestIdError::Control);
        }
        Ok(Some(Self(value.to_owned())))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_and_oversized_ids_are_refused_with_their_name() {
        assert_eq!(AccountId::parse(" "), Err(IdError::Empty("account")));
        assert_eq!(
            OpenId::parse("o".repeat(129)).unwrap_err().to_string(),
            "openid is longer than 128 bytes"
        );
        assert_eq!(EventId::parse("city:o1:42").unwrap().as_str(), "city:o1:42");
    }

    #[test]
    fn an_openid_with_a_control_character_is_refused_with_its_name() {
        for forged in ["o\u{0}1", "o1\r\n", "o\t1", "o\u{1d}1", "o\u{85}1"] {
            assert_eq!(
                OpenId::parse(forged),
                Err(IdError::Control("openid")),
                "{forged:?}"
            );
        }
        assert_eq!(
            IdError::Control("openid").to_string(),
            "openid must not hold control characters"
        );
        let real = "oAbCdEf-openid_123";
        assert_eq!(OpenId::parse(real).unwrap().as_str(), real);
        assert_eq!(OpenId::parse("mphelper").unwrap().as_str(), "mphelper");
    }

    #[test]
    fn a_blank_request_id_is_none_and_a_long_or_controlled_one_is_refused() {
        assert_eq!(RequestId::parse("  "), Ok(None));
        assert_eq!(
            RequestId::parse(" 0b4d-1 ").unwrap().unwrap().as_str(),
            "0b4d-1"
        );
        assert!(RequestId::parse(&"a".repeat(64)).unwrap().is_some());
        assert_eq!(
            RequestId::parse(&"a".repeat(65)),
            Err(RequestIdError::TooLong)
        );
        assert_eq!(RequestId::parse("a\u{0}b"), Err(RequestIdError::Control));
        assert_eq!(RequestId::parse("a\tb"), Err(RequestIdError::Control));
    }
}
