//! The lexicon over gRPC: admins change it (audited), every replica screens with the
//! change at once, and bad entries are refused naming what is wrong.

use content_svc::app::lexicon::Lexicon;
use proto::content::v1 as pb;
use tonic::Code;

use crate::helpers::{ADMIN_KEY, AUTHOR_KEY, REVIEWER_KEY, authed, by, spawn_app};

fn entry(word: &str, category: &str) -> pb::LexiconEntry {
    pb::LexiconEntry {
        word: word.into(),
        category: category.into(),
    }
}

#[tokio::test]
async fn a_word_an_admin_adds_is_flagged_by_every_replica_until_it_is_removed() {
    let app = spawn_app().await;
    let mut client = app.client.clone();
    // Another replica's view of the same database.
    let other_replica = Lexicon::new(app.db.clone());
    assert!(
        other_replica
            .screener()
            .await
            .unwrap()
            .screen("body", "鼓励刷票拉票")
            .is_empty()
    );

    let refused = client
        .put_lexicon_entry(authed(entry("刷票", "fraud"), REVIEWER_KEY))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let bad = client
        .put_lexicon_entry(authed(entry("刷票", "gossip"), ADMIN_KEY))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().starts_with("category"), "{}", bad.message());

    client
        .put_lexicon_entry(authed(entry("刷票", "fraud"), ADMIN_KEY))
        .await
        .expect("added");
    let hits = other_replica
        .screener()
        .await
        .unwrap()
        .screen("body", "鼓励刷 票拉票");
    assert_eq!(hits.len(), 1);
    let created = client
        .create_article(by(
            pb::CreateArticleRequest {
                account: "demo".into(),
                content: Some(pb::ArticleContent {
                    title: "评选活动".into(),
                    body: "<p>严禁刷票。</p>".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            AUTHOR_KEY,
            "li",
        ))
        .await
        .expect("created")
        .into_inner();
    assert_eq!(created.hits.len(), 1);
    assert_eq!(created.hits[0].category, "fraud");

    let listed = client
        .list_lexicon(authed(
            pb::ListLexiconRequest {
                category: "fraud".into(),
            },
            REVIEWER_KEY,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.entries.iter().any(|e| e.word == "刷票"));

    let deleted = client
        .delete_lexicon_entry(authed(
            pb::DeleteLexiconEntryRequest {
                word: "刷票".into(),
            },
            ADMIN_KEY,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(deleted.deleted);
    assert!(
        other_replica
            .screener()
            .await
            .unwrap()
            .screen("body", "鼓励刷票")
            .is_empty()
    );
    let trail: Vec<(String, String)> =
        sqlx::query_as("SELECT action, actor FROM lexicon_audit WHERE word = '刷票' ORDER BY id")
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(
        trail,
        [("put", "city-office"), ("delete", "city-office")]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    app.stop().await;
}
