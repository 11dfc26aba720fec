//! Articles end to end: content-svc, the real gateway and the mock WeChat API
//! (wechat-sim), on real PostgreSQL and NATS. WeChat's job results come back the
//! way WeChat sends them: a signed callback to the gateway, onto WECHAT_INBOUND,
//! into content-svc's consumer.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use platform::Env;
use platform::testing::TestNats;
use prost::Message as _;
use proto::content::v1 as pb;
use proto::events::v1 as ev;
use tokio::sync::oneshot;
use tonic::Code;
use wechat_sim::api_server::job_callbacks::JobCallbacks;
use wechat_sim::api_server::{AccountKind, DEMO_APPID, MockWechat, SimAccount, SimConfig};
use wechat_sim::traffic::CallbackAccount;

use crate::helpers::{
    AUTHOR_KEY, COUNTY_REVIEWER_KEY, PUBLISHER_KEY, REVIEWER_KEY, TestApp, WATER_EDITOR_KEY, by,
    spawn_app_with,
};

/// The mock WeChat, the gateway and content-svc sharing one NATS namespace.
pub(crate) struct Stack {
    pub(crate) app: TestApp,
    pub(crate) mock: MockWechat,
    pub(crate) callbacks: Arc<JobCallbacks>,
    nats: async_nats::Client,
    prefix: String,
    _gateway: oneshot::Sender<()>,
}

pub(crate) async fn spawn_stack(kind: AccountKind) -> Stack {
    spawn_stack_with(kind, true, &[]).await
}

/// The stack with content-svc's `extra` settings; without `job_callbacks` the mock
/// sends no job-finish callback (each is lost on its way).
pub(crate) async fn spawn_stack_with(
    kind: AccountKind,
    job_callbacks: bool,
    extra: &[(&str, &str)],
) -> Stack {
    let mut account = SimAccount::demo();
    account.kind = kind;
    let mock = MockWechat::start(SimConfig {
        accounts: vec![account],
        ..SimConfig::default()
    })
    .await
    .expect("mock wechat starts");
    let test_nats = TestNats::new();
    let env = Env::from_pairs([
        ("NATS_URL", test_nats.url().to_owned()),
        ("NATS_PREFIX", test_nats.prefix.clone()),
        ("HTTP_ADDR", "127.0.0.1:0".to_owned()),
        ("ADMIN_ADDR", "127.0.0.1:0".to_owned()),
        ("REPLY_BUDGET", "200ms".to_owned()),
    ]);
    let gateway =
        gateway::Application::build(gateway::Config::from_env(&env).expect("gateway config"))
            .await
            .expect("gateway builds");
    let gateway_url = format!("http://127.0.0.1:{}", gateway.port());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(gateway.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let callbacks = Arc::new(
        JobCallbacks::new(&gateway_url, vec![CallbackAccount::demo()]).expect("callback config"),
    );
    if job_callbacks {
        mock.state().send_job_callbacks(callbacks.clone());
    }
    let nats = async_nats::connect(test_nats.url()).await.expect("nats");
    let prefix = test_nats.prefix.clone();
    let kind_name = match kind {
        AccountKind::Subscription => "subscription",
        AccountKind::Service => "service",
    };
    let mut settings = vec![
        ("WECHAT_API_BASE_URL", mock.base_url()),
        ("WECHAT_DEMO_KIND", kind_name),
        ("SCHEDULER_INTERVAL", "200ms"),
    ];
    settings.extend_from_slice(extra);
    let app = spawn_app_with(test_nats, &settings).await;
    Stack {
        app,
        mock,
        callbacks,
        nats,
        prefix,
        _gateway: stop,
    }
}

impl Stack {
    /// Puts a WeChat callback onto `WECHAT_INBOUND` as the gateway would (`suffix`
    /// after `wechat.inbound.`, e.g. `demo.event.publishjobfinish`).
    pub(crate) async fn deliver_inbound(&self, suffix: &str, inbound: &ev::Inbound) {
        let jetstream = async_nats::jetstream::new(self.nats.clone());
        let namespace = platform::nats::Namespace::new(&self.prefix).expect("test prefix");
        let event_id = inbound
            .header
            .as_ref()
            .map(|h| h.event_id.clone())
            .unwrap_or_default();
        platform::testing::publish_inbound(
            &jetstream,
            &namespace,
            suffix,
            &event_id,
            inbound.encode_to_vec(),
        )
        .await;
    }

    /// Subscribes to the account's article events before acting.
    pub(crate) async fn watch(&self, transition: &str) -> async_nats::Subscriber {
        let subscriber = self
            .nats
            .subscribe(format!("{}.content.demo.article.{transition}", self.prefix))
            .await
            .expect("subscribe");
        self.nats.flush().await.expect("flush");
        subscriber
    }

    /// Makes WeChat answer "system busy" to the next `times` calls of `path`.
    pub(crate) fn wechat_busy(&self, path: &str, times: u32) {
        self.mock
            .state()
            .inject(&wechat_sim::api_server::FaultRequest {
                busy: Some(times),
                busy_path: Some(path.into()),
                ..Default::default()
            })
            .expect("fault injected");
    }

    /// Makes WeChat refuse the next `times` calls of `path` for now, not carrying them
    /// out (45011, its per-minute limit): the send is retried later. ("System busy",
    /// -1, WeChat may answer after carrying a call out: the client does not retry
    /// `freepublish/submit` on it, and the article fails as possibly published.)
    pub(crate) fn wechat_refusing_for_now(&self, path: &str, times: u32) {
        self.mock
            .state()
            .inject(&wechat_sim::api_server::FaultRequest {
                busy: Some(times),
                busy_path: Some(path.into()),
                busy_errcode: Some(45011),
                ..Default::default()
            })
            .expect("fault injected");
    }

    /// WeChat takes the next call to `path` but its answer is lost on the way back
    /// (a 502): the caller cannot know the call went through.
    pub(crate) fn wechat_loses_answer(&self, path: &str) {
        self.mock
            .state()
            .inject(&wechat_sim::api_server::FaultRequest {
                lose_answers: Some(1),
                lose_path: Some(path.into()),
                ..Default::default()
            })
            .expect("fault injected");
    }

    /// The demo account's quota status, as its publisher 陈 reads it.
    pub(crate) async fn quota(&self) -> pb::QuotaStatus {
        self.app
            .client
            .clone()
            .get_quota_status(by(
                pb::GetQuotaStatusRequest {
                    account: "demo".into(),
                },
                PUBLISHER_KEY,
                "chen",
            ))
            .await
            .expect("quota status")
            .into_inner()
    }

    /// Creates an article by 李 (press) and takes it through the three reviews by
    /// 王 and 赵 (new-media office reviewers) and 陈 (publisher).
    pub(crate) async fn approved(&self, title: &str, channel: pb::Channel) -> String {
        self.approved_with(create(
            title,
            "<p>本周六上午九点至十二点停水。</p>",
            channel,
        ))
        .await
    }

    /// Creates `request`'s article by 李 and takes it through the three reviews.
    pub(crate) async fn approved_with(&self, request: pb::CreateArticleRequest) -> String {
        let mut client = self.app.client.clone();
        let created = client
            .create_article(by(request, AUTHOR_KEY, "li"))
            .await
            .expect("created")
            .into_inner();
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
        id
    }
}

pub(crate) fn create(title: &str, body: &str, channel: pb::Channel) -> pb::CreateArticleRequest {
    pb::CreateArticleRequest {
        account: "demo".into(),
        content: Some(pb::ArticleContent {
            title: title.into(),
            author: "市水务局".into(),
            body: body.into(),
            cover_media_id: "MEDIA_COVER_1".into(),
            ..Default::default()
        }),
        channel: channel as i32,
        ..Default::default()
    }
}

/// PublishArticle's request, without the confirmation a send again after one of
/// unknown outcome needs.
pub(crate) fn publish(id: &str) -> pb::PublishArticleRequest {
    pb::PublishArticleRequest {
        id: id.into(),
        ..Default::default()
    }
}

pub(crate) fn article(id: &str) -> pb::ArticleRef {
    pb::ArticleRef {
        id: id.into(),
        comment: String::new(),
    }
}

pub(crate) fn approve(id: &str) -> pb::ReviewArticleRequest {
    pb::ReviewArticleRequest {
        id: id.into(),
        verdict: pb::ReviewVerdict::Approve as i32,
        comment: "同意".into(),
        overrides: Vec::new(),
        ..Default::default()
    }
}

pub(crate) async fn next_event(subscriber: &mut async_nats::Subscriber) -> ev::ArticleChanged {
    let message = tokio::time::timeout(Duration::from_secs(30), subscriber.next())
        .await
        .expect("the event arrives")
        .expect("subscription open");
    ev::ArticleChanged::decode(message.payload).expect("an ArticleChanged")
}

#[tokio::test]
async fn an_article_passes_three_different_reviewers_and_its_url_comes_back_from_publishjobfinish()
{
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();

    // 李 writes an article with a banned word hidden by full-width letters, a
    // traditional character and inserted symbols.
    let created = client
        .create_article(by(
            create(
                "城区供水管网改造",
                "<p>请勿使用 ＶＰＮ 翻-牆 工具访问境外网站。</p>",
                pb::Channel::Freepublish,
            ),
            AUTHOR_KEY,
            "li",
        ))
        .await
        .expect("created")
        .into_inner();
    let id = created.id.clone();
    assert_eq!(created.hits.len(), 1, "{:?}", created.hits);
    let hit = &created.hits[0];
    assert_eq!(
        (hit.word.as_str(), hit.category.as_str(), hit.text.as_str()),
        ("vpn翻墙", "political", "ＶＰＮ 翻-牆")
    );

    // Another department's editor does not see it.
    let hidden = client
        .get_article(by(
            pb::GetArticleRequest { id: id.clone() },
            WATER_EDITOR_KEY,
            "zhou",
        ))
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);
    // Nor does a county's reviewer: the key reaches the county's account only.
    let elsewhere = client
        .get_article(by(
            pb::GetArticleRequest { id: id.clone() },
            COUNTY_REVIEWER_KEY,
            "wu",
        ))
        .await
        .unwrap_err();
    assert_eq!(elsewhere.code(), Code::NotFound);

    // The hit blocks submission until a reviewer overrides it with a reason.
    let refused = client
        .submit_article(by(article(&id), AUTHOR_KEY, "li"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused.message().contains("sensitive-word"),
        "{}",
        refused.message()
    );
    let overridden = client
        .override_hits(by(
            pb::OverrideHitsRequest {
                id: id.clone(),
                overrides: vec![pb::HitOverride {
                    key: hit.key.clone(),
                    reason: "提醒市民勿用翻墙工具，属正面引用".into(),
                }],
                ..Default::default()
            },
            REVIEWER_KEY,
            "wang",
        ))
        .await
        .expect("a reviewer overrides")
        .into_inner();
    assert!(overridden.hits[0].overridden);
    client
        .submit_article(by(article(&id), AUTHOR_KEY, "li"))
        .await
        .expect("submitted");

    // The author may not review their own article; the same person not twice.
    let own = client
        .review_article(by(approve(&id), AUTHOR_KEY, "li"))
        .await
        .unwrap_err();
    assert_eq!(own.code(), Code::FailedPrecondition);
    assert_eq!(
        own.message(),
        "the author of an article, or anyone who edited it, may not review it"
    );
    client
        .review_article(by(approve(&id), REVIEWER_KEY, "wang"))
        .await
        .expect("first review");
    let twice = client
        .review_article(by(approve(&id), REVIEWER_KEY, "wang"))
        .await
        .unwrap_err();
    assert_eq!(twice.code(), Code::FailedPrecondition);
    assert!(
        twice.message().contains("already did the first review"),
        "{}",
        twice.message()
    );
    client
        .review_article(by(approve(&id), REVIEWER_KEY, "zhao"))
        .await
        .expect("second review");
    // The final approval is the publisher's.
    let not_publisher = client
        .review_article(by(approve(&id), REVIEWER_KEY, "sun"))
        .await
        .unwrap_err();
    assert_eq!(not_publisher.code(), Code::PermissionDenied);
    let approved = client
        .review_article(by(approve(&id), PUBLISHER_KEY, "chen"))
        .await
        .expect("final approval")
        .into_inner();
    assert_eq!(approved.state, pb::ArticleState::Approved as i32);

    // Published through draft/add + freepublish/submit; WeChat's PUBLISHJOBFINISH
    // comes back through the gateway with the URL.
    let mut published = stack.watch("published").await;
    let publishing = client
        .publish_article(by(publish(&id), PUBLISHER_KEY, "chen"))
        .await
        .expect("handed to wechat")
        .into_inner();
    assert_eq!(publishing.state, pb::ArticleState::Publishing as i32);
    let event = next_event(&mut published).await;
    assert_eq!(event.article_id, id);
    assert!(
        event.url.starts_with("https://mp.weixin.qq.com/s/sim-"),
        "{}",
        event.url
    );
    assert!(!event.msg_data_id.is_empty());
    assert!(event.headline);
    assert_eq!(
        event.message_index, 1,
        "a lone article is its message's first"
    );
    // Published: Chinese search finds it, with the word marked.
    let hits = client
        .search(by(
            pb::SearchRequest {
                account: "demo".into(),
                query: "供水管网".into(),
                kind: pb::SearchKind::Article as i32,
                ..pb::SearchRequest::default()
            },
            AUTHOR_KEY,
            "li",
        ))
        .await
        .expect("search")
        .into_inner()
        .hits;
    assert_eq!(
        hits.first().map(|h| h.id.as_str()),
        Some(id.as_str()),
        "{hits:?}"
    );
    assert_eq!(hits[0].url, event.url);

    let detail = client
        .get_article(by(
            pb::GetArticleRequest { id: id.clone() },
            REVIEWER_KEY,
            "wang",
        ))
        .await
        .expect("readable by a reviewer")
        .into_inner();
    let article = detail.article.unwrap();
    assert_eq!(article.state, pb::ArticleState::Published as i32);
    assert_eq!(article.url, event.url);
    let trail: Vec<(String, String)> = detail
        .audit
        .iter()
        .map(|a| (a.action.clone(), a.actor.clone()))
        .collect();
    assert_eq!(
        trail,
        [
            ("override", "media:wang"),
            ("submit", "press:li"),
            ("approve", "media:wang"),
            ("approve", "media:zhao"),
            ("approve", "media:chen"),
            ("publish", "media:chen"),
            ("confirm", "system"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    assert_eq!(
        stack
            .mock
            .state()
            .calls_to("/cgi-bin/freepublish/submit")
            .len(),
        1
    );

    // A correction notice, linked to the original, starts its own review.
    let mut corrected = stack.watch("corrected").await;
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
        .expect("a correction notice")
        .into_inner();
    assert_eq!(notice.correction_of, id);
    assert_eq!(notice.state, pb::ArticleState::Draft as i32);
    assert_eq!(next_event(&mut corrected).await.correction_of, notice.id);

    // Retracted: deleted on WeChat, then recorded with the reason.
    let mut retracted = stack.watch("retracted").await;
    let gone = client
        .retract_article(by(
            pb::ArticleRef {
                id: id.clone(),
                comment: "内容有误，撤回".into(),
            },
            PUBLISHER_KEY,
            "chen",
        ))
        .await
        .expect("retracted")
        .into_inner();
    assert_eq!(gone.state, pb::ArticleState::Retracted as i32);
    let event = next_event(&mut retracted).await;
    assert_eq!(
        (event.reason.as_str(), event.message_index),
        ("内容有误，撤回", 1)
    );
    assert_eq!(
        stack
            .mock
            .state()
            .calls_to("/cgi-bin/freepublish/delete")
            .len(),
        1
    );
    stack.app.stop().await;
}

#[tokio::test]
async fn a_second_mass_send_in_a_day_is_refused_before_wechat_and_a_scheduled_publish_refused_by_wechat_says_why()
 {
    let stack = spawn_stack(AccountKind::Subscription).await;
    let mut client = stack.app.client.clone();

    let first = stack.approved("今日停水通知", pb::Channel::MassSend).await;
    // The director previews it on their own phone first.
    stack
        .mock
        .state()
        .add_followers(DEMO_APPID, ["o-director"])
        .expect("follower added");
    let previewed = client
        .preview_article(by(
            pb::PreviewArticleRequest {
                id: first.clone(),
                openids: vec!["o-director".into()],
            },
            PUBLISHER_KEY,
            "chen",
        ))
        .await
        .expect("previewed")
        .into_inner();
    assert_eq!(previewed.sent, 1);
    assert_eq!(
        stack
            .mock
            .state()
            .calls_to("/cgi-bin/message/mass/preview")
            .len(),
        1
    );
    let mut published = stack.watch("published").await;
    client
        .publish_article(by(publish(&first), PUBLISHER_KEY, "chen"))
        .await
        .expect("sent");
    let event = next_event(&mut published).await;
    assert_eq!(event.article_id, first);
    assert_eq!(event.channel, ev::PublishChannel::MassSend as i32);

    // A subscription account has one mass send a day: the second is refused here.
    let second = stack.approved("明日恢复供水", pb::Channel::MassSend).await;
    let refused = client
        .publish_article(by(publish(&second), PUBLISHER_KEY, "chen"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains("the next is possible at"),
        "{}",
        refused.message()
    );
    assert_eq!(
        stack
            .mock
            .state()
            .calls_to("/cgi-bin/message/mass/sendall")
            .len(),
        1
    );
    let quota = stack.quota().await;
    assert_eq!(
        (quota.kind.as_str(), quota.used, quota.limit),
        ("subscription", 1, 1)
    );
    assert!(quota.next_possible_at.is_some());

    // Scheduled instead, it is refused by the scheduler just the same, and fails
    // with the quota's reason without WeChat being called.
    let mut failed = stack.watch("failed").await;
    client
        .schedule_article(by(
            pb::ScheduleArticleRequest {
                id: second.clone(),
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
    let event = next_event(&mut failed).await;
    assert_eq!(event.article_id, second);
    assert!(
        event.reason.contains("allowed this day are used"),
        "{}",
        event.reason
    );
    assert_eq!(
        stack
            .mock
            .state()
            .calls_to("/cgi-bin/message/mass/sendall")
            .len(),
        1
    );

    // WeChat's review refuses a free-publish job: the article fails with the reason.
    stack.callbacks.fail_next_publish(4);
    let third = stack
        .approved("供水管网图解", pb::Channel::Freepublish)
        .await;
    // Scheduled for now: the scheduler sends it.
    let mut failed = stack.watch("failed").await;
    let now = chrono::Utc::now();
    let scheduled = client
        .schedule_article(by(
            pb::ScheduleArticleRequest {
                id: third.clone(),
                at: Some(prost_types::Timestamp {
                    seconds: now.timestamp(),
                    nanos: 0,
                }),
                ..Default::default()
            },
            PUBLISHER_KEY,
            "chen",
        ))
        .await
        .expect("scheduled")
        .into_inner();
    assert_eq!(scheduled.state, pb::ArticleState::Scheduled as i32);
    let event = next_event(&mut failed).await;
    assert_eq!(event.article_id, third);
    assert!(
        event.reason.contains("WeChat's review refused it"),
        "{}",
        event.reason
    );
    let detail = client
        .get_article(by(
            pb::GetArticleRequest { id: third },
            PUBLISHER_KEY,
            "chen",
        ))
        .await
        .unwrap()
        .into_inner();
    let article = detail.article.unwrap();
    assert_eq!(article.state, pb::ArticleState::Failed as i32);
    assert!(
        article.failure.contains("publish_status 4"),
        "{}",
        article.failure
    );
    stack.app.stop().await;
}

#[tokio::test]
async fn a_draft_without_a_cover_is_saved_but_not_submitted() {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let mut request = create("停水通知", "<p>本周六停水。</p>", pb::Channel::Freepublish);
    if let Some(content) = request.content.as_mut() {
        content.cover_media_id.clear();
    }
    let id = client
        .create_article(by(request, AUTHOR_KEY, "li"))
        .await
        .expect("a draft may be incomplete")
        .into_inner()
        .id;
    let refused = client
        .submit_article(by(article(&id), AUTHOR_KEY, "li"))
        .await
        .expect_err("WeChat's draft needs a cover");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused.message().contains(&id) && refused.message().contains("cover"),
        "{}",
        refused.message()
    );
    stack.app.stop().await;
}

#[tokio::test]
async fn an_approval_of_a_version_the_editor_replaced_since_is_refused() {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let id = client
        .create_article(by(
            create("停水通知", "<p>本周六停水。</p>", pb::Channel::Freepublish),
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
    // 王 opens version 1; meanwhile 李 withdraws, edits and resubmits.
    let read = client
        .get_article(by(
            pb::GetArticleRequest { id: id.clone() },
            REVIEWER_KEY,
            "wang",
        ))
        .await
        .expect("read")
        .into_inner()
        .article
        .expect("an article")
        .version;
    assert_eq!(read, 1);
    client
        .withdraw_article(by(article(&id), AUTHOR_KEY, "li"))
        .await
        .expect("withdrawn");
    client
        .update_article(by(
            pb::UpdateArticleRequest {
                id: id.clone(),
                content: create("停水通知", "<p>本周日停水。</p>", pb::Channel::Freepublish)
                    .content,
                version: None,
            },
            AUTHOR_KEY,
            "li",
        ))
        .await
        .expect("edited");
    client
        .submit_article(by(article(&id), AUTHOR_KEY, "li"))
        .await
        .expect("resubmitted");

    let stale = pb::ReviewArticleRequest {
        version: read,
        ..approve(&id)
    };
    let refused = client
        .review_article(by(stale, REVIEWER_KEY, "wang"))
        .await
        .expect_err("version 1 is no longer current");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused
            .message()
            .contains("the article changed since you read it: version 2 is current"),
        "{}",
        refused.message()
    );
    let refused = client
        .override_hits(by(
            pb::OverrideHitsRequest {
                id: id.clone(),
                overrides: vec![pb::HitOverride {
                    key: "body:0:1".into(),
                    reason: "正面引用".into(),
                }],
                version: read,
            },
            REVIEWER_KEY,
            "wang",
        ))
        .await
        .expect_err("nor an override of it");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");

    let current = pb::ReviewArticleRequest {
        version: 2,
        ..approve(&id)
    };
    let reviewed = client
        .review_article(by(current, REVIEWER_KEY, "wang"))
        .await
        .expect("the current version is approved")
        .into_inner();
    assert_eq!(reviewed.state, pb::ArticleState::FirstReviewed as i32);
    stack.app.stop().await;
}

#[tokio::test]
async fn an_edit_made_on_a_version_another_editor_replaced_since_is_refused() {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let id = client
        .create_article(by(
            create("停水通知", "<p>本周六停水。</p>", pb::Channel::Freepublish),
            AUTHOR_KEY,
            "li",
        ))
        .await
        .expect("created")
        .into_inner()
        .id;
    let edit = |body: &str, version: Option<u32>| pb::UpdateArticleRequest {
        id: id.clone(),
        content: create("停水通知", body, pb::Channel::Freepublish).content,
        version,
    };
    // 李 and 张 both open version 1; 李 saves first.
    let saved = client
        .update_article(by(
            edit("<p>本周六上午停水。</p>", Some(1)),
            AUTHOR_KEY,
            "li",
        ))
        .await
        .expect("李's edit of the current version is saved")
        .into_inner();
    assert_eq!(saved.version, 2);

    let refused = client
        .update_article(by(
            edit("<p>本周日停水。</p>", Some(1)),
            AUTHOR_KEY,
            "zhang",
        ))
        .await
        .expect_err("张's edit of version 1 would drop 李's");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused
            .message()
            .contains("the article changed since you read it: version 2 is current"),
        "{}",
        refused.message()
    );
    let kept = client
        .get_article(by(
            pb::GetArticleRequest { id: id.clone() },
            AUTHOR_KEY,
            "zhang",
        ))
        .await
        .expect("read")
        .into_inner()
        .article
        .expect("an article");
    assert_eq!(kept.version, 2);
    assert!(
        kept.content.expect("content").body.contains("上午"),
        "李's text stands"
    );

    // Made again on version 2 it is saved; a client that says no version (an older
    // one) is not checked: its save wins.
    let saved = client
        .update_article(by(
            edit("<p>本周六上午停水，周日恢复。</p>", Some(2)),
            AUTHOR_KEY,
            "zhang",
        ))
        .await
        .expect("an edit of the current version is saved")
        .into_inner();
    assert_eq!(saved.version, 3);
    let saved = client
        .update_article(by(edit("<p>本周日停水。</p>", None), AUTHOR_KEY, "li"))
        .await
        .expect("an unchecked edit is saved")
        .into_inner();
    assert_eq!(saved.version, 4);
    stack.app.stop().await;
}

#[tokio::test]
async fn a_retraction_wechat_is_too_busy_to_take_is_unavailable_worth_trying_again() {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let id = stack.approved("停水通知", pb::Channel::Freepublish).await;
    let mut published = stack.watch("published").await;
    client
        .publish_article(by(publish(&id), PUBLISHER_KEY, "chen"))
        .await
        .expect("handed to wechat");
    assert_eq!(next_event(&mut published).await.article_id, id);

    stack.wechat_busy("/cgi-bin/freepublish/delete", 10);
    let refused = client
        .retract_article(by(
            pb::ArticleRef {
                id: id.clone(),
                comment: "内容有误，撤回".into(),
            },
            PUBLISHER_KEY,
            "chen",
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    let state: String = sqlx::query_scalar("SELECT state FROM articles WHERE id = $1::uuid")
        .bind(&id)
        .fetch_one(&stack.app.db)
        .await
        .expect("read");
    assert_eq!(state, "published");
    stack.app.stop().await;
}
