#!/usr/bin/env bash
# The main job on a fresh machine: standalone mode end to end, no
# Kubernetes. Installs OpenBao (PyPI, through hack/install-tools.sh), builds
# the secrets-store CLI and our vault provider (one cargo build), starts
# OpenBao in dev mode on loopback, fills ./demo/secrets through the CLI,
# changes a secret and shows the refreshed file, then stops everything
# (also on error and on Ctrl-C).
#
#   ./hack/demo.sh --kubernetes   one node's whole path with a real control
#                                 plane, our driver and provider (see below)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ "${1:-}" = --kubernetes ]; then
  shift
  # A real control plane (etcd + kube-apiserver + kube-controller-manager,
  # our CRDs), the local Alibaba Cloud protocol server, our alibabacloud
  # provider and our CSI driver; publishes a pod's volume through the
  # kubelet simulator and prints the files, the synced Secret and the
  # status. Ctrl-C stops it.
  hack/install-tools.sh kubernetes etcd
  cargo build --locked --quiet -p secrets-store-csi-driver -p secrets-store-provider-alibabacloud --bins --examples
  exec target/debug/examples/demo "$@"
fi

hack/install-tools.sh python-tools >&2
cargo build --locked --quiet -p secrets-store-standalone -p secrets-store-provider-vault --bins --example vault-demo
exec target/debug/examples/vault-demo "$@"
