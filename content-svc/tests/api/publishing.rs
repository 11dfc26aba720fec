//! Publishing with WeChat's rules beyond the review: images uploaded and rewritten,
//! the per-minute call limit checked before calling, and the one edit allowed after
//! sending. Real gateway, wechat-sim, PostgreSQL and NATS (see `articles.rs`).

use std::time::Duration;

use content_svc::app::articles::{Job, Outcome};
use proto::content::v1 as pb;
use tonic::Code;
use wechat_sim::api_server::{AccountKind, FaultRequest};

use crate::articles::{approve, article, create, next_event, publish, spawn_stack};
use crate::helpers::{
    ADMIN_KEY, AUTHOR_KEY, PUBLISHER_KEY, REVIEWER_KEY, SENDALL, SUBMIT, authed, by,
    clientmsgid_minute_passes, detail, lost_free_publication, lost_mass_send, retry_due_now,
};

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n-chart-of-the-pipes-";
const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 4];

async fn upload(
    client: &mut pb::content_service_client::ContentServiceClient<tonic::transport::Channel>,
    data: &[u8],
) -> pb::Image {
    client
        .upload_image(by(
            pb::UploadImageRequest {
                account: "demo".into(),
                data: data.to_vec(),
                ..Default::default()
            },
            AUTHOR_KEY,
            "li",
        ))
        .await
        .expect("uploaded")
        .into_inner()
}

#[tokio::test]
async fn body_images_are_uploaded_once_and_rewritten_and_a_cover_image_becomes_a_material() {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();

    // Not an image: refused naming the field.
    let refused = client
        .upload_image(by(
            pb::UploadImageRequest {
                account: "demo".into(),
                data: b"GIF89a".to_vec(),
                ..Default::default()
            },
            AUTHOR_KEY,
            "li",
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().starts_with("data"),
        "{}",
        refused.message()
    );

    let chart = upload(&mut client, PNG).await;
    let cover = upload(&mut client, JPEG).await;
    assert_eq!(chart.src, format!("image:{}", chart.id));
    assert_eq!(chart.content_type, "image/png");

    // An image from elsewhere is refused when saved: WeChat would drop it.
    let external = client
        .create_article(by(
            create(
                "管网改造图解",
                r#"<p>见图<img src="https://example.com/chart.png"></p>"#,
                pb::Channel::Freepublish,
            ),
            AUTHOR_KEY,
            "li",
        ))
        .await
        .unwrap_err();
    assert_eq!(external.code(), Code::InvalidArgument);
    assert!(
        external.message().starts_with("body:"),
        "{}",
        external.message()
    );

    // The same uploaded image twice in the body, and one as the cover.
    let body = format!(
        r#"<p>改造前<img src="{0}"></p><p>改造后<img src="{0}" style="width:100%"></p>"#,
        chart.src
    );
    let mut request = create("管网改造图解", &body, pb::Channel::Freepublish);
    if let Some(content) = request.content.as_mut() {
        content.cover_media_id.clear();
        content.cover_image_id = cover.id.clone();
    }
    let id = stack.approved_with(request).await;
    let mut published = stack.watch("published").await;
    client
        .publish_article(by(publish(&id), PUBLISHER_KEY, "chen"))
        .await
        .expect("sent");
    let event = next_event(&mut published).await;
    assert_eq!(event.article_id, id);

    let sim = stack.mock.state();
    let uploads = sim.calls_to("/cgi-bin/media/uploadimg");
    assert_eq!(uploads.len(), 1, "the image is uploaded once");
    let materials = sim.calls_to("/cgi-bin/material/add_material");
    assert_eq!(materials.len(), 1);
    let drafts = sim.calls_to("/cgi-bin/draft/add");
    let sent = &drafts[0].body.as_ref().expect("draft body")["articles"][0];
    let content = sent["content"].as_str().expect("content");
    assert!(!content.contains("image:"), "{content}");
    assert_eq!(
        content.matches("http://mmbiz.qpic.cn/mmbiz_png/").count(),
        2,
        "{content}"
    );
    assert!(
        sent["thumb_media_id"]
            .as_str()
            .is_some_and(|m| m.starts_with("MATERIAL_")),
        "{sent}"
    );

    // A second article with the same image reuses WeChat's URL and material.
    let mut request = create("管网改造续篇", &body, pb::Channel::Freepublish);
    if let Some(content) = request.content.as_mut() {
        content.cover_media_id.clear();
        content.cover_image_id = cover.id.clone();
    }
    let second = stack.approved_with(request).await;
    client
        .publish_article(by(publish(&second), PUBLISHER_KEY, "chen"))
        .await
        .expect("sent");
    let event = next_event(&mut published).await;
    assert_eq!(event.article_id, second);
    assert_eq!(sim.calls_to("/cgi-bin/media/uploadimg").len(), 1);
    assert_eq!(sim.calls_to("/cgi-bin/material/add_material").len(), 1);
    stack.app.stop().await;
}

#[tokio::test]
async fn two_sends_at_once_with_one_cover_image_leave_one_material_in_wechat() {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let cover = upload(&mut client, JPEG).await;
    let mut ids = Vec::new();
    for title in ["城区停水通知", "城区停水通知续篇"] {
        let mut request = create(title, "<p>本周六停水。</p>", pb::Channel::Freepublish);
        if let Some(content) = request.content.as_mut() {
            content.cover_media_id.clear();
            content.cover_image_id = cover.id.clone();
        }
        ids.push(stack.approved_with(request).await);
    }
    let sim = stack.mock.state();
    // The first send stalls in add_material, before WeChat has made the material…
    sim.inject(&FaultRequest {
        hold_path: Some("/cgi-bin/material/add_material".into()),
        ..FaultRequest::default()
    })
    .unwrap();
    let mut first = client.clone();
    let first_id = ids[0].clone();
    let stalled = tokio::spawn(async move {
        first
            .publish_article(by(publish(&first_id), PUBLISHER_KEY, "chen"))
            .await
    });
    tokio::time::timeout(Duration::from_secs(30), sim.held())
        .await
        .expect("the first send reaches add_material");
    // …while the second makes the image a material and keeps it; then the first's
    // is made too.
    tokio::time::timeout(
        Duration::from_secs(30),
        client.publish_article(by(publish(&ids[1]), PUBLISHER_KEY, "chen")),
    )
    .await
    .expect("the second send does not wait for the first")
    .expect("sent");
    sim.release_held();
    tokio::time::timeout(Duration::from_secs(30), stalled)
        .await
        .expect("the first send ends")
        .unwrap()
        .expect("sent");

    assert_eq!(
        sim.calls_to("/cgi-bin/material/add_material").len(),
        2,
        "both sends made a material"
    );
    let thumbs: Vec<String> = sim
        .calls_to("/cgi-bin/draft/add")
        .iter()
        .filter_map(|call| {
            let body = call.body.as_ref()?;
            Some(body["articles"][0]["thumb_media_id"].as_str()?.to_owned())
        })
        .collect();
    assert_eq!(thumbs.len(), 2, "{thumbs:?}");
    assert_eq!(thumbs[0], thumbs[1], "both drafts use the material kept");
    let kept: Option<String> =
        sqlx::query_scalar("SELECT material_media_id FROM article_images WHERE id = $1::uuid")
            .bind(&cover.id)
            .fetch_one(&stack.app.db)
            .await
            .unwrap();
    assert_eq!(kept.as_deref(), Some(thumbs[0].as_str()));
    // Two made, the one not kept deleted: exactly one remains, the one kept.
    let deleted: Vec<String> = sim
        .calls_to("/cgi-bin/material/del_material")
        .iter()
        .filter(|call| call.errcode == 0)
        .filter_map(|call| Some(call.body.as_ref()?["media_id"].as_str()?.to_owned()))
        .collect();
    assert_eq!(deleted.len(), 1, "one material remains: {deleted:?}");
    assert_ne!(
        deleted[0], thumbs[0],
        "the material kept is not the one deleted"
    );
    stack.app.stop().await;
}

#[tokio::test]
async fn the_sixty_first_call_in_a_minute_is_refused_before_wechat_saying_when_the_next_is_possible()
 {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let id = stack
        .approved("今日停水通知", pb::Channel::Freepublish)
        .await;
    // Sixty submissions this minute on the account, by this or another replica.
    sqlx::query(
        "INSERT INTO api_call_ledger (account, api, called_at)
         SELECT 'demo', 'freepublish/submit', now() - interval '10 seconds' FROM generate_series(1, 60)",
    )
    .execute(&stack.app.db)
    .await
    .expect("ledger arranged");
    let refused = client
        .publish_article(by(publish(&id), PUBLISHER_KEY, "chen"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused
            .message()
            .contains("60 freepublish/submit calls a minute")
            && refused.message().contains("the next is possible at"),
        "{}",
        refused.message()
    );
    let status = stack.quota().await;
    let submit = status
        .calls
        .iter()
        .find(|c| c.api == "freepublish/submit")
        .expect("the submissions are listed");
    assert_eq!((submit.used, submit.limit), (60, 60));
    assert!(submit.next_possible_at.is_some());
    let sim = stack.mock.state();
    assert!(sim.calls_to("/cgi-bin/draft/add").is_empty());
    assert!(sim.calls_to(SUBMIT).is_empty());
    let still = detail(&stack, &id).await;
    assert_eq!(
        still.article.expect("article").state,
        pb::ArticleState::Approved as i32
    );

    // Once those calls are older than a minute, the send goes through and counts.
    sqlx::query("UPDATE api_call_ledger SET called_at = now() - interval '61 seconds'")
        .execute(&stack.app.db)
        .await
        .expect("time passes");
    let mut published = stack.watch("published").await;
    client
        .publish_article(by(publish(&id), PUBLISHER_KEY, "chen"))
        .await
        .expect("sent");
    assert_eq!(next_event(&mut published).await.article_id, id);
    let counted: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM api_call_ledger WHERE account = 'demo' AND api = 'freepublish/submit'",
    )
    .fetch_one(&stack.app.db)
    .await
    .expect("ledger read");
    assert_eq!(
        counted, 1,
        "the expired calls were trimmed and the new one counted"
    );
    stack.app.stop().await;
}

#[tokio::test]
async fn a_hit_overridden_before_publishing_does_not_block_the_edit_after_it() {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let created = client
        .create_article(by(
            create(
                "停水通知",
                "<p>本周六上午九点至十二点停水，勿信包治百病广告。</p>",
                pb::Channel::Freepublish,
            ),
            AUTHOR_KEY,
            "li",
        ))
        .await
        .expect("created")
        .into_inner();
    assert_eq!(created.hits.len(), 1);
    client
        .override_hits(by(
            pb::OverrideHitsRequest {
                id: created.id.clone(),
                overrides: vec![pb::HitOverride {
                    key: created.hits[0].key.clone(),
                    reason: "反面引用，提醒市民".into(),
                }],
                ..Default::default()
            },
            REVIEWER_KEY,
            "wang",
        ))
        .await
        .expect("overridden");
    let id = created.id;
    client
        .submit_article(by(article(&id), AUTHOR_KEY, "li"))
        .await
        .expect("submitted");
    for (key, person) in [
        (REVIEWER_KEY, "wang"),
        (REVIEWER_KEY, "zhao"),
        (PUBLISHER_KEY, "chen"),
    ] {
        client
            .review_article(by(approve(&id), key, person))
            .await
            .expect("approved");
    }
    let mut published = stack.watch("published").await;
    client
        .publish_article(by(publish(&id), PUBLISHER_KEY, "chen"))
        .await
        .expect("sent");
    next_event(&mut published).await;
    let edit = |body: &str| pb::EditPublishedArticleRequest {
        id: id.clone(),
        body: body.into(),
        reason: "结束时间有误".into(),
    };

    // A second copy of the word is a hit no reviewer saw: refused.
    let refused = client
        .edit_published_article(by(
            edit("<p>本周六上午九点至十一点停水，勿信包治百病包治百病广告。</p>"),
            PUBLISHER_KEY,
            "chen",
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    // The time fixed, the overridden word moved by nothing or by a character: kept.
    let edited = client
        .edit_published_article(by(
            edit("<p>周六上午九点至十一点停水，勿信包治百病广告。</p>"),
            PUBLISHER_KEY,
            "chen",
        ))
        .await
        .expect("the edit is recorded")
        .into_inner();
    assert_eq!(edited.version, 2);
    assert!(
        edited.hits.iter().all(|h| h.overridden),
        "the override carried to version 2: {:?}",
        edited.hits
    );
    stack.app.stop().await;
}

#[tokio::test]
async fn a_scheduled_article_is_screened_again_when_it_goes_out() {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let id = stack
        .approved_with(create(
            "道路施工公告",
            "<p>施工期间请刷票绕行。</p>",
            pb::Channel::Freepublish,
        ))
        .await;
    let mut failed = stack.watch("failed").await;
    client
        .schedule_article(by(
            pb::ScheduleArticleRequest {
                id: id.clone(),
                at: Some(prost_types::Timestamp {
                    seconds: chrono::Utc::now().timestamp() + 3,
                    nanos: 0,
                }),
                ..Default::default()
            },
            PUBLISHER_KEY,
            "chen",
        ))
        .await
        .expect("scheduled");
    // Before it is due, the lexicon gains a word the article contains.
    client
        .put_lexicon_entry(authed(
            pb::LexiconEntry {
                word: "刷票".into(),
                category: "fraud".into(),
            },
            ADMIN_KEY,
        ))
        .await
        .expect("added");
    let event = next_event(&mut failed).await;
    assert_eq!(event.article_id, id);
    assert!(event.reason.contains("sensitive-word"), "{}", event.reason);
    assert!(
        stack.mock.state().calls_to("/cgi-bin/draft/add").is_empty(),
        "nothing went to WeChat"
    );
    stack.app.stop().await;
}

#[tokio::test]
async fn a_preview_is_refused_after_a_word_of_it_joins_the_lexicon_since_its_approval() {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let id = stack
        .approved_with(create(
            "道路施工公告",
            "<p>施工期间请刷票绕行。</p>",
            pb::Channel::Freepublish,
        ))
        .await;
    stack
        .mock
        .state()
        .add_followers(wechat_sim::api_server::DEMO_APPID, ["o-director"])
        .expect("follower added");
    client
        .put_lexicon_entry(authed(
            pb::LexiconEntry {
                word: "刷票".into(),
                category: "fraud".into(),
            },
            ADMIN_KEY,
        ))
        .await
        .expect("added");
    let refused = client
        .preview_article(by(
            pb::PreviewArticleRequest {
                id: id.clone(),
                openids: vec!["o-director".into()],
            },
            PUBLISHER_KEY,
            "chen",
        ))
        .await
        .expect_err("refused like the send");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused.message().contains("sensitive-word"),
        "{}",
        refused.message()
    );
    assert!(
        stack
            .mock
            .state()
            .calls_to("/cgi-bin/message/mass/preview")
            .is_empty(),
        "nothing went to followers"
    );
    stack.app.stop().await;
}

#[tokio::test]
async fn one_edit_of_at_most_twenty_characters_is_recorded_after_publishing() {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let id = stack.approved("停水通知", pb::Channel::Freepublish).await;
    let mut published = stack.watch("published").await;
    client
        .publish_article(by(publish(&id), PUBLISHER_KEY, "chen"))
        .await
        .expect("sent");
    next_event(&mut published).await;

    let edit = |body: &str, reason: &str| pb::EditPublishedArticleRequest {
        id: id.clone(),
        body: body.into(),
        reason: reason.into(),
    };
    // More than 20 characters: refused, naming WeChat's rule.
    let refused = client
        .edit_published_article(by(
            edit(
                "<p>本周日全天停水，请市民提前储水，如有疑问请拨打供水服务热线咨询详情。</p>",
                "时间有误",
            ),
            PUBLISHER_KEY,
            "chen",
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("at most 20 characters"),
        "{}",
        refused.message()
    );
    // An editor may not record it.
    let editor = client
        .edit_published_article(by(
            edit("<p>本周六上午九点至十一点停水。</p>", "时间有误"),
            AUTHOR_KEY,
            "li",
        ))
        .await
        .unwrap_err();
    assert_eq!(editor.code(), Code::PermissionDenied);
    // Two characters: recorded as a new version with the reason.
    let edited = client
        .edit_published_article(by(
            edit("<p>本周六上午九点至十一点停水。</p>", "结束时间有误"),
            PUBLISHER_KEY,
            "chen",
        ))
        .await
        .expect("recorded")
        .into_inner();
    assert_eq!(edited.version, 2);
    assert_eq!(edited.state, pb::ArticleState::Published as i32);
    // Only once.
    let again = client
        .edit_published_article(by(
            edit("<p>本周六上午八点至十一点停水。</p>", "开始时间也有误"),
            PUBLISHER_KEY,
            "chen",
        ))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    assert!(again.message().contains("one edit"), "{}", again.message());
    let detail = detail(&stack, &id).await;
    let row = detail
        .audit
        .iter()
        .find(|a| a.action == "post_publish_edit")
        .expect("audited");
    assert_eq!((row.actor.as_str(), row.version), ("media:chen", 2));
    assert!(row.comment.starts_with("结束时间有误"), "{}", row.comment);
    stack.app.stop().await;
}

#[tokio::test]
async fn a_scheduled_send_over_the_limit_waits_for_the_next_minute_without_using_an_attempt() {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let id = stack
        .approved("今日停水通知", pb::Channel::Freepublish)
        .await;
    // Sixty drafts added 57 s ago: the next is possible in about 3 s.
    let earlier: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT now() - interval '57 seconds'")
            .fetch_one(&stack.app.db)
            .await
            .expect("clock");
    sqlx::query(
        "INSERT INTO api_call_ledger (account, api, called_at)
         SELECT 'demo', 'draft/add', $1 FROM generate_series(1, 60)",
    )
    .bind(earlier)
    .execute(&stack.app.db)
    .await
    .expect("ledger arranged");
    let mut published = stack.watch("published").await;
    client
        .schedule_article(by(
            pb::ScheduleArticleRequest {
                id: id.clone(),
                at: Some(prost_types::Timestamp {
                    seconds: chrono::Utc::now().timestamp(),
                    nanos: 0,
                }),
                ..Default::default()
            },
            PUBLISHER_KEY,
            "chen",
        ))
        .await
        .expect("scheduled");
    assert_eq!(next_event(&mut published).await.article_id, id);
    // It was claimed at least twice (refused, then sent), yet only the send counts.
    let attempts: i32 = sqlx::query_scalar("SELECT attempts FROM articles WHERE id = $1::uuid")
        .bind(&id)
        .fetch_one(&stack.app.db)
        .await
        .expect("read");
    assert_eq!(attempts, 1);
    let detail = detail(&stack, &id).await;
    assert_eq!(
        detail.article.expect("article").state,
        pb::ArticleState::Published as i32
    );
    let drafts = stack.mock.state().calls_to("/cgi-bin/draft/add");
    assert_eq!(drafts.len(), 1);
    assert!(
        drafts[0].at >= earlier + chrono::Duration::seconds(60),
        "WeChat was called only once the earlier calls had left the minute"
    );
    stack.app.stop().await;
}

#[tokio::test]
async fn a_send_wechat_refused_as_busy_after_its_draft_was_made_is_retried_with_the_same_draft() {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let id = stack.approved("停水通知", pb::Channel::Freepublish).await;
    // `freepublish/submit` is refused for now (WeChat's per-minute limit): the draft
    // exists, the send is retried later.
    stack.wechat_refusing_for_now(SUBMIT, 1);
    let mut published = stack.watch("published").await;
    client
        .publish_article(by(publish(&id), PUBLISHER_KEY, "chen"))
        .await
        .expect("accepted");
    assert_eq!(next_event(&mut published).await.article_id, id);

    let sim = stack.mock.state();
    assert_eq!(
        sim.calls_to("/cgi-bin/draft/add").len(),
        1,
        "the retry reuses the draft"
    );
    let submits = sim.calls_to(SUBMIT);
    assert_eq!(submits.len(), 2);
    assert_eq!(
        submits[0].body, submits[1].body,
        "the same media id is submitted"
    );
    stack.app.stop().await;
}

#[tokio::test]
async fn a_job_result_of_another_account_with_the_same_job_id_leaves_the_article_alone() {
    let app = crate::helpers::spawn_app_with(
        platform::testing::TestNats::new(),
        &[("SCHEDULER_INTERVAL", "1h")],
    )
    .await;
    let mock = wechat_sim::api_server::MockWechat::start(Default::default())
        .await
        .expect("mock starts");
    // demo's article handed to WeChat as job P-1; job ids are WeChat's per account.
    let id = crate::scheduler::in_publishing(&app.db, 1, "now()", Some("P-")).await[0];
    let articles = crate::scheduler::replica(&app.db, &mock);
    let verdict = |account: &'static str, event: &'static str| {
        let articles = articles.clone();
        let db = app.db.clone();
        async move {
            let mut tx = db.begin().await.expect("tx");
            let applied = articles
                .apply_job_result(
                    &mut tx,
                    account,
                    Job::Publish("P-1"),
                    Outcome::Failed("publish_status 4: WeChat's review refused it".into()),
                    event,
                )
                .await
                .expect("applied");
            tx.commit().await.expect("commit");
            applied
        }
    };
    let state = || async {
        sqlx::query_scalar::<_, String>("SELECT state FROM articles WHERE id = $1")
            .bind(id)
            .fetch_one(&app.db)
            .await
            .expect("read")
    };

    assert_eq!(
        verdict("yizhang", "evt-other").await,
        None,
        "not yizhang's job"
    );
    assert_eq!(state().await, "publishing");
    assert_eq!(verdict("demo", "evt-own").await, Some(true));
    assert_eq!(state().await, "failed");
    app.stop().await;
}

#[tokio::test]
async fn a_job_finished_at_23_55_beijing_time_and_applied_after_midnight_is_published_that_day() {
    let app = crate::helpers::spawn_app_with(
        platform::testing::TestNats::new(),
        &[("SCHEDULER_INTERVAL", "1h")],
    )
    .await;
    let mock = wechat_sim::api_server::MockWechat::start(Default::default())
        .await
        .expect("mock starts");
    let id = crate::scheduler::in_publishing(&app.db, 1, "now()", Some("P-")).await[0];
    let articles = crate::scheduler::replica(&app.db, &mock);
    // WeChat finished the job at 23:55 on 15 January in Beijing (the callback's
    // CreateTime); the callback is applied now, long after midnight.
    let finished: chrono::DateTime<chrono::Utc> =
        "2026-01-15T23:55:00+08:00".parse().expect("a time");
    let mut tx = app.db.begin().await.expect("tx");
    let applied = articles
        .apply_job_result(
            &mut tx,
            "demo",
            Job::Publish("P-1"),
            Outcome::Published {
                urls: vec![(1, "https://mp.weixin.qq.com/s/late".into())],
                msg_data_id: None,
                sent: 0,
                total: 0,
                at: finished,
                taken_down: None,
            },
            "evt-late",
        )
        .await
        .expect("applied");
    tx.commit().await.expect("commit");
    assert_eq!(applied, Some(true));
    let day: chrono::NaiveDate = sqlx::query_scalar(
        "SELECT (published_at AT TIME ZONE 'Asia/Shanghai')::date FROM articles WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await
    .expect("read");
    assert_eq!(
        day,
        chrono::NaiveDate::from_ymd_opt(2026, 1, 15).expect("a day")
    );
    app.stop().await;
}

#[tokio::test]
async fn publishing_again_after_a_failure_gets_all_its_retries_again() {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let id = stack.approved("停水通知", pb::Channel::Freepublish).await;
    // A scheduled send that used up its five attempts failed.
    sqlx::query(
        "UPDATE articles SET state = 'failed', attempts = 5, next_attempt_at = now(),
             failure = 'transient: timeout' WHERE id = $1::uuid",
    )
    .bind(&id)
    .execute(&stack.app.db)
    .await
    .expect("arranged");
    // Published again, its first try is refused for now: retried, not failed.
    stack.wechat_refusing_for_now(SUBMIT, 1);
    let mut outcome = stack.watch("*").await;
    client
        .publish_article(by(publish(&id), PUBLISHER_KEY, "chen"))
        .await
        .expect("accepted");
    // The approval's own event may still be on its way from the outbox: the
    // verdict is the first published or failed one.
    let verdicts = [
        proto::events::v1::ArticleTransition::Published as i32,
        proto::events::v1::ArticleTransition::Failed as i32,
    ];
    let event = loop {
        let event = next_event(&mut outcome).await;
        if verdicts.contains(&event.transition) {
            break event;
        }
    };
    assert_eq!(
        (event.article_id.as_str(), event.transition),
        (
            id.as_str(),
            proto::events::v1::ArticleTransition::Published as i32
        ),
        "{}",
        event.reason
    );
    let attempts: i32 = sqlx::query_scalar("SELECT attempts FROM articles WHERE id = $1::uuid")
        .bind(&id)
        .fetch_one(&stack.app.db)
        .await
        .expect("read");
    assert_eq!(attempts, 1, "one retry by the scheduler");
    stack.app.stop().await;
}

#[tokio::test]
async fn a_mass_send_whose_answer_from_wechat_was_lost_is_not_sent_again_and_counts_as_published() {
    let stack = spawn_stack(AccountKind::Service).await;
    let id = stack.approved("停水通知", pb::Channel::MassSend).await;
    let mut published = stack.watch("published").await;
    // WeChat takes the mass send, but its answer is lost on the way back (a 502).
    lost_mass_send(&stack, &id).await;
    // WeChat refuses the same clientmsgid within a minute of the send (45066), so
    // the retry waits that minute (a retry refused so was recorded failed, and a
    // publish again after a day, when WeChat has forgotten the id, pushed twice).
    let first = stack.mock.state().calls_to(SENDALL)[0].at;
    let retry_at: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT next_attempt_at FROM articles WHERE id = $1::uuid")
            .bind(&id)
            .fetch_one(&stack.app.db)
            .await
            .expect("retry scheduled");
    assert!(
        retry_at >= first + chrono::Duration::seconds(60),
        "retry at {retry_at}, the lost send at {first}"
    );
    // The minute passes (for WeChat's memory and for the retry).
    clientmsgid_minute_passes(&stack);
    retry_due_now(&stack, &id).await;
    let event = next_event(&mut published).await;
    assert_eq!(event.article_id, id);

    // The retry carried the same clientmsgid and WeChat refused it as a duplicate:
    // the followers got the message once.
    let sends = stack.mock.state().calls_to(SENDALL);
    let errcodes: Vec<i64> = sends.iter().map(|call| call.errcode).collect();
    assert_eq!(errcodes, [0, 45065]);
    assert_eq!(sends[0].body, sends[1].body);
    let detail = detail(&stack, &id).await;
    let article = detail.article.expect("article");
    assert_eq!(article.state, pb::ArticleState::Published as i32);
    // WeChat's answer named the job it took: recorded as this send's, and its
    // verdict (the job-finish callback, which found no article before) published it.
    let taken = detail
        .audit
        .iter()
        .find(|row| row.action == "already_sent")
        .expect("audited: already sent");
    assert!(
        taken.comment.contains("earlier attempt"),
        "{}",
        taken.comment
    );
    assert_eq!(detail.audit.last().expect("audit").action, "confirm");
    // Its outcome is known now: no confirmation asked of anyone any more.
    assert!(!article.send_outcome_unknown);
    // The quota it used stays used.
    let quota = stack.quota().await;
    assert_eq!(quota.used, 1);
    stack.app.stop().await;
}

#[tokio::test]
async fn a_mass_send_recorded_published_by_its_duplicate_answer_can_be_retracted_by_its_msg_id() {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let id = stack.approved("停水通知", pb::Channel::MassSend).await;
    let mut published = stack.watch("published").await;
    lost_mass_send(&stack, &id).await;
    // WeChat's minute for the clientmsgid passes; the retry meets 45065, whose
    // answer names the send WeChat took.
    clientmsgid_minute_passes(&stack);
    retry_due_now(&stack, &id).await;
    assert_eq!(next_event(&mut published).await.article_id, id);

    client
        .retract_article(by(
            pb::ArticleRef {
                id: id.clone(),
                comment: "内容有误，撤回".into(),
            },
            PUBLISHER_KEY,
            "chen",
        ))
        .await
        .expect("retracted on WeChat by the send's msg_id");
    let deletes = stack.mock.state().calls_to("/cgi-bin/message/mass/delete");
    assert_eq!(deletes.len(), 1);
    let recorded: Option<String> =
        sqlx::query_scalar("SELECT mass_msg_id FROM articles WHERE id = $1::uuid")
            .bind(&id)
            .fetch_one(&stack.app.db)
            .await
            .expect("read");
    let deleted = deletes[0].body.as_ref().expect("body")["msg_id"].to_string();
    assert_eq!(Some(deleted), recorded);
    stack.app.stop().await;
}

#[tokio::test]
async fn a_free_publish_whose_answer_from_wechat_was_lost_is_not_submitted_again() {
    let stack = spawn_stack(AccountKind::Service).await;
    let id = stack.approved("停水通知", pb::Channel::Freepublish).await;
    // WeChat takes the submission, but its answer is lost on the way back (a 502).
    // freepublish/submit has no clientmsgid: a second submit would publish it twice.
    let event = lost_free_publication(&stack, &id).await;
    assert_eq!(event.article_id, id);
    assert!(
        event.reason.contains("may have published"),
        "{}",
        event.reason
    );

    let submits = stack.mock.state().calls_to(SUBMIT);
    assert_eq!(submits.len(), 1, "submitted once, never again");
    let detail = detail(&stack, &id).await;
    assert_eq!(
        detail.article.expect("article").state,
        pb::ArticleState::Failed as i32
    );
    let last = detail.audit.last().expect("audit");
    assert!(last.comment.contains("published list"), "{}", last.comment);
    stack.app.stop().await;
}

/// WeChat publishes the draft and answers "system busy" (-1), as it may: the
/// article fails as possibly published, submitted once.
#[tokio::test]
async fn a_free_publish_wechat_answered_busy_is_failed_as_possibly_published_not_submitted_again() {
    let stack = spawn_stack(AccountKind::Service).await;
    let id = stack.approved("停水通知", pb::Channel::Freepublish).await;
    stack
        .mock
        .state()
        .inject(&wechat_sim::api_server::FaultRequest {
            busy: Some(1),
            busy_path: Some(SUBMIT.into()),
            busy_after_effect: Some(true),
            ..Default::default()
        })
        .expect("fault injected");
    let mut failed = stack.watch("failed").await;
    stack
        .app
        .client
        .clone()
        .publish_article(by(publish(&id), PUBLISHER_KEY, "chen"))
        .await
        .expect("answered");
    let event = next_event(&mut failed).await;
    assert_eq!(event.article_id, id);
    assert!(
        event.reason.contains("may have published"),
        "{}",
        event.reason
    );
    assert_eq!(stack.mock.state().calls_to(SUBMIT).len(), 1);
    stack.app.stop().await;
}

/// The daily quota of `freepublish/submit` is used up (45009): the article fails at
/// once saying when it resets, not after five attempts over 2.5 minutes.
#[tokio::test]
async fn a_free_publish_over_the_daily_quota_fails_at_once_saying_when_it_resets() {
    let stack = spawn_stack(AccountKind::Service).await;
    let id = stack.approved("停水通知", pb::Channel::Freepublish).await;
    stack
        .mock
        .state()
        .inject(&wechat_sim::api_server::FaultRequest {
            busy: Some(1),
            busy_path: Some(SUBMIT.into()),
            busy_errcode: Some(45009),
            ..Default::default()
        })
        .expect("fault injected");
    let mut outcome = stack.watch("*").await;
    stack
        .app
        .client
        .clone()
        .publish_article(by(publish(&id), PUBLISHER_KEY, "chen"))
        .await
        .expect("answered");
    let verdicts = [
        proto::events::v1::ArticleTransition::Published as i32,
        proto::events::v1::ArticleTransition::Failed as i32,
    ];
    let event = loop {
        let event = next_event(&mut outcome).await;
        if event.article_id == id && verdicts.contains(&event.transition) {
            break event;
        }
    };
    assert_eq!(
        event.transition,
        proto::events::v1::ArticleTransition::Failed as i32,
        "{}",
        event.reason
    );
    assert!(event.reason.contains("midnight"), "{}", event.reason);
    assert_eq!(stack.mock.state().calls_to(SUBMIT).len(), 1);
    stack.app.stop().await;
}

#[tokio::test]
async fn a_mass_send_whose_job_wechat_failed_goes_out_again_under_a_new_clientmsgid() {
    use content_svc::app::articles::Who;
    use content_svc::domain::review::{Action, Actor};

    let app = crate::helpers::spawn_app_with(
        platform::testing::TestNats::new(),
        &[("SCHEDULER_INTERVAL", "1h")],
    )
    .await;
    let mock = wechat_sim::api_server::MockWechat::start(Default::default())
        .await
        .expect("mock starts");
    let id: uuid::Uuid = sqlx::query_scalar(
        "INSERT INTO articles (id, account, department, author_id, state, title, body, cover_media_id,
                               channel, scheduled_for)
         VALUES (gen_random_uuid(), 'demo', 'press', 'press:li', 'scheduled', '停水通知',
                 '<p>停水</p>', 'MEDIA_COVER', 'mass_send', now())
         RETURNING id",
    )
    .fetch_one(&app.db)
    .await
    .expect("arranged");
    // A subscription account: one mass send a day.
    let articles = crate::scheduler::replica_of(
        &app.db,
        &mock,
        content_svc::domain::quota::AccountKind::Subscription,
    );
    assert_eq!(articles.send_due(10).await.expect("sent"), 1);
    let msg_id: String = sqlx::query_scalar("SELECT mass_msg_id FROM articles WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .expect("job recorded");
    // WeChat took the send, then its job failed: nothing reached the followers.
    let mut tx = app.db.begin().await.expect("tx");
    assert_eq!(
        articles
            .apply_job_result(
                &mut tx,
                "demo",
                Job::Mass(&msg_id),
                Outcome::Failed("mass send status Other(\"err(10001)\") (sent 0, errors 0)".into()),
                "evt-mass-failed",
            )
            .await
            .expect("applied"),
        Some(true)
    );
    tx.commit().await.expect("commit");
    // That send was two days ago: WeChat counted it then, not today.
    sqlx::query("UPDATE mass_send_ledger SET sent_at = sent_at - interval '2 days'")
        .execute(&app.db)
        .await
        .expect("backdated");

    // The publisher publishes it again, as a failed article may be.
    let chen = Who {
        actor: Actor {
            id: "media:chen".into(),
            roles: vec![platform::Role::Publisher],
        },
        department: "media".into(),
        accounts: platform::grpc::AccountScope::All,
    };
    articles
        .act(
            &chen,
            id,
            Action::Publish,
            "",
            &[],
            Default::default(),
            None,
        )
        .await
        .expect("published again");
    let sends = mock.state().calls_to(SENDALL);
    let errcodes: Vec<i64> = sends.iter().map(|call| call.errcode).collect();
    assert_eq!(errcodes, [0, 0], "WeChat took the second send as a new one");
    let key = |i: usize| sends[i].body.as_ref().expect("body")["clientmsgid"].clone();
    assert_ne!(key(0), key(1));
    let state: String = sqlx::query_scalar("SELECT state FROM articles WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .expect("read");
    assert_eq!(state, "publishing", "waiting for the new job's verdict");

    // The send again is today's mass send, and the one two days ago stays counted
    // (it is in this month's figures): another mass send today is refused before
    // WeChat, which would refuse it for lack of quota.
    let (_, used, limit, next) = articles.quota_status(&chen, "demo").await.expect("quota");
    assert_eq!((used, limit), (1, 1), "today's send is counted");
    assert!(next.is_some(), "the next is possible tomorrow");
    let ledger: Vec<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT sent_at FROM mass_send_ledger UNION ALL SELECT unnest(earlier_sends) FROM mass_send_ledger")
            .fetch_all(&app.db)
            .await
            .expect("ledger");
    assert_eq!(
        ledger.len(),
        2,
        "both sends WeChat took are counted: {ledger:?}"
    );
    let other: uuid::Uuid = sqlx::query_scalar(
        "INSERT INTO articles (id, account, department, author_id, state, title, body, cover_media_id,
                               channel)
         VALUES (gen_random_uuid(), 'demo', 'press', 'press:li', 'approved', '停电通知',
                 '<p>停电</p>', 'MEDIA_COVER', 'mass_send')
         RETURNING id",
    )
    .fetch_one(&app.db)
    .await
    .expect("arranged");
    let refused = articles
        .act(
            &chen,
            other,
            Action::Publish,
            "",
            &[],
            Default::default(),
            None,
        )
        .await
        .expect_err("a second mass send today");
    assert!(
        refused
            .to_string()
            .contains("mass send(s) allowed this day are used"),
        "{refused}"
    );
    assert_eq!(mock.state().calls_to(SENDALL).len(), 2, "WeChat not called");
    app.stop().await;
}

#[tokio::test]
async fn giving_a_send_again_back_keeps_the_earlier_send_wechat_took_counted() {
    use content_svc::store::lexicon as ledger;

    let app = crate::helpers::spawn_app_with(
        platform::testing::TestNats::new(),
        &[("SCHEDULER_INTERVAL", "1h")],
    )
    .await;
    let id: uuid::Uuid = sqlx::query_scalar(
        "INSERT INTO articles (id, account, department, author_id, state, title, body, cover_media_id,
                               channel)
         VALUES (gen_random_uuid(), 'demo', 'press', 'press:li', 'approved', '停水通知',
                 '<p>停水</p>', 'MEDIA_COVER', 'mass_send')
         RETURNING id",
    )
    .fetch_one(&app.db)
    .await
    .expect("arranged");
    let since = chrono::Utc::now() - chrono::Duration::days(32);
    let counted = async || {
        ledger::sends_since(&app.db, "demo", since)
            .await
            .expect("ledger")
            .len()
    };
    let reserve = async || {
        let mut tx = app.db.begin().await.expect("tx");
        let again = ledger::is_reserved(&mut tx, id).await.expect("read");
        if !again {
            ledger::reserve(&mut tx, "demo", id)
                .await
                .expect("reserved");
        }
        tx.commit().await.expect("commit");
        again
    };

    assert!(!reserve().await, "the first send reserves");
    assert!(reserve().await, "a retry of it is the same send");
    assert_eq!(counted().await, 1);
    // WeChat failed its job: the send again is a new one, the first stays counted.
    sqlx::query("UPDATE articles SET send_generation = 1 WHERE id = $1")
        .bind(id)
        .execute(&app.db)
        .await
        .expect("job failed");
    assert!(!reserve().await, "the send again reserves anew");
    assert_eq!(counted().await, 2);
    // The send again is refused for good (or cancelled): only it is given back,
    // however often that is asked.
    ledger::release(&app.db, id).await.expect("released");
    assert_eq!(counted().await, 1);
    ledger::release(&app.db, id).await.expect("released");
    assert_eq!(
        counted().await,
        1,
        "the send WeChat took is never given back"
    );
    assert!(!reserve().await, "a later send reserves anew");
    assert_eq!(counted().await, 2);
    app.stop().await;
}

#[tokio::test]
async fn cancelling_a_mass_send_waiting_to_retry_gives_its_quota_back_unless_an_answer_was_lost() {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let canceller = client.clone();
    let cancel = |id: String| {
        let mut client = canceller.clone();
        async move {
            client
                .cancel_schedule(by(article(&id), PUBLISHER_KEY, "chen"))
                .await
                .expect("cancelled");
        }
    };

    // WeChat refuses it for now (45011, not carried out): nothing was sent, the send
    // waits to retry, and is cancelled.
    let refused = stack.approved("今日停水通知", pb::Channel::MassSend).await;
    stack.wechat_refusing_for_now(SENDALL, 1);
    let waiting = client
        .publish_article(by(publish(&refused), PUBLISHER_KEY, "chen"))
        .await
        .expect("publish answers")
        .into_inner();
    assert_eq!(waiting.state, pb::ArticleState::Scheduled as i32);
    cancel(refused).await;
    assert_eq!(
        stack.quota().await.used,
        0,
        "nothing went out: the quota is back"
    );

    // WeChat's answer is lost: the send may have gone out, and stays counted.
    let lost = stack.approved("明日恢复供水", pb::Channel::MassSend).await;
    let waiting = lost_mass_send(&stack, &lost).await;
    assert_eq!(waiting.state, pb::ArticleState::Scheduled as i32);
    cancel(lost).await;
    assert_eq!(stack.quota().await.used, 1, "WeChat may have counted it");

    // WeChat answered "system busy" (-1) to every try: it may have carried out the
    // first (WeChat may answer -1 after the effect), so the send stays counted too.
    let busy = stack.approved("停水安排调整", pb::Channel::MassSend).await;
    stack.wechat_busy(SENDALL, 3);
    let waiting = client
        .publish_article(by(publish(&busy), PUBLISHER_KEY, "chen"))
        .await
        .expect("publish answers")
        .into_inner();
    assert_eq!(waiting.state, pb::ArticleState::Scheduled as i32);
    cancel(busy).await;
    assert_eq!(
        stack.quota().await.used,
        2,
        "busy to the last try: may have gone out"
    );

    // WeChat sent it and answered -1; the client's repeat within the minute is refused
    // 45066, which says nothing of the first: it stays counted.
    let sent_busy = stack.approved("停水范围说明", pb::Channel::MassSend).await;
    stack
        .mock
        .state()
        .inject(&wechat_sim::api_server::FaultRequest {
            busy: Some(1),
            busy_path: Some(SENDALL.into()),
            busy_after_effect: Some(true),
            ..Default::default()
        })
        .expect("fault injected");
    let waiting = client
        .publish_article(by(publish(&sent_busy), PUBLISHER_KEY, "chen"))
        .await
        .expect("publish answers")
        .into_inner();
    assert_eq!(waiting.state, pb::ArticleState::Scheduled as i32);
    cancel(sent_busy).await;
    assert_eq!(
        stack.quota().await.used,
        3,
        "went out before its -1: the 45066 of the repeat must not give the quota back"
    );
    stack.app.stop().await;
}

#[tokio::test]
async fn a_retracted_article_gets_its_correction_notice_linked_in_its_history() {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let id = stack
        .approved("今日停水通知", pb::Channel::Freepublish)
        .await;
    let mut published = stack.watch("published").await;
    client
        .publish_article(by(publish(&id), PUBLISHER_KEY, "chen"))
        .await
        .expect("sent");
    assert_eq!(next_event(&mut published).await.article_id, id);
    // The urgent order: retract the wrong article first…
    client
        .retract_article(by(
            pb::ArticleRef {
                id: id.clone(),
                comment: "停水时间有误，撤回".into(),
            },
            PUBLISHER_KEY,
            "chen",
        ))
        .await
        .expect("retracted");

    // …then the correction notice.
    let notice = client
        .correct_article(by(
            pb::CorrectArticleRequest {
                id: id.clone(),
                reason: "停水时间有误".into(),
                notice: Some(pb::ArticleContent {
                    title: "更正说明".into(),
                    body: "<p>停水时间更正为周日上午。</p>".into(),
                    cover_media_id: "MEDIA_COVER_1".into(),
                    ..Default::default()
                }),
            },
            PUBLISHER_KEY,
            "chen",
        ))
        .await
        .expect("a correction follows the retraction")
        .into_inner();
    assert_eq!(notice.correction_of, id);
    assert_eq!(notice.state, pb::ArticleState::Draft as i32);

    let original = detail(&stack, &id).await;
    assert_eq!(
        original.article.map(|a| a.state),
        Some(pb::ArticleState::Retracted as i32),
        "the original stays retracted"
    );
    let last: Vec<(&str, &str)> = original
        .audit
        .iter()
        .rev()
        .take(2)
        .map(|a| (a.action.as_str(), a.comment.as_str()))
        .collect();
    assert_eq!(
        last,
        [
            ("correct", "停水时间有误"),
            ("retract", "停水时间有误，撤回")
        ]
    );
    stack.app.stop().await;
}

#[tokio::test]
async fn each_schedule_and_reschedule_records_its_time_and_its_publisher_in_the_history() {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let id = stack
        .approved("今日停水通知", pb::Channel::Freepublish)
        .await;
    let beijing = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
    let tomorrow = chrono::Utc::now().timestamp() + 86_400;
    let mut expected = Vec::new();
    for (seconds, key, person) in [
        (tomorrow, PUBLISHER_KEY, "chen"),
        (tomorrow + 3_600, PUBLISHER_KEY, "zhao"),
    ] {
        client
            .schedule_article(by(
                pb::ScheduleArticleRequest {
                    id: id.clone(),
                    at: Some(prost_types::Timestamp { seconds, nanos: 0 }),
                    ..Default::default()
                },
                key,
                person,
            ))
            .await
            .expect("scheduled");
        let at = chrono::DateTime::from_timestamp(seconds, 0)
            .unwrap()
            .with_timezone(&beijing)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, false);
        expected.push((format!("media:{person}"), format!("scheduled for {at}")));
    }

    let detail = detail(&stack, &id).await;
    let schedules: Vec<(String, String)> = detail
        .audit
        .iter()
        .filter(|a| a.action == "schedule")
        .map(|a| (a.actor.clone(), a.comment.clone()))
        .collect();
    assert_eq!(schedules, expected);
    stack.app.stop().await;
}

#[tokio::test]
async fn an_edit_after_publishing_keeping_text_readers_cannot_see_is_refused_until_its_background_is_given()
 {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let id = stack.approved("停水通知", pb::Channel::Freepublish).await;
    let mut published = stack.watch("published").await;
    client
        .publish_article(by(publish(&id), PUBLISHER_KEY, "chen"))
        .await
        .expect("sent");
    next_event(&mut published).await;
    // As stored before faint text was refused: the pasted `background:#c00` had been
    // dropped, leaving white text on the white page.
    sqlx::query(
        r#"UPDATE articles SET body = '<section style="color:#fff">本周六上午九点至十二点停水。</section>'
           WHERE id = $1::uuid"#,
    )
    .bind(&id)
    .execute(&stack.app.db)
    .await
    .expect("arranged");
    let edit = |body: &str| pb::EditPublishedArticleRequest {
        id: id.clone(),
        body: body.into(),
        reason: "结束时间有误".into(),
    };

    // The typo fixed, the text still white on white: refused, naming the text.
    let refused = client
        .edit_published_article(by(
            edit(r#"<section style="color:#fff">本周六上午九点至十一点停水。</section>"#),
            PUBLISHER_KEY,
            "chen",
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(
        refused
            .message()
            .starts_with("body: the text \"本周六上午九点至十一点停水。\" is #ffffff on #ffffff"),
        "{}",
        refused.message()
    );
    // With its background given back (the pasted shorthand; styles are not counted
    // as changed characters): recorded, and the body keeps the background.
    let edited = client
        .edit_published_article(by(
            edit(
                r#"<section style="background:#c00;color:#fff">本周六上午九点至十一点停水。</section>"#,
            ),
            PUBLISHER_KEY,
            "chen",
        ))
        .await
        .expect("recorded")
        .into_inner();
    assert_eq!(edited.version, 2);
    assert_eq!(
        edited.content.expect("content").body,
        r#"<section style="background-color:#c00;color:#fff">本周六上午九点至十一点停水。</section>"#
    );
    stack.app.stop().await;
}

#[tokio::test]
async fn a_preview_whose_answer_was_lost_says_it_may_have_been_sent_not_try_again() {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let id = stack
        .approved_with(create(
            "道路施工公告",
            "<p>施工期间请绕行。</p>",
            pb::Channel::Freepublish,
        ))
        .await;
    stack
        .mock
        .state()
        .add_followers(
            wechat_sim::api_server::DEMO_APPID,
            ["o-director", "o-deputy"],
        )
        .expect("followers added");
    stack.wechat_loses_answer("/cgi-bin/message/mass/preview");
    let refused = client
        .preview_article(by(
            pb::PreviewArticleRequest {
                id: id.clone(),
                openids: vec!["o-director".into(), "o-deputy".into()],
            },
            PUBLISHER_KEY,
            "chen",
        ))
        .await
        .expect_err("the answer was lost");
    // The director's phone got it: a retry would send them a second one.
    assert_eq!(
        stack
            .mock
            .state()
            .calls_to("/cgi-bin/message/mass/preview")
            .len(),
        1
    );
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    let message = refused.message();
    assert!(
        message.contains("may have been sent") && message.contains("o-director"),
        "{message}"
    );
    assert!(!message.contains("try again"), "{message}");
    stack.app.stop().await;
}

/// A material WeChat no longer has (deleted already, or never this account's:
/// 40007) counts as deleted, as a draft does: not a failure to warn of and count.
#[tokio::test]
async fn deleting_a_material_wechat_no_longer_has_is_done() {
    use std::collections::HashMap;
    use wechat_sim::api_server::{DEMO_APPID, DEMO_SECRET, MockWechat, SimAccount, SimConfig};
    let mock = MockWechat::start(SimConfig {
        accounts: vec![SimAccount::demo()],
        ..SimConfig::default()
    })
    .await
    .expect("mock wechat starts");
    let client = wechat::api::Client::builder(
        DEMO_APPID,
        DEMO_SECRET.into(),
        wechat::token::LocalTokenCache::default().into(),
    )
    .base_url(mock.base_url())
    .build()
    .expect("client");
    let publisher = content_svc::app::publishing::Publisher::new(HashMap::from([(
        "demo".to_owned(),
        (client, content_svc::domain::quota::AccountKind::Service),
    )]));
    publisher
        .delete_material("demo", "MATERIAL_999999")
        .await
        .expect("a material WeChat does not have is as good as deleted");
    assert_eq!(
        mock.state().calls_to("/cgi-bin/material/del_material")[0].errcode,
        40007
    );
}
