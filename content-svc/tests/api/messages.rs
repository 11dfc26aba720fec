//! Multi-article messages: approved articles composed into one message, sent as
//! one draft with the headline first, and moved together by WeChat's job result.

use proto::content::v1 as pb;
use tonic::Code;
use wechat_sim::api_server::AccountKind;

use crate::articles::{article, create, next_event, publish, spawn_stack};
use crate::helpers::{
    ADMIN_KEY, AUTHOR_KEY, PUBLISHER_KEY, REVIEWER_KEY, authed, by, preview_for_the_director,
    wechat_latency,
};

fn compose(ids: &[&String], message: &str) -> pb::ComposeMessageRequest {
    pb::ComposeMessageRequest {
        account: "demo".into(),
        message_id: message.into(),
        article_ids: ids.iter().map(|s| (*s).clone()).collect(),
    }
}

#[tokio::test]
async fn three_approved_articles_go_out_as_one_message_headline_first() {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let water = stack.approved("停水通知", pb::Channel::Freepublish).await;
    let roads = stack
        .approved("道路施工公告", pb::Channel::Freepublish)
        .await;
    let buses = stack
        .approved("公交线路调整", pb::Channel::Freepublish)
        .await;

    // Only approved articles, on one channel, and only publishers compose.
    let draft = client
        .create_article(by(
            create("未审稿件", "<p>草稿</p>", pb::Channel::Freepublish),
            AUTHOR_KEY,
            "li",
        ))
        .await
        .expect("created")
        .into_inner()
        .id;
    let refused = client
        .compose_message(by(compose(&[&water, &draft], ""), PUBLISHER_KEY, "chen"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("only approved"),
        "{}",
        refused.message()
    );
    let mass = stack.approved("群发通知", pb::Channel::MassSend).await;
    let refused = client
        .compose_message(by(compose(&[&water, &mass], ""), PUBLISHER_KEY, "chen"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    let refused = client
        .compose_message(by(compose(&[&water, &roads], ""), REVIEWER_KEY, "wang"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);

    // Composed, then reordered: buses becomes the headline.
    let message = client
        .compose_message(by(compose(&[&water, &roads], ""), PUBLISHER_KEY, "chen"))
        .await
        .expect("composed")
        .into_inner();
    let message = client
        .compose_message(by(
            compose(&[&buses, &water, &roads], &message.id),
            PUBLISHER_KEY,
            "chen",
        ))
        .await
        .expect("recomposed")
        .into_inner();
    let order: Vec<_> = message
        .articles
        .iter()
        .map(|a| (a.id.clone(), a.message_position))
        .collect();
    assert_eq!(
        order,
        vec![(buses.clone(), 1), (water.clone(), 2), (roads.clone(), 3)]
    );

    // An article of the message does not go out alone.
    let alone = client
        .publish_article(by(publish(&roads), PUBLISHER_KEY, "chen"))
        .await
        .unwrap_err();
    assert_eq!(alone.code(), Code::FailedPrecondition);
    assert!(alone.message().contains("headline"), "{}", alone.message());

    let mut published = stack.watch("published").await;
    client
        .publish_article(by(publish(&buses), PUBLISHER_KEY, "chen"))
        .await
        .expect("the headline sends the message");
    let mut events = Vec::new();
    for _ in 0..3 {
        events.push(next_event(&mut published).await);
    }
    events.sort_by_key(|e| e.article_id.clone());
    let headline: Vec<_> = events
        .iter()
        .filter(|e| e.headline)
        .map(|e| e.article_id.clone())
        .collect();
    assert_eq!(headline, vec![buses.clone()]);
    // Each names its place, as the datacube's `{msg_data_id}_{index}` does.
    let mut places: Vec<_> = events
        .iter()
        .map(|e| (e.article_id.clone(), e.message_index))
        .collect();
    places.sort_by_key(|(_, index)| *index);
    assert_eq!(
        places,
        vec![(buses.clone(), 1), (water.clone(), 2), (roads.clone(), 3)]
    );
    let mut urls: Vec<_> = events.iter().map(|e| e.url.clone()).collect();
    urls.sort();
    urls.dedup();
    assert_eq!(urls.len(), 3, "each article has its own URL: {urls:?}");

    let sim = stack.mock.state();
    let drafts = sim.calls_to("/cgi-bin/draft/add");
    assert_eq!(drafts.len(), 1, "one draft for the message");
    let titles: Vec<_> = drafts[0].body.as_ref().expect("body")["articles"]
        .as_array()
        .expect("articles")
        .iter()
        .map(|a| a["title"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(titles, ["公交线路调整", "停水通知", "道路施工公告"]);
    assert_eq!(sim.calls_to("/cgi-bin/freepublish/submit").len(), 1);

    for id in [&buses, &water, &roads] {
        let detail = client
            .get_article(by(
                pb::GetArticleRequest { id: id.clone() },
                PUBLISHER_KEY,
                "chen",
            ))
            .await
            .expect("read")
            .into_inner();
        let a = detail.article.expect("article");
        assert_eq!(a.state, pb::ArticleState::Published as i32, "{id}");
        assert!(a.url.starts_with("https://mp.weixin.qq.com/"), "{}", a.url);
        assert!(detail.audit.iter().any(|e| e.action == "compose"));
    }

    // Retracting the second article deletes only it: the message's WeChat id, index 2.
    let mut retracted = stack.watch("retracted").await;
    client
        .retract_article(by(
            pb::ArticleRef {
                id: water.clone(),
                comment: "停水已取消".into(),
            },
            PUBLISHER_KEY,
            "chen",
        ))
        .await
        .expect("retracted");
    let deletes = sim.calls_to("/cgi-bin/freepublish/delete");
    let body = deletes[0].body.as_ref().expect("delete body");
    assert_eq!(body["index"], 2, "{body}");
    let headline = client
        .get_article(by(
            pb::GetArticleRequest { id: buses.clone() },
            PUBLISHER_KEY,
            "chen",
        ))
        .await
        .expect("read")
        .into_inner()
        .article
        .expect("article");
    assert_eq!(headline.state, pb::ArticleState::Published as i32);
    assert_eq!(
        body["article_id"].as_str(),
        Some(headline.msg_data_id.as_str()),
        "deleted through the headline's published article id"
    );
    // The event names the article as the datacube does: the message's id, index 2.
    let event = next_event(&mut retracted).await;
    assert_eq!(
        (
            event.article_id.as_str(),
            event.msg_data_id.as_str(),
            event.message_index
        ),
        (water.as_str(), headline.msg_data_id.as_str(), 2)
    );
    stack.app.stop().await;
}

#[tokio::test]
async fn a_mass_sent_message_is_one_send_and_each_article_gets_its_url_from_masssendjobfinish() {
    let stack = spawn_stack(AccountKind::Subscription).await;
    let mut client = stack.app.client.clone();
    stack
        .mock
        .state()
        .add_followers(wechat_sim::api_server::DEMO_APPID, ["o-1", "o-2"])
        .expect("followers");
    let first = stack.approved("今日停水", pb::Channel::MassSend).await;
    let second = stack.approved("供水点位", pb::Channel::MassSend).await;
    client
        .compose_message(by(compose(&[&first, &second], ""), PUBLISHER_KEY, "chen"))
        .await
        .expect("composed");
    let mut published = stack.watch("published").await;
    client
        .publish_article(by(publish(&first), PUBLISHER_KEY, "chen"))
        .await
        .expect("sent");
    let mut events = [
        next_event(&mut published).await,
        next_event(&mut published).await,
    ];
    events.sort_by_key(|e| !e.headline);
    assert_eq!(
        events
            .iter()
            .map(|e| (e.article_id.clone(), e.headline))
            .collect::<Vec<_>>(),
        vec![(first.clone(), true), (second.clone(), false)]
    );
    assert!(events[0].url.ends_with("-1"), "{}", events[0].url);
    assert!(events[1].url.ends_with("-2"), "{}", events[1].url);
    assert_eq!((events[0].sent_count, events[1].sent_count), (2, 0));
    // One message is one mass send: the subscription account's daily one.
    assert_eq!(
        stack
            .mock
            .state()
            .calls_to("/cgi-bin/message/mass/sendall")
            .len(),
        1
    );
    let quota = stack.quota().await;
    assert_eq!((quota.used, quota.limit), (1, 1));
    stack.app.stop().await;
}

#[tokio::test]
async fn a_scheduled_headline_takes_its_message_along_when_the_scheduler_sends_it() {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let head = stack
        .approved("周末活动预告", pb::Channel::Freepublish)
        .await;
    let other = stack
        .approved("图书馆开放时间", pb::Channel::Freepublish)
        .await;
    client
        .compose_message(by(compose(&[&head, &other], ""), PUBLISHER_KEY, "chen"))
        .await
        .expect("composed");
    let refused = client
        .schedule_article(by(
            pb::ScheduleArticleRequest {
                id: other.clone(),
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
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    let mut published = stack.watch("published").await;
    client
        .schedule_article(by(
            pb::ScheduleArticleRequest {
                id: head.clone(),
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
    let mut ids = [
        next_event(&mut published).await.article_id,
        next_event(&mut published).await.article_id,
    ];
    ids.sort();
    let mut expected = [head.clone(), other.clone()];
    expected.sort();
    assert_eq!(ids, expected);
    let drafts = stack.mock.state().calls_to("/cgi-bin/draft/add");
    assert_eq!(drafts.len(), 1);
    assert_eq!(
        drafts[0].body.as_ref().expect("body")["articles"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    stack.app.stop().await;
}

#[tokio::test]
async fn a_message_waiting_to_retry_can_be_cancelled_and_its_articles_are_ready_again() {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let water = stack.approved("停水通知", pb::Channel::Freepublish).await;
    let roads = stack
        .approved("道路施工公告", pb::Channel::Freepublish)
        .await;
    client
        .compose_message(by(compose(&[&water, &roads], ""), PUBLISHER_KEY, "chen"))
        .await
        .expect("composed");
    // WeChat refuses the submit for now (its per-minute limit): the headline goes back
    // on the schedule to retry.
    stack.wechat_refusing_for_now("/cgi-bin/freepublish/submit", 1);
    client
        .publish_article(by(publish(&water), PUBLISHER_KEY, "chen"))
        .await
        .expect("accepted; the send is retried");
    let state = |id: &String| {
        let db = stack.app.db.clone();
        let id = id.clone();
        async move {
            sqlx::query_scalar::<_, String>("SELECT state FROM articles WHERE id = $1::uuid")
                .bind(id)
                .fetch_one(&db)
                .await
                .expect("read")
        }
    };
    assert_eq!(state(&water).await, "scheduled");
    assert_eq!(
        state(&roads).await,
        "approved",
        "ready again, not publishing"
    );

    // The publisher stops the retry: the whole message is back to approved.
    let cancelled = client
        .cancel_schedule(by(article(&water), PUBLISHER_KEY, "chen"))
        .await
        .expect("a retrying message can be cancelled")
        .into_inner();
    assert_eq!(cancelled.state, pb::ArticleState::Approved as i32);
    assert_eq!(state(&roads).await, "approved");
    let history: Vec<(String, String)> = sqlx::query_as(
        "SELECT to_state, comment FROM article_audit WHERE article_id = $1::uuid ORDER BY id",
    )
    .bind(&roads)
    .fetch_all(&stack.app.db)
    .await
    .expect("audit");
    let last = history.last().expect("audited");
    assert_eq!(last.0, "approved");
    assert!(last.1.contains("waits to retry"), "{}", last.1);
    assert_eq!(
        stack
            .mock
            .state()
            .calls_to("/cgi-bin/freepublish/submit")
            .len(),
        1
    );
    stack.app.stop().await;
}

#[tokio::test]
async fn a_message_does_not_go_out_with_an_article_whose_new_hits_are_not_overridden() {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let head = stack.approved("停水通知", pb::Channel::Freepublish).await;
    let member = stack
        .approved_with(create(
            "道路施工公告",
            "<p>施工期间请刷票绕行。</p>",
            pb::Channel::Freepublish,
        ))
        .await;
    client
        .compose_message(by(compose(&[&head, &member], ""), PUBLISHER_KEY, "chen"))
        .await
        .expect("composed");
    // The lexicon grows after both were approved.
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
    for refused in [
        client
            .publish_article(by(publish(&head), PUBLISHER_KEY, "chen"))
            .await
            .unwrap_err(),
        client
            .schedule_article(by(
                pb::ScheduleArticleRequest {
                    id: head.clone(),
                    at: Some(prost_types::Timestamp {
                        seconds: chrono::Utc::now().timestamp() + 3600,
                        nanos: 0,
                    }),
                    ..Default::default()
                },
                PUBLISHER_KEY,
                "chen",
            ))
            .await
            .unwrap_err(),
    ] {
        assert_eq!(refused.code(), Code::FailedPrecondition);
        assert!(refused.message().contains(&member), "{}", refused.message());
    }
    assert!(
        stack.mock.state().calls_to("/cgi-bin/draft/add").is_empty(),
        "nothing went to WeChat"
    );
    stack.app.stop().await;
}

#[tokio::test]
async fn a_preview_that_a_recompose_overtook_leaves_no_draft_and_the_message_goes_out_as_recomposed()
 {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let head = stack.approved("停水通知", pb::Channel::Freepublish).await;
    let old = stack.approved("旧的第二篇", pb::Channel::Freepublish).await;
    let new = stack.approved("新的第二篇", pb::Channel::Freepublish).await;
    stack
        .mock
        .state()
        .add_followers(wechat_sim::api_server::DEMO_APPID, ["o-director"])
        .expect("follower");
    let message = client
        .compose_message(by(compose(&[&head, &old], ""), PUBLISHER_KEY, "chen"))
        .await
        .expect("composed")
        .into_inner();

    // WeChat is slow: the director's preview takes a while, and meanwhile another
    // publisher swaps the second article.
    wechat_latency(&stack, 1500);
    let preview = preview_for_the_director(&client, &head);
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    client
        .compose_message(by(
            compose(&[&head, &new], &message.id),
            PUBLISHER_KEY,
            "zhang",
        ))
        .await
        .expect("recomposed while all are approved");
    preview.await.expect("joined").expect("previewed");
    wechat_latency(&stack, 0);

    let mut published = stack.watch("published").await;
    client
        .publish_article(by(publish(&head), PUBLISHER_KEY, "chen"))
        .await
        .expect("published");
    for _ in 0..2 {
        next_event(&mut published).await;
    }
    let titles: Vec<Vec<String>> = stack
        .mock
        .state()
        .calls_to("/cgi-bin/draft/add")
        .iter()
        .map(|call| {
            call.body.as_ref().expect("body")["articles"]
                .as_array()
                .expect("articles")
                .iter()
                .map(|a| a["title"].as_str().expect("title").to_owned())
                .collect()
        })
        .collect();
    assert_eq!(
        titles,
        [["停水通知", "旧的第二篇"], ["停水通知", "新的第二篇"]],
        "the preview's draft of the old composition is not the one published"
    );
    stack.app.stop().await;
}

/// 陈 previews article `id` to the director and waits for the answer; the draft it
/// made is kept for the send.
async fn previewed(stack: &crate::articles::Stack, id: &str) -> String {
    preview_for_the_director(&stack.app.client, id)
        .await
        .expect("joined")
        .expect("previewed");
    sqlx::query_scalar::<_, Option<String>>("SELECT media_id FROM articles WHERE id = $1::uuid")
        .bind(id)
        .fetch_one(&stack.app.db)
        .await
        .expect("read")
        .expect("the preview's draft is kept")
}

/// The drafts in the demo account's WeChat draft box.
fn drafts_in_wechat(stack: &crate::articles::Stack) -> Vec<String> {
    stack
        .mock
        .state()
        .drafts(wechat_sim::api_server::DEMO_APPID)
}

/// A draft kept for a send (a preview's) that a compose, a recompose or a dissolve
/// makes its article forget is deleted from WeChat's draft box too: left, no
/// article knows of it and it sits there for good.
#[tokio::test]
async fn drafts_a_compose_recompose_or_dissolve_forgets_are_deleted_from_wechat() {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let water = stack.approved("停水通知", pb::Channel::Freepublish).await;
    let roads = stack
        .approved("道路施工公告", pb::Channel::Freepublish)
        .await;
    stack
        .mock
        .state()
        .add_followers(wechat_sim::api_server::DEMO_APPID, ["o-director"])
        .expect("follower");

    // Previewed alone, then composed into a message: the lone draft goes.
    let alone = previewed(&stack, &water).await;
    assert_eq!(drafts_in_wechat(&stack), vec![alone]);
    let message = client
        .compose_message(by(compose(&[&water, &roads], ""), PUBLISHER_KEY, "chen"))
        .await
        .expect("composed")
        .into_inner();
    assert_eq!(drafts_in_wechat(&stack), Vec::<String>::new(), "compose");

    // The message previewed, then recomposed: the old composition's draft goes.
    let first = previewed(&stack, &water).await;
    assert_eq!(drafts_in_wechat(&stack), vec![first]);
    client
        .compose_message(by(
            compose(&[&roads, &water], &message.id),
            PUBLISHER_KEY,
            "chen",
        ))
        .await
        .expect("recomposed");
    assert_eq!(drafts_in_wechat(&stack), Vec::<String>::new(), "recompose");

    // Previewed again, then dissolved: that draft goes too.
    let second = previewed(&stack, &roads).await;
    assert_eq!(drafts_in_wechat(&stack), vec![second]);
    client
        .dissolve_message(by(
            pb::MessageRef {
                id: message.id.clone(),
            },
            PUBLISHER_KEY,
            "chen",
        ))
        .await
        .expect("dissolved");
    assert_eq!(drafts_in_wechat(&stack), Vec::<String>::new(), "dissolve");
    stack.app.stop().await;
}

/// An article of a previewed message returned for revision: the others close up,
/// forgetting the message's draft (kept on its headline), which is deleted from
/// WeChat's draft box once the return is committed.
#[tokio::test]
async fn the_message_draft_a_members_return_forgets_is_deleted_from_wechat() {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let water = stack.approved("停水通知", pb::Channel::Freepublish).await;
    let roads = stack
        .approved("道路施工公告", pb::Channel::Freepublish)
        .await;
    let buses = stack
        .approved("公交线路调整", pb::Channel::Freepublish)
        .await;
    stack
        .mock
        .state()
        .add_followers(wechat_sim::api_server::DEMO_APPID, ["o-director"])
        .expect("follower");
    client
        .compose_message(by(
            compose(&[&water, &roads, &buses], ""),
            PUBLISHER_KEY,
            "chen",
        ))
        .await
        .expect("composed");
    let draft = previewed(&stack, &water).await;
    assert_eq!(drafts_in_wechat(&stack), vec![draft]);

    client
        .return_for_revision(by(
            crate::helpers::return_for(&roads, "施工路段有误"),
            REVIEWER_KEY,
            "zhao",
        ))
        .await
        .expect("returned");
    assert_eq!(drafts_in_wechat(&stack), Vec::<String>::new());
    stack.app.stop().await;
}

/// Waits (up to 20 s) until WeChat's draft box of the demo account is empty.
async fn until_no_drafts_in_wechat(stack: &crate::articles::Stack, what: &str) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let drafts = drafts_in_wechat(stack);
        if drafts.is_empty() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: drafts left in WeChat's draft box: {drafts:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A compose and a dissolve whose caller hangs up once the change is committed,
/// while WeChat (or the per-minute ledger) is slow to delete the drafts it made
/// articles forget: the deletes run on the drain's task and still happen, not
/// dropped with the call's future.
#[tokio::test]
async fn drafts_forgotten_by_a_compose_or_dissolve_whose_caller_hung_up_are_still_deleted() {
    use crate::lock_order::{pid, until_waiting};
    let stack = spawn_stack(AccountKind::Service).await;
    let db = &stack.app.db;
    let water = stack.approved("停水通知", pb::Channel::Freepublish).await;
    let roads = stack
        .approved("道路施工公告", pb::Channel::Freepublish)
        .await;
    stack
        .mock
        .state()
        .add_followers(wechat_sim::api_server::DEMO_APPID, ["o-director"])
        .expect("follower");
    let hold_deletes = || async {
        let mut held = db.begin().await.expect("begin");
        sqlx::query(
            "SELECT pg_advisory_xact_lock(hashtext('content-api-calls:demo:draft/delete'))",
        )
        .execute(&mut *held)
        .await
        .expect("ledger lock held");
        let holder = pid(&mut held).await;
        (held, holder)
    };

    // Compose: the lone preview's draft is forgotten.
    let alone = previewed(&stack, &water).await;
    assert_eq!(drafts_in_wechat(&stack), vec![alone]);
    let (held, holder) = hold_deletes().await;
    let mut client = stack.app.client.clone();
    let request = by(compose(&[&water, &roads], ""), PUBLISHER_KEY, "chen");
    let call = tokio::spawn(async move { client.compose_message(request).await });
    until_waiting(db, holder, 1).await;
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());
    held.commit().await.expect("WeChat answers");
    until_no_drafts_in_wechat(&stack, "compose").await;
    let message: uuid::Uuid = sqlx::query_scalar(
        "SELECT message_id FROM articles WHERE id = $1::uuid AND message_id IS NOT NULL",
    )
    .bind(&water)
    .fetch_one(db)
    .await
    .expect("the compose was committed");

    // Dissolve: the message's draft is forgotten.
    previewed(&stack, &water).await;
    assert_eq!(drafts_in_wechat(&stack).len(), 1);
    let (held, holder) = hold_deletes().await;
    let mut client = stack.app.client.clone();
    let request = by(
        pb::MessageRef {
            id: message.to_string(),
        },
        PUBLISHER_KEY,
        "chen",
    );
    let call = tokio::spawn(async move { client.dissolve_message(request).await });
    until_waiting(db, holder, 1).await;
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());
    held.commit().await.expect("WeChat answers");
    until_no_drafts_in_wechat(&stack, "dissolve").await;
    stack.app.stop().await;
}
