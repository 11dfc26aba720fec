//! The person who acts, named in the metadata: a name in Chinese arrives intact or
//! is refused, never read as "nobody" (the key's department).

use proto::content::v1 as pb;
use tonic::Code;
use tonic::metadata::{AsciiMetadataValue, BinaryMetadataValue};

use crate::articles::{article, create};
use crate::helpers::{EDITOR_KEY, TestApp, authed, spawn_app};

/// How a client names 王芳.
#[derive(Clone, Copy)]
enum Naming {
    /// Her name's UTF-8 bytes written into the ASCII header.
    RawBytes,
    Binary,
    PercentEncoded,
}

fn as_wang_fang<T>(message: T, naming: Naming) -> tonic::Request<T> {
    let mut request = authed(message, EDITOR_KEY);
    let metadata = request.metadata_mut();
    match naming {
        Naming::RawBytes => {
            let bytes = AsciiMetadataValue::try_from("王芳".as_bytes()).expect("obs-text header");
            metadata.insert("x-actor", bytes);
        }
        Naming::Binary => {
            let name = BinaryMetadataValue::from_bytes("王芳".as_bytes());
            metadata.insert_bin("x-actor-bin", name);
        }
        Naming::PercentEncoded => {
            let name = AsciiMetadataValue::from_static("%E7%8E%8B%E8%8A%B3");
            metadata.insert("x-actor", name);
        }
    }
    request
}

fn draft() -> pb::CreateArticleRequest {
    create("停水通知", "<p>本周六停水。</p>", pb::Channel::Freepublish)
}

async fn trail_actors(app: &TestApp, id: &str) -> Vec<String> {
    app.client
        .clone()
        .get_article(authed(pb::GetArticleRequest { id: id.into() }, EDITOR_KEY))
        .await
        .expect("read")
        .into_inner()
        .audit
        .into_iter()
        .map(|a| a.actor)
        .collect()
}

#[tokio::test]
async fn a_chinese_name_in_x_actor_is_refused_and_arrives_as_x_actor_bin_or_percent_encoded() {
    let app = spawn_app().await;
    let mut client = app.client.clone();

    let refused = client
        .create_article(as_wang_fang(draft(), Naming::RawBytes))
        .await
        .expect_err("refused, not created by the department");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("x-actor-bin"),
        "{}",
        refused.message()
    );

    for naming in [Naming::Binary, Naming::PercentEncoded] {
        let created = client
            .create_article(as_wang_fang(draft(), naming))
            .await
            .expect("created by 王芳")
            .into_inner();
        assert_eq!(created.author_id, "press:王芳");
        client
            .submit_article(as_wang_fang(article(&created.id), naming))
            .await
            .expect("submitted by 王芳");
        assert_eq!(trail_actors(&app, &created.id).await, ["press:王芳"]);
    }
    app.stop().await;
}
