#!/usr/bin/env bash
# Makes NATS (with JetStream) and PostgreSQL available for local runs and tests.
#
# Uses the servers named by NATS_URL / DATABASE_URL when they answer; otherwise starts
# project-local ones on loopback with data under .local/ (git-ignored), installing the
# Debian packages nats-server and postgresql when missing, and gcc (the linker) for
# run.sh's and test.sh's builds. Safe to run again.
# Writes .local/dev.env with the URLs to use. Stop what it started with down.sh.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
local_dir="$root/.local"
mkdir -p "$local_dir"

NATS_URL="${NATS_URL:-nats://127.0.0.1:4222}"
DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432}"

log() { printf '[dev/up] %s\n' "$*" >&2; }

# host:port of a URL like scheme://user:pass@host:port/path
host_port() {
  local rest="${1#*://}"
  rest="${rest##*@}"
  rest="${rest%%/*}"
  rest="${rest%%\?*}"
  printf '%s' "$rest"
}

reachable() {
  local hp="$1" host port
  host="${hp%:*}"
  port="${hp##*:}"
  timeout 2 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null
}

wait_for() {
  local hp="$1" what="$2"
  for _ in $(seq 1 100); do
    reachable "$hp" && return 0
    sleep 0.2
  done
  log "$what did not come up on $hp"
  return 1
}

apt_install() {
  if [ "$(id -u)" -ne 0 ]; then
    log "missing $*; install it with: sudo apt-get install -y $*"
    exit 1
  fi
  log "installing Debian packages: $*"
  if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -print -quit 2>/dev/null)" ]; then
    apt-get update -qq >&2
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2 || {
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
  }
}

# --- NATS -----------------------------------------------------------------------------
nats_hp="$(host_port "$NATS_URL")"
if reachable "$nats_hp"; then
  log "using NATS at $NATS_URL"
else
  command -v nats-server >/dev/null 2>&1 || apt_install nats-server
  nats_port="${nats_hp##*:}"
  mkdir -p "$local_dir/nats"
  log "starting project-local nats-server -js on 127.0.0.1:$nats_port"
  nohup nats-server -a 127.0.0.1 -p "$nats_port" -js -sd "$local_dir/nats" \
    -l "$local_dir/nats.log" >/dev/null 2>&1 &
  echo $! >"$local_dir/nats.pid"
  NATS_URL="nats://127.0.0.1:$nats_port"
  wait_for "127.0.0.1:$nats_port" nats-server
fi

# --- PostgreSQL -----------------------------------------------------------------------
pg_hp="$(host_port "$DATABASE_URL")"
if reachable "$pg_hp"; then
  log "using PostgreSQL at $pg_hp"
else
  pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  if [ -z "$pg_bin" ]; then
    apt_install postgresql
    pg_bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
    # On a host with systemd the package also creates and starts its own cluster on
    # 5432, with password authentication: the project-local server below could not
    # take the port, and a second run would find the package's and fail to log in.
    # Stop it and keep it from starting at boot.
    for start_conf in /etc/postgresql/*/main/start.conf; do
      [ -f "$start_conf" ] || continue
      version="$(basename "$(dirname "$(dirname "$start_conf")")")"
      pg_ctlcluster "$version" main stop >/dev/null 2>&1 || true
      sed -i 's/^auto$/manual/' "$start_conf"
      log "stopped the postgresql package's own cluster $version/main (start.conf: manual)"
    done
  fi
  pg_port="${pg_hp##*:}"
  pg_data="$local_dir/pg"
  # PostgreSQL refuses to run as root: run it as the postgres system user.
  run_pg=()
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql postgres
    run_pg=(runuser -u postgres --)
    # Every path below is absolute; postgres may not be allowed in the caller's.
    cd /
    chmod o+x "$local_dir"
    if ! runuser -u postgres -- test -x "$local_dir"; then
      # A directory above the checkout (root's 0700 home, say) keeps postgres out:
      # the data goes under its home instead, one directory per checkout.
      pg_data="/var/lib/postgresql/govwx-$(printf '%s' "$root" | sha1sum | cut -c1-12)"
      log "postgres cannot reach $local_dir; its data goes to $pg_data"
    fi
    mkdir -p "$pg_data" && chown postgres "$pg_data" && chmod 700 "$pg_data"
  fi
  if [ ! -s "$pg_data/PG_VERSION" ]; then
    log "initialising project-local PostgreSQL in $pg_data"
    "${run_pg[@]}" "$pg_bin/initdb" -D "$pg_data" -U postgres --auth=trust >/dev/null
  fi
  log "starting project-local PostgreSQL on 127.0.0.1:$pg_port"
  "${run_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_data" -l "$pg_data/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $pg_data" start >/dev/null
  echo "$pg_data" >"$local_dir/pg.started"
  DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port"
  wait_for "127.0.0.1:$pg_port" postgresql
fi

# --- a C compiler ---------------------------------------------------------------------
# Linking the binaries and building ring need one; rustup alone brings none.
command -v cc >/dev/null 2>&1 || apt_install gcc libc6-dev

cat >"$local_dir/dev.env" <<ENV
NATS_URL=$NATS_URL
DATABASE_URL=$DATABASE_URL
TEST_DATABASE_URL=$DATABASE_URL
ENV
log "ready: NATS_URL=$NATS_URL DATABASE_URL=$DATABASE_URL (written to .local/dev.env)"
