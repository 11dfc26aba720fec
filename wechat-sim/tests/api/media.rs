//! Image uploads (multipart) from the `wechat` client against the mock.

use wechat::api::ErrCode;
use wechat::api::media::ImageFile;

use crate::helpers::*;

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n-an-image-";

#[tokio::test]
async fn a_body_image_gets_a_wechat_url_and_a_cover_a_material_id() {
    let mock = spawn_mock().await;
    let client = local_client(&mock, APPID, SECRET);
    let url = client
        .upload_image(ImageFile {
            filename: "chart.png",
            content_type: "image/png",
            bytes: PNG,
        })
        .await
        .expect("uploadimg answers a url");
    assert!(url.starts_with("http://mmbiz.qpic.cn/mmbiz_png/"), "{url}");
    let material = client
        .add_image_material(ImageFile {
            filename: "cover.png",
            content_type: "image/png",
            bytes: PNG,
        })
        .await
        .expect("add_material answers a media id");
    assert!(material.media_id.starts_with("MATERIAL_"));
    // The mock saw the file part: name, type and size, as WeChat would.
    let calls = mock.state().calls_to("/cgi-bin/media/uploadimg");
    let body = calls[0].body.as_ref().expect("recorded summary");
    assert_eq!(body["filename"], "chart.png");
    assert_eq!(body["size"], PNG.len());
    let calls = mock.state().calls_to("/cgi-bin/material/add_material");
    assert_eq!(
        calls[0].query.get("type").map(String::as_str),
        Some("image")
    );
}

#[tokio::test]
async fn uploadimg_refuses_what_wechat_refuses() {
    let mock = spawn_mock().await;
    let client = local_client(&mock, APPID, SECRET);
    let gif = client
        .upload_image(ImageFile {
            filename: "anim.gif",
            content_type: "image/gif",
            bytes: b"GIF89a",
        })
        .await
        .unwrap_err();
    assert_eq!(gif.code(), Some(ErrCode(40005)));
    let big = vec![0u8; 1024 * 1024 + 1];
    let too_big = client
        .upload_image(ImageFile {
            filename: "big.jpg",
            content_type: "image/jpeg",
            bytes: &big,
        })
        .await
        .unwrap_err();
    assert_eq!(too_big.code(), Some(ErrCode(40009)));
}
