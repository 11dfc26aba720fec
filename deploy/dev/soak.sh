#!/usr/bin/env bash
# The soak (issue 16): citizens at a fixed rate through the whole stack for a long run,
# on a private copy of it (own nats-server and PostgreSQL on free ports, one gateway,
# interaction-svc, stats-svc; release build). Demo mix: follows, texts, menu taps
# (`wechat-sim citizens`). Reports:
#   - callback -> applied latency p50/p99 per consumer (JetStream store time to the
#     commit that recorded the event: `wechat-sim consumer-report`); a text's commit is
#     the one that opens or joins its ticket;
#   - the gateway's answer latency p50/p99 as WeChat saw it, and the answers by status;
#   - each process's RSS at start, at minute 2 and at the end;
#   - PostgreSQL (both databases) and JetStream growth, the reply bucket's size.
#
#   deploy/dev/soak.sh [--minutes N] [--rate R]      default: 10 minutes at 1,000/s
# The report is also written to .local/soak/report.txt.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
log() { printf '[soak] %s\n' "$*" >&2; }

minutes=10 rate=1000
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) minutes="$2"; shift 2 ;;
    --rate) rate="$2"; shift 2 ;;
    *) log "usage: soak.sh [--minutes N] [--rate R]"; exit 2 ;;
  esac
done
for tool in jq psql curl python3; do
  command -v "$tool" >/dev/null 2>&1 || { log "$tool is missing"; exit 1; }
done

log "building (release) gateway, interaction-svc, stats-svc, wechat-sim"
[ "${STACK_NO_BUILD:-0}" = 1 ] ||
  cargo build --release --locked -q -p gateway -p interaction-svc -p stats-svc -p wechat-sim
bin="$root/target/release"
# shellcheck source=deploy/dev/stack-lib.sh
. "$root/deploy/dev/stack-lib.sh"
stack_init
out_dir="$root/.local/soak"
mkdir -p "$out_dir"
keep_logs="$out_dir/logs"

nats_start
pg_init
start_interaction
start_stats
gw_http="$(free_port)" gw_admin="$(free_port)"
start_gateway gateway "$gw_http" "$gw_admin"

processes=(gateway interaction-svc stats-svc nats-server citizens)
# sample LABEL: every process's RSS (MiB), both databases' and JetStream's size (MiB).
sample() {
  local name line="$1"
  for name in "${processes[@]}"; do line+=" $name=$(($(rss_kb "$name") / 1024))"; done
  line+=" postgres=$(($(pg_rss_kb) / 1024))"
  line+=" db_interaction=$(sql postgres "SELECT pg_database_size('interaction') / 1048576")"
  line+=" db_stats=$(sql postgres "SELECT pg_database_size('stats') / 1048576")"
  line+=" jetstream=$(curl -fs "http://127.0.0.1:$nats_mon/jsz" | jq '.storage / 1048576 | floor')"
  echo "$line" >>"$work/samples.txt"
}
value() { # label key
  awk -v l="$1" -v k="$2" '$1 == l { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) print kv[2] } }' "$work/samples.txt"
}

log "citizens: $rate/s for $minutes min"
start citizens "$sim" citizens --gateway "http://127.0.0.1:$gw_http" --rate "$rate" \
  --duration "${minutes}m" --citizens $((rate * 10)) --api-listen "127.0.0.1:$api_port" \
  --out "$work/callbacks.csv"
wait_port "$api_port" "the mock WeChat API"
sleep 5
sample start
started="$(now_ms)"
sampled_2=false
while [ ! -f "$work/callbacks.csv" ]; do
  kill -0 "${PIDS[citizens]}" 2>/dev/null || { log "citizens exited:"; tail -n 20 "$work/citizens.log" >&2; exit 1; }
  if ! $sampled_2 && [ $(($(now_ms) - started)) -ge 115000 ]; then
    sample minute-2
    sampled_2=true
    log "minute 2 sampled"
  fi
  sleep 1
done
sample end
curl -fs "http://127.0.0.1:$gw_admin/metrics" | grep -E '^gateway_(callbacks|replies)_total' >"$work/gateway-metrics.txt" || true
log "traffic over; waiting for both consumers"
stored="$(until_ok stream_messages)"
for _ in $(seq 1 600); do
  [ "$(applied_inbound interaction)" -ge "$stored" ] && [ "$(applied_inbound stats)" -ge "$stored" ] && break
  sleep 0.5
done
sample caught-up

sql interaction "CREATE TABLE soak_sent (event_id text, label text, status int, attempts int, latency_ms float8, sent_at_ms bigint)" >/dev/null
psql "$db_server/interaction" -qX -c "\\copy soak_sent FROM '$work/callbacks.csv' CSV HEADER"
answers="$(sql interaction "SELECT string_agg(status || ': ' || n, ', ' ORDER BY status) FROM (SELECT status, count(*) n FROM soak_sent GROUP BY 1) s")"
answer_ms="$(sql interaction "SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms)::numeric, 1) || ' / ' || round(percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms)::numeric, 1) FROM soak_sent WHERE status = 200")"
mix="$(sql interaction "SELECT string_agg(label || ' ' || n, ', ' ORDER BY n DESC) FROM (SELECT label, count(*) n FROM soak_sent GROUP BY 1) s")"
for db in interaction stats; do
  "$sim" consumer-report --nats "$nats_url" --database-url "$db_server/$db" --json >"$work/lag-$db.json"
done
replies="$("$sim" stream-count --nats "$nats_url" --stream KV_GATEWAY_REPLIES --json)"

report="$out_dir/report.txt"
{
  echo "soak $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD), release build: $rate callbacks/s for $minutes min, one gateway"
  echo "mix: $mix"
  echo "answers by status: $answers; answer latency p50 / p99: $answer_ms ms"
  echo "stored in WECHAT_INBOUND: $stored"
  for db in interaction stats; do
    jq -r --arg db "$db" '"\($db): applied \(.applied) of \(.stream_messages); store -> commit p50 \(.lag_p50_ms | floor) ms, p99 \(.lag_p99_ms | floor) ms, max \(.lag_max_ms | floor) ms"' "$work/lag-$db.json"
  done
  echo "RSS MiB (start / minute 2 / end / caught up):"
  for name in "${processes[@]}" postgres; do
    printf '  %-16s %s / %s / %s / %s\n' "$name" "$(value start "$name")" "$(value minute-2 "$name")" "$(value end "$name")" "$(value caught-up "$name")"
  done
  for key in db_interaction db_stats jetstream; do
    printf '%-16s MiB: %s at start, %s at the end\n' "$key" "$(value start "$key")" "$(value caught-up "$key")"
  done
  echo "gateway outcomes: $(awk '{split($1, m, "{"); split($1, a, "outcome=\""); split(a[2], b, "\""); n[m[1] "/" b[1]] += $2} END {for (k in n) printf "%s %d; ", k, n[k]}' "$work/gateway-metrics.txt")"
  echo "reply bucket (KV_GATEWAY_REPLIES): $(jq -r '"\(.messages) entries, \(.bytes / 1048576 | floor) MiB"' <<<"$replies")"
  echo "subjects refused to a service's NATS user: $(nats_violations | wc -l)"
  nats_violations
} | tee "$report"
