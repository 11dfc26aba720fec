//! Images for articles: what an editor may upload. One rule for body images and
//! covers alike, so any uploaded image can be either: JPEG or PNG (recognised by
//! its bytes, not by what the client claims) of at most 1 MB, which is what
//! WeChat's `media/uploadimg` takes and within the 10 MB of a permanent image.

/// The largest image accepted.
pub const IMAGE_MAX_BYTES: usize = 1024 * 1024;

/// A kind of image WeChat takes for both uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    Jpeg,
    Png,
}

impl ImageKind {
    /// The MIME type sent to WeChat.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
        }
    }

    /// The file extension WeChat checks.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
        }
    }

    /// Reads the kind from a stored MIME type.
    pub fn from_content_type(name: &str) -> Option<Self> {
        match name {
            "image/jpeg" => Some(Self::Jpeg),
            "image/png" => Some(Self::Png),
            _ => None,
        }
    }
}

/// An image that cannot be uploaded; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    #[error("data is required")]
    Empty,
    #[error("data is {0} bytes; an image may be at most 1 MB (1,048,576 bytes)")]
    TooLarge(usize),
    #[error("data is not a JPEG or PNG image")]
    NotAnImage,
}

/// Checks an upload and says what it is.
pub fn check_image(bytes: &[u8]) -> Result<ImageKind, ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty);
    }
    if bytes.len() > IMAGE_MAX_BYTES {
        return Err(ImageError::TooLarge(bytes.len()));
    }
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Ok(ImageKind::Jpeg)
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Ok(ImageKind::Png)
    } else {
        Err(ImageError::NotAnImage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_recognised_by_their_bytes_and_bounded() {
        assert_eq!(check_image(b"\x89PNG\r\n\x1a\nrest"), Ok(ImageKind::Png));
        assert_eq!(check_image(&[0xFF, 0xD8, 0xFF, 0xE0]), Ok(ImageKind::Jpeg));
        assert_eq!(check_image(b"GIF89a"), Err(ImageError::NotAnImage));
        assert_eq!(check_image(b""), Err(ImageError::Empty));
        let mut big = b"\x89PNG\r\n\x1a\n".to_vec();
        big.resize(IMAGE_MAX_BYTES + 1, 0);
        assert_eq!(
            check_image(&big),
            Err(ImageError::TooLarge(IMAGE_MAX_BYTES + 1))
        );
    }
}
