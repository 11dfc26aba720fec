//! The convenience-service directory: which account, which category.

use std::fmt;

use super::{AccountId, AccountIdError};

/// Why a directory request from outside is unusable. Messages name the field.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DirectoryInputError {
    #[error(transparent)]
    Account(#[from] AccountIdError),
    #[error(
        "category {0:?} is not a category code: use 1 to {max} lowercase ASCII letters, \
         digits and single underscores, starting with a letter (e.g. social_security)",
        max = CategoryCode::MAX_LEN
    )]
    BadCategory(String),
}

/// A directory category such as `social_security`, `medical_insurance` or `transport`:
/// snake_case ASCII, so it is safe in subjects, URLs and metric labels.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CategoryCode(String);

impl CategoryCode {
    /// The longest code accepted (the database checks the same bound).
    pub const MAX_LEN: usize = 64;

    /// Checks a code: a lowercase letter, then lowercase letters, digits and
    /// underscores, never two underscores in a row nor one at the end.
    pub fn parse(raw: &str) -> Result<Self, DirectoryInputError> {
        let bad = || DirectoryInputError::BadCategory(raw.to_owned());
        let bytes = raw.as_bytes();
        let Some(first) = bytes.first() else {
            return Err(bad());
        };
        if bytes.len() > Self::MAX_LEN || !first.is_ascii_lowercase() || raw.ends_with('_') {
            return Err(bad());
        }
        let allowed = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_';
        if !bytes.iter().all(allowed) || raw.contains("__") {
            return Err(bad());
        }
        Ok(Self(raw.to_owned()))
    }

    /// The code as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CategoryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which directory entries to list: one account, every category or one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceListing {
    pub account: AccountId,
    pub category: Option<CategoryCode>,
}

impl ServiceListing {
    /// Checks a request's fields; an empty category means every category.
    pub fn parse(account: &str, category: &str) -> Result<Self, DirectoryInputError> {
        let account = AccountId::parse(account)?;
        let category = match category {
            "" => None,
            code => Some(CategoryCode::parse(code)?),
        };
        Ok(Self { account, category })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_codes_are_snake_case_ascii() {
        for good in [
            "transport",
            "social_security",
            "medical_insurance",
            "a1_b2",
            "x",
        ] {
            assert_eq!(CategoryCode::parse(good).unwrap().as_str(), good);
        }
        for bad in [
            "",
            "Social_security",
            "social-security",
            "social security",
            "_transport",
            "transport_",
            "social__security",
            "1transport",
            "社保",
            "transport.>",
        ] {
            assert_eq!(
                CategoryCode::parse(bad),
                Err(DirectoryInputError::BadCategory(bad.to_owned())),
                "{bad:?} must be refused"
            );
        }
        let long = "a".repeat(CategoryCode::MAX_LEN + 1);
        assert!(CategoryCode::parse(&long).is_err());
        assert!(CategoryCode::parse(&long[1..]).is_ok());
    }

    #[test]
    fn a_listing_needs_an_account_and_takes_an_optional_category() {
        assert_eq!(
            ServiceListing::parse("", "transport"),
            Err(DirectoryInputError::Account(AccountIdError::Empty(
                "account"
            )))
        );
        assert_eq!(
            ServiceListing::parse("  ", ""),
            Err(DirectoryInputError::Account(AccountIdError::Empty(
                "account"
            )))
        );
        let all = ServiceListing::parse("chenzhou", "").unwrap();
        assert_eq!(all.account.as_str(), "chenzhou");
        assert_eq!(all.category, None);
        let one = ServiceListing::parse("chenzhou", "transport").unwrap();
        assert_eq!(one.category.unwrap().as_str(), "transport");
        assert!(matches!(
            ServiceListing::parse("chenzhou", "Transport"),
            Err(DirectoryInputError::BadCategory(_))
        ));
    }

    #[test]
    fn errors_name_the_field() {
        assert!(
            DirectoryInputError::from(AccountIdError::Empty("account"))
                .to_string()
                .contains("account")
        );
        assert!(
            DirectoryInputError::BadCategory("X".into())
                .to_string()
                .starts_with("category")
        );
    }
}
