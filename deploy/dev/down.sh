#!/usr/bin/env bash
# Stops the project-local NATS and PostgreSQL that up.sh started (never servers it only used).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
local_dir="$root/.local"
log() { printf '[dev/down] %s\n' "$*" >&2; }

if [ -f "$local_dir/nats.pid" ]; then
  pid="$(cat "$local_dir/nats.pid")"
  if kill "$pid" 2>/dev/null; then log "stopped nats-server ($pid)"; fi
  rm -f "$local_dir/nats.pid"
fi
if [ -f "$local_dir/pg.started" ]; then
  pg_data="$(cat "$local_dir/pg.started")"
  pg_bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
  run_pg=()
  [ "$(id -u)" -eq 0 ] && run_pg=(runuser -u postgres --) && cd /
  "${run_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_data" -m fast stop >/dev/null 2>&1 && log "stopped PostgreSQL"
  rm -f "$local_dir/pg.started"
fi
log "done"
