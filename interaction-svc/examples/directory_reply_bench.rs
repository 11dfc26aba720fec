//! Directory answer latency: a citizen's question to the passive reply that carries the
//! directory service's card, through the real gateway (safe mode: signed, encrypted),
//! NATS and interaction-svc's reply path, with the consumer applying every callback
//! at the same time. Everything runs in this process on the local NATS and PostgreSQL
//! (a fresh namespace and database), with `wechat-sim`'s signer and client as WeChat.
//!
//! Part 1 times the matcher alone over a directory of 2,000 services; part 2 sends
//! `RATE` questions per second for `SECONDS` seconds (open loop: one new citizen per
//! question, each one of the seed's directory questions) and reports the latency of
//! every answer, which must be the expected card.
//!
//! ```sh
//! cargo run --release -p interaction-svc --example directory_reply_bench -- 200 20
//! ```
//! Figures go to docs/benchmarks.md; nothing here is asserted.
// The report is the program's output.
#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use chrono::Utc;
use interaction_svc::domain::directory::{Directory, DirectoryService};
use interaction_svc::{Application, Config};
use platform::testing::{TestDb, TestNats, service_env};
use prost::Message as _;
use proto::events::v1 as ev;
use wechat::reply::ReplyBody;
use wechat_sim::traffic::{
    CallbackAccount, CallbackClient, CallbackSigner, CheckedReply, CitizenAction, Follower, Mode,
    ReplyCheck, RetryPolicy,
};

const SEED: &str = include_str!("../../content-svc/seed/lincheng-directory.tsv");
const ACCOUNT: &str = "bench";
const GH_ID: &str = "gh_bench00000001";
const APPID: &str = "wxbench000000001";

/// Questions and the service whose card answers each.
const QUESTIONS: &[(&str, &str)] = &[
    ("公积金怎么提取", "公积金提取"),
    ("社保卡丢了怎么补办", "社保卡补办"),
    ("医保怎么报销", "医保报销"),
    ("孩子上小学怎么报名", "中小学入学报名"),
    ("驾照到期了怎么换", "驾驶证换证"),
    ("退休了养老金怎么领", "养老保险待遇领取"),
];

fn seed_fields() -> Vec<Vec<&'static str>> {
    SEED.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split('\t').collect())
        .collect()
}

fn list(s: &str) -> Vec<String> {
    s.split('|')
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Part 1: the matcher over 2,000 services (the seed's 28, repeated with numbered
/// names so every copy is a distinct service).
fn matcher_part() {
    let fields = seed_fields();
    let services: Vec<DirectoryService> = (0..2000)
        .map(|n| {
            let f = &fields[n % fields.len()];
            let copy = n / fields.len();
            let suffix = if copy == 0 {
                String::new()
            } else {
                format!("{copy}")
            };
            DirectoryService {
                id: uuid::Uuid::from_u128(n as u128 + 1),
                category: f[1].to_owned(),
                name: format!("{}{suffix}", f[2]),
                description: f[4].to_owned(),
                url: f[6].to_owned(),
                keywords: list(f[10])
                    .into_iter()
                    .map(|k| format!("{k}{suffix}"))
                    .collect(),
                synonyms: list(f[11]),
            }
        })
        .collect();
    let started = Instant::now();
    let directory = Directory::new(services);
    let built = started.elapsed();
    let rounds = 20_000;
    let started = Instant::now();
    let mut answered = 0;
    for n in 0..rounds {
        let (question, _) = QUESTIONS[n % QUESTIONS.len()];
        if directory.answer(question).is_some() {
            answered += 1;
        }
    }
    let per_question = started.elapsed() / rounds as u32;
    println!(
        "matcher, 2,000 services: built in {}, {:.1} µs per question ({answered}/{rounds} answered)",
        ms(built),
        per_question.as_secs_f64() * 1e6
    );
}

async fn publish_seed(test_nats: &TestNats) {
    let jetstream = jetstream::new(test_nats.connect().await);
    let now = Utc::now();
    for f in seed_fields() {
        let event_id = uuid::Uuid::now_v7().to_string();
        let event = ev::DirectoryServiceChanged {
            header: Some(ev::EventHeader {
                event_id: event_id.clone(),
                account: ACCOUNT.into(),
                occurred_at: Some(prost_types::Timestamp {
                    seconds: now.timestamp(),
                    nanos: 0,
                }),
            }),
            change: "created".into(),
            service_id: uuid::Uuid::now_v7().to_string(),
            category: f[1].into(),
            name: f[2].into(),
            department: f[3].into(),
            description: f[4].into(),
            url: f[6].into(),
            keywords: list(f[10]),
            synonyms: list(f[11]),
            accounts: vec![ACCOUNT.into()],
            enabled: f[13] == "yes",
            actor: "bench".into(),
        };
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, event_id.as_str());
        let subject = test_nats
            .namespace
            .subject(&format!("content.{ACCOUNT}.directory.created"));
        jetstream
            .publish_with_headers(subject, headers, event.encode_to_vec().into())
            .await
            .expect("publish")
            .await
            .expect("ack");
    }
}

async fn start_gateway(test_nats: &TestNats, account: &CallbackAccount) -> String {
    let var = |suffix: &str| format!("WECHAT_{}_{suffix}", gateway::config::env_id(&account.id));
    let env = platform::Env::from_pairs([
        ("NATS_URL", test_nats.url().to_owned()),
        ("NATS_PREFIX", test_nats.prefix.clone()),
        ("HTTP_ADDR", "127.0.0.1:0".to_owned()),
        ("ADMIN_ADDR", "127.0.0.1:0".to_owned()),
        ("WECHAT_ACCOUNTS", account.id.clone()),
    ])
    .with(&var("APPID"), account.appid.clone())
    .with(&var("ORIGINAL_ID"), account.original_id.clone())
    .with(&var("TOKEN"), account.token.clone())
    .with(&var("AES_KEY"), account.aes_key.clone())
    .with(&var("MODE"), account.mode.as_str());
    let config = gateway::Config::from_env(&env).expect("gateway configuration");
    let gateway = gateway::Application::build(config)
        .await
        .expect("gateway builds");
    let url = format!("http://127.0.0.1:{}", gateway.port());
    tokio::spawn(gateway.run_until_stopped(std::future::pending()));
    url
}

/// The title of the reply's card, or what the reply was instead.
fn card_title(
    check: &ReplyCheck,
    callback: &wechat_sim::traffic::SignedCallback,
    status: u16,
    body: &bytes::Bytes,
) -> String {
    match check.check(callback, status, body) {
        Ok(CheckedReply::Reply {
            reply:
                wechat::reply::Reply {
                    body: ReplyBody::News(articles),
                    ..
                },
            ..
        }) => articles
            .first()
            .map(|a| a.title.clone())
            .unwrap_or_default(),
        Ok(CheckedReply::Reply { reply, .. }) => format!("not news: {:?}", reply.body),
        Ok(CheckedReply::NoReply) => "no reply".to_owned(),
        Err(e) => format!("refused: {e}"),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let rate: u32 = args.next().map_or(Ok(200), |a| a.parse())?;
    let seconds: u32 = args.next().map_or(Ok(20), |a| a.parse())?;

    matcher_part();

    let test_db = TestDb::new("interaction");
    let test_nats = TestNats::new();
    let env = service_env(
        &test_db,
        &test_nats,
        [
            ("API_KEYS", "city-office:admin:bench-admin-key-01"),
            ("WECHAT_ACCOUNTS", ACCOUNT),
            ("WECHAT_BENCH_APPID", APPID),
            ("WECHAT_BENCH_SECRET", "bench-secret"),
            ("RUST_LOG", "warn"),
        ],
    );
    let app = Application::build(Config::from_env(&env)?).await?;
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    publish_seed(&test_nats).await;

    let account = CallbackAccount {
        id: ACCOUNT.to_owned(),
        appid: APPID.to_owned(),
        original_id: GH_ID.to_owned(),
        token: "bench-token".to_owned(),
        aes_key: "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG".to_owned(),
        mode: Mode::Safe,
    };
    let gateway = start_gateway(&test_nats, &account).await;
    let signer = CallbackSigner::new(account)?;
    let check = Arc::new(ReplyCheck::new(&signer));
    let client = Arc::new(CallbackClient::new(
        &gateway,
        RetryPolicy {
            timeout: Duration::from_secs(5),
            max_attempts: 1,
        },
    )?);

    // Until the replica answers every question from the directory (the seed's events
    // are replicated in batches).
    let started = Instant::now();
    for (question, expected) in QUESTIONS {
        loop {
            let mut probe = Follower::new(format!("oprobe{}", uuid::Uuid::new_v4().simple()));
            let callback = signer.sign(
                &mut probe,
                &CitizenAction::Text {
                    content: (*question).to_owned(),
                },
            )?;
            let delivery = client.deliver(&callback).await;
            if let Some((status, body)) = delivery.answer()
                && card_title(&check, &callback, status, body) == *expected
            {
                break;
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(30),
                "the directory never answered {question}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // Signed before the clock starts.
    let total = (rate * seconds) as usize;
    let callbacks: Vec<_> = (0..total)
        .map(|n| {
            let (question, expected) = QUESTIONS[n % QUESTIONS.len()];
            let mut citizen = Follower::new(format!("obench{n:022}"));
            let callback = signer
                .sign(
                    &mut citizen,
                    &CitizenAction::Text {
                        content: question.to_owned(),
                    },
                )
                .expect("signs");
            (callback, expected)
        })
        .collect();
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = tokio::task::JoinSet::new();
    let began = Instant::now();
    for (callback, expected) in callbacks {
        ticks.tick().await;
        let (client, check) = (client.clone(), check.clone());
        tasks.spawn(async move {
            let sent = Instant::now();
            let delivery = client.deliver(&callback).await;
            let latency = sent.elapsed();
            let got = delivery.answer().map_or_else(
                || "no answer".to_owned(),
                |(status, body)| card_title(&check, &callback, status, body),
            );
            (
                latency,
                (got != expected).then(|| format!("{expected}: {got}")),
            )
        });
    }
    let mut latencies = Vec::with_capacity(total);
    let mut wrong: std::collections::BTreeMap<String, usize> = Default::default();
    while let Some(result) = tasks.join_next().await {
        let (latency, got) = result?;
        latencies.push(latency);
        if let Some(got) = got {
            *wrong.entry(got).or_default() += 1;
        }
    }
    let wrong_total: usize = wrong.values().sum();
    let elapsed = began.elapsed();
    latencies.sort_unstable();
    println!(
        "through the gateway (safe mode), {rate}/s for {seconds} s: {} questions in {:.1} s, {wrong_total} without the expected card {wrong:?}; latency p50 {}, p90 {}, p99 {}, max {}",
        latencies.len(),
        elapsed.as_secs_f64(),
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 90.0)),
        ms(percentile(&latencies, 99.0)),
        ms(latencies.last().copied().unwrap_or_default()),
    );
    Ok(())
}
