//! `govwx menu`: a menu file is checked (a broken limit is one line naming the rule),
//! published through the mock's `menu/create`, and shown.

use crate::helpers::{ACCOUNT, DEV_ADMIN_KEY, EDITOR_KEY, Stack};

const MENU: &str = r#"{"button": [
  {"name": "办事", "sub_button": [
    {"name": "社保服务", "type": "category", "category": "social_security"},
    {"name": "办事大厅", "type": "service_hall"}
  ]},
  {"name": "官网", "type": "view", "url": "https://www.example.gov.cn/"},
  {"name": "咨询", "type": "click", "key": "ASK"}
]}"#;

#[tokio::test]
async fn a_menu_file_is_validated_published_and_shown() {
    let stack = Stack::with_content().await;
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("govwx-menu-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("menu.json");
    std::fs::write(&good, MENU).unwrap();
    let good = good.to_str().unwrap();

    let checked = stack
        .json(
            DEV_ADMIN_KEY,
            &["menu", "validate", good, "--account", ACCOUNT],
        )
        .await;
    assert_eq!(checked["valid"], true);
    assert_eq!(
        checked["wechat"]["button"][0]["sub_button"][0]["key"], "category:social_security",
        "{checked}"
    );

    // WeChat's limits, the rule named in one line: a sixth sub-button, a
    // five-character top-level name.
    let mut doc: serde_json::Value = serde_json::from_str(MENU).unwrap();
    let subs = doc["button"][0]["sub_button"].as_array_mut().unwrap();
    for n in 0..4 {
        subs.push(serde_json::json!({"name": format!("按钮{n}"), "type": "click", "key": format!("K{n}")}));
    }
    let six = dir.join("six.json");
    std::fs::write(&six, doc.to_string()).unwrap();
    let run = stack
        .run(
            DEV_ADMIN_KEY,
            &[
                "menu",
                "validate",
                six.to_str().unwrap(),
                "--account",
                ACCOUNT,
            ],
        )
        .await;
    assert_eq!(run.code, 5, "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
    assert!(run.stderr.contains("6 sub-buttons"), "{run:?}");
    let long = dir.join("long.json");
    std::fs::write(&long, MENU.replace("\"官网\"", "\"市政府官网\"")).unwrap();
    let run = stack
        .run(
            DEV_ADMIN_KEY,
            &[
                "menu",
                "publish",
                long.to_str().unwrap(),
                "--account",
                ACCOUNT,
            ],
        )
        .await;
    assert_eq!(run.code, 5, "{run:?}");
    assert!(run.stderr.contains("市政府官网"), "{run:?}");
    assert!(
        stack
            .mock
            .state()
            .calls_to("/cgi-bin/menu/create")
            .is_empty()
    );

    // An editor may not publish; an admin does, and WeChat receives it.
    let run = stack
        .run(EDITOR_KEY, &["menu", "publish", good, "--account", ACCOUNT])
        .await;
    assert_eq!(run.code, 4, "{run:?}");
    let published = stack
        .ok(
            DEV_ADMIN_KEY,
            &[
                "menu",
                "publish",
                good,
                "--account",
                ACCOUNT,
                "--note",
                "首版",
            ],
        )
        .await;
    assert_eq!(
        published,
        format!("default of {ACCOUNT}: version 1 published\n")
    );
    let created = stack.mock.state().calls_to("/cgi-bin/menu/create");
    assert_eq!(created.len(), 1);
    let body = created[0].body.as_ref().unwrap();
    assert_eq!(body["button"][2]["key"], "ASK", "{body}");

    let shown = stack
        .ok(DEV_ADMIN_KEY, &["menu", "show", "--account", ACCOUNT])
        .await;
    assert!(shown.contains("published"), "{shown}");
    assert!(
        shown.contains("└ 社保服务") && shown.contains("social_security"),
        "{shown}"
    );
    let versions = stack
        .json(
            DEV_ADMIN_KEY,
            &["menu", "show", "--account", ACCOUNT, "--versions"],
        )
        .await;
    assert_eq!(versions["versions"][0]["note"], "首版");
    assert_eq!(versions["versions"][0]["published"], true);
    let _ = std::fs::remove_dir_all(&dir);
    stack.stop().await;
}
