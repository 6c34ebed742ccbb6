#!/usr/bin/env bash
# Heap profile of our driver under the benchmark (not a test; BENCHMARKS.md
# shows a run). Our driver runs under heaptrack's preload library through a
# wrapper that `exec`s it (same PID: the bench's RSS and CPU readings still
# apply, and its SIGTERM at the end of each run lets heaptrack write its
# data), only ours runs. Then the data is interpreted and the top entries
# printed. Flags go to the bench, e.g.
#   hack/bench-heap.sh --volumes 1000 --concurrency 1 --providers zero
# Needs heaptrack (`apt-get install -y heaptrack`) and root, like the bench.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
hack/install-tools.sh kubernetes etcd upstream-driver upstream-e2e-provider
TARGET_DIR=${SSCSI_RELEASE_TARGET:-$HOME/.cache/secrets-store-csi-rs/release-target}
CARGO_TARGET_DIR=$TARGET_DIR cargo build --release --locked -p secrets-store-csi-driver --bins --example bench
LIB=${HEAPTRACK_LIB:-/usr/lib/heaptrack}
OUT=${HEAP_OUT:-$PWD/heap-profile}
rm -rf "$OUT" && mkdir -p "$OUT/bin"
# The wrapper keeps our binary's name: the bench passes our flags by name.
cat >"$OUT/bin/secrets-store-csi-driver" <<WRAP
#!/bin/sh
exec env LD_PRELOAD=$LIB/libheaptrack_preload.so DUMP_HEAPTRACK_OUTPUT=$OUT/raw.\$\$ \
  $TARGET_DIR/release/secrets-store-csi-driver "\$@"
WRAP
chmod +x "$OUT/bin/secrets-store-csi-driver"
"$TARGET_DIR/release/examples/bench" --ours "$OUT/bin/secrets-store-csi-driver" \
  --drivers ours --idle-seconds 3 --fleet-nodes 0 --out "$OUT/bench.json" "$@"
for raw in "$OUT"/raw.*; do
  gz="$OUT/heaptrack.${raw##*.}.gz"
  "$LIB/libexec/heaptrack_interpret" <"$raw" | gzip >"$gz" && rm -f "$raw"
  heaptrack_print -f "$gz" --peak-limit=25 --print-temporary=0 --print-leaks=1 \
    >"${gz%.gz}.txt"
  echo "profile: ${gz%.gz}.txt"
done
