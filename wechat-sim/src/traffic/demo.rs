//! Demo traffic: a few dozen citizens of a city account doing what citizens do,
//! at a steady rate, each callback checked and logged.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng as _;
use rand::seq::IndexedRandom as _;
use tokio::task::JoinSet;

use super::TrafficError;
use super::action::{CitizenAction, Follower};
use super::check::{CheckedReply, ReplyCheck};
use super::client::{CallbackClient, RetryPolicy};
use super::signer::CallbackSigner;
use crate::api_server::SimState;

/// Questions citizens ask, about social security, medical insurance, buses and hukou.
const QUESTIONS: &[&str] = &[
    "你好，社保卡丢了怎么补办？",
    "请问灵活就业人员社保每个月交多少钱？",
    "社保缴费记录在哪里可以查询？",
    "退休人员养老金资格认证怎么在手机上办？",
    "医保异地就医备案怎么办理？",
    "城乡居民医保今年的缴费截止日期是哪天？",
    "门诊慢特病的医保报销比例是多少？",
    "孩子出生后怎么办理医保参保？",
    "12路公交车末班车几点？",
    "公交卡可以在手机上充值吗？老年人免费乘车卡怎么申请？",
    "从火车站到市第一人民医院坐几路公交？",
    "新生儿落户需要带哪些材料？",
    "户口迁移需要本人到场吗？",
    "身份证过期了，异地可以换领吗？",
    "居住证办理要多久？",
    "你好，请问周六政务大厅上班吗？",
];

const MENU_KEYS: &[&str] = &[
    "MENU_SOCIAL_SECURITY",
    "MENU_MEDICAL_INSURANCE",
    "MENU_BUS",
    "MENU_HUKOU",
    "MENU_HOTLINE",
];

const VIEW_URLS: &[&str] = &[
    "https://gov.example.cn/guide/social-security",
    "https://gov.example.cn/bus/realtime",
    "https://gov.example.cn/hall/appointment",
];

const QR_SCENES: &[&str] = &["1001", "1002", "hall_window_3", "bus_stop_23"];

const PLACES: &[(f64, f64, &str)] = &[
    (25.770_5, 113.014_6, "湖南省郴州市北湖区人民东路市民之家"),
    (25.792_1, 113.036_2, "湖南省郴州市苏仙区郴州站"),
    (
        25.781_4,
        113.024_9,
        "湖南省郴州市北湖区国庆北路市第一人民医院",
    ),
];

const VOICE_TEXTS: &[&str] = &[
    "我想问一下医保报销需要什么材料",
    "社保卡怎么激活",
    "去高铁站坐几路车",
];

/// How the demo runs.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// Gateway base URL.
    pub gateway: String,
    /// Callbacks per second (all citizens together).
    pub rate: f64,
    /// Simulated citizens.
    pub citizens: usize,
    /// WeChat's timeout and attempts.
    pub retry: RetryPolicy,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            gateway: "http://127.0.0.1:8080".to_owned(),
            rate: 2.0,
            citizens: 36,
            retry: RetryPolicy::default(),
        }
    }
}

/// Totals of a demo run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DemoSummary {
    /// Callbacks sent.
    pub sent: u64,
    /// Accepted answers (`success` or a valid reply).
    pub ok: u64,
    /// Of those, passive replies.
    pub replies: u64,
    /// Refused answers or no answer after every attempt.
    pub failed: u64,
    /// Callbacks that needed a retry.
    pub retried: u64,
}

/// One simulated citizen.
#[derive(Debug)]
struct Citizen {
    follower: Follower,
    subscribed: bool,
}

/// Picks what a citizen does next: a non-follower follows (sometimes by QR code);
/// a follower mostly asks questions, sometimes uses the menu, sends a location,
/// a picture or a voice message, and now and then unfollows.
fn next_action(citizen: &Citizen, rng: &mut impl rand::Rng) -> CitizenAction {
    let pick = |rng: &mut _, list: &[&str]| (*list.choose(rng).unwrap_or(&"")).to_owned();
    if !citizen.subscribed {
        return if rng.random_bool(0.4) {
            CitizenAction::SubscribeWithScene {
                scene: pick(rng, QR_SCENES),
            }
        } else {
            CitizenAction::Subscribe
        };
    }
    let place = PLACES.choose(rng).copied().unwrap_or(PLACES[0]);
    match rng.random_range(0..100) {
        0..40 => CitizenAction::Text {
            content: pick(rng, QUESTIONS),
        },
        40..55 => CitizenAction::Click {
            key: pick(rng, MENU_KEYS),
        },
        55..60 => CitizenAction::View {
            url: pick(rng, VIEW_URLS),
            menu_id: Some("401".to_owned()),
        },
        60..68 => CitizenAction::LocationEvent {
            latitude: place.0,
            longitude: place.1,
            precision: 30.0 + rng.random_range(0.0..100.0),
        },
        68..75 => CitizenAction::Location {
            latitude: place.0,
            longitude: place.1,
            scale: 15,
            label: place.2.to_owned(),
        },
        75..85 => CitizenAction::Voice {
            media_id: format!("voice_{:016x}", rng.random::<u64>()),
            format: "amr".to_owned(),
            recognition: pick(rng, VOICE_TEXTS),
        },
        85..96 => CitizenAction::Image {
            pic_url: format!(
                "http://mmbiz.qpic.cn/mmbiz_jpg/{:016x}/0",
                rng.random::<u64>()
            ),
            media_id: format!("image_{:016x}", rng.random::<u64>()),
        },
        _ => CitizenAction::Unsubscribe,
    }
}

/// Runs the demo until `shutdown` completes; records each citizen's interaction in
/// `state` (the mock API's customer-service windows) when given.
pub async fn run(
    signer: Arc<CallbackSigner>,
    state: Option<SimState>,
    config: DemoConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<DemoSummary, TrafficError> {
    let client = CallbackClient::new(&config.gateway, config.retry)?;
    let check = Arc::new(ReplyCheck::new(&signer));
    let run_tag = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
    let mut citizens: Vec<Citizen> = (0..config.citizens.max(1))
        .map(|i| Citizen {
            follower: Follower::numbered(&run_tag, i as u64),
            subscribed: false,
        })
        .collect();
    let appid = signer.account().appid.clone();
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / config.rate.max(0.01)));
    let mut in_flight: JoinSet<Outcome> = JoinSet::new();
    let mut summary = DemoSummary::default();
    tracing::info!(
        gateway = %config.gateway,
        account = %signer.account().id,
        mode = %signer.account().mode,
        citizens = citizens.len(),
        rate = config.rate,
        "demo traffic started"
    );
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(done) = in_flight.join_next() => {
                if let Ok(outcome) = done {
                    summary.add(&outcome);
                }
                continue;
            }
            _ = ticker.tick() => {}
        }
        let (index, action) = {
            let mut rng = rand::rng();
            let index = rng.random_range(0..citizens.len());
            (index, next_action(&citizens[index], &mut rng))
        };
        let citizen = &mut citizens[index];
        let callback = signer.sign(&mut citizen.follower, &action)?;
        match &action {
            CitizenAction::Unsubscribe => citizen.subscribed = false,
            CitizenAction::Subscribe | CitizenAction::SubscribeWithScene { .. } => {
                citizen.subscribed = true;
            }
            _ => {}
        }
        if let Some(state) = &state {
            // The API side's 48-hour window follows what the citizen did.
            let recorded = if matches!(action, CitizenAction::Unsubscribe) {
                state.unfollow(&appid, &callback.openid)
            } else {
                state.record_interaction(&appid, &callback.openid, chrono::Utc::now())
            };
            if let Err(e) = recorded {
                tracing::debug!(error = %e, "interaction not recorded in the mock api");
            }
        }
        let client = client.clone();
        let check = check.clone();
        in_flight.spawn(async move {
            let delivery = client.deliver(&callback).await;
            let attempts = delivery.attempts.len();
            let latency_ms = delivery.elapsed().as_secs_f64() * 1000.0;
            let Some((status, body)) = delivery.answer() else {
                tracing::warn!(action = callback.label, openid = %callback.openid, attempts, "callback never answered");
                return Outcome { ok: false, replied: false, attempts };
            };
            match check.check(&callback, status, body) {
                Ok(CheckedReply::NoReply) => {
                    tracing::info!(action = callback.label, openid = %callback.openid, status, attempts, latency_ms, "callback acknowledged, no passive reply");
                    Outcome { ok: true, replied: false, attempts }
                }
                Ok(CheckedReply::Reply { reply, encrypted }) => {
                    tracing::info!(action = callback.label, openid = %callback.openid, status, attempts, latency_ms, encrypted, reply = ?reply.body, "callback answered with a passive reply");
                    Outcome { ok: true, replied: true, attempts }
                }
                Err(e) => {
                    tracing::warn!(action = callback.label, openid = %callback.openid, status, attempts, latency_ms, reason = e.reason(), error = %e, "reply refused");
                    Outcome { ok: false, replied: false, attempts }
                }
            }
        });
    }
    // Give in-flight callbacks the time WeChat would (every attempt), then stop.
    let grace = config.retry.timeout * config.retry.max_attempts.max(1);
    let drain = async {
        while let Some(done) = in_flight.join_next().await {
            if let Ok(outcome) = done {
                summary.add(&outcome);
            }
        }
    };
    if tokio::time::timeout(grace, drain).await.is_err() {
        in_flight.abort_all();
    }
    tracing::info!(?summary, "demo traffic stopped");
    Ok(summary)
}

struct Outcome {
    ok: bool,
    replied: bool,
    attempts: usize,
}

impl DemoSummary {
    fn add(&mut self, outcome: &Outcome) {
        self.sent += 1;
        if outcome.ok {
            self.ok += 1;
        } else {
            self.failed += 1;
        }
        self.replies += u64::from(outcome.replied);
        self.retried += u64::from(outcome.attempts > 1);
    }
}
