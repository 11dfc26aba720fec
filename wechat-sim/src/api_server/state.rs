//! The simulated WeChat: accounts, tokens, followers, windows, faults and the call log.
//!
//! Everything sits behind one mutex in [`SimState`]; no lock is held across an await.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::job_callbacks::MassJobEnd;

/// The demo account's appid, used when no account is configured.
pub const DEMO_APPID: &str = platform::accounts::DEMO_ACCOUNT.appid;
/// The demo account's AppSecret.
pub const DEMO_SECRET: &str = platform::accounts::DEMO_ACCOUNT.secret;

/// The kind of an Official Account; it decides mass-send quotas and template access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    /// 订阅号: one mass send a day, no template messages.
    Subscription,
    /// 服务号: four mass sends a month, template messages allowed.
    #[default]
    Service,
}

/// One simulated account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimAccount {
    /// The appid.
    pub appid: String,
    /// The AppSecret the token endpoints check.
    pub secret: String,
    /// The account kind.
    #[serde(default)]
    pub kind: AccountKind,
}

impl SimAccount {
    /// Creates a service account.
    pub fn new(appid: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            appid: appid.into(),
            secret: secret.into(),
            kind: AccountKind::Service,
        }
    }

    /// Returns the demo account.
    pub fn demo() -> Self {
        Self::new(DEMO_APPID, DEMO_SECRET)
    }
}

/// How the simulated WeChat behaves.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The accounts it knows.
    pub accounts: Vec<SimAccount>,
    /// An access token's lifetime (WeChat: 7200 s).
    pub token_ttl: Duration,
    /// How long a superseded token keeps working (WeChat: about 5 min).
    pub token_grace: Duration,
    /// How close to expiry `stable_token` starts handing out a successor (WeChat: 5 min).
    pub stable_renew_before: Duration,
    /// The minimum gap between two `force_refresh` stable-token calls (WeChat: 30 s).
    pub force_refresh_interval: Duration,
    /// The page size of `user/get` (WeChat: 10,000).
    pub follower_page_size: usize,
    /// The customer-service window after a citizen's interaction (WeChat: 48 h).
    pub cs_window: Duration,
    /// Customer-service messages allowed per window (WeChat: 20).
    pub cs_window_cap: u32,
    /// How many `freepublish/get` polls report "publishing" before the job succeeds.
    pub publish_polls: u32,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            accounts: vec![SimAccount::demo()],
            token_ttl: Duration::from_secs(7200),
            token_grace: Duration::from_secs(300),
            stable_renew_before: Duration::from_secs(300),
            force_refresh_interval: Duration::from_secs(30),
            follower_page_size: 10_000,
            cs_window: Duration::from_secs(48 * 3600),
            cs_window_cap: 20,
            publish_polls: 1,
        }
    }
}

/// A WeChat error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WxErr {
    /// The `errcode`.
    pub code: i64,
    /// The `errmsg`.
    pub msg: String,
    /// The `msg_id` some answers carry (45065: the mass send already taken).
    pub msg_id: Option<u64>,
}

impl WxErr {
    pub(crate) fn new(code: i64, msg: impl Into<String>) -> Self {
        Self {
            code,
            msg: msg.into(),
            msg_id: None,
        }
    }
}

/// One API call as the mock received and answered it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordedCall {
    /// Order of arrival, from 1.
    pub seq: u64,
    /// When it arrived.
    pub at: DateTime<Utc>,
    /// The HTTP method.
    pub method: String,
    /// The path, e.g. `/cgi-bin/message/custom/send`.
    pub path: String,
    /// The query parameters (the access token included: this is a simulator).
    pub query: BTreeMap<String, String>,
    /// The JSON body, if any.
    pub body: Option<Value>,
    /// The account the call was for, when the mock could tell.
    pub appid: Option<String>,
    /// The `errcode` answered (0 for success).
    pub errcode: i64,
}

/// Faults to inject, posted to `POST /sim/faults`; absent fields leave settings unchanged.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FaultRequest {
    /// Answer the next N API calls with -1 "system busy".
    #[serde(default)]
    pub busy: Option<u32>,
    /// Only calls whose path starts with this prefix count for `busy`.
    #[serde(default)]
    pub busy_path: Option<String>,
    /// The `errcode` the `busy` calls are answered with instead of -1, for another
    /// refusal of a call not carried out (e.g. 45011, the per-minute limit, or 45009,
    /// the daily quota).
    #[serde(default)]
    pub busy_errcode: Option<i64>,
    /// Carry the `busy` calls out before answering them busy, as WeChat may: the
    /// message went out, the draft was published, and the caller is told -1.
    #[serde(default)]
    pub busy_after_effect: Option<bool>,
    /// Carry out the next N API calls but answer each with HTTP 502 instead of its
    /// result, as a proxy that lost WeChat's answer would: the call took effect and
    /// the caller cannot know it.
    #[serde(default)]
    pub lose_answers: Option<u32>,
    /// Only calls whose path starts with this prefix count for `lose_answers`.
    #[serde(default)]
    pub lose_path: Option<String>,
    /// Delay every API call by this many milliseconds (0 turns it off).
    #[serde(default)]
    pub latency_ms: Option<u64>,
    /// Revoke the live tokens of this appid at once (40001 from then on).
    #[serde(default)]
    pub revoke_token: Option<String>,
    /// Answer the next N authenticated calls with 40001 although their token stays
    /// current: WeChat rejecting a token that `stable_token` in normal mode still
    /// hands out, which only `force_refresh` replaces.
    #[serde(default)]
    pub reject_tokens: Option<u32>,
    /// Make every remembered mass-send `clientmsgid` this many seconds older, as if
    /// that time had passed: 60 ends the minute of 45066, 86400 makes WeChat forget
    /// them (a repeated `clientmsgid` is then sent again).
    #[serde(default)]
    pub age_client_msg_ids_secs: Option<u64>,
    /// Hold the next API call whose path starts with this prefix, before it is
    /// served, until [`SimState::release_held`] ([`SimState::held`] awaits the
    /// hold): a caller stalled mid-call, at a point a test chooses.
    #[serde(default)]
    pub hold_path: Option<String>,
}

#[derive(Debug, Default)]
pub(crate) struct Faults {
    pub(crate) busy: u32,
    pub(crate) busy_path: Option<String>,
    pub(crate) busy_errcode: Option<i64>,
    pub(crate) busy_after_effect: bool,
    pub(crate) lose: u32,
    pub(crate) lose_path: Option<String>,
    pub(crate) reject: u32,
    pub(crate) latency: Duration,
    pub(crate) hold_path: Option<String>,
}

/// A held call's two signals: held (awaited by a test), released (awaited by the call).
#[derive(Debug, Default)]
struct HoldGate {
    held: tokio::sync::Notify,
    release: tokio::sync::Notify,
}

#[derive(Debug)]
pub(crate) struct TokenRec {
    pub(crate) appid: String,
    pub(crate) expires_at: DateTime<Utc>,
    pub(crate) superseded_at: Option<DateTime<Utc>>,
    pub(crate) revoked: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Follower {
    pub(crate) openid: String,
    pub(crate) subscribed: bool,
    pub(crate) subscribe_time: DateTime<Utc>,
    pub(crate) tags: Vec<u64>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    pub(crate) opened_at: DateTime<Utc>,
    pub(crate) sent: u32,
}

#[derive(Debug)]
pub(crate) struct Publish {
    pub(crate) media_id: String,
    pub(crate) articles: usize,
    pub(crate) polls: u32,
    /// The `publish_status` `freepublish/get` reports once the polls are done (0:
    /// published).
    pub(crate) outcome: u32,
}

/// A mass send taken under a `clientmsgid`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientMsg {
    pub(crate) taken_at: DateTime<Utc>,
    pub(crate) msg_id: u64,
}

#[derive(Debug)]
pub(crate) struct Account {
    pub(crate) secret: String,
    pub(crate) kind: AccountKind,
    pub(crate) classic_token: Option<String>,
    pub(crate) stable_token: Option<String>,
    pub(crate) force_refreshes: Vec<DateTime<Utc>>,
    pub(crate) followers: Vec<Follower>,
    pub(crate) follower_index: HashMap<String, usize>,
    pub(crate) windows: HashMap<String, Window>,
    pub(crate) mass_sends: Vec<DateTime<Utc>>,
    /// The `clientmsgid`s of mass sends taken, as WeChat remembers them: for 24
    /// hours (45065 within, a new send after), and refusing any retry within a minute
    /// of the send (45066).
    pub(crate) mass_client_ids: HashMap<String, ClientMsg>,
    pub(crate) previews: Vec<DateTime<Utc>>,
    pub(crate) menu: Option<Value>,
    /// Conditional menus by `menuid` (`menu/addconditional`).
    pub(crate) conditional_menus: BTreeMap<u64, Value>,
    pub(crate) drafts: HashMap<String, Value>,
    pub(crate) publishes: HashMap<String, Publish>,
    /// How each mass send's job ended, by its `msg_id`: its `msg_status` as
    /// `message/mass/get` reports it, and its `MASSSENDJOBFINISH`.
    pub(crate) mass_jobs: HashMap<u64, MassJobEnd>,
    pub(crate) tags: BTreeMap<u64, String>,
}

impl Account {
    fn new(account: &SimAccount) -> Self {
        Self {
            secret: account.secret.clone(),
            kind: account.kind,
            classic_token: None,
            stable_token: None,
            force_refreshes: Vec::new(),
            followers: Vec::new(),
            follower_index: HashMap::new(),
            windows: HashMap::new(),
            mass_sends: Vec::new(),
            mass_client_ids: HashMap::new(),
            previews: Vec::new(),
            menu: None,
            conditional_menus: BTreeMap::new(),
            drafts: HashMap::new(),
            publishes: HashMap::new(),
            mass_jobs: HashMap::new(),
            tags: BTreeMap::new(),
        }
    }

    /// Adds `openid` as a follower, or re-subscribes it.
    pub(crate) fn follow(&mut self, openid: &str, at: DateTime<Utc>) {
        match self.follower_index.get(openid) {
            Some(&i) => {
                let follower = &mut self.followers[i];
                if !follower.subscribed {
                    follower.subscribed = true;
                    follower.subscribe_time = at;
                }
            }
            None => {
                self.follower_index
                    .insert(openid.to_owned(), self.followers.len());
                self.followers.push(Follower {
                    openid: openid.to_owned(),
                    subscribed: true,
                    subscribe_time: at,
                    tags: Vec::new(),
                });
            }
        }
    }

    pub(crate) fn follower(&self, openid: &str) -> Option<&Follower> {
        self.follower_index.get(openid).map(|&i| &self.followers[i])
    }

    pub(crate) fn follower_mut(&mut self, openid: &str) -> Option<&mut Follower> {
        self.follower_index
            .get(openid)
            .map(|&i| &mut self.followers[i])
    }
}

#[derive(Debug)]
pub(crate) struct World {
    pub(crate) config: SimConfig,
    pub(crate) accounts: HashMap<String, Account>,
    pub(crate) tokens: HashMap<String, TokenRec>,
    pub(crate) calls: Vec<RecordedCall>,
    pub(crate) faults: Faults,
    pub(crate) next_id: u64,
    /// The permanent materials `material/add_material` made and no delete removed
    /// since: media id -> the appid of the account holding it (another account's
    /// delete of it is 40007, as WeChat answers).
    pub(crate) materials: HashMap<String, String>,
    /// Where job-finish callbacks go (`job_callbacks.rs`); none by default.
    pub(crate) job_callbacks: Option<Arc<super::job_callbacks::JobCallbacks>>,
    /// How the next publish jobs end as `freepublish/get` reports them (0, success,
    /// once this is empty).
    pub(crate) next_publish_outcomes: VecDeque<u32>,
    /// How the next mass sends' jobs end ([`MassJobEnd::sent`] once this is empty).
    pub(crate) next_mass_ends: VecDeque<MassJobEnd>,
}

impl World {
    pub(crate) fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub(crate) fn account(&mut self, appid: &str) -> Result<&mut Account, WxErr> {
        self.accounts
            .get_mut(appid)
            .ok_or_else(|| WxErr::new(40013, "invalid appid"))
    }
}

/// A handle on the simulated WeChat, shared by the API server and (when run together)
/// the citizen traffic generator. Cloning is cheap.
#[derive(Debug, Clone)]
pub struct SimState {
    world: Arc<Mutex<World>>,
    gate: Arc<HoldGate>,
}

/// Errors of the control operations.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SimError {
    /// The appid is not one of the simulated accounts.
    #[error("unknown appid {0:?}")]
    UnknownAccount(String),
}

impl SimState {
    /// Creates the simulated WeChat with `config`'s accounts and nothing else.
    pub fn new(config: SimConfig) -> Self {
        let accounts = config
            .accounts
            .iter()
            .map(|a| (a.appid.clone(), Account::new(a)))
            .collect();
        Self {
            world: Arc::new(Mutex::new(World {
                config,
                accounts,
                tokens: HashMap::new(),
                calls: Vec::new(),
                faults: Faults::default(),
                next_id: 1000,
                materials: HashMap::new(),
                job_callbacks: None,
                next_publish_outcomes: VecDeque::new(),
                next_mass_ends: VecDeque::new(),
            })),
            gate: Arc::default(),
        }
    }

    /// Waits until a call is held (`hold_path`).
    pub async fn held(&self) {
        self.gate.held.notified().await;
    }

    /// Lets the held call go on (or the next one, if none is held yet).
    pub fn release_held(&self) {
        self.gate.release.notify_one();
    }

    /// Holds the current call until released.
    pub(crate) async fn hold(&self) {
        self.gate.held.notify_one();
        self.gate.release.notified().await;
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, World> {
        // A panic in one handler must not take the whole simulator down.
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that citizen `openid` of account `appid` interacted (sent a message,
    /// clicked a menu, …) at `at`: it follows the account from then on, and its 48-hour
    /// customer-service window opens with a fresh 20-message budget.
    pub fn record_interaction(
        &self,
        appid: &str,
        openid: &str,
        at: DateTime<Utc>,
    ) -> Result<(), SimError> {
        let mut world = self.lock();
        let account = world
            .accounts
            .get_mut(appid)
            .ok_or_else(|| SimError::UnknownAccount(appid.to_owned()))?;
        account.follow(openid, at);
        account.windows.insert(
            openid.to_owned(),
            Window {
                opened_at: at,
                sent: 0,
            },
        );
        Ok(())
    }

    /// Adds followers to `appid` (they follow, but have no open window).
    pub fn add_followers<I, S>(&self, appid: &str, openids: I) -> Result<(), SimError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut world = self.lock();
        let account = world
            .accounts
            .get_mut(appid)
            .ok_or_else(|| SimError::UnknownAccount(appid.to_owned()))?;
        let now = Utc::now();
        for openid in openids {
            account.follow(openid.as_ref(), now);
        }
        Ok(())
    }

    /// Records that `openid` unfollowed `appid`; its window closes.
    pub fn unfollow(&self, appid: &str, openid: &str) -> Result<(), SimError> {
        let mut world = self.lock();
        let account = world
            .accounts
            .get_mut(appid)
            .ok_or_else(|| SimError::UnknownAccount(appid.to_owned()))?;
        if let Some(follower) = account.follower_mut(openid) {
            follower.subscribed = false;
        }
        account.windows.remove(openid);
        Ok(())
    }

    /// Returns every recorded API call, oldest first.
    pub fn calls(&self) -> Vec<RecordedCall> {
        self.lock().calls.clone()
    }

    /// Returns the recorded calls to `path`.
    pub fn calls_to(&self, path: &str) -> Vec<RecordedCall> {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.path == path)
            .cloned()
            .collect()
    }

    /// Makes the next publish job (`freepublish/submit`) end with `status` (2
    /// originality, 3 failed, 4 review failed, 6 banned, …) as `freepublish/get`
    /// reports it. Its `PUBLISHJOBFINISH`, when sent, follows
    /// [`JobCallbacks::fail_next_publish`](super::job_callbacks::JobCallbacks::fail_next_publish).
    pub fn end_next_publish_with(&self, status: u32) {
        self.lock().next_publish_outcomes.push_back(status);
    }

    /// Makes the next mass send's job (`message/mass/sendall`) end as `end` says:
    /// `message/mass/get` reports its `msg_status` (`SEND_FAIL`, `SENDING`, …) and its
    /// `MASSSENDJOBFINISH`, when sent, carries its `Status` (`send fail`, `err(n)`)
    /// and counts. Only a send WeChat takes uses it: one refused (quota, a repeated
    /// `clientmsgid`) leaves it for the next.
    pub fn end_next_mass_send_with(&self, end: MassJobEnd) {
        self.lock().next_mass_ends.push_back(end);
    }

    /// The media ids of the drafts in `appid`'s draft box (added, and neither
    /// deleted nor published since), sorted; none for an unknown account.
    pub fn drafts(&self, appid: &str) -> Vec<String> {
        let world = self.lock();
        let mut drafts: Vec<String> = world
            .accounts
            .get(appid)
            .map(|account| account.drafts.keys().cloned().collect())
            .unwrap_or_default();
        drafts.sort();
        drafts
    }

    /// Forgets every recorded call.
    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    /// Applies a fault request; see [`FaultRequest`].
    pub fn inject(&self, faults: &FaultRequest) -> Result<(), SimError> {
        let mut world = self.lock();
        if let Some(appid) = &faults.revoke_token {
            if !world.accounts.contains_key(appid) {
                return Err(SimError::UnknownAccount(appid.clone()));
            }
            for token in world.tokens.values_mut().filter(|t| &t.appid == appid) {
                token.revoked = true;
            }
        }
        if let Some(busy) = faults.busy {
            world.faults.busy = busy;
            world.faults.busy_path = faults.busy_path.clone();
            world.faults.busy_errcode = faults.busy_errcode;
            world.faults.busy_after_effect = faults.busy_after_effect.unwrap_or(false);
        }
        if let Some(lose) = faults.lose_answers {
            world.faults.lose = lose;
            world.faults.lose_path = faults.lose_path.clone();
        }
        if let Some(reject) = faults.reject_tokens {
            world.faults.reject = reject;
        }
        if let Some(ms) = faults.latency_ms {
            world.faults.latency = Duration::from_millis(ms);
        }
        if let Some(path) = &faults.hold_path {
            world.faults.hold_path = Some(path.clone());
        }
        if let Some(secs) = faults.age_client_msg_ids_secs {
            let age = chrono::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 1000));
            for account in world.accounts.values_mut() {
                for taken in account.mass_client_ids.values_mut() {
                    taken.taken_at -= age;
                }
            }
        }
        Ok(())
    }

    /// Clears every injected fault (revoked tokens stay revoked).
    pub fn clear_faults(&self) {
        self.lock().faults = Faults::default();
    }

    /// Returns the appids of the simulated accounts.
    pub fn appids(&self) -> Vec<String> {
        let mut appids: Vec<_> = self.lock().accounts.keys().cloned().collect();
        appids.sort();
        appids
    }
}
