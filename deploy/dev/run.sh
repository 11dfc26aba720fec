#!/usr/bin/env bash
# Runs the whole platform locally: NATS and PostgreSQL (up.sh), the mock WeChat API and
# the four services, then demo citizen traffic from wechat-sim. Logs go to .local/logs/.
# Ctrl-C stops everything it started.
#
#   deploy/dev/run.sh            run until Ctrl-C
#   deploy/dev/run.sh --smoke    start everything, check readiness and demo traffic, stop
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
smoke=false
[ "${1:-}" = "--smoke" ] && smoke=true

log() { printf '[dev/run] %s\n' "$*" >&2; }

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

# Demo API keys: one admin, one department agent. Never use these outside a laptop.
export API_KEYS="${API_KEYS:-city-office:admin:dev-admin-key-0001,social-security:agent+viewer:dev-social-key-0001}"
export RUST_LOG="${RUST_LOG:-info}"
# interaction-svc answers citizens through the mock WeChat API started below.
export WECHAT_API_BASE_URL="${WECHAT_API_BASE_URL:-http://127.0.0.1:9100}"

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

command -v curl >/dev/null 2>&1 || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl
}

start wechat-sim-api "$bin/wechat-sim" api --listen 127.0.0.1:9100
wait_ready wechat-sim-api http://127.0.0.1:9100/sim/healthz
start interaction-svc "$bin/interaction-svc"
start content-svc "$bin/content-svc"
start stats-svc "$bin/stats-svc"
start gateway "$bin/gateway"
wait_ready interaction-svc http://127.0.0.1:9081/readyz
wait_ready content-svc http://127.0.0.1:9082/readyz
wait_ready stats-svc http://127.0.0.1:9083/readyz
wait_ready gateway http://127.0.0.1:9080/readyz

cat >&2 <<TXT

  platform is up
  ---------------------------------------------------------------
  gateway callbacks     http://127.0.0.1:8080/wechat/demo
  interaction-svc gRPC  127.0.0.1:50051   admin http://127.0.0.1:9081
  content-svc gRPC      127.0.0.1:50052   admin http://127.0.0.1:9082
  stats-svc gRPC        127.0.0.1:50053   admin http://127.0.0.1:9083
  gateway admin         http://127.0.0.1:9080/metrics
  mock WeChat API       http://127.0.0.1:9100/sim/calls
  admin API key         dev-admin-key-0001
  ---------------------------------------------------------------
TXT

if $smoke; then
  log "smoke: every service is ready"
  exit 0
fi
log "press Ctrl-C to stop"
wait -n "${pids[@]}" || true
log "a process exited; stopping the rest"
