#!/usr/bin/env bash
# Runs every fuzz target under fuzz/ for a fixed time budget each.
#
#   hack/fuzz.sh [--dev] [seconds-per-target] [target ...]   # default: 60 s, all
#
# --dev builds without optimisation (cargo fuzz --dev): a fraction of the
# build time for fewer executions per second, for short smoke runs
# (hack/test.sh uses it); longer runs want the optimised build.
#
# cargo-fuzz (libFuzzer) on the stable toolchain: `--sanitizer none` keeps
# every rustc flag stable (coverage instrumentation is `-C` flags; only the
# sanitizers need nightly, and the code under test forbids `unsafe`).
# Debug assertions and overflow checks stay on.
#
# The build goes to $CACHE/fuzz-target and each target's growing corpus to
# $CACHE/fuzz-corpus/<target> (outside the clone, so warm runs reuse both);
# fuzz/seeds/<target> is the small committed seed corpus. A crashing input
# is left in fuzz/artifacts/<target>/ and the script exits non-zero after
# running the remaining targets. Replay one with
#   cargo fuzz run --fuzz-dir fuzz --sanitizer none <target> <file>
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

profile=()
if [ "${1:-}" = --dev ]; then
  profile=(--dev)
  shift
fi
budget=${1:-60}
shift || true
CACHE=${SSCSI_CACHE_DIR:-$HOME/.cache/secrets-store-csi-rs}
TOOLS=${SSCSI_TOOLS_DIR:-$CACHE/tools}
TARGET_DIR=$CACHE/fuzz-target
CORPUS=$CACHE/fuzz-corpus
LOGS=$CACHE/fuzz-logs

log() { printf '[fuzz] %s\n' "$*" >&2; }

SSCSI_TOOLS_DIR=$TOOLS hack/install-tools.sh cargo-fuzz
export PATH=$TOOLS/bin:$PATH
fuzz=(cargo fuzz)
opts=(--fuzz-dir fuzz --sanitizer none --target-dir "$TARGET_DIR" "${profile[@]}")

# The lock file is committed: refuse to build if it is stale.
cargo metadata --locked --format-version 1 --manifest-path fuzz/Cargo.toml >/dev/null

targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <("${fuzz[@]}" list --fuzz-dir fuzz)

started=$(date +%s)
log "building ${#targets[@]} targets into $TARGET_DIR"
"${fuzz[@]}" build "${opts[@]}"
log "build took $(($(date +%s) - started))s"

mkdir -p "$LOGS"
failed=0
summary=()
for t in "${targets[@]}"; do
  mkdir -p "$CORPUS/$t" "fuzz/seeds/$t"
  case $t in
    *objects*) dict=yaml ;;
    mount_request | volume_state) dict=json ;;
    *) dict=paths ;;
  esac
  log "$t: ${budget}s"
  rc=0
  "${fuzz[@]}" run "${opts[@]}" "$t" "$CORPUS/$t" "fuzz/seeds/$t" -- \
    -max_total_time="$budget" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
    -dict="fuzz/dicts/$dict.dict" -print_final_stats=1 >"$LOGS/$t.log" 2>&1 || rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$LOGS/$t.log" | tail -1)
  secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$LOGS/$t.log" | tail -1)
  if [ "$rc" -eq 0 ]; then
    result=ok
  else
    failed=1
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$LOGS/$t.log" | tail -1)
    result="FAILED (exit $rc) input: ${artifact:-none written}"
    grep -m1 -A12 "panicked at\|ERROR: libFuzzer" "$LOGS/$t.log" >&2 || tail -20 "$LOGS/$t.log" >&2
  fi
  summary+=("$(printf '%-18s %12s execs %6ss  %s' "$t" "${runs:-?}" "${secs:-$budget}" "$result")")
done

log "summary (logs in $LOGS):"
printf '  %s\n' "${summary[@]}"
exit "$failed"
