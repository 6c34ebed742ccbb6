#!/usr/bin/env bash
# Publish latency (p50/p99 over 200 publishes) and driver RSS, release build.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
hack/install-tools.sh kubernetes etcd
cargo build --release --locked -p secrets-store-csi-driver --bins --examples
exec target/release/examples/publish-bench target/release/secrets-store-csi-driver
