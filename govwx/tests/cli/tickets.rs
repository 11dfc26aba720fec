//! A department works its queue with `govwx`: list, show, answer, close, watch; and
//! what it sees when something is wrong.

use platform::testing::ChaosProxy;
use unicode_width::UnicodeWidthStr;

use crate::helpers::{ACCOUNT, ADMIN_KEY, SOCIAL_AGENT_KEY, Stack, TRANSPORT_AGENT_KEY};

const CITIZEN: &str = "o-citizen-streetlight";
const NEWCOMER: &str = "o-citizen-newcomer";
const ANSWER: &str = "您好，已收到，正在处理。";
const CUSTOM_SEND: &str = "/cgi-bin/message/custom/send";

#[tokio::test]
async fn a_department_lists_shows_answers_and_closes_a_ticket_from_the_terminal() {
    let stack = Stack::start().await;
    stack.citizen_wrote(CITIZEN).await;
    let streetlight = stack
        .insert_ticket(CITIZEN, "social-security", "路灯不亮")
        .await;
    let bus = stack
        .insert_ticket("o-citizen-bus", "social-security", "bus 12 is late")
        .await;
    let other = stack
        .insert_ticket("o-citizen-road", "transport", "道路坑洼")
        .await;
    // The admin's watch sees every department's queue; it goes through a proxy the
    // test can cut.
    let link = ChaosProxy::start(&format!("127.0.0.1:{}", stack.grpc_port())).await;
    let mut watch = stack.watch(ADMIN_KEY, link.port()).await;

    // The table lists the department's own tickets, the Chinese summary as wide as
    // the columns after it allow: every row's OPENED starts under the header's.
    let table = stack.ok(SOCIAL_AGENT_KEY, &["tickets", "list"]).await;
    assert!(
        table.contains(&streetlight) && table.contains(&bus),
        "{table}"
    );
    assert!(
        !table.contains(&other),
        "another department's ticket: {table}"
    );
    let lines: Vec<&str> = table.lines().collect();
    let header = lines[0];
    let opened_at = header[..header.find("OPENED").unwrap()].width();
    for (row, summary) in [(&streetlight, "路灯不亮"), (&bus, "bus 12 is late")] {
        let line = lines.iter().find(|l| l.contains(row.as_str())).unwrap();
        let after_summary = line.find(summary).unwrap() + summary.len();
        let gap = line[after_summary..].len() - line[after_summary..].trim_start().len();
        let column = line[..after_summary + gap].width();
        assert_eq!(column, opened_at, "OPENED misaligned:\n{table}");
    }

    // JSON for scripts: one document, times in the office's zone.
    let listed = stack
        .json(SOCIAL_AGENT_KEY, &["tickets", "list", "--state", "open"])
        .await;
    let first = listed["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == streetlight.as_str())
        .expect("the ticket is listed");
    assert_eq!(first["state"], "open");
    assert_eq!(first["summary"], "路灯不亮");
    assert!(first["opened_at"].as_str().unwrap().ends_with("+08:00"));

    let shown = stack
        .ok(SOCIAL_AGENT_KEY, &["tickets", "show", &streetlight])
        .await;
    assert!(
        shown.contains("路灯不亮") && shown.contains(CITIZEN),
        "{shown}"
    );

    // The answer goes out through WeChat, and the watching department sees it.
    let run = stack
        .run(
            SOCIAL_AGENT_KEY,
            &["tickets", "reply", &streetlight, ANSWER],
        )
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("answer sent to the citizen"), "{run:?}");
    // The id a retry would need is said before the call (a script killed part-way has it).
    assert!(
        run.stderr.starts_with("govwx: request id ") && run.stderr.contains("--request-id "),
        "{run:?}"
    );
    let sent: Vec<_> = stack
        .mock
        .state()
        .calls_to(CUSTOM_SEND)
        .into_iter()
        .filter_map(|call| call.body)
        .collect();
    assert!(
        sent.iter()
            .any(|body| body["touser"] == CITIZEN && body["text"]["content"] == ANSWER),
        "the mock API received {sent:?}"
    );
    watch.until("replied", "id", &streetlight).await;

    let answered = stack
        .json(SOCIAL_AGENT_KEY, &["tickets", "show", &streetlight])
        .await;
    assert_eq!(answered["state"], "answered");
    let outbound = answered["thread"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["direction"] == "outbound")
        .expect("the answer is in the thread");
    assert_eq!(outbound["text"], ANSWER);
    assert_eq!(outbound["delivery"], "sent");

    let closed = stack
        .ok(SOCIAL_AGENT_KEY, &["tickets", "close", &streetlight])
        .await;
    assert!(closed.contains("closed"), "{closed}");
    let reopened = stack
        .json(SOCIAL_AGENT_KEY, &["tickets", "reopen", &streetlight])
        .await;
    assert_eq!(reopened["state"], "reopened");
    let assigned = stack
        .ok(
            SOCIAL_AGENT_KEY,
            &["tickets", "assign", &streetlight, "--assignee", "zhang.wei"],
        )
        .await;
    assert!(assigned.contains("zhang.wei"), "{assigned}");

    // The citizen behind it, tagged for later.
    let tagged = stack
        .json(
            SOCIAL_AGENT_KEY,
            &[
                "followers",
                "tag",
                "--account",
                ACCOUNT,
                CITIZEN,
                "--add",
                "路灯",
            ],
        )
        .await;
    assert_eq!(tagged["tags"][0], "路灯");
    let follower = stack
        .ok(
            SOCIAL_AGENT_KEY,
            &["followers", "show", "--account", ACCOUNT, CITIZEN],
        )
        .await;
    assert!(
        follower.contains("路灯") && follower.contains("subscribed:"),
        "{follower}"
    );

    // A citizen writes: the watch prints the ticket as it opens.
    stack.citizen_says(NEWCOMER, "路灯又坏了，三天没人修").await;
    let opened = watch.until("opened", "openid", NEWCOMER).await;
    assert_eq!(opened["ticket"]["state"], "open");
    assert_eq!(opened["ticket"]["department"], "citizen-services");

    // The link drops: the watch says so, reconnects once it is back, resumes where
    // it left off (what changed meanwhile is printed, once) and goes on.
    link.cut();
    watch.says("reconnecting").await;
    stack
        .ok(
            SOCIAL_AGENT_KEY,
            &["tickets", "ack", &bus, "--note", "在查"],
        )
        .await;
    link.restore();
    watch.says("govwx: watching").await;
    watch.until("acknowledged", "id", &bus).await;
    stack
        .ok(TRANSPORT_AGENT_KEY, &["tickets", "ack", &other])
        .await;
    let passed = watch.until_all("acknowledged", "id", &other).await;
    assert!(
        !passed.iter().any(|e| e["ticket"]["id"] == bus.as_str()),
        "the change made while away printed twice: {passed:?}"
    );

    // Rules are an admin's: add a routing rule and find it listed.
    let added = stack
        .ok(
            ADMIN_KEY,
            &[
                "rules",
                "add",
                "routing",
                "--account",
                ACCOUNT,
                "--keyword",
                "路灯",
                "--department",
                "social-security",
                "--category",
                "help",
                "--priority",
                "10",
            ],
        )
        .await;
    assert!(added.contains("social-security"), "{added}");
    let rules = stack
        .json(
            ADMIN_KEY,
            &["rules", "list", "--account", ACCOUNT, "--kind", "routing"],
        )
        .await;
    assert_eq!(rules["routing_rules"][0]["keywords"][0], "路灯");
    let rule_id = rules["routing_rules"][0]["id"].as_str().unwrap().to_owned();
    stack
        .ok(ADMIN_KEY, &["rules", "rm", "routing", &rule_id])
        .await;
    stack
        .ok(
            ADMIN_KEY,
            &[
                "rules",
                "add",
                "reply",
                "--account",
                ACCOUNT,
                "--match",
                "contains",
                "--pattern",
                "社保",
                "--text",
                "社保问题请拨打12333",
                "--priority",
                "5",
            ],
        )
        .await;
    let rules = stack
        .json(ADMIN_KEY, &["rules", "list", "--account", ACCOUNT])
        .await;
    assert_eq!(rules["routing_rules"], serde_json::json!([]));
    assert_eq!(rules["reply_rules"][0]["match"], "contains");
    assert_eq!(rules["reply_rules"][0]["text"], "社保问题请拨打12333");

    // Wrong key, another department's ticket, a server that is not there: one line
    // each, and an exit code a script can tell apart.
    let wrong_key = stack.run("not-a-key", &["tickets", "list"]).await;
    assert_eq!(wrong_key.code, 4, "{wrong_key:?}");
    assert_eq!(wrong_key.stderr.lines().count(), 1, "{wrong_key:?}");
    assert!(
        wrong_key.stderr.starts_with("govwx: UNAUTHENTICATED"),
        "{wrong_key:?}"
    );
    assert!(
        !wrong_key.stderr.contains("not-a-key"),
        "the key is never printed"
    );

    let elsewhere = stack
        .run(TRANSPORT_AGENT_KEY, &["tickets", "close", &bus])
        .await;
    assert_eq!(elsewhere.code, 3, "{elsewhere:?}");
    assert_eq!(elsewhere.stderr.lines().count(), 1, "{elsewhere:?}");
    assert!(
        elsewhere.stderr.starts_with("govwx: NOT_FOUND"),
        "{elsewhere:?}"
    );

    let port = platform::testing::free_port();
    let down = stack
        .run(
            SOCIAL_AGENT_KEY,
            &[
                "--interaction-addr",
                &format!("127.0.0.1:{port}"),
                "tickets",
                "list",
            ],
        )
        .await;
    assert_eq!(down.code, 69, "{down:?}");
    assert!(
        down.stderr.starts_with(&format!(
            "govwx: cannot reach interaction-svc at http://127.0.0.1:{port}"
        )),
        "{down:?}"
    );

    let no_ca = stack
        .run(
            SOCIAL_AGENT_KEY,
            &["--ca-file", "/nonexistent/ca.pem", "tickets", "list"],
        )
        .await;
    assert_eq!(no_ca.code, 78, "{no_ca:?}");
    assert!(
        no_ca.stderr.starts_with("govwx: cannot read --ca-file"),
        "{no_ca:?}"
    );

    drop(watch);
    stack.stop().await;
}

/// What a citizen could write to act on the operator's terminal: retitle it, clear
/// it, write its clipboard (OSC 52), reverse the rest of a line.
const HOSTILE_SUMMARY: &str =
    "路灯\x1b]0;owned\x07不亮\x1b[2J\x1b]52;c;cm0gLXJmIH4=\x07 \u{202E}evil\u{9b}31m";

#[tokio::test]
async fn a_citizens_escape_sequences_never_reach_the_operators_terminal() {
    let stack = Stack::start().await;
    let id = stack
        .insert_ticket(CITIZEN, "social-security", HOSTILE_SUMMARY)
        .await;
    let acts = |text: &str| {
        text.chars().find(|c| {
            (c.is_control() && *c != '\n')
                || ('\u{202A}'..='\u{202E}').contains(c)
                || ('\u{2066}'..='\u{2069}').contains(c)
        })
    };

    let list = stack.ok(SOCIAL_AGENT_KEY, &["tickets", "list"]).await;
    assert!(list.contains(&id), "{list}");
    assert!(
        !list.as_bytes().contains(&0x1b),
        "ESC in `tickets list`: {list:?}"
    );
    assert_eq!(acts(&list), None, "{list:?}");
    assert!(
        list.contains("路灯\u{FFFD}]0;owned\u{FFFD}不亮"),
        "{list:?}"
    );

    let show = stack.ok(SOCIAL_AGENT_KEY, &["tickets", "show", &id]).await;
    assert!(
        !show.as_bytes().contains(&0x1b),
        "ESC in `tickets show`: {show:?}"
    );
    assert_eq!(acts(&show), None, "{show:?}");

    // JSON keeps the text exactly, escaped.
    let run = stack
        .run(SOCIAL_AGENT_KEY, &["--json", "tickets", "show", &id])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(acts(&run.stdout), None, "{:?}", run.stdout);
    let shown: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(shown["summary"], HOSTILE_SUMMARY);

    stack.stop().await;
}
