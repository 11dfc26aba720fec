#!/usr/bin/env bash
# Faults, counted (issue 16). Starts a private copy of the whole stack (its own
# nats-server and PostgreSQL on free ports, interaction-svc, stats-svc, content-svc (idle:
# its start-up, consumers and outbox under its NATS user), two gateway
# replicas behind deploy/dev/balancer.py) and drives citizens at a fixed rate through
# it (`wechat-sim citizens`: the mock WeChat API, follows/texts/menu taps with WeChat's
# retries, and an agent answering tickets over gRPC) while, in turn, it
#   1. kills interaction-svc with SIGKILL and restarts it,
#   2. kills nats-server with SIGKILL and restarts it (same store),
#   3. restarts PostgreSQL in immediate mode (a crash, then recovery),
#   4. kills one gateway replica with SIGKILL (restarted 10 s later),
#   5. makes the mock WeChat API slow (1.5 s a call) and failing (errcode -1),
# and marks a few open tickets overdue every 2 s (their deadline moved into the past).
# The report counts every callback against the stream and both inbound consumers'
# processed_events and effects, the answers against WeChat's record, the overdue
# escalations, and the catch-up after each fault. Exit 1 on any violation of:
# 0 callbacks answered 200 and missing, 0 effects applied twice, catch-up <= 60 s, and no
# subject refused to a service's NATS user (each logs in as in production).
#
#   deploy/dev/chaos.sh            every fault, 100 callbacks/s for 240 s, release build
#   deploy/dev/chaos.sh --short    faults 1, 2 and 4, 20/s for 75 s, debug build (test.sh)
# CHAOS_RATE, CHAOS_SECONDS, CHAOS_PROFILE (release|debug) override (STACK_NO_BUILD=1: run
# the binaries already built); the report is also
# written to .local/chaos/report.txt, the logs of a failed run kept in .local/chaos/.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
log() { printf '[chaos] %s\n' "$*" >&2; }

short=false
[ "${1:-}" = "--short" ] && short=true
if $short; then
  rate="${CHAOS_RATE:-20}" seconds="${CHAOS_SECONDS:-75}" profile="${CHAOS_PROFILE:-debug}"
  faults=(kill_interaction kill_nats kill_gateway)
else
  rate="${CHAOS_RATE:-100}" seconds="${CHAOS_SECONDS:-240}" profile="${CHAOS_PROFILE:-release}"
  faults=(kill_interaction kill_nats restart_postgres kill_gateway slow_wechat)
fi
for tool in jq psql curl python3; do
  command -v "$tool" >/dev/null 2>&1 || { log "$tool is missing"; exit 1; }
done

log "building ($profile) gateway, interaction-svc, content-svc, stats-svc, wechat-sim"
if [ "${STACK_NO_BUILD:-0}" = 1 ]; then
  log "STACK_NO_BUILD=1: using the binaries in target/$profile as they are"
elif [ "$profile" = release ]; then
  cargo build --release --locked -q -p gateway -p interaction-svc -p content-svc -p stats-svc -p wechat-sim
else
  cargo build --locked -q -p gateway -p interaction-svc -p content-svc -p stats-svc -p wechat-sim
fi
bin="$root/target/$profile"
# shellcheck source=deploy/dev/stack-lib.sh
. "$root/deploy/dev/stack-lib.sh"
stack_init
out_dir="$root/.local/chaos"
mkdir -p "$out_dir"

log "stack in $work: nats :$nats_port, postgres :$pg_port"
nats_start
pg_init
start_content
start_interaction
start_stats
gw1_http="$(free_port)" gw1_admin="$(free_port)" gw2_http="$(free_port)" gw2_admin="$(free_port)"
start_gateway gateway-1 "$gw1_http" "$gw1_admin"
start_gateway gateway-2 "$gw2_http" "$gw2_admin"
lb_port="$(free_port)"
start balancer python3 "$root/deploy/dev/balancer.py" "$lb_port" "$gw1_http" "$gw2_http"
wait_port "$lb_port" balancer

log "citizens: $rate/s for ${seconds}s through the balancer; faults: ${faults[*]}"
traffic_start="$(now_ms)"
start citizens "$sim" citizens --gateway "http://127.0.0.1:$lb_port" --rate "$rate" \
  --duration "${seconds}s" --citizens $((rate * 5)) --api-listen "127.0.0.1:$api_port" \
  --out "$work/callbacks.csv" --answers-out "$work/answers.csv" \
  --grpc "http://127.0.0.1:$isvc_grpc" --api-key chaos-admin-key-0001
wait_port "$api_port" "the mock WeChat API"

# A few open tickets a time go overdue: their acknowledgement deadline moves into the
# past, and the sweeper (every second, on every replica) must escalate each once.
mark_overdue() {
  while :; do
    sql interaction "UPDATE tickets SET acknowledge_due_at = now() - interval '1 minute'
      WHERE id IN (SELECT id FROM tickets WHERE state = 'open' AND acknowledge_overdue_at IS NULL
      AND acknowledge_due_at > now() AND opened_at < now() - interval '3 seconds'
      ORDER BY opened_at LIMIT 3)" >/dev/null || true
    sleep 2
  done
}
mark_overdue &
PIDS[overdue-marker]=$!

declare -a catchups=()
violations=()

# catch_up FAULT: after a fault's end, the time until both inbound consumers have
# applied everything the stream held at that moment.
catch_up() {
  local ended target i s
  ended="$(now_ms)"
  target="$(until_ok stream_messages)" || { violations+=("$1: NATS did not answer"); return; }
  while :; do
    i="$(applied_inbound interaction || echo 0)"
    s="$(applied_inbound stats || echo 0)"
    if [ "${i:-0}" -ge "$target" ] && [ "${s:-0}" -ge "$target" ]; then break; fi
    if [ $(($(now_ms) - ended)) -gt 90000 ]; then
      violations+=("$1: consumers not caught up 90 s after the fault (interaction $i, stats $s of $target)")
      catchups+=("$1: > 90 s")
      return
    fi
    sleep 0.2
  done
  local took=$(($(now_ms) - ended))
  catchups+=("$1: $((took / 1000)).$(printf '%03d' $((took % 1000))) s (to $target stored)")
  [ "$took" -le 60000 ] || violations+=("$1: catch-up took $((took / 1000)) s > 60 s")
  log "$1: caught up in ${took} ms"
}

kill_interaction() {
  log "fault: SIGKILL interaction-svc"
  stop interaction-svc KILL
  sleep 5
  start_interaction
}
kill_nats() {
  log "fault: SIGKILL nats-server"
  stop nats-server KILL
  sleep 5
  nats_start
}
restart_postgres() {
  log "fault: PostgreSQL stopped in immediate mode, then started"
  pg_restart_immediate
}
kill_gateway() {
  log "fault: SIGKILL gateway-2 (restarted after 10 s)"
  stop gateway-2 KILL
  sleep 10
  start_gateway gateway-2 "$gw2_http" "$gw2_admin"
}
slow_wechat() {
  log "fault: WeChat API slow (1.5 s a call) and failing (the next 40 calls: -1) for 20 s"
  curl -fsS -XPOST "http://127.0.0.1:$api_port/sim/faults" -H 'content-type: application/json' \
    -d '{"latency_ms": 1500, "busy": 40}' >/dev/null
  sleep 20
  curl -fsS -XDELETE "http://127.0.0.1:$api_port/sim/faults" >/dev/null
}

sleep 10
fault_time=$(((seconds - 20) / ${#faults[@]}))
for fault in "${faults[@]}"; do
  began="$(now_ms)"
  "$fault"
  catch_up "$fault"
  rest=$((fault_time * 1000 - ($(now_ms) - began)))
  if [ "$rest" -gt 0 ]; then sleep "$((rest / 1000))"; fi
done

log "waiting for the traffic to end"
while [ ! -f "$work/callbacks.csv" ]; do
  kill -0 "${PIDS[citizens]}" 2>/dev/null || { log "citizens exited:"; tail -n 20 "$work/citizens.log" >&2; exit 1; }
  sleep 0.5
done
traffic_end="$(now_ms)"
stop overdue-marker
catch_up "end of traffic"
# The sweeper's last escalations and the relay's last events.
sleep 3

# --- counting -------------------------------------------------------------------------
for db in interaction stats; do
  sql "$db" "CREATE TABLE chaos_sent (event_id text, label text, status int, attempts int, latency_ms float8, sent_at_ms bigint)" >/dev/null
  psql "$db_server/$db" -qX -c "\\copy chaos_sent FROM '$work/callbacks.csv' CSV HEADER"
done
q() { sql interaction "$1"; }
qs() { sql stats "$1"; }
sent="$(q "SELECT count(*) FROM chaos_sent")"
ok200="$(q "SELECT count(*) FROM chaos_sent WHERE status = 200")"
statuses="$(q "SELECT string_agg(status || ': ' || n, ', ' ORDER BY status) FROM (SELECT status, count(*) n FROM chaos_sent GROUP BY 1) s")"
retried="$(q "SELECT count(*) FROM chaos_sent WHERE attempts > 1")"
stored="$(until_ok stream_messages)"
i_applied="$(applied_inbound interaction)"
s_applied="$(applied_inbound stats)"
i_missing="$(q "SELECT count(*) FROM chaos_sent c WHERE status = 200 AND NOT EXISTS (SELECT 1 FROM processed_events p WHERE p.event_id = c.event_id)")"
s_missing="$(qs "SELECT count(*) FROM chaos_sent c WHERE status = 200 AND NOT EXISTS (SELECT 1 FROM processed_events p WHERE p.event_id = c.event_id)")"
i_unknown="$(q "SELECT count(*) FROM processed_events p WHERE $inbound_ids AND NOT EXISTS (SELECT 1 FROM chaos_sent c WHERE c.event_id = p.event_id)")"
not200_applied="$(q "SELECT count(*) FROM chaos_sent c WHERE status <> 200 AND EXISTS (SELECT 1 FROM processed_events p WHERE p.event_id = c.event_id)")"
# Effects: each applied text is one inbound line in a ticket's thread; each applied
# callback is one count in stats' account_inbound (messages + events).
texts_applied="$(q "SELECT count(*) FROM chaos_sent c JOIN processed_events p USING (event_id) WHERE c.label = 'text'")"
thread_lines="$(q "SELECT count(*) FROM ticket_messages WHERE direction = 'inbound'")"
stats_counted="$(qs "SELECT coalesce(sum(messages + events), 0) FROM account_inbound WHERE account = 'demo'")"
# Answers: the agent's, against every customer-service send WeChat accepted.
answers_given=0 answer_dups=0 answers_unsent=0 answer_sends=0
if [ -f "$work/answers.csv" ]; then
  answers_given=$(($(wc -l <"$work/answers.csv") - 1))
  curl -fsS "http://127.0.0.1:$api_port/sim/calls?path=/cgi-bin/message/custom/send" >"$work/sends.json"
  jq -r '.[] | select(.errcode == 0) | (.body | if type == "string" then fromjson? // . else . end) | .text.content? // empty' \
    "$work/sends.json" | grep '^chaos-answer-' | sort | uniq -c >"$work/sends.txt" || true
  answer_sends="$(awk '{n += $1} END {print n + 0}' "$work/sends.txt")"
  answer_dups="$(awk '$1 > 1' "$work/sends.txt" | wc -l)"
  answers_unsent="$(awk -F, 'NR > 1 && $3 == "delivery_1" {print $2}' "$work/answers.csv" |
    while read -r text; do grep -q " $text\$" "$work/sends.txt" || echo "$text"; done | wc -l)"
fi
answers_sent_rpc="$(awk -F, 'NR > 1 && $3 == "delivery_1"' "$work/answers.csv" 2>/dev/null | wc -l)"
answers_outcomes="$(awk -F, 'NR > 1 {print $3}' "$work/answers.csv" 2>/dev/null | sort | uniq -c | awk '{printf "%s%s %s", sep, $2, $1; sep = ", "}')"
# Overdue: every escalation once, in the history and on the INTERACTION stream.
overdue_tickets="$(q "SELECT count(DISTINCT ticket_id) FROM ticket_transitions WHERE action = 'overdue'")"
overdue_twice="$(q "SELECT count(*) FROM (SELECT ticket_id FROM ticket_transitions WHERE action = 'overdue' GROUP BY 1 HAVING count(*) > 1) t")"
overdue_events="$(q "SELECT count(*) FROM outbox WHERE subject LIKE '%.ticket.overdue'")"
ticket_events="$(q "SELECT count(*) FROM outbox WHERE subject LIKE '%.ticket.%'")"
outbox_rows="$(q "SELECT count(*) FROM outbox")"
unpublished="$(q "SELECT count(*) FROM outbox WHERE published_at IS NULL")"
interaction_stream="$(until_ok stream_messages INTERACTION)"
# stats-tickets against the ticket events interaction-svc announced.
psql "$db_server/interaction" -qX -c "\copy (SELECT event_id FROM outbox WHERE subject LIKE '%.ticket.%') TO '$work/ticket-events.csv' CSV"
sql stats "CREATE TABLE chaos_ticket_events (event_id text)" >/dev/null
psql "$db_server/stats" -qX -c "\copy chaos_ticket_events FROM '$work/ticket-events.csv' CSV"
for _ in $(seq 1 150); do
  stats_ticket_applied="$(qs "SELECT count(*) FROM chaos_ticket_events JOIN processed_events USING (event_id)")"
  [ "$stats_ticket_applied" = "$ticket_events" ] && break
  sleep 0.2
done

[ "$i_missing" = 0 ] || violations+=("$i_missing callbacks answered 200 but never applied by interaction-svc")
[ "$s_missing" = 0 ] || violations+=("$s_missing callbacks answered 200 but never applied by stats-svc")
[ "$i_applied" = "$stored" ] || violations+=("interaction-svc applied $i_applied of $stored stored")
[ "$s_applied" = "$stored" ] || violations+=("stats-svc applied $s_applied of $stored stored")
[ "$texts_applied" = "$thread_lines" ] || violations+=("$thread_lines inbound thread lines for $texts_applied texts applied")
[ "$stats_counted" = "$s_applied" ] || violations+=("stats counted $stats_counted callbacks for $s_applied applied")
[ "$answer_dups" = 0 ] || violations+=("$answer_dups answers sent more than once")
[ "$answers_unsent" = 0 ] || violations+=("$answers_unsent answers reported sent that WeChat never accepted")
[ "$overdue_twice" = 0 ] || violations+=("$overdue_twice tickets escalated more than once")
[ "$overdue_events" = "$overdue_tickets" ] || violations+=("$overdue_events ticket.overdue events for $overdue_tickets overdue tickets")
[ "$stats_ticket_applied" = "$ticket_events" ] || violations+=("stats-svc applied $stats_ticket_applied of $ticket_events ticket events")
[ "$interaction_stream" = "$outbox_rows" ] || violations+=("INTERACTION holds $interaction_stream events for $outbox_rows in the outbox")
wrong_users="$(nats_wrong_users)"
[ -z "$wrong_users" ] || violations+=("services not logged in as their own NATS user: $wrong_users")
refused="$(nats_violations)"
[ -z "$refused" ] || violations+=("nats-server refused a service's user (nats-values.yaml permissions): $refused")

report="$out_dir/report.txt"
{
  echo "chaos run $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD), $profile build$($short && echo ', --short')"
  echo "traffic: $rate callbacks/s for ${seconds}s through 2 gateways behind a balancer; faults: ${faults[*]}"
  echo "callbacks sent                 $sent (retried by WeChat: $retried)"
  echo "answered, by status            $statuses (0 = never answered)"
  echo "in WECHAT_INBOUND              $stored"
  echo "applied by interaction-inbound $i_applied   (answered 200 and missing: $i_missing)"
  echo "applied by stats-inbound       $s_applied   (answered 200 and missing: $s_missing)"
  echo "applied though not answered 200: $not200_applied; applied but never sent: $i_unknown"
  echo "effects: texts applied $texts_applied = thread lines $thread_lines; stats counted $stats_counted for $s_applied applied"
  echo "ticket answers                 $answers_given by the agent ($answers_outcomes); WeChat accepted $answer_sends sends; sent twice: $answer_dups; reported sent but missing: $answers_unsent"
  echo "overdue tickets escalated      $overdue_tickets (twice: $overdue_twice); ticket.overdue events $overdue_events"
  echo "interaction-svc's events       $outbox_rows in the outbox ($unpublished unpublished), $interaction_stream in INTERACTION; ticket events $ticket_events, applied by stats-tickets $stats_ticket_applied"
  echo "catch-up after each fault:"
  printf '  %s\n' "${catchups[@]}"
  echo "traffic ran $(((traffic_end - traffic_start) / 1000)) s"
  if [ "${#violations[@]}" -eq 0 ]; then
    echo "RESULT: no violation"
  else
    echo "RESULT: ${#violations[@]} violation(s):"
    printf '  %s\n' "${violations[@]}"
  fi
} | tee "$report"
if [ "${#violations[@]}" -gt 0 ]; then
  keep_logs="$out_dir/logs-$(date -u +%Y%m%d%H%M%S)"
  log "logs kept in $keep_logs"
  exit 1
fi
