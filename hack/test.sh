#!/usr/bin/env bash
# The whole test suite: installs the real components it runs against
# (cached by version outside the clone), then runs every test.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
hack/install-tools.sh
cargo test --workspace --locked
