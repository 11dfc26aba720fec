//! Account scoping: a key reaches only the accounts it names. A county's key,
//! even with the city's department name or the admin role, cannot read or act on
//! the city's tickets, followers or rules: they answer NOT_FOUND, as if absent.

use proto::interaction::v1::{
    AssignTicketRequest, DeleteRuleRequest, GetFollowerRequest, GetTicketRequest,
    ListFollowersRequest, ListReplyRulesRequest, ListRoutingRulesRequest, ListTicketsRequest,
    MatchKind, ReplyRule, ReplyToTicketRequest, RoutingRule, TagFollowerRequest,
    TicketActionRequest,
};
use tonic::Code;

use crate::helpers::{
    ACCOUNT, ADMIN_KEY, COUNTY, COUNTY_ADMIN_KEY, COUNTY_AGENT_KEY, new_reply_rule,
    new_routing_rule, spawn_app,
};

fn not_found<T: std::fmt::Debug>(what: &str, result: Result<T, tonic::Status>) {
    let status = result.expect_err(what);
    assert_eq!(status.code(), Code::NotFound, "{what}: {status:?}");
}

#[tokio::test]
async fn a_county_key_cannot_read_or_act_on_the_citys_tickets_followers_or_rules() {
    let app = spawn_app().await;
    let city_ticket = app.insert_ticket("social-security", "open", 10).await;
    let county_ticket = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO tickets (id, account, department, openid, state, summary, opened_at,
                              acknowledge_due_at, resolve_due_at)
         VALUES ($1, $2, 'social-security', 'o-county-citizen', 'open', '水管漏水', now(),
                 now() + interval '1 day', now() + interval '3 days')",
    )
    .bind(county_ticket)
    .bind(COUNTY)
    .execute(&app.db)
    .await
    .unwrap();
    app.insert_follower("o-city-citizen", Some(5)).await;

    // Tickets: the county's desk sees its own account's queue only, and the city's
    // ticket (same department name) answers NOT_FOUND to every read and action.
    let mut county = app.client(Some(COUNTY_AGENT_KEY)).await;
    let listed = county
        .list_tickets(ListTicketsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .tickets;
    let ids: Vec<String> = listed.iter().map(|t| t.id.clone()).collect();
    assert_eq!(ids, [county_ticket.to_string()]);
    let asked_for_city = county
        .list_tickets(ListTicketsRequest {
            account: ACCOUNT.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .tickets;
    assert!(asked_for_city.is_empty(), "{asked_for_city:?}");

    let id = city_ticket.to_string();
    let action = || TicketActionRequest {
        id: id.clone(),
        note: String::new(),
    };
    not_found(
        "get",
        county.get_ticket(GetTicketRequest { id: id.clone() }).await,
    );
    not_found("acknowledge", county.acknowledge_ticket(action()).await);
    not_found(
        "assign",
        county
            .assign_ticket(AssignTicketRequest {
                id: id.clone(),
                assignee: "王芳".into(),
                ..Default::default()
            })
            .await,
    );
    not_found(
        "reply",
        county
            .reply_to_ticket(ReplyToTicketRequest {
                request_id: String::new(),
                id: id.clone(),
                text: "已处理".into(),
                agent: String::new(),
            })
            .await,
    );
    not_found("close", county.close_ticket(action()).await);
    not_found("reopen", county.reopen_ticket(action()).await);

    // Nothing the county tried changed the city's ticket.
    let untouched = app
        .client(Some(ADMIN_KEY))
        .await
        .get_ticket(GetTicketRequest { id: id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert!(untouched.history.iter().all(|h| h.action == "opened"));
    assert!(untouched.assignee.is_empty());
    assert!(untouched.thread.is_empty());

    // Followers: not readable, listable or taggable.
    not_found(
        "get follower",
        county
            .get_follower(GetFollowerRequest {
                account: ACCOUNT.into(),
                openid: "o-city-citizen".into(),
            })
            .await,
    );
    not_found(
        "list followers",
        county
            .list_followers(ListFollowersRequest {
                account: ACCOUNT.into(),
                ..Default::default()
            })
            .await,
    );
    not_found(
        "tag follower",
        county
            .tag_follower(TagFollowerRequest {
                account: ACCOUNT.into(),
                openid: "o-city-citizen".into(),
                add: vec!["志愿者".into()],
                remove: vec![],
            })
            .await,
    );

    // Rules: even the county's admin neither sees nor changes the city's.
    let mut city_admin = app.client(Some(ADMIN_KEY)).await;
    let rule = ReplyRule {
        account: ACCOUNT.into(),
        r#match: MatchKind::Exact as i32,
        patterns: vec!["社保".into()],
        text: "社保查询请拨打12333。".into(),
        enabled: true,
        ..Default::default()
    };
    let city_rule = city_admin
        .create_reply_rule(new_reply_rule(rule.clone()))
        .await
        .unwrap()
        .into_inner();
    let city_route = city_admin
        .create_routing_rule(new_routing_rule(RoutingRule {
            account: ACCOUNT.into(),
            keywords: vec!["社保".into()],
            department: "social-security".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let mut county_admin = app.client(Some(COUNTY_ADMIN_KEY)).await;
    not_found(
        "list reply rules",
        county_admin
            .list_reply_rules(ListReplyRulesRequest {
                account: ACCOUNT.into(),
            })
            .await,
    );
    not_found(
        "list routing rules",
        county_admin
            .list_routing_rules(ListRoutingRulesRequest {
                account: ACCOUNT.into(),
            })
            .await,
    );
    not_found(
        "create reply rule",
        county_admin
            .create_reply_rule(new_reply_rule(rule.clone()))
            .await,
    );
    not_found(
        "update reply rule",
        county_admin
            .update_reply_rule(ReplyRule {
                text: "改掉".into(),
                ..city_rule.clone()
            })
            .await,
    );
    not_found(
        "delete reply rule",
        county_admin
            .delete_reply_rule(DeleteRuleRequest {
                id: city_rule.id.clone(),
            })
            .await,
    );
    not_found(
        "delete routing rule",
        county_admin
            .delete_routing_rule(DeleteRuleRequest {
                id: city_route.id.clone(),
            })
            .await,
    );
    let kept = city_admin
        .list_reply_rules(ListReplyRulesRequest {
            account: ACCOUNT.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .rules;
    assert_eq!(kept, vec![city_rule]);

    // The county's admin still manages its own account.
    county_admin
        .create_reply_rule(new_reply_rule(ReplyRule {
            account: COUNTY.into(),
            ..rule
        }))
        .await
        .expect("the county's own rule");
}
