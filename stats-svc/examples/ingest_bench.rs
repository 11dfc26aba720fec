//! Ingest benchmark: fills WECHAT_INBOUND and INTERACTION (in a fresh namespace and
//! database on the local NATS and PostgreSQL) with `EVENTS` events for 50 accounts,
//! then starts stats-svc in-process and reports how fast the consumers turn the
//! backlog into rollups (events/s) and the backlog left each second (the lag).
//!
//! ```sh
//! cargo run -p stats-svc --example ingest_bench --release -- 200000
//! ```
//! Figures go to docs/benchmarks.md; nothing here is asserted.
// The report is the program's output.
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use platform::testing::{TestDb, TestNats, service_env};
use prost::Message as _;
use proto::events::v1 as ev;
use stats_svc::{Application, Config};

const ACCOUNTS: usize = 50;

fn inbound(n: usize, now: i64) -> (String, Vec<u8>) {
    let account = format!("acct{:02}", n % ACCOUNTS);
    let at = now - (n as i64 % (90 * 86_400));
    let (kind, msg_type, body, subject) = match n % 4 {
        0 => (
            ev::InboundKind::Event,
            "event",
            "<MsgType>event</MsgType><Event>subscribe</Event><EventKey>qrscene_hall</EventKey>",
            "event.subscribe",
        ),
        1 => (
            ev::InboundKind::Event,
            "event",
            "<MsgType>event</MsgType><Event>CLICK</Event><EventKey>MENU_GUIDE</EventKey>",
            "event.CLICK",
        ),
        _ => (
            ev::InboundKind::Message,
            "text",
            "<MsgType>text</MsgType><Content>请问办事时间</Content><MsgId>1</MsgId>",
            "msg.text",
        ),
    };
    let id = format!("bench-{n}");
    let event = ev::Inbound {
        header: Some(ev::EventHeader {
            event_id: id.clone(),
            account: account.clone(),
            occurred_at: Some(prost_types::Timestamp {
                seconds: at,
                nanos: 0,
            }),
        }),
        kind: kind as i32,
        msg_type: msg_type.to_owned(),
        raw_xml: format!(
            "<xml><ToUserName>gh_1</ToUserName><FromUserName>o{n}</FromUserName>\
             <CreateTime>{at}</CreateTime>{body}</xml>"
        ),
        ..Default::default()
    };
    (
        format!("wechat.inbound.{account}.{subject}"),
        event.encode_to_vec(),
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let events: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(100_000);
    let db = TestDb::new("stats-bench");
    let nats = TestNats::new();
    let client = nats.connect().await;
    let jetstream = async_nats::jetstream::new(client);
    platform::nats::provision_streams(&jetstream, &nats.namespace, &platform::nats::ALL_STREAMS)
        .await?;

    let filling = Instant::now();
    let now = chrono::Utc::now().timestamp();
    let mut acks = Vec::with_capacity(1024);
    for n in 0..events {
        let (subject, payload) = inbound(n, now);
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(
            async_nats::header::NATS_MESSAGE_ID,
            format!("bench-{n}").as_str(),
        );
        acks.push(
            jetstream
                .publish_with_headers(nats.namespace.subject(&subject), headers, payload.into())
                .await?,
        );
        if acks.len() == 1024 {
            for ack in acks.drain(..) {
                ack.await?;
            }
        }
    }
    for ack in acks.drain(..) {
        ack.await?;
    }
    println!(
        "filled {events} events in {:.1}s",
        filling.elapsed().as_secs_f64()
    );

    let env = service_env(
        &db,
        &nats,
        [
            ("API_KEYS", "bench:viewer:bench-viewer-key"),
            ("DATACUBE_INTERVAL", "0s"),
        ],
    );
    let app = Application::build(Config::from_env(&env)?).await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let started = Instant::now();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let pool = sqlx::PgPool::connect(&db.url()).await?;
    let mut last = 0i64;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM processed_events")
            .fetch_one(&pool)
            .await?;
        println!(
            "t={:>4.0}s applied={applied:>8} (+{:>6}/s) lag={} events",
            started.elapsed().as_secs_f64(),
            applied - last,
            events as i64 - applied
        );
        last = applied;
        if applied as usize >= events {
            break;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "ingested {events} events in {seconds:.1}s: {:.0} events/s (from start-up, 1 s resolution)",
        events as f64 / seconds
    );
    pool.close().await;
    let _ = stop.send(());
    server.await??;
    Ok(())
}
