#!/usr/bin/env bash
# Builds the images a real test node runs besides our own (hack/images.sh),
# without a container engine or a registry: each is an OCI archive made with
# umoci from binaries on this machine, named as the manifests that use it
# expect, for `ctr -n k8s.io images import`.
#
#   hack/node-images.sh [OUT_DIR]      # default: $TOOLS/node-images/<key>
#
# - the pause image (busybox sleeping as PID 1);
# - registry.k8s.io/e2e-test-images/busybox:1.29-4 (Debian's busybox-static);
# - curlimages/curl:7.75.0 (Debian's curl, its libraries, busybox);
#   names are written the way CRI normalizes them (docker.io/...).
# - node-driver-registrar and livenessprobe, built from ../shared/peers;
# - the upstream driver v1.6.0 (with mount/umount, as its Dockerfile has),
#   its CRD hook image (kubectl + CRDs) and its e2e provider.
# Binaries come from hack/install-tools.sh (kube_node containerd csi_sidecars
# upstream_driver upstream_e2e_provider kubernetes). Archives are cached by
# the hash of this script and the binaries; the directory is printed last.
set -euo pipefail
HACK=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOOLS=${SSCSI_TOOLS_DIR:-$HOME/.cache/secrets-store-csi-rs/tools}
BIN=$TOOLS/bin
SRC=$TOOLS/upstream-sscsi-src

log() { printf '[node-images] %s\n' "$*" >&2; }

# Every file the images take from this machine.
inputs() {
  readlink -f "$BIN"/{csi-node-driver-registrar,livenessprobe,upstream-secrets-store-csi-driver,upstream-e2e-provider,kubectl} \
    /usr/bin/busybox /usr/bin/curl /usr/bin/mount /usr/bin/umount
}
KEY=$( (cat "${BASH_SOURCE[0]}"; inputs | xargs sha256sum) | sha256sum | cut -c1-16)
OUT=${1:-$TOOLS/node-images/$KEY}
if [ -f "$OUT/.done" ]; then
  echo "$OUT"
  exit 0
fi
mkdir -p "$OUT"

# with_libs ROOTFS FILE [DEST]: copies FILE to ROOTFS/DEST (default: its
# own path) and the shared libraries it loads (ldd) at their own paths.
with_libs() {
  local root=$1 f=$2 dest=${3:-$2} lib
  install -D -m 0755 "$(readlink -f "$f")" "$root$dest"
  for lib in $(ldd "$f" 2>/dev/null | grep -o '/[^ ]*' || true); do
    [ -e "$root$lib" ] || install -D -m 0755 "$(readlink -f "$lib")" "$root$lib"
  done
}

# busybox_into ROOTFS: busybox with its applets as /bin links.
busybox_into() {
  install -D -m 0755 /usr/bin/busybox "$1/bin/busybox"
  local a
  for a in $(/usr/bin/busybox --list); do
    [ -e "$1/bin/$a" ] || ln -s busybox "$1/bin/$a"
  done
}

# image FILE REF USER ENTRYPOINT_JSON CMD_JSON FILL_FUNCTION [ARGS...]:
# OUT/FILE.oci.tar named REF whose rootfs FILL_FUNCTION ROOTFS ARGS... fills.
image() {
  local file=$1 ref=$2 user=$3 entrypoint=$4 cmd=$5 fill=$6 work; shift 6
  work=$(mktemp -d)
  umoci init --layout "$work/layout"
  umoci new --image "$work/layout:img"
  umoci unpack --image "$work/layout:img" "$work/bundle" >/dev/null
  "$fill" "$work/bundle/rootfs" "$@"
  umoci repack --image "$work/layout:img" "$work/bundle"
  umoci config --image "$work/layout:img" --config.user "$user" \
    --config.env PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin
  python3 - "$work/layout" "$ref" "$entrypoint" "$cmd" <<'PY'
import hashlib, json, os, sys
layout, ref, entrypoint, cmd = sys.argv[1:5]
def blob(d):
    return os.path.join(layout, "blobs", *d.split(":"))
index = json.load(open(os.path.join(layout, "index.json")))
desc = index["manifests"][0]
manifest = json.load(open(blob(desc["digest"])))
config = json.load(open(blob(manifest["config"]["digest"])))
config["config"]["Entrypoint"] = json.loads(entrypoint) or None
config["config"]["Cmd"] = json.loads(cmd) or None
def put(obj):
    data = json.dumps(obj).encode()
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    open(blob(d), "wb").write(data)
    return d, len(data)
manifest["config"]["digest"], manifest["config"]["size"] = put(config)
desc["digest"], desc["size"] = put(manifest)
# containerd names an imported image from this annotation.
desc["annotations"] = {"io.containerd.image.name": ref, "org.opencontainers.image.ref.name": "img"}
json.dump(index, open(os.path.join(layout, "index.json"), "w"))
PY
  umoci gc --layout "$work/layout"
  tar -C "$work/layout" -cf "$OUT/$file.oci.tar" .
  rm -rf "$work"
  log "$file.oci.tar ($ref)"
}

fill_busybox() {
  busybox_into "$1"
  mkdir -p "$1/tmp" "$1/etc"
  echo "root:x:0:0:root:/root:/bin/sh" >"$1/etc/passwd"
  # Debian's busybox has no printenv applet; upstream's bats suite uses it.
  [ -e "$1/bin/printenv" ] || printf '%s\n' '#!/bin/sh' \
    '[ $# -eq 0 ] && exec env' \
    'for v; do eval "[ -n \"\${$v+x}\" ] && printf \"%s\\n\" \"\$$v\""; done' >"$1/bin/printenv"
  chmod 0755 "$1/bin/printenv"
}
fill_curl() { fill_busybox "$1"; with_libs "$1" /usr/bin/curl; }
fill_binary() { with_libs "$1" "$BIN/$2" "/$3"; }
fill_upstream_driver() {
  fill_binary "$1" upstream-secrets-store-csi-driver secrets-store-csi
  with_libs "$1" /usr/bin/mount
  with_libs "$1" /usr/bin/umount
}
fill_crds() { fill_binary "$1" kubectl kubectl; mkdir -p "$1/crds"; cp "$SRC"/charts/secrets-store-csi-driver/crds/*.yaml "$1/crds/"; }

image pause registry.k8s.io/pause:3.10.1 65535:65535 '["/bin/sleep","2147483647"]' '[]' fill_busybox
image busybox registry.k8s.io/e2e-test-images/busybox:1.29-4 0:0 '[]' '["sh"]' fill_busybox
image curl docker.io/curlimages/curl:7.75.0 100:101 '[]' '["curl"]' fill_curl
image node-driver-registrar registry.k8s.io/sig-storage/csi-node-driver-registrar:v2.17.0 0:0 \
  '["/csi-node-driver-registrar"]' '[]' fill_binary csi-node-driver-registrar csi-node-driver-registrar
image livenessprobe registry.k8s.io/sig-storage/livenessprobe:v2.19.0 0:0 \
  '["/livenessprobe"]' '[]' fill_binary livenessprobe livenessprobe
image upstream-driver registry.k8s.io/csi-secrets-store/driver:v1.6.0 0:0 \
  '["/secrets-store-csi"]' '[]' fill_upstream_driver
image upstream-driver-crds registry.k8s.io/csi-secrets-store/driver-crds:v1.6.0 0:0 \
  '["/kubectl"]' '[]' fill_crds
image e2e-provider docker.io/library/e2e-provider:v1.6.0 0:0 '["/e2e-provider"]' '[]' fill_binary upstream-e2e-provider e2e-provider
touch "$OUT/.done"
echo "$OUT"
