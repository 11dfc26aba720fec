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
command -v chromium >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi "noto.*cjk" || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk
}

# chaos.sh reads nats-server's monitoring JSON with jq.
command -v jq >/dev/null 2>&1 || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq
}

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

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
