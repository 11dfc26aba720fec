//! Search: documents holding all the query's words come first, then those holding
//! the parts of a word jieba keeps whole, then any of them; within each, title hits
//! above keyword hits above body hits, services first, then the newest; and the
//! narrow headline table follows every write of the index (directory changes, bulk
//! loads, removals).

use proto::content::v1 as pb;

use platform::testing::TestNats;

use crate::helpers::{ADMIN_KEY, TestApp, authed, spawn_app, spawn_app_arranged, spawn_app_with};

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
    titles_up_to(app, account, query, 0).await
}

/// The titles found, at most `limit` (0: the default).
async fn titles_up_to(app: &TestApp, account: &str, query: &str, limit: u32) -> Vec<String> {
    app.client
        .clone()
        .search(authed(
            pb::SearchRequest {
                account: account.into(),
                query: query.into(),
                limit,
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
    let app = spawn_app().await;
    let ids = index_articles(
        &app,
        &[
            ("关于停水的通知", "", "请市民相互转告"),
            ("停电检修通知", "", "请市民相互转告"),
            ("垃圾分类指南", "", "请市民相互转告"),
        ],
    )
    .await;
    let found = titles(&app, "chenzhou", "通知").await;
    assert_eq!(found.len(), 2, "{found:?}");
    // Two words, only one title holds both; the other is found by either word.
    assert_eq!(
        titles(&app, "chenzhou", "停水通知").await,
        ["关于停水的通知", "停电检修通知"]
    );

    remove_article(&app, ids[0]).await;
    assert_eq!(titles(&app, "chenzhou", "通知").await, ["停电检修通知"]);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM search_headlines")
        .fetch_one(&app.db)
        .await
        .expect("count");
    assert_eq!(rows, 2);
    app.stop().await;
}

/// Takes an article out of the index, as a retraction does.
async fn remove_article(app: &TestApp, id: uuid::Uuid) {
    let mut tx = app.db.begin().await.expect("tx");
    content_svc::store::search::remove(&mut tx, "article", id)
        .await
        .expect("removed");
    tx.commit().await.expect("commit");
}

/// Bulk-indexes articles (oldest first: each gets a newer UUIDv7) with a title,
/// a digest (keywords) and a body, and returns their ids.
async fn index_articles(app: &TestApp, docs: &[(&str, &str, &str)]) -> Vec<uuid::Uuid> {
    index_articles_on(app, "chenzhou", docs).await
}

/// [`index_articles`] on `account`.
pub(crate) async fn index_articles_on(
    app: &TestApp,
    account: &str,
    docs: &[(&str, &str, &str)],
) -> Vec<uuid::Uuid> {
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
            accounts: vec![account.into()],
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
    let inserted = insert_many(&mut tx, &rows).await.expect("inserted");
    assert_eq!(inserted, rows.len() as u64);
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

/// The `/metrics` text of the admin port.
async fn metrics(app: &TestApp) -> String {
    reqwest::get(format!("http://127.0.0.1:{}/metrics", app.admin_port))
        .await
        .expect("admin port answers")
        .text()
        .await
        .expect("metrics text")
}

/// How many searches `index` (memory or database) answered, per the metrics.
fn answered_by(metrics: &str, index: &str) -> u64 {
    let prefix = format!("content_search_queries_total{{index=\"{index}\"}} ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(prefix.as_str()))
        .map_or(0, |n| n.trim().parse().expect("a count"))
}

/// That the searches so far were answered `memory` times from memory and `database`
/// times by PostgreSQL.
async fn assert_answered(app: &TestApp, memory: u64, database: u64) {
    let metrics = metrics(app).await;
    let answered = (
        answered_by(&metrics, "memory"),
        answered_by(&metrics, "database"),
    );
    assert_eq!(answered, (memory, database), "{metrics}");
}

#[tokio::test]
async fn a_search_from_memory_sees_every_change_committed_before_it() {
    let app = spawn_app().await;
    // Written by another "replica": straight into the database, announced only by
    // the trigger; the search right after must wait for it, not miss it.
    let ids = index_articles(&app, &[("暴雨预警", "", "请市民注意防范")]).await;
    assert_eq!(titles(&app, "chenzhou", "暴雨").await, ["暴雨预警"]);
    let created = app
        .client
        .clone()
        .create_service(authed(service("暴雨避险指南", "避险场所查询"), ADMIN_KEY))
        .await
        .expect("created")
        .into_inner();
    assert_eq!(
        titles(&app, "chenzhou", "暴雨").await,
        ["暴雨避险指南", "暴雨预警"]
    );
    remove_article(&app, ids[0]).await;
    assert_eq!(titles(&app, "chenzhou", "暴雨").await, ["暴雨避险指南"]);
    app.client
        .clone()
        .delete_service(authed(
            pb::ServiceRef {
                id: created.id.clone(),
            },
            ADMIN_KEY,
        ))
        .await
        .expect("deleted");
    assert!(titles(&app, "chenzhou", "暴雨").await.is_empty());

    assert_answered(&app, 4, 0).await;
    app.stop().await;
}

#[tokio::test]
async fn with_the_index_in_memory_off_every_search_asks_the_database() {
    let app = spawn_app_with(TestNats::new(), &[("CONTENT_SEARCH_IN_MEMORY", "false")]).await;
    index_articles(&app, &[("暴雨预警", "", "请市民注意防范")]).await;
    assert_eq!(titles(&app, "chenzhou", "暴雨预警").await, ["暴雨预警"]);
    assert_answered(&app, 0, 1).await;
    app.stop().await;
}

/// The in-memory index must answer every stage of every query exactly as the
/// database's statement does: the same documents, in the same order, at the same
/// tier. Over the 临城市 directory and articles that hold the queries' words in
/// their titles, digests and bodies, for every filter the API offers.
#[tokio::test]
async fn the_index_in_memory_answers_every_stage_as_the_database_does() {
    use content_svc::domain::search::{SearchFilter, SearchQuery, Segmenter};
    use content_svc::domain::search_index::SearchIndex;
    use content_svc::store::search::{load_all, search};

    let seed = concat!(env!("CARGO_MANIFEST_DIR"), "/seed/lincheng-directory.tsv");
    let app = spawn_app_with(TestNats::new(), &[("CONTENT_DIRECTORY_FILE", seed)]).await;
    // The seed's account, and its largest category.
    let (account, category): (String, String) = sqlx::query_as(
        "SELECT account, category FROM directory_entries
          GROUP BY account, category ORDER BY count(*) DESC LIMIT 1",
    )
    .fetch_one(&app.db)
    .await
    .expect("a seeded service");
    let topics = [
        "社保卡补办",
        "住房公积金提取",
        "医疗保险报销",
        "停电检修",
        "交通违法处理",
        "户口迁移",
    ];
    let forms = ["关于{}的通知", "{}常见问题", "本周要闻"];
    let mut articles: Vec<(String, String, String)> = Vec::new();
    for (i, topic) in topics.iter().enumerate() {
        for (j, form) in forms.iter().enumerate() {
            let other = topics[(i + j + 1) % topics.len()];
            articles.push((
                form.replace("{}", topic),
                format!("{other}有关事项"),
                format!("为做好{topic}和{other}工作，现将停水通知如下，请市民相互转告"),
            ));
        }
    }
    let borrowed: Vec<(&str, &str, &str)> = articles
        .iter()
        .map(|(t, d, b)| (t.as_str(), d.as_str(), b.as_str()))
        .collect();
    index_articles_on(&app, &account, &borrowed).await;

    let mut index = SearchIndex::new();
    load_all(&app.db, |doc| index.upsert(doc))
        .await
        .expect("loaded");
    let words = content_svc::store::services::dictionary_words(&app.db)
        .await
        .expect("dictionary");
    let segmenter = Segmenter::new(words.iter().map(String::as_str));
    let filters = [
        (account.as_str(), None, None),
        (account.as_str(), Some("service"), None),
        (account.as_str(), Some("article"), None),
        (account.as_str(), None, Some(category.as_str())),
        (account.as_str(), Some("article"), Some(category.as_str())),
        ("nobody", None, None),
    ];
    let mut compared = 0;
    let mut nonempty = 0;
    let mut tiers = std::collections::BTreeSet::new();
    for raw in [
        "社保卡补办",
        "社保卡丢了怎么补办",
        "公积金怎么提取",
        "医保报销",
        "停电通知",
        "通知",
        "违章处理",
        "户籍",
        "怎么办",
        "营业执照",
    ] {
        let query = SearchQuery::parse(&segmenter, raw).expect("a query");
        let stages = [
            Some(query.match_all()),
            query.match_split(),
            Some(query.match_any()),
        ];
        for matching in stages.iter().flatten() {
            for (account, kind, category) in filters {
                for limit in [3, 50] {
                    let filter = SearchFilter {
                        account,
                        kind,
                        category,
                        limit,
                    };
                    let expected: Vec<(String, uuid::Uuid, f32)> =
                        search(&app.db, &matching.tsquery(), &filter)
                            .await
                            .expect("searched")
                            .into_iter()
                            .map(|r| (r.kind, r.ref_id, r.rank))
                            .collect();
                    let got: Vec<(String, uuid::Uuid, f32)> = index
                        .search(matching, &filter)
                        .into_iter()
                        .map(|h| (h.kind.as_str().to_owned(), h.ref_id, f32::from(h.level)))
                        .collect();
                    assert_eq!(got, expected, "{raw} {matching:?} {filter:?}");
                    compared += 1;
                    nonempty += usize::from(!expected.is_empty());
                    for (kind, _, rank) in &expected {
                        tiers.insert((kind.clone(), rank.to_string()));
                    }
                }
            }
        }
    }
    // Equal empty answers prove little: a third of the comparisons found something
    // (a third of the filters cannot: another account, articles of a category), and
    // both kinds were found at every tier.
    assert!(nonempty * 3 > compared, "{nonempty} of {compared}");
    let expected_tiers: std::collections::BTreeSet<(String, String)> = ["article", "service"]
        .into_iter()
        .flat_map(|kind| ["1", "2", "3"].map(|tier| (kind.to_owned(), tier.to_owned())))
        .collect();
    assert_eq!(tiers, expected_tiers);
    app.stop().await;
}

/// The value of a counter or gauge without labels, per the metrics (0 if absent).
fn metric(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .map_or(0, |n| n.trim().parse().expect("a number"))
}

#[tokio::test]
async fn a_lost_listening_connection_is_made_again_and_the_index_loaded_again() {
    let app = spawn_app().await;
    let m = metrics(&app).await;
    assert_eq!(metric(&m, "content_search_index_loads_total"), 1, "{m}");
    // The replica's listening connection dies (a PostgreSQL restart, a proxy's
    // timeout); announcements made meanwhile would be missed.
    let terminated: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .fetch_all(&app.db)
    .await
    .expect("terminated");
    assert_eq!(terminated, [true]);
    index_articles(&app, &[("燃气安全检查", "", "请配合入户检查")]).await;
    // Right meanwhile, from the database if need be; then from memory again once
    // the replica has listened and loaded again.
    assert_eq!(titles(&app, "chenzhou", "燃气").await, ["燃气安全检查"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while metric(&metrics(&app).await, "content_search_index_loads_total") < 2 {
        assert!(std::time::Instant::now() < deadline, "never loaded again");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let before = answered_by(&metrics(&app).await, "memory");
    assert_eq!(titles(&app, "chenzhou", "燃气").await, ["燃气安全检查"]);
    assert_eq!(answered_by(&metrics(&app).await, "memory"), before + 1);
    app.stop().await;
}

#[tokio::test]
async fn concurrent_searches_each_see_every_article_committed_before_they_began() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let app = Arc::new(spawn_app().await);
    let committed = Arc::new(AtomicUsize::new(0));
    let writing = {
        let (app, committed) = (app.clone(), committed.clone());
        tokio::spawn(async move {
            for _ in 0..30 {
                index_articles(&app, &[("防汛工作安排", "", "请市民关注汛情")]).await;
                committed.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    let mut searching = Vec::new();
    for _ in 0..8 {
        let (app, committed) = (app.clone(), committed.clone());
        searching.push(tokio::spawn(async move {
            let mut checked = 0;
            loop {
                let before = committed.load(Ordering::SeqCst);
                let found = titles_up_to(&app, "chenzhou", "防汛", 50).await.len();
                assert!(found >= before, "{found} found, {before} committed before");
                checked += 1;
                if before == 30 {
                    return checked;
                }
            }
        }));
    }
    writing.await.expect("writer");
    let mut searches = 0;
    for task in searching {
        searches += task.await.expect("searcher");
    }
    let metrics = metrics(&app).await;
    // Answered from memory, not by falling back to the database.
    assert_eq!(
        answered_by(&metrics, "memory"),
        searches as u64,
        "{metrics}"
    );
    match Arc::try_unwrap(app) {
        Ok(app) => app.stop().await,
        Err(_) => panic!("every task has ended"),
    }
}

#[tokio::test]
async fn a_change_never_announced_makes_the_replica_load_its_index_again() {
    let app = spawn_app().await;
    // A change committed without its announcement reaching this replica (a
    // connection dead without a word): the number moves, no NOTIFY comes.
    sqlx::query("ALTER TABLE search_documents DISABLE TRIGGER search_documents_announce")
        .execute(&app.db)
        .await
        .expect("trigger off");
    index_articles(&app, &[("森林防火通知", "", "严禁野外用火")]).await;
    sqlx::query("UPDATE search_version SET number = number + 1")
        .execute(&app.db)
        .await
        .expect("numbered");
    sqlx::query("ALTER TABLE search_documents ENABLE TRIGGER search_documents_announce")
        .execute(&app.db)
        .await
        .expect("trigger on");
    // The search waits for the change in vain, then asks the database: still right.
    assert_eq!(titles(&app, "chenzhou", "防火").await, ["森林防火通知"]);
    let m = metrics(&app).await;
    assert_eq!(metric(&m, "content_search_index_behind_total"), 1, "{m}");
    assert_eq!(answered_by(&m, "database"), 1, "{m}");
    // The replica listens and loads again, and answers from memory, with the change.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while metric(&metrics(&app).await, "content_search_index_loads_total") < 2 {
        assert!(std::time::Instant::now() < deadline, "never loaded again");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(titles(&app, "chenzhou", "防火").await, ["森林防火通知"]);
    assert_eq!(answered_by(&metrics(&app).await, "memory"), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_service_indexed_before_the_width_fold_is_found_after_the_refold() {
    let app = spawn_app().await;
    // A service the previous release indexed: its full-width name is in the index
    // as it segmented it then (here: not at all), until the refold indexes it again.
    app.insert_entry(crate::helpers::Entry {
        account: "chenzhou",
        category: "social_security",
        name: "１２３４５市民服务热线",
        department: "city-office",
        position: 1,
    })
    .await;
    // From the start (the service's own background refold of the fresh database
    // may still be running: whichever of the two does the page, it is done once).
    sqlx::query(
        "INSERT INTO search_refolds (reason) VALUES ('width_fold')
         ON CONFLICT (reason) DO UPDATE SET phase = 'service', after_id = NULL",
    )
    .execute(&app.db)
    .await
    .expect("refold pending");
    let segmenter = content_svc::domain::search::Segmenter::default();
    content_svc::app::search::refold_index(&app.db, &segmenter)
        .await
        .expect("refolded");
    for query in ["12345", "１２３４５"] {
        assert_eq!(
            titles(&app, "chenzhou", query).await,
            ["１２３４５市民服务热线"],
            "{query}"
        );
    }
    let again = content_svc::app::search::refold_index(&app.db, &segmenter)
        .await
        .expect("refold done");
    assert_eq!(again, 0, "once per install");
    app.stop().await;
}

#[tokio::test]
async fn a_service_indexed_before_the_traditional_fold_is_found_after_the_refold() {
    let app = spawn_app().await;
    // A service the previous release indexed with its traditional words as they were
    // (醫保, 報銷): a folded query asks for 医保 and 报销, which that entry lacks.
    app.insert_entry(crate::helpers::Entry {
        account: "chenzhou",
        category: "social_security",
        name: "醫保報銷指南",
        department: "city-office",
        position: 1,
    })
    .await;
    // Indexed by this release, then its words put back as the previous release
    // segmented them, unfolded.
    let segmenter = content_svc::domain::search::Segmenter::default();
    let rows = content_svc::store::services::page(&app.db, None, 100)
        .await
        .expect("services");
    let row = rows
        .iter()
        .find(|r| r.name == "醫保報銷指南")
        .expect("arranged");
    let mut tx = app.db.begin().await.expect("transaction");
    content_svc::app::search::index_service(&mut tx, &segmenter, row)
        .await
        .expect("indexed");
    sqlx::query(
        "UPDATE search_documents
            SET document = setweight(to_tsvector('simple', '醫保 報銷 指南'), 'A'),
                headline = setweight(to_tsvector('simple', '醫保 報銷 指南'), 'A')
          WHERE kind = 'service' AND ref_id = $1",
    )
    .bind(row.id)
    .execute(&mut *tx)
    .await
    .expect("indexed as the previous release did");
    tx.commit().await.expect("committed");
    // The marker 0036 left; from the start, as the service's own background refold
    // of the fresh database may still be running (whichever does a page, once).
    sqlx::query(
        "INSERT INTO search_refolds (reason) VALUES ('traditional_fold')
         ON CONFLICT (reason) DO UPDATE SET phase = 'service', after_id = NULL",
    )
    .execute(&app.db)
    .await
    .expect("refold pending");
    content_svc::app::search::refold_index(&app.db, &segmenter)
        .await
        .expect("refolded");
    assert_eq!(
        titles(&app, "chenzhou", "醫保報銷").await,
        ["醫保報銷指南"],
        "the traditional query finds the refolded service"
    );
    assert_eq!(titles(&app, "chenzhou", "医保报销").await, ["醫保報銷指南"]);
    let pending: i64 =
        sqlx::query_scalar("SELECT count(*) FROM search_refolds WHERE reason = 'traditional_fold'")
            .fetch_one(&app.db)
            .await
            .expect("count");
    assert_eq!(pending, 0, "the marker goes when the refold is done");
    app.stop().await;
}

#[tokio::test]
async fn a_category_label_or_a_department_finds_its_services() {
    let seed = concat!(env!("CARGO_MANIFEST_DIR"), "/seed/lincheng-directory.tsv");
    let app = spawn_app_with(TestNats::new(), &[("CONTENT_DIRECTORY_FILE", seed)]).await;
    // 户政 is a label of the hall's category bar, not a word of its services' text.
    let found = titles_up_to(&app, "lincheng", "户政", 50).await;
    for name in ["户口迁移", "居民身份证办理"] {
        assert!(
            found.iter().any(|t| t == name),
            "户政 finds {name}: {found:?}"
        );
    }
    let police: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM directory_entries
          WHERE account = 'lincheng' AND department = '临城市公安局' AND enabled",
    )
    .fetch_all(&app.db)
    .await
    .expect("the police's services");
    assert!(!police.is_empty());
    let found = titles_up_to(&app, "lincheng", "公安局", 50).await;
    for name in &police {
        assert!(found.contains(name), "公安局 finds {name}: {found:?}");
    }
    app.stop().await;
}

/// A service indexed before its category and department were (the previous
/// release) gets them with the refold of 0036.
#[tokio::test]
async fn a_service_indexed_before_labels_were_is_found_by_them_after_the_refold() {
    let app = spawn_app().await;
    app.insert_entry(crate::helpers::Entry {
        account: "chenzhou",
        category: "household_registration",
        name: "户口迁移",
        department: "郴州市公安局",
        position: 1,
    })
    .await;
    sqlx::query(
        "INSERT INTO search_refolds (reason) VALUES ('service_labels')
         ON CONFLICT (reason) DO UPDATE SET phase = 'service', after_id = NULL",
    )
    .execute(&app.db)
    .await
    .expect("refold pending");
    let segmenter = content_svc::domain::search::Segmenter::new(["户政", "郴州市公安局"]);
    content_svc::app::search::refold_index(&app.db, &segmenter)
        .await
        .expect("refolded");
    assert_eq!(titles(&app, "chenzhou", "户政").await, ["户口迁移"]);
    assert_eq!(titles(&app, "chenzhou", "公安局").await, ["户口迁移"]);
    app.stop().await;
}

#[tokio::test]
async fn a_one_character_query_finds_titles_and_categories_holding_it_services_first() {
    let seed = concat!(env!("CARGO_MANIFEST_DIR"), "/seed/lincheng-directory.tsv");
    let app = spawn_app_with(TestNats::new(), &[("CONTENT_DIRECTORY_FILE", seed)]).await;
    let found = titles_up_to(&app, "lincheng", "户", 50).await;
    assert!(
        found.iter().any(|t| t == "户口迁移"),
        "户 finds 户口迁移: {found:?}"
    );
    // 户政 is the category of 居民身份证办理, whose title lacks 户.
    assert!(
        found.iter().any(|t| t == "居民身份证办理"),
        "户 finds by category: {found:?}"
    );
    let many = titles_up_to(&app, "lincheng", "市", 50).await;
    assert!(
        !many.is_empty() && many.len() <= 20,
        "a bounded list: {}",
        many.len()
    );
    app.stop().await;
}

#[tokio::test]
async fn the_service_is_ready_before_the_width_refold_which_then_completes_in_the_background() {
    let article = uuid::Uuid::now_v7();
    // A published article the previous release indexed with its full-width words;
    // another replica holds the pending refold (as a long refold did for minutes).
    let app = spawn_app_arranged(TestNats::new(), &[], |db| async move {
        sqlx::query(
            "INSERT INTO articles (id, account, department, author_id, state, title, body, url)
             VALUES ($1, 'chenzhou', 'press', 'press:li', 'published', '１２３４５热线开通',
                     '<p>市民服务热线</p>', 'https://mp.weixin.qq.com/s/hotline')",
        )
        .bind(article)
        .execute(&db)
        .await
        .expect("published article arranged");
        let mut holder = db.begin().await.expect("transaction");
        sqlx::query("SELECT reason FROM search_refolds FOR UPDATE")
            .execute(&mut *holder)
            .await
            .expect("refold marker locked");
        holder
    });
    // Only a guard against a start-up that waits for the refold: it would wait forever.
    let (app, holder) = tokio::time::timeout(std::time::Duration::from_secs(120), app)
        .await
        .expect("content-svc is built while the refold waits for its lock");
    let readyz = reqwest::get(format!("http://127.0.0.1:{}/readyz", app.admin_port))
        .await
        .expect("admin port answers");
    assert_eq!(readyz.status(), 200);

    let mut changes = sqlx::postgres::PgListener::connect_with(&app.db)
        .await
        .expect("listener");
    changes
        .listen("search_documents_changed")
        .await
        .expect("listening");
    holder.rollback().await.expect("lock released");
    loop {
        let note = changes.recv().await.expect("announcement");
        if note.payload().starts_with(&format!("article {article} ")) {
            break;
        }
    }
    assert_eq!(
        titles(&app, "chenzhou", "12345").await,
        ["１２３４５热线开通"]
    );
    assert_eq!(
        titles(&app, "chenzhou", "１２３４５").await,
        ["１２３４５热线开通"]
    );
    // The traditional-fold refold (0036) follows the width fold's and indexes the
    // article once more: each marker goes when its refold is done.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM search_refolds")
            .fetch_one(&app.db)
            .await
            .expect("count");
        if pending == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the markers go when the refolds are done: {pending} left"
        );
        let _ = tokio::time::timeout(std::time::Duration::from_millis(200), changes.recv()).await;
    }
    drop(changes);
    app.stop().await;
}

#[tokio::test]
async fn a_service_saying_the_synonym_of_part_of_a_service_name_ranks_above_any_word_hits() {
    // 社保卡补办 is a service name, so a word of the segmenter's dictionary: the
    // query stays whole. The service saying 社会保障卡补办 holds its words (社保卡's
    // synonym and 补办); the 补办 and 社保 ones hold only one of them.
    let line = |name: &str, description: &str| {
        format!(
            "chenzhou\tsocial_security\t{name}\t人社局\t{description}\t携带身份证办理\thttps://hrss.example.gov.cn/\t\t\t\t\t\t\tyes\n"
        )
    };
    let mut seed = line("社保卡补办", "遗失后补办新卡");
    seed += &line("卡片遗失处理", "社会保障卡补办请携带身份证到服务网点");
    for name in ["驾驶证补办", "户口本补办", "结婚证补办", "社保缴费查询"] {
        seed += &line(name, "按规定办理");
    }
    let path = std::env::temp_dir().join(format!("search-seed-{}.tsv", uuid::Uuid::new_v4()));
    std::fs::write(&path, seed).expect("seed written");
    let app = spawn_app_with(
        TestNats::new(),
        &[("CONTENT_DIRECTORY_FILE", path.to_str().unwrap())],
    )
    .await;
    let found = titles(&app, "chenzhou", "社保卡补办").await;
    assert_eq!(
        found.get(..2),
        Some(&["社保卡补办".to_owned(), "卡片遗失处理".to_owned()][..]),
        "{found:?}"
    );
    std::fs::remove_file(&path).ok();
    app.stop().await;
}

#[tokio::test]
async fn a_one_character_query_finds_titles_though_a_body_holds_it_as_a_word() {
    let app = spawn_app().await;
    let mut client = app.client.clone();
    // The second is written in traditional characters (車 is 车 folded).
    for name in ["车辆年检", "車輛過戶"] {
        client
            .create_service(authed(service(name, "按规定办理"), ADMIN_KEY))
            .await
            .expect("created");
    }
    // jieba cuts 车 out of this body as a word of its own, so the stages find it.
    let body = "车、船票务请到车站办理";
    let words = content_svc::domain::search::Segmenter::default().words(body);
    assert!(words.iter().any(|w| w == "车"), "{words:?}");
    index_articles(&app, &[("出行提示", "", body)]).await;
    let found = titles(&app, "chenzhou", "车").await;
    assert_eq!(
        found,
        ["車輛過戶", "车辆年检", "出行提示"],
        "车 finds the titles holding it (services first, newest first), then the body"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_document_holding_only_the_question_words_is_no_hit() {
    let app = spawn_app().await;
    index_articles(
        &app,
        &[
            ("社保卡丢了怎么办", "", "请携带身份证办理"),
            ("护照丢了怎么办", "", "请携带身份证办理"),
        ],
    )
    .await;
    assert_eq!(
        titles(&app, "chenzhou", "社保卡丢了怎么办").await,
        ["社保卡丢了怎么办"],
        "护照丢了怎么办 shares only 怎么办 with the query"
    );
    app.stop().await;
}

/// A DeleteService committing while the refold is at its page: the refold reads the
/// page only once the delete is committed, and so never indexes the service again.
#[tokio::test]
async fn a_service_deleted_while_the_refold_is_at_its_page_stays_out_of_the_index() {
    use content_svc::domain::search::Segmenter;

    let app = spawn_app().await;
    // The service's own refolds of the fresh database end first (it runs them once,
    // at start-up): the refold below is then the only one.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM search_refolds")
            .fetch_one(&app.db)
            .await
            .expect("count");
        if pending == 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "refolds never ended");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let created = app
        .client
        .clone()
        .create_service(authed(service("户口迁移", "迁入迁出"), ADMIN_KEY))
        .await
        .expect("created")
        .into_inner();
    let id: uuid::Uuid = created.id.parse().expect("uuid");
    sqlx::query(
        "INSERT INTO search_refolds (reason) VALUES ('service_labels')
         ON CONFLICT (reason) DO UPDATE SET phase = 'service', after_id = NULL",
    )
    .execute(&app.db)
    .await
    .expect("refold pending");

    // A delete under way, as DeleteService does it: the document, then the entry
    // (the document's trigger took the search_version row lock).
    let mut delete = app.db.begin().await.expect("transaction");
    let holder = crate::lock_order::pid(&mut delete).await;
    content_svc::app::search::unindex_service(&mut delete, id)
        .await
        .expect("unindexed");
    content_svc::store::services::delete(&mut delete, id)
        .await
        .expect("deleted");
    let refold = {
        let db = app.db.clone();
        tokio::spawn(async move {
            content_svc::app::search::refold_page(&db, &Segmenter::default()).await
        })
    };
    crate::lock_order::until_waiting(&app.db, holder, 1).await;
    delete.commit().await.expect("delete committed");
    let step = refold.await.expect("refold task").expect("refold page");
    let left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM search_documents WHERE kind = 'service' AND ref_id = $1",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await
    .expect("count");
    assert_eq!(
        left, 0,
        "the refold brought the deleted service back into the index ({step:?})"
    );
    app.stop().await;
}
