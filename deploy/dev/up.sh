#!/usr/bin/env bash
# Makes NATS (with JetStream) and PostgreSQL available for local runs and tests.
#
# Uses the servers named by NATS_URL / DATABASE_URL when they answer; otherwise starts
# project-local ones on loopback with data under .local/ (git-ignored), installing the
# Debian packages nats-server and postgresql when missing (even when the servers answer:
# the tests start private ones), and gcc (the linker) for run.sh's and test.sh's builds,
# as root or through sudo (pkg-lib.sh). Safe to run again.
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

# shellcheck source=deploy/dev/pkg-lib.sh
. "$root/deploy/dev/pkg-lib.sh"

pg_bin_dir() {
  { find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin 2>/dev/null || true; } | sort -V | tail -n 1
}

# --- what the tests start themselves --------------------------------------------------
# Installed even when NATS and PostgreSQL answer below (a Docker container, another
# host): the tests, chaos.sh (in test.sh) and soak.sh start private nats-server and
# PostgreSQL clusters (initdb, pg_ctl) and read them with psql.
command -v nats-server >/dev/null 2>&1 || ensure_pkgs nats-server
pg_bin="$(pg_bin_dir)"
if [ ! -x "$pg_bin/initdb" ] || ! command -v psql >/dev/null 2>&1; then
  clusters_before="$(ls /etc/postgresql/*/*/start.conf 2>/dev/null || true)"
  ensure_pkgs postgresql
  pg_bin="$(pg_bin_dir)"
  [ -x "$pg_bin/initdb" ] || { log "no initdb under /usr/lib/postgresql/*/bin after installing postgresql"; exit 1; }
  # On a host with systemd the package also creates and starts its own cluster (on
  # 5432, or the next free port), with password authentication: a project-local server
  # below could not take the port, and a second run would find the package's and fail
  # to log in. Stop the cluster the install just created (never one that was there
  # before: it may be the server DATABASE_URL names) and keep it from starting at boot.
  for start_conf in /etc/postgresql/*/main/start.conf; do
    [ -f "$start_conf" ] || continue
    grep -qxF "$start_conf" <<<"$clusters_before" && continue
    version="$(basename "$(dirname "$(dirname "$start_conf")")")"
    as_root pg_ctlcluster "$version" main stop >/dev/null 2>&1 || true
    as_root sed -i 's/^auto$/manual/' "$start_conf"
    log "stopped the postgresql package's own cluster $version/main (start.conf: manual)"
  done
fi

# --- NATS -----------------------------------------------------------------------------
nats_hp="$(host_port "$NATS_URL")"
if reachable "$nats_hp"; then
  log "using NATS at $NATS_URL"
else
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
  # Something answers: it is used only if it lets us in and may create databases (each
  # service creates its own, each test a fresh one).
  # PGDATABASE: the database psql opens when the URL names none (the services then use
  # their own), instead of one named after the role, which may not exist.
  if ! login="$(PGCONNECT_TIMEOUT=5 PGDATABASE=postgres psql "$DATABASE_URL" -qAtX \
    -c 'select rolcreatedb or rolsuper from pg_roles where rolname = current_user' 2>&1)"; then
    log "PostgreSQL answers at $pg_hp but does not let DATABASE_URL log in:"
    printf '  %s\n' "$login" >&2
    log "set DATABASE_URL to postgres://USER:PASSWORD@$pg_hp (a role that may create databases),"
    log "or free $pg_hp (or set DATABASE_URL to a free port) for a project-local server"
    exit 1
  fi
  if [ "$login" != t ]; then
    log "DATABASE_URL logs in at $pg_hp, but its role may not create databases (the services and tests do):"
    log "ALTER ROLE <it> CREATEDB, or set DATABASE_URL to a role that may"
    exit 1
  fi
  log "using PostgreSQL at $pg_hp"
else
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
command -v cc >/dev/null 2>&1 || ensure_pkgs gcc libc6-dev

cat >"$local_dir/dev.env" <<ENV
NATS_URL=$NATS_URL
DATABASE_URL=$DATABASE_URL
TEST_DATABASE_URL=$DATABASE_URL
ENV
log "ready: NATS_URL=$NATS_URL DATABASE_URL=$DATABASE_URL (written to .local/dev.env)"
