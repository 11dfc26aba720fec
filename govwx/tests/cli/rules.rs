//! The rule commands' request ids: `rules add` says its id first and a re-run with
//! it adds nothing more (interaction-svc answers the rule the first call added).

use crate::helpers::{ACCOUNT, ADMIN_KEY, Stack};

#[tokio::test]
async fn rules_add_says_its_request_id_first_and_a_rerun_with_it_adds_nothing_more() {
    let stack = Stack::start().await;
    let add = [
        "--json",
        "rules",
        "add",
        "routing",
        "--account",
        ACCOUNT,
        "--keyword",
        "路灯",
        "--department",
        "social-security",
    ];

    let first = stack.run(ADMIN_KEY, &add).await;
    assert_eq!(first.code, 0, "{first:?}");
    let request_id = first
        .stderr
        .strip_prefix("govwx: request id ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("the request id is said first: {first:?}"))
        .to_owned();
    let added: serde_json::Value = serde_json::from_str(&first.stdout).expect("JSON");

    // Its first run timed out, say: re-run with the id it printed.
    let rerun = stack
        .run(
            ADMIN_KEY,
            &[&add[..], &["--request-id", &request_id]].concat(),
        )
        .await;
    assert_eq!(rerun.code, 0, "{rerun:?}");
    assert!(rerun.stderr.is_empty(), "no new id: {rerun:?}");
    let again: serde_json::Value = serde_json::from_str(&rerun.stdout).expect("JSON");
    assert_eq!(again["id"], added["id"]);
    let rules = stack
        .json(
            ADMIN_KEY,
            &["rules", "list", "--account", ACCOUNT, "--kind", "routing"],
        )
        .await;
    assert_eq!(rules["routing_rules"].as_array().expect("rules").len(), 1);
    stack.stop().await;
}
