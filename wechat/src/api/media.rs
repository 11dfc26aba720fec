//! Images for articles: `media/uploadimg` (an image inside an article body; WeChat
//! answers a URL on its own image host, `mmbiz.qpic.cn`) and `material/add_material`
//! with `type=image` (a permanent image, whose media id is an article's cover,
//! `thumb_media_id`), and `material/del_material` (a permanent material deleted,
//! its place in the account's quota of 100,000 images freed).
//!
//! Both take the file as `multipart/form-data` in a part named `media`. The body is
//! built here rather than with reqwest's multipart support so the workspace needs
//! no further crate; it is one part with a random boundary checked against the data.

use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::{ApiError, Client, Repeat, decode};
use crate::token::AccessToken;

/// The largest image `media/uploadimg` takes (WeChat: 1 MB, jpg or png).
pub const UPLOADIMG_MAX_BYTES: usize = 1024 * 1024;
/// The largest permanent image `material/add_material` takes (WeChat: 10 MB).
pub const MATERIAL_IMAGE_MAX_BYTES: usize = 10 * 1024 * 1024;

/// An image file to upload.
#[derive(Debug, Clone, Copy)]
pub struct ImageFile<'a> {
    /// The file name WeChat sees (its extension matters to WeChat: `.jpg`, `.png`).
    pub filename: &'a str,
    /// `image/jpeg`, `image/png`, `image/gif` or `image/bmp`.
    pub content_type: &'a str,
    pub bytes: &'a [u8],
}

/// A permanent image material.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ImageMaterial {
    /// The media id (an article's `thumb_media_id`).
    pub media_id: String,
    /// Its URL on WeChat's image host.
    #[serde(default)]
    pub url: String,
}

#[derive(Serialize)]
struct MaterialId<'a> {
    media_id: &'a str,
}

#[derive(Deserialize)]
struct Uploaded {
    url: String,
}

impl Client {
    /// Uploads an image for an article body (`POST /cgi-bin/media/uploadimg`) and
    /// returns its URL on WeChat's host, to put in the body's `<img src>`. The image
    /// does not count against the material quota.
    pub async fn upload_image(&self, image: ImageFile<'_>) -> Result<String, ApiError> {
        let uploaded: Uploaded = self
            .call_multipart("/cgi-bin/media/uploadimg", &[], image)
            .await?;
        Ok(uploaded.url)
    }

    /// Adds a permanent image (`POST /cgi-bin/material/add_material?type=image`),
    /// e.g. an article's cover.
    pub async fn add_image_material(
        &self,
        image: ImageFile<'_>,
    ) -> Result<ImageMaterial, ApiError> {
        self.call_multipart(
            "/cgi-bin/material/add_material",
            &[("type", "image")],
            image,
        )
        .await
    }

    /// Deletes a permanent material (`POST /cgi-bin/material/del_material`). A
    /// repeat does no harm: the material is gone either way (a second delete is
    /// answered 40007, invalid media id).
    pub async fn delete_material(&self, media_id: &str) -> Result<(), ApiError> {
        self.post_ack(
            "/cgi-bin/material/del_material",
            &MaterialId { media_id },
            Repeat::Safe,
        )
        .await
    }

    /// An authenticated multipart call, with the same token and busy handling as
    /// every JSON call.
    async fn call_multipart<R: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        image: ImageFile<'_>,
    ) -> Result<R, ApiError> {
        let (content_type, body) = multipart_body(image);
        let (content_type, body) = (&content_type, &body);
        // A repeat leaves at most an unused image, which nobody sees.
        self.with_token(Repeat::Safe, |token| async move {
            self.send_multipart(path, query, content_type, body, &token)
                .await
        })
        .await
    }

    async fn send_multipart<R: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        content_type: &str,
        body: &[u8],
        token: &AccessToken,
    ) -> Result<R, ApiError> {
        let url = format!("{}{}", self.inner.base_url, path);
        let response = self
            .inner
            .http
            .request(Method::POST, url)
            .timeout(self.timeout)
            .query(query)
            .query(&[("access_token", token.secret())])
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body.to_vec())
            .send()
            .await
            .map_err(ApiError::from_reqwest)?;
        let status = response.status();
        if status != reqwest::StatusCode::OK {
            return Err(ApiError::Status(status.as_u16()));
        }
        let bytes = super::read_body(response).await?;
        decode(&bytes)
    }
}

/// The `multipart/form-data` body of one `media` part: (content type, body).
fn multipart_body(image: ImageFile<'_>) -> (String, Vec<u8>) {
    // A boundary must not occur in the data; a random one is retried until it does not.
    let boundary = loop {
        let candidate = format!("----govwx{:032x}", rand::random::<u128>());
        if !contains(image.bytes, candidate.as_bytes()) {
            break candidate;
        }
    };
    // Quotes and line breaks would end the header; WeChat only needs the extension.
    let filename: String = image
        .filename
        .chars()
        .map(|c| if c == '"' || c.is_control() { '_' } else { c })
        .collect();
    let mut body = Vec::with_capacity(image.bytes.len() + 256);
    body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
    body.extend_from_slice(
        format!(
            "Content-Disposition: form-data; name=\"media\"; filename=\"{filename}\"\r\n\
             Content-Type: {}\r\n\r\n",
            image.content_type
        )
        .as_bytes(),
    );
    body.extend_from_slice(image.bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_one_media_part_closed_by_its_boundary() {
        let (content_type, body) = multipart_body(ImageFile {
            filename: "a\"b.png",
            content_type: "image/png",
            bytes: b"\x89PNG data",
        });
        let boundary = content_type
            .strip_prefix("multipart/form-data; boundary=")
            .unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(text.starts_with(&format!("--{boundary}\r\n")));
        assert!(text.contains("name=\"media\"; filename=\"a_b.png\""));
        assert!(text.contains("\r\n\r\n\u{FFFD}PNG data\r\n"));
        assert!(text.ends_with(&format!("--{boundary}--\r\n")));
    }
}
