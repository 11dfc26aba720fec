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

/// An article written by li and approved by wang, zhao and chen (三审, each a
/// different person), through the commands an office would use.
async fn approved(stack: &Stack) -> String {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("govwx-articles-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let body = dir.join("notice.md");
    std::fs::write(&body, "本周六上午九点至十二点停水。\n").unwrap();
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
