//! What an article's history answers: which version each reviewer passed, with
//! everything that version would have sent (cover, 阅读原文 link, comment flags),
//! and who or what moved it on the way out.

use proto::content::v1 as pb;
use wechat_sim::api_server::AccountKind;

use crate::articles::{approve, article, create, spawn_stack};
use crate::helpers::{AUTHOR_KEY, REVIEWER_KEY, by};

#[tokio::test]
async fn the_version_a_reviewer_passed_keeps_its_cover_link_and_comment_flags_after_an_edit() {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let mut request = create("停水通知", "<p>本周六停水。</p>", pb::Channel::Freepublish);
    if let Some(content) = request.content.as_mut() {
        content.source_url = "https://water.example.gov.cn/notice/1".into();
        content.open_comment = true;
        content.only_fans_can_comment = true;
    }
    let id = client
        .create_article(by(request, AUTHOR_KEY, "li"))
        .await
        .expect("created")
        .into_inner()
        .id;
    client
        .submit_article(by(article(&id), AUTHOR_KEY, "li"))
        .await
        .expect("submitted");
    client
        .review_article(by(approve(&id), REVIEWER_KEY, "wang"))
        .await
        .expect("王 passes version 1");
    client
        .review_article(by(
            pb::ReviewArticleRequest {
                approve: false,
                comment: "链接有误".into(),
                ..approve(&id)
            },
            REVIEWER_KEY,
            "zhao",
        ))
        .await
        .expect("赵 rejects it");
    // 李 changes the cover, the link and the comment flags, not a word of the text.
    let mut edited = create("停水通知", "<p>本周六停水。</p>", pb::Channel::Freepublish)
        .content
        .expect("content");
    edited.cover_media_id = "MEDIA_COVER_2".into();
    edited.source_url = "https://water.example.gov.cn/notice/2".into();
    client
        .update_article(by(
            pb::UpdateArticleRequest {
                id: id.clone(),
                content: Some(edited),
            },
            AUTHOR_KEY,
            "li",
        ))
        .await
        .expect("edited");

    let detail = client
        .get_article(by(
            pb::GetArticleRequest { id: id.clone() },
            REVIEWER_KEY,
            "sun",
        ))
        .await
        .expect("read")
        .into_inner();
    assert_eq!(detail.last_reviewed_version, 1);
    assert!(detail.last_reviewed_settings_recorded);
    let passed = detail.last_reviewed_content.expect("version 1 differs");
    assert_eq!(
        (
            passed.cover_media_id.as_str(),
            passed.source_url.as_str(),
            passed.open_comment,
            passed.only_fans_can_comment,
        ),
        (
            "MEDIA_COVER_1",
            "https://water.example.gov.cn/notice/1",
            true,
            true
        )
    );
    stack.app.stop().await;
}
