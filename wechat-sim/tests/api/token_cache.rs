//! The shared access-token cache on NATS KV, with replicas as separate clients.

use std::time::Duration;

use futures::StreamExt;
use futures::future::join_all;
use serde_json::json;
use wechat::api::Client;
use wechat::token::{SharedCacheConfig, SharedTokenCache};
use wechat_sim::api_server::SimConfig;

use crate::helpers::*;

const STABLE: &str = "/cgi-bin/stable_token";

/// Builds `n` replicas: each its own cache handle (own memo) and client, one bucket.
async fn replicas(
    mock: &wechat_sim::api_server::MockWechat,
    bucket: &str,
    n: usize,
) -> Vec<Client> {
    let js = jetstream().await;
    let mut clients = Vec::new();
    for _ in 0..n {
        let cache = shared_cache(&js, bucket).await;
        clients.push(client(mock, APPID, SECRET, cache.into()));
    }
    clients
}

#[tokio::test]
async fn twenty_replicas_on_a_cold_cache_fetch_exactly_one_token() {
    let mock = spawn_mock().await;
    let js = jetstream().await;
    let bucket = unique_bucket();
    let clients = replicas(&mock, &bucket, 20).await;

    let results = join_all(clients.iter().map(|c| c.tags())).await;

    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(mock.state().calls_to(STABLE).len(), 1);
    let tokens: std::collections::HashSet<_> = mock
        .state()
        .calls_to("/cgi-bin/tags/get")
        .into_iter()
        .map(|c| c.query["access_token"].clone())
        .collect();
    assert_eq!(tokens.len(), 1, "every replica used the one token");
    delete_bucket(&js, &bucket).await;
}

#[tokio::test]
async fn a_token_revoked_mid_run_is_recovered_without_a_failed_call() {
    let mock = spawn_mock().await;
    let js = jetstream().await;
    let bucket = unique_bucket();
    let clients = replicas(&mock, &bucket, 5).await;
    join_all(clients.iter().map(|c| c.tags())).await;

    let mut failures = Vec::new();
    for round in 0..6 {
        if round == 3 {
            inject(&mock, json!({"revoke_token": APPID})).await;
        }
        let results = join_all(clients.iter().map(|c| c.tags())).await;
        failures.extend(results.into_iter().filter_map(Result::err));
    }

    assert!(failures.is_empty(), "{failures:?}");
    assert!(
        mock.state()
            .calls_to("/cgi-bin/tags/get")
            .iter()
            .any(|c| c.errcode == 40001),
        "the revocation was seen"
    );
    let fetches = mock.state().calls_to(STABLE);
    assert_eq!(
        fetches.len(),
        2,
        "one cold fetch, one refresh after the revocation"
    );
    assert_eq!(
        fetches[1].body.as_ref().unwrap()["force_refresh"],
        false,
        "the revoked token is not what WeChat hands out now: no force needed"
    );
    delete_bucket(&js, &bucket).await;
}

#[tokio::test]
async fn a_late_rejection_does_not_wipe_a_fresh_token() {
    let mock = spawn_mock().await;
    let js = jetstream().await;
    let bucket = unique_bucket();
    let clients = replicas(&mock, &bucket, 2).await;
    let (a, b) = (&clients[0], &clients[1]);
    a.tags().await.unwrap();
    b.tags().await.unwrap();

    // Replica A meets the revocation and refreshes; replica B still holds the old token
    // in memory and meets 40001 later: its invalidation must leave A's token alone.
    inject(&mock, json!({"revoke_token": APPID})).await;
    a.tags().await.unwrap();
    b.tags().await.unwrap();

    assert_eq!(mock.state().calls_to(STABLE).len(), 2);
    assert_eq!(
        a.access_token().await.unwrap().secret(),
        b.access_token().await.unwrap().secret()
    );
    delete_bucket(&js, &bucket).await;
}

/// A replica whose refresh leases last 1 s (it waits 5 s at most), and the bucket
/// holding another replica's lease written with `lease_until`.
async fn replica_facing_a_lease(
    mock: &wechat_sim::api_server::MockWechat,
    js: &async_nats::jetstream::Context,
    bucket: &str,
    lease_until: chrono::DateTime<chrono::Utc>,
) -> Client {
    let config = SharedCacheConfig {
        lease: Duration::from_secs(1),
        wait_timeout: Duration::from_secs(5),
        ..SharedCacheConfig::new(bucket)
    };
    let cache = SharedTokenCache::open(js, config).await.unwrap();
    let kv = js.get_key_value(bucket).await.unwrap();
    let lease = json!({"state": "refreshing", "holder": "other", "lease_until": lease_until, "reason": "expiring"});
    kv.put(APPID, serde_json::to_vec(&lease).unwrap().into())
        .await
        .unwrap();
    client(mock, APPID, SECRET, cache.into())
}

#[tokio::test]
async fn a_refresh_lease_is_honoured_for_its_length_whatever_clock_its_holder_has() {
    let mock = spawn_mock().await;
    let js = jetstream().await;
    let bucket = unique_bucket();
    // The holder's clock runs an hour behind: its `lease_until` is long past here,
    // though it has only just begun its fetch.
    let behind = chrono::Utc::now() - chrono::Duration::hours(1);
    let replica = replica_facing_a_lease(&mock, &js, &bucket, behind).await;

    let started = tokio::time::Instant::now();
    replica.tags().await.unwrap();

    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(1),
        "took the lease over after {waited:?}, inside the holder's 1 s"
    );
    assert_eq!(mock.state().calls_to(STABLE).len(), 1);
    delete_bucket(&js, &bucket).await;
}

#[tokio::test]
async fn a_dead_refreshers_lease_is_taken_over_even_if_its_clock_ran_ahead() {
    let mock = spawn_mock().await;
    let js = jetstream().await;
    let bucket = unique_bucket();
    // A replica whose clock ran an hour ahead crashed while refreshing.
    let ahead = chrono::Utc::now() + chrono::Duration::hours(1);
    let replica = replica_facing_a_lease(&mock, &js, &bucket, ahead).await;

    let result = replica.tags().await;

    assert!(result.is_ok(), "{result:?}");
    assert_eq!(mock.state().calls_to(STABLE).len(), 1);
    delete_bucket(&js, &bucket).await;
}

#[tokio::test]
async fn tokens_are_refreshed_ahead_of_expiry() {
    // Tokens live 100 s and the cache refreshes 120 s ahead, so the second call must
    // refresh while the first token is still valid.
    let mock = spawn_mock_with(SimConfig {
        token_ttl: Duration::from_secs(100),
        ..sim_config()
    })
    .await;
    let js = jetstream().await;
    let bucket = unique_bucket();
    let config = SharedCacheConfig {
        refresh_ahead: Duration::from_secs(120),
        ..SharedCacheConfig::new(&bucket)
    };
    let cache = SharedTokenCache::open(&js, config).await.unwrap();
    let client = client(&mock, APPID, SECRET, cache.into());

    let first = client.access_token().await.unwrap();
    let second = client.access_token().await.unwrap();

    assert_ne!(first.secret(), second.secret());
    assert_eq!(mock.state().calls_to(STABLE).len(), 2);
    assert!(mock.state().calls().iter().all(|c| c.errcode == 0));
    delete_bucket(&js, &bucket).await;
}

#[tokio::test]
async fn a_refused_refresh_is_counted_for_operators_to_alert_on() {
    let metrics = platform::telemetry::metrics_handle();
    let failures = || {
        platform::testing::metric_value(
            &metrics.render(),
            "wechat_token_refresh_failures_total",
            &[("appid", APPID)],
        )
    };
    let before = failures();
    let mock = spawn_mock().await;
    let js = jetstream().await;
    let bucket = unique_bucket();
    let cache = shared_cache(&js, &bucket).await;
    let wrong = client(&mock, APPID, "not-the-app-secret", cache.into());

    assert!(
        wrong.tags().await.is_err(),
        "a wrong AppSecret gets no token"
    );
    assert!(failures() >= before + 1.0);
    delete_bucket(&js, &bucket).await;
}

/// Two replicas on one bucket whose tokens are always within `refresh_ahead` of
/// expiry (tokens live 100 s, refreshed 120 s ahead), and the first token.
async fn expiring_replicas(
    mock: &wechat_sim::api_server::MockWechat,
    bucket: &str,
) -> (Client, Client, wechat::token::AccessToken) {
    let js = jetstream().await;
    let config = SharedCacheConfig {
        refresh_ahead: Duration::from_secs(120),
        ..SharedCacheConfig::new(bucket)
    };
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let cache = SharedTokenCache::open(&js, config.clone()).await.unwrap();
        replicas.push(client(mock, APPID, SECRET, cache.into()));
    }
    let b = replicas.pop().unwrap();
    let a = replicas.pop().unwrap();
    let first = a.access_token().await.unwrap();
    (a, b, first)
}

#[tokio::test]
async fn while_one_replica_refreshes_ahead_of_expiry_the_others_use_the_current_token() {
    let mock = spawn_mock_with(SimConfig {
        token_ttl: Duration::from_secs(100),
        ..sim_config()
    })
    .await;
    let js = jetstream().await;
    let bucket = unique_bucket();
    let (a, b, first) = expiring_replicas(&mock, &bucket).await;
    // Long enough that b reads while a's refresh is still out, on a loaded machine too.
    inject(&mock, json!({"latency_ms": 3000})).await;

    let refreshing = tokio::spawn(async move { a.access_token().await });
    let kv = js.get_key_value(&bucket).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let value = kv.get(APPID).await.unwrap().unwrap_or_default();
        if String::from_utf8_lossy(&value).contains("refreshing") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no refresh began");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let during = b.access_token().await.unwrap();

    assert_eq!(
        during.secret(),
        first.secret(),
        "the current token, without waiting"
    );
    let refreshed = refreshing.await.unwrap().unwrap();
    assert_ne!(refreshed.secret(), first.secret());
    delete_bucket(&js, &bucket).await;
}

#[tokio::test]
async fn a_failed_refresh_ahead_of_expiry_leaves_the_current_token_serving() {
    let mock = spawn_mock_with(SimConfig {
        token_ttl: Duration::from_secs(100),
        ..sim_config()
    })
    .await;
    let js = jetstream().await;
    let bucket = unique_bucket();
    let (a, b, first) = expiring_replicas(&mock, &bucket).await;
    // WeChat's token endpoint stays busy beyond both replicas' retries.
    inject(&mock, json!({"busy": 10, "busy_path": STABLE})).await;

    let again = a.access_token().await.unwrap();
    let other = b.access_token().await.unwrap();

    assert_eq!(again.secret(), first.secret());
    assert_eq!(other.secret(), first.secret());
    let kv = js.get_key_value(&bucket).await.unwrap();
    let stored: serde_json::Value =
        serde_json::from_slice(&kv.get(APPID).await.unwrap().unwrap()).unwrap();
    assert_eq!(
        (stored["state"].as_str(), stored["token"].as_str()),
        (Some("valid"), Some(first.secret()))
    );
    delete_bucket(&js, &bucket).await;
}

/// Whether each `stable_token` call so far asked for `force_refresh`.
fn forced(mock: &wechat_sim::api_server::MockWechat) -> Vec<bool> {
    mock.state()
        .calls_to(STABLE)
        .iter()
        .map(|c| c.body.as_ref().unwrap()["force_refresh"] == true)
        .collect()
}

#[tokio::test]
async fn installs_sharing_an_appid_take_the_current_token_instead_of_forcing_new_ones() {
    // Staging and prod run on one appid, each with its own bucket. Something forces a
    // new token (an operator's tool), which kills the one both hold at once.
    let mock = spawn_mock().await;
    let js = jetstream().await;
    let buckets = [unique_bucket(), unique_bucket()];
    let prod = client(
        &mock,
        APPID,
        SECRET,
        shared_cache(&js, &buckets[0]).await.into(),
    );
    let staging = client(
        &mock,
        APPID,
        SECRET,
        shared_cache(&js, &buckets[1]).await.into(),
    );
    prod.tags().await.unwrap();
    staging.tags().await.unwrap();
    let current = local_client(&mock, APPID, SECRET)
        .fetch_stable_token(true)
        .await
        .unwrap();

    for _ in 0..3 {
        prod.tags().await.unwrap();
        staging.tags().await.unwrap();
    }

    assert_eq!(
        forced(&mock),
        [false, false, true, false, false],
        "only the operator forced; each install then fetched the current token once"
    );
    assert_eq!(
        prod.access_token().await.unwrap().secret(),
        current.secret()
    );
    assert_eq!(
        staging.access_token().await.unwrap().secret(),
        current.secret()
    );
    for bucket in &buckets {
        delete_bucket(&js, bucket).await;
    }
}

#[tokio::test]
async fn a_rejected_token_that_wechat_still_hands_out_is_replaced_by_force() {
    let mock = spawn_mock().await;
    let js = jetstream().await;
    let bucket = unique_bucket();
    let client = client(
        &mock,
        APPID,
        SECRET,
        shared_cache(&js, &bucket).await.into(),
    );
    let first = client.access_token().await.unwrap();
    inject(&mock, json!({"reject_tokens": 1})).await;

    client.tags().await.unwrap();

    assert_eq!(
        forced(&mock),
        [false, false, true],
        "normal mode gave the rejected token back, so the refresh forced"
    );
    assert_ne!(
        client.access_token().await.unwrap().secret(),
        first.secret()
    );
    delete_bucket(&js, &bucket).await;
}

#[tokio::test]
async fn the_in_process_cache_also_forces_only_when_the_rejected_token_comes_back() {
    let mock = spawn_mock().await;
    let client = local_client(&mock, APPID, SECRET);
    client.tags().await.unwrap();
    local_client(&mock, APPID, SECRET)
        .fetch_stable_token(true)
        .await
        .unwrap();
    client.tags().await.unwrap();
    inject(&mock, json!({"reject_tokens": 1})).await;
    client.tags().await.unwrap();

    assert_eq!(
        forced(&mock),
        [false, true, false, false, true],
        "superseded: the current token; still handed out after a rejection: forced"
    );
}

#[tokio::test]
async fn a_current_token_rejected_during_another_replicas_refresh_is_not_used_again() {
    let mock = spawn_mock().await;
    let js = jetstream().await;
    let bucket = unique_bucket();
    let tool = local_client(&mock, APPID, SECRET);
    let rejected = tool.fetch_stable_token(false).await.unwrap();
    // Something killed T (another install forced a new token); WeChat now hands out T2.
    inject(&mock, json!({"revoke_token": APPID})).await;
    let next = tool.fetch_stable_token(false).await.unwrap();
    assert_ne!(next.secret(), rejected.secret());
    // Replica "x" is refreshing ahead of expiry and offers T meanwhile.
    let cache = shared_cache(&js, &bucket).await;
    let kv = js.get_key_value(&bucket).await.unwrap();
    let lease = json!({
        "state": "refreshing", "holder": "x", "reason": "expiring",
        "lease_until": chrono::Utc::now() + chrono::Duration::seconds(20),
        "current": {"token": rejected.secret(), "expires_at": chrono::Utc::now() + chrono::Duration::seconds(60)},
    });
    kv.put(APPID, serde_json::to_vec(&lease).unwrap().into())
        .await
        .unwrap();
    let mut changes = kv.watch(APPID).await.unwrap();
    let replica = client(&mock, APPID, SECRET, cache.into());

    let mut call = tokio::spawn(async move { replica.tags().await });
    // The replica meets 40001 with T: the next write to the key is its reaction to it.
    // Only then does "x" land its token.
    let result = tokio::select! {
        ended = &mut call => ended.unwrap(),
        _ = changes.next() => {
            let valid = json!({"state": "valid", "token": next.secret(), "expires_at": next.expires_at()});
            kv.put(APPID, serde_json::to_vec(&valid).unwrap().into())
                .await
                .unwrap();
            call.await.unwrap()
        }
    };

    assert!(result.is_ok(), "{result:?}");
    let used: Vec<_> = mock
        .state()
        .calls_to("/cgi-bin/tags/get")
        .into_iter()
        .map(|c| c.query["access_token"].clone())
        .collect();
    assert_eq!(
        used,
        [rejected.secret(), next.secret()],
        "T once, then the refresher's T2"
    );
    assert_eq!(
        mock.state().calls_to(STABLE).len(),
        2,
        "the replica fetched nothing itself"
    );
    delete_bucket(&js, &bucket).await;
}

/// A cache on `bucket` whose leases last `lease`; waiters wait up to 20 s.
async fn cache_with_lease(
    js: &async_nats::jetstream::Context,
    bucket: &str,
    lease: Duration,
) -> SharedTokenCache {
    let config = SharedCacheConfig {
        lease,
        wait_timeout: Duration::from_secs(20),
        ..SharedCacheConfig::new(bucket)
    };
    SharedTokenCache::open(js, config).await.unwrap()
}

/// Waits until `appid`'s key holds a refresh lease.
async fn until_refreshing(changes: &mut async_nats::jetstream::kv::Watch) {
    while let Some(entry) = changes.next().await {
        if String::from_utf8_lossy(&entry.unwrap().value).contains("refreshing") {
            return;
        }
    }
    panic!("the watch ended");
}

#[tokio::test]
async fn a_refresh_longer_than_its_lease_is_not_taken_over_and_forced_twice() {
    let mock = spawn_mock().await;
    let js = jetstream().await;
    let bucket = unique_bucket();
    // Leases of 1 s; each call to WeChat takes 3 s, so A's refresh after a rejection
    // (normal mode, then forced) outlasts its lease several times over.
    let a = client(
        &mock,
        APPID,
        SECRET,
        cache_with_lease(&js, &bucket, Duration::from_secs(1))
            .await
            .into(),
    );
    a.access_token().await.unwrap();
    let kv = js.get_key_value(&bucket).await.unwrap();
    let mut changes = kv.watch(APPID).await.unwrap();
    inject(&mock, json!({"reject_tokens": 1, "latency_ms": 3000})).await;

    let refreshing = tokio::spawn(async move { a.tags().await });
    until_refreshing(&mut changes).await;
    let b = client(
        &mock,
        APPID,
        SECRET,
        cache_with_lease(&js, &bucket, Duration::from_secs(1))
            .await
            .into(),
    );
    let waited = b.access_token().await;

    let refreshed = refreshing.await.unwrap();
    assert_eq!(
        forced(&mock),
        [false, false, true],
        "one forced refresh, by the lease's holder"
    );
    assert!(refreshed.is_ok(), "{refreshed:?}");
    assert!(waited.is_ok(), "{waited:?}");
    delete_bucket(&js, &bucket).await;
}

#[tokio::test]
async fn a_cancelled_refresh_gives_its_lease_back() {
    let mock = spawn_mock().await;
    let js = jetstream().await;
    let bucket = unique_bucket();
    let lease = Duration::from_secs(60);
    let a = client(
        &mock,
        APPID,
        SECRET,
        cache_with_lease(&js, &bucket, lease).await.into(),
    );
    let kv = js.get_key_value(&bucket).await.unwrap();
    let mut changes = kv.watch(APPID).await.unwrap();
    inject(&mock, json!({"latency_ms": 2000})).await;

    let refreshing = tokio::spawn(async move { a.access_token().await });
    until_refreshing(&mut changes).await;
    refreshing.abort();
    // Whatever happens next to the key happens long before the 60 s lease runs out.
    let next = tokio::time::timeout(Duration::from_secs(10), changes.next()).await;

    let entry = next
        .expect("the lease stayed in place after its refresh was cancelled")
        .unwrap()
        .unwrap();
    assert_ne!(
        entry.operation,
        async_nats::jetstream::kv::Operation::Put,
        "the lease was deleted"
    );
    let b = client(
        &mock,
        APPID,
        SECRET,
        cache_with_lease(&js, &bucket, lease).await.into(),
    );
    assert!(b.access_token().await.is_ok());
    delete_bucket(&js, &bucket).await;
}
