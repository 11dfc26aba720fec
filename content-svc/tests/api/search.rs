//! Search: documents holding all the query's words come first, then those holding
//! the parts of a word jieba keeps whole, then any of them; within each, title hits
//! above keyword hits above body hits, services first, then the newest; and the
//! narrow headline table follows every write of the index (directory changes, bulk
//! loads, removals).

use proto::content::v1 as pb;

use crate::helpers::{ADMIN_KEY, TestApp, authed, spawn_app};

fn service(name: &str, description: &str) -> pb::Service {
    pb::Service {
        account: "chenzhou".into(),
        category: "social_security".into(),
        name: name.into(),
        description: description.into(),
        how_to_apply: "携带身份证到服务窗口办理".into(),
        url: "https://hrss.example.gov.cn/".into(),
        enabled: true,
        ..pb::Service::default()
    }
}

async fn titles(app: &TestApp, account: &str, query: &str) -> Vec<String> {
    app.client
        .clone()
        .search(authed(
            pb::SearchRequest {
                account: account.into(),
                query: query.into(),
                ..pb::SearchRequest::default()
            },
            ADMIN_KEY,
        ))
        .await
        .expect("search")
        .into_inner()
        .hits
        .into_iter()
        .map(|h| h.title)
        .collect()
}

/// The accounts `search_headlines` holds a document for.
async fn headline_accounts(app: &TestApp, id: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT account FROM search_headlines WHERE ref_id = $1::uuid ORDER BY account",
    )
    .bind(id)
    .fetch_all(&app.db)
    .await
    .expect("headline rows")
}

#[tokio::test]
async fn all_words_rank_above_any_word_and_the_headline_table_follows_each_change() {
    let app = spawn_app().await;
    let mut client = app.client.clone();
    let create = |s: pb::Service| {
        let mut client = client.clone();
        async move {
            client
                .create_service(authed(s, ADMIN_KEY))
                .await
                .expect("created")
                .into_inner()
        }
    };
    let card = create(pb::Service {
        also_shown_on: vec!["chenzhou_gov".into()],
        ..service("社保卡补办", "社会保障卡遗失或损坏后补办新卡")
    })
    .await;
    // One word of the query in its title, none in its body.
    let licence = create(service("驾驶证补办", "驾驶证遗失后申请补领")).await;
    // Both words, in the body only.
    let pension = create(service(
        "养老金领取",
        "退休后按月领取养老金；社保卡遗失的请先补办",
    ))
    .await;
    assert_eq!(
        headline_accounts(&app, &card.id).await,
        ["chenzhou", "chenzhou_gov"]
    );

    // All words in the title, then all words in the body, then one word in a title
    // (an OR of the words would have put 驾驶证补办 second).
    assert_eq!(
        titles(&app, "chenzhou", "社保卡补办").await,
        ["社保卡补办", "养老金领取", "驾驶证补办"]
    );
    // The synonym stands for the word in the AND as well.
    assert_eq!(
        titles(&app, "chenzhou", "社会保障卡补办").await.first(),
        Some(&"社保卡补办".to_owned())
    );
    assert_eq!(
        titles(&app, "chenzhou_gov", "社保卡补办").await,
        ["社保卡补办"]
    );

    // Renamed, disabled, re-enabled, no longer shown on the second account, deleted:
    // the headline table says what search_documents says.
    let mut edit = service("社保卡补领", "社会保障卡遗失或损坏后补领新卡");
    edit.id = card.id.clone();
    edit.also_shown_on = vec!["chenzhou_gov".into()];
    client
        .update_service(authed(edit.clone(), ADMIN_KEY))
        .await
        .expect("renamed");
    assert_eq!(
        titles(&app, "chenzhou", "社保卡补领").await.first(),
        Some(&"社保卡补领".to_owned())
    );
    edit.enabled = false;
    client
        .update_service(authed(edit.clone(), ADMIN_KEY))
        .await
        .expect("disabled");
    assert!(headline_accounts(&app, &card.id).await.is_empty());
    assert!(
        !titles(&app, "chenzhou", "社保卡补领")
            .await
            .contains(&"社保卡补领".to_owned())
    );
    edit.enabled = true;
    edit.also_shown_on = vec![];
    client
        .update_service(authed(edit, ADMIN_KEY))
        .await
        .expect("enabled again");
    assert_eq!(headline_accounts(&app, &card.id).await, ["chenzhou"]);
    assert!(titles(&app, "chenzhou_gov", "社保卡补领").await.is_empty());
    for id in [&card.id, &licence.id, &pension.id] {
        client
            .delete_service(authed(pb::ServiceRef { id: id.clone() }, ADMIN_KEY))
            .await
            .expect("deleted");
        assert!(headline_accounts(&app, id).await.is_empty());
    }
    assert!(titles(&app, "chenzhou", "补办").await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn bulk_loaded_and_removed_documents_are_found_and_then_not() {
    use content_svc::domain::search::Segmenter;
    use content_svc::store::search::{IndexDoc, insert_many, remove};

    let app = spawn_app().await;
    let segmenter = Segmenter::default();
    let ids: Vec<uuid::Uuid> = (0..3).map(|_| uuid::Uuid::now_v7()).collect();
    let titles_in = ["关于停水的通知", "停电检修通知", "垃圾分类指南"];
    let docs: Vec<IndexDoc<'_>> = ids
        .iter()
        .zip(titles_in)
        .map(|(id, title)| IndexDoc {
            kind: "article",
            ref_id: *id,
            accounts: vec!["chenzhou".into()],
            category: "",
            title,
            summary: title,
            url: "https://mp.weixin.qq.com/s/x",
            enabled: true,
            title_words: segmenter.indexable(title),
            keyword_words: String::new(),
            body_words: segmenter.indexable("请市民相互转告"),
        })
        .collect();
    let mut tx = app.db.begin().await.expect("tx");
    assert_eq!(insert_many(&mut tx, &docs).await.expect("inserted"), 3);
    tx.commit().await.expect("commit");
    let found = titles(&app, "chenzhou", "通知").await;
    assert_eq!(found.len(), 2, "{found:?}");
    // Two words, only one title holds both; the other is found by either word.
    assert_eq!(
        titles(&app, "chenzhou", "停水通知").await,
        ["关于停水的通知", "停电检修通知"]
    );

    let mut tx = app.db.begin().await.expect("tx");
    remove(&mut tx, "article", ids[0]).await.expect("removed");
    tx.commit().await.expect("commit");
    assert_eq!(titles(&app, "chenzhou", "通知").await, ["停电检修通知"]);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM search_headlines")
        .fetch_one(&app.db)
        .await
        .expect("count");
    assert_eq!(rows, 2);
    app.stop().await;
}

/// Bulk-indexes articles (oldest first: each gets a newer UUIDv7) with a title,
/// a digest (keywords) and a body, and returns their ids.
async fn index_articles(app: &TestApp, docs: &[(&str, &str, &str)]) -> Vec<uuid::Uuid> {
    use content_svc::domain::search::Segmenter;
    use content_svc::store::search::{IndexDoc, insert_many};

    let segmenter = Segmenter::default();
    let ids: Vec<uuid::Uuid> = docs.iter().map(|_| uuid::Uuid::now_v7()).collect();
    let rows: Vec<IndexDoc<'_>> = ids
        .iter()
        .zip(docs)
        .map(|(id, (title, digest, body))| IndexDoc {
            kind: "article",
            ref_id: *id,
            accounts: vec!["chenzhou".into()],
            category: "",
            title,
            summary: digest,
            url: "https://mp.weixin.qq.com/s/x",
            enabled: true,
            title_words: segmenter.indexable(title),
            keyword_words: segmenter.indexable(digest),
            body_words: segmenter.indexable(body),
        })
        .collect();
    let mut tx = app.db.begin().await.expect("tx");
    insert_many(&mut tx, &rows).await.expect("inserted");
    tx.commit().await.expect("commit");
    ids
}

#[tokio::test]
async fn title_hits_come_before_keyword_hits_before_body_hits_services_first_then_newest() {
    let app = spawn_app().await;
    // The service first, so it is the oldest document.
    app.client
        .clone()
        .create_service(authed(
            service("垃圾分类投放点查询", "查询附近的投放点"),
            ADMIN_KEY,
        ))
        .await
        .expect("created");
    // Then oldest to newest; every one holds 垃圾分类 somewhere.
    index_articles(
        &app,
        &[
            ("垃圾分类指南", "", "请市民相互转告"),
            ("社区新闻", "本月垃圾分类检查结果", "请市民相互转告"),
            ("周末活动", "", "文明城市建设，垃圾分类从我做起"),
            ("垃圾分类新规", "", "请市民相互转告"),
        ],
    )
    .await;

    // Titles (the service first, then the articles newest first), the digest, the
    // body.
    assert_eq!(
        titles(&app, "chenzhou", "垃圾分类").await,
        [
            "垃圾分类投放点查询",
            "垃圾分类新规",
            "垃圾分类指南",
            "社区新闻",
            "周末活动"
        ]
    );
    app.stop().await;
}

#[tokio::test]
async fn a_word_no_document_holds_whole_finds_documents_holding_its_parts_first() {
    let app = spawn_app().await;
    // jieba keeps 停电通知 as one word; no title here holds it whole.
    index_articles(
        &app,
        &[
            ("关于城东停电检修的通知", "", "请市民相互转告"),
            ("停电检修安排", "", "请市民相互转告"),
            ("放假通知", "", "请市民相互转告"),
        ],
    )
    .await;
    // The one holding both parts, then those holding either, newest first.
    assert_eq!(
        titles(&app, "chenzhou", "停电通知").await,
        ["关于城东停电检修的通知", "放假通知", "停电检修安排"]
    );
    app.stop().await;
}
