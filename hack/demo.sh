#!/usr/bin/env bash
# The main job on a fresh machine: builds what it needs, then runs one
# node's whole path for real on embedded defaults: a real control plane
# (etcd + kube-apiserver + kube-controller-manager, our CRDs), the local
# Alibaba Cloud protocol server, our alibabacloud provider and our CSI
# driver; publishes a pod's volume through the kubelet simulator and prints
# the files, the synced Secret and the status. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
hack/install-tools.sh kubernetes etcd
cargo build --locked --quiet -p secrets-store-csi-driver -p secrets-store-provider-alibabacloud --bins --examples
exec target/debug/examples/demo "$@"
