//! Seeds a local run with history: 90 days (or `SEED_DAYS`) of realistic callbacks,
//! automatic answers (reply rules, the directory) and ticket changes for each account named on the command line (default `demo`),
//! published to JetStream as the gateway and interaction-svc publish them, and 40
//! articles a month announced as content-svc publishes them, with reach figures
//! entered over gRPC once stats-svc has them (not for an account whose articles the
//! datacube pulls: its figures come from there), so the dashboard shows full charts
//! within a minute of `deploy/dev/run.sh`.
//!
//! ```sh
//! cargo run -p stats-svc --example seed_history -- demo chenzhou yizhang
//! ```
//! Reads `NATS_URL` (default `nats://127.0.0.1:4222`), `NATS_PREFIX`,
//! `STATS_GRPC_URL` (default `http://127.0.0.1:50053`) and `STATS_API_KEY` (an
//! editor's or admin's key; default the dev admin key). Event ids are derived from
//! the account, day and number, so running it again adds nothing.
// The progress report is the program's output.
#![allow(clippy::print_stdout)]

use chrono::{Days, Utc};
use prost::Message as _;
use proto::events::v1 as ev;
use proto::stats::v1 as pb;

/// A small deterministic generator, so two runs publish the same history.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n.max(1)
    }
}

const DEPARTMENTS: [&str; 5] = ["住建局", "水务局", "交通局", "人社局", "城管局"];
const MENU_KEYS: [&str; 4] = ["MENU_GUIDE", "MENU_QUERY", "MENU_NEWS", "MENU_CONTACT"];
const SCENES: [&str; 3] = ["hall", "metro", "poster"];
/// Reply rules (id, keyword) and directory services (id, category) that answer.
const RULES: [(&str, &str); 4] = [
    ("rule-gjj", "公积金"),
    ("rule-yb", "医保"),
    ("rule-hours", "办公时间"),
    ("rule-hello", "你好"),
];
const SERVICES: [(&str, &str); 3] = [
    ("svc-sbk", "社会保障"),
    ("svc-hukou", "户籍办理"),
    ("svc-jz", "居住证"),
];

/// An automatic answer, as interaction-svc announces it.
fn answered(
    id: &str,
    account: &str,
    at: i64,
    source: ev::AutoReplySource,
    (key, category): (&str, &str),
) -> (String, Vec<u8>) {
    let (subject, rule_id, matched, service_id) = match source {
        ev::AutoReplySource::Rule => ("rule", key, category, ""),
        ev::AutoReplySource::DirectoryService => ("directory_service", "", "", key),
        _ => ("directory_category", "", category, ""),
    };
    let event = ev::AutoReplied {
        header: header(id, account, at),
        openid: format!("o_{id}"),
        source: source as i32,
        rule_id: rule_id.to_owned(),
        matched: matched.to_owned(),
        service_id: service_id.to_owned(),
        category: if source == ev::AutoReplySource::Rule {
            String::new()
        } else {
            category.to_owned()
        },
        inbound_event_id: id.trim_end_matches("-ar").to_owned(),
        answered: ev::AnsweredInbound::Message as i32,
    };
    (
        format!("interaction.{account}.autoreply.{subject}"),
        event.encode_to_vec(),
    )
}

fn header(id: &str, account: &str, at: i64) -> Option<ev::EventHeader> {
    Some(ev::EventHeader {
        event_id: id.to_owned(),
        account: account.to_owned(),
        occurred_at: Some(prost_types::Timestamp {
            seconds: at,
            nanos: 0,
        }),
    })
}

fn ts(seconds: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos: 0 })
}

struct Publisher {
    jetstream: async_nats::jetstream::Context,
    prefix: String,
    acks: Vec<async_nats::jetstream::context::PublishAckFuture>,
    sent: usize,
}

impl Publisher {
    async fn send(&mut self, subject: &str, id: &str, payload: Vec<u8>) -> anyhow::Result<()> {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, id);
        let subject = if self.prefix.is_empty() {
            subject.to_owned()
        } else {
            format!("{}.{subject}", self.prefix)
        };
        self.acks.push(
            self.jetstream
                .publish_with_headers(subject, headers, payload.into())
                .await?,
        );
        self.sent += 1;
        if self.acks.len() >= 512 {
            for ack in self.acks.drain(..) {
                ack.await?;
            }
        }
        Ok(())
    }

    async fn inbound(
        &mut self,
        account: &str,
        id: &str,
        at: i64,
        suffix: &str,
        body: &str,
        message: bool,
    ) -> anyhow::Result<()> {
        let event = ev::Inbound {
            header: header(id, account, at),
            kind: if message {
                ev::InboundKind::Message
            } else {
                ev::InboundKind::Event
            } as i32,
            msg_type: if message { "text" } else { "event" }.to_owned(),
            raw_xml: format!(
                "<xml><ToUserName>gh_seed</ToUserName><FromUserName>o_{id}</FromUserName>\
                 <CreateTime>{at}</CreateTime>{body}</xml>"
            ),
            ..Default::default()
        };
        self.send(
            &format!("wechat.inbound.{account}.{suffix}"),
            id,
            event.encode_to_vec(),
        )
        .await
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut accounts: Vec<String> = std::env::args().skip(1).collect();
    if accounts.is_empty() {
        accounts.push("demo".to_owned());
    }
    let days: u64 = std::env::var("SEED_DAYS")
        .ok()
        .map(|d| d.parse())
        .transpose()?
        .unwrap_or(90);
    let nats_url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let grpc_url =
        std::env::var("STATS_GRPC_URL").unwrap_or_else(|_| "http://127.0.0.1:50053".into());
    let key = std::env::var("STATS_API_KEY").unwrap_or_else(|_| "dev-admin-key-0001".into());
    let client = async_nats::connect(&nats_url).await?;
    let mut publisher = Publisher {
        jetstream: async_nats::jetstream::new(client),
        prefix: std::env::var("NATS_PREFIX").unwrap_or_default(),
        acks: Vec::new(),
        sent: 0,
    };
    let mut grpc = pb::stats_service_client::StatsServiceClient::connect(grpc_url).await?;
    let today = Utc::now().date_naive();
    let mut entries = Vec::new();
    for (a, account) in accounts.iter().enumerate() {
        let mut rng = Lcg(a as u64 + 7);
        for back in 0..days {
            let day = today - Days::new(back);
            let midnight = day
                .and_hms_opt(0, 0, 0)
                .map(|t| t.and_utc().timestamp() - 8 * 3600)
                .unwrap_or_default();
            let weekend = matches!(
                chrono::Datelike::weekday(&day),
                chrono::Weekday::Sat | chrono::Weekday::Sun
            );
            let busy = if weekend { 1 } else { 2 };
            // Office hours, roughly: 08:00-22:00.
            let at = |rng: &mut Lcg| midnight + 8 * 3600 + rng.below(14 * 3600) as i64;
            for n in 0..(10 + rng.below(30) * busy) {
                let id = format!("seed-{account}-{day}-f{n}");
                let scene = SCENES[rng.below(4) as usize % SCENES.len()];
                let key = if rng.below(3) == 0 {
                    String::new()
                } else {
                    format!("qrscene_{scene}")
                };
                let body = format!(
                    "<MsgType>event</MsgType><Event>subscribe</Event><EventKey>{key}</EventKey>"
                );
                let t = at(&mut rng);
                publisher
                    .inbound(account, &id, t, "event.subscribe", &body, false)
                    .await?;
            }
            for n in 0..(2 + rng.below(8)) {
                let id = format!("seed-{account}-{day}-u{n}");
                let body =
                    "<MsgType>event</MsgType><Event>unsubscribe</Event><EventKey></EventKey>";
                let t = at(&mut rng);
                publisher
                    .inbound(account, &id, t, "event.unsubscribe", body, false)
                    .await?;
            }
            for n in 0..(15 + rng.below(40) * busy) {
                let id = format!("seed-{account}-{day}-m{n}");
                let body = "<MsgType>text</MsgType><Content>请问怎么办理</Content><MsgId>1</MsgId>";
                let t = at(&mut rng);
                publisher
                    .inbound(account, &id, t, "msg.text", body, true)
                    .await?;
                // About half are answered by a rule, a fifth by the directory.
                let answer = match rng.below(10) {
                    0..=4 => Some((
                        ev::AutoReplySource::Rule,
                        RULES[rng.below(RULES.len() as u64) as usize],
                    )),
                    5 | 6 => Some((
                        ev::AutoReplySource::DirectoryService,
                        SERVICES[rng.below(SERVICES.len() as u64) as usize],
                    )),
                    _ => None,
                };
                if let Some((source, what)) = answer {
                    let id = format!("{id}-ar");
                    let (subject, payload) = answered(&id, account, t, source, what);
                    publisher.send(&subject, &id, payload).await?;
                }
            }
            for n in 0..(20 + rng.below(50)) {
                let id = format!("seed-{account}-{day}-c{n}");
                let menu = MENU_KEYS[rng.below(MENU_KEYS.len() as u64) as usize];
                let body = format!(
                    "<MsgType>event</MsgType><Event>CLICK</Event><EventKey>{menu}</EventKey>"
                );
                let t = at(&mut rng);
                publisher
                    .inbound(account, &id, t, "event.CLICK", &body, false)
                    .await?;
                if menu == "MENU_GUIDE" {
                    let id = format!("{id}-ar");
                    let (subject, payload) = answered(
                        &id,
                        account,
                        t,
                        ev::AutoReplySource::DirectoryCategory,
                        ("", SERVICES[rng.below(SERVICES.len() as u64) as usize].1),
                    );
                    publisher.send(&subject, &id, payload).await?;
                }
            }
            for n in 0..(3 + rng.below(6) * busy) {
                let ticket = format!("seed-{account}-{day}-t{n}");
                let d = rng.below(DEPARTMENTS.len() as u64) as usize;
                let opened = at(&mut rng);
                // Departments differ: the first answers within minutes, the last often late.
                let ack_after = 300 + rng.below(1800 * (d as u64 + 1)) as i64;
                let close_after = ack_after + 3600 + rng.below(36 * 3600) as i64;
                let mut changes = vec![
                    (ev::TicketChangeKind::Opened, opened, 0),
                    (ev::TicketChangeKind::Acknowledged, opened + ack_after, 0),
                ];
                if ack_after > 3600 {
                    changes.push((ev::TicketChangeKind::Overdue, opened + 3600, 0));
                }
                changes.push((ev::TicketChangeKind::Replied, opened + ack_after + 600, 0));
                changes.push((ev::TicketChangeKind::Closed, opened + close_after, 0));
                if rng.below(2) == 0 {
                    let rating = 3 + rng.below(3) as u32;
                    changes.push((
                        ev::TicketChangeKind::Rated,
                        opened + close_after + 600,
                        rating,
                    ));
                }
                let now = Utc::now().timestamp();
                for (kind, when, rating) in changes {
                    if when > now {
                        continue;
                    }
                    let id = format!("{ticket}-{kind:?}");
                    let change = ev::TicketChanged {
                        header: header(&id, account, when),
                        kind: kind as i32,
                        ticket_id: ticket.clone(),
                        department: DEPARTMENTS[d].to_owned(),
                        opened_at: ts(opened),
                        acknowledge_due_at: ts(opened + 3600),
                        resolve_due_at: ts(opened + 72 * 3600),
                        rating,
                        ..Default::default()
                    };
                    let subject = format!("interaction.{account}.ticket.{kind:?}").to_lowercase();
                    publisher
                        .send(&subject, &id, change.encode_to_vec())
                        .await?;
                }
            }
            // About 1.3 articles a day, announced as content-svc publishes them; their
            // figures (as on their seventh day) are entered once stats-svc has them.
            for n in 0..(1 + rng.below(2)) {
                let article = format!("seed-{account}-{day}-{n}");
                let sent = at(&mut rng);
                let published = ev::ArticleChanged {
                    header: header(&format!("{article}-published"), account, sent),
                    transition: ev::ArticleTransition::Published as i32,
                    article_id: article.clone(),
                    title: "政务信息".to_owned(),
                    headline: n == 0,
                    published_at: ts(sent),
                    ..Default::default()
                };
                publisher
                    .send(
                        &format!("content.{account}.article.published"),
                        &format!("{article}-published"),
                        published.encode_to_vec(),
                    )
                    .await?;
                let reads = 800 + rng.below(6000) * (a as u64 % 3 + 1);
                entries.push(pb::RecordArticleFiguresRequest {
                    account: account.clone(),
                    article_id: article,
                    reads,
                    zaikan: reads / 80,
                    likes: reads / 40,
                    shares: reads / 25,
                    ..Default::default()
                });
            }
        }
        println!("{account}: {days} days seeded");
    }
    for ack in publisher.acks.drain(..) {
        ack.await?;
    }
    println!("{} events published", publisher.sent);
    enter_figures(&mut grpc, &key, entries).await?;
    Ok(())
}

/// Enters each article's figures, waiting for stats-svc to have the article (its
/// consumer may still be applying the announcements). An account whose articles the
/// datacube pulls refuses hand-entered reads: its figures come from there.
async fn enter_figures(
    grpc: &mut pb::stats_service_client::StatsServiceClient<tonic::transport::Channel>,
    key: &str,
    entries: Vec<pb::RecordArticleFiguresRequest>,
) -> anyhow::Result<()> {
    let mut skipped = std::collections::BTreeSet::new();
    let mut entered = 0;
    let mut final_months = 0;
    for entry in entries {
        if skipped.contains(&entry.account) {
            continue;
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let mut request = tonic::Request::new(entry.clone());
            request
                .metadata_mut()
                .insert("authorization", format!("Bearer {key}").parse()?);
            match grpc.record_article_figures(request).await {
                Ok(_) => {
                    entered += 1;
                    break;
                }
                Err(status)
                    if status.code() == tonic::Code::NotFound
                        && std::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
                // A month whose ranking is final takes no figures by hand any more: the
                // seeded history before it keeps its articles without them.
                Err(status)
                    if status.code() == tonic::Code::FailedPrecondition
                        && status.message().contains("turned final") =>
                {
                    final_months += 1;
                    break;
                }
                Err(status) if status.code() == tonic::Code::FailedPrecondition => {
                    println!(
                        "{}: figures not entered: {}",
                        entry.account,
                        status.message()
                    );
                    skipped.insert(entry.account.clone());
                    break;
                }
                Err(status) => return Err(status.into()),
            }
        }
    }
    println!(
        "{entered} articles' figures entered ({final_months} of months whose ranking is final refused)"
    );
    Ok(())
}
