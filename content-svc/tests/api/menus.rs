//! Custom menus over `content.v1.MenuService`, published to the mock WeChat API
//! (wechat-sim) on real PostgreSQL and NATS: WeChat's limits refused with the rule
//! named, versions, restore, directory buttons and conditional menus.

use platform::testing::TestNats;
use proto::content::v1 as pb;
use proto::content::v1::menu_service_client::MenuServiceClient;
use serde_json::Value;
use tonic::Code;
use tonic::transport::Channel;
use wechat_sim::api_server::{DEMO_APPID, FaultRequest, MockWechat, SimAccount, SimConfig};

use crate::helpers::{
    ADMIN_KEY, COUNTY_KEY, PUBLISHER_KEY, TestApp, VIEWER_KEY, by, spawn_app_with,
};

const HALL: &str = "https://wx.example.gov.cn";

struct Stack {
    app: TestApp,
    mock: MockWechat,
    menus: MenuServiceClient<Channel>,
}

async fn stack() -> Stack {
    let mock = MockWechat::start(SimConfig::default())
        .await
        .expect("mock wechat starts");
    let app = spawn_app_with(
        TestNats::new(),
        &[
            ("WECHAT_API_BASE_URL", mock.base_url()),
            ("HALL_PUBLIC_URL", HALL),
        ],
    )
    .await;
    let menus = MenuServiceClient::new(app.channel.clone());
    Stack { app, mock, menus }
}

fn leaf(name: &str, kind: pb::MenuButtonType) -> pb::MenuButton {
    let mut button = pb::MenuButton {
        name: name.to_owned(),
        ..Default::default()
    };
    button.set_type(kind);
    button
}

fn category(name: &str, code: &str) -> pb::MenuButton {
    pb::MenuButton {
        category: code.to_owned(),
        ..leaf(name, pb::MenuButtonType::Category)
    }
}

fn click(name: &str, key: &str) -> pb::MenuButton {
    pb::MenuButton {
        key: key.to_owned(),
        ..leaf(name, pb::MenuButtonType::Click)
    }
}

fn parent(name: &str, subs: Vec<pb::MenuButton>) -> pb::MenuButton {
    pb::MenuButton {
        name: name.to_owned(),
        sub_buttons: subs,
        ..Default::default()
    }
}

/// 社保 (a category), 办事大厅 (the hall), 更多 with two sub-buttons.
fn city_menu() -> Vec<pb::MenuButton> {
    vec![
        category("社保", "social_security"),
        leaf("办事大厅", pb::MenuButtonType::ServiceHall),
        parent(
            "更多",
            vec![
                category("公积金提取", "housing_fund"),
                click("联系我们", "CONTACT"),
            ],
        ),
    ]
}

fn save(tag_id: u64, buttons: Vec<pb::MenuButton>, note: &str) -> pb::SaveMenuRequest {
    pb::SaveMenuRequest {
        account: "demo".into(),
        tag_id,
        buttons,
        note: note.into(),
    }
}

fn publish(tag_id: u64, version: u32) -> pb::PublishMenuRequest {
    pb::PublishMenuRequest {
        account: "demo".into(),
        tag_id,
        version,
    }
}

fn menu_ref(tag_id: u64) -> pb::MenuRef {
    pb::MenuRef {
        account: "demo".into(),
        tag_id,
    }
}

fn bodies(mock: &MockWechat, path: &str) -> Vec<Value> {
    mock.state()
        .calls_to(path)
        .into_iter()
        .filter_map(|call| call.body)
        .collect()
}

#[tokio::test]
async fn a_menu_breaking_wechats_limits_is_refused_with_the_rule_named() {
    let mut s = stack().await;
    // A 6th sub-button.
    let six = (1..=6).map(|i| click(&format!("服务{i}"), "K")).collect();
    let status = s
        .menus
        .save_menu(by(
            save(0, vec![parent("服务", six)], ""),
            PUBLISHER_KEY,
            "chen",
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status
            .message()
            .contains("button 1 has 6 sub-buttons; at most 5"),
        "{}",
        status.message()
    );
    // A 5-character top-level label.
    let status = s
        .menus
        .save_menu(by(
            save(0, vec![click("网上办事厅", "HALL")], ""),
            PUBLISHER_KEY,
            "chen",
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("button 1")
            && status.message().contains("at most 4 Chinese characters"),
        "{}",
        status.message()
    );
    // A lexicon word in a sub-button's name: every follower would read it.
    let status = s
        .menus
        .save_menu(by(
            save(
                0,
                vec![parent(
                    "服务",
                    vec![click("办事", "K"), click("代开发票", "K")],
                )],
                "",
            ),
            PUBLISHER_KEY,
            "chen",
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().starts_with("button 1.2: 「代开发票」"),
        "{}",
        status.message()
    );
    // A fourth top-level button, in a dry run.
    let mut four = city_menu();
    four.push(click("其他", "X"));
    let status = s
        .menus
        .validate_menu(by(
            pb::ValidateMenuRequest {
                account: "demo".into(),
                buttons: four,
            },
            PUBLISHER_KEY,
            "chen",
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("1 to 3 top-level buttons"),
        "{}",
        status.message()
    );
    // A category the directory does not have.
    let status = s
        .menus
        .save_menu(by(
            save(0, vec![category("星际", "interstellar_travel")], ""),
            PUBLISHER_KEY,
            "chen",
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status
            .message()
            .contains("\"interstellar_travel\" is not a directory category"),
        "{}",
        status.message()
    );
    // Nothing was saved, nothing reached WeChat.
    let versions = s
        .menus
        .list_menu_versions(by(menu_ref(0), VIEWER_KEY, "li"))
        .await
        .unwrap()
        .into_inner();
    assert!(versions.versions.is_empty());
    assert!(s.mock.state().calls_to("/cgi-bin/menu/create").is_empty());
    // Publishing with nothing saved names the rule.
    let status = s
        .menus
        .publish_menu(by(publish(0, 0), PUBLISHER_KEY, "chen"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status.message().contains("save one first"),
        "{}",
        status.message()
    );
    // A viewer reads but does not write; another account's key sees nothing.
    let status = s
        .menus
        .save_menu(by(save(0, city_menu(), ""), VIEWER_KEY, "li"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    // Nor runs its dry run: answering which button holds a lexicon word would make
    // it a lexicon lookup, which only reviewers and publishers may read.
    let status = s
        .menus
        .validate_menu(by(
            pb::ValidateMenuRequest {
                account: "demo".into(),
                buttons: vec![parent("服务", vec![click("代开发票", "K")])],
            },
            VIEWER_KEY,
            "li",
        ))
        .await
        .unwrap_err();
    assert_eq!(
        status.code(),
        Code::PermissionDenied,
        "a viewer's ValidateMenu: {}",
        status.message()
    );
    let status = s
        .menus
        .get_menu(by(menu_ref(0), COUNTY_KEY, "wu"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    s.app.stop().await;
}

#[tokio::test]
async fn a_valid_menu_reaches_menu_create_with_category_keys_and_the_hall_url() {
    let mut s = stack().await;
    let dry = s
        .menus
        .validate_menu(by(
            pb::ValidateMenuRequest {
                account: "demo".into(),
                buttons: city_menu(),
            },
            PUBLISHER_KEY,
            "chen",
        ))
        .await
        .unwrap()
        .into_inner();
    let dry: Value = serde_json::from_str(&dry.wechat_json).unwrap();
    assert_eq!(dry["button"][0]["key"], "category:social_security");
    assert!(s.mock.state().calls_to("/cgi-bin/menu/create").is_empty());

    let saved = s
        .menus
        .save_menu(by(save(0, city_menu(), "首版菜单"), PUBLISHER_KEY, "chen"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(saved.version, 1);
    assert_eq!(saved.saved_by, "media:chen");
    let menu = s
        .menus
        .publish_menu(by(publish(0, 0), PUBLISHER_KEY, "chen"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(menu.state(), pb::MenuState::Published);
    assert_eq!(menu.published_version, 1);

    let sent = bodies(&s.mock, "/cgi-bin/menu/create");
    assert_eq!(sent.len(), 1, "{sent:?}");
    let buttons = &sent[0]["button"];
    assert_eq!(buttons[0]["type"], "click");
    assert_eq!(buttons[0]["name"], "社保");
    assert_eq!(buttons[0]["key"], "category:social_security");
    assert_eq!(buttons[1]["type"], "view");
    assert_eq!(buttons[1]["url"], format!("{HALL}/hall/demo"));
    assert_eq!(buttons[2]["sub_button"][0]["key"], "category:housing_fund");
    assert_eq!(buttons[2]["sub_button"][1]["key"], "CONTACT");
    // The mock holds it as WeChat would.
    let got = reqwest_menu_get(&s.mock).await;
    assert_eq!(got["menu"]["button"][1]["url"], format!("{HALL}/hall/demo"));

    // The attempt is recorded with who and what was sent.
    let (actor, state, body): (String, String, Value) = sqlx::query_as(
        "SELECT actor, state, sent FROM menu_publications WHERE account = 'demo' AND tag_id = 0",
    )
    .fetch_one(&s.app.db)
    .await
    .unwrap();
    assert_eq!(
        (actor.as_str(), state.as_str()),
        ("media:chen", "published")
    );
    assert_eq!(body, sent[0]);
    s.app.stop().await;
}

#[tokio::test]
async fn versions_are_kept_and_an_earlier_one_is_restored() {
    let mut s = stack().await;
    s.menus
        .save_menu(by(save(0, city_menu(), "首版"), PUBLISHER_KEY, "chen"))
        .await
        .unwrap();
    s.menus
        .publish_menu(by(publish(0, 0), PUBLISHER_KEY, "chen"))
        .await
        .unwrap();
    let second = vec![category("医保", "medical_insurance"), click("咨询", "ASK")];
    s.menus
        .save_menu(by(save(0, second, "换成医保"), ADMIN_KEY, "zhou"))
        .await
        .unwrap();
    let menu = s
        .menus
        .publish_menu(by(publish(0, 2), PUBLISHER_KEY, "chen"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(menu.published_version, 2);

    let versions = s
        .menus
        .list_menu_versions(by(menu_ref(0), VIEWER_KEY, "li"))
        .await
        .unwrap()
        .into_inner()
        .versions;
    let listed: Vec<(u32, &str, &str, bool)> = versions
        .iter()
        .map(|v| (v.version, v.saved_by.as_str(), v.note.as_str(), v.published))
        .collect();
    assert_eq!(
        listed,
        vec![
            (2, "city-office:zhou", "换成医保", true),
            (1, "media:chen", "首版", false),
        ]
    );
    assert!(versions.iter().all(|v| v.saved_at.is_some()));

    let restored = s
        .menus
        .restore_menu_version(by(
            pb::RestoreMenuVersionRequest {
                account: "demo".into(),
                tag_id: 0,
                version: 1,
            },
            PUBLISHER_KEY,
            "chen",
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(restored.latest_version, 3);
    assert_eq!(restored.published_version, 3);
    assert_eq!(restored.buttons, city_menu());
    let sent = bodies(&s.mock, "/cgi-bin/menu/create");
    assert_eq!(sent.len(), 3);
    assert_eq!(sent[2], sent[0], "the restored menu is the first one again");
    assert_ne!(sent[1], sent[0]);
    let newest = s
        .menus
        .list_menu_versions(by(menu_ref(0), VIEWER_KEY, "li"))
        .await
        .unwrap()
        .into_inner()
        .versions
        .remove(0);
    assert_eq!(newest.note, "restored from version 1");
    // WeChat's menu is the restored one.
    let got = reqwest_menu_get(&s.mock).await;
    assert_eq!(got["menu"]["button"][0]["key"], "category:social_security");
    s.app.stop().await;
}

#[tokio::test]
async fn a_conditional_menu_reaches_addconditional_after_the_default_menu() {
    let mut s = stack().await;
    let tag = create_tag(&s.mock, "老年人").await;
    let elderly = vec![
        category("养老", "elderly_care"),
        leaf("办事大厅", pb::MenuButtonType::ServiceHall),
    ];
    s.menus
        .save_menu(by(
            save(tag, elderly.clone(), "长者版"),
            PUBLISHER_KEY,
            "chen",
        ))
        .await
        .unwrap();
    // Before the default menu: refused with the rule, nothing sent.
    let status = s
        .menus
        .publish_menu(by(publish(tag, 0), PUBLISHER_KEY, "chen"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status.message().contains("default menu"),
        "{}",
        status.message()
    );
    assert!(
        s.mock
            .state()
            .calls_to("/cgi-bin/menu/addconditional")
            .is_empty()
    );

    s.menus
        .save_menu(by(save(0, city_menu(), ""), PUBLISHER_KEY, "chen"))
        .await
        .unwrap();
    s.menus
        .publish_menu(by(publish(0, 0), PUBLISHER_KEY, "chen"))
        .await
        .unwrap();
    let menu = s
        .menus
        .publish_menu(by(publish(tag, 0), PUBLISHER_KEY, "chen"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(menu.state(), pb::MenuState::Published);
    assert!(!menu.wechat_menuid.is_empty());
    let sent = bodies(&s.mock, "/cgi-bin/menu/addconditional");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["matchrule"]["tag_id"], tag.to_string());
    assert_eq!(sent[0]["button"][0]["key"], "category:elderly_care");
    assert_eq!(sent[0]["button"][1]["url"], format!("{HALL}/hall/demo"));

    // A new version replaces it: added, then the old one deleted.
    let first_id = menu.wechat_menuid.clone();
    s.menus
        .save_menu(by(
            save(tag, elderly[..1].to_vec(), ""),
            PUBLISHER_KEY,
            "chen",
        ))
        .await
        .unwrap();
    let menu = s
        .menus
        .publish_menu(by(publish(tag, 0), PUBLISHER_KEY, "chen"))
        .await
        .unwrap()
        .into_inner();
    assert_ne!(menu.wechat_menuid, first_id);
    let deleted = bodies(&s.mock, "/cgi-bin/menu/delconditional");
    assert_eq!(deleted, vec![serde_json::json!({"menuid": first_id})]);
    let got = reqwest_menu_get(&s.mock).await;
    assert_eq!(got["conditionalmenu"].as_array().map(Vec::len), Some(1));

    // Listed beside the default menu; taken off WeChat, its versions stay.
    let listed = s
        .menus
        .list_menus(by(
            pb::ListMenusRequest {
                account: "demo".into(),
            },
            VIEWER_KEY,
            "li",
        ))
        .await
        .unwrap()
        .into_inner()
        .menus;
    assert_eq!(
        listed.iter().map(|m| m.tag_id).collect::<Vec<_>>(),
        vec![0, tag]
    );
    let off = s
        .menus
        .delete_conditional_menu(by(menu_ref(tag), PUBLISHER_KEY, "chen"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(off.state(), pb::MenuState::Draft);
    assert_eq!(off.latest_version, 2);
    assert_eq!(bodies(&s.mock, "/cgi-bin/menu/delconditional").len(), 2);
    let got = reqwest_menu_get(&s.mock).await;
    assert!(got.get("conditionalmenu").is_none(), "{got}");
    s.app.stop().await;
}

/// An access token for the demo account from the mock.
async fn token(mock: &MockWechat) -> String {
    let demo = SimAccount::demo();
    let url = format!(
        "{}/cgi-bin/token?grant_type=client_credential&appid={DEMO_APPID}&secret={}",
        mock.base_url(),
        demo.secret
    );
    let answer: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    answer["access_token"].as_str().expect("a token").to_owned()
}

/// Creates a user tag on the mock, as an operator would in WeChat's console.
async fn create_tag(mock: &MockWechat, name: &str) -> u64 {
    let url = format!(
        "{}/cgi-bin/tags/create?access_token={}",
        mock.base_url(),
        token(mock).await
    );
    let answer: Value = reqwest::Client::new()
        .post(url)
        .json(&serde_json::json!({"tag": {"name": name}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["tag"]["id"].as_u64().expect("a tag id")
}

/// The menu the mock holds (`menu/get`).
async fn reqwest_menu_get(mock: &MockWechat) -> Value {
    let url = format!(
        "{}/cgi-bin/menu/get?access_token={}",
        mock.base_url(),
        token(mock).await
    );
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn a_failed_publication_is_recorded_and_one_at_a_time_is_enforced() {
    let mut s = stack().await;
    s.menus
        .save_menu(by(save(0, city_menu(), ""), PUBLISHER_KEY, "chen"))
        .await
        .unwrap();
    // WeChat stays busy beyond the client's retries.
    publish_failing_under(
        &mut s,
        0,
        FaultRequest {
            busy: Some(10),
            busy_path: Some("/cgi-bin/menu/create".into()),
            ..FaultRequest::default()
        },
    )
    .await;
    let menu = s
        .menus
        .get_menu(by(menu_ref(0), VIEWER_KEY, "li"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(menu.state(), pb::MenuState::Failed);
    assert_eq!(menu.published_version, 0);
    assert!(!menu.last_error.is_empty());
    let states: Vec<String> = sqlx::query_scalar(
        "SELECT state FROM menu_publications WHERE account = 'demo' ORDER BY id",
    )
    .fetch_all(&s.app.db)
    .await
    .unwrap();
    assert_eq!(states, vec!["failed"]);
    s.mock.state().clear_faults();

    // A publication under way (another replica's claim) blocks a second one…
    sqlx::query(
        "UPDATE menus SET state = 'publishing', publishing_since = now() WHERE account = 'demo'",
    )
    .execute(&s.app.db)
    .await
    .unwrap();
    let status = s
        .menus
        .publish_menu(by(publish(0, 0), PUBLISHER_KEY, "chen"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status.message().contains("under way"),
        "{}",
        status.message()
    );
    // …until the claim is stale (its replica died mid-call).
    sqlx::query(
        "UPDATE menus SET publishing_since = now() - interval '3 minutes' WHERE account = 'demo'",
    )
    .execute(&s.app.db)
    .await
    .unwrap();
    let menu = s
        .menus
        .publish_menu(by(publish(0, 0), PUBLISHER_KEY, "chen"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(menu.state(), pb::MenuState::Published);
    assert_eq!(menu.published_version, 1);
    assert!(menu.last_error.is_empty());
    s.app.stop().await;
}

#[tokio::test]
async fn a_menu_saved_by_a_person_named_in_chinese_names_them_or_is_refused() {
    use tonic::metadata::{AsciiMetadataValue, BinaryMetadataValue};
    let mut s = stack().await;

    // 王芳's UTF-8 written raw into x-actor: refused, not saved by "media".
    let mut raw = crate::helpers::authed(save(0, city_menu(), "首版"), PUBLISHER_KEY);
    let bytes = AsciiMetadataValue::try_from("王芳".as_bytes()).expect("obs-text header");
    raw.metadata_mut().insert("x-actor", bytes);
    let refused = s.menus.save_menu(raw).await.expect_err("refused");
    assert_eq!(refused.code(), Code::InvalidArgument);

    let mut binary = crate::helpers::authed(save(0, city_menu(), "首版"), PUBLISHER_KEY);
    let name = BinaryMetadataValue::from_bytes("王芳".as_bytes());
    binary.metadata_mut().insert_bin("x-actor-bin", name);
    s.menus.save_menu(binary).await.expect("saved by 王芳");
    let versions = s
        .menus
        .list_menu_versions(by(menu_ref(0), VIEWER_KEY, "li"))
        .await
        .unwrap()
        .into_inner()
        .versions;
    let saved_by: Vec<&str> = versions.iter().map(|v| v.saved_by.as_str()).collect();
    assert_eq!(saved_by, ["media:王芳"]);
    s.app.stop().await;
}

/// The conditional menus the mock holds for `tag`, by id.
async fn conditional_ids(mock: &MockWechat, tag: u64) -> Vec<String> {
    let got = reqwest_menu_get(mock).await;
    got["conditionalmenu"]
        .as_array()
        .map(|menus| {
            menus
                .iter()
                .filter(|m| m["matchrule"]["tag_id"].as_str() == Some(&*tag.to_string()))
                .map(|m| m["menuid"].to_string().trim_matches('"').to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The default menu published, and conditional menu `tag` saved (version 1).
async fn default_published_and_conditional_saved(s: &mut Stack, tag: u64) {
    s.menus
        .save_menu(by(save(0, city_menu(), ""), PUBLISHER_KEY, "chen"))
        .await
        .unwrap();
    s.menus
        .publish_menu(by(publish(0, 0), PUBLISHER_KEY, "chen"))
        .await
        .unwrap();
    s.menus
        .save_menu(by(
            save(tag, vec![category("养老", "elderly_care")], "长者版"),
            PUBLISHER_KEY,
            "chen",
        ))
        .await
        .unwrap();
}

/// Takes conditional menu `tag` off WeChat and expects none left for the tag; `why` is
/// the assertion's message.
async fn delete_conditional_leaving_none(s: &mut Stack, tag: u64, why: &str) {
    s.menus
        .delete_conditional_menu(by(menu_ref(tag), PUBLISHER_KEY, "chen"))
        .await
        .unwrap();
    assert_eq!(
        conditional_ids(&s.mock, tag).await,
        Vec::<String>::new(),
        "{why}"
    );
}

/// Injects `faults` into WeChat, then publishes conditional menu `tag` (version 0),
/// which fails as unavailable; the refusal, for its message.
async fn publish_failing_under(s: &mut Stack, tag: u64, faults: FaultRequest) -> tonic::Status {
    s.mock.state().inject(&faults).unwrap();
    let status = s
        .menus
        .publish_menu(by(publish(tag, 0), PUBLISHER_KEY, "chen"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{}", status.message());
    status
}

#[tokio::test]
async fn a_replaced_conditional_menu_whose_delete_failed_is_deleted_later() {
    let mut s = stack().await;
    let tag = create_tag(&s.mock, "老年人").await;
    default_published_and_conditional_saved(&mut s, tag).await;
    let first = s
        .menus
        .publish_menu(by(publish(tag, 0), PUBLISHER_KEY, "chen"))
        .await
        .unwrap()
        .into_inner()
        .wechat_menuid;

    // The new version is added; deleting the one it replaces fails.
    s.mock
        .state()
        .inject(&FaultRequest {
            busy: Some(10),
            busy_path: Some("/cgi-bin/menu/delconditional".into()),
            ..FaultRequest::default()
        })
        .unwrap();
    let second = s
        .menus
        .publish_menu(by(publish(tag, 1), PUBLISHER_KEY, "chen"))
        .await
        .unwrap()
        .into_inner()
        .wechat_menuid;
    s.mock.state().clear_faults();
    assert_eq!(
        conditional_ids(&s.mock, tag).await,
        vec![first.clone(), second.clone()]
    );

    // Taking the tag's menu off WeChat takes both off.
    delete_conditional_leaving_none(
        &mut s,
        tag,
        &format!(
            "the replaced menu {first} is still on WeChat beside nothing the service knows of"
        ),
    )
    .await;
    s.app.stop().await;
}

#[tokio::test]
async fn a_publication_whose_caller_gives_up_is_still_settled() {
    let mut s = stack().await;
    let tag = create_tag(&s.mock, "老年人").await;
    default_published_and_conditional_saved(&mut s, tag).await;
    // WeChat is slow: the caller gives up while the call is under way.
    s.mock
        .state()
        .inject(&FaultRequest {
            latency_ms: Some(1_000),
            ..FaultRequest::default()
        })
        .unwrap();
    let mut menus = s.menus.clone();
    let call = tokio::spawn(async move {
        menus
            .publish_menu(by(publish(tag, 0), PUBLISHER_KEY, "chen"))
            .await
    });
    let state = || async {
        sqlx::query_as::<_, (String, Option<String>)>(
            "SELECT state, wechat_menuid FROM menus WHERE account = 'demo' AND tag_id = $1",
        )
        .bind(tag as i64)
        .fetch_optional(&s.app.db)
        .await
        .unwrap()
    };
    while state().await.is_none_or(|(state, _)| state != "publishing") {
        tokio::task::yield_now().await;
    }
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());

    // The publication still settles, with the id of the menu WeChat added.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let (settled, menuid) = loop {
        let (state, menuid) = state().await.unwrap();
        if state != "publishing" {
            break (state, menuid);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the menu is still publishing; WeChat holds {:?}",
            conditional_ids(&s.mock, tag).await
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    s.mock.state().clear_faults();
    assert_eq!(settled, "published");
    assert_eq!(
        menuid.into_iter().collect::<Vec<_>>(),
        conditional_ids(&s.mock, tag).await
    );
    s.app.stop().await;
}

#[tokio::test]
async fn a_conditional_menu_whose_answer_was_lost_is_not_left_on_wechat() {
    let mut s = stack().await;
    let tag = create_tag(&s.mock, "老年人").await;
    default_published_and_conditional_saved(&mut s, tag).await;
    // WeChat adds the menu; its answer is lost on the way back.
    let status = publish_failing_under(
        &mut s,
        tag,
        FaultRequest {
            lose_answers: Some(1),
            lose_path: Some("/cgi-bin/menu/addconditional".into()),
            ..FaultRequest::default()
        },
    )
    .await;
    assert!(
        status.message().contains("may have changed"),
        "{}",
        status.message()
    );
    assert_eq!(
        conditional_ids(&s.mock, tag).await,
        Vec::<String>::new(),
        "the menu added unbeknown is left on WeChat after the failed publication"
    );
    s.menus
        .publish_menu(by(publish(tag, 0), PUBLISHER_KEY, "chen"))
        .await
        .unwrap();
    delete_conditional_leaving_none(
        &mut s,
        tag,
        "a conditional menu is left on WeChat for the tag",
    )
    .await;
    s.app.stop().await;
}

#[tokio::test]
async fn a_note_with_a_nul_is_refused_naming_the_field() {
    let mut s = stack().await;
    let status = s
        .menus
        .save_menu(by(save(0, city_menu(), "a\u{0}b"), PUBLISHER_KEY, "chen"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{}", status.message());
    assert!(status.message().contains("note"), "{}", status.message());
    s.app.stop().await;
}

#[tokio::test]
async fn a_lost_conditional_menu_left_by_a_failed_listing_is_deleted_by_the_next_publication() {
    let mut s = stack().await;
    let tag = create_tag(&s.mock, "老年人").await;
    default_published_and_conditional_saved(&mut s, tag).await;
    // WeChat adds the menu and its answer is lost; listing the menus fails too.
    publish_failing_under(
        &mut s,
        tag,
        FaultRequest {
            lose_answers: Some(1),
            lose_path: Some("/cgi-bin/menu/addconditional".into()),
            busy: Some(10),
            busy_path: Some("/cgi-bin/menu/get".into()),
            ..FaultRequest::default()
        },
    )
    .await;
    s.mock.state().clear_faults();
    let lost = conditional_ids(&s.mock, tag).await;
    assert_eq!(lost.len(), 1, "the lost menu is on WeChat: {lost:?}");
    let published = s
        .menus
        .publish_menu(by(publish(tag, 0), PUBLISHER_KEY, "chen"))
        .await
        .unwrap()
        .into_inner()
        .wechat_menuid;
    assert_eq!(
        conditional_ids(&s.mock, tag).await,
        vec![published],
        "the lost menu {lost:?} is still on WeChat beside the published one"
    );
    s.app.stop().await;
}

/// A conditional menu that publishes the first time with its answer lost and the
/// listing failing: WeChat shows it to the tag, and the service holds no id of it.
async fn conditional_lost_unknown(s: &mut Stack, tag: u64) -> Vec<String> {
    publish_failing_under(
        s,
        tag,
        FaultRequest {
            lose_answers: Some(1),
            lose_path: Some("/cgi-bin/menu/addconditional".into()),
            busy: Some(10),
            busy_path: Some("/cgi-bin/menu/get".into()),
            ..FaultRequest::default()
        },
    )
    .await;
    s.mock.state().clear_faults();
    let lost = conditional_ids(&s.mock, tag).await;
    assert_eq!(lost.len(), 1, "the lost menu is on WeChat: {lost:?}");
    lost
}

#[tokio::test]
async fn a_failed_add_leaves_the_tag_the_conditional_menu_it_showed() {
    let mut s = stack().await;
    let tag = create_tag(&s.mock, "老年人").await;
    default_published_and_conditional_saved(&mut s, tag).await;
    let shown = conditional_lost_unknown(&mut s, tag).await;
    // The next publication's add fails: WeChat is busy.
    publish_failing_under(
        &mut s,
        tag,
        FaultRequest {
            busy: Some(10),
            busy_path: Some("/cgi-bin/menu/addconditional".into()),
            ..FaultRequest::default()
        },
    )
    .await;
    s.mock.state().clear_faults();
    assert_eq!(
        conditional_ids(&s.mock, tag).await,
        shown,
        "the failed publication took the tag's menu off WeChat: its followers see the default menu"
    );
    s.app.stop().await;
}

#[tokio::test]
async fn a_lost_add_keeps_the_menu_another_replica_published_after_taking_over() {
    let mut s = stack().await;
    let tag = create_tag(&s.mock, "老年人").await;
    default_published_and_conditional_saved(&mut s, tag).await;
    // This replica stalls in its add.
    s.mock
        .state()
        .inject(&FaultRequest {
            hold_path: Some("/cgi-bin/menu/addconditional".into()),
            ..FaultRequest::default()
        })
        .unwrap();
    let mut menus = s.menus.clone();
    let stalled = tokio::spawn(async move {
        menus
            .publish_menu(by(publish(tag, 0), PUBLISHER_KEY, "chen"))
            .await
    });
    s.mock.state().held().await;
    // Its claim is old enough for another replica to take over, which publishes.
    sqlx::query(
        "UPDATE menus SET publishing_since = now() - interval '10 minutes'
          WHERE account = 'demo' AND tag_id = $1",
    )
    .bind(tag as i64)
    .execute(&s.app.db)
    .await
    .unwrap();
    let taken_over = s
        .menus
        .publish_menu(by(publish(tag, 0), PUBLISHER_KEY, "li"))
        .await
        .unwrap()
        .into_inner()
        .wechat_menuid;
    // Its add then takes effect on WeChat, and its answer is lost.
    s.mock
        .state()
        .inject(&FaultRequest {
            lose_answers: Some(1),
            lose_path: Some("/cgi-bin/menu/addconditional".into()),
            ..FaultRequest::default()
        })
        .unwrap();
    s.mock.state().release_held();
    let status = stalled.await.unwrap().unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{}", status.message());
    assert_eq!(
        conditional_ids(&s.mock, tag).await,
        vec![taken_over.clone()],
        "the menu {taken_over} published after the takeover was deleted by the stalled replica"
    );
    s.app.stop().await;
}

/// Adds a conditional menu for `rule` directly on the mock, as an operator would in
/// WeChat's console; its id.
async fn add_by_hand(mock: &MockWechat, rule: Value) -> String {
    let url = format!(
        "{}/cgi-bin/menu/addconditional?access_token={}",
        mock.base_url(),
        token(mock).await
    );
    let answer: Value = reqwest::Client::new()
        .post(url)
        .json(&serde_json::json!({
            "button": [{"type": "click", "name": "女士", "key": "women"}],
            "matchrule": rule,
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["menuid"].as_str().expect("a menu id").to_owned()
}

#[tokio::test]
async fn a_conditional_menu_made_by_hand_for_some_of_the_tag_is_left_alone() {
    let mut s = stack().await;
    let tag = create_tag(&s.mock, "老年人").await;
    default_published_and_conditional_saved(&mut s, tag).await;
    let by_hand = add_by_hand(
        &s.mock,
        serde_json::json!({"tag_id": tag.to_string(), "sex": "2"}),
    )
    .await;
    let published = s
        .menus
        .publish_menu(by(publish(tag, 0), PUBLISHER_KEY, "chen"))
        .await
        .unwrap()
        .into_inner()
        .wechat_menuid;
    assert_eq!(
        conditional_ids(&s.mock, tag).await,
        vec![by_hand.clone(), published],
        "the menu {by_hand} made by hand for the tag's women was deleted as the service's"
    );
    s.app.stop().await;
}

#[tokio::test]
async fn a_lost_first_conditional_menu_is_taken_off_by_delete_conditional_menu() {
    let mut s = stack().await;
    let tag = create_tag(&s.mock, "老年人").await;
    default_published_and_conditional_saved(&mut s, tag).await;
    let lost = conditional_lost_unknown(&mut s, tag).await;
    delete_conditional_leaving_none(
        &mut s,
        tag,
        &format!("the lost menu {lost:?} is still on WeChat"),
    )
    .await;
    s.app.stop().await;
}
