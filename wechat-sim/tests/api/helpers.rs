//! Shared set-up: a mock per test, clients, and a NATS KV bucket per test.

use std::time::Duration;

use async_nats::jetstream;
use wechat::api::{BusyRetry, Client};
use wechat::token::{LocalTokenCache, SharedCacheConfig, SharedTokenCache, TokenSource};
use wechat_sim::api_server::{AccountKind, MockWechat, SimAccount, SimConfig};

/// The service account every test uses.
pub const APPID: &str = "wxtest0000000001";
pub const SECRET: &str = "test-secret-0001";
/// A subscription account (1 mass send a day, no templates).
pub const SUB_APPID: &str = "wxtest0000000002";
pub const SUB_SECRET: &str = "test-secret-0002";

/// Mock settings for tests: short grace, no force-refresh spacing, small follower pages.
pub fn sim_config() -> SimConfig {
    SimConfig {
        accounts: vec![
            SimAccount::new(APPID, SECRET),
            SimAccount {
                appid: SUB_APPID.into(),
                secret: SUB_SECRET.into(),
                kind: AccountKind::Subscription,
            },
        ],
        token_grace: Duration::from_secs(2),
        force_refresh_interval: Duration::ZERO,
        follower_page_size: 3,
        ..SimConfig::default()
    }
}

pub async fn spawn_mock() -> MockWechat {
    spawn_mock_with(sim_config()).await
}

pub async fn spawn_mock_with(config: SimConfig) -> MockWechat {
    MockWechat::start(config).await.expect("mock starts")
}

/// A client with an in-process token cache and fast busy retries.
pub fn local_client(mock: &MockWechat, appid: &str, secret: &str) -> Client {
    client(mock, appid, secret, LocalTokenCache::default().into())
}

pub fn client(mock: &MockWechat, appid: &str, secret: &str, tokens: TokenSource) -> Client {
    Client::builder(appid, secret.to_owned().into(), tokens)
        .base_url(mock.base_url())
        .timeout(Duration::from_secs(5))
        .busy_retry(BusyRetry {
            attempts: 3,
            base_delay: Duration::from_millis(10),
        })
        .build()
        .expect("client builds")
}

/// A JetStream context on the test NATS (`NATS_URL`, default loopback).
pub async fn jetstream() -> jetstream::Context {
    let url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let nats = async_nats::connect(url)
        .await
        .expect("nats is running (deploy/dev/up.sh)");
    jetstream::new(nats)
}

/// A unique bucket name, so parallel tests never share a cache.
pub fn unique_bucket() -> String {
    format!("test_tokens_{}", uuid::Uuid::new_v4().simple())
}

/// Opens a shared cache on `bucket`, as one replica would.
pub async fn shared_cache(js: &jetstream::Context, bucket: &str) -> SharedTokenCache {
    SharedTokenCache::open(js, SharedCacheConfig::new(bucket))
        .await
        .expect("cache opens")
}

pub async fn delete_bucket(js: &jetstream::Context, bucket: &str) {
    let _ = js.delete_key_value(bucket).await;
}

/// Opens `openid`'s customer-service window through the control endpoint, as a test
/// without the traffic generator would.
pub async fn interact(mock: &MockWechat, appid: &str, openid: &str) {
    let status = reqwest::Client::new()
        .post(format!("{}/sim/interactions", mock.base_url()))
        .json(&serde_json::json!({"appid": appid, "openid": openid}))
        .send()
        .await
        .expect("control call")
        .status();
    assert_eq!(status, 204);
}

/// Posts a fault request to the control endpoint.
pub async fn inject(mock: &MockWechat, faults: serde_json::Value) {
    let status = reqwest::Client::new()
        .post(format!("{}/sim/faults", mock.base_url()))
        .json(&faults)
        .send()
        .await
        .expect("control call")
        .status();
    assert_eq!(status, 204);
}

/// Counts recorded calls to `path`.
pub fn calls_to(mock: &MockWechat, path: &str) -> usize {
    mock.state().calls_to(path).len()
}
