//! What probing the API from outside found: free text with NUL or control
//! characters, echoed giant ids, unbounded tags and rules. Each is refused with
//! INVALID_ARGUMENT naming the field, before anything is sent or stored.

use chrono::Utc;
use proto::interaction::v1::{
    AssignTicketRequest, GetFollowerRequest, GetTicketRequest, MatchKind, NewsItem, ReplyRule,
    ReplyToTicketRequest, RoutingRule, TagFollowerRequest, TicketActionRequest,
};
use tonic::Code;
use wechat_sim::api_server::{DEMO_APPID, MockWechat, SimConfig};

use crate::helpers::{
    ACCOUNT, ADMIN_KEY, SOCIAL_AGENT_KEY, new_reply_rule, new_routing_rule, spawn_app_with_wechat,
};

fn invalid<T: std::fmt::Debug>(field: &str, result: Result<T, tonic::Status>) {
    let status = result.expect_err(field);
    assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
    assert!(
        status.message().starts_with(field) || status.message().contains(field),
        "{field}: {}",
        status.message()
    );
}

#[tokio::test]
async fn hostile_free_text_is_refused_before_anything_is_sent_or_stored() {
    let mock = MockWechat::start(SimConfig::default()).await.unwrap();
    let app = spawn_app_with_wechat(&mock).await;
    let citizen = "o-probed-citizen";
    app.insert_follower(citizen, Some(1)).await;
    mock.state()
        .record_interaction(DEMO_APPID, citizen, Utc::now())
        .unwrap();
    let ticket = app
        .insert_citizen_ticket(citizen, "social-security", "open", 1)
        .await;
    let mut agent = app.client(Some(SOCIAL_AGENT_KEY)).await;

    // A NUL in the answer or the agent's name: nothing reaches WeChat, so a retry
    // cannot send it twice.
    for (text, name, field) in [
        ("已办结\0", "", "text"),
        ("已办结", "王\0芳", "agent"),
        ("已办结\u{1b}[2J", "", "text"),
    ] {
        invalid(
            field,
            agent
                .reply_to_ticket(ReplyToTicketRequest {
                    request_id: String::new(),
                    id: ticket.to_string(),
                    text: text.into(),
                    agent: name.into(),
                })
                .await,
        );
    }
    assert!(
        mock.state()
            .calls_to("/cgi-bin/message/custom/send")
            .is_empty(),
        "nothing was sent"
    );
    invalid(
        "note",
        agent
            .acknowledge_ticket(TicketActionRequest {
                id: ticket.to_string(),
                note: "看过\0".into(),
            })
            .await,
    );
    invalid(
        "openid",
        agent
            .get_follower(GetFollowerRequest {
                account: ACCOUNT.into(),
                openid: "o-\0".into(),
            })
            .await,
    );

    invalid(
        "page_token",
        agent
            .list_followers(proto::interaction::v1::ListFollowersRequest {
                account: ACCOUNT.into(),
                page_token: "o\0".into(),
                ..Default::default()
            })
            .await,
    );
    invalid(
        "openid",
        agent
            .list_tickets(proto::interaction::v1::ListTicketsRequest {
                openid: "o\0".into(),
                ..Default::default()
            })
            .await,
    );

    // A giant id is not echoed whole.
    let giant = agent
        .get_ticket(GetTicketRequest {
            id: "x".repeat(60_000),
        })
        .await
        .unwrap_err();
    assert_eq!(giant.code(), Code::InvalidArgument);
    assert!(giant.message().len() < 1_000, "{}", giant.message().len());

    // Tags: WeChat's 20 per follower.
    let many: Vec<String> = (0..300).map(|i| format!("t{i}")).collect();
    invalid(
        "add",
        agent
            .tag_follower(TagFollowerRequest {
                account: ACCOUNT.into(),
                openid: citizen.into(),
                add: many.clone(),
                remove: vec![],
            })
            .await,
    );
    for chunk in many[..20].chunks(10) {
        agent
            .tag_follower(TagFollowerRequest {
                account: ACCOUNT.into(),
                openid: citizen.into(),
                add: chunk.to_vec(),
                remove: vec![],
            })
            .await
            .expect("up to 20 tags");
    }
    invalid(
        "add",
        agent
            .tag_follower(TagFollowerRequest {
                account: ACCOUNT.into(),
                openid: citizen.into(),
                add: vec!["第21个".into()],
                remove: vec![],
            })
            .await,
    );

    // Rules: within the passive-reply limits, plain text, http(s) links only.
    let mut admin = app.client(Some(ADMIN_KEY)).await;
    let rule = ReplyRule {
        account: ACCOUNT.into(),
        r#match: MatchKind::Contains as i32,
        patterns: vec!["停水".into()],
        text: "本周无计划停水。".into(),
        enabled: true,
        ..Default::default()
    };
    let article = |url: &str| NewsItem {
        title: "停水通知".into(),
        url: url.into(),
        ..Default::default()
    };
    invalid(
        "text",
        admin
            .create_reply_rule(new_reply_rule(ReplyRule {
                text: "水".repeat(400_000),
                ..rule.clone()
            }))
            .await,
    );
    invalid(
        "text",
        admin
            .create_reply_rule(new_reply_rule(ReplyRule {
                text: "停水\0".into(),
                ..rule.clone()
            }))
            .await,
    );
    invalid(
        "patterns",
        admin
            .create_reply_rule(new_reply_rule(ReplyRule {
                patterns: (0..10_000).map(|i| format!("k{i}")).collect(),
                ..rule.clone()
            }))
            .await,
    );
    invalid(
        "news.url",
        admin
            .create_reply_rule(new_reply_rule(ReplyRule {
                text: String::new(),
                news: vec![article("javascript:alert(1)")],
                ..rule.clone()
            }))
            .await,
    );
    invalid(
        "news",
        admin
            .create_reply_rule(new_reply_rule(ReplyRule {
                text: String::new(),
                news: vec![
                    article("https://example.gov.cn/1"),
                    article("https://example.gov.cn/2"),
                ],
                ..rule.clone()
            }))
            .await,
    );
    invalid(
        "keywords",
        admin
            .create_routing_rule(new_routing_rule(RoutingRule {
                account: ACCOUNT.into(),
                keywords: vec!["社保\0".into()],
                department: "social-security".into(),
                ..Default::default()
            }))
            .await,
    );
    // An account the install does not serve: its rule would never fire.
    invalid(
        "account",
        admin
            .create_reply_rule(new_reply_rule(ReplyRule {
                account: "nowhere".into(),
                ..rule.clone()
            }))
            .await,
    );
    admin
        .create_reply_rule(new_reply_rule(ReplyRule {
            text: String::new(),
            news: vec![article("https://example.gov.cn/notice")],
            ..rule
        }))
        .await
        .expect("a valid news rule");
}

/// An agent's name, an assignee and a request id are identifiers, not text: a line
/// break in a name would forge lines in the history's actor trail
/// ("王芳\n2026-12-07 09:00 …"). Refused before anything is sent or stored.
#[tokio::test]
async fn names_and_request_ids_with_a_line_break_or_tab_are_refused() {
    let mock = MockWechat::start(SimConfig::default()).await.unwrap();
    let app = spawn_app_with_wechat(&mock).await;
    let citizen = "o-probed-names";
    app.insert_follower(citizen, Some(1)).await;
    mock.state()
        .record_interaction(DEMO_APPID, citizen, Utc::now())
        .unwrap();
    let ticket = app
        .insert_citizen_ticket(citizen, "social-security", "open", 1)
        .await;
    let mut agent = app.client(Some(SOCIAL_AGENT_KEY)).await;

    for (name, request_id, field) in [
        (
            "王芳\n2026-12-07 09:00 social-security/李强 closed",
            "",
            "agent",
        ),
        ("王芳\t科长", "", "agent"),
        ("王芳", "answer-1\nanswer-2", "request_id"),
    ] {
        invalid(
            field,
            agent
                .reply_to_ticket(ReplyToTicketRequest {
                    request_id: request_id.into(),
                    id: ticket.to_string(),
                    text: "已办结".into(),
                    agent: name.into(),
                })
                .await,
        );
    }
    assert!(
        mock.state()
            .calls_to("/cgi-bin/message/custom/send")
            .is_empty(),
        "nothing was sent"
    );
    invalid(
        "assignee",
        agent
            .assign_ticket(AssignTicketRequest {
                id: ticket.to_string(),
                department: String::new(),
                assignee: "王芳\r\n2026-12-07 09:00 social-security closed".into(),
                note: String::new(),
            })
            .await,
    );
    let assignee: Option<String> = sqlx::query_scalar("SELECT assignee FROM tickets WHERE id = $1")
        .bind(ticket)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(assignee.unwrap_or_default(), "", "nobody was assigned");
}

#[tokio::test]
async fn the_history_says_who_got_a_ticket_and_refuses_empty_or_unexplained_changes() {
    let app = crate::helpers::spawn_app().await;
    let id = app.insert_ticket("social-security", "open", 5).await;
    let mut agent = app.client(Some(SOCIAL_AGENT_KEY)).await;
    let assign = |department: &str, assignee: &str| proto::interaction::v1::AssignTicketRequest {
        id: id.to_string(),
        department: department.into(),
        assignee: assignee.into(),
        note: String::new(),
    };

    // A department the install does not have: the ticket would leave every queue.
    invalid(
        "department",
        agent.assign_ticket(assign("no-such-dept", "")).await,
    );
    invalid(
        "department",
        app.client(Some(ADMIN_KEY))
            .await
            .create_routing_rule(new_routing_rule(RoutingRule {
                account: ACCOUNT.into(),
                keywords: vec!["社保".into()],
                department: "no-such-dept".into(),
                ..Default::default()
            }))
            .await,
    );

    agent.assign_ticket(assign("", "王芳")).await.unwrap();
    let again = agent.assign_ticket(assign("", "王芳")).await.unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition, "{again:?}");
    let same = agent
        .assign_ticket(assign("social-security", "王芳"))
        .await
        .unwrap_err();
    assert_eq!(same.code(), Code::FailedPrecondition, "{same:?}");

    let unexplained = agent
        .close_ticket(TicketActionRequest {
            id: id.to_string(),
            note: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(unexplained.code(), Code::FailedPrecondition);
    assert!(
        unexplained.message().contains("note"),
        "{}",
        unexplained.message()
    );
    agent
        .close_ticket(TicketActionRequest {
            id: id.to_string(),
            note: "市民来电撤回".into(),
        })
        .await
        .expect("closing with a reason");

    let history = agent
        .get_ticket(GetTicketRequest { id: id.to_string() })
        .await
        .unwrap()
        .into_inner()
        .history;
    let notes: Vec<(&str, &str)> = history
        .iter()
        .map(|h| (h.action.as_str(), h.note.as_str()))
        .collect();
    assert!(
        notes.contains(&("assigned", "assignee — → 王芳")),
        "{notes:?}"
    );
    assert_eq!(
        notes
            .iter()
            .filter(|(action, _)| *action == "assigned")
            .count(),
        1,
        "{notes:?}"
    );
    assert!(notes.contains(&("closed", "市民来电撤回")), "{notes:?}");
}
