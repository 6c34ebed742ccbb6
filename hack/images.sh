#!/usr/bin/env bash
# Builds the container images without a container engine: one release build
# of the static binaries, then one OCI archive per image with umoci, named
# and tagged as the Helm charts expect (import with
# `ctr -n k8s.io images import <archive>`). deploy/images/*.Dockerfile build
# the same images with docker/buildah.
#
#   hack/images.sh [OUT_DIR]        # default: target/images
#   hack/images.sh --binaries-only  # the release build alone (no umoci)
#
# The release build has its own target directory, kept between runs
# ($SSCSI_RELEASE_TARGET, default ~/.cache/secrets-store-csi-rs/release-target),
# and its time is printed. Needs umoci (hack/install-tools.sh image_tools).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:-$ROOT/target/images}
TARGET_DIR=${SSCSI_RELEASE_TARGET:-$HOME/.cache/secrets-store-csi-rs/release-target}
TRIPLE=$(uname -m)-unknown-linux-gnu
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)
REGISTRY=ghcr.io/secrets-store-csi-rs

log() { printf '[images] %s\n' "$*" >&2; }

build_binaries() {
  local start=$SECONDS v clean=()
  # Run from a test (crates/deploy-tests/tests/images.rs), this script
  # inherits the test's CARGO_MANIFEST_DIR, CARGO_PKG_* and friends; build
  # scripts that watch them (ring's) would see a change and cargo would
  # rebuild most of the release tree. Build with the caller's package
  # variables removed, so the build hack/test.sh made stays fresh.
  for v in $(compgen -e); do
    case $v in CARGO_MANIFEST_* | CARGO_PKG_* | CARGO_CRATE_NAME | CARGO_BIN_* | \
      CARGO_PRIMARY_PACKAGE | CARGO_TARGET_TMPDIR | OUT_DIR) clean+=(-u "$v") ;; esac
  done
  # crt-static on an explicit --target: the binaries are static, build
  # scripts and proc macros (host artefacts) are not affected.
  env "${clean[@]}" RUSTFLAGS="-C target-feature=+crt-static" CARGO_TARGET_DIR=$TARGET_DIR \
    cargo build --release --locked --target "$TRIPLE" \
    -p secrets-store-csi-driver --bin secrets-store-csi-driver \
    -p secrets-store-provider-alibabacloud --bin secrets-store-csi-driver-provider-alibabacloud \
    -p secrets-store-provider-vault --bin secrets-store-csi-driver-provider-vault \
    -p secrets-store-provider-aws --bin secrets-store-csi-driver-provider-aws >&2
  log "release build: $((SECONDS - start))s (target dir $TARGET_DIR)"
}

# image NAME BINARY USER [EXTRA_FILE...]: OUT/NAME.oci.tar holding
# /BINARY (and each EXTRA_FILE at its own path), running as USER.
image() {
  local name=$1 binary=$2 user=$3; shift 3
  local ref=$REGISTRY/$name:v$VERSION work
  work=$(mktemp -d)
  umoci init --layout "$work/layout"
  umoci new --image "$work/layout:$ref"
  umoci unpack --image "$work/layout:$ref" "$work/bundle" >/dev/null
  install -m 0755 "$TARGET_DIR/$TRIPLE/release/$binary" "$work/bundle/rootfs/$binary"
  for f in "$@"; do
    install -D -m 0644 "$f" "$work/bundle/rootfs$f"
  done
  umoci repack --image "$work/layout:$ref" "$work/bundle"
  umoci config --image "$work/layout:$ref" \
    --config.entrypoint "/$binary" --config.user "$user" \
    --config.label "org.opencontainers.image.title=$name" \
    --config.label "org.opencontainers.image.version=$VERSION" \
    --config.label "org.opencontainers.image.licenses=Apache-2.0" \
    --config.label "org.opencontainers.image.source=https://github.com/kubernetes-sigs/secrets-store-csi-driver"
  umoci gc --layout "$work/layout"
  # containerd names an imported image from this annotation.
  python3 - "$work/layout/index.json" "$ref" <<'PY'
import json, sys
path, ref = sys.argv[1], sys.argv[2]
index = json.load(open(path))
for m in index["manifests"]:
    m.setdefault("annotations", {})["io.containerd.image.name"] = ref
json.dump(index, open(path, "w"))
PY
  mkdir -p "$OUT"
  tar -C "$work/layout" -cf "$OUT/$name.oci.tar" .
  rm -rf "$work"
  log "$OUT/$name.oci.tar ($ref)"
}

build_binaries
[ "${1:-}" != --binaries-only ] || exit 0
image secrets-store-csi-driver secrets-store-csi-driver 0:0
image secrets-store-csi-driver-provider-alibabacloud \
  secrets-store-csi-driver-provider-alibabacloud 65532:65532 \
  /etc/ssl/certs/ca-certificates.crt
image secrets-store-csi-driver-provider-vault \
  secrets-store-csi-driver-provider-vault 65532:65532 \
  /etc/ssl/certs/ca-certificates.crt
image secrets-store-csi-driver-provider-aws \
  secrets-store-csi-driver-provider-aws 65532:65532 \
  /etc/ssl/certs/ca-certificates.crt
