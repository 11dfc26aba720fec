//! What an outage of a dependency does to events in flight: a PostgreSQL outage of
//! a failover's length delays events instead of dead-lettering them, a dead letter
//! that cannot be written brings the message back, an install's existing durable
//! takes a release's consumer settings, and an outbox pass after a silent NATS link
//! loss does not hold its rows for a timeout per row. Real NATS and PostgreSQL.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer};
use platform::consumer::{EventHandler, HandleError, Received, StreamEvent, run_consumer};
use platform::db::{DbConfig, connect_and_migrate};
use platform::nats::{self, ConsumerSpec, PATIENT_DELIVERIES, WECHAT_INBOUND};
use platform::outbox::{self, OutboxEvent, Relay};
use platform::shutdown::Drain;
use platform::testing::{ChaosProxy, TestDb, TestNats};
use sqlx::Executor;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("tests/migrations");

#[derive(Debug, Clone)]
struct Text(String);

impl StreamEvent for Text {
    fn decode(payload: &[u8]) -> Result<Self, String> {
        Ok(Self(
            std::str::from_utf8(payload)
                .map_err(|e| e.to_string())?
                .to_owned(),
        ))
    }
    fn event_id(&self) -> &str {
        &self.0
    }
}

async fn publish(js: &jetstream::Context, t: &TestNats, payload: &str) {
    platform::testing::publish_event(
        js,
        &t.namespace,
        "wechat.inbound.city.msg.text",
        payload,
        payload.as_bytes().to_vec(),
    )
    .await;
}

/// Polls `done` every 100 ms until it holds, for at most `within`.
async fn until<F: std::future::Future<Output = bool>>(
    within: Duration,
    what: &str,
    mut done: impl FnMut() -> F,
) {
    let deadline = Instant::now() + within;
    while !done().await {
        assert!(Instant::now() < deadline, "{what} within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const OUTAGE: ConsumerSpec = ConsumerSpec {
    stream: WECHAT_INBOUND,
    durable: "outage",
    filter_subject: "wechat.inbound.>",
    max_deliver: PATIENT_DELIVERIES,
    ack_wait: Duration::from_secs(30),
    max_ack_pending: nats::DEFAULT_MAX_ACK_PENDING,
};

struct DbHandler {
    pool: sqlx::PgPool,
    failures: Mutex<HashMap<String, i64>>,
    applied: AtomicUsize,
}

impl EventHandler for DbHandler {
    const CONSUMER: ConsumerSpec = OUTAGE;
    type Event = Text;
    async fn handle(&self, event: &Received<Text>) -> Result<(), HandleError> {
        if let Err(error) = sqlx::query("SELECT 1").execute(&self.pool).await {
            self.failures
                .lock()
                .unwrap()
                .insert(event.event.0.clone(), event.delivered);
            return Err(HandleError::database(error));
        }
        self.applied.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// The services' consumers gave up after 5 deliveries, 7.5 s into an outage: a
/// CloudNativePG failover dead-lettered every event it caught.
#[tokio::test]
async fn a_postgres_outage_delays_events_and_dead_letters_none() {
    let t = TestNats::new();
    let js = jetstream::new(t.connect().await);
    nats::provision_streams(&js, &t.namespace, &nats::ALL_STREAMS)
        .await
        .unwrap();
    let db = TestDb::new("outage");
    {
        let env = platform::Env::from_pairs([("DATABASE_URL", db.url())]);
        let pool = connect_and_migrate(&DbConfig::from_env(&env, "x").unwrap(), &MIGRATOR)
            .await
            .unwrap();
        pool.close().await;
    }
    let proxy = ChaosProxy::start(&db.url()).await;
    let env = platform::Env::from_pairs([("DATABASE_URL", proxy.url())]);
    let pool = connect_and_migrate(&DbConfig::from_env(&env, "x").unwrap(), &MIGRATOR)
        .await
        .unwrap();
    let handler = Arc::new(DbHandler {
        pool,
        failures: Mutex::default(),
        applied: AtomicUsize::new(0),
    });
    let drain = Drain::new();
    let task = tokio::spawn(run_consumer(
        js.clone(),
        t.namespace.clone(),
        "outage-test",
        handler.clone(),
        drain.clone(),
    ));
    proxy.cut();
    for i in 0..3 {
        publish(&js, &t, &format!("o{i}")).await;
    }
    // Past the old budget: every event has failed a sixth delivery.
    until(
        Duration::from_secs(90),
        "six failed deliveries each",
        || {
            let failures = handler.failures.lock().unwrap().clone();
            async move { failures.len() == 3 && failures.values().all(|d| *d >= 6) }
        },
    )
    .await;
    assert_eq!(t.dead_letters(&js).await, 0, "dead-lettered into an outage");
    proxy.restore();
    until(Duration::from_secs(90), "all three applied", || {
        let applied = handler.applied.load(Ordering::SeqCst);
        async move { applied == 3 }
    })
    .await;
    assert_eq!(t.dead_letters(&js).await, 0);
    drain.begin();
    let _ = task.await;
}

const LAST: ConsumerSpec = ConsumerSpec {
    stream: WECHAT_INBOUND,
    durable: "last-delivery",
    filter_subject: "wechat.inbound.>",
    max_deliver: 2,
    ack_wait: Duration::from_secs(3),
    max_ack_pending: nats::DEFAULT_MAX_ACK_PENDING,
};

#[derive(Default)]
struct AlwaysTransient {
    deliveries: AtomicI64,
}

impl EventHandler for AlwaysTransient {
    const CONSUMER: ConsumerSpec = LAST;
    type Event = Text;
    async fn handle(&self, event: &Received<Text>) -> Result<(), HandleError> {
        self.deliveries.store(event.delivered, Ordering::SeqCst);
        Err(HandleError::Transient(
            "database: pool timed out".to_owned(),
        ))
    }
}

/// On its last delivery a message's dead letter could not be written (no DEADLETTER
/// stream, as while JetStream elects its leader): JetStream's own max_deliver then
/// never delivered it again, so it was neither handled nor dead-lettered.
#[tokio::test]
async fn a_dead_letter_that_cannot_be_written_brings_the_message_back() {
    let t = TestNats::new();
    let js = jetstream::new(t.connect().await);
    nats::provision_streams(&js, &t.namespace, &[WECHAT_INBOUND])
        .await
        .unwrap();
    publish(&js, &t, "lost?").await;
    let handler = Arc::new(AlwaysTransient::default());
    let drain = Drain::new();
    let task = tokio::spawn(run_consumer(
        js.clone(),
        t.namespace.clone(),
        "last-delivery-test",
        handler.clone(),
        drain.clone(),
    ));
    until(Duration::from_secs(30), "the last delivery", || {
        let delivered = handler.deliveries.load(Ordering::SeqCst);
        async move { delivered >= LAST.max_deliver }
    })
    .await;
    nats::provision_streams(&js, &t.namespace, &nats::ALL_STREAMS)
        .await
        .unwrap();
    until(Duration::from_secs(30), "the dead letter", || {
        let js = js.clone();
        let t = &t;
        async move { t.dead_letters(&js).await == 1 }
    })
    .await;
    drain.begin();
    let _ = task.await;
}

/// `get_or_create_consumer` returned an existing durable as it was: a release that
/// changed a consumer's settings never reached an install made before it.
#[tokio::test]
async fn an_existing_durable_takes_the_releases_consumer_settings() {
    let t = TestNats::new();
    let js = jetstream::new(t.connect().await);
    nats::provision_streams(&js, &t.namespace, &nats::ALL_STREAMS)
        .await
        .unwrap();
    let durable = t.namespace.name(OUTAGE.durable);
    // As an earlier release left it.
    js.get_stream(t.namespace.name(WECHAT_INBOUND.name))
        .await
        .unwrap()
        .create_consumer(consumer::pull::Config {
            durable_name: Some(durable.clone()),
            filter_subject: t.namespace.subject(OUTAGE.filter_subject),
            ack_policy: consumer::AckPolicy::Explicit,
            max_deliver: 5,
            ack_wait: Duration::from_secs(10),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut provisioned = nats::provision_consumer(&js, &t.namespace, &OUTAGE)
        .await
        .unwrap();
    let config = provisioned.info().await.unwrap().config.clone();
    assert_eq!(config.max_deliver, -1, "the runner decides when to give up");
    assert_eq!(config.ack_wait, OUTAGE.ack_wait);
}

/// A relay pass awaited its acks one by one, each with its own 5 s timeout from when
/// it was awaited: after a silent link loss a pass of 8 rows held their locks 40 s
/// (500 rows: most of an hour).
#[tokio::test]
async fn an_outbox_pass_after_a_silent_link_loss_ends_within_one_timeout() {
    let t = TestNats::new();
    let direct = jetstream::new(t.connect().await);
    nats::provision_streams(&direct, &t.namespace, &nats::ALL_STREAMS)
        .await
        .unwrap();
    let db = TestDb::new("outbox_outage");
    let env = platform::Env::from_pairs([("DATABASE_URL", db.url())]);
    let pool = connect_and_migrate(&DbConfig::from_env(&env, "x").unwrap(), &MIGRATOR)
        .await
        .unwrap();
    pool.execute(outbox::SCHEMA).await.unwrap();
    for i in 0..8 {
        let mut tx = pool.begin().await.unwrap();
        let id = format!("e{i}");
        outbox::enqueue(
            &mut tx,
            OutboxEvent {
                subject: "interaction.city.ticket.opened",
                event_id: &id,
                payload: b"x",
            },
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    let proxy = ChaosProxy::start(t.url()).await;
    let client = async_nats::connect(proxy.url()).await.unwrap();
    let relay = Relay::new(
        "outage-test",
        pool.clone(),
        jetstream::new(client),
        t.namespace.clone(),
    );
    proxy.blackhole();
    let started = Instant::now();
    let failed = relay.publish_batch().await;
    let took = started.elapsed();
    assert!(failed.is_err(), "nothing was acknowledged");
    assert!(
        took < Duration::from_secs(20),
        "one pass held its rows {took:?}: a timeout per row"
    );
    // The link is torn down (the client reconnects) and NATS is reachable again.
    proxy.cut();
    proxy.restore();
    let unpublished = || {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM outbox WHERE published_at IS NULL")
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    until(Duration::from_secs(60), "the rows published", || {
        let relay = &relay;
        async move {
            let _ = relay.publish_batch().await;
            unpublished().await == 0
        }
    })
    .await;
}
