//! Citizens answered from the convenience-service directory: content-svc's directory
//! events (published on CONTENT as its outbox relay does) replicated into the
//! service; a question the directory answers gets the service's card and opens no
//! ticket until the citizen asks again; a `category:{key}` click lists the category;
//! each automatic answer is announced once as `events.v1.AutoReplied`. The last test
//! goes through the real gateway with the mock's signed, encrypted callbacks.

use async_nats::jetstream;
use chrono::Utc;
use prost::Message as _;
use proto::events::v1::{
    AnsweredInbound, AutoReplied, AutoReplySource, DirectoryServiceChanged, EventHeader,
    PassiveReply, TicketChanged, passive_reply,
};
use wechat::reply::ReplyBody;
use wechat_sim::api_server::{DEMO_APPID, MockWechat, SimConfig};
use wechat_sim::traffic::{
    CallbackAccount, CallbackClient, CallbackSigner, CheckedReply, CitizenAction, Follower, Mode,
    ReplyCheck, RetryPolicy,
};

use crate::citizen::{Callback, Citizen, GH_ID, eventually};
use crate::helpers::{
    ACCOUNT, ADMIN_KEY, TestApp, new_reply_rule, spawn_app, spawn_app_with, wechat_env,
};

/// content-svc's seed for 临城市, shown here on [`ACCOUNT`].
const SEED: &str = include_str!("../../../content-svc/seed/lincheng-directory.tsv");

/// A directory change as content-svc announces it.
fn change(
    id: uuid::Uuid,
    kind: &str,
    fields: &[&str],
    at: chrono::DateTime<Utc>,
) -> DirectoryServiceChanged {
    let list = |s: &str| -> Vec<String> {
        s.split('|')
            .filter(|x| !x.is_empty())
            .map(str::to_owned)
            .collect()
    };
    DirectoryServiceChanged {
        header: Some(EventHeader {
            event_id: uuid::Uuid::now_v7().to_string(),
            account: ACCOUNT.into(),
            occurred_at: Some(prost_types::Timestamp {
                seconds: at.timestamp(),
                nanos: at.timestamp_subsec_nanos() as i32,
            }),
        }),
        change: kind.into(),
        service_id: id.to_string(),
        category: fields[1].into(),
        name: fields[2].into(),
        department: fields[3].into(),
        description: fields[4].into(),
        url: fields[6].into(),
        keywords: list(fields[10]),
        synonyms: list(fields[11]),
        accounts: if kind == "deleted" {
            vec![]
        } else {
            vec![ACCOUNT.into()]
        },
        enabled: fields[13] == "yes",
        actor: "seed".into(),
    }
}

fn seed_lines() -> Vec<Vec<&'static str>> {
    SEED.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split('\t').collect())
        .collect()
}

/// The seed's services, with their ids.
fn seed_changes() -> Vec<(uuid::Uuid, DirectoryServiceChanged)> {
    let at = Utc::now();
    seed_lines()
        .iter()
        .map(|fields| {
            let id = uuid::Uuid::now_v7();
            (id, change(id, "created", fields, at))
        })
        .collect()
}

impl TestApp {
    /// Publishes `event` on CONTENT as content-svc's relay does.
    async fn publish_directory(&self, event: &DirectoryServiceChanged) {
        let jetstream = jetstream::new(self.nats().await);
        let header = event.header.as_ref().unwrap();
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(
            async_nats::header::NATS_MESSAGE_ID,
            header.event_id.as_str(),
        );
        let subject = self.namespace().subject(&format!(
            "content.{}.directory.{}",
            header.account, event.change
        ));
        jetstream
            .publish_with_headers(subject, headers, event.encode_to_vec().into())
            .await
            .expect("publish sent")
            .await
            .expect("JetStream acked");
    }

    /// Publishes the seed and waits until the reply path answers from it.
    pub(crate) async fn seed_directory(&self) -> Vec<(uuid::Uuid, DirectoryServiceChanged)> {
        let changes = seed_changes();
        for (_, event) in &changes {
            self.publish_directory(event).await;
        }
        let nats = self.nats().await;
        let mut probe = Citizen::new();
        let nats = &nats;
        eventually("the directory answers", || {
            let question = probe.says("公积金怎么提取");
            async move {
                let reply = self.passive_reply(nats, &question).await;
                card_of(&reply).map(drop)
            }
        })
        .await;
        changes
    }

    async fn ticket_count(&self, openid: &str) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM tickets WHERE openid = $1")
            .bind(openid)
            .fetch_one(&self.db)
            .await
            .unwrap()
    }

    /// The AutoReplied events announced for `openid`, once at least `at_least` are.
    async fn auto_replies(&self, openid: &str, at_least: usize) -> Vec<(String, AutoReplied)> {
        let filter = format!("interaction.{ACCOUNT}.autoreply.>");
        eventually(&format!("{at_least} AutoReplied for {openid}"), || async {
            let found: Vec<(String, AutoReplied)> = self
                .interaction_events(&filter, 0)
                .await
                .into_iter()
                .map(|m| {
                    let subject = self.namespace().strip(m.subject.as_str()).to_owned();
                    (subject, AutoReplied::decode(m.payload).unwrap())
                })
                .filter(|(_, e)| e.openid == openid)
                .collect();
            (found.len() >= at_least).then_some(found)
        })
        .await
    }
}

/// The one news article of a passive reply, if it is news.
fn card_of(reply: &PassiveReply) -> Option<(String, String)> {
    match &reply.body {
        Some(passive_reply::Body::News(news)) => news
            .articles
            .first()
            .map(|a| (a.title.clone(), a.url.clone())),
        _ => None,
    }
}

fn text_of(reply: &PassiveReply) -> String {
    match &reply.body {
        Some(passive_reply::Body::Text(text)) => text.content.clone(),
        other => panic!("expected text, got {other:?}"),
    }
}

async fn publish_twice(app: &TestApp, callback: &Callback) {
    // Different Nats-Msg-Ids, so JetStream keeps both: only the event id can dedupe.
    for delivery in ["delivery-1", "delivery-2"] {
        app.publish_raw(
            &callback.suffix,
            &format!("{}-{delivery}", callback.event_id()),
            callback.inbound.encode_to_vec(),
        )
        .await;
    }
}

#[tokio::test]
async fn a_question_the_directory_answers_opens_no_ticket_until_the_citizen_asks_again() {
    let app = spawn_app().await;
    let changes = app.seed_directory().await;
    let fund_id = changes
        .iter()
        .find(|(_, e)| e.name == "公积金提取")
        .map(|(id, _)| *id)
        .unwrap();
    let nats = app.nats().await;
    let mut citizen = Citizen::new();

    let question = citizen.says("公积金怎么提取");
    let reply = app.passive_reply(&nats, &question).await;
    assert_eq!(
        card_of(&reply),
        Some((
            "公积金提取".to_owned(),
            "https://gjj.lincheng.example.gov.cn/tq".to_owned()
        ))
    );
    publish_twice(&app, &question).await;
    let announced = app.auto_replies(&citizen.openid, 1).await;
    assert_eq!(announced.len(), 1);
    let (subject, event) = &announced[0];
    assert_eq!(
        subject,
        &format!("interaction.{ACCOUNT}.autoreply.directory_service")
    );
    assert_eq!(event.source(), AutoReplySource::DirectoryService);
    // A citizen's question was answered: the inspection counts it as answering.
    assert_eq!(event.answered(), AnsweredInbound::Message);
    assert_eq!(event.service_id, fund_id.to_string());
    assert_eq!(event.category, "housing_fund");
    assert_eq!(event.matched, "公积金提取");
    assert_eq!(event.inbound_event_id, question.event_id());
    assert_eq!(
        event.header.as_ref().unwrap().event_id,
        format!("{}:autoreply", question.event_id())
    );
    assert_eq!(app.ticket_count(&citizen.openid).await, 0);

    // Asking again a moment later: a person takes it, with the first question.
    let again = citizen.says("还是不会弄");
    let reply = app.passive_reply(&nats, &again).await;
    assert!(text_of(&reply).contains("已收到"), "{reply:?}");
    app.publish(&again).await;
    let opened = app
        .interaction_events(&format!("interaction.{ACCOUNT}.ticket.opened"), 1)
        .await;
    let ticket = TicketChanged::decode(opened[0].payload.clone()).unwrap();
    let ticket_id = uuid::Uuid::parse_str(&ticket.ticket_id).unwrap();
    let (summary,): (String,) = sqlx::query_as("SELECT summary FROM tickets WHERE id = $1")
        .bind(ticket_id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(summary, "公积金怎么提取");
    let thread: Vec<String> =
        sqlx::query_scalar("SELECT body FROM ticket_messages WHERE ticket_id = $1 ORDER BY at, id")
            .bind(ticket_id)
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(thread, ["公积金怎么提取", "还是不会弄"]);
    let notes: Vec<String> =
        sqlx::query_scalar("SELECT note FROM ticket_transitions WHERE ticket_id = $1")
            .bind(ticket_id)
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert!(
        notes
            .iter()
            .any(|n| n.contains("asked again") && n.contains("公积金提取")),
        "{notes:?}"
    );
    // The redelivered question announced nothing twice.
    let outbox: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE subject LIKE '%.autoreply.%'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(outbox, 1);
    assert_eq!(app.auto_replies(&citizen.openid, 1).await.len(), 1);
}

/// The consumer may apply a message before the gateway's reply request for it is
/// served: a citizen asking the same again then still gets the acknowledgement of the
/// ticket it opened, not the card that did not help (the answer it took over is
/// pending for it alone).
#[tokio::test]
async fn asking_again_applied_before_its_reply_is_asked_for_gets_the_acknowledgement() {
    let app = spawn_app().await;
    app.seed_directory().await;
    let nats = app.nats().await;
    let mut citizen = Citizen::new();
    let question = citizen.says("公积金怎么提取");
    app.publish(&question).await;
    app.auto_replies(&citizen.openid, 1).await;

    let again = citizen.says("公积金怎么提取");
    app.publish(&again).await;
    eventually("the ticket opened by asking again", || async {
        (app.ticket_count(&citizen.openid).await == 1).then_some(())
    })
    .await;
    let reply = app.passive_reply(&nats, &again).await;
    assert!(text_of(&reply).contains("已收到"), "{reply:?}");

    // A later question about the same service is no longer asking again about the
    // first: the answer was taken over.
    let later = citizen.says("公积金怎么提取");
    let reply = app.passive_reply(&nats, &later).await;
    assert!(card_of(&reply).is_some(), "{reply:?}");
}

#[tokio::test]
async fn complaints_and_unrelated_messages_still_open_tickets() {
    let app = spawn_app().await;
    app.seed_directory().await;
    let nats = app.nats().await;
    for words in ["我要投诉公积金中心态度差", "路灯坏了好几天了"] {
        let mut citizen = Citizen::new();
        let message = citizen.says(words);
        let reply = app.passive_reply(&nats, &message).await;
        assert!(text_of(&reply).contains("已收到"), "{words}: {reply:?}");
        app.publish(&message).await;
        eventually(&format!("a ticket for {words}"), || async {
            (app.ticket_count(&citizen.openid).await == 1).then_some(())
        })
        .await;
    }
}

#[tokio::test]
async fn a_category_click_lists_its_services_and_a_rule_still_comes_first() {
    let app = spawn_app().await;
    app.seed_directory().await;
    let nats = app.nats().await;
    let mut citizen = Citizen::new();

    let click = citizen.does(CitizenAction::Click {
        key: "category:housing_fund".into(),
    });
    let reply = app.passive_reply(&nats, &click).await;
    let Some(passive_reply::Body::News(news)) = &reply.body else {
        panic!("news cards, got {reply:?}")
    };
    let mut titles: Vec<&str> = news.articles.iter().map(|a| a.title.as_str()).collect();
    titles.sort_unstable();
    assert_eq!(titles, ["公积金提取", "公积金缴存查询", "公积金贷款"]);
    app.publish(&click).await;

    // A category with a mini-program-only service is listed as text with links.
    let medical = citizen.does(CitizenAction::Click {
        key: "category:medical_insurance".into(),
    });
    let listing = text_of(&app.passive_reply(&nats, &medical).await);
    assert!(listing.contains("<a href=\"https://ybj.lincheng.example.gov.cn/bx\">医保报销</a>"));
    assert!(listing.contains("医保异地就医备案"));

    let unknown = citizen.does(CitizenAction::Click {
        key: "category:no_such_category".into(),
    });
    // An unknown category still answers, pointing to the hall and 12345; no service
    // was given, so only the listing above is announced.
    let elsewhere = text_of(&app.passive_reply(&nats, &unknown).await);
    assert!(elsewhere.contains("12345"), "{elsewhere}");

    let announced = app.auto_replies(&citizen.openid, 1).await;
    assert_eq!(announced.len(), 1);
    let (subject, event) = &announced[0];
    assert_eq!(
        subject,
        &format!("interaction.{ACCOUNT}.autoreply.directory_category")
    );
    assert_eq!(event.source(), AutoReplySource::DirectoryCategory);
    // A menu click is no question: the inspection must not count it as an answer.
    assert_eq!(event.answered(), AnsweredInbound::Event);
    assert_eq!(event.category, "housing_fund");
    assert_eq!(event.matched, "category:housing_fund");
    assert_eq!(app.ticket_count(&citizen.openid).await, 0);

    // An explicit rule on the key wins over the directory, and is announced as a rule.
    let rule = app
        .client(Some(ADMIN_KEY))
        .await
        .create_reply_rule(new_reply_rule(proto::interaction::v1::ReplyRule {
            account: ACCOUNT.into(),
            r#match: proto::interaction::v1::MatchKind::MenuClick as i32,
            patterns: vec!["category:housing_fund".into()],
            text: "公积金业务请拨打12329".into(),
            resolves: true,
            enabled: true,
            ..Default::default()
        }))
        .await
        .expect("rule created")
        .into_inner();
    let mut other = Citizen::new();
    let click = other.does(CitizenAction::Click {
        key: "category:housing_fund".into(),
    });
    eventually("the rule answers the click", || async {
        let reply = app.passive_reply(&nats, &click).await;
        matches!(&reply.body, Some(passive_reply::Body::Text(t)) if t.content.contains("12329"))
            .then_some(())
    })
    .await;
    app.publish(&click).await;
    let announced = app.auto_replies(&other.openid, 1).await;
    assert_eq!(announced[0].1.source(), AutoReplySource::Rule);
    assert_eq!(announced[0].1.answered(), AnsweredInbound::Event);
    assert_eq!(announced[0].1.rule_id, rule.id);
    assert_eq!(announced[0].1.matched, "category:housing_fund");
}

#[tokio::test]
async fn directory_changes_replace_older_versions_and_deletions_stay_deleted() {
    let app = spawn_app().await;
    let changes = app.seed_directory().await;
    let nats = app.nats().await;
    let (id, created) = changes
        .iter()
        .find(|(_, e)| e.name == "公积金提取")
        .cloned()
        .unwrap();
    let fields: Vec<&str> = seed_lines()
        .into_iter()
        .find(|f| f[2] == "公积金提取")
        .unwrap();

    // Renamed with a new page: the card follows.
    let later = Utc::now() + chrono::Duration::seconds(1);
    let mut updated = change(id, "updated", &fields, later);
    updated.name = "住房公积金提取".into();
    updated.url = "https://gjj.lincheng.example.gov.cn/tq2".into();
    app.publish_directory(&updated).await;
    let mut citizen = Citizen::new();
    let (app, nats) = (&app, &nats);
    eventually("the card shows the update", || {
        let question = citizen.says("公积金怎么提取");
        async move {
            let reply = app.passive_reply(nats, &question).await;
            (card_of(&reply)
                == Some((
                    "住房公积金提取".to_owned(),
                    "https://gjj.lincheng.example.gov.cn/tq2".to_owned(),
                )))
            .then_some(())
        }
    })
    .await;

    // Deleted; then the creation delivered late changes nothing.
    let deleted = change(id, "deleted", &fields, later + chrono::Duration::seconds(1));
    app.publish_directory(&deleted).await;
    let mut late = created.clone();
    late.header.as_mut().unwrap().event_id = uuid::Uuid::now_v7().to_string();
    app.publish_directory(&late).await;
    eventually("the late creation is consumed", || async {
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM processed_events WHERE event_id = $1")
                .bind(&late.header.as_ref().unwrap().event_id)
                .fetch_one(&app.db)
                .await
                .unwrap();
        (n == 1).then_some(())
    })
    .await;
    let (deleted_flag, name): (bool, String) =
        sqlx::query_as("SELECT deleted, name FROM directory_services WHERE id = $1")
            .bind(id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert!(deleted_flag);
    assert_eq!(name, "公积金提取", "the tombstone keeps the last fields");
    eventually("no card for a deleted service", || {
        let question = citizen.says("公积金怎么提取");
        async move {
            let reply = app.passive_reply(nats, &question).await;
            card_of(&reply).is_none().then_some(())
        }
    })
    .await;
}

/// The gateway in-process in `app`'s namespace, with the mock's demo account.
async fn gateway_for(
    app: &TestApp,
) -> (
    CallbackSigner,
    CallbackClient,
    tokio::sync::oneshot::Sender<()>,
) {
    let account = CallbackAccount {
        id: ACCOUNT.to_owned(),
        appid: DEMO_APPID.to_owned(),
        original_id: GH_ID.to_owned(),
        token: "chenzhou-token".to_owned(),
        aes_key: "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG".to_owned(),
        mode: Mode::Safe,
    };
    let (url, stop) = crate::e2e::spawn_gateway(app, &account).await;
    let signer = CallbackSigner::new(account).expect("valid account");
    let client = CallbackClient::new(&url, RetryPolicy::default()).unwrap();
    (signer, client, stop)
}

#[tokio::test]
async fn through_the_gateway_a_citizen_gets_the_card_and_asking_again_opens_a_ticket() {
    let mock = MockWechat::start(SimConfig::default())
        .await
        .expect("mock api starts");
    let app = spawn_app_with(&wechat_env(&mock)).await;
    app.seed_directory().await;
    let (signer, wechat, _stop) = gateway_for(&app).await;
    let check = ReplyCheck::new(&signer);
    let mut citizen = Follower::new(format!(
        "o{}",
        &uuid::Uuid::new_v4().simple().to_string()[..27]
    ));
    let openid = citizen.openid.clone();

    let ReplyBody::News(articles) =
        says(&signer, &check, &wechat, &mut citizen, "公积金怎么提取").await
    else {
        panic!("a news card")
    };
    assert_eq!(articles.len(), 1);
    assert_eq!(articles[0].title, "公积金提取");
    assert_eq!(articles[0].url, "https://gjj.lincheng.example.gov.cn/tq");
    let announced = app.auto_replies(&openid, 1).await;
    assert_eq!(announced[0].1.source(), AutoReplySource::DirectoryService);
    assert_eq!(app.ticket_count(&openid).await, 0);

    let ReplyBody::Text { content } =
        says(&signer, &check, &wechat, &mut citizen, "没用，转人工").await
    else {
        panic!("the acknowledgement")
    };
    assert!(content.contains("已收到"), "{content}");
    eventually("the ticket opened by asking again", || async {
        (app.ticket_count(&openid).await == 1).then_some(())
    })
    .await;
}

/// The citizen's text through the gateway, and the passive reply as WeChat reads it.
async fn says(
    signer: &CallbackSigner,
    check: &ReplyCheck,
    wechat: &CallbackClient,
    citizen: &mut Follower,
    words: &str,
) -> ReplyBody {
    let callback = signer
        .sign(
            citizen,
            &CitizenAction::Text {
                content: words.to_owned(),
            },
        )
        .unwrap();
    let delivery = wechat.deliver(&callback).await;
    assert!(!delivery.retried(), "answered within WeChat's 5 s");
    let (status, body) = delivery.answer().expect("the gateway answers");
    match check.check(&callback, status, body) {
        Ok(CheckedReply::Reply { reply, .. }) => reply.body,
        other => panic!("expected a passive reply, got {other:?}"),
    }
}

/// The consumer applies a lane's queued callbacks as one batch, reading what the batch
/// needs (claims, pending directory answers, held answers) once for all of them; the
/// result must be that of applying them one at a time.
#[tokio::test]
async fn a_batch_of_one_citizens_callbacks_applies_as_one_at_a_time_would() {
    use interaction_svc::app::callbacks::{Applied, Callbacks};
    use interaction_svc::domain::{DeadlinePolicy, Departments, Intake};
    use interaction_svc::replies::RulesCache;
    use interaction_svc::replies::directory::DirectoryCache;
    use platform::inbound::InboundEvent;
    use std::sync::Arc;

    let app = spawn_app().await;
    app.seed_directory().await;
    let directory = Arc::new(DirectoryCache::new(app.db.clone()));
    directory.reload().await.unwrap();
    let callbacks = Callbacks::new(
        Arc::new(RulesCache::new(app.db.clone())),
        directory,
        Arc::new(Intake {
            policy: DeadlinePolicy::default(),
            fallback_department: "city-office".into(),
            departments: Departments::default(),
        }),
    );
    let decode = |callback: &Callback| {
        InboundEvent::decode(&callback.inbound.encode_to_vec()).expect("a valid inbound event")
    };
    let apply = |events: Vec<InboundEvent>| {
        let (db, callbacks) = (app.db.clone(), &callbacks);
        async move {
            let mut tx = db.begin().await.unwrap();
            let batch: Vec<&InboundEvent> = events.iter().collect();
            let applied = callbacks.apply(&mut tx, &batch).await.unwrap();
            tx.commit().await.unwrap();
            applied
        }
    };
    let mut citizen = Citizen::new();

    // The directory answers the question; asking again in the same batch opens the
    // ticket with the first question; the question delivered twice counts once.
    let question = citizen.says("公积金怎么提取");
    let again = citizen.says("还是不会弄");
    let applied = apply(vec![decode(&question), decode(&again), decode(&question)]).await;
    assert!(matches!(applied[0], Applied::Changed { .. }), "{applied:?}");
    assert!(matches!(applied[1], Applied::Changed { .. }), "{applied:?}");
    assert_eq!(applied[2], Applied::Duplicate);
    let (ticket_id, summary): (uuid::Uuid, String) =
        sqlx::query_as("SELECT id, summary FROM tickets WHERE openid = $1")
            .bind(&citizen.openid)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(summary, "公积金怎么提取");
    let thread: Vec<String> =
        sqlx::query_scalar("SELECT body FROM ticket_messages WHERE ticket_id = $1 ORDER BY at, id")
            .bind(ticket_id)
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(thread, ["公积金怎么提取", "还是不会弄"]);
    let pending: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM directory_answers WHERE openid = $1 AND consumed_by IS NULL",
    )
    .bind(&citizen.openid)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(pending, 0, "the ticket carries the first question now");
    let last: chrono::DateTime<Utc> =
        sqlx::query_scalar("SELECT last_interaction_at FROM followers WHERE openid = $1")
            .bind(&citizen.openid)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(last, again.create_time());

    // With answers held for the citizen, only their last interaction in the batch
    // sends them (once, after the commit); an unfollow is no interaction.
    sqlx::query("UPDATE tickets SET awaiting_citizen = true WHERE id = $1")
        .bind(ticket_id)
        .execute(&app.db)
        .await
        .unwrap();
    let more = citizen.says("补充一下材料");
    let unfollow = citizen.does(CitizenAction::Unsubscribe);
    let applied = apply(vec![decode(&more), decode(&more), decode(&unfollow)]).await;
    assert_eq!(
        applied,
        [
            Applied::Changed {
                queued_events: true,
                held_answers: true
            },
            Applied::Duplicate,
            Applied::Changed {
                queued_events: true,
                held_answers: false
            },
        ]
    );
}
