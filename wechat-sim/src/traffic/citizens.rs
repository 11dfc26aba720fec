//! Counted citizen traffic for the chaos and soak runs (`deploy/dev/chaos.sh`,
//! `deploy/dev/soak.sh`): the mock WeChat API in process, citizens of the demo account
//! following, writing and tapping the menu at a fixed rate, and optionally a department
//! agent answering their tickets over gRPC. Unlike `demo`, every callback's fate is
//! written down (its `event_id`, the last status, the attempts), so a run can be checked
//! against what the services applied, one event at a time.
//!
//! The callbacks' CSV is written when the traffic ends (first to `FILE.tmp`, then
//! renamed, so its appearance tells a script the traffic is over); the mock API keeps
//! serving until SIGTERM, for the script's `/sim/calls` and `/sim/faults`.

use std::collections::{HashMap, HashSet};
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use platform::accounts::DEMO_ACCOUNT;
use platform::config::parse_duration;
use proto::interaction::v1::interaction_service_client::InteractionServiceClient;
use proto::interaction::v1::{
    GetTicketRequest, ListTicketsRequest, ReplyToTicketRequest, TicketState,
};
use rand::Rng as _;
use rand::seq::IndexedRandom as _;
use tokio::task::JoinSet;
use tonic::transport::Channel;

use super::action::{CitizenAction, Follower};
use super::client::{AttemptOutcome, CallbackClient, RetryPolicy};
use super::signer::CallbackSigner;
use super::{CallbackAccount, Mode};
use crate::api_server::{self, SimConfig, SimState};

const QUESTIONS: &[&str] = &[
    "你好，社保卡丢了怎么补办？",
    "医保异地就医备案怎么办理？",
    "12路公交车末班车几点？",
    "新生儿落户需要带哪些材料？",
    "居住证办理要多久？",
    "城乡居民医保今年的缴费截止日期是哪天？",
];
const MENU_KEYS: &[&str] = &["MENU_SOCIAL_SECURITY", "MENU_BUS", "MENU_HUKOU"];
const QR_SCENES: &[&str] = &["1001", "hall_window_3"];

/// `wechat-sim citizens`: counted traffic against a gateway (chaos and soak runs).
#[derive(clap::Args, Debug)]
pub struct CitizensArgs {
    /// The gateway's base URL (or a balancer in front of several).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    gateway: String,
    /// Callbacks per second, all citizens together.
    #[arg(long, default_value_t = 50.0)]
    rate: f64,
    /// How long to send.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    duration: Duration,
    /// Distinct citizens.
    #[arg(long, default_value_t = 500)]
    citizens: usize,
    /// Where the mock WeChat API listens.
    #[arg(long, default_value = "127.0.0.1:9100")]
    api_listen: SocketAddr,
    /// The callbacks' CSV: event_id,label,status,attempts,latency_ms,sent_at_ms
    /// (status 0: never answered).
    #[arg(long)]
    out: PathBuf,
    /// interaction-svc's gRPC URL: an agent answers open tickets while traffic runs.
    #[arg(long)]
    grpc: Option<String>,
    /// The agent's API key (an admin or the default department's agent).
    #[arg(long, env = "CITIZENS_API_KEY", default_value = "")]
    api_key: String,
    /// The answers' CSV: ticket_id,text,outcome.
    #[arg(long)]
    answers_out: Option<PathBuf>,
    /// Tickets the agent answers per round (one round a second).
    #[arg(long, default_value_t = 3)]
    answers_per_round: usize,
    /// WeChat's timeout per attempt (3 attempts in all).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    retry_timeout: Duration,
}

/// One callback's fate.
struct Sent {
    event_id: String,
    label: &'static str,
    /// 0 when no attempt got an answer.
    status: u16,
    attempts: usize,
    latency_ms: f64,
    sent_at_ms: i64,
}

/// Runs the traffic (and the agent), writes the CSVs, then serves the mock API until
/// SIGTERM or Ctrl-C.
pub async fn run(args: CitizensArgs) -> anyhow::Result<()> {
    let account = CallbackAccount {
        id: DEMO_ACCOUNT.id.to_owned(),
        appid: DEMO_ACCOUNT.appid.to_owned(),
        original_id: DEMO_ACCOUNT.original_id.to_owned(),
        token: DEMO_ACCOUNT.token.to_owned(),
        aes_key: DEMO_ACCOUNT.encoding_aes_key.to_owned(),
        mode: Mode::Safe,
    };
    let signer = Arc::new(CallbackSigner::new(account)?);
    let state = SimState::new(SimConfig::default());
    let listener = tokio::net::TcpListener::bind(args.api_listen).await?;
    tracing::info!(addr = %listener.local_addr()?, "mock wechat api listening");
    let api = tokio::spawn(api_server::serve(
        listener,
        state.clone(),
        platform::shutdown_signal(),
    ));

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let agent = match &args.grpc {
        Some(url) => {
            let channel = Channel::from_shared(url.clone())?
                .timeout(Duration::from_secs(10))
                .connect_lazy();
            let agent = Agent {
                client: InteractionServiceClient::new(channel),
                key: format!("Bearer {}", args.api_key),
                per_round: args.answers_per_round.max(1),
            };
            Some(tokio::spawn(agent.run(stop_rx)))
        }
        None => None,
    };

    let sent = send(&signer, &state, &args).await?;
    let _ = stop_tx.send(true);
    let answers = match agent {
        Some(agent) => agent.await?,
        None => Vec::new(),
    };
    if let Some(path) = &args.answers_out {
        write_atomically(path, |w| {
            writeln!(w, "ticket_id,text,outcome")?;
            for (ticket, text, outcome) in &answers {
                writeln!(w, "{ticket},{text},{outcome}")?;
            }
            Ok(())
        })?;
    }
    let answered_200 = sent.iter().filter(|s| s.status == 200).count();
    let unanswered = sent.iter().filter(|s| s.status == 0).count();
    write_atomically(&args.out, |w| {
        writeln!(w, "event_id,label,status,attempts,latency_ms,sent_at_ms")?;
        for s in &sent {
            writeln!(
                w,
                "{},{},{},{},{:.1},{}",
                s.event_id, s.label, s.status, s.attempts, s.latency_ms, s.sent_at_ms
            )?;
        }
        Ok(())
    })?;
    writeln!(
        std::io::stdout().lock(),
        "{}",
        serde_json::json!({
            "sent": sent.len(),
            "answered_200": answered_200,
            "never_answered": unanswered,
            "retried": sent.iter().filter(|s| s.attempts > 1).count(),
            "answers": answers.len(),
        })
    )?;
    tracing::info!("traffic over; the mock api serves until SIGTERM");
    api.await??;
    Ok(())
}

struct Citizen {
    follower: Follower,
    subscribed: bool,
}

/// The demo's mix narrowed to what the checks can count: follows (some by QR
/// scene), questions, menu taps and a few unfollows.
fn next_action(citizen: &Citizen, rng: &mut impl rand::Rng) -> CitizenAction {
    let pick = |rng: &mut _, list: &[&str]| (*list.choose(rng).unwrap_or(&"")).to_owned();
    if !citizen.subscribed {
        return if rng.random_bool(0.3) {
            CitizenAction::SubscribeWithScene {
                scene: pick(rng, QR_SCENES),
            }
        } else {
            CitizenAction::Subscribe
        };
    }
    match rng.random_range(0..100) {
        0..65 => CitizenAction::Text {
            content: pick(rng, QUESTIONS),
        },
        65..95 => CitizenAction::Click {
            key: pick(rng, MENU_KEYS),
        },
        _ => CitizenAction::Unsubscribe,
    }
}

async fn send(
    signer: &Arc<CallbackSigner>,
    state: &SimState,
    args: &CitizensArgs,
) -> anyhow::Result<Vec<Sent>> {
    let client = CallbackClient::new(
        &args.gateway,
        RetryPolicy {
            timeout: args.retry_timeout,
            ..RetryPolicy::default()
        },
    )?;
    let run_tag = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
    let mut citizens: Vec<Citizen> = (0..args.citizens.max(1))
        .map(|i| Citizen {
            follower: Follower::numbered(&run_tag, i as u64),
            subscribed: false,
        })
        .collect();
    let appid = signer.account().appid.clone();
    let account_id = signer.account().id.clone();
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate.max(0.01)));
    let total = (args.rate * args.duration.as_secs_f64()).round() as usize;
    let mut in_flight: JoinSet<Sent> = JoinSet::new();
    let mut sent = Vec::with_capacity(total);
    tracing::info!(gateway = %args.gateway, rate = args.rate, total, "citizens started");
    for _ in 0..total {
        ticker.tick().await;
        while let Some(done) = in_flight.try_join_next() {
            sent.push(done?);
        }
        let (index, action) = {
            let mut rng = rand::rng();
            let index = rng.random_range(0..citizens.len());
            (index, next_action(&citizens[index], &mut rng))
        };
        let citizen = &mut citizens[index];
        let callback = signer.sign(&mut citizen.follower, &action)?;
        match action {
            CitizenAction::Unsubscribe => {
                citizen.subscribed = false;
                let _ = state.unfollow(&appid, &callback.openid);
            }
            _ => {
                citizen.subscribed = true;
                let _ = state.record_interaction(&appid, &callback.openid, chrono::Utc::now());
            }
        }
        let plain = callback.plain_xml.as_bytes();
        let event_id = wechat::message::InboundMessage::parse(plain)?.dedup_key(&account_id, plain);
        let client = client.clone();
        in_flight.spawn(async move {
            let sent_at_ms = chrono::Utc::now().timestamp_millis();
            let started = Instant::now();
            let delivery = client.deliver(&callback).await;
            let status = delivery
                .attempts
                .iter()
                .rev()
                .find_map(|a| match &a.outcome {
                    AttemptOutcome::Answered { status, .. } => Some(*status),
                    _ => None,
                })
                .unwrap_or(0);
            Sent {
                event_id,
                label: callback.label,
                status,
                attempts: delivery.attempts.len(),
                latency_ms: started.elapsed().as_secs_f64() * 1000.0,
                sent_at_ms,
            }
        });
    }
    while let Some(done) = in_flight.join_next().await {
        sent.push(done?);
    }
    Ok(sent)
}

/// A department agent: once a second, answers a few open tickets it has not
/// answered yet. After an error that leaves it unknown whether the answer was taken
/// (the service died mid-call), it looks for its text in the ticket's thread before
/// trying again, as a person would, so it never answers one ticket twice itself.
struct Agent {
    client: InteractionServiceClient<Channel>,
    key: String,
    per_round: usize,
}

impl Agent {
    async fn run(
        mut self,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> Vec<(String, String, String)> {
        let mut done: HashMap<String, (String, String)> = HashMap::new();
        let mut unsure: HashSet<String> = HashSet::new();
        let mut round = tokio::time::interval(Duration::from_secs(1));
        let mut stopping_since: Option<Instant> = None;
        loop {
            round.tick().await;
            if *stop.borrow_and_update() && stopping_since.is_none() {
                stopping_since = Some(Instant::now());
            }
            // After the traffic: settle the unsure ones (at most 30 s), answer nothing new.
            if let Some(since) = stopping_since
                && (unsure.is_empty() || since.elapsed() > Duration::from_secs(30))
            {
                break;
            }
            for id in unsure.clone() {
                match self.answered_in_thread(&id).await {
                    Some(true) => {
                        unsure.remove(&id);
                        done.insert(id.clone(), (text_for(&id), "in_thread".to_owned()));
                    }
                    Some(false) => {
                        unsure.remove(&id);
                    }
                    None => {}
                }
            }
            if stopping_since.is_some() {
                continue;
            }
            let listed = self
                .client
                .list_tickets(self.request(ListTicketsRequest {
                    states: vec![TicketState::Open as i32],
                    page_size: 50,
                    ..Default::default()
                }))
                .await;
            let Ok(listed) = listed else { continue };
            let fresh: Vec<String> = listed
                .into_inner()
                .tickets
                .into_iter()
                .map(|t| t.id)
                .filter(|id| !done.contains_key(id) && !unsure.contains(id))
                .take(self.per_round)
                .collect();
            for id in fresh {
                let text = text_for(&id);
                let reply = self
                    .client
                    .reply_to_ticket(self.request(ReplyToTicketRequest {
                        id: id.clone(),
                        text: text.clone(),
                        agent: "chaos-agent".to_owned(),
                        ..Default::default()
                    }))
                    .await;
                match reply {
                    Ok(r) => {
                        let delivery = r.into_inner().delivery;
                        done.insert(id, (text, format!("delivery_{delivery}")));
                    }
                    Err(status) => match status.code() {
                        tonic::Code::FailedPrecondition
                        | tonic::Code::InvalidArgument
                        | tonic::Code::NotFound => {
                            done.insert(id, (text, format!("refused_{:?}", status.code())));
                        }
                        // Unavailable (WeChat busy: nothing recorded) and anything that
                        // may have reached the service: look before trying again.
                        _ => {
                            unsure.insert(id);
                        }
                    },
                }
            }
        }
        let mut answers: Vec<_> = done
            .into_iter()
            .map(|(id, (text, outcome))| (id, text, outcome))
            .collect();
        answers.extend(
            unsure
                .into_iter()
                .map(|id| (id.clone(), text_for(&id), "unknown".to_owned())),
        );
        answers
    }

    /// Whether the agent's answer is in the ticket's thread; `None` when the service
    /// cannot tell now.
    async fn answered_in_thread(&mut self, id: &str) -> Option<bool> {
        let ticket = self
            .client
            .get_ticket(self.request(GetTicketRequest { id: id.to_owned() }))
            .await
            .ok()?
            .into_inner();
        let text = text_for(id);
        Some(ticket.thread.iter().any(|m| m.text == text))
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Ok(value) = self.key.parse() {
            request.metadata_mut().insert("authorization", value);
        }
        request
    }
}

/// The answer to ticket `id`: unique, so WeChat's record shows each answer's sends.
fn text_for(id: &str) -> String {
    format!("chaos-answer-{id}")
}

fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    write(&mut file)?;
    file.flush()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    Ok(())
}
