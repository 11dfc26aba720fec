#!/usr/bin/env bash
# The gateway against the callback servers its throughput target is stated against,
# side by side on this machine: node-webot `wechat` on Node's cluster and wechatpy on
# uvicorn (deploy/dev/reference/), both verifying, decrypting and parsing each
# safe-mode callback and answering `success` without making anything durable, while the
# gateway answers only after JetStream's PubAck. All three get the same load
# (`wechat-sim load`: 64 keep-alive connections, distinct signed and encrypted text
# callbacks, every answer checked), in alternating rounds, because the machine's speed
# drifts between minutes. Writes the table to docs/benchmarks.md.
#
#   deploy/dev/reference.sh                 # 3 rounds, ~6 min after the installs
#   REF_ROUNDS=1 REF_DURATION=5 deploy/dev/reference.sh
#
# Installs Node.js/npm and python3-venv from Debian when missing, and the servers'
# packages (pinned: reference/package.json, reference/requirements.txt) into the
# git-ignored .local/reference/.
#
# Env: NATS_URL (default nats://127.0.0.1:4222), REF_ROUNDS (3), REF_DURATION (s, 10),
# REF_WARMUP (s, 3), REF_CONCURRENCY (64), REF_PORT (18095), REF_ADMIN_PORT (19095),
# REF_OUT (docs/benchmarks.md).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
export NATS_URL="${NATS_URL:-nats://127.0.0.1:4222}"
rounds="${REF_ROUNDS:-3}"
duration="${REF_DURATION:-10}"
warmup="${REF_WARMUP:-3}"
concurrency="${REF_CONCURRENCY:-64}"
port="${REF_PORT:-18095}"
admin_port="${REF_ADMIN_PORT:-19095}"
out="${REF_OUT:-$root/docs/benchmarks.md}"
here="$root/deploy/dev/reference"
local_dir="$root/.local/reference"
work="$(mktemp -d)"
log() { printf '[reference] %s\n' "$*" >&2; }

need() { # command, Debian packages
  command -v "$1" >/dev/null 2>&1 && return
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${@:2}"
}
need node nodejs
need npm npm
need jq jq
need python3 python3
python3 -c 'import venv, ensurepip' 2>/dev/null || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
}

log "installing the reference servers into $local_dir"
mkdir -p "$local_dir/node"
cp "$here/package.json" "$here/wechat-node.js" "$local_dir/node/"
(cd "$local_dir/node" && npm install --silent --no-audit --no-fund >/dev/null)
[ -x "$local_dir/py/bin/uvicorn" ] || python3 -m venv "$local_dir/py"
"$local_dir/py/bin/pip" install -q -r "$here/requirements.txt"
cp "$here/wechatpy_app.py" "$local_dir/"

deploy/dev/up.sh
log "building gateway and wechat-sim (release)"
cargo build --release -q -p gateway -p wechat-sim
sim="$root/target/release/wechat-sim"
# shellcheck source=deploy/dev/bench-lib.sh
. "$root/deploy/dev/bench-lib.sh"

server_pid=""
prefix=""
stop_server() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  server_pid=""
  [ -z "$prefix" ] || drop_namespace "$prefix"
  prefix=""
}
cleanup() {
  stop_server
  rm -rf "$work"
}
trap cleanup EXIT

mapfile -t account < <(account_env safe)
mapfile -t flags < <(account_flags safe)

start_server() {
  case "$1" in
    gateway)
      prefix="ref$(date +%s)"
      env NATS_PREFIX="$prefix" HTTP_ADDR="127.0.0.1:$port" ADMIN_ADDR="127.0.0.1:$admin_port" \
        RUST_LOG=warn WECHAT_ACCOUNTS=bench-safe "${account[@]}" "$root/target/release/gateway" >>"$work/gateway.log" 2>&1 &
      ;;
    node)
      (cd "$local_dir/node" && PORT="$port" exec node wechat-node.js) >>"$work/node.log" 2>&1 &
      ;;
    wechatpy)
      (cd "$local_dir" && exec py/bin/uvicorn wechatpy_app:app --host 127.0.0.1 --port "$port" \
        --workers 2 --http httptools --loop uvloop --no-access-log --log-level warning) \
        >>"$work/wechatpy.log" 2>&1 &
      ;;
  esac
  server_pid=$!
  # Ready once it answers the URL check path at all (any status).
  for _ in $(seq 1 100); do
    curl -s -o /dev/null "http://127.0.0.1:$port/wechat/bench-safe" && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/$1.log" >&2; exit 1; }
    sleep 0.1
  done
  sleep 0.5 # the workers of a cluster start after the first one listens
}

: >"$work/runs.jsonl"
for round in $(seq 1 "$rounds"); do
  for server in gateway node wechatpy; do
    start_server "$server"
    cpu=(--cpu-of "$server=$server_pid")
    for child in $(pgrep -P "$server_pid" || true); do cpu+=(--cpu-of "$server=$child"); done
    log "round $round: $server (${warmup}s warm-up + ${duration}s, $concurrency connections)"
    report="$("$sim" load --gateway "http://127.0.0.1:$port" "${flags[@]}" \
      --concurrency "$concurrency" --duration "${duration}s" --warmup "${warmup}s" \
      --prebuild 400000 "${cpu[@]}" --json 2>>"$work/load.log")"
    stored=""
    if [ "$server" = gateway ]; then
      sleep 0.5
      stored="$("$sim" stream-count --prefix "$prefix" --json 2>/dev/null | jq .messages)"
    fi
    echo "$report" | jq -c --arg s "$server" --arg stored "$stored" '. + {server: $s, stored: $stored}' \
      >>"$work/runs.jsonl"
    echo "$report" | jq -r '"  \(.callbacks_per_sec|floor)/s p99 \(.p99_ms)ms errors \(.errors)"' >&2
    stop_server
  done
done

commit="$(git rev-parse --short HEAD)$(git diff --quiet -- gateway wechat-sim deploy/dev/reference || echo '+dirty')"
PYTHONPATH="$root/deploy/dev" python3 - "$work/runs.jsonl" "$out" "$commit" "$duration" "$warmup" "$rounds" "$concurrency" <<'PY'
import datetime, json, os, sys
from results_doc import write_between_markers
runs_path, out, commit, duration, warmup, rounds, concurrency = sys.argv[1:]
runs = [json.loads(l) for l in open(runs_path) if l.strip()]
labels = {
    "gateway": "govwx gateway (Rust), durable: answers after JetStream's PubAck",
    "node": "node-webot `wechat` 2.1.0 on Node's cluster (2 workers), not durable",
    "wechatpy": "wechatpy 1.8.18 on uvicorn (2 workers, httptools, uvloop), not durable",
}
rows, medians = [], {}
for server in ("gateway", "node", "wechatpy"):
    group = sorted((r for r in runs if r["server"] == server), key=lambda r: r["callbacks_per_sec"])
    if not group:
        continue
    m = group[len(group) // 2]
    cpu = sum(p["us_per_op"] for p in m.get("cpu", []) if p["process"] == server)
    gen = sum(p["us_per_op"] for p in m.get("cpu", []) if p["process"] == "load-generator")
    errors = sum(r["errors"] for r in group)
    medians[server] = m["callbacks_per_sec"]
    lost = ""
    if server == "gateway":
        lost = sum(r["ok_total"] - int(r["stored"] or 0) for r in group)
        lost = f"{lost}"
    rows.append((server, m, group, cpu, gen, errors, lost))
best_reference = max(medians.get("node", 0), medians.get("wechatpy", 0))
table = "\n".join(
    f"| {labels[s]} | {m['callbacks_per_sec']:,.0f} | "
    f"{group[0]['callbacks_per_sec']:,.0f}-{group[-1]['callbacks_per_sec']:,.0f} | "
    f"{m['p50_ms']:.2f} | {m['p99_ms']:.2f} | {cpu:.1f} | {gen:.1f} | {errors} | {lost or '—'} | "
    f"{(m['callbacks_per_sec'] / best_reference if best_reference else 0):.2f} |"
    for s, m, group, cpu, gen, errors, lost in rows)
gateway = medians.get("gateway", 0)
verdict = (f"{gateway / best_reference:.2f}× the faster reference"
           if best_reference else "no reference ran")
results = f"""Run: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}, commit `{commit}`,
`nproc` = {os.cpu_count()}; safe mode, {concurrency} connections, {warmup} s warm-up + {duration} s
measured, {rounds} alternating rounds (a row is the median round; errors summed over all).
Server CPU: user + system time of the server's processes (every worker) per callback in
the measured window; for the gateway, nats-server's share is not in it.

| server | callbacks/s | rounds | p50 ms | p99 ms | server CPU µs/callback | load generator µs/callback | errors | lost | × faster reference |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
{table}

Target "at least twice the faster one while every callback is durable": {verdict}
({'pass' if best_reference and gateway >= 2 * best_reference else '**FAIL**'})."""
print(write_between_markers(out, "reference", results, "The reference servers, side by side"))
PY
log "results written to $out"
