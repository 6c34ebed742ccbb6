#!/usr/bin/env bash
# The main job on a fresh machine: builds what it needs, then starts a real
# control plane (etcd + kube-apiserver + kube-controller-manager, our CRDs
# installed) and prints how to use it. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
hack/install-tools.sh kubernetes etcd
exec cargo run --locked --quiet -p secrets-store-testkit --bin control-plane -- "$@"
