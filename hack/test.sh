#!/usr/bin/env bash
# The whole test suite: installs the real components it runs against
# (cached by version outside the clone), then runs every test.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# On a fresh machine the tools (Go builds) and the test build each leave a
# core idle while they link: build them side by side.
hack/install-tools.sh &
tools_pid=$!
cargo test --workspace --locked --no-run
# The images' release build (its own target directory) goes beside the rest
# of the tools build too; packing them needs umoci, from the tools.
hack/images.sh --binaries-only
wait "$tools_pid"

# The real-node tests (crates/testkit/tests/demo.rs starts the node by hand;
# crates/deploy-tests/tests/real_node.rs: our charts under a real kubelet,
# then upstream's bats suite with our chart and with upstream's chart and our
# image) mostly wait on kubelet and on the suite's own sleeps, so they run
# beside the other tests once the images they import are built; their
# output (with the bats summaries) follows the other tests'. One node runs
# at a time. SSCSI_BATS=all adds the upstream driver's baseline run
# (docs/real-node.md).
images=${CARGO_TARGET_DIR:-$PWD/target}/images
hack/images.sh "$images"
node_tests=(control_plane_real_node_runs_a_pod our_charts_serve_pods_through_the_real_kubelet
  upstream_bats_suite_passes_with)
# Exactly the target selection of the build above: `-p` or `--test` would
# resolve other features and rebuild protox, tokio, kube and the rest for
# this job alone. The name filters pick the real-node tests; every other
# binary starts and finds nothing to run.
node_tests() {
  local args=(--nocapture)
  if [ "${SSCSI_BATS:-}" = all ]; then args+=(--include-ignored); fi
  SSCSI_IMAGES_DIR=$images cargo test --workspace --locked --no-fail-fast \
    -- "${args[@]}" "${node_tests[@]}"
}
node_log=$(mktemp "${TMPDIR:-/tmp}/sscsi-real-node.XXXXXX")
node_tests >"$node_log" 2>&1 &
node_pid=$!

# Every other test (the real-node tests' names are skipped here).
status=0
skips=()
for t in "${node_tests[@]}"; do skips+=(--skip "$t"); done
cargo test --workspace --locked -- "${skips[@]}" || status=$?

# The fuzz targets' smoke run (10 s each, unoptimised build; hack/fuzz.sh)
# goes here: the real-node job spends its last minutes waiting on the bats
# suite's sleeps, so the instrumented build and the runs take no time from
# the critical path. SSCSI_FUZZ_SECONDS=0 skips it.
fuzz_status=0
if [ "${SSCSI_FUZZ_SECONDS:-10}" != 0 ]; then
  echo "== fuzz (hack/fuzz.sh ${SSCSI_FUZZ_SECONDS:-10}: seconds per target)"
  hack/fuzz.sh --dev "${SSCSI_FUZZ_SECONDS:-10}" || fuzz_status=$?
fi

node_status=0
wait "$node_pid" || node_status=$?
echo "== real node (crates/testkit/tests/demo.rs, crates/deploy-tests/tests/real_node.rs)"
cat "$node_log"
rm -f "$node_log"
[ "$status" -eq 0 ] && [ "$node_status" -eq 0 ] && [ "$fuzz_status" -eq 0 ]
