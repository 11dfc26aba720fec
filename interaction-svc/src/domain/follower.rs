//! Followers as departments see them: tags and the paging of follower lists.

/// Why a follower value from a caller is unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FollowerInputError {
    #[error("{0} must not be empty")]
    Empty(&'static str),
    #[error("tag {0:?} is longer than {max} bytes", max = FollowerTag::MAX_BYTES)]
    TagTooLong(String),
    #[error("tag {0:?} contains a control character")]
    TagControl(String),
}

/// A label a department puts on a follower (e.g. `低保户`, `志愿者`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FollowerTag(String);

impl FollowerTag {
    /// WeChat's own tag names are limited to 30 bytes (errcode 45158); keeping ours to
    /// the same limit lets a tag be mirrored to WeChat later.
    pub const MAX_BYTES: usize = 30;

    /// Parses a tag: trimmed, not empty, at most [`Self::MAX_BYTES`] bytes, no control characters.
    pub fn parse(raw: &str) -> Result<Self, FollowerInputError> {
        let tag = raw.trim();
        if tag.is_empty() {
            return Err(FollowerInputError::Empty("tag"));
        }
        if tag.len() > Self::MAX_BYTES {
            return Err(FollowerInputError::TagTooLong(tag.to_owned()));
        }
        if tag.chars().any(char::is_control) {
            return Err(FollowerInputError::TagControl(tag.to_owned()));
        }
        Ok(Self(tag.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_trimmed_and_bounded() {
        assert_eq!(FollowerTag::parse(" 志愿者 ").unwrap().as_str(), "志愿者");
        assert_eq!(
            FollowerTag::parse("  "),
            Err(FollowerInputError::Empty("tag"))
        );
        // 11 Chinese characters are 33 bytes in UTF-8.
        assert!(matches!(
            FollowerTag::parse("一二三四五六七八九十一"),
            Err(FollowerInputError::TagTooLong(_))
        ));
        assert!(matches!(
            FollowerTag::parse("a\u{7}b"),
            Err(FollowerInputError::TagControl(_))
        ));
    }
}
