//! Auto-reply and routing rules over gRPC: admins only, validated before saving,
//! created once per request id.

use std::time::Duration;

use futures::StreamExt;
use proto::interaction::v1::{
    CreateReplyRuleRequest, CreateRoutingRuleRequest, DeleteRuleRequest, ListReplyRulesRequest,
    ListRoutingRulesRequest, MatchKind, ReplyRule, RoutingRule,
};
use tonic::Code;

use crate::helpers::{
    ADMIN_KEY, COUNTY, SOCIAL_AGENT_KEY, TestApp, new_reply_rule, new_routing_rule, spawn_app,
};

fn keyword_rule(keyword: &str, text: &str) -> ReplyRule {
    ReplyRule {
        account: "chenzhou".into(),
        r#match: MatchKind::Exact as i32,
        patterns: vec![keyword.into()],
        priority: 10,
        text: text.into(),
        enabled: true,
        ..Default::default()
    }
}

#[tokio::test]
async fn an_admin_creates_lists_updates_and_deletes_reply_rules() {
    let app = spawn_app().await;
    let mut admin = app.client(Some(ADMIN_KEY)).await;

    let created = admin
        .create_reply_rule(new_reply_rule(keyword_rule(
            "社保",
            "社保查询请点击菜单“办事服务”。",
        )))
        .await
        .unwrap()
        .into_inner();
    assert!(!created.id.is_empty());
    let listed = admin
        .list_reply_rules(ListReplyRulesRequest {
            account: "chenzhou".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .rules;
    assert_eq!(listed, vec![created.clone()]);

    let updated = admin
        .update_reply_rule(ReplyRule {
            text: "社保查询请拨打12333。".into(),
            ..created.clone()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.text, "社保查询请拨打12333。");
    assert_eq!(updated.id, created.id);

    admin
        .delete_reply_rule(DeleteRuleRequest {
            id: created.id.clone(),
        })
        .await
        .unwrap();
    let gone = admin
        .delete_reply_rule(DeleteRuleRequest { id: created.id })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
}

#[tokio::test]
async fn rules_are_refused_to_agents() {
    let app = spawn_app().await;
    let mut agent = app.client(Some(SOCIAL_AGENT_KEY)).await;
    let refused = agent
        .create_reply_rule(new_reply_rule(keyword_rule("社保", "x")))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let listing = agent
        .list_routing_rules(ListRoutingRulesRequest {
            account: "chenzhou".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(listing.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn invalid_rules_are_invalid_arguments_naming_the_field() {
    let app = spawn_app().await;
    let mut admin = app.client(Some(ADMIN_KEY)).await;

    let bad_regex = admin
        .create_reply_rule(new_reply_rule(ReplyRule {
            r#match: MatchKind::Regex as i32,
            patterns: vec!["(社保".into()],
            ..keyword_rule("", "x")
        }))
        .await
        .unwrap_err();
    assert_eq!(bad_regex.code(), Code::InvalidArgument);
    assert!(
        bad_regex
            .message()
            .starts_with("patterns: invalid regular expression"),
        "{}",
        bad_regex.message()
    );
    let unknown_kind = admin
        .create_reply_rule(new_reply_rule(ReplyRule {
            r#match: 0,
            ..keyword_rule("社保", "x")
        }))
        .await
        .unwrap_err();
    assert_eq!(unknown_kind.code(), Code::InvalidArgument);
    assert!(
        unknown_kind.message().starts_with("match:"),
        "{}",
        unknown_kind.message()
    );
    let no_department = admin
        .create_routing_rule(new_routing_rule(RoutingRule {
            account: "chenzhou".into(),
            keywords: vec!["公交".into()],
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(no_department.code(), Code::InvalidArgument);
    assert!(
        no_department.message().starts_with("department:"),
        "{}",
        no_department.message()
    );
    let no_account = admin
        .list_reply_rules(ListReplyRulesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(no_account.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn an_admin_manages_routing_rules() {
    let app = spawn_app().await;
    let mut admin = app.client(Some(ADMIN_KEY)).await;
    let rule = admin
        .create_routing_rule(new_routing_rule(RoutingRule {
            account: "chenzhou".into(),
            keywords: vec!["公交".into(), "地铁".into()],
            category: "consultation".into(),
            department: "transport".into(),
            priority: 5,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let listed = admin
        .list_routing_rules(ListRoutingRulesRequest {
            account: "chenzhou".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .rules;
    assert_eq!(listed, vec![rule.clone()]);
    assert_eq!(listed[0].department, "transport");

    admin
        .delete_routing_rule(DeleteRuleRequest { id: rule.id })
        .await
        .unwrap();
    assert!(
        admin
            .list_routing_rules(ListRoutingRulesRequest {
                account: "chenzhou".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .rules
            .is_empty()
    );
}

/// What `govwx` sends for a reply rule it creates: one request id for the call and
/// every retry of it.
fn reply_create(request_id: &str, text: &str) -> CreateReplyRuleRequest {
    CreateReplyRuleRequest {
        request_id: request_id.into(),
        ..new_reply_rule(keyword_rule("社保", text))
    }
}

fn routing_create(request_id: &str, department: &str) -> CreateRoutingRuleRequest {
    CreateRoutingRuleRequest {
        account: "chenzhou".into(),
        keywords: vec!["公交".into()],
        category: "consultation".into(),
        department: department.into(),
        priority: 5,
        request_id: request_id.into(),
    }
}

async fn reply_rules_of(app: &TestApp, account: &str) -> Vec<ReplyRule> {
    app.client(Some(ADMIN_KEY))
        .await
        .list_reply_rules(ListReplyRulesRequest {
            account: account.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .rules
}

async fn routing_rules_of(app: &TestApp, account: &str) -> Vec<RoutingRule> {
    app.client(Some(ADMIN_KEY))
        .await
        .list_routing_rules(ListRoutingRulesRequest {
            account: account.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .rules
}

/// The rules-change notices every replica and gateway reloads on, as they get them.
struct Notices {
    _nats: async_nats::Client,
    subscriber: async_nats::Subscriber,
}

impl Notices {
    async fn watch(app: &TestApp) -> Self {
        let nats = app.nats().await;
        let subscriber = nats
            .subscribe(app.namespace().subject(reply_rules::CHANGED_WILDCARD))
            .await
            .unwrap();
        // The server knows the subscription once the flush returns.
        nats.flush().await.unwrap();
        Self {
            _nats: nats,
            subscriber,
        }
    }

    /// The account of the next notice.
    async fn next(&mut self) -> String {
        let notice = tokio::time::timeout(Duration::from_secs(10), self.subscriber.next())
            .await
            .expect("a rules change notice")
            .expect("subscription open");
        String::from_utf8(notice.payload.to_vec()).unwrap()
    }
}

#[tokio::test]
async fn a_create_retried_with_its_request_id_yields_one_rule_announced_once() {
    let app = spawn_app().await;
    let mut admin = app.client(Some(ADMIN_KEY)).await;
    let mut notices = Notices::watch(&app).await;
    let request_id = "3f0c9a52-6d1e-4b7a-9c38-5b2e8f4d1a07";

    let first = admin
        .create_reply_rule(reply_create(request_id, "社保查询请拨打12333。"))
        .await
        .unwrap()
        .into_inner();
    // The caller's deadline passed before this answer reached it: it retries.
    let retried = admin
        .create_reply_rule(reply_create(request_id, "社保查询请拨打12333。"))
        .await
        .unwrap()
        .into_inner();

    assert_eq!(retried, first);
    assert_eq!(reply_rules_of(&app, "chenzhou").await, vec![first]);
    // Another account's change after the retry: the retry announced nothing between.
    admin
        .create_reply_rule(new_reply_rule(ReplyRule {
            account: COUNTY.into(),
            ..keyword_rule("医保", "医保查询请拨打12393。")
        }))
        .await
        .unwrap();
    assert_eq!(
        [notices.next().await, notices.next().await],
        ["chenzhou".to_owned(), COUNTY.to_owned()]
    );
}

#[tokio::test]
async fn a_routing_rule_create_retried_with_its_request_id_yields_one_rule() {
    let app = spawn_app().await;
    let mut admin = app.client(Some(ADMIN_KEY)).await;
    let request_id = "b7e1d0c4-2a9f-4e56-8d13-c6f7a2b90e41";

    let first = admin
        .create_routing_rule(routing_create(request_id, "transport"))
        .await
        .unwrap()
        .into_inner();
    let retried = admin
        .create_routing_rule(routing_create(request_id, "transport"))
        .await
        .unwrap()
        .into_inner();

    assert_eq!(retried, first);
    assert_eq!(routing_rules_of(&app, "chenzhou").await, vec![first]);
}

#[tokio::test]
async fn concurrent_retries_of_a_create_yield_one_rule() {
    let app = spawn_app().await;
    // A connection each, so the retries reach the service together.
    let mut clients = Vec::new();
    for _ in 0..16 {
        clients.push(app.client(Some(ADMIN_KEY)).await);
    }
    let routing_clients = clients.split_off(8);

    let replies = futures::future::join_all(clients.into_iter().map(|mut admin| async move {
        admin
            .create_reply_rule(reply_create("c41d6b0e-reply", "社保查询请拨打12333。"))
            .await
            .map(|created| created.into_inner().id)
    }));
    let routes =
        futures::future::join_all(routing_clients.into_iter().map(|mut admin| async move {
            admin
                .create_routing_rule(routing_create("c41d6b0e-routing", "transport"))
                .await
                .map(|created| created.into_inner().id)
        }));
    let (replies, routes) = tokio::join!(replies, routes);

    let reply_ids: Vec<String> = replies.into_iter().map(Result::unwrap).collect();
    let route_ids: Vec<String> = routes.into_iter().map(Result::unwrap).collect();
    let stored_replies = reply_rules_of(&app, "chenzhou").await;
    let stored_routes = routing_rules_of(&app, "chenzhou").await;
    assert_eq!(stored_replies.len(), 1, "{stored_replies:?}");
    assert_eq!(stored_routes.len(), 1, "{stored_routes:?}");
    assert!(
        reply_ids.iter().all(|id| *id == stored_replies[0].id),
        "{reply_ids:?}"
    );
    assert!(
        route_ids.iter().all(|id| *id == stored_routes[0].id),
        "{route_ids:?}"
    );
}

#[tokio::test]
async fn the_same_request_id_with_another_request_is_refused() {
    let app = spawn_app().await;
    let mut admin = app.client(Some(ADMIN_KEY)).await;
    let request_id = "5a8e2f17-93c4-4d0b-a6e2-0f1b7c3d9e58";
    let first = admin
        .create_reply_rule(reply_create(request_id, "社保查询请拨打12333。"))
        .await
        .unwrap()
        .into_inner();

    let other_text = admin
        .create_reply_rule(reply_create(request_id, "社保查询请到政务中心3号窗口。"))
        .await
        .unwrap_err();
    let other_kind = admin
        .create_routing_rule(routing_create(request_id, "social-security"))
        .await
        .unwrap_err();

    for refused in [other_text, other_kind] {
        assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
        assert!(
            refused
                .message()
                .starts_with("request_id was already used for another rule of account chenzhou")
                && refused.message().contains(&first.id),
            "{}",
            refused.message()
        );
    }
    assert_eq!(reply_rules_of(&app, "chenzhou").await, vec![first]);
    assert!(routing_rules_of(&app, "chenzhou").await.is_empty());
}

#[tokio::test]
async fn creates_without_a_request_id_or_on_another_account_each_create_a_rule() {
    let app = spawn_app().await;
    let mut admin = app.client(Some(ADMIN_KEY)).await;

    let first = admin
        .create_reply_rule(reply_create("", "社保查询请拨打12333。"))
        .await
        .unwrap()
        .into_inner();
    let second = admin
        .create_reply_rule(reply_create("", "社保查询请拨打12333。"))
        .await
        .unwrap()
        .into_inner();
    // Request ids are per account: the county's own request is its own.
    let request_id = "0d9b3c6a-71f2-4e88-b5a4-9e2c1f7d6b30";
    admin
        .create_reply_rule(reply_create(request_id, "社保查询请拨打12333。"))
        .await
        .unwrap();
    let county = admin
        .create_reply_rule(CreateReplyRuleRequest {
            account: COUNTY.into(),
            ..reply_create(request_id, "社保查询请拨打12333。")
        })
        .await
        .unwrap()
        .into_inner();

    assert_ne!(first.id, second.id);
    assert_eq!(reply_rules_of(&app, "chenzhou").await.len(), 3);
    assert_eq!(reply_rules_of(&app, COUNTY).await, vec![county]);
}

#[tokio::test]
async fn a_retry_whose_rule_was_deleted_since_is_a_failed_precondition() {
    let app = spawn_app().await;
    let mut admin = app.client(Some(ADMIN_KEY)).await;
    let request_id = "e2a71f98-4c3d-4b05-8f6e-1d9c0b7a5e24";
    let first = admin
        .create_reply_rule(reply_create(request_id, "社保查询请拨打12333。"))
        .await
        .unwrap()
        .into_inner();
    admin
        .delete_reply_rule(DeleteRuleRequest {
            id: first.id.clone(),
        })
        .await
        .unwrap();

    let late = admin
        .create_reply_rule(reply_create(request_id, "社保查询请拨打12333。"))
        .await
        .unwrap_err();

    assert_eq!(late.code(), Code::FailedPrecondition, "{late:?}");
    assert!(
        late.message().contains(&first.id) && late.message().contains("deleted since"),
        "{}",
        late.message()
    );
    assert!(reply_rules_of(&app, "chenzhou").await.is_empty());
}

#[tokio::test]
async fn a_request_id_over_64_characters_or_with_a_control_character_is_invalid() {
    let app = spawn_app().await;
    let mut admin = app.client(Some(ADMIN_KEY)).await;

    let long = admin
        .create_reply_rule(reply_create(&"a".repeat(65), "x"))
        .await
        .unwrap_err();
    let control = admin
        .create_routing_rule(routing_create("retry\t1", "transport"))
        .await
        .unwrap_err();

    for refused in [long, control] {
        assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
        assert!(
            refused.message().starts_with("request_id: "),
            "{}",
            refused.message()
        );
    }
    assert!(reply_rules_of(&app, "chenzhou").await.is_empty());
    assert!(routing_rules_of(&app, "chenzhou").await.is_empty());
}

/// A routing rule's category picks its tickets' resolve limit: one the limits do not
/// name ("Emergency" for "emergency") would get the 3-day default instead of 2 hours
/// without a word. Refused, naming the categories there are; empty is the default.
#[tokio::test]
async fn a_routing_rule_whose_category_has_no_resolve_limit_is_refused() {
    let app = spawn_app().await;
    let mut admin = app.client(Some(ADMIN_KEY)).await;
    let rule = |category: &str| {
        new_routing_rule(RoutingRule {
            account: "chenzhou".into(),
            keywords: vec!["停电".into()],
            category: category.into(),
            department: "transport".into(),
            priority: 5,
            ..Default::default()
        })
    };

    let refused = admin
        .create_routing_rule(rule("Emergency"))
        .await
        .expect_err("a category without a resolve limit");
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(
        refused.message().starts_with("category:")
            && refused.message().contains("Emergency")
            && refused.message().contains("emergency"),
        "{}",
        refused.message()
    );
    for category in ["emergency", ""] {
        admin
            .create_routing_rule(rule(category))
            .await
            .unwrap_or_else(|status| panic!("{category:?}: {status:?}"));
    }
}
