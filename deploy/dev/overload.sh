#!/usr/bin/env bash
# Overload (issue 16): what the gateway does at twice the load this machine can carry,
# on a private copy of the stack (own nats-server and PostgreSQL, one gateway,
# interaction-svc answering passive replies and applying every callback, stats-svc;
# release build), driven by `wechat-sim load` (safe mode, demo account):
#   1. capacity: closed loop, 64 connections, OVERLOAD_SECONDS;
#   2. twice that rate, open loop, OVERLOAD_CONNECTIONS connections (default 4096),
#      for each MAX_IN_FLIGHT in OVERLOAD_BOUNDS (default: 1024, the default, and 4096);
#   3. right after each, half the capacity for 5 s: does it recover at once?
# Reports answers by status, latency p50/p99/max, the gateway's RSS (and peak), then
# waits for both consumers to apply everything and counts what was dead-lettered.
#
#   deploy/dev/overload.sh          OVERLOAD_SECONDS (default 10), OVERLOAD_CONNECTIONS,
#                                   OVERLOAD_BOUNDS (the MAX_IN_FLIGHT values, default "1024 4096")
# The report is also written to .local/overload/report.txt.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
log() { printf '[overload] %s\n' "$*" >&2; }
seconds="${OVERLOAD_SECONDS:-10}"
connections="${OVERLOAD_CONNECTIONS:-4096}"
for tool in jq psql curl python3; do
  command -v "$tool" >/dev/null 2>&1 || { log "$tool is missing"; exit 1; }
done
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

log "building (release) gateway, interaction-svc, stats-svc, wechat-sim"
[ "${STACK_NO_BUILD:-0}" = 1 ] ||
  cargo build --release --locked -q -p gateway -p interaction-svc -p stats-svc -p wechat-sim
bin="$root/target/release"
# shellcheck source=deploy/dev/stack-lib.sh
. "$root/deploy/dev/stack-lib.sh"
stack_init
out_dir="$root/.local/overload"
mkdir -p "$out_dir"
nats_start
pg_init
start_interaction
start_stats
gw_http="$(free_port)" gw_admin="$(free_port)"

hwm_mb() { awk '/^VmHWM/ {print int($2 / 1024)}' "/proc/${PIDS[gateway]}/status"; }
rss_mb() { echo $(($(rss_kb gateway) / 1024)); }
load() { # label args...
  local label="$1"
  shift
  "$sim" load --gateway "http://127.0.0.1:$gw_http" --json "$@" >"$work/$label.json"
  jq -r --arg l "$label" '"\($l): \(.sent_total) sent, \(.ok_total) answered 200, \(.errors) failed \(.error_reasons), \(.callbacks_per_sec | floor)/s answered; latency p50 \(.p50_ms) ms, p99 \(.p99_ms) ms, max \(.max_ms) ms"' "$work/$label.json" | tee -a "$work/report.txt" >&2
}

: >"$work/report.txt"
for bound in ${OVERLOAD_BOUNDS:-1024 4096}; do
  GATEWAY_EXTRA_ENV="MAX_IN_FLIGHT=$bound" start_gateway gateway "$gw_http" "$gw_admin"
  echo "--- MAX_IN_FLIGHT=$bound (gateway RSS at start $(rss_mb) MiB)" | tee -a "$work/report.txt" >&2
  load capacity --concurrency 64 --duration "${seconds}s" --warmup 2s --prebuild 200000
  capacity="$(jq -r '.callbacks_per_sec | floor' "$work/capacity.json")"
  double=$((capacity * 2))
  load "twice-$double" --concurrency "$connections" --rate "$double" --duration "${seconds}s" \
    --prebuild $((double * (seconds + 2)))
  echo "gateway RSS after: $(rss_mb) MiB, peak $(hwm_mb) MiB" | tee -a "$work/report.txt" >&2
  load "half-$((capacity / 2))" --concurrency 64 --rate $((capacity / 2)) --duration 5s --prebuild $((capacity * 3))
  stop gateway
done

log "waiting for both consumers to apply everything"
stored="$(until_ok stream_messages)"
began="$(now_ms)"
for _ in $(seq 1 3000); do
  [ "$(applied_inbound interaction)" -ge "$stored" ] && [ "$(applied_inbound stats)" -ge "$stored" ] && break
  sleep 0.2
done
took=$(($(now_ms) - began))
dead="$("$sim" stream-count --nats "$nats_url" --stream DEADLETTER --json 2>/dev/null | jq -r .messages || echo 0)"
report="$out_dir/report.txt"
{
  echo "overload $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD), release build, $connections connections at twice the capacity for ${seconds}s"
  cat "$work/report.txt"
  echo "stored $stored; interaction-svc applied $(applied_inbound interaction), stats-svc $(applied_inbound stats), $((took / 1000)) s after the last load; dead-lettered: ${dead:-0}"
  echo "subjects refused to a service's NATS user: $(nats_violations | wc -l)"
  nats_violations
} | tee "$report"
