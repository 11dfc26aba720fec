//! The reply path: the passive reply the gateway asks for on `wechat.reply.{account}`.

use interaction_svc::domain::default_reply::local_deadline;
use interaction_svc::domain::{DeadlinePolicy, MatchKind, NewsItem, ReplyContent, ReplyRule};
use interaction_svc::store::rules;
use proto::events::v1::passive_reply::Body;
use wechat_sim::traffic::CitizenAction;

use crate::citizen::{Callback, Citizen, eventually, text_of};
use crate::helpers::{ACCOUNT, TestApp, spawn_app};

/// A rule of [`ACCOUNT`]; saving it gives it its id and creation time.
fn rule(kind: MatchKind, patterns: &[&str], priority: i32, text: &str) -> ReplyRule {
    ReplyRule {
        account: ACCOUNT.into(),
        ..reply_rules::testing::rule(kind, patterns, priority, 0, text)
    }
}

impl TestApp {
    async fn save_rule(&self, rule: ReplyRule) -> ReplyRule {
        rules::create_reply_rule(&self.db, &self.rules_notifier().await, rule, None)
            .await
            .expect("rule saved")
    }

    /// Waits until the reply to `callback` is the text `expected`.
    async fn wait_for_text(&self, nats: &async_nats::Client, callback: &Callback, expected: &str) {
        eventually(&format!("the reply {expected:?}"), || async {
            let reply = self.passive_reply(nats, callback).await;
            (text_of(&reply) == Some(expected)).then_some(())
        })
        .await;
    }
}

#[tokio::test]
async fn text_rules_answer_by_priority_across_exact_contains_and_regex() {
    let app = spawn_app().await;
    app.save_rule(rule(MatchKind::Contains, &["公积金"], 1, "contains, older"))
        .await;
    app.save_rule(rule(MatchKind::Contains, &["公积金"], 1, "contains, newer"))
        .await;
    app.save_rule(rule(MatchKind::Exact, &["公积金查询"], 5, "exact"))
        .await;
    app.save_rule(rule(MatchKind::Regex, &[r"^\d{6}$"], 3, "postcode"))
        .await;
    let nats = app.nats().await;
    let mut citizen = Citizen::new();

    // The last rule saved is in effect once its pattern is answered.
    app.wait_for_text(&nats, &citizen.says("423000"), "postcode")
        .await;
    let exact = app.passive_reply(&nats, &citizen.says("公积金查询")).await;
    assert_eq!(text_of(&exact), Some("exact"), "the highest priority wins");
    let contained = app
        .passive_reply(&nats, &citizen.says("怎么提取公积金"))
        .await;
    assert_eq!(
        text_of(&contained),
        Some("contains, older"),
        "ties go to the older rule"
    );
}

#[tokio::test]
async fn a_follow_gets_the_greeting_and_a_menu_click_its_rule() {
    let app = spawn_app().await;
    app.save_rule(rule(MatchKind::Subscribe, &[], 0, "欢迎关注郴州发布！"))
        .await;
    app.save_rule(rule(
        MatchKind::MenuClick,
        &["HOTLINE"],
        0,
        "市民热线：12345",
    ))
    .await;
    let nats = app.nats().await;
    let mut citizen = Citizen::new();

    // The last rule saved is in effect once its click is answered.
    let click = citizen.does(CitizenAction::Click {
        key: "HOTLINE".into(),
    });
    app.wait_for_text(&nats, &click, "市民热线：12345").await;
    let follow = app
        .passive_reply(&nats, &citizen.does(CitizenAction::Subscribe))
        .await;
    assert_eq!(text_of(&follow), Some("欢迎关注郴州发布！"));
    let unknown = app
        .passive_reply(
            &nats,
            &citizen.does(CitizenAction::Click {
                key: "OTHER".into(),
            }),
        )
        .await;
    assert_eq!(
        unknown.body, None,
        "an event without a rule gets no passive reply"
    );
}

#[tokio::test]
async fn an_unanswered_message_is_told_who_has_it_and_by_when() {
    let app = spawn_app().await;
    let nats = app.nats().await;
    let mut citizen = Citizen::new();
    let message = citizen.says("楼下施工太吵了");
    let reply = app.passive_reply(&nats, &message).await;
    let due = DeadlinePolicy::default().deadlines(message.create_time(), "consultation");
    let deadline = local_deadline(
        due.acknowledge_due_at,
        DeadlinePolicy::default().calendar.offset(),
    );
    let text = text_of(&reply).expect("a text reply");
    assert!(text.starts_with("已收到您的留言"), "{text}");
    assert!(text.contains("citizen-services"), "{text}");
    assert!(text.contains(&deadline), "{text} should name {deadline}");
}

#[tokio::test]
async fn a_first_message_applied_before_its_reply_is_asked_is_not_told_it_joined_a_request() {
    let app = spawn_app().await;
    let nats = app.nats().await;
    let mut citizen = Citizen::new();
    let first = citizen.says("我家门口路灯坏了");
    // The consumer opens the ticket before the gateway's request is served (they
    // run in parallel, and a retry on another gateway replica asks again).
    app.publish(&first).await;
    eventually("the ticket opened", || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM tickets WHERE openid = $1")
            .bind(&citizen.openid)
            .fetch_one(&app.db)
            .await
            .ok()
            .filter(|n| *n == 1)
    })
    .await;
    let reply = app.passive_reply(&nats, &first).await;
    let text = text_of(&reply).expect("a text reply");
    assert!(text.starts_with("已收到您的留言，已转"), "{text}");

    // The citizen's next message does join it.
    let reply = app.passive_reply(&nats, &citizen.says("已经三天了")).await;
    let text = text_of(&reply).expect("a text reply");
    assert!(text.starts_with("已收到您的补充留言"), "{text}");
}

#[tokio::test]
async fn a_message_joining_the_citizens_ticket_is_told_that_tickets_department_and_deadline() {
    let app = spawn_app().await;
    let nats = app.nats().await;
    let mut citizen = Citizen::new();
    // Acknowledged by social security a while ago: resolution due in 3 days.
    let id = app
        .insert_citizen_ticket(&citizen.openid, "social-security", "acknowledged", 60)
        .await;
    let (resolve_due_at,): (chrono::DateTime<chrono::Utc>,) =
        sqlx::query_as("SELECT resolve_due_at FROM tickets WHERE id = $1")
            .bind(id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    // On its own this would open a ticket for citizen-services, due tomorrow.
    let message = citizen.says("楼下施工太吵了");

    let reply = app.passive_reply(&nats, &message).await;

    let text = text_of(&reply).expect("a text reply");
    let deadline = local_deadline(resolve_due_at, DeadlinePolicy::default().calendar.offset());
    assert!(text.starts_with("已收到您的补充留言"), "{text}");
    assert!(text.contains("social-security"), "{text}");
    assert!(!text.contains("citizen-services"), "{text}");
    assert!(text.contains(&deadline), "{text} should name {deadline}");
}

#[tokio::test]
async fn a_news_rule_answers_with_news() {
    let app = spawn_app().await;
    let article = NewsItem {
        title: "2026年医保缴费指南".into(),
        description: "缴费时间、标准和渠道".into(),
        pic_url: "https://example.org/yibao.jpg".into(),
        url: "https://example.org/yibao".into(),
    };
    app.save_rule(ReplyRule {
        reply: ReplyContent::News(vec![article.clone()]),
        ..rule(MatchKind::Contains, &["医保"], 0, "")
    })
    .await;
    let nats = app.nats().await;
    let mut citizen = Citizen::new();
    let callback = citizen.says("医保怎么交");
    let reply = eventually("the news rule is in effect", || async {
        let reply = app.passive_reply(&nats, &callback).await;
        matches!(reply.body, Some(Body::News(_))).then_some(reply)
    })
    .await;
    let Some(Body::News(news)) = reply.body else {
        unreachable!()
    };
    assert_eq!(news.articles.len(), 1);
    assert_eq!(news.articles[0].title, article.title);
    assert_eq!(news.articles[0].url, article.url);
}

#[tokio::test]
async fn rule_changes_reach_every_replica_without_a_restart() {
    let app = spawn_app().await;
    let replica = app.spawn_replica(&[]).await;
    let nats = app.nats().await;
    let notifier = app.rules_notifier().await;
    let mut citizen = Citizen::new();
    let question = citizen.says("停水通知");

    // Both replicas answer in the queue group: every one of 20 requests in a row
    // must see the change, so both have it.
    let all_answer = |expected: &'static str| {
        let (app, nats, question) = (&app, &nats, &question);
        async move {
            eventually(&format!("every replica answers {expected:?}"), || async {
                for _ in 0..20 {
                    let reply = app.passive_reply(nats, question).await;
                    if text_of(&reply) != Some(expected) {
                        return None;
                    }
                }
                Some(())
            })
            .await;
        }
    };

    let saved = rules::create_reply_rule(
        &app.db,
        &notifier,
        rule(MatchKind::Exact, &["停水通知"], 0, "本周无计划停水。"),
        None,
    )
    .await
    .unwrap();
    all_answer("本周无计划停水。").await;

    rules::update_reply_rule(
        &app.db,
        &notifier,
        ReplyRule {
            reply: ReplyContent::Text("周三9:00-17:00北湖区停水。".into()),
            ..saved.clone()
        },
        None,
    )
    .await
    .unwrap()
    .expect("rule exists");
    all_answer("周三9:00-17:00北湖区停水。").await;

    assert!(
        rules::delete_reply_rule(&app.db, &notifier, saved.id, None)
            .await
            .unwrap()
    );
    eventually("every replica forgot the rule", || async {
        for _ in 0..20 {
            let reply = app.passive_reply(&nats, &question).await;
            if !text_of(&reply).is_some_and(|t| t.starts_with("已收到您的留言")) {
                return None;
            }
        }
        Some(())
    })
    .await;
    replica.stop().await;
}
