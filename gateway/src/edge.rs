//! Reply rules answered at the edge. interaction-svc decides every passive reply,
//! but most of them — a keyword rule, the subscribe greeting, a menu click — depend on
//! nothing but the account's rules. The gateway keeps a copy of each account's rules
//! (a `ReplyRuleSnapshot`, asked of interaction-svc at start-up, on every change
//! notice and every `EDGE_RULES_REFRESH`) and answers those callbacks itself with
//! `reply_rules::answer_without_state`, the same code interaction-svc decides with:
//! no request to the reply path, no responder on the callback's way.
//!
//! Everything else (a lone digit that may be a rating, a question for the directory,
//! a message that opens a ticket) is still asked of interaction-svc. The copy can be
//! behind by as long as a notice takes, or one refresh when a notice is lost — the
//! same as interaction-svc's own rules cache — and it outlives interaction-svc: while
//! the reply path is down, keyword answers keep working.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_nats::RequestErrorKind;
use bytes::Bytes;
use futures::StreamExt;
use platform::Drain;
use platform::nats::Namespace;
use prost::Message as _;
use proto::interaction::v1::ReplyRuleSnapshot;
use reply_rules::{Incoming, RuleError, RuleSet, answer_without_state};
use tokio::sync::watch;
use wechat::message::InboundMessage;

/// How long a snapshot request waits for interaction-svc.
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(2);

/// Why an account's rules could not be (re)loaded; the gateway keeps the copy it has.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("no interaction-svc answers rules snapshots")]
    NoResponders,
    #[error("interaction-svc did not answer within {SNAPSHOT_TIMEOUT:?}")]
    TimedOut,
    #[error("nats: {0}")]
    Nats(String),
    #[error("the snapshot does not decode: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("the snapshot is for account {0:?}")]
    OtherAccount(String),
    #[error("the snapshot holds a rule that cannot be read: {0}")]
    Rule(#[from] RuleError),
}

impl SnapshotError {
    fn label(&self) -> &'static str {
        match self {
            Self::NoResponders => "no_responders",
            Self::TimedOut => "timeout",
            Self::Nats(_) => "error",
            Self::Decode(_) | Self::OtherAccount(_) | Self::Rule(_) => "invalid",
        }
    }
}

struct Entry {
    /// The load that produced it; an older load finishing late never replaces it.
    generation: u64,
    rules: Arc<RuleSet>,
}

/// Every account's rules, as the last snapshot gave them. Share as `Arc<EdgeRules>`.
pub struct EdgeRules {
    nats: async_nats::Client,
    namespace: Namespace,
    accounts: RwLock<HashMap<String, Entry>>,
    generations: AtomicU64,
    /// Bumped after every load that succeeds, for [`Self::wait_until`].
    loads: watch::Sender<u64>,
}

impl std::fmt::Debug for EdgeRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeRules").finish_non_exhaustive()
    }
}

impl EdgeRules {
    /// No rules yet: every callback is asked of interaction-svc until a load.
    pub fn new(nats: async_nats::Client, namespace: Namespace) -> Self {
        Self {
            nats,
            namespace,
            accounts: RwLock::new(HashMap::new()),
            generations: AtomicU64::new(0),
            loads: watch::Sender::new(0),
        }
    }

    /// The encoded `PassiveReply` of the rule that answers `message` whatever the
    /// citizen's state, if the account's rules hold one.
    pub fn answer(&self, account: &str, message: &InboundMessage) -> Option<Bytes> {
        self.answer_to(account, &Incoming::of(message))
    }

    /// [`Self::answer`] for a callback already classified.
    pub fn answer_to(&self, account: &str, incoming: &Incoming) -> Option<Bytes> {
        let rules = {
            let accounts = self.accounts.read().unwrap_or_else(|e| e.into_inner());
            let rules = &accounts.get(account)?.rules;
            if rules.is_empty() {
                return None;
            }
            rules.clone()
        };
        let (rule, _) = answer_without_state(&rules, incoming)?;
        Some(rule.reply.to_passive_reply().encode_to_vec().into())
    }

    /// How many rules the gateway holds for `account` (`None`: not loaded yet).
    pub fn rules_of(&self, account: &str) -> Option<usize> {
        let accounts = self.accounts.read().unwrap_or_else(|e| e.into_inner());
        accounts.get(account).map(|entry| entry.rules.len())
    }

    /// Asks interaction-svc for `account`'s rules and keeps them, unless a later
    /// request's answer is already kept; returns the number of rules held after it
    /// (the later answer's, in that case: the gauge must not show an older count).
    pub async fn load(&self, account: &str) -> Result<usize, SnapshotError> {
        // Taken before asking: a later request gets a later read of the rules.
        let generation = self.generations.fetch_add(1, Ordering::SeqCst) + 1;
        let subject = self
            .namespace
            .subject(&reply_rules::snapshot_subject(account));
        let request = async_nats::client::Request::new()
            .payload(Bytes::new())
            .timeout(Some(SNAPSHOT_TIMEOUT));
        let answer = self
            .nats
            .send_request(subject, request)
            .await
            .map_err(|e| match e.kind() {
                RequestErrorKind::NoResponders => SnapshotError::NoResponders,
                RequestErrorKind::TimedOut => SnapshotError::TimedOut,
                _ => SnapshotError::Nats(e.to_string()),
            })?;
        let snapshot = ReplyRuleSnapshot::decode(answer.payload)?;
        if snapshot.account != account {
            return Err(SnapshotError::OtherAccount(snapshot.account));
        }
        let rules = Arc::new(RuleSet::from_snapshot(snapshot)?);
        let mut accounts = self.accounts.write().unwrap_or_else(|e| e.into_inner());
        let held = match accounts.get(account) {
            Some(newer) if newer.generation > generation => newer.rules.len(),
            _ => {
                let count = rules.len();
                accounts.insert(account.to_owned(), Entry { generation, rules });
                count
            }
        };
        drop(accounts);
        self.loads.send_modify(|loads| *loads += 1);
        Ok(held)
    }

    /// Returns once `ready` holds for the number of rules held for `account`
    /// (`None`: not loaded yet), checked now and after every load.
    pub async fn wait_until(&self, account: &str, ready: impl Fn(Option<usize>) -> bool) {
        let mut loads = self.loads.subscribe();
        while !ready(self.rules_of(account)) {
            if loads.changed().await.is_err() {
                return;
            }
        }
    }

    /// [`Self::load`], logged and counted; whether interaction-svc answered at all.
    async fn refresh(&self, account: &str, cause: &'static str) -> bool {
        let outcome = match self.load(account).await {
            Ok(rules) => {
                metrics::gauge!("gateway_edge_rules", "account" => account.to_owned())
                    .set(rules as f64);
                tracing::debug!(account, rules, cause, "edge rules loaded");
                "loaded"
            }
            // interaction-svc is down or not deployed: every reply is asked of it
            // (and answered `success`) until it is back.
            Err(SnapshotError::NoResponders) => {
                tracing::info!(
                    account,
                    cause,
                    "no interaction-svc answers rules snapshots yet"
                );
                "no_responders"
            }
            Err(error) => {
                tracing::warn!(account, %error, cause, "edge rules not loaded; keeping the last copy");
                error.label()
            }
        };
        metrics::counter!("gateway_edge_rules_loads_total", "cause" => cause, "outcome" => outcome)
            .increment(1);
        outcome != "no_responders"
    }
}

/// Loads every served account's rules now and every `interval`, and an account's on
/// its change notice (`notices`: a subscription to `reply_rules::CHANGED_WILDCARD`,
/// made before the first load so no change falls between), until the drain begins.
///
/// Notices are handled apart from the periodic rounds, at the same time: a round
/// walks the accounts one after another, each load waiting up to `SNAPSHOT_TIMEOUT`,
/// and a notice queued behind a round of timeouts (40 accounts x 2 s) left the old
/// rules answering for over a minute. A round and a notice may load one account at
/// once; the later request's answer is kept (`Entry::generation`).
pub async fn run(
    edge: Arc<EdgeRules>,
    accounts: Vec<String>,
    mut notices: async_nats::Subscriber,
    interval: Duration,
    drain: Drain,
) {
    let stopping = drain.stopping();
    let on_notices = async {
        while let Some(notice) = notices.next().await {
            let Some(account) = notice.subject.as_str().rsplit('.').next() else {
                continue;
            };
            if accounts.iter().any(|served| served == account) {
                edge.refresh(account, "notice").await;
            }
        }
    };
    let periodic = async {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            for account in &accounts {
                // Nobody answers: the rest would wait for nothing too.
                if !edge.refresh(account, "periodic").await {
                    break;
                }
            }
        }
    };
    // A load waits up to SNAPSHOT_TIMEOUT for interaction-svc: the drain must not.
    tokio::select! {
        () = stopping.cancelled() => {}
        // The subscription ended (the client closed).
        () = on_notices => {}
        _ = periodic => {}
    }
    let _ = notices.unsubscribe().await;
    tracing::info!("edge rules stopped");
}
