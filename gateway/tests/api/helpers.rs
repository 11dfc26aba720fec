//! `spawn_app()`: a gateway on port 0 against real NATS in a private namespace, with
//! three accounts (plaintext, compatible, safe) whose ids are unique to the test, so
//! metrics and subjects never mix between parallel tests. Plus a WeChat stand-in that
//! signs and encrypts callbacks; platform's `ChaosProxy` cuts NATS.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::jetstream;
use futures::StreamExt;
use gateway::{Application, Config};
use platform::Env;
use platform::testing::{ServiceProcess, TestNats, free_port};
use prost::Message as _;
use proto::events::v1::{Inbound, PassiveReply};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use wechat::crypto::MessageCrypto;
use wechat::signature;

pub const AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
pub const OTHER_AES_KEY: &str = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR";
/// The key before the last rotation: still accepted for decryption.
pub const PREVIOUS_AES_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
pub const ORIGINAL_ID: &str = "gh_test0000001";

/// One configured account as the test sees it.
#[derive(Clone)]
pub struct TestAccount {
    pub id: String,
    pub appid: String,
    pub token: String,
    pub crypto: MessageCrypto,
}

pub struct TestApp {
    pub base: String,
    pub admin: String,
    pub nats: TestNats,
    pub client: async_nats::Client,
    pub http: reqwest::Client,
    pub plain: TestAccount,
    pub compat: TestAccount,
    pub safe: TestAccount,
    env: Env,
    shutdown: Option<oneshot::Sender<()>>,
    pub server: Option<JoinHandle<anyhow::Result<()>>>,
}

/// A second gateway on the same namespace and accounts, as another replica.
pub struct Replica {
    base: String,
    http: reqwest::Client,
    _shutdown: oneshot::Sender<()>,
}

impl Replica {
    pub async fn post_text(&self, account: &str, callback: &Callback) -> (u16, String) {
        post_text(&self.http, &self.base, account, callback).await
    }
}

pub async fn spawn_replica(first: &TestApp) -> Replica {
    let config = Config::from_env(&first.env).expect("test config is valid");
    let app = Application::build(config).await.expect("replica builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    let (tx, rx) = oneshot::channel();
    tokio::spawn(app.run_until_stopped(async {
        let _ = rx.await;
    }));
    Replica {
        base,
        http: reqwest::Client::new(),
        _shutdown: tx,
    }
}

/// Options that differ between tests.
#[derive(Default)]
pub struct Options<'a> {
    /// NATS URL for the gateway (a chaos proxy); the test's own client uses the real one.
    pub nats_url: Option<String>,
    pub extra: Vec<(&'a str, &'a str)>,
    /// The plaintext and compatible accounts configured with one callback Token (an
    /// admin chose the same Token in each console), so each accepts the other's
    /// signatures; the safe account keeps its own (a Token shared with a safe account
    /// is refused at start-up).
    pub same_token: bool,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

/// The test's three accounts and the gateway's configuration for them.
struct Setup {
    env: Env,
    plain: TestAccount,
    compat: TestAccount,
    safe: TestAccount,
}

fn setup(nats: &TestNats, options: Options<'_>) -> Setup {
    let suffix = &nats.prefix[1..9];
    let account = |kind: &str, appid: &str| TestAccount {
        id: format!("{kind}-{suffix}"),
        appid: appid.to_owned(),
        token: if options.same_token && kind != "safe" {
            "token-shared".to_owned()
        } else {
            format!("token-{kind}")
        },
        crypto: MessageCrypto::new(AES_KEY, appid).unwrap(),
    };
    let plain = account("plain", "wx00000000000000p1");
    let compat = account("compat", "wx00000000000000c1");
    let safe = account("safe", "wx00000000000000s1");
    let mut env = Env::from_pairs([
        (
            "NATS_URL",
            options.nats_url.unwrap_or_else(|| nats.url().to_owned()),
        ),
        ("NATS_PREFIX", nats.prefix.clone()),
        ("HTTP_ADDR", "127.0.0.1:0".to_owned()),
        ("ADMIN_ADDR", "127.0.0.1:0".to_owned()),
        ("SHUTDOWN_GRACE", "5s".to_owned()),
        // Generous: parallel debug-build tests share two cores.
        ("REPLY_BUDGET", "2s".to_owned()),
        (
            "WECHAT_ACCOUNTS",
            format!("{},{},{}", plain.id, compat.id, safe.id),
        ),
    ]);
    for (account, mode) in [
        (&plain, "plaintext"),
        (&compat, "compatible"),
        (&safe, "safe"),
    ] {
        let var = |s: &str| format!("WECHAT_{}_{s}", gateway::config::env_id(&account.id));
        env = env
            .with(&var("APPID"), account.appid.clone())
            .with(&var("ORIGINAL_ID"), ORIGINAL_ID)
            .with(&var("TOKEN"), account.token.clone())
            .with(&var("MODE"), mode);
        if mode != "plaintext" {
            env = env
                .with(&var("AES_KEY"), AES_KEY)
                .with(&var("AES_KEY_PREVIOUS"), PREVIOUS_AES_KEY);
        }
    }
    for (key, value) in options.extra {
        env = env.with(key, value);
    }
    Setup {
        env,
        plain,
        compat,
        safe,
    }
}

pub async fn spawn_app_with(options: Options<'_>) -> TestApp {
    platform::telemetry::init_test_tracing();
    let nats = TestNats::new();
    let Setup {
        env,
        plain,
        compat,
        safe,
    } = setup(&nats, options);
    let config = Config::from_env(&env).expect("test config is valid");
    let app = Application::build(config).await.expect("gateway builds");
    // A replica reaches NATS directly, whatever proxy this one uses.
    let env = env.with("NATS_URL", nats.url().to_owned());
    let base = format!("http://127.0.0.1:{}", app.port());
    let admin = format!("http://127.0.0.1:{}", app.admin_port());
    let (tx, rx) = oneshot::channel();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = rx.await;
    }));
    let client = nats.connect().await;
    TestApp {
        base,
        admin,
        client,
        http: reqwest::Client::new(),
        plain,
        compat,
        safe,
        nats,
        env,
        shutdown: Some(tx),
        server: Some(server),
    }
}

/// The gateway's own binary on the same configuration, logging at the default level
/// (INFO) as in production: for what only its log shows.
pub struct TestProcess {
    pub gateway: ServiceProcess,
    pub base: String,
    /// The plaintext account (the compatible one is configured too).
    pub plain: TestAccount,
    pub safe: TestAccount,
    http: reqwest::Client,
    nats: TestNats,
}

pub async fn spawn_process_with(options: Options<'_>) -> TestProcess {
    let nats = TestNats::new();
    let Setup {
        env, plain, safe, ..
    } = setup(&nats, options);
    let http_addr = format!("127.0.0.1:{}", free_port());
    let env = env.with("HTTP_ADDR", http_addr.clone());
    let mut gateway = ServiceProcess::spawn(env!("CARGO_BIN_EXE_gateway"), &env);
    gateway.wait_ready(Duration::from_secs(60)).await;
    TestProcess {
        gateway,
        base: format!("http://{http_addr}"),
        plain,
        safe,
        http: reqwest::Client::new(),
        nats,
    }
}

impl TestProcess {
    pub async fn post_text(&self, account: &str, callback: &Callback) -> (u16, String) {
        post_text(&self.http, &self.base, account, callback).await
    }

    /// Answers every request on the account's reply subject with `answer`'s bytes,
    /// at once (a responder sending anything, a valid `PassiveReply` or not).
    pub async fn raw_responder<F>(&self, account: &str, answer: F)
    where
        F: Fn() -> Vec<u8> + Send + 'static,
    {
        let client = self.nats.connect().await;
        let subject = self
            .nats
            .namespace
            .subject(&format!("wechat.reply.{account}"));
        let mut subscription = client.subscribe(subject).await.unwrap();
        round_trip(&client).await;
        tokio::spawn(async move {
            while let Some(request) = subscription.next().await {
                if let Some(to) = request.reply {
                    let _ = client.publish(to, answer().into()).await;
                    let _ = client.flush().await;
                }
            }
        });
    }

    /// Stops the gateway (SIGTERM) and returns everything it logged.
    pub async fn stop(&mut self) -> String {
        self.gateway.terminate();
        let exited = self.gateway.wait_exit(Duration::from_secs(30)).await;
        let output = self.gateway.output();
        assert!(exited.is_some(), "the gateway did not exit:\n{output}");
        output
    }
}

impl Drop for TestProcess {
    fn drop(&mut self) {
        delete_reply_bucket(&self.nats);
    }
}

async fn post_text(
    http: &reqwest::Client,
    base: &str,
    account: &str,
    callback: &Callback,
) -> (u16, String) {
    let response = http
        .post(format!("{base}/wechat/{account}"))
        .query(&callback.query)
        .body(callback.body.clone())
        .send()
        .await
        .expect("request is sent");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// A callback as WeChat would send it.
pub struct Callback {
    pub query: Vec<(String, String)>,
    pub body: String,
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn nonce() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..10].to_owned()
}

impl TestAccount {
    /// The signed query of a plaintext callback.
    pub fn plain_callback(&self, xml: &str) -> Callback {
        let timestamp = now().to_string();
        let nonce = nonce();
        Callback {
            query: vec![
                (
                    "signature".into(),
                    signature::signature(&self.token, &timestamp, &nonce),
                ),
                ("timestamp".into(), timestamp),
                ("nonce".into(), nonce),
                ("openid".into(), "oUser".into()),
            ],
            body: xml.to_owned(),
        }
    }

    /// A safe-mode callback: `<Encrypt>` of `xml` with `crypto`, both signatures.
    pub fn encrypted_callback_with(&self, xml: &str, crypto: &MessageCrypto) -> Callback {
        let mut callback = self.plain_callback(xml);
        let encrypt = crypto.encrypt(xml).unwrap();
        let get = |k: &str| {
            callback
                .query
                .iter()
                .find(|(n, _)| n == k)
                .unwrap()
                .1
                .clone()
        };
        let msg_signature =
            signature::msg_signature(&self.token, &get("timestamp"), &get("nonce"), &encrypt);
        callback.query.push(("encrypt_type".into(), "aes".into()));
        callback.query.push(("msg_signature".into(), msg_signature));
        callback.body = format!(
            "<xml><ToUserName><![CDATA[{ORIGINAL_ID}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
        );
        callback
    }

    pub fn encrypted_callback(&self, xml: &str) -> Callback {
        self.encrypted_callback_with(xml, &self.crypto)
    }

    pub fn query_value(callback: &Callback, name: &str) -> String {
        callback
            .query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }
}

impl Callback {
    pub fn set(&mut self, name: &str, value: &str) {
        self.query.retain(|(n, _)| n != name);
        self.query.push((name.to_owned(), value.to_owned()));
    }
}

impl TestApp {
    pub fn url(&self, account: &str) -> String {
        format!("{}/wechat/{account}", self.base)
    }

    pub async fn post(&self, account: &str, callback: &Callback) -> reqwest::Response {
        self.http
            .post(self.url(account))
            .query(&callback.query)
            .body(callback.body.clone())
            .send()
            .await
            .expect("request is sent")
    }

    /// Posts and returns status and body text.
    pub async fn post_text(&self, account: &str, callback: &Callback) -> (u16, String) {
        let response = self.post(account, callback).await;
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    pub fn jetstream(&self) -> jetstream::Context {
        jetstream::new(self.client.clone())
    }

    /// Every message in the namespace's `WECHAT_INBOUND`: (subject, Nats-Msg-Id, Inbound).
    pub async fn stored(&self) -> Vec<(String, String, Inbound)> {
        let name = self.nats.namespace.name("WECHAT_INBOUND");
        let mut stream = self.jetstream().get_stream(&name).await.unwrap();
        let count = stream.info().await.unwrap().state.messages;
        let mut out = Vec::new();
        for sequence in 1..=count {
            let Ok(raw) = stream.get_raw_message(sequence).await else {
                continue;
            };
            let msg_id = raw
                .headers
                .get("Nats-Msg-Id")
                .map(|v| v.to_string())
                .unwrap_or_default();
            out.push((
                raw.subject.to_string(),
                msg_id,
                Inbound::decode(raw.payload).unwrap(),
            ));
        }
        out
    }

    /// Answers requests on the account's reply subject: `answer` decides each reply
    /// (after `delay`); returns the number of requests seen so far and a channel that
    /// reports every request.
    pub async fn responder<F>(
        &self,
        account: &str,
        delay: Duration,
        answer: F,
    ) -> (
        Arc<std::sync::atomic::AtomicUsize>,
        tokio::sync::mpsc::UnboundedReceiver<Inbound>,
    )
    where
        F: Fn(&Inbound) -> PassiveReply + Send + Sync + 'static,
    {
        let subject = self
            .nats
            .namespace
            .subject(&format!("wechat.reply.{account}"));
        let mut subscription = self.client.subscribe(subject).await.unwrap();
        round_trip(&self.client).await;
        let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let client = self.client.clone();
        let counter = seen.clone();
        tokio::spawn(async move {
            while let Some(request) = subscription.next().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let inbound = Inbound::decode(request.payload.clone()).unwrap();
                let reply = answer(&inbound);
                let _ = tx.send(inbound);
                let client = client.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    if let Some(to) = request.reply {
                        let _ = client.publish(to, reply.encode_to_vec().into()).await;
                        let _ = client.flush().await;
                    }
                });
            }
        });
        (seen, rx)
    }

    /// Sum of a metric's samples whose labels include every `(name, value)`.
    pub async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.metric_samples(name, labels).await.iter().sum()
    }

    /// A metric's samples whose labels include every `(name, value)`, one per series
    /// (none: no such series is exported).
    pub async fn metric_samples(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        let text = self
            .http
            .get(format!("{}/metrics", self.admin))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
            .filter(|l| {
                labels
                    .iter()
                    .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .collect()
    }

    /// Waits (bounded) until the reply bucket holds `n` entries; false if it never does.
    pub async fn wait_for_reply_cache_entries(&self, n: u64) -> bool {
        let name = format!(
            "KV_{}",
            self.nats.namespace.name(gateway::reply::REPLY_BUCKET)
        );
        let until = tokio::time::Instant::now() + Duration::from_secs(5);
        while tokio::time::Instant::now() < until {
            let mut stream = self.jetstream().get_stream(&name).await.unwrap();
            if stream.info().await.unwrap().state.messages >= n {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    pub async fn ready(&self) -> bool {
        self.http
            .get(format!("{}/readyz", self.admin))
            .send()
            .await
            .map(|r| r.status().is_success())
            .unwrap_or(false)
    }

    /// Waits (polling readiness, bounded) until `/readyz` reports `want`.
    pub async fn wait_ready(&self, want: bool, within: Duration) {
        let until = tokio::time::Instant::now() + within;
        while self.ready().await != want {
            assert!(
                tokio::time::Instant::now() < until,
                "readiness never became {want}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Triggers the drain and waits for `run_until_stopped` to return.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.server.take() {
            Some(server) => server.await.expect("server task"),
            None => Ok(()),
        }
    }

    pub fn trigger_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        delete_reply_bucket(&self.nats);
    }
}

/// Deletes the reply bucket's stream: `KV_…`, outside the namespace TestNats removes.
fn delete_reply_bucket(nats: &TestNats) {
    let url = nats.url().to_owned();
    let stream = format!("KV_{}", nats.namespace.name(gateway::reply::REPLY_BUCKET));
    let _ = std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(async move {
            if let Ok(client) = async_nats::connect(url.as_str()).await {
                let _ = jetstream::new(client).delete_stream(&stream).await;
            }
        });
    })
    .join();
}

/// Returns once the server has processed everything this client sent before (a
/// `flush` only empties the socket buffer): a message to ourselves comes back only
/// after the earlier SUBs were handled.
pub async fn round_trip(client: &async_nats::Client) {
    let inbox = client.new_inbox();
    let mut echo = client.subscribe(inbox.clone()).await.unwrap();
    client.publish(inbox, "sync".into()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), echo.next())
        .await
        .expect("the server echoes our message");
}

/// Counts stored events by event_id.
pub fn by_event_id(stored: &[(String, String, Inbound)]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for (_, msg_id, _) in stored {
        *counts.entry(msg_id.clone()).or_default() += 1;
    }
    counts
}
