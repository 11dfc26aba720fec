//! Directory writes: the owning department's editor creates a service (audited,
//! announced on CONTENT), another department may not touch it, an admin disables
//! it, bad fields are named; and the shipped seed file loads.

use std::time::Duration;

use futures::StreamExt as _;
use platform::testing::TestNats;
use prost::Message as _;
use proto::content::v1 as pb;
use proto::events::v1 as ev;
use tonic::Code;

use crate::helpers::{
    ADMIN_KEY, COUNTY_ADMIN_KEY, COUNTY_KEY, EDITOR_KEY, WATER_EDITOR_KEY, authed, by, list,
    spawn_app_with,
};

fn service(name: &str) -> pb::Service {
    pb::Service {
        account: "chenzhou".into(),
        category: "utilities".into(),
        name: name.into(),
        description: "自来水费在线缴纳".into(),
        how_to_apply: "输入户号查询账单并缴费".into(),
        url: "https://water.example.gov.cn/pay".into(),
        hours: "全天".into(),
        phone: "0735-96655".into(),
        keywords: vec!["水费".into(), "缴费".into()],
        synonyms: vec!["自来水费".into()],
        enabled: true,
        ..pb::Service::default()
    }
}

#[tokio::test]
async fn a_department_writes_its_own_services_and_every_change_is_audited_and_announced() {
    let nats = TestNats::new();
    let prefix = nats.prefix.clone();
    let events = nats.connect().await;
    let mut created_events = events
        .subscribe(format!("{prefix}.content.chenzhou.directory.created"))
        .await
        .expect("subscribe");
    events.flush().await.expect("flush");
    let app = spawn_app_with(nats, &[]).await;
    let mut client = app.client.clone();

    let categories = client
        .list_categories(authed(pb::ListCategoriesRequest {}, COUNTY_KEY))
        .await
        .expect("any caller reads the categories")
        .into_inner()
        .categories;
    assert!(categories.len() >= 30, "{} categories", categories.len());
    assert!(
        categories
            .iter()
            .any(|c| c.code == "housing_fund" && c.name == "公积金")
    );

    // The water bureau's editor adds its service; the department is theirs.
    let created = client
        .create_service(by(service("水费缴纳"), WATER_EDITOR_KEY, "liu"))
        .await
        .expect("the water editor creates a service")
        .into_inner();
    assert_eq!(created.department, "water");
    let message = tokio::time::timeout(Duration::from_secs(30), created_events.next())
        .await
        .expect("the created event arrives")
        .expect("subscription open");
    let event = ev::DirectoryServiceChanged::decode(message.payload).expect("an event");
    assert_eq!(event.service_id, created.id);
    assert_eq!(event.actor, "water:liu");
    assert_eq!(event.accounts, ["chenzhou"]);

    // Bad fields are named; an unknown category is refused.
    let mut bad = service("水费缴纳");
    bad.url = "ftp://water".into();
    let status = client
        .create_service(authed(bad, WATER_EDITOR_KEY))
        .await
        .expect_err("a non-web url");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().starts_with("url"), "{}", status.message());
    let mut bad = service("水费缴纳");
    bad.category = "plumbing".into();
    let status = client
        .create_service(authed(bad, WATER_EDITOR_KEY))
        .await
        .expect_err("an unknown category");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("plumbing"),
        "{}",
        status.message()
    );

    // Citizens read the entry unreviewed: a lexicon word is refused, naming the field.
    let mut bad = service("发票办理");
    bad.how_to_apply = "可代开发票，联系客服".into();
    let status = client
        .create_service(authed(bad, WATER_EDITOR_KEY))
        .await
        .expect_err("a lexicon word");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().starts_with("how_to_apply: 「代开发票」"),
        "{}",
        status.message()
    );
    let mut bad = service("水费缴纳");
    bad.synonyms.push("刷单返利".into());
    let status = client
        .create_service(authed(bad, WATER_EDITOR_KEY))
        .await
        .expect_err("a lexicon word in a synonym");
    assert!(
        status.message().starts_with("synonyms"),
        "{}",
        status.message()
    );

    // The press office's editor may not change the water bureau's service.
    let mut edit = service("水费缴纳（新）");
    edit.id = created.id.clone();
    let status = client
        .update_service(authed(edit.clone(), EDITOR_KEY))
        .await
        .expect_err("another department");
    assert_eq!(status.code(), Code::PermissionDenied);
    // A county key neither writes nor sees the city's service.
    let status = client
        .get_service(authed(
            pb::ServiceRef {
                id: created.id.clone(),
            },
            COUNTY_KEY,
        ))
        .await
        .expect_err("another account's service");
    assert_eq!(status.code(), Code::NotFound);

    // An admin disables it: citizens' listing no longer shows it.
    edit.enabled = false;
    let updated = client
        .update_service(authed(edit, ADMIN_KEY))
        .await
        .expect("an admin updates any department's service")
        .into_inner();
    assert_eq!(updated.name, "水费缴纳（新）");
    assert_eq!(updated.department, "water", "the owner stays");
    let listed = client
        .list_services(authed(list("chenzhou", ""), ADMIN_KEY))
        .await
        .expect("listing")
        .into_inner()
        .services;
    assert!(
        listed.is_empty(),
        "a disabled service is not listed: {listed:?}"
    );

    client
        .delete_service(authed(
            pb::ServiceRef {
                id: created.id.clone(),
            },
            WATER_EDITOR_KEY,
        ))
        .await
        .expect("the owner deletes it");
    let trail: Vec<(String, String)> = sqlx::query_as(
        "SELECT action, actor FROM directory_audit WHERE service_id = $1::uuid ORDER BY id",
    )
    .bind(&created.id)
    .fetch_all(&app.db)
    .await
    .expect("audit trail");
    assert_eq!(
        trail,
        [
            ("created".into(), "water:liu".into()),
            ("updated".into(), "city-office".into()),
            ("deleted".into(), "water".into()),
        ]
    );
    app.stop().await;
}

#[tokio::test]
async fn the_lincheng_seed_lists_by_account_and_search_finds_services_by_citizens_words() {
    let seed = concat!(env!("CARGO_MANIFEST_DIR"), "/seed/lincheng-directory.tsv");
    let app = spawn_app_with(TestNats::new(), &[("CONTENT_DIRECTORY_FILE", seed)]).await;
    let mut client = app.client.clone();
    let social = client
        .list_services(authed(list("lincheng", "social_security"), ADMIN_KEY))
        .await
        .expect("listing")
        .into_inner()
        .services;
    assert_eq!(social.first().map(|s| s.name.as_str()), Some("社保卡补办"));
    // Shared with the government-affairs account as well.
    let shared = client
        .list_services(authed(list("lincheng_gov", "housing_fund"), ADMIN_KEY))
        .await
        .expect("listing")
        .into_inner()
        .services;
    assert!(shared.iter().any(|s| s.name == "公积金提取"), "{shared:?}");

    // Search: the citizen's words find the service, synonyms included.
    let search = |query: &str| pb::SearchRequest {
        account: "lincheng".into(),
        query: query.into(),
        ..pb::SearchRequest::default()
    };
    let hits = client
        .search(authed(search("社保卡补办"), ADMIN_KEY))
        .await
        .expect("search")
        .into_inner()
        .hits;
    assert_eq!(
        hits.first().map(|h| h.title.as_str()),
        Some("社保卡补办"),
        "{hits:?}"
    );
    let hits = client
        .search(authed(search("医疗保险报销"), ADMIN_KEY))
        .await
        .expect("search")
        .into_inner()
        .hits;
    assert_eq!(
        hits.first().map(|h| h.title.as_str()),
        Some("医保报销"),
        "{hits:?}"
    );
    assert!(hits[0].snippet.contains("<em>"), "{:?}", hits[0].snippet);
    let mut only = search("公积金");
    only.category = "housing_fund".into();
    only.limit = 2;
    let hits = client
        .search(authed(only, ADMIN_KEY))
        .await
        .expect("search")
        .into_inner()
        .hits;
    assert_eq!(hits.len(), 2);
    assert!(
        hits.iter().all(|h| h.category == "housing_fund"),
        "{hits:?}"
    );
    let long = "办".repeat(1_000);
    for (query, says) in [
        ("", "query is empty"),
        ("？！…", "query has no words"),
        (long.as_str(), "query is 1000 characters"),
    ] {
        let status = client
            .search(authed(search(query), ADMIN_KEY))
            .await
            .expect_err("a bad query");
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().starts_with(says), "{}", status.message());
    }
    let status = client
        .search(authed(search("社保卡"), COUNTY_KEY))
        .await
        .expect_err("another account");
    assert_eq!(status.code(), Code::NotFound);
    app.stop().await;
}

#[tokio::test]
async fn replicas_starting_together_load_the_directory_seed_once() {
    let app = spawn_app_with(TestNats::new(), &[]).await;
    let seed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/seed/lincheng-directory.tsv"
    ))
    .expect("seed file");
    let replica = || {
        content_svc::app::directory::Directory::new(
            app.db.clone(),
            platform::outbox::OutboxSignal::new(),
            content_svc::domain::search::Segmenter::default(),
            content_svc::app::lexicon::Lexicon::new(app.db.clone()),
        )
    };
    let (a, b, c) = (replica(), replica(), replica());
    let (ra, rb, rc) = tokio::join!(a.seed(&seed), b.seed(&seed), c.seed(&seed));
    let loaded = [
        ra.expect("seeded"),
        rb.expect("seeded"),
        rc.expect("seeded"),
    ];
    let services: i64 = sqlx::query_scalar("SELECT count(*) FROM directory_entries")
        .fetch_one(&app.db)
        .await
        .expect("count");
    assert!(services > 0);
    assert_eq!(
        loaded.iter().filter(|n| **n > 0).count(),
        1,
        "one replica seeds: {loaded:?}"
    );
    assert_eq!(loaded.iter().sum::<usize>() as i64, services);
    app.stop().await;
}

#[tokio::test]
async fn an_editor_keeps_a_share_beyond_their_key_and_may_not_remove_it() {
    let app = spawn_app_with(TestNats::new(), &[]).await;
    let mut client = app.client.clone();
    // yizhang's service, also shown on chenzhou (an admin of every account set it).
    let created = client
        .create_service(by(
            pb::Service {
                account: "yizhang".into(),
                department: "yizhang-admin".into(),
                also_shown_on: vec!["chenzhou".into()],
                ..service("县水费缴纳")
            },
            ADMIN_KEY,
            "wang",
        ))
        .await
        .expect("created")
        .into_inner();
    // yizhang's admin (a key reaching yizhang only) sends back what it read.
    let read = client
        .get_service(authed(
            pb::ServiceRef {
                id: created.id.clone(),
            },
            COUNTY_ADMIN_KEY,
        ))
        .await
        .expect("read")
        .into_inner();
    assert_eq!(read.also_shown_on, ["chenzhou"]);
    let updated = client
        .update_service(authed(
            pb::Service {
                hours: "工作日".into(),
                ..read.clone()
            },
            COUNTY_ADMIN_KEY,
        ))
        .await
        .expect("the share it read back is kept")
        .into_inner();
    assert_eq!(updated.also_shown_on, ["chenzhou"]);
    // Leaving it out would take the service off chenzhou's directory: refused.
    let status = client
        .update_service(authed(
            pb::Service {
                also_shown_on: vec![],
                ..read
            },
            COUNTY_ADMIN_KEY,
        ))
        .await
        .expect_err("removing a share beyond the key");
    assert_eq!(
        status.code(),
        Code::PermissionDenied,
        "{}",
        status.message()
    );
    assert!(
        status.message().contains("chenzhou"),
        "{}",
        status.message()
    );
    // Disabling, importing it disabled or deleting it takes it off chenzhou just the
    // same: each refused, naming chenzhou.
    let disable = client
        .update_service(authed(
            pb::Service {
                enabled: false,
                ..updated.clone()
            },
            COUNTY_ADMIN_KEY,
        ))
        .await
        .map(|_| ());
    let line = [
        "yizhang",
        "utilities",
        "县水费缴纳",
        "yizhang-admin",
        "自来水费在线缴纳",
        "输入户号查询账单并缴费",
        "https://water.example.gov.cn/pay",
        "",
        "工作日",
        "0735-96655",
        "水费|缴费",
        "自来水费",
        "chenzhou",
        "no",
    ]
    .join("\t");
    let import = client
        .import_services(authed(
            pb::ImportServicesRequest {
                content: line,
                dry_run: false,
            },
            COUNTY_ADMIN_KEY,
        ))
        .await
        .map(|_| ());
    let delete = client
        .delete_service(authed(
            pb::ServiceRef {
                id: created.id.clone(),
            },
            COUNTY_ADMIN_KEY,
        ))
        .await
        .map(|_| ());
    for (what, result) in [("disable", disable), ("import", import), ("delete", delete)] {
        let Err(status) = result else {
            panic!("{what} by a key not reaching chenzhou: OK, the service gone from chenzhou");
        };
        assert_eq!(
            status.code(),
            Code::PermissionDenied,
            "{what}: {}",
            status.message()
        );
        assert!(
            status.message().contains("chenzhou"),
            "{what}: {}",
            status.message()
        );
    }
    let shown = client
        .list_services(authed(list("chenzhou", ""), ADMIN_KEY))
        .await
        .expect("listing")
        .into_inner()
        .services;
    assert!(
        shown.iter().any(|s| s.id == created.id),
        "still on chenzhou: {shown:?}"
    );
    // A key reaching chenzhou as well may delete it.
    client
        .delete_service(authed(pb::ServiceRef { id: created.id }, ADMIN_KEY))
        .await
        .expect("the city-wide admin deletes it");
    app.stop().await;
}
