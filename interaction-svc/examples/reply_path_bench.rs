//! The reply path on its own: how many passive replies interaction-svc gives per
//! second, and its CPU per reply, with no gateway in front. Requesters send encoded
//! `Inbound`s straight to `{ns}.wechat.reply.{account}` over core NATS, as the gateway
//! does, closed loop at `CONCURRENCY`, and check every answer.
//!
//! Three cases, in alternating rounds (the machine's speed drifts within minutes):
//! - `keyword`: a text a keyword rule answers (memory only: the rules cache);
//! - `ticket`: a text no rule or directory service answers, so the reply is the
//!   ticket acknowledgement (one primary-key read of the citizen's last directory
//!   answer, then the routing table);
//! - `trivial`: the same requesters against a responder that answers every request
//!   with a fixed text (`wechat-sim`'s), in this process: the requesters' own cost.
//!
//! CPU per reply is this process's user + system time over the measured window (the
//! requesters are in it too: subtract `trivial`'s figure for interaction-svc's share)
//! and, with `NATS_PID`, nats-server's.
//!
//! ```sh
//! cargo build --release -p interaction-svc --example reply_path_bench
//! set -a; . .local/dev.env; set +a
//! NATS_PID=$(pgrep -x nats-server) target/release/examples/reply_path_bench 64 10 3
//! ```
//! Arguments: concurrency (64), seconds per run (10), rounds (3). Figures go to
//! docs/benchmarks.md; nothing here is asserted.
// The report is the program's output.
#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures::StreamExt as _;
use interaction_svc::domain::rules::{MatchKind, ReplyContent, ReplyRule};
use interaction_svc::store::rules::{RulesNotifier, create_reply_rule};
use interaction_svc::{Application, Config};
use platform::testing::{TestDb, TestNats, service_env};
use prost::Message as _;
use proto::events::v1::{Inbound, PassiveReply, passive_reply};
use wechat::message::InboundMessage;
use wechat_sim::traffic::cpu::{CpuSnapshot, WatchedProcess};
use wechat_sim::traffic::load::percentile;

const ACCOUNT: &str = "bench";
const GH_ID: &str = "gh_bench00000001";
const KEYWORD_REPLY: &str = "社保卡补办：携带身份证到市民中心一楼社保窗口办理，当场制卡。";

/// `count` distinct citizens' texts, encoded as the gateway would send them.
fn requests(namespace: &platform::nats::Namespace, text: &str, count: usize) -> Vec<Bytes> {
    (0..count)
        .map(|n| {
            let xml = format!(
                "<xml><ToUserName><![CDATA[{GH_ID}]]></ToUserName>\
                 <FromUserName><![CDATA[oBench{n:08}]]></FromUserName>\
                 <CreateTime>{}</CreateTime><MsgType><![CDATA[text]]></MsgType>\
                 <Content><![CDATA[{text}]]></Content><MsgId>{}</MsgId></xml>",
                1_700_000_000 + n,
                9_000_000_000u64 + n as u64
            );
            let message = InboundMessage::parse(xml.as_bytes()).expect("sample parses");
            gateway::event::inbound_event(namespace, ACCOUNT, &message, &xml, SystemTime::now())
                .payload
        })
        .collect()
}

struct Run {
    replies: u64,
    wrong: u64,
    per_sec: f64,
    p50_us: u64,
    p99_us: u64,
    own_us: f64,
    nats_us: f64,
}

/// Closed loop: `concurrency` requesters, each sending its next request when the last
/// is answered, for `seconds` after a one-second warm-up.
async fn run(
    client: &async_nats::Client,
    subject: &str,
    payloads: &Arc<Vec<Bytes>>,
    expect: &'static str,
    concurrency: usize,
    seconds: u64,
    nats: Option<&WatchedProcess>,
) -> Run {
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(0));
    let wrong = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, subject, payloads) = (client.clone(), subject.to_owned(), payloads.clone());
        let (measuring, stop, next, wrong) =
            (measuring.clone(), stop.clone(), next.clone(), wrong.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let n = next.fetch_add(1, Ordering::Relaxed) as usize;
                let payload = payloads[n % payloads.len()].clone();
                let sent = Instant::now();
                let answer = client.request(subject.clone(), payload).await;
                let counted = measuring.load(Ordering::Relaxed);
                let right = answer.ok().is_some_and(|m| {
                    PassiveReply::decode(m.payload).ok().and_then(|r| r.body).is_some_and(
                        |b| matches!(b, passive_reply::Body::Text(t) if expect.is_empty() || t.content == expect),
                    )
                });
                if counted {
                    latencies.push(sent.elapsed().as_micros() as u64);
                    if !right {
                        wrong.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            latencies
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    measuring.store(true, Ordering::Relaxed);
    let watched: Vec<WatchedProcess> = std::iter::once(WatchedProcess::this("bench"))
        .chain(nats.cloned())
        .collect();
    let (before, t0) = (CpuSnapshot::take(&watched), Instant::now());
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    measuring.store(false, Ordering::Relaxed);
    let (after, elapsed) = (CpuSnapshot::take(&watched), t0.elapsed());
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("requester"));
    }
    latencies.sort_unstable();
    let replies = latencies.len() as u64;
    let spent = before.spent_until(&after, replies);
    let us_of = |name: &str| {
        spent
            .iter()
            .find(|p| p.process == name)
            .map_or(0.0, |p| p.us_per_op)
    };
    Run {
        replies,
        wrong: wrong.load(Ordering::Relaxed),
        per_sec: replies as f64 / elapsed.as_secs_f64(),
        p50_us: percentile(&latencies, 0.50),
        p99_us: percentile(&latencies, 0.99),
        own_us: us_of("bench"),
        nats_us: us_of("nats-server"),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let concurrency: usize = args.next().map_or(Ok(64), |a| a.parse())?;
    let seconds: u64 = args.next().map_or(Ok(10), |a| a.parse())?;
    let rounds: usize = args.next().map_or(Ok(3), |a| a.parse())?;
    let nats = std::env::var("NATS_PID")
        .ok()
        .map(|pid| WatchedProcess::parse(&format!("nats-server={pid}")))
        .transpose()
        .map_err(anyhow::Error::msg)?;

    let test_db = TestDb::new("interaction");
    let test_nats = TestNats::new();
    let env = service_env(
        &test_db,
        &test_nats,
        [
            ("API_KEYS", "city-office:admin:bench-admin-key-01"),
            ("WECHAT_ACCOUNTS", ACCOUNT),
            ("WECHAT_BENCH_APPID", "wxbench000000001"),
            ("WECHAT_BENCH_SECRET", "bench-secret"),
            ("RUST_LOG", "warn"),
        ],
    );
    let app = Application::build(Config::from_env(&env)?).await?;
    tokio::spawn(app.run_until_stopped(std::future::pending()));

    let client = test_nats.connect().await;
    let db = sqlx::PgPool::connect(&test_db.url()).await?;
    let notifier = RulesNotifier::new(client.clone(), test_nats.namespace.clone());
    create_reply_rule(
        &db,
        &notifier,
        ReplyRule {
            id: uuid::Uuid::nil(),
            account: ACCOUNT.to_owned(),
            kind: MatchKind::Contains,
            patterns: vec!["社保卡".to_owned()],
            priority: 10,
            reply: ReplyContent::Text(KEYWORD_REPLY.to_owned()),
            resolves: true,
            enabled: true,
            created_at: chrono::Utc::now(),
        },
        None,
    )
    .await?;

    // The trivial responder, on a subject of its own.
    let trivial_subject = test_nats.namespace.subject("bench.trivial");
    let mut trivial = client.subscribe(trivial_subject.clone()).await?;
    let trivial_client = client.clone();
    tokio::spawn(async move {
        while let Some(request) = trivial.next().await {
            let (Some(reply_to), Ok(inbound)) = (request.reply, Inbound::decode(request.payload))
            else {
                continue;
            };
            let reply = wechat_sim::traffic::nats::canned_reply(&inbound);
            let _ = trivial_client
                .publish(reply_to, reply.encode_to_vec().into())
                .await;
        }
    });

    let reply_subject = test_nats
        .namespace
        .subject(&format!("wechat.reply.{ACCOUNT}"));
    let keyword = Arc::new(requests(
        &test_nats.namespace,
        "我的社保卡丢了怎么办",
        100_000,
    ));
    let ticket = Arc::new(requests(
        &test_nats.namespace,
        "小区门口的路灯坏了一个星期",
        100_000,
    ));
    // Until the rules cache has the keyword rule.
    let started = Instant::now();
    loop {
        let probe = run(&client, &reply_subject, &keyword, KEYWORD_REPLY, 1, 0, None).await;
        if probe.replies > 0 && probe.wrong == 0 || started.elapsed() > Duration::from_secs(30) {
            break;
        }
    }

    println!(
        "reply path: {concurrency} requesters, {seconds} s per run, {rounds} rounds, nats-server CPU {}",
        if nats.is_some() {
            "measured"
        } else {
            "not measured (set NATS_PID)"
        }
    );
    println!(
        "| case | round | replies/s | p50 ms | p99 ms | this process µs/reply | nats-server µs/reply | wrong |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let cases: [(&str, &str, &Arc<Vec<Bytes>>, &'static str); 3] = [
        ("keyword", reply_subject.as_str(), &keyword, KEYWORD_REPLY),
        ("ticket", reply_subject.as_str(), &ticket, ""),
        ("trivial", trivial_subject.as_str(), &keyword, ""),
    ];
    for round in 1..=rounds {
        for (name, subject, payloads, expect) in &cases {
            let r = run(
                &client,
                subject,
                payloads,
                expect,
                concurrency,
                seconds,
                nats.as_ref(),
            )
            .await;
            println!(
                "| {name} | {round} | {:.0} | {:.2} | {:.2} | {:.1} | {:.1} | {} |",
                r.per_sec,
                r.p50_us as f64 / 1e3,
                r.p99_us as f64 / 1e3,
                r.own_us,
                r.nats_us,
                r.wrong
            );
        }
    }
    Ok(())
}
