//! The article commands against a real content-svc, with WeChat played by the mock.

use wechat_sim::api_server::FaultRequest;

use crate::helpers::{ACCOUNT, DEV_ADMIN_KEY, Stack};

/// WeChat's free-publish call: no client message id, so a second one would publish twice.
const SUBMIT: &str = "/cgi-bin/freepublish/submit";

#[tokio::test]
async fn a_publish_whose_answer_from_wechat_was_lost_exits_non_zero_saying_it_may_have_published() {
    let stack = Stack::with_content().await;
    let id = approved(&stack).await;
    // WeChat takes the submission, but its answer is lost on the way back (a 502).
    stack
        .mock
        .state()
        .inject(&FaultRequest {
            lose_answers: Some(1),
            lose_path: Some(SUBMIT.into()),
            ..Default::default()
        })
        .expect("fault injected");

    let run = stack
        .run(
            DEV_ADMIN_KEY,
            &["articles", "publish", &id, "--actor", "chen"],
        )
        .await;

    assert_eq!(run.code, 7, "{run:?}");
    assert!(run.stdout.contains("failed"), "{run:?}");
    assert!(
        run.stderr
            .starts_with(&format!("govwx: article {id} was not published: ")),
        "{run:?}"
    );
    assert!(run.stderr.contains("may have published"), "{run:?}");
    stack.stop().await;
}

#[tokio::test]
async fn a_publish_again_after_a_lost_answer_needs_confirm_possible_duplicate() {
    let stack = Stack::with_content().await;
    let id = approved(&stack).await;
    stack
        .mock
        .state()
        .inject(&FaultRequest {
            lose_answers: Some(1),
            lose_path: Some(SUBMIT.into()),
            ..Default::default()
        })
        .expect("fault injected");
    let publish = ["articles", "publish", &id, "--actor", "chen"];
    assert_eq!(stack.run(DEV_ADMIN_KEY, &publish).await.code, 7);

    // Again as before: refused, WeChat not called.
    let refused = stack.run(DEV_ADMIN_KEY, &publish).await;
    assert_eq!(refused.code, 5, "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("govwx: FAILED_PRECONDITION: the last send may have reached followers")
            && refused
                .stderr
                .contains("re-run with --confirm-possible-duplicate"),
        "{refused:?}"
    );
    assert_eq!(stack.mock.state().calls_to(SUBMIT).len(), 1);

    // Checked in WeChat's console: not published. Confirmed, it goes out.
    let confirmed = stack
        .run(
            DEV_ADMIN_KEY,
            &[&publish[..], &["--confirm-possible-duplicate"]].concat(),
        )
        .await;
    assert_eq!(confirmed.code, 0, "{confirmed:?}");
    assert_eq!(stack.mock.state().calls_to(SUBMIT).len(), 2);
    let shown = stack.json(DEV_ADMIN_KEY, &["articles", "show", &id]).await;
    let confirmation = shown["audit"]
        .as_array()
        .expect("audit")
        .iter()
        .find(|e| e["action"] == "confirm_possible_duplicate")
        .expect("the confirmation is in the trail")
        .clone();
    assert_eq!(confirmation["actor"], "city-office:chen");
    stack.stop().await;
}

#[tokio::test]
async fn articles_create_says_its_request_id_first_and_a_rerun_with_it_creates_nothing_more() {
    let stack = Stack::with_content().await;
    let body = write_body("本周六上午九点至十二点停水。\n");
    let create = [
        "--json",
        "articles",
        "create",
        body.to_str().unwrap(),
        "--title",
        "停水通知",
        "--cover",
        "MEDIA_COVER_1",
        "--account",
        ACCOUNT,
        "--actor",
        "li",
    ];

    let first = stack.run(DEV_ADMIN_KEY, &create).await;
    assert_eq!(first.code, 0, "{first:?}");
    let request_id = first
        .stderr
        .strip_prefix("govwx: request id ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("the request id is said first: {first:?}"))
        .to_owned();
    assert!(uuid::Uuid::parse_str(&request_id).is_ok(), "{request_id}");
    assert!(
        first
            .stderr
            .contains(&format!("re-run with --request-id {request_id}")),
        "{first:?}"
    );
    let created: serde_json::Value = serde_json::from_str(&first.stdout).expect("JSON");

    // The script re-runs it with the id (its first run timed out, say).
    let rerun = stack
        .run(
            DEV_ADMIN_KEY,
            &[&create[..], &["--request-id", &request_id]].concat(),
        )
        .await;
    assert_eq!(rerun.code, 0, "{rerun:?}");
    assert!(rerun.stderr.is_empty(), "no new id: {rerun:?}");
    let again: serde_json::Value = serde_json::from_str(&rerun.stdout).expect("JSON");
    assert_eq!(again["id"], created["id"]);
    let listed = stack
        .json(DEV_ADMIN_KEY, &["articles", "list", "--account", ACCOUNT])
        .await;
    assert_eq!(listed["articles"].as_array().expect("articles").len(), 1);
    stack.stop().await;
}

/// A Markdown body file of `text`.
fn write_body(text: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("govwx-articles-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let body = dir.join("notice.md");
    std::fs::write(&body, text).unwrap();
    body
}

/// An article written by li and approved by wang, zhao and chen (三审, each a
/// different person), through the commands an office would use.
async fn approved(stack: &Stack) -> String {
    let body = write_body("本周六上午九点至十二点停水。\n");
    let created = stack
        .json(
            DEV_ADMIN_KEY,
            &[
                "articles",
                "create",
                body.to_str().unwrap(),
                "--title",
                "停水通知",
                "--cover",
                "MEDIA_COVER_1",
                "--account",
                ACCOUNT,
                "--actor",
                "li",
            ],
        )
        .await;
    let id = created["id"].as_str().expect("an id").to_owned();
    stack
        .ok(DEV_ADMIN_KEY, &["articles", "submit", &id, "--actor", "li"])
        .await;
    for person in ["wang", "zhao", "chen"] {
        stack
            .ok(
                DEV_ADMIN_KEY,
                &["articles", "review", &id, "approve", "--actor", person],
            )
            .await;
    }
    id
}

#[tokio::test]
async fn an_update_without_cover_keeps_the_drafts_cover() {
    let stack = Stack::with_content().await;
    let body = write_body("本周六上午九点至十二点停水。\n");
    let created = stack
        .json(
            DEV_ADMIN_KEY,
            &[
                "articles",
                "create",
                body.to_str().unwrap(),
                "--title",
                "停水通知",
                "--cover",
                "MEDIA_COVER_1",
                "--account",
                ACCOUNT,
                "--actor",
                "li",
            ],
        )
        .await;
    let id = created["id"].as_str().expect("an id").to_owned();
    let fixed = write_body("本周日上午九点至十二点停水。\n");
    stack
        .ok(
            DEV_ADMIN_KEY,
            &[
                "articles",
                "update",
                &id,
                fixed.to_str().unwrap(),
                "--title",
                "停水通知",
                "--actor",
                "li",
            ],
        )
        .await;

    let shown = stack.json(DEV_ADMIN_KEY, &["articles", "show", &id]).await;
    assert_eq!(shown["article"]["version"], 2, "{shown}");
    assert_eq!(
        shown["article"]["content"]["cover_media_id"], "MEDIA_COVER_1",
        "{shown}"
    );
    stack
        .ok(DEV_ADMIN_KEY, &["articles", "submit", &id, "--actor", "li"])
        .await;
    stack.stop().await;
}

#[tokio::test]
async fn an_update_keeps_every_field_it_does_not_name_and_an_empty_one_clears_it() {
    let stack = Stack::with_content().await;
    let body = write_body("本周六上午九点至十二点停水。\n");
    let created = stack
        .json(
            DEV_ADMIN_KEY,
            &[
                "articles",
                "create",
                body.to_str().unwrap(),
                "--title",
                "停水通知",
                "--author",
                "市水务局",
                "--digest",
                "周六上午停水三小时",
                "--cover",
                "MEDIA_COVER_1",
                "--source-url",
                "https://example.gov.cn/water",
                "--column",
                "便民通知",
                "--comments",
                "--fans-only-comments",
                "--account",
                ACCOUNT,
                "--actor",
                "li",
            ],
        )
        .await;
    let id = created["id"].as_str().expect("an id").to_owned();
    let content = |shown: &serde_json::Value| shown["article"]["content"].clone();

    // The body and the title given, as before: every other field as it was.
    let fixed = write_body("本周日上午九点至十二点停水。\n");
    stack
        .ok(
            DEV_ADMIN_KEY,
            &[
                "articles",
                "update",
                &id,
                fixed.to_str().unwrap(),
                "--title",
                "停水通知",
                "--actor",
                "li",
            ],
        )
        .await;
    let shown = stack.json(DEV_ADMIN_KEY, &["articles", "show", &id]).await;
    assert_eq!(shown["article"]["version"], 2, "{shown}");
    let kept = content(&shown);
    assert!(kept["body"].as_str().unwrap().contains("周日"), "{shown}");
    for (field, value) in [
        ("title", serde_json::json!("停水通知")),
        ("author", serde_json::json!("市水务局")),
        ("digest", serde_json::json!("周六上午停水三小时")),
        ("cover_media_id", serde_json::json!("MEDIA_COVER_1")),
        (
            "source_url",
            serde_json::json!("https://example.gov.cn/water"),
        ),
        ("column", serde_json::json!("便民通知")),
        ("open_comment", serde_json::json!(true)),
        ("only_fans_can_comment", serde_json::json!(true)),
    ] {
        assert_eq!(kept[field], value, "{field}: {shown}");
    }

    // An empty value clears a field, =false turns a flag off; the rest (the title,
    // not given either) stays.
    stack
        .ok(
            DEV_ADMIN_KEY,
            &[
                "articles",
                "update",
                &id,
                fixed.to_str().unwrap(),
                "--digest",
                "",
                "--source-url",
                "",
                "--fans-only-comments=false",
                "--actor",
                "li",
            ],
        )
        .await;
    let shown = stack.json(DEV_ADMIN_KEY, &["articles", "show", &id]).await;
    let changed = content(&shown);
    assert_eq!(changed["digest"], "", "{shown}");
    assert_eq!(changed["source_url"], "", "{shown}");
    assert_eq!(changed["only_fans_can_comment"], false, "{shown}");
    assert_eq!(changed["open_comment"], true, "{shown}");
    assert_eq!(changed["title"], "停水通知", "{shown}");
    assert_eq!(changed["author"], "市水务局", "{shown}");
    assert_eq!(changed["column"], "便民通知", "{shown}");
    assert_eq!(changed["cover_media_id"], "MEDIA_COVER_1", "{shown}");
    stack.stop().await;
}

#[tokio::test]
async fn a_review_of_a_version_read_before_an_edit_is_refused_and_of_the_current_one_passes() {
    let stack = Stack::with_content().await;
    let body = write_body("本周六上午九点至十二点停水。\n");
    let created = stack
        .json(
            DEV_ADMIN_KEY,
            &[
                "articles",
                "create",
                body.to_str().unwrap(),
                "--title",
                "停水通知",
                "--cover",
                "MEDIA_COVER_1",
                "--account",
                ACCOUNT,
                "--actor",
                "li",
            ],
        )
        .await;
    let id = created["id"].as_str().expect("an id").to_owned();
    // 王 read version 1; 李 edits it before submitting.
    let fixed = write_body("本周日上午九点至十二点停水。\n");
    stack
        .ok(
            DEV_ADMIN_KEY,
            &[
                "articles",
                "update",
                &id,
                fixed.to_str().unwrap(),
                "--title",
                "停水通知",
                "--actor",
                "li",
            ],
        )
        .await;
    stack
        .ok(DEV_ADMIN_KEY, &["articles", "submit", &id, "--actor", "li"])
        .await;

    let stale = stack
        .run(
            DEV_ADMIN_KEY,
            &[
                "articles",
                "review",
                &id,
                "approve",
                "--read-version",
                "1",
                "--actor",
                "wang",
            ],
        )
        .await;
    assert_ne!(stale.code, 0, "{stale:?}");
    assert!(
        stale
            .stderr
            .contains("the article changed since you read it: version 2 is current"),
        "{stale:?}"
    );
    // Without --read-version, govwx reads the article and approves the version it read.
    stack
        .ok(
            DEV_ADMIN_KEY,
            &["articles", "review", &id, "approve", "--actor", "wang"],
        )
        .await;
    let shown = stack.json(DEV_ADMIN_KEY, &["articles", "show", &id]).await;
    assert_eq!(shown["article"]["state"], "first_reviewed", "{shown}");
    stack.stop().await;
}

#[tokio::test]
async fn an_approved_article_returned_for_revision_shows_the_cover_its_reviewers_passed() {
    let stack = Stack::with_content().await;
    let id = approved(&stack).await;
    let returned = stack
        .run(
            DEV_ADMIN_KEY,
            &[
                "articles",
                "return",
                &id,
                "--reason",
                "封面图有误",
                "--actor",
                "zhao",
            ],
        )
        .await;
    assert_eq!(returned.code, 0, "{returned:?}");
    assert!(
        returned.stdout.contains(&format!("article {id}: draft")),
        "{returned:?}"
    );
    // The editor changes the cover (the text stays).
    let body = write_body("本周六上午九点至十二点停水。\n");
    stack
        .ok(
            DEV_ADMIN_KEY,
            &[
                "articles",
                "update",
                &id,
                body.to_str().unwrap(),
                "--title",
                "停水通知",
                "--cover",
                "MEDIA_COVER_2",
                "--actor",
                "li",
            ],
        )
        .await;

    let shown = stack.ok(DEV_ADMIN_KEY, &["articles", "show", &id]).await;
    let reviewed = shown
        .split("LAST REVIEWED (version 1, changed since)\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no last reviewed section: {shown}"));
    assert!(
        reviewed
            .lines()
            .any(|l| l.starts_with("cover:") && l.ends_with("MEDIA_COVER_1")),
        "{shown}"
    );
    assert!(
        shown.contains("封面图有误"),
        "the return in the trail: {shown}"
    );
    let json = stack.json(DEV_ADMIN_KEY, &["articles", "show", &id]).await;
    assert_eq!(json["last_reviewed_settings_recorded"], true, "{json}");
    assert_eq!(
        json["last_reviewed_content"]["cover_media_id"], "MEDIA_COVER_1",
        "{json}"
    );
    assert_eq!(
        json["article"]["content"]["cover_media_id"],
        "MEDIA_COVER_2"
    );
    stack.stop().await;
}

#[tokio::test]
async fn articles_versions_lists_each_version_with_its_review_and_shows_an_earlier_one_whole() {
    let stack = Stack::with_content().await;
    let id = approved(&stack).await;
    stack
        .ok(
            DEV_ADMIN_KEY,
            &[
                "articles",
                "return",
                &id,
                "--reason",
                "日期有误",
                "--actor",
                "zhao",
            ],
        )
        .await;
    let fixed = write_body("本周日上午九点至十二点停水。\n");
    stack
        .ok(
            DEV_ADMIN_KEY,
            &[
                "articles",
                "update",
                &id,
                fixed.to_str().unwrap(),
                "--title",
                "停水通知",
                "--actor",
                "li",
            ],
        )
        .await;

    let listed = stack
        .json(DEV_ADMIN_KEY, &["articles", "versions", &id])
        .await;
    let versions = listed["versions"].as_array().expect("versions");
    let summary: Vec<_> = versions
        .iter()
        .map(|v| {
            (
                v["version"].as_u64().unwrap_or_default(),
                v["outcome"].as_str().unwrap_or_default().to_owned(),
                v["current"].as_bool().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (2, "not_reviewed".to_owned(), true),
            (1, "returned".to_owned(), false),
        ],
        "{listed}"
    );
    assert_eq!(listed["next_page_token"], "", "{listed}");
    let table = stack
        .ok(DEV_ADMIN_KEY, &["articles", "versions", &id])
        .await;
    assert!(
        table.contains("2 (current)") && table.contains("returned"),
        "{table}"
    );

    // The version the three reviewers approved, whole.
    let first = stack
        .json(DEV_ADMIN_KEY, &["articles", "versions", &id, "1"])
        .await;
    assert_eq!(first["version"], 1, "{first}");
    assert!(
        first["content"]["body"]
            .as_str()
            .is_some_and(|b| b.contains("本周六")),
        "{first}"
    );
    let steps: Vec<_> = first["reviews"]
        .as_array()
        .expect("reviews")
        .iter()
        .map(|r| r["action"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        steps,
        ["submit", "approve", "approve", "approve", "return"],
        "{first}"
    );
    let missing = stack
        .run(DEV_ADMIN_KEY, &["articles", "versions", &id, "7"])
        .await;
    assert_ne!(missing.code, 0, "{}", missing.stderr);
    assert!(
        missing.stderr.contains("no version 7"),
        "{}",
        missing.stderr
    );
    stack.stop().await;
}
