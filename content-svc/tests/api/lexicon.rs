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

#[tokio::test]
async fn two_changes_committing_out_of_order_are_both_screened_by_a_replica_that_read_between() {
    let app = spawn_app().await;
    let replica = Lexicon::new(app.db.clone());
    // One change is open (it has its audit id) while another is made and committed.
    let mut first = app.db.begin().await.unwrap();
    content_svc::store::lexicon::put(&mut first, "刷票", "fraud", "admin")
        .await
        .unwrap();
    let db = app.db.clone();
    let second = tokio::spawn(async move {
        let mut tx = db.begin().await.unwrap();
        content_svc::store::lexicon::put(&mut tx, "拉票", "fraud", "admin")
            .await
            .unwrap();
        tx.commit().await.unwrap();
    });
    // The second change has committed, or waits for the first.
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *first)
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let waiting: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_locks
                             WHERE locktype = 'advisory' AND NOT granted
                               AND $1 = ANY (pg_blocking_pids(pid)))",
        )
        .bind(pid)
        .fetch_one(&app.db)
        .await
        .unwrap();
        if waiting || second.is_finished() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the second change neither committed nor waited"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // A replica screens in between, then the first change commits.
    replica.screener().await.unwrap();
    first.commit().await.unwrap();
    second.await.unwrap();

    let screener = replica.screener().await.unwrap();
    assert_eq!(
        screener.screen("body", "鼓励刷票").len(),
        1,
        "the first change"
    );
    assert_eq!(
        screener.screen("body", "拉票").len(),
        1,
        "the second change"
    );
}

fn delete(word: &str) -> pb::DeleteLexiconEntryRequest {
    pb::DeleteLexiconEntryRequest { word: word.into() }
}

async fn stored(app: &crate::helpers::TestApp) -> Vec<(String, String)> {
    sqlx::query_as("SELECT word, category FROM lexicon_entries ORDER BY word")
        .fetch_all(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_word_that_normalises_to_an_entry_is_that_entry_refused_by_name_and_deleted_with_it() {
    let app = spawn_app().await;
    let mut client = app.client.clone();
    client
        .put_lexicon_entry(authed(entry("翻墙", "fraud"), ADMIN_KEY))
        .await
        .expect("added");
    // Its traditional form, allowed: it would have let the flagged word through
    // everywhere, the screener keeping one pattern for both.
    let refused = client
        .put_lexicon_entry(authed(entry("翻牆", "allow"), ADMIN_KEY))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::AlreadyExists, "{}", refused.message());
    assert!(
        refused.message().contains("「翻墙」 (fraud)"),
        "{}",
        refused.message()
    );
    // Another case or width of it, too.
    client
        .put_lexicon_entry(authed(entry("ＳＨＵＡ刷票", "fraud"), ADMIN_KEY))
        .await
        .expect("a new word");
    let refused = client
        .put_lexicon_entry(authed(entry("shua刷票", "vulgar"), ADMIN_KEY))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::AlreadyExists, "{}", refused.message());
    assert!(
        refused.message().contains("「ＳＨＵＡ刷票」 (fraud)"),
        "{}",
        refused.message()
    );
    // The entry itself, as stored, is recategorised as before.
    client
        .put_lexicon_entry(authed(entry("翻墙", "political"), ADMIN_KEY))
        .await
        .expect("recategorised");
    let mut expected = [("ＳＨＵＡ刷票", "fraud"), ("翻墙", "political")]
        .map(|(w, c)| (w.to_owned(), c.to_owned()))
        .to_vec();
    expected.sort();
    // Beside the starter lexicon's entries.
    let mut entries = stored(&app).await;
    entries
        .retain(|(word, _)| ["翻墙", "翻牆", "ＳＨＵＡ刷票", "shua刷票"].contains(&word.as_str()));
    entries.sort();
    assert_eq!(entries, expected);

    // Deleted by any spelling of it: the entry screening used is gone.
    let deleted = client
        .delete_lexicon_entry(authed(delete("shua刷票"), ADMIN_KEY))
        .await
        .unwrap()
        .into_inner();
    assert!(deleted.deleted);
    let other_replica = Lexicon::new(app.db.clone());
    assert!(
        other_replica
            .screener()
            .await
            .unwrap()
            .screen("body", "加SHUA刷票")
            .is_empty()
    );
    app.stop().await;
}

#[tokio::test]
async fn rows_of_one_normalised_word_stored_before_are_all_deleted_by_either_spelling() {
    let app = spawn_app().await;
    let mut client = app.client.clone();
    // As an earlier release stored them: two rows, one pattern.
    let mut tx = app.db.begin().await.unwrap();
    for word in ["VPN加速", "vpn加速"] {
        content_svc::store::lexicon::put(&mut tx, word, "political", "admin")
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let deleted = client
        .delete_lexicon_entry(authed(delete("vpn加速"), ADMIN_KEY))
        .await
        .unwrap()
        .into_inner();
    assert!(deleted.deleted);
    let screener = Lexicon::new(app.db.clone()).screener().await.unwrap();
    assert!(
        screener.screen("body", "用VPN加速").is_empty(),
        "said deleted, still screened"
    );
    assert!(
        !stored(&app).await.iter().any(|(w, _)| w.ends_with("加速")),
        "{:?}",
        stored(&app).await
    );
    app.stop().await;
}

#[tokio::test]
async fn listing_an_unknown_category_is_refused_naming_the_categories() {
    let app = spawn_app().await;
    let refused = app
        .client
        .clone()
        .list_lexicon(authed(
            pb::ListLexiconRequest {
                category: "politcal".into(),
            },
            REVIEWER_KEY,
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("politcal")
            && refused
                .message()
                .contains("political, violence, vulgar, advertising, fraud, wrong, allow"),
        "{}",
        refused.message()
    );
    let allowed = app
        .client
        .clone()
        .list_lexicon(authed(
            pb::ListLexiconRequest {
                category: "allow".into(),
            },
            REVIEWER_KEY,
        ))
        .await
        .expect("the allowlist is a category")
        .into_inner();
    assert!(!allowed.entries.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_lexicon_file_naming_a_word_twice_starts_and_screens_it_with_the_later_line() {
    // An install's file with a repeated line, as earlier releases loaded it (each
    // line an upsert, the later one winning): an upgrade must still start.
    let path = std::env::temp_dir().join(format!("lexicon-{}.tsv", uuid::Uuid::new_v4()));
    std::fs::write(
        &path,
        "fraud\t刷票\n# again, recategorised\nadvertising\t刷票\npolitical\tVPN\nvulgar\tvpn\n",
    )
    .unwrap();
    let app = crate::helpers::spawn_app_with(
        platform::testing::TestNats::new(),
        &[("CONTENT_LEXICON_FILE", path.to_str().unwrap())],
    )
    .await;
    std::fs::remove_file(&path).ok();
    let screener = Lexicon::new(app.db.clone()).screener().await.unwrap();
    let found: Vec<_> = screener
        .screen("body", "鼓励刷票，用VPN")
        .into_iter()
        .map(|hit| (hit.text, hit.category.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            ("刷票".to_owned(), "advertising"),
            ("VPN".to_owned(), "vulgar")
        ]
    );
    assert_eq!(
        stored(&app).await,
        [
            ("vpn".to_owned(), "vulgar".to_owned()),
            ("刷票".to_owned(), "advertising".to_owned())
        ]
    );
    app.stop().await;
}
