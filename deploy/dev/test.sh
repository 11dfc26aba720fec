#!/usr/bin/env bash
# Runs every check CI runs: the Kubernetes manifests (deploy/k8s/check.sh), formatting,
# clippy with -D warnings, and every test suite
# against real NATS and PostgreSQL (started by up.sh when not already reachable),
# then a smoke run of the whole platform (run.sh --smoke) and a short fault run
# (chaos.sh --short: its own NATS and PostgreSQL, about two minutes).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

log() { printf '[dev/test] %s\n' "$*" >&2; }
# shellcheck source=deploy/dev/pkg-lib.sh
. "$root/deploy/dev/pkg-lib.sh"

"$root/deploy/dev/up.sh"
set -a
# shellcheck disable=SC1091
. "$root/.local/dev.env"
set +a

if ! command -v cargo >/dev/null 2>&1; then
  log "cargo is missing: install Rust (rustup) first"
  exit 1
fi
# stats-svc's dashboard tests render the pages in headless Chromium, with a CJK font.
if ! command -v chromium >/dev/null 2>&1 || ! fc-list 2>/dev/null | grep -qi "noto.*cjk"; then
  ensure_pkgs chromium fonts-noto-cjk
fi

# chaos.sh reads nats-server's monitoring JSON with jq.
command -v jq >/dev/null 2>&1 || ensure_pkgs jq

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# One build from a clean clone: incremental caches would be a third of target/ (2.6 of
# 7.6 GB) and are never read again. Set CARGO_INCREMENTAL=1 to keep them.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
# A full disk fails the build halfway with "No space left on device"; say so up front.
free_kb="$(df -Pk "$root" | awk 'NR == 2 { print $4 }')"
log "disk: $((free_kb / 1024 / 1024)) GB free where the build goes (about 8 GB needed: target/ for tests, smoke and chaos)"
if [ "${free_kb:-0}" -lt $((10 * 1024 * 1024)) ]; then
  log "warning: under 10 GB free; the build may fail with \"No space left on device\""
fi

log "kubernetes manifests: render, validate, restricted profile"
"$root/deploy/k8s/check.sh"

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

if command -v cargo-nextest >/dev/null 2>&1; then
  log "cargo nextest run"
  cargo nextest run --workspace --locked --no-fail-fast
  log "doc tests"
  cargo test --workspace --locked --doc
else
  log "cargo test (cargo-nextest not installed)"
  cargo test --workspace --locked --no-fail-fast
fi

log "smoke run of the whole platform"
"$root/deploy/dev/run.sh" --smoke

log "short fault run (chaos.sh --short)"
"$root/deploy/dev/chaos.sh" --short
