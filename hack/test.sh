#!/usr/bin/env bash
# The whole test suite: installs the real components it runs against
# (cached by version outside the clone), then runs every test.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
hack/install-tools.sh
cargo test --workspace --locked
# SSCSI_BATS=all: also upstream's bats suite on the real node, with our chart,
# with upstream's chart and our image, and with the upstream driver (about 8
# minutes each, docs/real-node.md).
if [ "${SSCSI_BATS:-}" = all ]; then
  cargo test --locked -p secrets-store-deploy-tests --test real_node -- --ignored
fi
