//! `ImportServices`: a seed file checked whole (a bad line names itself and writes
//! nothing), written in one transaction with audit and events, idempotent on
//! re-import (matched by account, department and name), and only by admins or the owning
//! department's editors.

use std::time::Duration;

use futures::StreamExt as _;
use platform::testing::TestNats;
use prost::Message as _;
use proto::content::v1 as pb;
use proto::events::v1 as ev;
use tonic::Code;

use crate::helpers::{
    ADMIN_KEY, EDITOR_KEY, VIEWER_KEY, WATER_EDITOR_KEY, authed, by, spawn_app_with,
};

const SEED: &str = include_str!("../../seed/lincheng-directory.tsv");

fn import(content: &str, dry_run: bool) -> pb::ImportServicesRequest {
    pb::ImportServicesRequest {
        content: content.into(),
        dry_run,
    }
}

async fn count(db: &sqlx::PgPool, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(db)
        .await
        .expect("count")
}

#[tokio::test]
async fn a_seed_file_imports_once_and_again_only_changes_what_changed() {
    let nats = TestNats::new();
    let prefix = nats.prefix.clone();
    let events = nats.connect().await;
    let mut updated_events = events
        .subscribe(format!("{prefix}.content.lincheng.directory.updated"))
        .await
        .expect("subscribe");
    events.flush().await.expect("flush");
    let app = spawn_app_with(nats, &[]).await;
    let mut client = app.client.clone();
    let lines = SEED
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .count() as u32;

    // A dry run reports the plan and writes nothing.
    let plan = client
        .import_services(authed(import(SEED, true), ADMIN_KEY))
        .await
        .expect("dry run")
        .into_inner();
    assert_eq!(plan.created, lines);
    assert_eq!(count(&app.db, "directory_entries").await, 0);

    let first = client
        .import_services(by(import(SEED, false), ADMIN_KEY, "zhou"))
        .await
        .expect("the admin imports the seed")
        .into_inner();
    assert_eq!(
        (first.created, first.updated, first.unchanged),
        (lines, 0, 0)
    );
    assert_eq!(count(&app.db, "directory_entries").await, i64::from(lines));
    assert_eq!(count(&app.db, "directory_audit").await, i64::from(lines));
    let social = first
        .services
        .iter()
        .find(|s| s.name == "社保卡补办")
        .expect("社保卡补办 imported");
    assert!(social.line > 1, "lines are the file's: {social:?}");
    // Indexed for search in the same transaction.
    let hits = client
        .search(authed(
            pb::SearchRequest {
                account: "lincheng".into(),
                query: "社保卡补办".into(),
                ..pb::SearchRequest::default()
            },
            VIEWER_KEY,
        ))
        .await
        .expect("search")
        .into_inner()
        .hits;
    assert_eq!(
        hits.first().map(|h| h.id.as_str()),
        Some(social.id.as_str())
    );

    // The same file again: nothing written, nothing audited.
    let again = client
        .import_services(authed(import(SEED, false), ADMIN_KEY))
        .await
        .expect("re-import")
        .into_inner();
    assert_eq!(
        (again.created, again.updated, again.unchanged),
        (0, 0, lines)
    );
    assert_eq!(count(&app.db, "directory_audit").await, i64::from(lines));

    // One description edited: that service is updated in place and announced.
    let edited = SEED.replacen(
        "社会保障卡遗失或损坏后补办新卡",
        "社会保障卡遗失、损坏或信息变更后补办新卡",
        1,
    );
    assert_ne!(edited, SEED);
    let third = client
        .import_services(by(import(&edited, false), ADMIN_KEY, "zhou"))
        .await
        .expect("edited import")
        .into_inner();
    assert_eq!((third.created, third.updated), (0, 1));
    let updated = third
        .services
        .iter()
        .find(|s| s.change == "updated")
        .unwrap();
    assert_eq!(
        updated.id, social.id,
        "matched by account, department and name"
    );
    let message = tokio::time::timeout(Duration::from_secs(30), updated_events.next())
        .await
        .expect("the updated event arrives")
        .expect("subscription open");
    let event = ev::DirectoryServiceChanged::decode(message.payload).expect("an event");
    assert_eq!(event.service_id, social.id);
    assert_eq!(event.actor, "city-office:zhou");
    assert!(
        event.description.contains("信息变更"),
        "{}",
        event.description
    );
    app.stop().await;
}

#[tokio::test]
async fn a_bad_line_is_named_and_nothing_is_written() {
    let app = spawn_app_with(TestNats::new(), &[]).await;
    let mut client = app.client.clone();
    let good = "chenzhou\tutilities\t水费缴纳\twater\t自来水费在线缴纳\t\thttps://water.example.gov.cn/pay\t\t全天\t0735-96655\t水费|缴费\t\t\tyes";
    let bad_url = good
        .replace("https://water", "ftp://water")
        .replace("水费缴纳", "水费查询");
    let file = format!("# water\n{good}\n\n{bad_url}\n");
    let status = client
        .import_services(authed(import(&file, false), WATER_EDITOR_KEY))
        .await
        .expect_err("line 4 has a bad url");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().starts_with("seed line 4: url"),
        "{}",
        status.message()
    );
    let unknown = good
        .replace("utilities", "plumbing")
        .replace("水费缴纳", "水费查询");
    let status = client
        .import_services(authed(
            import(&format!("{good}\n{unknown}"), false),
            WATER_EDITOR_KEY,
        ))
        .await
        .expect_err("an unknown category");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status
            .message()
            .starts_with("seed line 2: category plumbing"),
        "{}",
        status.message()
    );
    let status = client
        .import_services(authed(
            import(&format!("{good}\n{good}"), false),
            WATER_EDITOR_KEY,
        ))
        .await
        .expect_err("a name twice");
    assert!(
        status
            .message()
            .starts_with("seed line 2: 水费缴纳 of water on chenzhou is already on line 1"),
        "{}",
        status.message()
    );
    let advert = good
        .replace("自来水费在线缴纳", "包治百病，在线缴纳")
        .replace("水费缴纳", "水费查询");
    let status = client
        .import_services(authed(
            import(&format!("{good}\n{advert}"), false),
            WATER_EDITOR_KEY,
        ))
        .await
        .expect_err("a lexicon word");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status
            .message()
            .starts_with("seed line 2: description: 「包治百病」"),
        "{}",
        status.message()
    );
    assert_eq!(count(&app.db, "directory_entries").await, 0);
    assert_eq!(count(&app.db, "outbox").await, 0);

    // Another department's lines: refused with the line, before anything is written.
    let status = client
        .import_services(authed(
            import(
                &format!("{good}\n{good}").replacen("水费缴纳", "水费查询", 1),
                false,
            ),
            EDITOR_KEY,
        ))
        .await
        .expect_err("the press office imports the water bureau's services");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(
        status
            .message()
            .starts_with("seed line 1: only an editor of water"),
        "{}",
        status.message()
    );
    let status = client
        .import_services(authed(import(good, false), VIEWER_KEY))
        .await
        .expect_err("a viewer");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(count(&app.db, "directory_entries").await, 0);

    // The owner imports its own line; the department may not be changed by a file.
    let done = client
        .import_services(authed(import(good, false), WATER_EDITOR_KEY))
        .await
        .expect("the water bureau imports its service")
        .into_inner();
    assert_eq!(done.created, 1);
    // A line naming another department is that department's service, not a move.
    let moved = good.replace("\twater\t", "\tpress\t");
    let done = client
        .import_services(authed(import(&moved, false), ADMIN_KEY))
        .await
        .expect("the press office's service of the same name")
        .into_inner();
    assert_eq!((done.created, done.updated), (1, 0));
    assert_eq!(count(&app.db, "directory_entries").await, 2);
    app.stop().await;
}

#[tokio::test]
async fn a_department_reimports_its_service_though_another_has_one_of_the_same_name() {
    let app = spawn_app_with(TestNats::new(), &[]).await;
    let mut client = app.client.clone();
    let water = "chenzhou\tutilities\t水费缴纳\twater\t自来水费在线缴纳\t\thttps://water.example.gov.cn/pay\t\t全天\t0735-96655\t水费|缴费\t\t\tyes";
    let done = client
        .import_services(authed(import(water, false), WATER_EDITOR_KEY))
        .await
        .expect("the water bureau imports its service")
        .into_inner();
    assert_eq!(done.created, 1);
    // The press office runs a page of its own under the same name.
    client
        .create_service(authed(
            pb::Service {
                account: "chenzhou".into(),
                category: "utilities".into(),
                name: "水费缴纳".into(),
                department: "press".into(),
                url: "https://press.example.gov.cn/water".into(),
                enabled: true,
                ..pb::Service::default()
            },
            EDITOR_KEY,
        ))
        .await
        .expect("the press office creates its own");

    let again = client
        .import_services(authed(import(water, false), WATER_EDITOR_KEY))
        .await
        .expect("the water bureau re-imports its own service")
        .into_inner();
    assert_eq!((again.created, again.updated, again.unchanged), (0, 0, 1));
    let press = water
        .replace("\twater\t", "\tpress\t")
        .replace("自来水费", "新闻办水费");
    let press_import = client
        .import_services(authed(import(&press, false), EDITOR_KEY))
        .await
        .expect("the press office imports its own service")
        .into_inner();
    assert_eq!(press_import.updated, 1);
    assert_eq!(count(&app.db, "directory_entries").await, 2);
    app.stop().await;
}

/// An install that names its accounts (WECHAT_ACCOUNTS) serves the hall and the
/// directory answers of those only: a line for another account, or shared with
/// one, would make a service nobody sees. It is refused with its line, and nothing
/// is written.
#[tokio::test]
async fn a_line_for_an_account_the_install_does_not_serve_is_refused_naming_it() {
    let app = spawn_app_with(
        TestNats::new(),
        &[
            ("WECHAT_ACCOUNTS", "chenzhou"),
            ("WECHAT_CHENZHOU_APPID", "wx0123456789abcdef"),
            ("WECHAT_CHENZHOU_SECRET", "chenzhou-secret"),
        ],
    )
    .await;
    let mut client = app.client.clone();
    let good = "chenzhou\tutilities\t水费缴纳\twater\t自来水费在线缴纳\t\thttps://water.example.gov.cn/pay\t\t全天\t0735-96655\t水费|缴费\t\t\tyes";
    let elsewhere = good
        .replacen("chenzhou", "lincheng", 1)
        .replace("水费缴纳", "水费查询");
    let status = client
        .import_services(authed(
            import(&format!("{good}\n{elsewhere}"), false),
            ADMIN_KEY,
        ))
        .await
        .expect_err("lincheng is not an account of this install");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status
            .message()
            .starts_with("seed line 2: account lincheng is not served by this install"),
        "{}",
        status.message()
    );
    let shared = good.replace("\t\t\tyes", "\t\tlincheng_gov\tyes");
    assert_ne!(shared, good);
    let status = client
        .import_services(authed(import(&shared, false), ADMIN_KEY))
        .await
        .expect_err("lincheng_gov is not an account of this install");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status
            .message()
            .starts_with("seed line 1: also_shown_on lincheng_gov is not served by this install"),
        "{}",
        status.message()
    );
    assert_eq!(count(&app.db, "directory_entries").await, 0);

    let done = client
        .import_services(authed(import(good, false), ADMIN_KEY))
        .await
        .expect("a chenzhou line alone is imported")
        .into_inner();
    assert_eq!(done.created, 1);
    app.stop().await;
}
