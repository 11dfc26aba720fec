//! Each client call against the mock.

use chrono::{Duration as ChronoDuration, Utc};
use wechat::api::custom::{CustomMessage, MiniProgramPage, NewsArticle};
use wechat::api::mass::{MassContent, MassSend, MassSendOutcome};
use wechat::api::menu::{Button, Menu};
use wechat::api::publish::{DraftArticle, PublishState};
use wechat::api::template::TemplateMessage;
use wechat::api::{ErrCode, TokenEndpoint};
use wechat::token::LocalTokenCache;

use crate::helpers::*;

#[tokio::test]
async fn token_endpoints_issue_tokens_and_check_the_appsecret() {
    let mock = spawn_mock().await;
    let client = local_client(&mock, APPID, SECRET);

    let first = client.fetch_stable_token(false).await.unwrap();
    let again = client.fetch_stable_token(false).await.unwrap();
    assert_eq!(
        first.secret(),
        again.secret(),
        "stable_token returns the same token until near expiry"
    );
    let forced = client.fetch_stable_token(true).await.unwrap();
    assert_ne!(first.secret(), forced.secret());
    let with = |token: &str| {
        reqwest::Client::new()
            .get(format!("{}/cgi-bin/tags/get", mock.base_url()))
            .query(&[("access_token", token)])
            .send()
    };
    let answer: serde_json::Value = with(first.secret()).await.unwrap().json().await.unwrap();
    assert_eq!(
        answer["errcode"], 40001,
        "force_refresh retires the previous stable token at once"
    );
    let classic = client.fetch_token().await.unwrap();
    assert!(classic.expires_at() > Utc::now() + ChronoDuration::seconds(7000));

    let wrong = local_client(&mock, APPID, "not-the-secret");
    let err = wrong.fetch_stable_token(false).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrCode::INVALID_APPSECRET));
    let err = wrong.fetch_token().await.unwrap_err();
    assert_eq!(err.code(), Some(ErrCode::INVALID_APPSECRET));
}

#[tokio::test]
async fn classic_token_endpoint_can_be_chosen() {
    let mock = spawn_mock().await;
    let client = client_with_endpoint(&mock, TokenEndpoint::Classic);
    client.tags().await.unwrap();
    assert_eq!(calls_to(&mock, "/cgi-bin/token"), 1);
    assert_eq!(calls_to(&mock, "/cgi-bin/stable_token"), 0);
}

fn client_with_endpoint(
    mock: &wechat_sim::api_server::MockWechat,
    endpoint: TokenEndpoint,
) -> wechat::api::Client {
    wechat::api::Client::builder(
        APPID,
        SECRET.to_owned().into(),
        LocalTokenCache::default().into(),
    )
    .base_url(mock.base_url())
    .token_endpoint(endpoint)
    .build()
    .unwrap()
}

#[tokio::test]
async fn customer_service_messages_of_every_type_are_sent() {
    let mock = spawn_mock().await;
    let client = local_client(&mock, APPID, SECRET);
    interact(&mock, APPID, "citizen-1").await;

    client
        .send_custom_message(&CustomMessage::text("citizen-1", "您的工单已受理"))
        .await
        .unwrap();
    client
        .send_custom_message(&CustomMessage::image("citizen-1", "MEDIA_1"))
        .await
        .unwrap();
    let article = NewsArticle {
        title: "办事指南".into(),
        description: "社保卡补办".into(),
        url: "https://example.gov.cn/guide".into(),
        picurl: "https://example.gov.cn/p.png".into(),
    };
    client
        .send_custom_message(&CustomMessage::news("citizen-1", article).as_agent("agent@city"))
        .await
        .unwrap();
    let page = MiniProgramPage {
        title: "预约".into(),
        appid: "wxminiprogram01".into(),
        pagepath: "pages/book/index".into(),
        thumb_media_id: "MEDIA_2".into(),
    };
    client
        .send_custom_message(&CustomMessage::mini_program("citizen-1", page))
        .await
        .unwrap();

    let sent = mock.state().calls_to("/cgi-bin/message/custom/send");
    let types: Vec<_> = sent
        .iter()
        .map(|c| {
            c.body.as_ref().unwrap()["msgtype"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(types, ["text", "image", "news", "miniprogrampage"]);
    assert_eq!(
        sent[0].body.as_ref().unwrap()["text"]["content"],
        "您的工单已受理"
    );
    assert_eq!(
        sent[2].body.as_ref().unwrap()["customservice"]["kf_account"],
        "agent@city"
    );
    assert!(
        sent.iter()
            .all(|c| c.errcode == 0 && c.appid.as_deref() == Some(APPID))
    );
}

#[tokio::test]
async fn template_messages_need_a_service_account_and_a_follower() {
    let mock = spawn_mock().await;
    mock.state().add_followers(APPID, ["citizen-1"]).unwrap();
    mock.state()
        .add_followers(SUB_APPID, ["citizen-1"])
        .unwrap();
    let message = TemplateMessage::new("citizen-1", "TEMPLATE_1")
        .field("thing1", "燃气检修")
        .url("https://example.gov.cn/n/1")
        .client_msg_id("notice-1");

    let sent = local_client(&mock, APPID, SECRET)
        .send_template_message(&message)
        .await
        .unwrap();
    assert!(sent.msgid > 0);

    let err = local_client(&mock, SUB_APPID, SUB_SECRET)
        .send_template_message(&message)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrCode::API_UNAUTHORIZED));
}

#[tokio::test]
async fn mass_send_to_all_and_to_a_tag_and_preview() {
    let mock = spawn_mock().await;
    mock.state().add_followers(APPID, ["citizen-1"]).unwrap();
    let client = local_client(&mock, APPID, SECRET);
    let draft = client.draft_add(&[article("通知")]).await.unwrap();
    let tag = client.tag_create("志愿者").await.unwrap();

    let all = client
        .mass_send(&MassSend::to_all(MassContent::mpnews(&draft)).client_msg_id("m-1"))
        .await
        .unwrap();
    assert!(all.msg_data_id.is_some());
    client
        .mass_send(&MassSend::to_tag(tag.id, MassContent::text("明天停水")))
        .await
        .unwrap();
    let preview = client
        .mass_preview("citizen-1", &MassContent::mpnews(&draft))
        .await
        .unwrap();
    assert!(preview.msg_id.is_some());
}

#[tokio::test]
async fn a_repeated_clientmsgid_is_too_fast_for_a_minute_a_duplicate_for_a_day_then_forgotten() {
    let mock = spawn_mock().await;
    let client = local_client(&mock, APPID, SECRET);
    let send = MassSend::to_all(MassContent::text("明天停水")).client_msg_id("m-1");
    let first = client.mass_send(&send).await.unwrap();

    // Within the minute: refused as too fast, nothing sent.
    let err = client.mass_send(&send).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrCode::CLIENT_MSG_ID_RETRY_TOO_FAST));
    // After it, for a day: a duplicate of the send WeChat took.
    inject(&mock, serde_json::json!({"age_client_msg_ids_secs": 60})).await;
    let err = client.mass_send(&send).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrCode::DUPLICATE_CLIENT_MSG_ID));
    // The 45065 answer names the send taken, as the keyed call keeps it.
    assert_eq!(
        client.mass_send_keyed(&send).await.unwrap(),
        MassSendOutcome::AlreadyTaken {
            msg_id: Some(first.msg_id)
        }
    );
    // After a day WeChat has forgotten it: the same clientmsgid goes out again.
    inject(
        &mock,
        serde_json::json!({"age_client_msg_ids_secs": 86_400}),
    )
    .await;
    client.mass_send(&send).await.unwrap();
    let carried_out = mock
        .state()
        .calls_to("/cgi-bin/message/mass/sendall")
        .iter()
        .filter(|call| call.errcode == 0)
        .count();
    assert_eq!(carried_out, 2);
}

#[tokio::test]
async fn mass_send_quota_is_surfaced_without_retry() {
    let mock = spawn_mock().await;
    let client = local_client(&mock, SUB_APPID, SUB_SECRET);
    client
        .mass_send(&MassSend::to_all(MassContent::text("今日提醒")))
        .await
        .unwrap();

    let err = client
        .mass_send(&MassSend::to_all(MassContent::text("第二次")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrCode::NO_MASS_SEND_QUOTA));
    assert_eq!(
        calls_to(&mock, "/cgi-bin/message/mass/sendall"),
        2,
        "one call per send, no retry"
    );
}

fn article(title: &str) -> DraftArticle {
    DraftArticle {
        title: title.into(),
        author: "市政府办公室".into(),
        content: "<p>正文</p>".into(),
        thumb_media_id: "THUMB_1".into(),
        ..DraftArticle::default()
    }
}

#[tokio::test]
async fn drafts_are_added_read_deleted_and_published_jobs_complete() {
    let mock = spawn_mock().await;
    let client = local_client(&mock, APPID, SECRET);

    let media_id = client
        .draft_add(&[article("一"), article("二")])
        .await
        .unwrap();
    let draft = client.draft_get(&media_id).await.unwrap();
    assert_eq!(draft.news_item.len(), 2);
    assert_eq!(draft.news_item[1].title, "二");
    assert!(!draft.news_item[0].url.is_empty());

    let submitted = client.publish_submit(&media_id).await.unwrap();
    let first = client.publish_status(&submitted.publish_id).await.unwrap();
    assert_eq!(first.state(), PublishState::Publishing);
    let done = client.publish_status(&submitted.publish_id).await.unwrap();
    assert_eq!(done.state(), PublishState::Success);
    assert_eq!(done.article_detail.unwrap().item.len(), 2);
    assert!(done.article_id.is_some());

    let other = client.draft_add(&[article("三")]).await.unwrap();
    client.draft_delete(&other).await.unwrap();
    let err = client.draft_get(&other).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrCode::INVALID_MEDIA_ID));
}

#[tokio::test]
async fn menus_are_created_read_and_deleted() {
    let mock = spawn_mock().await;
    let client = local_client(&mock, APPID, SECRET);
    let menu = Menu {
        button: vec![
            Button::click("今日歌曲", "V1001_TODAY_MUSIC"),
            Button::parent(
                "办事服务",
                vec![
                    Button::view("社保查询", "https://example.gov.cn/si"),
                    Button::mini_program(
                        "预约挂号",
                        "https://example.gov.cn",
                        "wxmini0001",
                        "pages/index",
                    ),
                ],
            ),
        ],
    };
    client.menu_create(&menu).await.unwrap();
    assert_eq!(client.menu_get().await.unwrap(), menu);
    client.menu_delete().await.unwrap();
    let err = client.menu_get().await.unwrap_err();
    assert_eq!(err.code(), Some(ErrCode::MENU_NOT_EXIST));
}

#[tokio::test]
async fn menus_breaking_wechat_limits_are_rejected() {
    let mock = spawn_mock().await;
    let client = local_client(&mock, APPID, SECRET);
    let click = |n: usize| Button::click(format!("b{n}"), format!("k{n}"));

    let four = Menu {
        button: (0..4).map(click).collect(),
    };
    assert_eq!(
        client.menu_create(&four).await.unwrap_err().code(),
        Some(ErrCode::INVALID_BUTTON_SIZE)
    );

    let six_subs = Menu {
        button: vec![Button::parent("p", (0..6).map(click).collect())],
    };
    assert_eq!(
        client.menu_create(&six_subs).await.unwrap_err().code(),
        Some(ErrCode::INVALID_SUB_BUTTON_SIZE)
    );

    // 6 CJK characters are 18 bytes: over the 16-byte top-level limit.
    let long_name = Menu {
        button: vec![Button::click("一二三四五六", "k")],
    };
    assert_eq!(
        client.menu_create(&long_name).await.unwrap_err().code(),
        Some(ErrCode::INVALID_BUTTON_NAME_SIZE)
    );
    // The same name is fine as a sub button (60 bytes).
    let sub_ok = Menu {
        button: vec![Button::parent(
            "服务",
            vec![Button::click("一二三四五六", "k")],
        )],
    };
    client.menu_create(&sub_ok).await.unwrap();

    let mut no_key = Button::click("b", "k");
    no_key.key = None;
    assert_eq!(
        client
            .menu_create(&Menu {
                button: vec![no_key]
            })
            .await
            .unwrap_err()
            .code(),
        Some(ErrCode::INVALID_BUTTON_KEY_SIZE)
    );
}

#[tokio::test]
async fn users_are_read_one_by_one_in_batches_and_by_pages() {
    let mock = spawn_mock().await;
    let openids: Vec<String> = (0..7).map(|i| format!("citizen-{i}")).collect();
    mock.state().add_followers(APPID, &openids).unwrap();
    let client = local_client(&mock, APPID, SECRET);

    // The mock pages by 3: 3 + 3 + 1, then the empty page that ends the walk.
    assert_eq!(client.all_followers().await.unwrap(), openids);
    assert_eq!(calls_to(&mock, "/cgi-bin/user/get"), 4);
    let first = client.followers(None).await.unwrap();
    assert_eq!((first.total, first.count), (7, 3));
    assert_eq!(first.next_openid, "citizen-2");

    let info = client.user_info("citizen-3").await.unwrap();
    assert_eq!((info.subscribe, info.openid.as_str()), (1, "citizen-3"));
    assert!(info.subscribe_time.is_some());

    let infos = client.users_info(&openids[..5]).await.unwrap();
    assert_eq!(infos.len(), 5);
    let too_many: Vec<String> = (0..101).map(|i| format!("x{i}")).collect();
    let err = client.users_info(&too_many).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrCode::INVALID_OPENID_LIST_SIZE));

    let err = client.user_info("stranger").await.unwrap_err();
    assert_eq!(err.code(), Some(ErrCode::INVALID_OPENID));
}

#[tokio::test]
async fn tags_are_created_listed_and_applied() {
    let mock = spawn_mock().await;
    let openids: Vec<String> = (0..3).map(|i| format!("citizen-{i}")).collect();
    mock.state().add_followers(APPID, &openids).unwrap();
    let client = local_client(&mock, APPID, SECRET);

    let tag = client.tag_create("老年人").await.unwrap();
    assert!(tag.id >= 100, "0-2 are reserved");
    let err = client.tag_create("老年人").await.unwrap_err();
    assert_eq!(err.code(), Some(ErrCode::INVALID_TAG_NAME));

    client.tag_users(tag.id, &openids).await.unwrap();
    assert_eq!(client.tags().await.unwrap()[0].count, 3);
    assert_eq!(
        client.user_info("citizen-0").await.unwrap().tagid_list,
        [tag.id]
    );
    client.untag_users(tag.id, &openids[..2]).await.unwrap();
    assert_eq!(client.tags().await.unwrap()[0].count, 1);

    let err = client.tag_users(9999, &openids).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrCode::INVALID_TAG_ID));
    let fifty_one: Vec<String> = (0..51).map(|i| format!("x{i}")).collect();
    let err = client.tag_users(tag.id, &fifty_one).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrCode::INVALID_OPENID_LIST_SIZE));
}

#[tokio::test]
async fn datacube_returns_deterministic_rows_within_the_allowed_span() {
    let mock = spawn_mock().await;
    let client = local_client(&mock, APPID, SECRET);
    let yesterday = Utc::now().date_naive() - ChronoDuration::days(1);
    let week_ago = yesterday - ChronoDuration::days(6);

    let summary = client.user_summary(week_ago, yesterday).await.unwrap();
    assert!(!summary.is_empty());
    assert_eq!(
        summary,
        client.user_summary(week_ago, yesterday).await.unwrap()
    );
    let cumulate = client.user_cumulate(week_ago, yesterday).await.unwrap();
    assert_eq!(cumulate.len(), 7);
    assert_eq!(cumulate[6].ref_date, yesterday);
    let articles = client.article_summary(yesterday, yesterday).await.unwrap();
    assert!(articles.iter().all(|a| a.counters.int_page_read_user > 0));
    let totals = client.article_total(yesterday, yesterday).await.unwrap();
    assert!(!totals[0].details.is_empty());
    let reads = client
        .user_read(yesterday - ChronoDuration::days(2), yesterday)
        .await
        .unwrap();
    assert_eq!(reads.len(), 3);

    let err = client
        .user_summary(week_ago - ChronoDuration::days(1), yesterday)
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some(ErrCode::DATE_RANGE_ERROR),
        "8 days is over the 7-day span"
    );
    let err = client
        .article_summary(
            yesterday + ChronoDuration::days(1),
            yesterday + ChronoDuration::days(1),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some(ErrCode::DATE_RANGE_ERROR),
        "today is not allowed"
    );
}

#[tokio::test]
async fn conditional_menus_need_a_default_menu_and_a_known_tag() {
    use wechat::api::menu::{ConditionalMenu, MatchRule};
    let mock = spawn_mock().await;
    let client = local_client(&mock, APPID, SECRET);
    let tag = client.tag_create("老年人").await.unwrap().id;
    let elderly = ConditionalMenu {
        button: vec![Button::click("养老服务", "category:elderly_care")],
        matchrule: MatchRule::tag(tag),
    };
    let err = client.menu_add_conditional(&elderly).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrCode(65303)), "no default menu yet");

    client
        .menu_create(&Menu {
            button: vec![Button::click("社保", "category:social_security")],
        })
        .await
        .unwrap();
    let first = client.menu_add_conditional(&elderly).await.unwrap();
    let second = client.menu_add_conditional(&elderly).await.unwrap();
    assert_ne!(first, second);
    let listed = client.menu_get_all().await.unwrap();
    let ids: Vec<(String, Option<String>)> = listed
        .conditional
        .iter()
        .map(|m| (m.menuid.clone(), m.matchrule.tag_id.clone()))
        .collect();
    assert_eq!(
        ids,
        vec![
            (first.clone(), Some(tag.to_string())),
            (second.clone(), Some(tag.to_string()))
        ]
    );
    assert_eq!(listed.conditional[0].button, elderly.button);
    let unknown = ConditionalMenu {
        matchrule: MatchRule::tag(9_999),
        ..elderly.clone()
    };
    let err = client.menu_add_conditional(&unknown).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrCode(45159)));
    let empty = ConditionalMenu {
        matchrule: MatchRule::default(),
        ..elderly.clone()
    };
    let err = client.menu_add_conditional(&empty).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrCode(65304)));

    client.menu_del_conditional(&first).await.unwrap();
    let err = client.menu_del_conditional(&first).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrCode(65301)));
    let body = mock.state().calls_to("/cgi-bin/menu/addconditional")[1]
        .body
        .clone()
        .unwrap();
    assert_eq!(body["matchrule"]["tag_id"], tag.to_string());
    // Deleting the menu takes the conditional ones with it.
    client.menu_delete().await.unwrap();
    client
        .menu_create(&Menu {
            button: vec![Button::click("社保", "category:social_security")],
        })
        .await
        .unwrap();
    let err = client.menu_del_conditional(&second).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrCode(65301)));
}
