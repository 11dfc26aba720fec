//! Auto-reply and routing rules over gRPC: admins only, validated before saving.

use proto::interaction::v1::{
    DeleteRuleRequest, ListReplyRulesRequest, ListRoutingRulesRequest, MatchKind, ReplyRule,
    RoutingRule,
};
use tonic::Code;

use crate::helpers::{ADMIN_KEY, SOCIAL_AGENT_KEY, spawn_app};

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
        .create_reply_rule(keyword_rule("社保", "社保查询请点击菜单“办事服务”。"))
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
        .create_reply_rule(keyword_rule("社保", "x"))
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
        .create_reply_rule(ReplyRule {
            r#match: MatchKind::Regex as i32,
            patterns: vec!["(社保".into()],
            ..keyword_rule("", "x")
        })
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
        .create_reply_rule(ReplyRule {
            r#match: 0,
            ..keyword_rule("社保", "x")
        })
        .await
        .unwrap_err();
    assert_eq!(unknown_kind.code(), Code::InvalidArgument);
    assert!(
        unknown_kind.message().starts_with("match:"),
        "{}",
        unknown_kind.message()
    );
    let no_department = admin
        .create_routing_rule(RoutingRule {
            account: "chenzhou".into(),
            keywords: vec!["公交".into()],
            ..Default::default()
        })
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
        .create_routing_rule(RoutingRule {
            account: "chenzhou".into(),
            keywords: vec!["公交".into(), "地铁".into()],
            category: "consultation".into(),
            department: "transport".into(),
            priority: 5,
            ..Default::default()
        })
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
