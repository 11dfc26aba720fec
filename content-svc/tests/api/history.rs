//! What an article's history answers: which version each reviewer passed, with
//! everything that version would have sent (cover, 阅读原文 link, comment flags),
//! and who or what moved it on the way out.

use proto::content::v1 as pb;
use wechat_sim::api_server::AccountKind;

use crate::articles::{Stack, approve, article, create, next_event, spawn_stack};
use crate::helpers::{ADMIN_KEY, AUTHOR_KEY, PUBLISHER_KEY, REVIEWER_KEY, authed, by};

#[tokio::test]
async fn the_version_a_reviewer_passed_keeps_its_cover_link_and_comment_flags_after_an_edit() {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let mut request = create("停水通知", "<p>本周六停水。</p>", pb::Channel::Freepublish);
    if let Some(content) = request.content.as_mut() {
        content.source_url = "https://water.example.gov.cn/notice/1".into();
        content.open_comment = true;
        content.only_fans_can_comment = true;
    }
    let id = client
        .create_article(by(request, AUTHOR_KEY, "li"))
        .await
        .expect("created")
        .into_inner()
        .id;
    client
        .submit_article(by(article(&id), AUTHOR_KEY, "li"))
        .await
        .expect("submitted");
    client
        .review_article(by(approve(&id), REVIEWER_KEY, "wang"))
        .await
        .expect("王 passes version 1");
    client
        .review_article(by(
            pb::ReviewArticleRequest {
                verdict: pb::ReviewVerdict::Reject as i32,
                comment: "链接有误".into(),
                ..approve(&id)
            },
            REVIEWER_KEY,
            "zhao",
        ))
        .await
        .expect("赵 rejects it");
    // 李 changes the cover, the link and the comment flags, not a word of the text.
    let mut edited = create("停水通知", "<p>本周六停水。</p>", pb::Channel::Freepublish)
        .content
        .expect("content");
    edited.cover_media_id = "MEDIA_COVER_2".into();
    edited.source_url = "https://water.example.gov.cn/notice/2".into();
    client
        .update_article(by(
            pb::UpdateArticleRequest {
                id: id.clone(),
                content: Some(edited),
                version: None,
            },
            AUTHOR_KEY,
            "li",
        ))
        .await
        .expect("edited");

    let detail = client
        .get_article(by(
            pb::GetArticleRequest { id: id.clone() },
            REVIEWER_KEY,
            "sun",
        ))
        .await
        .expect("read")
        .into_inner();
    assert_eq!(detail.last_reviewed_version, 1);
    assert!(detail.last_reviewed_settings_recorded);
    let passed = detail.last_reviewed_content.expect("version 1 differs");
    assert_eq!(
        (
            passed.cover_media_id.as_str(),
            passed.source_url.as_str(),
            passed.open_comment,
            passed.only_fans_can_comment,
        ),
        (
            "MEDIA_COVER_1",
            "https://water.example.gov.cn/notice/1",
            true,
            true
        )
    );
    stack.app.stop().await;
}

/// The article's audit trail, oldest first.
async fn trail(stack: &Stack, id: &str) -> Vec<pb::AuditEntry> {
    stack
        .app
        .client
        .clone()
        .get_article(by(
            pb::GetArticleRequest { id: id.into() },
            PUBLISHER_KEY,
            "chen",
        ))
        .await
        .expect("read")
        .into_inner()
        .audit
}

#[tokio::test]
async fn an_override_given_with_a_review_is_audited_as_an_override_with_its_reason() {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let id = client
        .create_article(by(
            create(
                "停水通知",
                "<p>详见市水务集团公告。</p>",
                pb::Channel::Freepublish,
            ),
            AUTHOR_KEY,
            "li",
        ))
        .await
        .expect("created")
        .into_inner()
        .id;
    client
        .submit_article(by(article(&id), AUTHOR_KEY, "li"))
        .await
        .expect("submitted");
    // The lexicon grows after the submission: the first review meets the hit.
    client
        .put_lexicon_entry(authed(
            pb::LexiconEntry {
                word: "水务集团".into(),
                category: "wrong".into(),
            },
            ADMIN_KEY,
        ))
        .await
        .expect("word added");
    let hit = client
        .get_article(by(
            pb::GetArticleRequest { id: id.clone() },
            REVIEWER_KEY,
            "wang",
        ))
        .await
        .expect("read")
        .into_inner()
        .article
        .expect("article")
        .hits
        .remove(0);
    client
        .review_article(by(
            pb::ReviewArticleRequest {
                overrides: vec![pb::HitOverride {
                    key: hit.key.clone(),
                    reason: "集团全称无误".into(),
                }],
                ..approve(&id)
            },
            REVIEWER_KEY,
            "wang",
        ))
        .await
        .expect("approved with the override");

    let rows: Vec<(String, String, u32, String)> = trail(&stack, &id)
        .await
        .into_iter()
        .filter(|a| a.action != "submit")
        .map(|a| (a.action, a.actor, a.version, a.comment))
        .collect();
    assert_eq!(
        rows,
        [
            (
                "override".to_owned(),
                "media:wang".to_owned(),
                1,
                format!("{}: 集团全称无误", hit.key)
            ),
            (
                "approve".to_owned(),
                "media:wang".to_owned(),
                1,
                "同意".to_owned()
            ),
        ]
    );
    stack.app.stop().await;
}

/// Schedules `id` for `at_seconds` as 陈.
async fn schedule(stack: &Stack, id: &str, at_seconds: i64) {
    stack
        .app
        .client
        .clone()
        .schedule_article(by(
            pb::ScheduleArticleRequest {
                id: id.into(),
                at: Some(prost_types::Timestamp {
                    seconds: at_seconds,
                    nanos: 0,
                }),
                ..Default::default()
            },
            PUBLISHER_KEY,
            "chen",
        ))
        .await
        .expect("scheduled");
}

#[tokio::test]
async fn a_scheduled_send_retried_after_a_busy_wechat_names_the_scheduler_for_each_claim_and_retry()
{
    let stack = spawn_stack(AccountKind::Service).await;
    let id = stack.approved("停水通知", pb::Channel::Freepublish).await;
    // Refused for now (WeChat's per-minute limit), not carried out.
    stack.wechat_refusing_for_now("/cgi-bin/freepublish/submit", 1);
    let mut published = stack.watch("published").await;
    schedule(&stack, &id, chrono::Utc::now().timestamp()).await;
    let event = next_event(&mut published).await;
    assert_eq!(event.article_id, id);

    let rows: Vec<(String, String, String, String)> = trail(&stack, &id)
        .await
        .into_iter()
        .skip_while(|a| a.action != "schedule")
        .skip(1)
        .map(|a| {
            let to = pb::ArticleState::try_from(a.to_state)
                .map(|s| s.as_str_name().to_owned())
                .unwrap_or_default();
            (a.action, a.actor, to, a.comment)
        })
        .collect();
    let actions: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|(action, actor, to, _)| (action.as_str(), actor.as_str(), to.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("claim", "scheduler", "ARTICLE_STATE_PUBLISHING"),
            ("retry", "scheduler", "ARTICLE_STATE_SCHEDULED"),
            ("claim", "scheduler", "ARTICLE_STATE_PUBLISHING"),
            ("confirm", "system", "ARTICLE_STATE_PUBLISHED"),
        ]
    );
    let comments: Vec<&str> = rows.iter().map(|(.., c)| c.as_str()).collect();
    assert!(
        comments[0].starts_with("claimed for sending: due ")
            && comments[0].ends_with("+08:00; attempt 1 of 5"),
        "{comments:?}"
    );
    assert!(
        comments[1].starts_with("the send failed (")
            && comments[1].ends_with("+08:00, attempt 2 of 5"),
        "{comments:?}"
    );
    assert!(
        comments[2].starts_with("claimed for sending: a retry due ")
            && comments[2].ends_with("attempt 2 of 5"),
        "{comments:?}"
    );
    stack.app.stop().await;
}

#[tokio::test]
async fn a_scheduled_send_given_up_after_its_last_attempt_says_so_in_the_trail() {
    let stack = spawn_stack(AccountKind::Service).await;
    let id = stack.approved("停水通知", pb::Channel::Freepublish).await;
    // Refused for now (WeChat's per-minute limit), not carried out.
    stack.wechat_refusing_for_now("/cgi-bin/freepublish/submit", 1);
    let mut failed = stack.watch("failed").await;
    schedule(&stack, &id, chrono::Utc::now().timestamp() + 2).await;
    // Four attempts were used up before this one (as if retried since).
    sqlx::query("UPDATE articles SET attempts = 4 WHERE id = $1::uuid")
        .bind(&id)
        .execute(&stack.app.db)
        .await
        .expect("arranged");
    let event = next_event(&mut failed).await;
    assert_eq!(event.article_id, id);
    assert!(
        event.reason.starts_with("gave up after 5 attempts: "),
        "{}",
        event.reason
    );

    let last: Vec<(String, String, String)> = trail(&stack, &id)
        .await
        .into_iter()
        .rev()
        .take(2)
        .map(|a| (a.action, a.actor, a.comment))
        .collect();
    assert_eq!(
        (last[1].0.as_str(), last[1].1.as_str()),
        ("claim", "scheduler")
    );
    assert!(last[1].2.ends_with("attempt 5 of 5"), "{last:?}");
    assert_eq!(
        (last[0].0.as_str(), last[0].1.as_str()),
        ("fail", "scheduler")
    );
    assert_eq!(last[0].2, event.reason);
    stack.app.stop().await;
}

#[tokio::test]
async fn an_override_of_a_hit_already_overridden_is_not_audited_as_if_it_stood() {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let created = client
        .create_article(by(
            create(
                "停水通知",
                "<p>请勿使用 VPN翻墙 工具。</p>",
                pb::Channel::Freepublish,
            ),
            AUTHOR_KEY,
            "li",
        ))
        .await
        .expect("created")
        .into_inner();
    let key = created.hits[0].key.clone();
    let override_as = |person: &'static str, reason: &'static str| {
        by(
            pb::OverrideHitsRequest {
                id: created.id.clone(),
                overrides: vec![pb::HitOverride {
                    key: key.clone(),
                    reason: reason.into(),
                }],
                ..Default::default()
            },
            REVIEWER_KEY,
            person,
        )
    };
    client
        .override_hits(override_as("wang", "引用原文，非宣传"))
        .await
        .expect("overridden");
    // The first reason stands: a second one is not recorded, so not audited either.
    client
        .override_hits(override_as("zhao", "另一个理由"))
        .await
        .expect("nothing to change");

    let overrides: Vec<(String, String)> = trail(&stack, &created.id)
        .await
        .into_iter()
        .filter(|a| a.action == "override")
        .map(|a| (a.actor, a.comment))
        .collect();
    assert_eq!(
        overrides,
        [("media:wang".to_owned(), format!("{key}: 引用原文，非宣传"))]
    );
    stack.app.stop().await;
}
