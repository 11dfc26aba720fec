#!/usr/bin/env bash
# Runs the whole platform locally: NATS and PostgreSQL (up.sh), the four services, then
# `wechat-sim demo`: the mock WeChat API (127.0.0.1:9100) plus demo citizens posting
# callbacks to the gateway, whose messages open tickets. Logs go to .local/logs/.
# Ctrl-C stops everything it started.
#
#   deploy/dev/run.sh            run until Ctrl-C
#   deploy/dev/run.sh --smoke    start everything, check readiness and that demo traffic
#                                opens a ticket (needs psql; skipped without), stop
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
smoke=false
[ "${1:-}" = "--smoke" ] && smoke=true

log() { printf '[dev/run] %s\n' "$*" >&2; }
# shellcheck source=deploy/dev/pkg-lib.sh
. "$root/deploy/dev/pkg-lib.sh"

"$root/deploy/dev/up.sh"
set -a
# shellcheck disable=SC1091
. "$root/.local/dev.env"
set +a

log "building the binaries"
cargo build --workspace --bins --locked --quiet
bin="$root/target/debug"
logs="$root/.local/logs"
mkdir -p "$logs"

# Demo API keys: one admin and two department agents (citizen-services is where
# interaction-svc routes a message no rule routes). Never use these outside a laptop.
export API_KEYS="${API_KEYS:-city-office:admin:dev-admin-key-0001,social-security:agent+viewer:dev-social-key-0001,citizen-services:agent+viewer:dev-citizen-key-0001}"
export RUST_LOG="${RUST_LOG:-info}"
# interaction-svc answers citizens through the mock WeChat API of `wechat-sim demo`,
# whose demo account (appid wxdemo0000000001, secret demo-secret) is interaction-svc's
# and the gateway's default account `demo`; unrouted tickets go to citizen-services.
export WECHAT_API_BASE_URL="${WECHAT_API_BASE_URL:-http://127.0.0.1:9100}"
export INTERACTION_DEFAULT_DEPARTMENT="${INTERACTION_DEFAULT_DEPARTMENT:-citizen-services}"

pids=()
stop_all() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_all EXIT
trap 'exit 130' INT TERM

start() {
  local name="$1"
  shift
  "$@" >"$logs/$name.log" 2>&1 &
  pids+=("$!")
  log "started $name (pid $!, log .local/logs/$name.log)"
}

wait_ready() {
  local name="$1" url="$2"
  for _ in $(seq 1 150); do
    if curl -fsS "$url" >/dev/null 2>&1; then
      log "$name ready ($url)"
      return 0
    fi
    sleep 0.2
  done
  log "$name did not become ready; last log lines:"
  tail -n 30 "$logs/$name.log" >&2
  return 1
}

command -v curl >/dev/null 2>&1 || ensure_pkgs curl

start interaction-svc "$bin/interaction-svc"
start content-svc "$bin/content-svc"
start stats-svc "$bin/stats-svc"
start gateway "$bin/gateway"
wait_ready interaction-svc http://127.0.0.1:9081/readyz
wait_ready content-svc http://127.0.0.1:9082/readyz
wait_ready stats-svc http://127.0.0.1:9083/readyz
wait_ready gateway http://127.0.0.1:9080/readyz
# Tickets in interaction-svc's database (earlier runs' included), or nothing without psql.
ticket_count() {
  psql "${DATABASE_URL%/}/interaction" -tAc 'select count(*) from tickets' 2>/dev/null
}
tickets_before="$(ticket_count || true)"
# Citizens only once every service answers, so the first callbacks already get replies.
start wechat-sim-demo "$bin/wechat-sim" demo \
  --gateway http://127.0.0.1:8080 --api-listen 127.0.0.1:9100 --job-callbacks
wait_ready wechat-sim-demo http://127.0.0.1:9100/sim/healthz

cat >&2 <<TXT

  platform is up
  ---------------------------------------------------------------
  gateway callbacks     http://127.0.0.1:8080/wechat/demo
  interaction-svc gRPC  127.0.0.1:50051   admin http://127.0.0.1:9081
  content-svc gRPC      127.0.0.1:50052   admin http://127.0.0.1:9082
  stats-svc gRPC        127.0.0.1:50053   admin http://127.0.0.1:9083
  dashboard             http://127.0.0.1:8083
  service hall          http://127.0.0.1:8084/hall/demo
  gateway admin         http://127.0.0.1:9080/metrics
  mock WeChat API       http://127.0.0.1:9100/sim/calls
  demo citizens         .local/logs/wechat-sim-demo.log
  admin API key         dev-admin-key-0001
  ---------------------------------------------------------------
TXT

if $smoke; then
  log "smoke: every service is ready"
  if ! command -v psql >/dev/null 2>&1; then
    log "smoke: psql not found; not checking that demo traffic opens tickets"
    exit 0
  fi
  for _ in $(seq 1 60); do
    tickets="$(ticket_count || true)"
    if [ "${tickets:-0}" -gt "${tickets_before:-0}" ] 2>/dev/null; then
      log "smoke: demo traffic opened $((tickets - ${tickets_before:-0})) ticket(s)"
      exit 0
    fi
    sleep 0.5
  done
  log "smoke: demo traffic opened no ticket within 30 s; last demo log lines:"
  tail -n 30 "$logs/wechat-sim-demo.log" >&2
  exit 1
fi
# 90 days of history for the demo accounts, so the dashboard's charts are full at once.
log "seeding 90 days of stats history (stats-svc examples/seed_history.rs)"
STATS_GRPC_URL=http://127.0.0.1:50053 STATS_API_KEY=dev-admin-key-0001 \
  cargo run -q --locked -p stats-svc --example seed_history -- demo >>"$logs/seed.log" 2>&1 ||
  log "seeding failed (see $logs/seed.log); the dashboard shows live traffic only"
log "press Ctrl-C to stop"
wait -n "${pids[@]}" || true
log "a process exited; stopping the rest"
