//! The HTTP surface: WeChat's endpoints (decode → [`super::ops`] → encode, with fault
//! injection and call recording) and the `/sim/*` control endpoints.

use std::collections::{BTreeMap, HashMap};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, get, on, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ops::{ENDPOINTS, Endpoint, Req};
use super::state::{FaultRequest, RecordedCall, SimError, SimState, WxErr};

/// Builds the mock's router: every WeChat endpoint plus the `/sim/*` control endpoints.
pub fn router(state: SimState) -> Router {
    let mut router = Router::new();
    for endpoint in ENDPOINTS {
        let filter = if endpoint.method == Method::GET {
            MethodFilter::GET
        } else {
            MethodFilter::POST
        };
        router = router.route(
            endpoint.path,
            on(
                filter,
                move |State(state): State<SimState>,
                      Query(query): Query<HashMap<String, String>>,
                      body: Bytes| { api_call(state, endpoint, query, body) },
            ),
        );
    }
    router
        .route("/sim/healthz", get(|| async { "ok" }))
        .route("/sim/calls", get(list_calls).delete(clear_calls))
        .route("/sim/faults", post(inject_faults).delete(clear_faults))
        .route("/sim/interactions", post(record_interaction))
        .route("/sim/followers", post(add_followers))
        .route("/sim/accounts", get(list_accounts))
        .merge(super::media::routes())
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                Json(json!({"errcode": 40066, "errmsg": "invalid url"})),
            )
        })
        .with_state(state)
}

/// Serves one WeChat call: latency, a hold, busy fault (before the call, or after it if
/// so injected), token check, the endpoint's rule, record, and a lost answer if one is
/// injected.
pub(super) async fn api_call(
    state: SimState,
    endpoint: &'static Endpoint,
    query: HashMap<String, String>,
    body: Bytes,
) -> Response {
    let latency = state.lock().faults.latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let held = state
        .lock()
        .faults
        .hold_path
        .take_if(|prefix| endpoint.path.starts_with(prefix.as_str()))
        .is_some();
    if held {
        state.hold().await;
    }
    let now = Utc::now();
    let parsed: Result<Value, WxErr> = if body.is_empty() {
        if endpoint.method == Method::POST {
            Err(WxErr::new(44002, "empty post data"))
        } else {
            Ok(Value::Null)
        }
    } else {
        serde_json::from_slice(&body).map_err(|_| WxErr::new(47001, "data format error"))
    };
    let recorded_body = parsed.as_ref().ok().filter(|v| !v.is_null()).cloned();

    let mut world = state.lock();
    let faults = &mut world.faults;
    let busy =
        take_fault(&mut faults.busy, faults.busy_path.as_deref(), endpoint.path).then(|| {
            match faults.busy_errcode {
                Some(code) => WxErr::new(code, "injected refusal"),
                None => WxErr::new(-1, "system error"),
            }
        });
    let busy_after_effect = faults.busy_after_effect;
    let mut appid = None;
    let result = if let Some(busy) = busy.clone().filter(|_| !busy_after_effect) {
        Err(busy)
    } else {
        parsed.and_then(|body| {
            let caller = if endpoint.auth {
                let caller = world.authorize(query.get("access_token").map(String::as_str), now)?;
                appid = Some(caller.clone());
                if take_fault(&mut world.faults.reject, None, endpoint.path) {
                    return Err(WxErr::new(
                        40001,
                        "invalid credential, access_token is invalid or not latest",
                    ));
                }
                caller
            } else {
                String::new()
            };
            let req = Req {
                appid: caller,
                query: &query,
                body,
                now,
            };
            (endpoint.op)(&mut world, &req)
        })
    };
    let to_json = |e: WxErr| match e.msg_id {
        Some(msg_id) => json!({"errcode": e.code, "errmsg": e.msg, "msg_id": msg_id}),
        None => json!({"errcode": e.code, "errmsg": e.msg}),
    };
    // What the call did (its job's callback follows it), and what the caller is
    // told: the same, unless it was carried out and then answered busy.
    let done = result.unwrap_or_else(to_json);
    let answer = match busy {
        Some(busy) if busy_after_effect => to_json(busy),
        _ => done.clone(),
    };
    let errcode = answer.get("errcode").and_then(Value::as_i64).unwrap_or(0);
    let appid = appid.or_else(|| query.get("appid").cloned()).or_else(|| {
        recorded_body
            .as_ref()
            .and_then(|b| b.get("appid"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    let faults = &mut world.faults;
    let lost = take_fault(&mut faults.lose, faults.lose_path.as_deref(), endpoint.path);
    let seq = world.calls.len() as u64 + 1;
    world.calls.push(RecordedCall {
        seq,
        at: now,
        method: endpoint.method.to_string(),
        path: endpoint.path.to_owned(),
        query: query.into_iter().collect::<BTreeMap<_, _>>(),
        body: recorded_body,
        appid: appid.clone(),
        errcode,
    });
    drop(world);
    super::job_callbacks::after_call(&state, endpoint.path, appid.as_deref(), &done);
    tracing::debug!(
        path = endpoint.path,
        appid = appid.as_deref().unwrap_or(""),
        errcode,
        lost,
        "mock wechat call"
    );
    if lost {
        return (StatusCode::BAD_GATEWAY, "upstream answer lost").into_response();
    }
    Json(answer).into_response()
}

/// Uses up one of the `left` injected faults if `path` is under `prefix` (any path
/// when there is none).
fn take_fault(left: &mut u32, prefix: Option<&str>, path: &str) -> bool {
    let hit = *left > 0 && prefix.is_none_or(|prefix| path.starts_with(prefix));
    if hit {
        *left -= 1;
    }
    hit
}

#[derive(Deserialize)]
struct CallsQuery {
    path: Option<String>,
}

async fn list_calls(
    State(state): State<SimState>,
    Query(q): Query<CallsQuery>,
) -> Json<Vec<RecordedCall>> {
    Json(match q.path {
        Some(path) => state.calls_to(&path),
        None => state.calls(),
    })
}

async fn clear_calls(State(state): State<SimState>) -> StatusCode {
    state.clear_calls();
    StatusCode::NO_CONTENT
}

async fn inject_faults(
    State(state): State<SimState>,
    Json(faults): Json<FaultRequest>,
) -> Response {
    control(state.inject(&faults))
}

async fn clear_faults(State(state): State<SimState>) -> StatusCode {
    state.clear_faults();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct Interaction {
    appid: String,
    openid: String,
    /// When the citizen interacted (RFC 3339); now if absent.
    at: Option<DateTime<Utc>>,
}

async fn record_interaction(State(state): State<SimState>, Json(i): Json<Interaction>) -> Response {
    control(state.record_interaction(&i.appid, &i.openid, i.at.unwrap_or_else(Utc::now)))
}

#[derive(Deserialize)]
struct Followers {
    appid: String,
    openids: Vec<String>,
}

async fn add_followers(State(state): State<SimState>, Json(f): Json<Followers>) -> Response {
    control(state.add_followers(&f.appid, &f.openids))
}

async fn list_accounts(State(state): State<SimState>) -> Json<Vec<String>> {
    Json(state.appids())
}

fn control(result: Result<(), SimError>) -> Response {
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => (StatusCode::NOT_FOUND, Json(json!({"error": e.to_string()}))).into_response(),
    }
}
