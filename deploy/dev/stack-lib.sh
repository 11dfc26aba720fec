# Shared by chaos.sh and soak.sh (sourced, not run): a private copy of the whole stack
# (its own nats-server and PostgreSQL cluster on free ports, data in a temp dir, the
# services on free ports), so a fault run never touches the shared servers on 4222 and
# 5432 nor anybody else's processes. Every process started here is remembered by PID
# and only those PIDs are ever signalled.
#
# Expects: $root, $bin (the binaries' directory), log(). Sets: $work, $sim, the ports.

# shellcheck source=deploy/dev/pkg-lib.sh
. "$root/deploy/dev/pkg-lib.sh"

stack_init() {
  work="$(mktemp -d "${TMPDIR:-/tmp}/govwx-stack.XXXXXX")"
  chmod 755 "$work"
  sim="$bin/wechat-sim"
  declare -gA PIDS=()
  nats_port="$(free_port)"
  nats_mon="$(free_port)"
  pg_port="$(free_port)"
  api_port="$(free_port)"
  nats_url="nats://127.0.0.1:$nats_port"
  db_server="postgres://postgres@127.0.0.1:$pg_port"
  # PostgreSQL refuses to run as root: as root it runs as the postgres system user.
  run_pg=()
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql postgres
    run_pg=(runuser -u postgres --)
  fi
  pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  [ -x "$pg_bin/initdb" ] || { log "PostgreSQL server binaries not found (deploy/dev/up.sh installs them)"; exit 1; }
  command -v nats-server >/dev/null 2>&1 || { log "nats-server not found (deploy/dev/up.sh installs it)"; exit 1; }
  trap 'stack_stop' EXIT
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

now_ms() { date +%s%3N; }

# start NAME CMD...: runs CMD in the background, log in $work/NAME.log, PID in PIDS[NAME].
start() {
  local name="$1"
  shift
  "$@" >>"$work/$name.log" 2>&1 &
  PIDS[$name]=$!
}

# stop NAME [SIGNAL]: signals the process this script started as NAME and reaps it.
stop() {
  local pid="${PIDS[$1]:-}"
  [ -n "$pid" ] || return 0
  kill "-${2:-TERM}" "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  unset "PIDS[$1]"
}

stack_stop() {
  local name
  for name in "${!PIDS[@]}"; do kill -TERM "${PIDS[$name]}" 2>/dev/null || true; done
  for name in "${!PIDS[@]}"; do
    for _ in $(seq 1 50); do kill -0 "${PIDS[$name]}" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "${PIDS[$name]}" 2>/dev/null || true
    wait "${PIDS[$name]}" 2>/dev/null || true
  done
  if [ -f "$work/pg/postmaster.pid" ]; then
    "${run_pg[@]}" "$pg_bin/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true
  fi
  if [ -n "${keep_logs:-}" ]; then
    mkdir -p "$keep_logs"
    cp "$work"/*.log "$work"/*.csv "$keep_logs/" 2>/dev/null || true
  fi
  rm -rf "$work"
}

wait_port() { # port what
  for _ in $(seq 1 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  log "$2 did not listen on $1"
  return 1
}

wait_ready() { # name admin-port
  for _ in $(seq 1 600); do
    curl -fs "http://127.0.0.1:$2/readyz" >/dev/null 2>&1 && return 0
    kill -0 "${PIDS[$1]}" 2>/dev/null || { log "$1 exited:"; tail -n 20 "$work/$1.log" >&2; return 1; }
    sleep 0.1
  done
  log "$1 not ready; see its log:"
  tail -n 20 "$work/$1.log" >&2
  return 1
}

# The NATS accounts production runs with (deploy/k8s/infra/nats-values.yaml, rendered
# as the chart renders them by deploy/k8s/nats_check.py, fresh passwords per run): each
# service logs in as its own user with its own permissions, so a subject a service
# needs and its user may not use shows up here as a "Violation" in nats-server.log
# (nats_violations). The harness's own tools connect without credentials as the
# unrestricted `stack` user (no_auth_user).
nats_config() {
  local python=python3
  "$root/.local/k8s-venv/bin/python" -c 'import yaml' 2>/dev/null && python="$root/.local/k8s-venv/bin/python"
  "$python" -c 'import yaml' 2>/dev/null || {
    python3 -m venv "$root/.local/nats-venv" 2>/dev/null || {
      ensure_pkgs python3-venv
      python3 -m venv "$root/.local/nats-venv"
    }
    "$root/.local/nats-venv/bin/pip" install -q --disable-pip-version-check PyYAML==6.0.3
    python="$root/.local/nats-venv/bin/python"
  }
  "$python" "$root/deploy/k8s/nats_check.py" render --port "$nats_port" --monitor "$nats_mon" \
    --store "$work/nats" --secrets "$work/nats-secrets" >"$work/nats.conf"
  declare -gA NATS_PASSWORD=()
  nats_server_env=()
  local kind name value
  while read -r kind name value; do
    case "$kind" in
      server) nats_server_env+=("$name=$value") ;;
      user) NATS_PASSWORD[$name]="$value" ;;
    esac
  done <"$work/nats-secrets"
}

nats_start() {
  mkdir -p "$work/nats"
  [ -f "$work/nats.conf" ] || nats_config
  start nats-server env "${nats_server_env[@]}" nats-server -c "$work/nats.conf"
  wait_port "$nats_port" nats-server
}

# Services connected as another user than their own (as `stack`, say: their
# permissions would then go untested), one line each.
nats_wrong_users() {
  curl -fs "http://127.0.0.1:$nats_mon/connz?auth=1&limit=1024" |
    jq -r '.connections[] | select(.name == "gateway" or .name == "interaction-svc"
      or .name == "content-svc" or .name == "stats-svc")
      | select(.authorized_user != .name) | "\(.name) as \(.authorized_user)"'
}

# What a service's user was refused (nats-server logs every refusal), one line each.
nats_violations() {
  { grep -h "Violation" "$work/nats-server.log" 2>/dev/null || true; } |
    sed 's/^\[[0-9]*\] [0-9/]* [0-9:.]* //' | sort | uniq -c
}

pg_init() {
  mkdir -p "$work/pg"
  if [ "$(id -u)" -eq 0 ]; then chown postgres "$work/pg"; fi
  chmod 700 "$work/pg"
  "${run_pg[@]}" "$pg_bin/initdb" -D "$work/pg" -U postgres --auth=trust >"$work/initdb.log" 2>&1
  pg_start
}

pg_start() {
  "${run_pg[@]}" "$pg_bin/pg_ctl" -D "$work/pg" -l "$work/pg/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $work/pg -c max_connections=200" start >/dev/null
}

pg_restart_immediate() {
  "${run_pg[@]}" "$pg_bin/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null
  pg_start
}

# The environment a service (its NATS user: $1) gets: this stack's NATS and
# PostgreSQL, the mock API.
service_env() {
  printf '%s\n' "NATS_URL=$nats_url" "NATS_USER=$1" "NATS_PASSWORD=${NATS_PASSWORD[$1]}" \
    "DATABASE_URL=$db_server" \
    "WECHAT_API_BASE_URL=http://127.0.0.1:$api_port" \
    "API_KEYS=chaos:admin:chaos-admin-key-0001" "RUST_LOG=${RUST_LOG:-warn}"
}

declare -gA ADMIN=()

# start_interaction: interaction-svc (sweeping every second, so marked tickets go
# overdue at once).
start_interaction() {
  : "${isvc_grpc:=$(free_port)}" "${isvc_admin:=$(free_port)}"
  ADMIN[interaction-svc]=$isvc_admin
  # shellcheck disable=SC2046
  start interaction-svc env $(service_env interaction-svc) GRPC_ADDR="127.0.0.1:$isvc_grpc" \
    ADMIN_ADDR="127.0.0.1:$isvc_admin" SWEEP_INTERVAL=1s "$bin/interaction-svc"
  wait_ready interaction-svc "$isvc_admin"
}

start_content() {
  : "${content_grpc:=$(free_port)}" "${content_admin:=$(free_port)}" "${content_hall:=$(free_port)}"
  ADMIN[content-svc]=$content_admin
  # shellcheck disable=SC2046
  start content-svc env $(service_env content-svc) GRPC_ADDR="127.0.0.1:$content_grpc" \
    ADMIN_ADDR="127.0.0.1:$content_admin" HALL_ADDR="127.0.0.1:$content_hall" "$bin/content-svc"
  wait_ready content-svc "$content_admin"
}

start_stats() {
  : "${stats_grpc:=$(free_port)}" "${stats_admin:=$(free_port)}" "${stats_http:=$(free_port)}"
  ADMIN[stats-svc]=$stats_admin
  # shellcheck disable=SC2046
  start stats-svc env $(service_env stats-svc) GRPC_ADDR="127.0.0.1:$stats_grpc" \
    ADMIN_ADDR="127.0.0.1:$stats_admin" HTTP_ADDR="127.0.0.1:$stats_http" "$bin/stats-svc"
  wait_ready stats-svc "$stats_admin"
}

# start_gateway NAME HTTP_PORT ADMIN_PORT (the demo account, safe mode).
start_gateway() {
  ADMIN[$1]=$3
  # shellcheck disable=SC2046
  start "$1" env $(service_env gateway) HTTP_ADDR="127.0.0.1:$2" ADMIN_ADDR="127.0.0.1:$3" \
    ${GATEWAY_EXTRA_ENV:-} "$bin/gateway"
  wait_ready "$1" "$3"
}

# sql DB QUERY: one value (or rows, |-separated); fails while PostgreSQL is down.
sql() { psql "$db_server/$1" -qAtX -c "$2" 2>/dev/null; }

# until_ok CMD...: retries CMD (30 s at most) while NATS or PostgreSQL comes back.
until_ok() {
  local out
  for _ in $(seq 1 150); do
    if out="$("$@")" && [ -n "$out" ]; then printf '%s\n' "$out"; return 0; fi
    sleep 0.2
  done
  return 1
}

stream_messages() { # [stream]
  "$sim" stream-count --nats "$nats_url" --stream "${1:-WECHAT_INBOUND}" --json 2>/dev/null | jq -r .messages
}

# The ids of callbacks (not of the events a service derives from one, which append
# `:ticket.opened`, `:follower.subscribed`, `:autoreply`, …) in a service's processed_events.
inbound_ids="event_id LIKE 'demo:%' AND event_id !~ ':[a-z]+[.][a-z_]+$' AND event_id NOT LIKE '%:autoreply'"
applied_inbound() { sql "$1" "SELECT count(*) FROM processed_events WHERE $inbound_ids"; }

# rss_kb NAME: resident memory of a process started here.
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/${PIDS[$1]}/status" 2>/dev/null || echo 0; }

# pg_rss_kb: every process of this PostgreSQL cluster together.
pg_rss_kb() {
  local main total=0 pid
  main="$(head -n 1 "$work/pg/postmaster.pid" 2>/dev/null)" || { echo 0; return; }
  for pid in "$main" $(pgrep -P "$main"); do
    total=$((total + $(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)))
  done
  echo "$total"
}
