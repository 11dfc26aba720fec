//! `WatchQueue` resumed with `after`: a desk program that lost its stream picks up
//! exactly where it left off, or is told plainly that it cannot.

use std::collections::HashMap;

use futures::TryStreamExt;
use prost::Message;
use proto::events::v1::{EventHeader, TicketChangeKind, TicketChanged};
use proto::interaction::v1::{QueueEvent, QueueEventKind, WatchQueueRequest};
use tonic::{Code, Status, Streaming};

use crate::helpers::{
    ADMIN_KEY, SOCIAL_AGENT_KEY, TRANSPORT_AGENT_KEY, TestApp, spawn_app, spawn_app_with,
};
use crate::queue::{announce_opened, next};

/// A watch of the key's queue, resumed after `after` when given: the stream and the
/// position it starts after (the `x-queue-position` header).
async fn watch_after(
    app: &TestApp,
    key: &'static str,
    after: Option<u64>,
) -> Result<(Streaming<QueueEvent>, u64), Status> {
    let response = app
        .client(Some(key))
        .await
        .watch_queue(WatchQueueRequest {
            after,
            ..Default::default()
        })
        .await?;
    let start = response
        .metadata()
        .get("x-queue-position")
        .expect("the watch names its start")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    Ok((response.into_inner(), start))
}

/// Announces that `id` moved from `from` to `to`, as AssignTicket does.
async fn announce_assigned(app: &TestApp, id: uuid::Uuid, from: &str, to: &str) {
    let event_id = format!("test:assigned:{id}:{to}");
    let event = TicketChanged {
        header: Some(EventHeader {
            event_id: event_id.clone(),
            account: "chenzhou".into(),
            occurred_at: None,
        }),
        kind: TicketChangeKind::Assigned as i32,
        ticket_id: id.to_string(),
        department: to.into(),
        previous_department: from.into(),
        ..Default::default()
    };
    sqlx::query("UPDATE tickets SET department = $2 WHERE id = $1")
        .bind(id)
        .bind(to)
        .execute(&app.db)
        .await
        .unwrap();
    sqlx::query("INSERT INTO outbox (event_id, subject, payload) VALUES ($1, $2, $3)")
        .bind(event_id)
        .bind("interaction.chenzhou.ticket.assigned")
        .bind(event.encode_to_vec())
        .execute(&app.db)
        .await
        .unwrap();
}

/// Reads `stream` until `id`'s event arrives: what came before it, and it.
async fn until(stream: &mut Streaming<QueueEvent>, id: uuid::Uuid) -> Vec<QueueEvent> {
    let mut seen = Vec::new();
    loop {
        let event = next(stream).await;
        let done = event.ticket.as_ref().unwrap().id == id.to_string();
        seen.push(event);
        if done {
            return seen;
        }
    }
}

fn ids(events: &[QueueEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| e.ticket.as_ref().unwrap().id.clone())
        .collect()
}

fn assert_increasing(events: &[QueueEvent]) {
    for pair in events.windows(2) {
        assert!(pair[0].position < pair[1].position, "{events:?}");
    }
}

#[tokio::test]
async fn a_resumed_watch_gets_each_change_made_while_away_once_then_the_live_ones() {
    let app = spawn_app().await;
    // The admin's watch stays open: it tells the test when the relay has published.
    let (mut all, _) = watch_after(&app, ADMIN_KEY, None).await.unwrap();
    let (mut social, _) = watch_after(&app, SOCIAL_AGENT_KEY, None).await.unwrap();
    let known = app.insert_ticket("social-security", "open", 0).await;
    announce_opened(&app, known, "social-security").await;
    let seen = next(&mut social).await;
    assert_eq!(seen.ticket.unwrap().id, known.to_string());
    until(&mut all, known).await;
    // The desk's link breaks.
    drop(social);

    // Meanwhile: a new ticket, the known one reassigned away, another department's.
    let new = app.insert_ticket("social-security", "open", 0).await;
    announce_opened(&app, new, "social-security").await;
    until(&mut all, new).await;
    announce_assigned(&app, known, "social-security", "transport").await;
    until(&mut all, known).await;
    let others = app.insert_ticket("transport", "open", 0).await;
    announce_opened(&app, others, "transport").await;
    until(&mut all, others).await;

    let (mut resumed, start) = watch_after(&app, SOCIAL_AGENT_KEY, Some(seen.position))
        .await
        .expect("the position is resumable");
    assert_eq!(start, seen.position);
    let live = app.insert_ticket("social-security", "open", 0).await;
    announce_opened(&app, live, "social-security").await;
    let events = until(&mut resumed, live).await;
    assert_eq!(
        ids(&events),
        [new, known, live].map(|id| id.to_string()),
        "each missed change once, in order, then the live one; never transport's own"
    );
    assert_eq!(events[1].kind, QueueEventKind::Assigned as i32);
    assert_eq!(
        events[1].ticket.as_ref().unwrap().department,
        "transport",
        "a replayed change shows the ticket as it is now"
    );
    assert!(events[0].position > seen.position);
    assert_increasing(&events);
    // Nothing is delivered twice after the live one either.
    let after_live = app.insert_ticket("social-security", "open", 0).await;
    announce_opened(&app, after_live, "social-security").await;
    assert_eq!(
        ids(&until(&mut resumed, after_live).await),
        [after_live.to_string()]
    );

    // Transport, resuming from the same point, gets its own changes only: the
    // ticket moved to it and its new one, nothing of social-security's.
    let (mut transport, _) = watch_after(&app, TRANSPORT_AGENT_KEY, Some(seen.position))
        .await
        .unwrap();
    let events = until(&mut transport, others).await;
    assert_eq!(ids(&events), [known, others].map(|id| id.to_string()));
    app.stop().await;
}

/// A replay re-reads the ticket as it is now, and a ticket moved away is no longer
/// the old department's to read: its queue learns where the ticket went, and nothing
/// of what the new department did with it (GetTicket answers NOT_FOUND for it).
#[tokio::test]
async fn a_ticket_moved_away_shows_the_old_queue_only_where_it_went() {
    let app = spawn_app().await;
    let (mut all, _) = watch_after(&app, ADMIN_KEY, None).await.unwrap();
    let (mut social, _) = watch_after(&app, SOCIAL_AGENT_KEY, None).await.unwrap();
    let moved = app.insert_ticket("social-security", "open", 0).await;
    announce_opened(&app, moved, "social-security").await;
    let seen = next(&mut social).await;
    until(&mut all, moved).await;
    drop(social);

    announce_assigned(&app, moved, "social-security", "transport").await;
    until(&mut all, moved).await;
    // Transport answers and closes it, its agent named.
    sqlx::query(
        "UPDATE tickets SET state = 'closed', assignee = '李明', closed_at = now(), rating = 2
          WHERE id = $1",
    )
    .bind(moved)
    .execute(&app.db)
    .await
    .unwrap();

    let (mut resumed, _) = watch_after(&app, SOCIAL_AGENT_KEY, Some(seen.position))
        .await
        .unwrap();
    let events = until(&mut resumed, moved).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, QueueEventKind::Assigned as i32);
    let ticket = events[0].ticket.clone().unwrap();
    assert_eq!(
        (ticket.id.as_str(), ticket.department.as_str()),
        (moved.to_string().as_str(), "transport"),
        "the old queue learns where the ticket went"
    );
    assert_eq!(
        (
            ticket.assignee.as_str(),
            ticket.state,
            ticket.closed_at,
            ticket.rating,
            ticket.summary.as_str()
        ),
        ("", 0, None, 0, ""),
        "and nothing of what transport did with it"
    );
    app.stop().await;
}

#[tokio::test]
async fn changes_racing_the_switch_from_replay_to_live_are_each_delivered_once() {
    // The relay publishes each change within moments (not a second's batch), so
    // they land while the resume reads the stream's end, starts its consumer and
    // replays.
    let app = spawn_app_with(&[("OUTBOX_POLL_INTERVAL", "5ms")]).await;
    let (mut all, _) = watch_after(&app, ADMIN_KEY, None).await.unwrap();
    // A watch that saw nothing resumes from its header's position.
    let (first, start) = watch_after(&app, SOCIAL_AGENT_KEY, None).await.unwrap();
    drop(first);
    let mut expected = Vec::new();
    for _ in 0..20 {
        let id = app.insert_ticket("social-security", "open", 0).await;
        announce_opened(&app, id, "social-security").await;
        expected.push(id);
    }
    until(&mut all, *expected.last().unwrap()).await;

    // More changes while the resume starts, replays and goes live.
    let mut racing = Vec::new();
    for _ in 0..20 {
        racing.push(app.insert_ticket("social-security", "open", 0).await);
    }
    let (resumed, ()) = tokio::join!(watch_after(&app, SOCIAL_AGENT_KEY, Some(start)), async {
        for id in &racing {
            announce_opened(&app, *id, "social-security").await;
            tokio::task::yield_now().await;
        }
    });
    let (mut resumed, _) = resumed.unwrap();
    expected.extend(&racing);
    let sentinel = app.insert_ticket("social-security", "open", 0).await;
    let mut events = Vec::new();
    let mut counts: HashMap<String, usize> = HashMap::new();
    while counts.len() < expected.len() {
        let event = next(&mut resumed).await;
        *counts
            .entry(event.ticket.as_ref().unwrap().id.clone())
            .or_default() += 1;
        events.push(event);
    }
    announce_opened(&app, sentinel, "social-security").await;
    events.extend(until(&mut resumed, sentinel).await);
    for id in &expected {
        let times = events
            .iter()
            .filter(|e| e.ticket.as_ref().unwrap().id == id.to_string())
            .count();
        assert_eq!(times, 1, "{id} delivered {times} times");
    }
    assert_eq!(
        events.len(),
        expected.len() + 1,
        "nothing else, nothing twice"
    );
    assert_increasing(&events);
    app.stop().await;
}

#[tokio::test]
async fn a_resume_the_stream_cannot_serve_is_out_of_range_and_says_to_relist() {
    let app = spawn_app_with(&[("WATCH_RESUME_LIMIT", "2")]).await;
    let (mut all, start) = watch_after(&app, ADMIN_KEY, None).await.unwrap();
    let mut last = uuid::Uuid::nil();
    for department in ["social-security", "transport", "social-security"] {
        last = app.insert_ticket(department, "open", 0).await;
        announce_opened(&app, last, department).await;
    }
    let events = until(&mut all, last).await;
    let refused = |result: Result<(Streaming<QueueEvent>, u64), Status>, what: &str| {
        let status = result.err().unwrap_or_else(|| panic!("{what}: resumed"));
        assert_eq!(status.code(), Code::OutOfRange, "{what}: {status:?}");
        assert!(status.message().contains("ListTickets"), "{status:?}");
        status
    };

    // Three changes behind (every department's count: each is read), over the limit.
    let status = refused(
        watch_after(&app, SOCIAL_AGENT_KEY, Some(start)).await,
        "too far",
    );
    assert!(
        status.message().contains("3 ticket changes behind"),
        "{status:?}"
    );
    // Two behind is within it.
    watch_after(&app, SOCIAL_AGENT_KEY, Some(events[0].position))
        .await
        .expect("within the limit");
    // A position no change has yet (another install's, or a recreated stream's).
    refused(
        watch_after(&app, SOCIAL_AGENT_KEY, Some(events[2].position + 100)).await,
        "ahead",
    );
    // Changes no longer kept (the stream's age limit, here a purge).
    let jetstream = async_nats::jetstream::new(app.nats().await);
    let stream = jetstream
        .get_stream(app.namespace().name("INTERACTION"))
        .await
        .unwrap();
    stream.purge().sequence(events[2].position).await.unwrap();
    let status = refused(
        watch_after(&app, SOCIAL_AGENT_KEY, Some(events[0].position)).await,
        "expired",
    );
    assert!(status.message().contains("no longer kept"), "{status:?}");
    watch_after(&app, SOCIAL_AGENT_KEY, Some(events[1].position))
        .await
        .expect("the next change is still kept");
    app.stop().await;
}

#[tokio::test]
async fn a_watch_whose_consumer_is_removed_ends_unavailable_and_resumes() {
    let app = spawn_app().await;
    let (mut watch, start) = watch_after(&app, SOCIAL_AGENT_KEY, None).await.unwrap();
    // A pushed consumer says nothing when it goes (deleted here, as a server restart
    // loses one kept in memory): the watch hears no heartbeat and ends.
    let jetstream = async_nats::jetstream::new(app.nats().await);
    let stream = jetstream
        .get_stream(app.namespace().name("INTERACTION"))
        .await
        .unwrap();
    let names: Vec<String> = stream.consumer_names().try_collect().await.unwrap();
    assert_eq!(names.len(), 1, "the watch's own consumer: {names:?}");
    stream.delete_consumer(&names[0]).await.unwrap();
    let missed = app.insert_ticket("social-security", "open", 0).await;
    announce_opened(&app, missed, "social-security").await;
    let ended = tokio::time::timeout(std::time::Duration::from_secs(30), watch.message())
        .await
        .expect("the watch ends within 30 s")
        .expect_err("the watch ends with an error, not an event or OK");
    assert_eq!(ended.code(), Code::Unavailable, "{ended:?}");
    let (mut resumed, _) = watch_after(&app, SOCIAL_AGENT_KEY, Some(start))
        .await
        .unwrap();
    assert_eq!(
        ids(&until(&mut resumed, missed).await),
        [missed.to_string()]
    );
    app.stop().await;
}

/// nats-server with the accounts production runs with (deploy/k8s/infra/nats-values.yaml,
/// rendered as the chart renders them by deploy/k8s/nats_check.py, fresh passwords),
/// so the service logs in as its own user with its own grants. Stopped when dropped.
struct ProductionNats {
    server: std::process::Child,
    dir: std::path::PathBuf,
    url: String,
    interaction_password: String,
}

impl ProductionNats {
    async fn start() -> Self {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .to_owned();
        let dir =
            std::env::temp_dir().join(format!("interaction-accounts-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        // check.sh's virtualenv has PyYAML; the system's python may too.
        let venv = root.join(".local/k8s-venv/bin/python");
        let python = if venv.exists() {
            venv
        } else {
            "python3".into()
        };
        let port = platform::testing::free_port();
        let secrets = dir.join("secrets");
        let rendered = std::process::Command::new(python)
            .arg(root.join("deploy/k8s/nats_check.py"))
            .args(["render", "--port", &port.to_string(), "--store"])
            .arg(dir.join("js"))
            .arg("--secrets")
            .arg(&secrets)
            .output()
            .expect("nats_check.py runs (python3 with PyYAML)");
        assert!(rendered.status.success(), "{rendered:?}");
        let conf = dir.join("nats.conf");
        std::fs::write(&conf, &rendered.stdout).unwrap();
        let mut server_env = Vec::new();
        let mut interaction_password = None;
        for line in std::fs::read_to_string(&secrets).unwrap().lines() {
            let mut fields = line.splitn(3, ' ');
            match (fields.next(), fields.next(), fields.next()) {
                (Some("server"), Some(name), Some(value)) => {
                    server_env.push((name.to_owned(), value.to_owned()))
                }
                (Some("user"), Some("interaction-svc"), Some(password)) => {
                    interaction_password = Some(password.to_owned())
                }
                _ => {}
            }
        }
        let server = std::process::Command::new("nats-server")
            .arg("-c")
            .arg(&conf)
            .envs(server_env)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.join("nats-server.log")).unwrap())
            .spawn()
            .expect("nats-server starts");
        let url = format!("nats://127.0.0.1:{port}");
        // The harness's `stack` user connects without credentials (no_auth_user); the
        // client retries until the server listens.
        let started = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            async_nats::ConnectOptions::new()
                .retry_on_initial_connect()
                .connect(&url)
                .await
                .unwrap()
                .flush()
                .await
        })
        .await;
        assert!(
            matches!(started, Ok(Ok(()))),
            "nats-server listens within 10 s"
        );
        Self {
            server,
            dir,
            url,
            interaction_password: interaction_password.expect("interaction-svc's password"),
        }
    }

    /// What the server refused someone (it logs every refusal).
    fn violations(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("nats-server.log"))
            .unwrap_or_default()
            .lines()
            .filter(|line| line.contains("Violation"))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for ProductionNats {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn a_watch_under_productions_nats_grants_replays_past_flow_control_and_goes_live() {
    // interaction-svc's user may create unnamed consumers on INTERACTION, read its own
    // inbox and answer flow control, but pull from no consumer there.
    let nats = ProductionNats::start().await;
    let app = spawn_app_with(&[
        ("NATS_URL", nats.url.as_str()),
        ("NATS_PREFIX", ""),
        ("NATS_USER", "interaction-svc"),
        ("NATS_PASSWORD", nats.interaction_password.as_str()),
    ])
    .await;
    let (watch, start) = watch_after(&app, SOCIAL_AGENT_KEY, None).await.unwrap();
    drop(watch);

    // Enough bytes of changes that the server asks for flow control several times
    // while replaying them (2.9's window starts at 2 MiB, a sixteenth of 32 MiB, asked
    // at half of it, and doubles on each answer): one ticket's, published as the relay
    // publishes them, each made 2 KiB long by its event id.
    let ticket = app.insert_ticket("social-security", "open", 0).await;
    let changed = TicketChanged {
        header: Some(EventHeader {
            event_id: "e".repeat(2048),
            account: "chenzhou".into(),
            occurred_at: None,
        }),
        kind: TicketChangeKind::Opened as i32,
        ticket_id: ticket.to_string(),
        department: "social-security".into(),
        ..Default::default()
    };
    let stack = async_nats::connect(&nats.url).await.unwrap();
    let jetstream = async_nats::jetstream::new(stack);
    const CHANGES: usize = 4000;
    let mut acks = Vec::with_capacity(CHANGES);
    for _ in 0..CHANGES {
        acks.push(
            jetstream
                .publish(
                    "interaction.chenzhou.ticket.opened",
                    changed.encode_to_vec().into(),
                )
                .await
                .unwrap(),
        );
    }
    for ack in acks {
        ack.await.unwrap();
    }

    let (mut resumed, _) = watch_after(&app, SOCIAL_AGENT_KEY, Some(start))
        .await
        .expect("the watch starts under the service's own grants");
    let mut last = start;
    for _ in 0..CHANGES {
        let event = next(&mut resumed).await;
        assert!(event.position > last, "in order, once each");
        last = event.position;
    }
    let live = app.insert_ticket("social-security", "open", 0).await;
    announce_opened(&app, live, "social-security").await;
    assert_eq!(
        ids(&until(&mut resumed, live).await),
        [live.to_string()],
        "then the live change, nothing else"
    );
    assert_eq!(nats.violations(), Vec::<String>::new());
    app.stop().await;
}

#[tokio::test]
async fn a_quiet_queue_told_of_progress_resumes_after_other_queues_busy_changes() {
    let app = spawn_app_with(&[("WATCH_RESUME_LIMIT", "5")]).await;
    let (mut all, _) = watch_after(&app, ADMIN_KEY, None).await.unwrap();
    let mut social = app
        .client(Some(SOCIAL_AGENT_KEY))
        .await
        .watch_queue(WatchQueueRequest {
            progress: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    // Another department is busy: more changes than a resume replays.
    let mut last = uuid::Uuid::nil();
    for _ in 0..6 {
        last = app.insert_ticket("transport", "open", 0).await;
        announce_opened(&app, last, "transport").await;
    }
    let busy = until(&mut all, last).await.last().unwrap().position;
    // The quiet queue hears no ticket, but how far it has read.
    let mut told = 0;
    while told < busy {
        let event = next(&mut social).await;
        assert_eq!(event.kind, QueueEventKind::Progress as i32, "{event:?}");
        assert!(event.ticket.is_none(), "{event:?}");
        assert!(event.position > told, "{event:?}");
        told = event.position;
    }
    assert_eq!(told, busy);
    drop(social);

    let mine = app.insert_ticket("social-security", "open", 0).await;
    announce_opened(&app, mine, "social-security").await;
    until(&mut all, mine).await;
    let (mut resumed, _) = watch_after(&app, SOCIAL_AGENT_KEY, Some(told))
        .await
        .expect("resumable from the last progress");
    assert_eq!(ids(&until(&mut resumed, mine).await), [mine.to_string()]);

    // A watch that did not ask for progress (a client older than it) never gets an
    // event without a ticket.
    let (mut plain, _) = watch_after(&app, SOCIAL_AGENT_KEY, None).await.unwrap();
    for _ in 0..3 {
        last = app.insert_ticket("transport", "open", 0).await;
        announce_opened(&app, last, "transport").await;
    }
    until(&mut all, last).await;
    let own = app.insert_ticket("social-security", "open", 0).await;
    announce_opened(&app, own, "social-security").await;
    assert_eq!(ids(&until(&mut plain, own).await), [own.to_string()]);
    app.stop().await;
}
