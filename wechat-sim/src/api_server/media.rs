//! Images: `media/uploadimg` (an image for an article body, answered with a URL on
//! WeChat's image host) and `material/add_material?type=image` (a permanent image,
//! answered with its media id), both `multipart/form-data` with a part named `media`.
//!
//! The file part is read here and handed to the common call path as a JSON summary
//! (file name, content type, size), so faults, token checks and call recording work
//! as for every JSON endpoint, and `/sim/calls` shows what was uploaded without the
//! bytes. WeChat's limits: uploadimg takes jpg/png up to 1 MB; a permanent image is
//! bmp/png/jpeg/gif up to 10 MB.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, header};
use axum::routing::post;
use serde_json::{Value, json};

use super::ops::{Endpoint, Req};
use super::state::{SimState, World, WxErr};

static UPLOADIMG: Endpoint = Endpoint {
    method: Method::POST,
    path: "/cgi-bin/media/uploadimg",
    auth: true,
    op: uploadimg,
};

static ADD_MATERIAL: Endpoint = Endpoint {
    method: Method::POST,
    path: "/cgi-bin/material/add_material",
    auth: true,
    op: add_material,
};

type Q = HashMap<String, String>;

/// The media endpoints, merged into the mock's router.
pub(crate) fn routes() -> Router<SimState> {
    Router::new()
        .route(
            UPLOADIMG.path,
            post(|s: State<SimState>, q: Query<Q>, h: HeaderMap, b: Bytes| {
                upload(&UPLOADIMG, s, q, h, b)
            }),
        )
        .route(
            ADD_MATERIAL.path,
            post(|s: State<SimState>, q: Query<Q>, h: HeaderMap, b: Bytes| {
                upload(&ADD_MATERIAL, s, q, h, b)
            }),
        )
}

async fn upload(
    endpoint: &'static Endpoint,
    State(state): State<SimState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let summary = match media_part(&headers, &body) {
        Some(part) => json!({
            "filename": part.filename,
            "content_type": part.content_type,
            "size": part.data.len(),
        }),
        // No file part: the endpoint answers 41005 (media data missing).
        None => json!({}),
    };
    super::http::api_call(state, endpoint, query, Bytes::from(summary.to_string())).await
}

/// The `media` part of a multipart body.
struct Part<'a> {
    filename: String,
    content_type: String,
    data: &'a [u8],
}

fn media_part<'a>(headers: &HeaderMap, body: &'a [u8]) -> Option<Part<'a>> {
    let content_type = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let boundary = content_type
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("boundary="))?
        .trim_matches('"');
    let delimiter = format!("--{boundary}");
    let mut rest = body;
    loop {
        let start = find(rest, delimiter.as_bytes())? + delimiter.len();
        rest = &rest[start..];
        if rest.starts_with(b"--") {
            return None;
        }
        let rest_after_crlf = rest.strip_prefix(b"\r\n")?;
        let head_end = find(rest_after_crlf, b"\r\n\r\n")?;
        let head = std::str::from_utf8(&rest_after_crlf[..head_end]).ok()?;
        let data_start = &rest_after_crlf[head_end + 4..];
        let end = find(data_start, format!("\r\n{delimiter}").as_bytes())?;
        let data = &data_start[..end];
        rest = &data_start[end + 2..];
        let disposition = head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))?;
        if !disposition.contains("name=\"media\"") {
            continue;
        }
        let filename = disposition
            .split("filename=\"")
            .nth(1)
            .and_then(|f| f.split('"').next())
            .unwrap_or_default()
            .to_owned();
        let content_type = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.trim()
                    .eq_ignore_ascii_case("content-type")
                    .then(|| value.trim().to_owned())
            })
            .unwrap_or_default();
        return Some(Part {
            filename,
            content_type,
            data,
        });
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn file(req: &Req<'_>) -> Result<(String, String, u64), WxErr> {
    let size = req
        .body
        .get("size")
        .and_then(Value::as_u64)
        .ok_or_else(|| WxErr::new(41005, "media data missing"))?;
    let text = |key: &str| {
        req.body
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_ascii_lowercase()
    };
    Ok((text("filename"), text("content_type"), size))
}

fn extension(filename: &str) -> &str {
    filename.rsplit_once('.').map(|(_, e)| e).unwrap_or("")
}

/// `POST /cgi-bin/media/uploadimg`: jpg/png up to 1 MB → `{url}`.
fn uploadimg(world: &mut World, req: &Req<'_>) -> Result<Value, WxErr> {
    let id = world.next_id();
    world.account(&req.appid)?;
    let (filename, content_type, size) = file(req)?;
    let ext = extension(&filename);
    if !matches!(ext, "jpg" | "jpeg" | "png")
        || !matches!(content_type.as_str(), "image/jpeg" | "image/png")
    {
        return Err(WxErr::new(40005, "invalid file type"));
    }
    if size == 0 || size > 1024 * 1024 {
        return Err(WxErr::new(40009, "invalid image size"));
    }
    let kind = if ext == "png" { "png" } else { "jpg" };
    Ok(json!({"url": format!("http://mmbiz.qpic.cn/mmbiz_{kind}/sim{id}/0")}))
}

/// `POST /cgi-bin/material/add_material?type=image`: bmp/png/jpeg/gif up to 10 MB
/// → `{media_id, url}`.
fn add_material(world: &mut World, req: &Req<'_>) -> Result<Value, WxErr> {
    let id = world.next_id();
    world.account(&req.appid)?;
    if req.query.get("type").map(String::as_str) != Some("image") {
        // The mock keeps images only; voice, video and thumb are not simulated.
        return Err(WxErr::new(40004, "invalid media type"));
    }
    let (filename, content_type, size) = file(req)?;
    if !matches!(extension(&filename), "bmp" | "png" | "jpeg" | "jpg" | "gif")
        || !content_type.starts_with("image/")
    {
        return Err(WxErr::new(40005, "invalid file type"));
    }
    if size == 0 || size > 10 * 1024 * 1024 {
        return Err(WxErr::new(40009, "invalid image size"));
    }
    world
        .materials
        .insert(format!("MATERIAL_{id}"), req.appid.clone());
    Ok(json!({
        "media_id": format!("MATERIAL_{id}"),
        "url": format!("http://mmbiz.qpic.cn/mmbiz_png/material{id}/0"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_media_part_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            "multipart/form-data; boundary=XyZ".parse().unwrap(),
        );
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"description\"\r\n\r\n{}\r\n\
--XyZ\r\nContent-Disposition: form-data; name=\"media\"; filename=\"cover.png\"\r\n\
Content-Type: image/png\r\n\r\n\x89PNG\r\n--XyZ--\r\n";
        let part = media_part(&headers, body).expect("media part");
        assert_eq!(part.filename, "cover.png");
        assert_eq!(part.content_type, "image/png");
        assert_eq!(part.data, b"\x89PNG");
    }
}
