//! A rough in-process throughput probe (ignored; the real benchmark is wechat-sim's):
//! `cargo test --release -p gateway --test api bench -- --ignored --nocapture`.
//! Generator, gateway and nats-server share the machine, so treat numbers as a floor.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::helpers::{Callback, spawn_app};
use crate::samples;

const CONNECTIONS: usize = 64;
const PER_CONNECTION: usize = 800;

async fn run(app: &crate::helpers::TestApp, account: &str, callbacks: Vec<Vec<Callback>>) {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CONNECTIONS)
        .build()
        .unwrap();
    let url = Arc::new(app.url(account));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for batch in callbacks {
        let http = http.clone();
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(batch.len());
            for callback in batch {
                let t = Instant::now();
                let response = http
                    .post(url.as_str())
                    .query(&callback.query)
                    .body(callback.body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                let _ = response.bytes().await;
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut all: Vec<Duration> = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let elapsed = started.elapsed();
    all.sort();
    let p = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    eprintln!(
        "{account}: {} callbacks in {elapsed:?}: {:.0}/s, p50 {:?}, p99 {:?}",
        all.len(),
        all.len() as f64 / elapsed.as_secs_f64(),
        p(0.5),
        p(0.99)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a load probe, not a test"]
async fn bench_plaintext_and_safe_mode() {
    let app = spawn_app().await;
    for (account, encrypt) in [(app.plain.clone(), false), (app.safe.clone(), true)] {
        let callbacks: Vec<Vec<Callback>> = (0..CONNECTIONS)
            .map(|c| {
                (0..PER_CONNECTION)
                    .map(|i| {
                        let xml = samples::text(&format!("oBench{c}"), i as u64 + 1, "路灯坏了");
                        if encrypt {
                            account.encrypted_callback(&xml)
                        } else {
                            account.plain_callback(&xml)
                        }
                    })
                    .collect()
            })
            .collect();
        run(&app, &account.id, callbacks).await;
    }
    assert_eq!(app.stored().await.len(), 2 * CONNECTIONS * PER_CONNECTION);
}
