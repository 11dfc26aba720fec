//! Typed consumers and the outbox against real NATS and PostgreSQL.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream;
use futures::StreamExt;
use platform::consumer::{
    Applied, EventHandler, HandleError, Received, StreamEvent, apply_once_then, run_consumer,
};
use platform::nats::{self, ConsumerSpec, WECHAT_INBOUND};
use platform::outbox::{self, OutboxEvent, OutboxSignal, Relay};
use platform::shutdown::Drain;
use platform::testing::{TestDb, TestNats};
use prost::Message as _;
use sqlx::{Connection, Executor};

/// A test event: the payload `key:n` as text.
#[derive(Debug, Clone)]
struct Numbered {
    id: String,
    key: String,
    n: u32,
}

impl StreamEvent for Numbered {
    fn decode(payload: &[u8]) -> Result<Self, String> {
        let text = std::str::from_utf8(payload).map_err(|e| e.to_string())?;
        let (key, n) = text.split_once(':').ok_or("no key")?;
        Ok(Self {
            id: text.to_owned(),
            key: key.to_owned(),
            n: n.parse().map_err(|_| format!("bad number in {text}"))?,
        })
    }

    fn event_id(&self) -> &str {
        &self.id
    }
}

const SPEC: ConsumerSpec = ConsumerSpec {
    stream: WECHAT_INBOUND,
    durable: "test-consumer",
    filter_subject: "wechat.inbound.>",
    max_deliver: 5,
    ack_wait: Duration::from_secs(30),
    max_ack_pending: nats::DEFAULT_MAX_ACK_PENDING,
};

/// Fails the first `failures` deliveries of each message, then succeeds.
struct Flaky {
    failures: i64,
    permanent: bool,
    handled: AtomicUsize,
}

impl EventHandler for Flaky {
    const CONSUMER: ConsumerSpec = SPEC;
    type Event = Numbered;

    async fn handle(&self, event: &Received<Numbered>) -> Result<(), HandleError> {
        if event.delivered <= self.failures {
            return Err(if self.permanent {
                HandleError::Permanent("cannot apply".to_owned())
            } else {
                HandleError::Transient("database hiccup".to_owned())
            });
        }
        self.handled.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// Records the order events arrive in per key, through batches of up to 16 on 4 lanes;
/// every batch call fails when `batches_fail`, so the runner falls back to `handle`.
#[derive(Default)]
struct Recorder {
    seen: Mutex<HashMap<String, Vec<u32>>>,
    batch_calls: AtomicUsize,
    batches_fail: bool,
}

impl Recorder {
    fn total(&self) -> usize {
        self.seen.lock().unwrap().values().map(Vec::len).sum()
    }
}

impl EventHandler for Recorder {
    const CONSUMER: ConsumerSpec = SPEC;
    const CONCURRENCY: usize = 4;
    const BATCH: usize = 16;
    type Event = Numbered;

    fn order_key(event: &Numbered) -> Option<&str> {
        Some(&event.key)
    }

    async fn handle(&self, event: &Received<Numbered>) -> Result<(), HandleError> {
        tokio::task::yield_now().await;
        let mut seen = self.seen.lock().unwrap();
        seen.entry(event.event.key.clone())
            .or_default()
            .push(event.event.n);
        Ok(())
    }

    async fn handle_batch(&self, events: &[Received<Numbered>]) -> Result<(), HandleError> {
        self.batch_calls.fetch_add(1, Ordering::SeqCst);
        if self.batches_fail {
            return Err(HandleError::Transient("batch refused".to_owned()));
        }
        for event in events {
            self.handle(event).await?;
        }
        Ok(())
    }
}

async fn prepared(test_nats: &TestNats) -> jetstream::Context {
    let js = jetstream::new(test_nats.connect().await);
    nats::provision_streams(&js, &test_nats.namespace, &nats::ALL_STREAMS)
        .await
        .unwrap();
    js
}

async fn publish(js: &jetstream::Context, test_nats: &TestNats, payload: &str) {
    platform::testing::publish_event(
        js,
        &test_nats.namespace,
        "wechat.inbound.city.msg.text",
        payload,
        payload.as_bytes().to_vec(),
    )
    .await;
}

/// Waits until the consumer has acked everything in the stream.
async fn wait_until_settled(js: &jetstream::Context, test_nats: &TestNats, published: u64) {
    let stream = test_nats.namespace.name("WECHAT_INBOUND");
    let durable = test_nats.namespace.name(SPEC.durable);
    for _ in 0..400 {
        if let Ok(mut consumer) = js
            .get_stream(&stream)
            .await
            .unwrap()
            .get_consumer::<jetstream::consumer::pull::Config>(&durable)
            .await
        {
            let info = consumer.info().await.unwrap();
            if info.num_ack_pending == 0
                && info.num_pending == 0
                && info.ack_floor.stream_sequence == published
            {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the consumer did not settle {published} messages within 20 s");
}

/// A consumer running `handler` over the test namespace until [`Running::stop`].
struct Running {
    drain: Drain,
    task: tokio::task::JoinHandle<Result<(), nats::NatsError>>,
}

impl Running {
    fn start<H: EventHandler>(
        js: &jetstream::Context,
        test_nats: &TestNats,
        handler: Arc<H>,
    ) -> Self {
        let drain = Drain::new();
        let task = tokio::spawn(run_consumer(
            js.clone(),
            test_nats.namespace.clone(),
            "test",
            handler,
            drain.clone(),
        ));
        Self { drain, task }
    }

    async fn stop(self) {
        self.drain.begin();
        self.task.await.unwrap().unwrap();
    }
}

fn flaky(failures: i64, permanent: bool) -> Arc<Flaky> {
    Arc::new(Flaky {
        failures,
        permanent,
        handled: AtomicUsize::new(0),
    })
}

/// Every message of `stream` from its start, through a fresh consumer.
async fn read_stream(
    js: &jetstream::Context,
    test_nats: &TestNats,
    stream: &str,
) -> jetstream::consumer::pull::Stream {
    js.get_stream(test_nats.namespace.name(stream))
        .await
        .unwrap()
        .create_consumer(jetstream::consumer::pull::Config::default())
        .await
        .unwrap()
        .messages()
        .await
        .unwrap()
}

async fn first_dead_letter(
    js: &jetstream::Context,
    test_nats: &TestNats,
) -> (String, proto::events::v1::DeadLetter) {
    let letter = read_stream(js, test_nats, "DEADLETTER")
        .await
        .next()
        .await
        .unwrap()
        .unwrap();
    let decoded = proto::events::v1::DeadLetter::decode(letter.payload.clone()).unwrap();
    (letter.subject.to_string(), decoded)
}

#[tokio::test]
async fn a_consumer_exports_its_outcome_counters_at_zero_before_any_message() {
    let handle = platform::telemetry::metrics_handle();
    let test_nats = TestNats::new();
    let js = prepared(&test_nats).await;
    let running = Running::start(&js, &test_nats, flaky(0, false));
    wait_until_settled(&js, &test_nats, 0).await;
    let page = handle.render();
    running.stop().await;
    for outcome in ["ok", "retry", "waiting", "deadletter", "handed_back"] {
        let series = format!(
            "consumer_messages_total{{consumer=\"{}\",outcome=\"{outcome}\"}}",
            SPEC.durable
        );
        assert!(page.contains(&series), "{series} missing from:\n{page}");
    }
}

#[tokio::test]
async fn transient_failures_are_retried_until_the_handler_succeeds() {
    let test_nats = TestNats::new();
    let js = prepared(&test_nats).await;
    publish(&js, &test_nats, "o1:1").await;
    let handler = flaky(1, false);
    let running = Running::start(&js, &test_nats, handler.clone());
    wait_until_settled(&js, &test_nats, 1).await;
    running.stop().await;
    assert_eq!(handler.handled.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn permanent_failures_go_to_the_dead_letter_stream_with_the_reason() {
    let test_nats = TestNats::new();
    let js = prepared(&test_nats).await;
    publish(&js, &test_nats, "o1:2").await;
    let handler = flaky(99, true);
    let running = Running::start(&js, &test_nats, handler.clone());
    let (subject, letter) = first_dead_letter(&js, &test_nats).await;
    assert_eq!(
        subject,
        test_nats
            .namespace
            .subject("deadletter.test.wechat_inbound")
    );
    assert_eq!(letter.reason, "cannot apply");
    let header = letter.header.unwrap();
    assert_eq!(header.event_id, "o1:2");
    assert_eq!(header.account, "city");
    assert_eq!(letter.payload, b"o1:2");
    running.stop().await;
}

/// Up to 7 failed deliveries: a patience of 31.5 s (0.5 + 1 + 2 + 4 + 8 + 16), and 3
/// waits whatever a message's age.
const WAITING_SPEC: ConsumerSpec = ConsumerSpec {
    max_deliver: 7,
    max_ack_pending: nats::WAITING_MAX_ACK_PENDING,
    ..SPEC
};

/// Waits for another event on the first `waits` deliveries of each message (forever
/// with `None`), then fails transiently `fails` times, then succeeds.
struct Waiting {
    waits: Option<i64>,
    fails: i64,
    handled: AtomicUsize,
    deliveries: AtomicUsize,
}

impl EventHandler for Waiting {
    const CONSUMER: ConsumerSpec = WAITING_SPEC;
    type Event = Numbered;

    async fn handle(&self, event: &Received<Numbered>) -> Result<(), HandleError> {
        self.deliveries.fetch_add(1, Ordering::SeqCst);
        let Some(waits) = self.waits.filter(|waits| event.delivered > *waits) else {
            return Err(HandleError::NotYet(
                "its callback is not applied".to_owned(),
            ));
        };
        if event.delivered <= waits + self.fails {
            return Err(HandleError::Transient("WeChat unavailable".to_owned()));
        }
        self.handled.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// A consumer running a [`Waiting`] handler, provisioned before anything is published
/// (a message's wait counts from when it is stored).
async fn run_waiting(
    js: &jetstream::Context,
    test_nats: &TestNats,
    waits: Option<i64>,
    fails: i64,
) -> (Arc<Waiting>, Running) {
    let handler = Arc::new(Waiting {
        waits,
        fails,
        handled: AtomicUsize::new(0),
        deliveries: AtomicUsize::new(0),
    });
    let running = Running::start(js, test_nats, handler.clone());
    wait_until_settled(js, test_nats, 0).await;
    (handler, running)
}

#[tokio::test]
async fn a_message_waiting_for_another_event_is_not_dead_lettered_after_max_deliver_deliveries() {
    let handle = platform::telemetry::metrics_handle();
    let test_nats = TestNats::new();
    let js = prepared(&test_nats).await;
    // 9 waits (0.5 s apart while the message is younger than 2 s, then a quarter of
    // its age: about 6 s in all, within the 31.5 s) are more deliveries than the 7 a
    // failing message gets.
    let (handler, running) = run_waiting(&js, &test_nats, Some(9), 0).await;
    publish(&js, &test_nats, "o1:3").await;
    wait_until_settled(&js, &test_nats, 1).await;
    running.stop().await;
    assert_eq!(handler.handled.load(Ordering::SeqCst), 1);
    assert_eq!(handler.deliveries.load(Ordering::SeqCst), 10);
    assert_eq!(
        test_nats.dead_letters(&js).await,
        0,
        "a waiting message was dead-lettered"
    );
    let series = format!(
        "consumer_messages_total{{consumer=\"{}\",outcome=\"waiting\"}}",
        SPEC.durable
    );
    let page = handle.render();
    let counted = page
        .lines()
        .find_map(|line| line.strip_prefix(&series))
        .and_then(|value| value.trim().parse::<u64>().ok());
    assert!(counted.is_some_and(|n| n >= 9), "{series} in:\n{page}");
}

#[tokio::test]
async fn a_failure_after_waiting_gets_the_retries_of_a_failing_message() {
    let test_nats = TestNats::new();
    let js = prepared(&test_nats).await;
    // Past its 7th delivery, with a retry backoff by delivery count of a minute: only
    // its own failures (2, 0.5 s and 1 s apart) may count.
    let (handler, running) = run_waiting(&js, &test_nats, Some(9), 2).await;
    publish(&js, &test_nats, "o1:5").await;
    wait_until_settled(&js, &test_nats, 1).await;
    running.stop().await;
    assert_eq!(handler.handled.load(Ordering::SeqCst), 1);
    assert_eq!(handler.deliveries.load(Ordering::SeqCst), 12);
    assert_eq!(test_nats.dead_letters(&js).await, 0);
}

#[tokio::test]
async fn a_message_that_keeps_waiting_is_dead_lettered_once_it_is_as_old_as_the_patience() {
    let test_nats = TestNats::new();
    let js = prepared(&test_nats).await;
    let (handler, running) = run_waiting(&js, &test_nats, None, 0).await;
    publish(&js, &test_nats, "o1:4").await;
    let (_, letter) =
        tokio::time::timeout(Duration::from_secs(180), first_dead_letter(&js, &test_nats))
            .await
            .expect("dead-lettered within 180 s (its patience is 31.5 s)");
    running.stop().await;
    let (waited, rest) = letter
        .reason
        .strip_prefix("still waiting after ")
        .and_then(|rest| rest.split_once(", "))
        .unwrap_or_else(|| panic!("{}", letter.reason));
    assert!(
        humantime::parse_duration(waited).unwrap() >= Duration::from_secs(31),
        "{}",
        letter.reason
    );
    assert_eq!(
        rest,
        format!(
            "delivered {} times: its callback is not applied",
            letter.deliveries
        )
    );
    assert!(
        letter.deliveries > WAITING_SPEC.max_deliver as u64,
        "dead-lettered after {} deliveries, as a failing message would be",
        letter.deliveries
    );
    assert_eq!(handler.handled.load(Ordering::SeqCst), 0);
}

/// Log lines written while the returned guard lives (this thread's tasks: tokio::test
/// runs them on one thread).
fn capture_logs() -> (Arc<Mutex<Vec<u8>>>, tracing::subscriber::DefaultGuard) {
    #[derive(Clone)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Sink(lines.clone());
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .finish();
    (lines, tracing::subscriber::set_default(subscriber))
}

#[tokio::test]
async fn retries_and_dead_letters_are_logged_without_the_event_id_that_holds_an_openid() {
    let (lines, _guard) = capture_logs();
    let test_nats = TestNats::new();
    let js = prepared(&test_nats).await;
    let openid = "oCitizenOpenid0000000000001";
    publish(&js, &test_nats, &format!("{openid}:1")).await;
    let running = Running::start(&js, &test_nats, flaky(1, true));
    first_dead_letter(&js, &test_nats).await;
    running.stop().await;
    let logged = String::from_utf8(lines.lock().unwrap().clone()).unwrap();
    assert!(logged.contains("message dead-lettered"), "{logged}");
    assert!(!logged.contains(openid), "{logged}");
}

#[tokio::test]
async fn an_undecodable_payload_is_dead_lettered_by_the_runner_without_reaching_the_handler() {
    let test_nats = TestNats::new();
    let js = prepared(&test_nats).await;
    publish(&js, &test_nats, "no-number-here").await;
    let handler = flaky(0, false);
    let running = Running::start(&js, &test_nats, handler.clone());
    let (_, letter) = first_dead_letter(&js, &test_nats).await;
    assert_eq!(letter.reason, "undecodable: no key");
    assert_eq!(letter.deliveries, 1);
    assert_eq!(letter.header.unwrap().event_id, "no-number-here");
    wait_until_settled(&js, &test_nats, 1).await;
    running.stop().await;
    assert_eq!(handler.handled.load(Ordering::SeqCst), 0);
}

async fn run_recorder(batches_fail: bool) -> Arc<Recorder> {
    let test_nats = TestNats::new();
    let js = prepared(&test_nats).await;
    let keys = ["a", "b", "c", "d", "e"];
    let per_key = 40;
    // Interleaved, as citizens write: a:0 b:0 … e:0 a:1 …
    for n in 0..per_key {
        for key in keys {
            publish(&js, &test_nats, &format!("{key}:{n}")).await;
        }
    }
    let handler = Arc::new(Recorder {
        batches_fail,
        ..Recorder::default()
    });
    let running = Running::start(&js, &test_nats, handler.clone());
    wait_until_settled(&js, &test_nats, (keys.len() * per_key) as u64).await;
    running.stop().await;
    assert_eq!(handler.total(), keys.len() * per_key);
    let seen = handler.seen.lock().unwrap();
    for key in keys {
        let order = &seen[key];
        let expected: Vec<u32> = (0..per_key as u32).collect();
        assert_eq!(order, &expected, "events of key {key} out of order");
    }
    drop(seen);
    handler
}

#[tokio::test]
async fn events_of_one_key_are_handled_in_stream_order_across_lanes_and_batches() {
    let handler = run_recorder(false).await;
    // 200 events: the lanes batch what is queued, so there are at most as many calls.
    assert!(handler.batch_calls.load(Ordering::SeqCst) <= 200);
}

#[tokio::test]
async fn a_failed_batch_is_handled_again_one_event_at_a_time() {
    let handler = run_recorder(true).await;
    assert_eq!(handler.total(), 200);
}

#[tokio::test]
async fn a_deleted_consumer_is_made_again_and_its_events_handled() {
    let test_nats = TestNats::new();
    let js = prepared(&test_nats).await;
    let handler = flaky(0, false);
    let drain = Drain::new();
    let supervised = tokio::spawn(platform::consumer::supervise_consumer(
        js.clone(),
        test_nats.namespace.clone(),
        "test",
        handler.clone(),
        drain.clone(),
    ));
    publish(&js, &test_nats, "o1:1").await;
    wait_until_settled(&js, &test_nats, 1).await;
    // An operator (or a stream re-created by hand) removes the durable under it.
    js.get_stream(test_nats.namespace.name("WECHAT_INBOUND"))
        .await
        .unwrap()
        .delete_consumer(&test_nats.namespace.name(SPEC.durable))
        .await
        .unwrap();
    publish(&js, &test_nats, "o2:2").await;
    for _ in 0..400 {
        if handler.handled.load(Ordering::SeqCst) >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drain.begin();
    supervised.await.unwrap();
    // The new durable starts from the stream's start: o1 again, which a real handler's
    // claim makes a no-op; here it only counts.
    assert!(
        handler.handled.load(Ordering::SeqCst) >= 2,
        "the event after the deletion was never handled"
    );
}

/// Messages come back to another replica only after this long unless handed back.
const SLOW_REDELIVERY: ConsumerSpec = ConsumerSpec {
    ack_wait: Duration::from_secs(600),
    ..SPEC
};

/// One replica of a service: records what it handled; while `gate` is closed, its one
/// lane waits inside the handler, so what it pulls piles up in front of the lane.
struct Replica {
    handled: Mutex<Vec<String>>,
    gate: tokio::sync::watch::Receiver<bool>,
}

impl Replica {
    fn new(gate: tokio::sync::watch::Receiver<bool>) -> Arc<Self> {
        Arc::new(Self {
            handled: Mutex::new(Vec::new()),
            gate,
        })
    }

    fn handled(&self) -> Vec<String> {
        self.handled.lock().unwrap().clone()
    }
}

impl EventHandler for Replica {
    const CONSUMER: ConsumerSpec = SLOW_REDELIVERY;
    type Event = Numbered;

    async fn handle(&self, event: &Received<Numbered>) -> Result<(), HandleError> {
        let mut gate = self.gate.clone();
        gate.wait_for(|open| *open).await.unwrap();
        self.handled.lock().unwrap().push(event.event.id.clone());
        Ok(())
    }
}

/// Messages the consumer has delivered and not had acked (0 before the runner made it).
async fn ack_pending(js: &jetstream::Context, test_nats: &TestNats) -> usize {
    let consumer = js
        .get_stream(test_nats.namespace.name("WECHAT_INBOUND"))
        .await
        .unwrap()
        .get_consumer::<jetstream::consumer::pull::Config>(
            &test_nats.namespace.name(SLOW_REDELIVERY.durable),
        )
        .await;
    match consumer {
        Ok(mut consumer) => consumer.info().await.unwrap().num_ack_pending,
        Err(_) => 0,
    }
}

#[tokio::test]
async fn a_draining_replica_hands_back_what_it_pulled_but_did_not_handle() {
    let test_nats = TestNats::new();
    let js = prepared(&test_nats).await;
    let total = 600;
    for n in 0..total {
        publish(&js, &test_nats, &format!("o{n}:{n}")).await;
    }
    let (open_old, gate) = tokio::sync::watch::channel(false);
    let old = Replica::new(gate);
    let running = Running::start(&js, &test_nats, old.clone());
    // More pulled than its lane holds (1 handled + 256 queued): the rest waits in the
    // replica when the rolling update stops it.
    for _ in 0..400 {
        if ack_pending(&js, &test_nats).await >= 400 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ack_pending(&js, &test_nats).await >= 400);
    running.drain.begin();
    open_old.send(true).unwrap();
    running.task.await.unwrap().unwrap();
    let kept = old.handled();
    assert!(kept.len() < total, "the old replica handled everything");

    let (_open_new, gate) = tokio::sync::watch::channel(true);
    let new = Replica::new(gate);
    let running = Running::start(&js, &test_nats, new.clone());
    // Within the test's time, far inside the 10 minutes an unreturned message waits.
    for _ in 0..1200 {
        if kept.len() + new.handled().len() >= total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.stop().await;
    let mut all: Vec<String> = kept.into_iter().chain(new.handled()).collect();
    assert_eq!(all.len(), total, "handled {} of {total}", all.len());
    all.sort();
    all.dedup();
    assert_eq!(all.len(), total, "an event was handled twice");
}

/// Four lanes; an event of key "stuck" hangs in its handler until `release` opens, as
/// a handler waiting on a WeChat call that never answers; every other event is counted.
/// With `KEYED`, every event takes its key's lane; without, only "stuck" events have a
/// key and the others may go to any lane.
struct Hanging<const KEYED: bool> {
    release: tokio::sync::watch::Receiver<bool>,
    handled: tokio::sync::watch::Sender<usize>,
}

impl<const KEYED: bool> EventHandler for Hanging<KEYED> {
    const CONSUMER: ConsumerSpec = SPEC;
    const CONCURRENCY: usize = 4;
    type Event = Numbered;

    fn order_key(event: &Numbered) -> Option<&str> {
        (KEYED || event.key == "stuck").then_some(&event.key)
    }

    async fn handle(&self, event: &Received<Numbered>) -> Result<(), HandleError> {
        if event.event.key == "stuck" {
            let mut release = self.release.clone();
            let _ = release.wait_for(|open| *open).await;
        } else {
            self.handled.send_modify(|n| *n += 1);
        }
        Ok(())
    }
}

/// Publishes `stuck` events of key "stuck", then `others` of the keys `other_key`
/// gives, runs a [`Hanging`] handler over them and returns how many of the others it
/// handled once it handled them all, or gave up after 30 s.
async fn others_handled_behind_a_hanging_key<const KEYED: bool>(
    stuck: usize,
    others: &[String],
) -> usize {
    let test_nats = TestNats::new();
    let js = prepared(&test_nats).await;
    for n in 0..stuck {
        publish(&js, &test_nats, &format!("stuck:{n}")).await;
    }
    for (n, key) in others.iter().enumerate() {
        publish(&js, &test_nats, &format!("{key}:{n}")).await;
    }
    let (release, hanging) = tokio::sync::watch::channel(false);
    let (handled, mut counted) = tokio::sync::watch::channel(0);
    let running = Running::start(
        &js,
        &test_nats,
        Arc::new(Hanging::<KEYED> {
            release: hanging,
            handled,
        }),
    );
    let _ = tokio::time::timeout(
        Duration::from_secs(30),
        counted.wait_for(|n| *n >= others.len()),
    )
    .await;
    let seen = *counted.borrow();
    release.send(true).unwrap();
    running.stop().await;
    seen
}

#[tokio::test]
async fn a_lane_held_by_a_hanging_handler_does_not_stop_the_other_lanes() {
    let stuck_lane = platform::consumer::lane_of("stuck", 4);
    // Keys of the three other lanes: the stuck one's own wait behind it, as they must.
    let others: Vec<String> = (0..)
        .map(|n| format!("o{n}"))
        .filter(|key| platform::consumer::lane_of(key, 4) != stuck_lane)
        .take(500)
        .collect();
    // More than the stuck lane's queue and what the runner holds besides (256 + 300).
    let handled = others_handled_behind_a_hanging_key::<true>(600, &others).await;
    assert_eq!(
        handled, 500,
        "handled {handled} of the 500 events of other lanes"
    );
}

#[tokio::test]
async fn events_without_a_key_go_to_a_lane_with_room_not_behind_a_full_one() {
    let others: Vec<String> = (0..500).map(|n| format!("o{n}")).collect();
    let handled = others_handled_behind_a_hanging_key::<false>(300, &others).await;
    assert_eq!(
        handled, 500,
        "handled {handled} of the 500 events without a key"
    );
}

/// The value of `consumer_messages_total` for `durable` and `outcome`, 0 before the
/// series exists. The recorder is the process's: a test reading it runs its own durable.
fn outcomes(
    handle: &metrics_exporter_prometheus::PrometheusHandle,
    durable: &str,
    outcome: &str,
) -> u64 {
    let series = format!("consumer_messages_total{{consumer=\"{durable}\",outcome=\"{outcome}\"}}");
    handle
        .render()
        .lines()
        .find_map(|line| line.strip_prefix(&series))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0)
}

/// Two lanes, every event of one key: each hangs in its handler until `release` opens,
/// so the runner hands back what it holds beyond its lane (the other lane has room).
/// Once released, an event delivered more than `max_deliver` times (only ever handed
/// back) fails transiently on its first handling, as a database hiccup would.
struct HandedBack {
    release: tokio::sync::watch::Receiver<bool>,
    failed: Mutex<std::collections::HashSet<String>>,
    handled: tokio::sync::watch::Sender<usize>,
}

impl EventHandler for HandedBack {
    /// A patience of 1.5 s (0.5 + 1): the first hand-backs take a message past it.
    const CONSUMER: ConsumerSpec = ConsumerSpec {
        durable: "test-handed-back",
        max_deliver: 3,
        ..SPEC
    };
    const CONCURRENCY: usize = 2;
    type Event = Numbered;

    fn order_key(event: &Numbered) -> Option<&str> {
        Some(&event.key)
    }

    async fn handle(&self, event: &Received<Numbered>) -> Result<(), HandleError> {
        let mut release = self.release.clone();
        let _ = release.wait_for(|open| *open).await;
        if event.delivered > Self::CONSUMER.max_deliver
            && self.failed.lock().unwrap().insert(event.event.id.clone())
        {
            return Err(HandleError::Transient("database hiccup".to_owned()));
        }
        self.handled.send_modify(|n| *n += 1);
        Ok(())
    }
}

/// Messages delivered and not yet settled, and not yet delivered, on `durable`.
async fn unsettled(js: &jetstream::Context, test_nats: &TestNats, durable: &str) -> (usize, u64) {
    let info = js
        .get_stream(test_nats.namespace.name("WECHAT_INBOUND"))
        .await
        .unwrap()
        .get_consumer::<jetstream::consumer::pull::Config>(&test_nats.namespace.name(durable))
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .clone();
    (info.num_ack_pending, info.num_pending)
}

#[tokio::test]
async fn a_message_handed_back_from_a_full_lane_is_not_dead_lettered_at_its_first_failure() {
    let handle = platform::telemetry::metrics_handle();
    let durable = HandedBack::CONSUMER.durable;
    let test_nats = TestNats::new();
    let js = prepared(&test_nats).await;
    let total = 3_000;
    for n in 0..total {
        publish(&js, &test_nats, &format!("stuck:{n}")).await;
    }
    let (release, hanging) = tokio::sync::watch::channel(false);
    let (handled, mut counted) = tokio::sync::watch::channel(0);
    let handler = Arc::new(HandedBack {
        release: hanging,
        failed: Mutex::default(),
        handled,
    });
    let running = Running::start(&js, &test_nats, handler.clone());
    // The lane holds 257 and the runner keeps the oldest 100 it holds: the others take
    // turns being handed back. Three times as many hand-backs as there are of them and
    // one more: some message was handed back four times, past its `max_deliver` (3).
    let taking_turns = total as u64 - 357;
    for _ in 0..1_200 {
        if outcomes(&handle, durable, "handed_back") > 3 * taking_turns {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        outcomes(&handle, durable, "handed_back") > 3 * taking_turns,
        "the runner handed back {} messages",
        outcomes(&handle, durable, "handed_back")
    );
    release.send(true).unwrap();
    // Bounds only a failure: handled or dead-lettered, every message settles.
    let _ = tokio::time::timeout(Duration::from_secs(180), async {
        while unsettled(&js, &test_nats, durable).await != (0, 0) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    running.stop().await;
    let failed = handler.failed.lock().unwrap().len();
    assert!(
        failed > 0,
        "no message was handed back past its max_deliver"
    );
    assert_eq!(
        test_nats.dead_letters(&js).await,
        0,
        "messages only handed back were dead-lettered at their first failure ({failed} failed once)"
    );
    assert_eq!(*counted.borrow_and_update(), total);
}

/// One lane; the first delivery of `boom:0` panics in its handler, as a bug would.
#[derive(Default)]
struct Panicking {
    handled: Mutex<Vec<String>>,
}

impl EventHandler for Panicking {
    const CONSUMER: ConsumerSpec = ConsumerSpec {
        durable: "test-panicking",
        ..SPEC
    };
    type Event = Numbered;

    async fn handle(&self, event: &Received<Numbered>) -> Result<(), HandleError> {
        if event.event.key == "boom" && event.delivered == 1 {
            panic!("a handler bug");
        }
        self.handled.lock().unwrap().push(event.event.id.clone());
        Ok(())
    }
}

#[tokio::test]
async fn a_handler_that_panics_leaves_no_message_kept_from_redelivery() {
    let durable = Panicking::CONSUMER.durable;
    let test_nats = TestNats::new();
    let js = prepared(&test_nats).await;
    // The second waits in the lane's queue behind the first when it panics.
    publish(&js, &test_nats, "boom:0").await;
    publish(&js, &test_nats, "after:1").await;
    let handler = Arc::new(Panicking::default());
    let drain = Drain::new();
    let supervised = tokio::spawn(platform::consumer::supervise_consumer(
        js.clone(),
        test_nats.namespace.clone(),
        "test",
        handler.clone(),
        drain.clone(),
    ));
    // Bounds only a failure: more than twice `ack_wait` (30 s), far less than the 10
    // minutes a message is kept in progress.
    let _ = tokio::time::timeout(Duration::from_secs(75), async {
        while handler.handled.lock().unwrap().len() < 2 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    drain.begin();
    supervised.await.unwrap();
    let mut handled = handler.handled.lock().unwrap().clone();
    handled.sort();
    assert_eq!(handled, ["after:1", "boom:0"], "handled after the panic");
    assert_eq!(unsettled(&js, &test_nats, durable).await, (0, 0));
    assert_eq!(test_nats.dead_letters(&js).await, 0);
}

/// One lane with a 1 s time limit; every delivery of `stuck:*` never returns, as a
/// handler waiting on a lock or a dead connection would not.
#[derive(Default)]
struct Stuck {
    handled: Mutex<Vec<String>>,
}

impl EventHandler for Stuck {
    const CONSUMER: ConsumerSpec = ConsumerSpec {
        durable: "test-stuck",
        max_deliver: 2,
        ..SPEC
    };
    const HANDLE_TIMEOUT: Duration = Duration::from_secs(1);
    type Event = Numbered;

    async fn handle(&self, event: &Received<Numbered>) -> Result<(), HandleError> {
        if event.event.key == "stuck" {
            std::future::pending::<()>().await;
        }
        self.handled.lock().unwrap().push(event.event.id.clone());
        Ok(())
    }
}

#[tokio::test]
async fn a_handler_that_never_returns_frees_its_lane_and_its_message_is_dead_lettered() {
    let durable = Stuck::CONSUMER.durable;
    let test_nats = TestNats::new();
    let js = prepared(&test_nats).await;
    // The second waits in the one lane's queue behind the first.
    publish(&js, &test_nats, "stuck:0").await;
    publish(&js, &test_nats, "after:1").await;
    let handler = Arc::new(Stuck::default());
    let drain = Drain::new();
    let supervised = tokio::spawn(platform::consumer::supervise_consumer(
        js.clone(),
        test_nats.namespace.clone(),
        "test",
        handler.clone(),
        drain.clone(),
    ));
    // Bounds only a failure (before: never, the lane held by the first for good).
    let settled = tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            let handled = handler.handled.lock().unwrap().len();
            if handled == 1 && test_nats.dead_letters(&js).await == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    drain.begin();
    supervised.await.unwrap();
    assert!(settled.is_ok(), "the stuck handler held its lane");
    assert_eq!(*handler.handled.lock().unwrap(), ["after:1"]);
    assert_eq!(unsettled(&js, &test_nats, durable).await, (0, 0));
}

/// One lane taking batches of 8, three deliveries: `boom:*` panics every time, in the
/// batch and alone, with a long message; the others are counted by id.
struct AlwaysPanicking {
    handled: Mutex<HashMap<String, usize>>,
    count: tokio::sync::watch::Sender<usize>,
}

impl EventHandler for AlwaysPanicking {
    const CONSUMER: ConsumerSpec = ConsumerSpec {
        durable: "test-always-panicking",
        max_deliver: 3,
        ..SPEC
    };
    const BATCH: usize = 8;
    type Event = Numbered;

    async fn handle(&self, event: &Received<Numbered>) -> Result<(), HandleError> {
        if event.event.key == "boom" {
            panic!("a handler bug {}", "x".repeat(10_000));
        }
        *self
            .handled
            .lock()
            .unwrap()
            .entry(event.event.id.clone())
            .or_default() += 1;
        self.count.send_modify(|count| *count += 1);
        Ok(())
    }

    async fn handle_batch(&self, events: &[Received<Numbered>]) -> Result<(), HandleError> {
        if events.iter().any(|event| event.event.key == "boom") {
            panic!("a batch handler bug");
        }
        for event in events {
            self.handle(event).await?;
        }
        Ok(())
    }
}

#[tokio::test]
async fn an_event_that_always_panics_is_dead_lettered_and_the_rest_of_its_batch_acked_once() {
    let metrics = platform::telemetry::metrics_handle();
    let durable = AlwaysPanicking::CONSUMER.durable;
    let test_nats = TestNats::new();
    let js = prepared(&test_nats).await;
    let others = ["a:0", "a:1", "a:2", "a:4", "a:5"];
    for payload in ["a:0", "a:1", "a:2", "boom:3", "a:4", "a:5"] {
        publish(&js, &test_nats, payload).await;
    }
    let (count, mut counted) = tokio::sync::watch::channel(0);
    let handler = Arc::new(AlwaysPanicking {
        handled: Mutex::default(),
        count,
    });
    let running = Running::start(&js, &test_nats, handler.clone());
    let (_, letter) = first_dead_letter(&js, &test_nats).await;
    counted.wait_for(|n| *n >= others.len()).await.unwrap();
    running.stop().await;
    assert_eq!(letter.header.unwrap().event_id, "boom:3");
    assert_eq!(letter.deliveries, 3, "dead-lettered after max_deliver");
    assert!(
        letter
            .reason
            .starts_with("handler panicked: a handler bug xxx"),
        "{}",
        &letter.reason[..letter.reason.len().min(200)]
    );
    assert!(
        letter.reason.len() <= 4_200,
        "the panic's message is cut: {} bytes",
        letter.reason.len()
    );
    let handled = handler.handled.lock().unwrap().clone();
    let expected: HashMap<String, usize> = others.iter().map(|id| ((*id).to_owned(), 1)).collect();
    assert_eq!(handled, expected, "the others are handled once each");
    assert_eq!(unsettled(&js, &test_nats, durable).await, (0, 0));
    assert_eq!(test_nats.dead_letters(&js).await, 1);
    let series = format!("consumer_handler_panics_total{{consumer=\"{durable}\"}}");
    let panics: u64 = metrics
        .render()
        .lines()
        .find_map(|line| line.strip_prefix(&series))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0);
    assert!(panics >= 3, "{series} is {panics}");
}

/// Counts the events it handles, on a durable of its own, and waits for a dead letter to
/// be stored far longer than any test runs: a stalled dead-letter store holds each
/// attempt open until the test answers it, not until a 2 s timer fires.
struct BehindStalledStore {
    handled: tokio::sync::watch::Sender<usize>,
}

impl EventHandler for BehindStalledStore {
    const CONSUMER: ConsumerSpec = ConsumerSpec {
        durable: "test-behind-stalled-store",
        ..SPEC
    };
    const CONCURRENCY: usize = 4;
    const DEAD_LETTER_TIMEOUT: Duration = Duration::from_secs(600);
    type Event = Numbered;

    fn order_key(event: &Numbered) -> Option<&str> {
        Some(&event.key)
    }

    async fn handle(&self, _: &Received<Numbered>) -> Result<(), HandleError> {
        self.handled.send_modify(|n| *n += 1);
        Ok(())
    }
}

#[tokio::test]
async fn a_stalled_dead_letter_stream_does_not_hold_up_the_events_behind_an_undecodable_one() {
    let handle = platform::telemetry::metrics_handle();
    let durable = BehindStalledStore::CONSUMER.durable;
    let test_nats = TestNats::new();
    let js = prepared(&test_nats).await;
    // The dead-letter store stops answering: its stream is gone, and the test takes each
    // dead letter on its subjects and answers it only when it chooses.
    js.delete_stream(test_nats.namespace.name("DEADLETTER"))
        .await
        .unwrap();
    let client = test_nats.connect().await;
    let mut stalled = client
        .subscribe(test_nats.namespace.subject("deadletter.>"))
        .await
        .unwrap();
    client.flush().await.unwrap();
    let undecodable = 3;
    for n in 0..undecodable {
        publish(&js, &test_nats, &format!("undecodable-{n}")).await;
    }
    let good = 100;
    for n in 0..good {
        publish(&js, &test_nats, &format!("o{n}:{n}")).await;
    }
    let retried_before = outcomes(&handle, durable, "retry");
    let (handled, mut counted) = tokio::sync::watch::channel(0);
    // async-nats gives up on a PubAck after its context's timeout (5 s) too.
    let mut patient = js.clone();
    patient.set_timeout(BehindStalledStore::DEAD_LETTER_TIMEOUT);
    let running = Running::start(
        &patient,
        &test_nats,
        Arc::new(BehindStalledStore { handled }),
    );
    // Bounds only a failure: while dead-lettering held up the hand-out, nothing behind
    // the first undecodable message was handled until its attempt ended.
    let _ = tokio::time::timeout(Duration::from_secs(60), counted.wait_for(|n| *n >= good)).await;
    let seen = *counted.borrow();
    assert_eq!(
        seen, good,
        "handled {seen} of {good} while the dead-letter store held its attempts"
    );
    // Every dead letter is being attempted at once, and none has been answered.
    let mut held = Vec::new();
    for _ in 0..undecodable {
        let attempt = tokio::time::timeout(Duration::from_secs(30), stalled.next())
            .await
            .expect("every undecodable message is being dead-lettered")
            .unwrap();
        held.push(attempt);
    }
    assert_eq!(
        outcomes(&handle, durable, "retry") - retried_before,
        0,
        "a dead-letter attempt ended before the store answered it"
    );
    // The store answers with an error: each attempt ends then, and not before.
    for attempt in held {
        let reply = attempt.reply.expect("a dead letter waits for its PubAck");
        client
            .publish(
                reply,
                r#"{"error":{"code":503,"err_code":10039,"description":"stalled"}}"#.into(),
            )
            .await
            .unwrap();
    }
    client.flush().await.unwrap();
    // Stopping waits for the dead-lettering tasks, so every attempt has ended by now.
    running.stop().await;
    assert_eq!(
        outcomes(&handle, durable, "retry") - retried_before,
        undecodable,
        "each dead letter refused by the store comes back later"
    );
}

/// Pull requests waiting on the test consumer.
async fn waiting_requests(js: &jetstream::Context, test_nats: &TestNats) -> usize {
    js.get_stream(test_nats.namespace.name("WECHAT_INBOUND"))
        .await
        .unwrap()
        .get_consumer::<jetstream::consumer::pull::Config>(
            &test_nats.namespace.name(SLOW_REDELIVERY.durable),
        )
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .num_waiting
}

/// Pull requests waiting on the test consumer once they number `wanted`, or after 20 s
/// (which bounds only a failure) however many wait then.
async fn waiting_requests_reach(
    js: &jetstream::Context,
    test_nats: &TestNats,
    wanted: usize,
) -> usize {
    for _ in 0..400 {
        let waiting = waiting_requests(js, test_nats).await;
        if waiting >= wanted {
            return waiting;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    waiting_requests(js, test_nats).await
}

#[tokio::test]
async fn a_draining_replica_finishes_only_the_event_in_hand_and_hands_back_its_lanes_queue() {
    let test_nats = TestNats::new();
    let js = prepared(&test_nats).await;
    let total = 200;
    for n in 0..total {
        publish(&js, &test_nats, &format!("o{n}:{n}")).await;
    }
    let (open_old, gate) = tokio::sync::watch::channel(false);
    let old = Replica::new(gate);
    let old_running = Running::start(&js, &test_nats, old.clone());
    // All of them in the old replica: one in its handler, the rest in its lane's queue.
    for _ in 0..400 {
        if ack_pending(&js, &test_nats).await >= total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(ack_pending(&js, &test_nats).await, total);
    // The old replica's lane has room, so it has asked for more: one request waits.
    let old_asking = waiting_requests_reach(&js, &test_nats, 1).await;
    assert_eq!(
        old_asking, 1,
        "the old replica has {old_asking} requests waiting"
    );
    // A rolling update: the new replica is up and asking before the old one drains. It
    // must be: a message handed back while only the closed inbox's request waits is
    // lost until ack_wait on nats-server 2.9.10 (README, "Draining").
    let (_open_new, gate) = tokio::sync::watch::channel(true);
    let new = Replica::new(gate);
    let new_running = Running::start(&js, &test_nats, new.clone());
    let asking = waiting_requests_reach(&js, &test_nats, 2).await;
    assert_eq!(
        asking, 2,
        "{asking} requests waiting: the new replica is not asking before the drain"
    );
    old_running.drain.begin();
    // The event in hand finishes; the handler would take as long for each queued one.
    open_old.send(true).unwrap();
    old_running.task.await.unwrap().unwrap();
    let kept = old.handled();
    assert!(
        kept.len() <= 1,
        "the draining replica handled {} events after the drain began, not only the one in hand",
        kept.len()
    );
    // Far inside the 10 minutes a message not handed back waits for its ack_wait.
    let _ = tokio::time::timeout(Duration::from_secs(30), async {
        while kept.len() + new.handled().len() < total {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    new_running.stop().await;
    let mut all: Vec<String> = kept.into_iter().chain(new.handled()).collect();
    assert_eq!(all.len(), total, "handled {} of {total}", all.len());
    all.sort();
    all.dedup();
    assert_eq!(all.len(), total, "an event was handled twice");
}

/// The server delivers again what is not acked within 2 s.
const SHORT_ACK_WAIT: ConsumerSpec = ConsumerSpec {
    ack_wait: Duration::from_secs(2),
    ..SPEC
};

/// One lane taking 15 ms an event, as a handler calling a slow API: of 400 events
/// pulled at once, most wait in its queue (3.9 s for the last of 257), or in front of
/// it, longer than `ack_wait`. Records each event's deliveries as the handler saw them.
#[derive(Default)]
struct SlowLane {
    deliveries: Mutex<HashMap<String, Vec<i64>>>,
}

impl EventHandler for SlowLane {
    const CONSUMER: ConsumerSpec = SHORT_ACK_WAIT;
    type Event = Numbered;

    async fn handle(&self, event: &Received<Numbered>) -> Result<(), HandleError> {
        tokio::time::sleep(Duration::from_millis(15)).await;
        self.deliveries
            .lock()
            .unwrap()
            .entry(event.event.id.clone())
            .or_default()
            .push(event.delivered);
        Ok(())
    }
}

#[tokio::test]
async fn events_waiting_in_a_slow_lane_longer_than_ack_wait_are_delivered_and_handled_once() {
    let test_nats = TestNats::new();
    let js = prepared(&test_nats).await;
    let total = 400;
    for n in 0..total {
        publish(&js, &test_nats, &format!("o{n}:{n}")).await;
    }
    let handler = Arc::new(SlowLane::default());
    let running = Running::start(&js, &test_nats, handler.clone());
    let handled = || handler.deliveries.lock().unwrap().len();
    // 6 s of work at least; redeliveries would add to it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while (handled() < total || ack_pending(&js, &test_nats).await > 0)
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.stop().await;
    let deliveries = handler.deliveries.lock().unwrap().clone();
    assert_eq!(
        deliveries.len(),
        total,
        "handled {} of {total}",
        deliveries.len()
    );
    let mut again: Vec<(&String, &Vec<i64>)> = deliveries
        .iter()
        .filter(|(_, delivered)| delivered.len() > 1 || delivered[0] > 1)
        .collect();
    again.sort_by_key(|(_, delivered)| std::cmp::Reverse(delivered.len()));
    assert!(
        again.is_empty(),
        "{} of {total} events were delivered again while they waited, e.g. (event, deliveries seen) {:?}",
        again.len(),
        &again[..again.len().min(5)]
    );
}

/// One lane (the default) taking 1 ms an event: a backlog more than its queue and what
/// the runner may ask for holds the lane full while the runner has handed out all it
/// held and has nothing asked for.
#[derive(Default)]
struct SteadyLane {
    handled: Mutex<std::collections::HashSet<String>>,
}

impl EventHandler for SteadyLane {
    const CONSUMER: ConsumerSpec = SPEC;
    type Event = Numbered;

    async fn handle(&self, event: &Received<Numbered>) -> Result<(), HandleError> {
        tokio::time::sleep(Duration::from_millis(1)).await;
        self.handled.lock().unwrap().insert(event.event.id.clone());
        Ok(())
    }
}

#[tokio::test]
async fn a_backlog_larger_than_the_lane_and_the_requests_is_handled_to_its_end() {
    let test_nats = TestNats::new();
    let js = prepared(&test_nats).await;
    let total = 1_000;
    for n in 0..total {
        publish(&js, &test_nats, &format!("b{n}:{n}")).await;
    }
    let handler = Arc::new(SteadyLane::default());
    let running = Running::start(&js, &test_nats, handler.clone());
    let handled = || handler.handled.lock().unwrap().len();
    // About 1 s of work; the bound only ends a test that would otherwise hang.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while handled() < total && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.stop().await;
    assert_eq!(
        handled(),
        total,
        "the runner stopped pulling with the lane full and nothing held or asked for"
    );
}

// === the outbox ===

async fn outbox_db(db: &TestDb) -> sqlx::PgPool {
    let mut admin = sqlx::PgConnection::connect(&platform::testing::test_database_server())
        .await
        .unwrap();
    admin
        .execute(format!("CREATE DATABASE \"{}\"", db.name).as_str())
        .await
        .unwrap();
    let pool = sqlx::PgPool::connect(&db.url()).await.unwrap();
    pool.execute(outbox::SCHEMA).await.unwrap();
    pool
}

#[tokio::test]
async fn the_relay_publishes_what_committed_with_its_event_id_and_nothing_rolled_back() {
    let test_nats = TestNats::new();
    let js = prepared(&test_nats).await;
    let db = TestDb::new("outbox");
    let pool = outbox_db(&db).await;

    let mut tx = pool.begin().await.unwrap();
    let event = |id: &'static str| OutboxEvent {
        subject: "interaction.city.ticket.opened",
        event_id: id,
        payload: id.as_bytes(),
    };
    assert!(outbox::enqueue(&mut tx, event("e1")).await.unwrap());
    assert!(!outbox::enqueue(&mut tx, event("e1")).await.unwrap());
    tx.commit().await.unwrap();
    let mut rolled_back = pool.begin().await.unwrap();
    outbox::enqueue(&mut rolled_back, event("e2"))
        .await
        .unwrap();
    rolled_back.rollback().await.unwrap();

    let relay = Relay::new(
        "test",
        pool.clone(),
        js.clone(),
        test_nats.namespace.clone(),
    );
    assert_eq!(relay.pending().await.unwrap(), 1);
    let signal = OutboxSignal::new();
    let drain = Drain::new();
    let writers = drain.clone();
    drain.spawn(async move { writers.stopping().cancelled().await });
    let relay_drain = drain.clone();
    drain.spawn_final(
        relay
            .clone()
            .run(signal.clone(), Duration::from_secs(3600), async move {
                relay_drain.work_done().await
            }),
    );

    // Committed after the relay started: the signal, not the hour-long poll, sends it.
    let mut tx = pool.begin().await.unwrap();
    outbox::enqueue(&mut tx, event("e3")).await.unwrap();
    tx.commit().await.unwrap();
    signal.notify();

    let mut published = read_stream(&js, &test_nats, "INTERACTION").await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let message = published.next().await.unwrap().unwrap();
        let id = message
            .headers
            .as_ref()
            .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
            .map(|v| v.as_str().to_owned())
            .unwrap();
        assert_eq!(message.payload.as_ref(), id.as_bytes());
        ids.push(id);
    }
    assert_eq!(ids, ["e1", "e3"]);

    // Committed after the drain began: the relay's last pass still publishes it.
    drain.begin();
    let mut tx = pool.begin().await.unwrap();
    outbox::enqueue(&mut tx, event("e4")).await.unwrap();
    tx.commit().await.unwrap();
    assert!(drain.wait(Duration::from_secs(10)).await);
    assert_eq!(relay.pending().await.unwrap(), 0);
    let message = published.next().await.unwrap().unwrap();
    assert_eq!(message.payload.as_ref(), b"e4");
    pool.close().await;
}

#[tokio::test]
async fn an_event_too_large_for_nats_is_dead_lettered_and_the_events_behind_it_still_go_out() {
    let test_nats = TestNats::new();
    let js = prepared(&test_nats).await;
    let db = TestDb::new("outbox_oversized");
    let pool = outbox_db(&db).await;
    // An editor's 1.2 MB comment in an event: over nats-server's 1 MB max_payload.
    let huge = vec![b'x'; 1_200_000];
    let mut tx = pool.begin().await.unwrap();
    for (id, payload) in [("big", huge.as_slice()), ("after", b"after".as_slice())] {
        let event = OutboxEvent {
            subject: "content.city.article.submitted",
            event_id: id,
            payload,
        };
        outbox::enqueue(&mut tx, event).await.unwrap();
    }
    tx.commit().await.unwrap();

    let relay = Relay::new(
        "test",
        pool.clone(),
        js.clone(),
        test_nats.namespace.clone(),
    );
    let failed = relay.publish_pending().await;
    assert!(failed.is_ok(), "{failed:?}");
    assert_eq!(relay.pending().await.unwrap(), 0);
    let mut published = read_stream(&js, &test_nats, "CONTENT").await;
    let message = published.next().await.unwrap().unwrap();
    assert_eq!(message.payload.as_ref(), b"after");
    let (subject, letter) = first_dead_letter(&js, &test_nats).await;
    assert_eq!(
        subject,
        test_nats.namespace.subject("deadletter.test.outbox")
    );
    assert_eq!(letter.header.unwrap().event_id, "big");
    assert_eq!(letter.subject, "content.city.article.submitted");
    assert!(
        letter.reason.contains("1200000 bytes"),
        "reason: {}",
        letter.reason
    );
    pool.close().await;
}

#[tokio::test]
async fn the_purge_deletes_event_claims_older_than_any_redelivery_and_keeps_the_rest() {
    let test_nats = TestNats::new();
    let js = prepared(&test_nats).await;
    let db = TestDb::new("claims_purge");
    let pool = outbox_db(&db).await;
    let mut tx = pool.begin().await.unwrap();
    let ids = ["old-1", "old-2", "recent"];
    platform::db::claim_events(&mut tx, &ids).await.unwrap();
    tx.commit().await.unwrap();
    let retention = outbox::claim_retention();
    assert!(retention >= Duration::from_secs(30 * 24 * 3600));
    sqlx::query(
        "UPDATE processed_events SET processed_at = now() - make_interval(secs => $1) - interval '1 hour'
          WHERE event_id LIKE 'old-%'",
    )
    .bind(retention.as_secs_f64())
    .execute(&pool)
    .await
    .unwrap();
    let relay = Relay::new("test", pool.clone(), js, test_nats.namespace.clone());
    let (_, claims) = relay.purge_old().await.unwrap();
    assert_eq!(claims, 2);
    let left: Vec<String> = sqlx::query_scalar("SELECT event_id FROM processed_events")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(left, ["recent"]);
    // A redelivery of the recent event is still refused.
    let mut tx = pool.begin().await.unwrap();
    assert!(!platform::db::claim_event(&mut tx, "recent").await.unwrap());
    tx.rollback().await.unwrap();
    pool.close().await;
}

#[tokio::test]
async fn claim_events_says_which_ids_are_new_in_one_round_trip() {
    let db = TestDb::new("claims");
    let pool = outbox_db(&db).await;
    let mut tx = pool.begin().await.unwrap();
    assert!(platform::db::claim_event(&mut tx, "a").await.unwrap());
    assert_eq!(
        platform::db::claim_events(&mut tx, &["a", "b", "b", "c"])
            .await
            .unwrap(),
        [false, true, false, true]
    );
    tx.commit().await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    assert!(!platform::db::claim_event(&mut tx, "c").await.unwrap());
    tx.rollback().await.unwrap();
    pool.close().await;
}

/// Applies `Numbered` events through `apply_once_then`: each new event is recorded in
/// `applied`, and the batch adds each key's numbers to `sums` once it is through. The
/// event numbered `fail_on` fails its apply with a database error.
struct Summing {
    db: sqlx::PgPool,
    fail_on: Option<u32>,
}

impl Summing {
    async fn apply(&self, events: &[Received<Numbered>]) -> Result<Applied, HandleError> {
        let fail_on = self.fail_on;
        apply_once_then(
            &self.db,
            events,
            async move |tx, event| {
                if fail_on == Some(event.n) {
                    sqlx::query("SELECT 1 / 0").execute(&mut **tx).await?;
                }
                sqlx::query("INSERT INTO applied (event_id) VALUES ($1)")
                    .bind(&event.id)
                    .execute(&mut **tx)
                    .await?;
                Ok((event.key.clone(), i64::from(event.n)))
            },
            async |tx, numbers| {
                for (key, n) in numbers {
                    sqlx::query(
                        "INSERT INTO sums (key, total) VALUES ($1, $2)
                         ON CONFLICT (key) DO UPDATE SET total = sums.total + EXCLUDED.total",
                    )
                    .bind(key)
                    .bind(n)
                    .execute(&mut **tx)
                    .await?;
                }
                Ok(())
            },
        )
        .await
    }
}

// As a handler too, so the compiler checks that the helper's future is `Send`, as
// `handle_batch` requires.
impl EventHandler for Summing {
    const CONSUMER: ConsumerSpec = SPEC;
    const BATCH: usize = 16;
    type Event = Numbered;

    async fn handle(&self, event: &Received<Numbered>) -> Result<(), HandleError> {
        self.handle_batch(std::slice::from_ref(event)).await
    }

    async fn handle_batch(&self, events: &[Received<Numbered>]) -> Result<(), HandleError> {
        self.apply(events).await.map(|_| ())
    }
}

fn received(payloads: &[&str]) -> Vec<Received<Numbered>> {
    payloads
        .iter()
        .zip(1..)
        .map(|(payload, sequence)| Received {
            event: Numbered::decode(payload.as_bytes()).unwrap(),
            subject: "wechat.inbound.city.msg.text".to_owned(),
            delivered: 1,
            stream_sequence: sequence,
            stored_at: None,
        })
        .collect()
}

async fn summing_db(db: &TestDb) -> sqlx::PgPool {
    let pool = outbox_db(db).await;
    pool.execute(
        "CREATE TABLE applied (event_id text NOT NULL);
         CREATE TABLE sums (key text PRIMARY KEY, total bigint NOT NULL);",
    )
    .await
    .unwrap();
    pool
}

async fn applied_and_sums(pool: &sqlx::PgPool) -> (Vec<String>, Vec<(String, i64)>) {
    let applied = sqlx::query_scalar("SELECT event_id FROM applied ORDER BY event_id")
        .fetch_all(pool)
        .await
        .unwrap();
    let sums = sqlx::query_as("SELECT key, total FROM sums ORDER BY key")
        .fetch_all(pool)
        .await
        .unwrap();
    (applied, sums)
}

#[tokio::test]
async fn apply_once_applies_an_event_redelivered_in_a_later_batch_only_once() {
    let db = TestDb::new("apply_once");
    let pool = summing_db(&db).await;
    let handler = Summing {
        db: pool.clone(),
        fail_on: None,
    };
    let first = handler.apply(&received(&["a:1", "a:2"])).await.unwrap();
    assert_eq!(
        first,
        Applied {
            new: 2,
            redelivered: 0
        }
    );
    // a:2 again, and b:3 twice in one batch.
    let second = handler
        .apply(&received(&["a:2", "b:3", "b:3"]))
        .await
        .unwrap();
    assert_eq!(
        second,
        Applied {
            new: 1,
            redelivered: 2
        }
    );
    let (applied, sums) = applied_and_sums(&pool).await;
    assert_eq!(applied, ["a:1", "a:2", "b:3"]);
    assert_eq!(sums, [("a".to_owned(), 3), ("b".to_owned(), 3)]);
    pool.close().await;
}

#[tokio::test]
async fn an_error_applying_one_event_rolls_back_the_claims_of_the_whole_batch() {
    let db = TestDb::new("apply_once_fails");
    let pool = summing_db(&db).await;
    let batch = received(&["a:1", "a:2", "b:3"]);
    let failing = Summing {
        db: pool.clone(),
        fail_on: Some(2),
    };
    let error = failing.handle_batch(&batch).await.unwrap_err();
    assert!(
        matches!(&error, HandleError::Transient(reason) if reason.starts_with("database:")),
        "{error}"
    );
    let claims: i64 = sqlx::query_scalar("SELECT count(*) FROM processed_events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(claims, 0);
    assert_eq!(applied_and_sums(&pool).await, (vec![], vec![]));
    // The redelivery applies the whole batch, a:1 included.
    let handler = Summing {
        db: pool.clone(),
        fail_on: None,
    };
    handler.handle_batch(&batch).await.unwrap();
    let (applied, sums) = applied_and_sums(&pool).await;
    assert_eq!(applied, ["a:1", "a:2", "b:3"]);
    assert_eq!(sums, [("a".to_owned(), 3), ("b".to_owned(), 3)]);
    pool.close().await;
}

/// Two deliveries at most, a patience of 0.5 s: a message older than that at its first
/// failure has its count as its only budget, as one in a backlog after an outage has.
/// Redelivery by `ack_wait` far off, so only a hand-back brings a message back.
const DRAINED: ConsumerSpec = ConsumerSpec {
    durable: "test-drained",
    max_deliver: 2,
    ack_wait: Duration::from_secs(600),
    ..SPEC
};

/// One lane. While `gate` is closed the handler waits in it; with `fail_once`, each
/// event's first handling fails transiently, as a database hiccup would.
struct Drained {
    gate: tokio::sync::watch::Receiver<bool>,
    fail_once: bool,
    failed: Mutex<std::collections::HashSet<String>>,
    handled: Mutex<Vec<(String, i64)>>,
}

impl Drained {
    fn new(gate: tokio::sync::watch::Receiver<bool>, fail_once: bool) -> Arc<Self> {
        Arc::new(Self {
            gate,
            fail_once,
            failed: Mutex::default(),
            handled: Mutex::default(),
        })
    }
}

impl EventHandler for Drained {
    const CONSUMER: ConsumerSpec = DRAINED;
    type Event = Numbered;

    async fn handle(&self, event: &Received<Numbered>) -> Result<(), HandleError> {
        let mut gate = self.gate.clone();
        let _ = gate.wait_for(|open| *open).await;
        if self.fail_once && self.failed.lock().unwrap().insert(event.event.id.clone()) {
            return Err(HandleError::Transient("database hiccup".to_owned()));
        }
        self.handled
            .lock()
            .unwrap()
            .push((event.event.id.clone(), event.delivered));
        Ok(())
    }
}

/// Pull requests waiting on `durable` once they number `wanted`, or after 20 s (which
/// bounds only a failure) however many wait then.
async fn requests_waiting_on(
    js: &jetstream::Context,
    test_nats: &TestNats,
    durable: &str,
    wanted: usize,
) -> usize {
    let waiting = || async {
        let consumer = js
            .get_stream(test_nats.namespace.name("WECHAT_INBOUND"))
            .await
            .unwrap()
            .get_consumer::<jetstream::consumer::pull::Config>(&test_nats.namespace.name(durable))
            .await;
        match consumer {
            Ok(mut consumer) => consumer.info().await.map_or(0, |info| info.num_waiting),
            Err(_) => 0,
        }
    };
    for _ in 0..400 {
        let now = waiting().await;
        if now >= wanted {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    waiting().await
}

/// The limit platform/README.md states ("What a hand-back costs"): the replica that takes
/// what a drain handed back cannot tell that delivery from a failure.
#[tokio::test]
#[ignore = "known limit: a drain's hand-back counts as a delivery on the next replica"]
async fn a_message_a_draining_replica_handed_back_is_not_dead_lettered_at_its_first_failure() {
    let durable = DRAINED.durable;
    let test_nats = TestNats::new();
    let js = prepared(&test_nats).await;
    publish(&js, &test_nats, "o0:0").await;
    publish(&js, &test_nats, "o1:1").await;
    let (open_old, gate) = tokio::sync::watch::channel(false);
    let old = Drained::new(gate, false);
    let old_running = Running::start(&js, &test_nats, old.clone());
    // Made and asking (its lane has room), then one in its handler, the other in its
    // lane's queue.
    assert_eq!(requests_waiting_on(&js, &test_nats, durable, 1).await, 1);
    let _ = tokio::time::timeout(Duration::from_secs(20), async {
        while unsettled(&js, &test_nats, durable).await != (2, 0) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert_eq!(unsettled(&js, &test_nats, durable).await, (2, 0));
    // A rolling update: the new replica asks before the old one drains.
    let (_open_new, gate) = tokio::sync::watch::channel(true);
    let new = Drained::new(gate, true);
    let new_running = Running::start(&js, &test_nats, new.clone());
    assert_eq!(requests_waiting_on(&js, &test_nats, durable, 2).await, 2);
    old_running.drain.begin();
    open_old.send(true).unwrap();
    old_running.task.await.unwrap().unwrap();
    assert_eq!(old.handled.lock().unwrap().len(), 1, "the event in hand");
    // Bounds only a failure: handled or dead-lettered, the message settles.
    let _ = tokio::time::timeout(Duration::from_secs(30), async {
        while unsettled(&js, &test_nats, durable).await != (0, 0) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    new_running.stop().await;
    assert_eq!(
        test_nats.dead_letters(&js).await,
        0,
        "the message the drain handed back was dead-lettered at its first failure, \
         its hand-back counted as a failed delivery"
    );
    assert_eq!(new.handled.lock().unwrap().len(), 1);
}

/// As [`HandedBack`], but once released an event delivered more than once (handed back
/// at least once) first waits for another event, as a callback not applied yet would.
struct HandedBackThenWaiting {
    release: tokio::sync::watch::Receiver<bool>,
    waited: Mutex<std::collections::HashSet<String>>,
    handled: tokio::sync::watch::Sender<usize>,
}

impl EventHandler for HandedBackThenWaiting {
    /// A patience of 1.5 s, and one wait whatever a message's age (`ConsumerSpec::waits`).
    const CONSUMER: ConsumerSpec = ConsumerSpec {
        durable: "test-handed-back-waiting",
        max_deliver: 3,
        ..SPEC
    };
    const CONCURRENCY: usize = 2;
    type Event = Numbered;

    fn order_key(event: &Numbered) -> Option<&str> {
        Some(&event.key)
    }

    async fn handle(&self, event: &Received<Numbered>) -> Result<(), HandleError> {
        let mut release = self.release.clone();
        let _ = release.wait_for(|open| *open).await;
        if event.delivered > 1 && self.waited.lock().unwrap().insert(event.event.id.clone()) {
            return Err(HandleError::NotYet(
                "its callback is not applied".to_owned(),
            ));
        }
        self.handled.send_modify(|n| *n += 1);
        Ok(())
    }
}

#[tokio::test]
async fn a_message_handed_back_from_a_full_lane_is_not_dead_lettered_at_its_first_wait() {
    let handle = platform::telemetry::metrics_handle();
    let durable = HandedBackThenWaiting::CONSUMER.durable;
    let test_nats = TestNats::new();
    let js = prepared(&test_nats).await;
    let total = 600;
    for n in 0..total {
        publish(&js, &test_nats, &format!("stuck:{n}")).await;
    }
    let (release, hanging) = tokio::sync::watch::channel(false);
    let (handled, mut counted) = tokio::sync::watch::channel(0);
    let handler = Arc::new(HandedBackThenWaiting {
        release: hanging,
        waited: Mutex::default(),
        handled,
    });
    let running = Running::start(&js, &test_nats, handler.clone());
    // As in the test above: some message was handed back four times, 3.5 s of
    // backoffs at least, past its patience (1.5 s) and its one wait (delivered 5 times).
    let taking_turns = total as u64 - 357;
    for _ in 0..1_200 {
        if outcomes(&handle, durable, "handed_back") > 3 * taking_turns {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        outcomes(&handle, durable, "handed_back") > 3 * taking_turns,
        "the runner handed back {} messages",
        outcomes(&handle, durable, "handed_back")
    );
    release.send(true).unwrap();
    // Bounds only a failure: handled or dead-lettered, every message settles.
    let _ = tokio::time::timeout(Duration::from_secs(180), async {
        while unsettled(&js, &test_nats, durable).await != (0, 0) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    running.stop().await;
    let waited = handler.waited.lock().unwrap().len();
    assert!(waited > 0, "no message handed back waited");
    assert_eq!(
        test_nats.dead_letters(&js).await,
        0,
        "messages only handed back were dead-lettered at their first wait ({waited} waited once)"
    );
    assert_eq!(*counted.borrow_and_update(), total);
}
