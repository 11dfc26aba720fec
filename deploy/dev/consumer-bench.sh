#!/usr/bin/env bash
# The inbound consumer's benchmark (interaction-svc, release build, real NATS and
# PostgreSQL), in two parts, each in a fresh NATS namespace and database:
#   1. apply rate: CONSUMER_BENCH_MESSAGES citizen texts (from CONSUMER_BENCH_CITIZENS
#      citizens) are written straight into WECHAT_INBOUND, then interaction-svc starts
#      and applies them; rate = events / (last - first processed_at);
#   2. callback -> ticket: the gateway takes safe-mode callbacks at
#      CONSUMER_BENCH_RATE/s for CONSUMER_BENCH_DURATION (interaction-svc also answers
#      the passive replies); latency = processed_at - the stream's store time.
# Both figures come from `wechat-sim consumer-report` (the stream's timestamps joined
# with processed_events). Repeated CONSUMER_BENCH_REPEAT times; results go to
# docs/benchmarks.md between the consumer markers. Short run: CONSUMER_BENCH_QUICK=1.
# To compare two builds of interaction-svc, point CONSUMER_BENCH_INTERACTION_BIN at the
# other binary and CONSUMER_BENCH_OUT at a scratch file.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
log() { printf '[consumer-bench] %s\n' "$*" >&2; }

"$root/deploy/dev/up.sh"
set -a
# shellcheck disable=SC1091
. "$root/.local/dev.env"
set +a
# shellcheck source=deploy/dev/pkg-lib.sh
. "$root/deploy/dev/pkg-lib.sh"
command -v jq >/dev/null 2>&1 || ensure_pkgs jq
command -v psql >/dev/null 2>&1 || ensure_pkgs postgresql-client

if [ "${CONSUMER_BENCH_QUICK:-0}" = 1 ]; then
  messages="${CONSUMER_BENCH_MESSAGES:-3000}"
  duration="${CONSUMER_BENCH_DURATION:-5s}"
  repeats="${CONSUMER_BENCH_REPEAT:-1}"
else
  messages="${CONSUMER_BENCH_MESSAGES:-30000}"
  duration="${CONSUMER_BENCH_DURATION:-30s}"
  repeats="${CONSUMER_BENCH_REPEAT:-3}"
fi
citizens="${CONSUMER_BENCH_CITIZENS:-$((messages / 3))}"
rate="${CONSUMER_BENCH_RATE:-1000}"
out="${CONSUMER_BENCH_OUT:-$root/docs/benchmarks.md}"

log "building release binaries"
cargo build --release --locked -q -p interaction-svc -p gateway -p wechat-sim
bin="$root/target/release"
sim="$bin/wechat-sim"
interaction_bin="${CONSUMER_BENCH_INTERACTION_BIN:-$bin/interaction-svc}"
# shellcheck source=deploy/dev/bench-lib.sh
. "$root/deploy/dev/bench-lib.sh"

work="$(mktemp -d)"
run_id="cb$(date +%s)"
svc_pid=""
gateway_pid=""
prefix=""
database=""
server="${DATABASE_URL%/}"
stop_run() {
  for pid in "$gateway_pid" "$svc_pid"; do
    [ -n "$pid" ] && { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
  done
  gateway_pid=""
  svc_pid=""
  if [ -n "$prefix" ]; then
    drop_namespace "$prefix"
    for stream in INTERACTION DEADLETTER CONTENT STATS; do
      "$sim" stream-count --prefix "$prefix" --stream "$stream" --delete >/dev/null 2>&1 || true
    done
    "$sim" stream-count --stream "KV_${prefix}_wechat_access_tokens" --delete >/dev/null 2>&1 || true
  fi
  [ -n "$database" ] && psql "$server/postgres" -qAtc "DROP DATABASE IF EXISTS \"$database\" WITH (FORCE)" >/dev/null 2>&1 || true
  prefix=""
  database=""
}
trap 'stop_run; rm -rf "$work"' EXIT

wait_ready() { # admin port, pid, log
  for _ in $(seq 1 300); do
    curl -fs "http://127.0.0.1:$1/readyz" >/dev/null 2>&1 && return 0
    kill -0 "$2" 2>/dev/null || { cat "$3" >&2; exit 1; }
    sleep 0.1
  done
  log "not ready: see $3"
  exit 1
}

start_service() { # run name
  prefix="${run_id}$1"
  database="consumer_bench_${prefix}"
  env NATS_PREFIX="$prefix" DATABASE_URL="$server/$database" GRPC_ADDR=127.0.0.1:0 \
    ADMIN_ADDR=127.0.0.1:19181 API_KEYS="bench:admin:bench-admin-key-0001" \
    WECHAT_ACCOUNTS="bench-safe" WECHAT_BENCH_SAFE_APPID="$appid" WECHAT_BENCH_SAFE_SECRET=bench \
    WECHAT_API_BASE_URL=http://127.0.0.1:9 RUST_LOG="${RUST_LOG:-warn}" \
    "$interaction_bin" >>"$work/interaction.log" 2>&1 &
  svc_pid=$!
  wait_ready 19181 "$svc_pid" "$work/interaction.log"
}

processed() { psql "$server/$database" -qAtc "SELECT count(*) FROM processed_events"; }
stored() { "$sim" stream-count --prefix "$prefix" --json 2>/dev/null | jq -r .messages; }
wait_applied() { # expected count
  local last=-1 same=0 now
  while :; do
    now="$(processed)"
    [ "$now" -ge "$1" ] && return 0
    if [ "$now" = "$last" ]; then same=$((same + 1)); else same=0; fi
    [ "$same" -ge 100 ] && { log "stuck at $now of $1 applied"; return 1; }
    last="$now"
    sleep 0.2
  done
}

: >"$work/results.jsonl"
for round in $(seq 1 "$repeats"); do
  log "round $round/$repeats: apply rate over $messages prefilled messages"
  prefix="${run_id}p$round"
  "$sim" prefill --prefix "$prefix" --account bench-safe --original-id "$original_id" \
    --messages "$messages" --citizens "$citizens"
  start_service "p$round"
  wait_applied "$messages"
  "$sim" consumer-report --prefix "$prefix" --database-url "$server/$database" --json |
    jq -c '. + {part: "prefill"}' >>"$work/results.jsonl"
  stop_run

  log "round $round/$repeats: callback -> ticket at $rate/s for $duration through the gateway"
  start_service "g$round"
  env NATS_PREFIX="$prefix" HTTP_ADDR=127.0.0.1:18180 ADMIN_ADDR=127.0.0.1:19180 \
    WECHAT_ACCOUNTS=bench-safe $(account_env safe) RUST_LOG="${RUST_LOG:-warn}" \
    "$bin/gateway" >>"$work/gateway.log" 2>&1 &
  gateway_pid=$!
  wait_ready 19180 "$gateway_pid" "$work/gateway.log"
  # shellcheck disable=SC2046
  "$sim" load --gateway http://127.0.0.1:18180 $(account_flags safe) --rate "$rate" \
    --duration "$duration" --concurrency 64 --json >"$work/load.json"
  wait_applied "$(stored)"
  "$sim" consumer-report --prefix "$prefix" --database-url "$server/$database" --json |
    jq -c --slurpfile load "$work/load.json" \
      '. + {part: "gateway", callbacks_per_second: $load[0].callbacks_per_sec, callback_p99_ms: $load[0].p99_ms, errors: $load[0].errors}' \
      >>"$work/results.jsonl"
  stop_run
done

commit="$(git rev-parse --short HEAD)$(git diff --quiet -- platform interaction-svc gateway || echo '+dirty')"
PYTHONPATH="$root/deploy/dev" python3 - "$work/results.jsonl" "$out" "$commit" "$messages" "$citizens" "$rate" "$duration" <<'PY'
import json, sys, datetime
from results_doc import write_between_markers
path, out, commit, messages, citizens, rate, duration = sys.argv[1:]
runs = [json.loads(line) for line in open(path)]
def median(values):
    values = sorted(values)
    return values[len(values) // 2]
prefill = [r for r in runs if r["part"] == "prefill"]
gateway = [r for r in runs if r["part"] == "gateway"]
lines = [
    f"Run {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC, commit `{commit}`, {len(prefill)} round(s), medians (range).",
    "",
    "| part | figure | median | range | target |",
    "| --- | --- | ---: | ---: | ---: |",
]
rates = [r["applied_per_second"] for r in prefill]
lines.append(f"| {messages} prefilled texts, {citizens} citizens | applied/s | {median(rates):,.0f} | {min(rates):,.0f}-{max(rates):,.0f} | ≥ 3,000 |")
for key, label in [("lag_p50_ms", "p50"), ("lag_p99_ms", "p99"), ("lag_max_ms", "max")]:
    values = [r[key] for r in gateway]
    target = "≤ 250 ms" if label == "p99" else ""
    lines.append(f"| gateway at {rate}/s for {duration} | callback stored → applied {label} | {median(values):,.1f} ms | {min(values):,.1f}-{max(values):,.1f} | {target} |")
sent = [r.get("callbacks_per_second") or 0 for r in gateway]
lines.append(f"| gateway at {rate}/s for {duration} | callbacks answered/s | {median(sent):,.0f} | {min(sent):,.0f}-{max(sent):,.0f} | |")
lines.append(f"| gateway at {rate}/s for {duration} | applied / stored | {sum(r['applied'] for r in gateway)} / {sum(r['stream_messages'] for r in gateway)} | | all |")
block = write_between_markers(out, "consumer", "\n".join(lines), "Inbound consumer (interaction-svc)")
print(block)
PY
