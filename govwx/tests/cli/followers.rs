//! A citizen's request to delete their data, carried out from the terminal with an
//! admin key once the department closed their ticket.

use crate::helpers::{ACCOUNT, ADMIN_KEY, SOCIAL_AGENT_KEY, Stack};

const CITIZEN: &str = "o-citizen-wants-out";

#[tokio::test]
async fn an_admin_erases_a_citizens_data_once_the_department_closed_their_ticket() {
    let stack = Stack::start().await;
    stack.citizen_wrote(CITIZEN).await;
    let ticket = stack
        .insert_ticket(CITIZEN, "social-security", "我的电话是13800000000")
        .await;
    let erase = [
        "followers",
        "erase",
        "--account",
        ACCOUNT,
        CITIZEN,
        "--reason",
        "依申请删除 2026-0042",
    ];

    // An agent may not; an admin is refused while the ticket is open, told which.
    let agent = stack.run(SOCIAL_AGENT_KEY, &erase).await;
    assert_eq!(agent.code, 4, "{agent:?}");
    let open = stack.run(ADMIN_KEY, &erase).await;
    assert_eq!(open.code, 5, "{open:?}");
    assert!(open.stderr.contains(&ticket), "{open:?}");

    stack
        .ok(
            SOCIAL_AGENT_KEY,
            &[
                "tickets",
                "close",
                &ticket,
                "--note",
                "市民要求删除个人信息",
            ],
        )
        .await;
    let erased = stack.json(ADMIN_KEY, &erase).await;
    assert_eq!(erased["followers"], 1, "{erased}");
    assert_eq!(erased["tickets"], 1, "{erased}");
    assert!(erased["decided_replies"].is_u64(), "{erased}");
    assert!(
        !erased["erasure_id"].as_str().unwrap().is_empty(),
        "{erased}"
    );

    let shown = stack.ok(ADMIN_KEY, &["tickets", "show", &ticket]).await;
    assert!(!shown.contains(CITIZEN), "{shown}");
    assert!(!shown.contains("13800000000"), "{shown}");
    let follower = stack
        .run(
            ADMIN_KEY,
            &["followers", "show", "--account", ACCOUNT, CITIZEN],
        )
        .await;
    assert_eq!(follower.code, 3, "the follower is gone: {follower:?}");
}
