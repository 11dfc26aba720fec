//! Accounts on this install, the key of every piece of content.

use std::fmt;

/// Why an account id from outside is unusable.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum AccountIdError {
    #[error("account is required")]
    Missing,
}

/// An account on this install (the callback URL's path segment, e.g. `chenzhou`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AccountId(String);

impl AccountId {
    /// Accepts any non-blank id; the gateway decides which accounts exist.
    pub fn parse(raw: &str) -> Result<Self, AccountIdError> {
        if raw.trim().is_empty() {
            return Err(AccountIdError::Missing);
        }
        Ok(Self(raw.to_owned()))
    }

    /// The id as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_id_is_any_non_blank_text() {
        assert_eq!(AccountId::parse("chenzhou").unwrap().as_str(), "chenzhou");
        assert_eq!(
            AccountId::parse("yizhang-county").unwrap().to_string(),
            "yizhang-county"
        );
        assert_eq!(AccountId::parse(""), Err(AccountIdError::Missing));
        assert_eq!(AccountId::parse(" \t"), Err(AccountIdError::Missing));
    }

    #[test]
    fn the_error_names_the_field() {
        assert_eq!(AccountIdError::Missing.to_string(), "account is required");
    }
}
