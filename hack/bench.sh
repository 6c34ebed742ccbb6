#!/usr/bin/env bash
# Side-by-side benchmark of our driver and the upstream Go driver v1.6.0
# (not a test; BENCHMARKS.md describes it and shows a run). Release build
# into $SSCSI_RELEASE_TARGET (default ~/.cache/secrets-store-csi-rs/release-target).
# Flags go to the bench binary, e.g. `hack/bench.sh --volumes 100 --fleet-nodes 0`;
# `--help` lists them. Needs root (tmpfs mounts) like the driver tests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
hack/install-tools.sh kubernetes etcd upstream-driver upstream-e2e-provider
TARGET_DIR=${SSCSI_RELEASE_TARGET:-$HOME/.cache/secrets-store-csi-rs/release-target}
CARGO_TARGET_DIR=$TARGET_DIR cargo build --release --locked -p secrets-store-csi-driver --bins --example bench
exec "$TARGET_DIR/release/examples/bench" --ours "$TARGET_DIR/release/secrets-store-csi-driver" "$@"
