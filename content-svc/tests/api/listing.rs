//! ListArticles' pages: a walk lists every article once, whatever changes meanwhile.

use proto::content::v1 as pb;
use tonic::Code;

use crate::articles::{article, create};
use crate::helpers::{EDITOR_KEY, by, spawn_app};

fn page(token: &str, size: u32) -> pb::ListArticlesRequest {
    pb::ListArticlesRequest {
        account: "demo".into(),
        page_size: size,
        page_token: token.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn an_article_submitted_while_a_program_pages_through_is_listed_exactly_once() {
    let app = spawn_app().await;
    let mut client = app.client.clone();
    let mut created = Vec::new();
    for title in ["停水通知", "停电通知", "停气通知"] {
        let id = client
            .create_article(by(
                create(title, "<p>本周六检修。</p>", pb::Channel::Freepublish),
                EDITOR_KEY,
                "wu",
            ))
            .await
            .expect("created")
            .into_inner()
            .id;
        created.push(id);
    }
    let oldest = created[0].clone();

    let mut seen = Vec::new();
    let mut token = String::new();
    for round in 0.. {
        assert!(round < 10, "the walk does not end: {seen:?}");
        let listed = client
            .list_articles(by(page(&token, 1), EDITOR_KEY, "wu"))
            .await
            .expect("listed")
            .into_inner();
        seen.extend(listed.articles.into_iter().map(|a| a.id));
        if round == 0 {
            // Reviewed or submitted meanwhile, it must not jump past the walk.
            client
                .submit_article(by(article(&oldest), EDITOR_KEY, "wu"))
                .await
                .expect("submitted");
        }
        if listed.next_page_token.is_empty() {
            break;
        }
        token = listed.next_page_token;
    }

    let mut expected = created.clone();
    expected.reverse();
    assert_eq!(seen, expected, "newest created first, each once");
    app.stop().await;
}

#[tokio::test]
async fn a_page_above_200_or_a_token_of_the_order_by_last_change_is_refused() {
    let app = spawn_app().await;
    let mut client = app.client.clone();

    let too_large = client
        .list_articles(by(page("", 201), EDITOR_KEY, "wu"))
        .await
        .expect_err("refused");
    assert_eq!(too_large.code(), Code::InvalidArgument);
    assert_eq!(
        too_large.message(),
        "page_size must be at most 200 (asked for 201)"
    );
    client
        .list_articles(by(page("", 200), EDITOR_KEY, "wu"))
        .await
        .expect("200 is served");

    // What the service issued when it listed by last change: (updated_at, id).
    let old = format!("1796000000000000_{}", uuid::Uuid::new_v4());
    let refused = client
        .list_articles(by(page(&old, 10), EDITOR_KEY, "wu"))
        .await
        .expect_err("refused");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("list again from the first page"),
        "{}",
        refused.message()
    );
    app.stop().await;
}
