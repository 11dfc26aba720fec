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
async fn a_send_whose_outcome_is_unknown_is_flagged_and_record_published_settles_it() {
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
    let publish = stack
        .run(
            DEV_ADMIN_KEY,
            &["articles", "publish", &id, "--actor", "chen"],
        )
        .await;
    assert_eq!(publish.code, 7, "{publish:?}");
    assert!(
        publish
            .stdout
            .contains("failed (outcome unknown: may have been sent"),
        "{publish:?}"
    );

    // What the publisher reads: the flag and both ways out.
    let shown = stack.ok(DEV_ADMIN_KEY, &["articles", "show", &id]).await;
    let state = shown
        .lines()
        .find(|l| l.starts_with("state"))
        .unwrap_or_else(|| panic!("a state line: {shown}"));
    assert!(
        state.contains(
            "failed (outcome unknown: may have been sent — check the account, then \
             record-published or publish again with --confirm-possible-duplicate)"
        ),
        "{shown}"
    );
    let json = stack.json(DEV_ADMIN_KEY, &["articles", "show", &id]).await;
    assert_eq!(json["article"]["send_outcome_unknown"], true, "{json}");
    let listed = stack
        .ok(DEV_ADMIN_KEY, &["articles", "list", "--account", ACCOUNT])
        .await;
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(&id) && l.contains("failed (outcome unknown)")),
        "{listed}"
    );

    // Found in the account's published list: recorded, nothing sent again.
    let url = "https://mp.weixin.qq.com/s/water-notice";
    let not_wechat = stack
        .run(
            DEV_ADMIN_KEY,
            &[
                "articles",
                "record-published",
                &id,
                "--url",
                "https://example.gov.cn/water",
                "--actor",
                "chen",
            ],
        )
        .await;
    assert_eq!(not_wechat.code, 5, "{not_wechat:?}");
    assert!(
        not_wechat.stderr.contains("INVALID_ARGUMENT") && not_wechat.stderr.contains("url"),
        "{not_wechat:?}"
    );
    let record = [
        "articles",
        "record-published",
        &id,
        "--url",
        url,
        "--msg-data-id",
        "2247483650_1",
        "--published-at",
        "2026-12-05T10:00:00+08:00",
        "--comment",
        "在已发表列表中找到",
        "--actor",
        "chen",
    ];
    let recorded = stack.run(DEV_ADMIN_KEY, &record).await;
    assert_eq!(recorded.code, 0, "{recorded:?}");
    assert_eq!(
        recorded.stdout.trim(),
        format!("article {id}: published"),
        "{recorded:?}"
    );
    assert_eq!(stack.mock.state().calls_to(SUBMIT).len(), 1);
    let json = stack.json(DEV_ADMIN_KEY, &["articles", "show", &id]).await;
    let article = &json["article"];
    assert_eq!(article["state"], "published", "{json}");
    assert_eq!(article["send_outcome_unknown"], false, "{json}");
    assert_eq!(article["url"], url, "{json}");
    assert_eq!(article["msg_data_id"], "2247483650_1", "{json}");
    assert_eq!(
        article["published_at"], "2026-12-05T10:00:00+08:00",
        "{json}"
    );
    let entry = json["audit"]
        .as_array()
        .expect("audit")
        .iter()
        .find(|e| e["action"] == "record_published")
        .unwrap_or_else(|| panic!("the record is in the trail: {json}"))
        .clone();
    assert_eq!(entry["actor"], "city-office:chen", "{json}");
    assert!(
        entry["comment"]
            .as_str()
            .is_some_and(|c| c.contains(url) && c.contains("在已发表列表中找到")),
        "{json}"
    );

    // Settled: a second record is refused.
    let again = stack.run(DEV_ADMIN_KEY, &record).await;
    assert_eq!(again.code, 5, "{again:?}");
    assert!(again.stderr.contains("FAILED_PRECONDITION"), "{again:?}");
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
async fn an_update_refuses_to_overwrite_an_edit_saved_between_its_read_and_its_write() {
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
    let content_addr = stack
        .govwx(DEV_ADMIN_KEY)
        .as_std()
        .get_envs()
        .find(|(name, _)| *name == "GOVWX_CONTENT_ADDR")
        .and_then(|(_, value)| value)
        .and_then(|value| value.to_str())
        .expect("govwx is pointed at content-svc")
        .to_owned();
    let relay = HoldSecondCall::start(&content_addr).await;

    // 李's update reads version 1 through the relay, which holds its write...
    let mine = write_body("本周日上午九点至十二点停水。\n");
    let mut update = stack.govwx(DEV_ADMIN_KEY);
    update
        .env("GOVWX_CONTENT_ADDR", &relay.addr)
        .args(["articles", "update", &id])
        .arg(&mine)
        .args(["--actor", "li"]);
    let update = tokio::spawn(async move { update.output().await.expect("govwx runs") });
    if relay.held.await.is_err() {
        let run = update.await.unwrap();
        panic!(
            "govwx did not write: {}",
            String::from_utf8_lossy(&run.stderr)
        );
    }
    // ...while 张's edit is saved (version 2).
    let theirs = write_body("本周六上午九点至下午三点停水。\n");
    stack
        .ok(
            DEV_ADMIN_KEY,
            &[
                "articles",
                "update",
                &id,
                theirs.to_str().unwrap(),
                "--actor",
                "zhang",
            ],
        )
        .await;
    relay.release.send(()).expect("the relay waits");

    let refused = update.await.expect("govwx finished");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(5), "{stderr}");
    assert!(
        stderr.contains("the article changed since you read it: version 2 is current"),
        "{stderr}"
    );
    let shown = stack.json(DEV_ADMIN_KEY, &["articles", "show", &id]).await;
    assert_eq!(shown["article"]["version"], 2, "{shown}");
    assert!(
        shown["article"]["content"]["body"]
            .as_str()
            .is_some_and(|b| b.contains("下午三点")),
        "张's edit stands: {shown}"
    );
    stack.stop().await;
}

#[tokio::test]
async fn an_update_based_on_a_version_read_before_another_edit_is_refused_with_read_version() {
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
    // 李 read version 1 (`articles show`) and edits from it; 张 saves version 2 first.
    let theirs = write_body("本周六上午九点至下午三点停水。\n");
    stack
        .ok(
            DEV_ADMIN_KEY,
            &[
                "articles",
                "update",
                &id,
                theirs.to_str().unwrap(),
                "--actor",
                "zhang",
            ],
        )
        .await;

    let mine = write_body("本周日上午九点至十二点停水。\n");
    let stale = stack
        .run(
            DEV_ADMIN_KEY,
            &[
                "articles",
                "update",
                &id,
                mine.to_str().unwrap(),
                "--read-version",
                "1",
                "--actor",
                "li",
            ],
        )
        .await;
    assert_eq!(stale.code, 5, "{stale:?}");
    assert!(
        stale
            .stderr
            .contains("the article changed since you read it: version 2 is current"),
        "{stale:?}"
    );
    let shown = stack.json(DEV_ADMIN_KEY, &["articles", "show", &id]).await;
    assert_eq!(shown["article"]["version"], 2, "{shown}");
    assert!(
        shown["article"]["content"]["body"]
            .as_str()
            .is_some_and(|b| b.contains("下午三点")),
        "张's edit stands: {shown}"
    );

    // Based on the current version, the edit is saved.
    stack
        .ok(
            DEV_ADMIN_KEY,
            &[
                "articles",
                "update",
                &id,
                mine.to_str().unwrap(),
                "--read-version",
                "2",
                "--actor",
                "li",
            ],
        )
        .await;
    let shown = stack.json(DEV_ADMIN_KEY, &["articles", "show", &id]).await;
    assert_eq!(shown["article"]["version"], 3, "{shown}");
    assert!(
        shown["article"]["content"]["body"]
            .as_str()
            .is_some_and(|b| b.contains("本周日")),
        "李's edit saved: {shown}"
    );
    stack.stop().await;
}

/// A TCP relay to content-svc for one govwx connection that holds its second gRPC
/// call (the HTTP/2 HEADERS frame opening stream 3: the first call is stream 1)
/// until `release`, saying so on `held`: a write after a read, held in between.
struct HoldSecondCall {
    addr: String,
    held: tokio::sync::oneshot::Receiver<()>,
    release: tokio::sync::oneshot::Sender<()>,
}

impl HoldSecondCall {
    async fn start(upstream: &str) -> Self {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        /// "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", then frames of a 9-byte header.
        const PREFACE: usize = 24;
        const HEADERS: u8 = 1;

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let upstream = upstream.to_owned();
        let (held_tx, held) = tokio::sync::oneshot::channel();
        let (release, release_rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let (client, _) = listener.accept().await.expect("govwx connects");
            let server = tokio::net::TcpStream::connect(&upstream)
                .await
                .expect("content-svc listens");
            let (mut from_client, mut to_client) = client.into_split();
            let (mut from_server, mut to_server) = server.into_split();
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
                let _ = to_client.shutdown().await;
            });
            let mut preface = [0u8; PREFACE];
            if from_client.read_exact(&mut preface).await.is_err()
                || to_server.write_all(&preface).await.is_err()
            {
                return;
            }
            let (mut held_tx, mut release_rx) = (Some(held_tx), Some(release_rx));
            loop {
                let mut header = [0u8; 9];
                if from_client.read_exact(&mut header).await.is_err() {
                    break;
                }
                let length = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
                let stream =
                    u32::from_be_bytes([header[5], header[6], header[7], header[8]]) & 0x7fff_ffff;
                let mut payload = vec![0u8; length];
                if from_client.read_exact(&mut payload).await.is_err() {
                    break;
                }
                if header[3] == HEADERS
                    && stream == 3
                    && let (Some(held), Some(release)) = (held_tx.take(), release_rx.take())
                {
                    let _ = held.send(());
                    let _ = release.await;
                }
                if to_server.write_all(&header).await.is_err()
                    || to_server.write_all(&payload).await.is_err()
                {
                    break;
                }
            }
            let _ = to_server.shutdown().await;
        });
        HoldSecondCall {
            addr,
            held,
            release,
        }
    }
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

#[tokio::test]
async fn show_gives_the_job_an_article_was_handed_to_and_the_place_it_was_sent_at() {
    // The mock sends no job-finish callback here: the article stays with WeChat.
    let stack = Stack::with_content().await;
    let id = approved(&stack).await;
    let before = stack.ok(DEV_ADMIN_KEY, &["articles", "show", &id]).await;
    assert!(!before.contains("WECHAT JOB"), "not handed over: {before}");
    stack
        .ok(
            DEV_ADMIN_KEY,
            &["articles", "publish", &id, "--actor", "chen"],
        )
        .await;

    let json = stack.json(DEV_ADMIN_KEY, &["articles", "show", &id]).await;
    let job = &json["wechat_job"];
    let publish_id = job["publish_id"]
        .as_str()
        .expect("the freepublish job's id");
    assert_eq!(job["mass_msg_id"], serde_json::Value::Null, "{json}");
    assert_eq!(job["sent_position"], 1, "{json}");
    assert_eq!(job["sent_version"], 1, "{json}");
    assert!(job["handed_at"].is_string(), "{json}");
    let shown = stack.ok(DEV_ADMIN_KEY, &["articles", "show", &id]).await;
    let section = shown
        .split("WECHAT JOB\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no job section: {shown}"));
    let line = |name: &str| {
        section
            .lines()
            .find(|l| l.starts_with(name))
            .map(|l| l[name.len()..].trim().to_owned())
            .unwrap_or_else(|| panic!("no {name} line: {shown}"))
    };
    assert_eq!(line("publish id:"), publish_id);
    assert_eq!(line("place sent:"), "1");
    assert_eq!(line("version sent:"), "1");
    assert_ne!(line("handed over:"), "-");
    stack.stop().await;
}
