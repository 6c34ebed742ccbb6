#!/usr/bin/env bash
# The main job on a fresh machine: standalone mode end to end, no
# Kubernetes. Installs OpenBao (PyPI, through hack/install-tools.sh), builds
# the secrets-store CLI and our vault provider (one cargo build), starts
# OpenBao in dev mode on loopback, fills ./demo/secrets through the CLI,
# changes a secret and shows the refreshed file, then stops everything
# (also on error and on Ctrl-C).
#
#   ./hack/demo.sh --kubernetes   the same secrets through Kubernetes: a real
#                                 control plane, OpenBao's Kubernetes auth,
#                                 our CSI driver and provider (see below)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ "${1:-}" = --kubernetes ]; then
  shift
  # A real control plane (etcd + kube-apiserver, our CRDs), OpenBao in dev
  # mode with its Kubernetes auth method checking tokens through the API
  # server's TokenReview, our vault provider and our CSI driver; creates a
  # ServiceAccount, a SecretProviderClass (with a synced Secret) and a Pod,
  # publishes the pod's volume as kubelet does, prints the files, the
  # SecretProviderClassPodStatus and the Secret, rotates the secret in
  # OpenBao and prints the refreshed file, then stops everything (Ctrl-C
  # too). Needs root (the driver mounts a tmpfs).
  hack/install-tools.sh kubernetes etcd python-tools >&2
  cargo build --locked --quiet -p secrets-store-csi-driver -p secrets-store-provider-vault \
    -p secrets-store-standalone --bins --example vault-k8s-demo
  exec target/debug/examples/vault-k8s-demo "$@"
fi

hack/install-tools.sh python-tools >&2
cargo build --locked --quiet -p secrets-store-standalone -p secrets-store-provider-vault --bins --example vault-demo
exec target/debug/examples/vault-demo "$@"
