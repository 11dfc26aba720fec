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
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $what:literal, $max:literal) => {
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
    /// A citizen's openid for one account (WeChat's `FromUserName`).
    OpenId,
    "openid",
    128
);
string_id!(
    /// An event's idempotency key: stable across redeliveries and WeChat's retries.
    EventId,
    "event_id",
    512
);

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
}
