#!/usr/bin/env bash
# Build (or reuse) the pinned e2e toolchain (see the component list below).
#
#   e2e/toolchain.sh build [tier2]  build what is missing into the version-keyed cache, print
#                                   timings (tier2: also kwok and provider-kubernetes)
#   e2e/toolchain.sh pin [C...]     regenerate the wrapper modules e2e/toolchain/*/go.mod from
#                                   versions.env (all components, or the ones named)
#   e2e/toolchain.sh bindir         print the directory holding the binaries (after build)
#   e2e/toolchain.sh warm [tier2]   exit 0 if tier 1's (or tier 2's) components are all built
#
# Tier 1: etcd, kubernetes (kube-apiserver, kubectl, kube-controller-manager, kube-scheduler),
# crossplane, crane. Tier 2 adds kwok and provider-kubernetes (docs/e2e.md).
#
# Everything comes through the `go` command from the Go module proxy; nothing built and no
# third-party source lives in the repository. The cache lives in $MODELPLANE_E2E_CACHE
# (default /var/cache/modelplane-e2e), with GOMODCACHE and GOCACHE inside it so a second
# build on the same machine is a no-op and a rebuild after a pin change only recompiles what
# changed. Each component's binaries go to bin/<component>-<version>-<hash of its wrapper>.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$HERE/versions.env"
XP=${MODELPLANE_E2E_CACHE:-/var/cache/modelplane-e2e}
STG=0.${K8S_VERSION#1.}                 # staging modules: k8s 1.35.4 -> v0.35.4
K8S_MINOR=$(echo "$K8S_VERSION" | cut -d. -f2)
export GOMODCACHE=$XP/gomod GOCACHE=$XP/gocache CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false"
export GOTOOLCHAIN=local
JOBS=${MODELPLANE_E2E_GO_JOBS:-2}
TIER1=(etcd kubernetes crossplane crane)
TIER2=(kwok provider-kubernetes)
COMPONENTS=("${TIER1[@]}")

log() { printf '[toolchain %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

version_of() {
  case $1 in
    etcd) echo "$ETCD_VERSION" ;; kubernetes) echo "$K8S_VERSION" ;;
    crossplane) echo "$CROSSPLANE_VERSION" ;; crane) echo "$CRANE_VERSION" ;;
    kwok) echo "$KWOK_VERSION" ;; provider-kubernetes) echo "$PROVIDER_KUBERNETES_VERSION" ;;
  esac
}

# The cache key: component, version, and the exact wrapper module (go.mod + go.sum) and this
# script's build recipe, so a pin or ldflags change never reuses a stale binary.
keydir() {
  local c=$1 sum
  sum=$(cat "$HERE/toolchain/$c/go.mod" "$HERE/toolchain/$c/go.sum" \
        $( [ "$c" = provider-kubernetes ] && echo "$HERE"/toolchain/nebius-gosdk-stub/*.go "$HERE"/toolchain/nebius-gosdk-stub/auth/*.go ) <(declare -f build_"${c//-/_}") \
        <(go env GOVERSION) | sha256sum | cut -c1-12)
  echo "$XP/bin/$c-$(version_of "$c")-$sum"
}

# ---- pin: regenerate the wrapper modules -------------------------------------------------
pin_etcd() {
  go mod init e2e.local/etcd
  go get -tool "go.etcd.io/etcd/server/v3@v$ETCD_VERSION"
}
pin_kubernetes() {
  go mod init e2e.local/kubernetes
  # Every staging module k8s.io/kubernetes maps to ./staging/src/... goes to its published v0.x.
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\1#p' "$gomod" | sort -u |
    while read -r m; do go mod edit -replace="$m=$m@v$STG"; done
  go get -tool "k8s.io/kubernetes/cmd/kube-apiserver@v$K8S_VERSION" "k8s.io/kubernetes/cmd/kubectl@v$K8S_VERSION" \
    "k8s.io/kubernetes/cmd/kube-controller-manager@v$K8S_VERSION" \
    "k8s.io/kubernetes/cmd/kube-scheduler@v$K8S_VERSION"
}
pin_crossplane() {
  go mod init e2e.local/crossplane
  go get -tool "github.com/crossplane/crossplane/v2/cmd/crossplane@v$CROSSPLANE_VERSION" \
    "github.com/crossplane/crossplane/apis/v2@v$CROSSPLANE_VERSION"
}
pin_crane() {
  go mod init e2e.local/crane
  go get -tool "github.com/google/go-containerregistry/cmd/crane@v$CRANE_VERSION"
}
pin_kwok() {
  go mod init e2e.local/kwok
  go get -tool "sigs.k8s.io/kwok/cmd/kwok@v$KWOK_VERSION"
}
# Its own wrapper: minimal version selection must not mix its dependencies with Kubernetes'.
# github.com/nebius/gosdk (one optional credential source) is not served by the proxy: our
# always-failing stand-in replaces it (toolchain/nebius-gosdk-stub/README.md).
pin_provider_kubernetes() {
  go mod init e2e.local/provider-kubernetes
  go mod edit -replace=github.com/nebius/gosdk=../nebius-gosdk-stub
  go get -tool "github.com/crossplane-contrib/provider-kubernetes/cmd/provider@v$PROVIDER_KUBERNETES_VERSION"
}

cmd_pin() {
  local c t0
  [ $# -gt 0 ] || set -- "${TIER1[@]}" "${TIER2[@]}"
  for c in "$@"; do
    t0=$SECONDS
    rm -rf "$HERE/toolchain/$c" && mkdir -p "$HERE/toolchain/$c"
    (cd "$HERE/toolchain/$c" && GOFLAGS=-mod=mod pin_"${c//-/_}" >&2)
    log "pinned $c $(version_of "$c") in $((SECONDS - t0))s"
  done
}

# ---- build -------------------------------------------------------------------------------
build_etcd() {
  go build -p "$JOBS" -ldflags '-s -w' -o "$1/etcd" go.etcd.io/etcd/server/v3
}
build_kubernetes() {
  local V=k8s.io/component-base/version C=k8s.io/client-go/pkg/version
  local ldf="-s -w -X $V.gitVersion=v$K8S_VERSION -X $V.gitMajor=1 -X $V.gitMinor=$K8S_MINOR"
  ldf+=" -X $V.gitTreeState=clean -X $V.gitCommit=v$K8S_VERSION -X $V.buildDate=2026-01-01T00:00:00Z"
  ldf+=" -X $C.gitVersion=v$K8S_VERSION -X $C.gitMajor=1 -X $C.gitMinor=$K8S_MINOR"
  # One go build for the four: they share most packages, so the second is nearly free.
  go build -p "$JOBS" -ldflags "$ldf" -o "$1/" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl \
    k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler
  local b
  for b in kube-apiserver kube-controller-manager kube-scheduler; do
    "$1/$b" --version | grep -qx "Kubernetes v$K8S_VERSION"
  done
}
build_crossplane() {
  go build -p "$JOBS" -ldflags "-s -w -X github.com/crossplane/crossplane-runtime/v2/pkg/version.version=v$CROSSPLANE_VERSION" \
    -o "$1/crossplane" github.com/crossplane/crossplane/v2/cmd/crossplane
  "$1/crossplane" --version | grep -qx "v$CROSSPLANE_VERSION"
  # Crossplane's core CRDs ship in its module zip; keep a copy beside the binary.
  local mod
  mod=$(go list -m -f '{{.Dir}}' github.com/crossplane/crossplane/v2)
  rm -rf "$1/crossplane-crds" && cp -r "$mod/cluster/crds" "$1/crossplane-crds" && chmod -R u+w "$1/crossplane-crds"
}
build_crane() {
  go build -p "$JOBS" -ldflags '-s -w' -o "$1/crane" github.com/google/go-containerregistry/cmd/crane
}
build_kwok() {
  go build -p "$JOBS" -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=v$KWOK_VERSION" \
    -o "$1/kwok" sigs.k8s.io/kwok/cmd/kwok
  # kwok needs Stage definitions to act (node heartbeat, pod running); the defaults kwokctl
  # installs ship in its module zip: keep a copy beside the binary.
  local mod
  mod=$(go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
  rm -rf "$1/kwok-stages" && mkdir -p "$1/kwok-stages"
  cp "$mod"/kustomize/stage/node/fast/node-initialize.yaml "$mod"/kustomize/stage/node/heartbeat/node-heartbeat.yaml \
    "$mod"/kustomize/stage/pod/fast/pod-*.yaml "$1/kwok-stages/"
  chmod -R u+w "$1/kwok-stages"
}
build_provider_kubernetes() {
  go build -p "$JOBS" -ldflags '-s -w' -o "$1/provider-kubernetes" \
    github.com/crossplane-contrib/provider-kubernetes/cmd/provider
  # The provider package's CRDs (what its xpkg installs) ship in the module zip.
  local mod
  mod=$(go list -m -f '{{.Dir}}' github.com/crossplane-contrib/provider-kubernetes)
  rm -rf "$1/provider-kubernetes-package" && cp -r "$mod/package" "$1/provider-kubernetes-package"
  chmod -R u+w "$1/provider-kubernetes-package"
}

cmd_build() {
  local c dir t0 total=$SECONDS
  [ "${1:-}" = tier2 ] && COMPONENTS+=("${TIER2[@]}")
  mkdir -p "$XP/bin"
  log "cache $XP (GOMODCACHE, GOCACHE and bin/ inside), go $(go env GOVERSION), -p $JOBS"
  for c in "${COMPONENTS[@]}"; do
    dir=$(keydir "$c")
    if [ -f "$dir/.complete" ]; then
      log "$c $(version_of "$c"): cached in $dir"
      continue
    fi
    log "$c $(version_of "$c"): building into $dir"
    t0=$SECONDS
    rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
    (cd "$HERE/toolchain/$c" && GOFLAGS="$GOFLAGS -mod=readonly" build_"${c//-/_}" "$dir.tmp")
    rm -rf "$dir" && mv "$dir.tmp" "$dir" && touch "$dir/.complete"
    log "$c $(version_of "$c"): built in $((SECONDS - t0))s"
  done
  # One directory of links the harness puts first on PATH. Its name is a hash of the
  # component directories it links, so runs of other checkouts (other pins) sharing the cache
  # never swap binaries under a running harness.
  local links
  links=$(linkdir)
  if [ ! -d "$links" ]; then
    rm -rf "$links.tmp" && mkdir -p "$links.tmp"
    for c in $(linked_components); do
      dir=$(keydir "$c")
      for f in "$dir"/*; do ln -s "$f" "$links.tmp/$(basename "$f")"; done
    done
    mv "$links.tmp" "$links"
  fi
  log "toolchain ready in $((SECONDS - total))s: $links"
}

# Tier 1's components, and tier 2's when they are built.
linked_components() {
  local c
  echo "${TIER1[@]}"
  for c in "${TIER2[@]}"; do [ -f "$(keydir "$c")/.complete" ] && echo "$c"; done
  return 0
}
linkdir() {
  local c sum
  sum=$(for c in $(linked_components); do keydir "$c"; done | sha256sum | cut -c1-12)
  echo "$XP/bin/links-$sum"
}

cmd_bindir() { linkdir; }

cmd_warm() {  # exit 0 if every component of the tier is already built for the current pins
  local c
  [ "${1:-}" = tier2 ] && COMPONENTS=("${TIER2[@]}")
  for c in "${COMPONENTS[@]}"; do [ -f "$(keydir "$c")/.complete" ] || return 1; done
}

case ${1:-build} in
  build) cmd_build "${@:2}" ;; pin) cmd_pin "${@:2}" ;; bindir) cmd_bindir ;; warm) cmd_warm "${@:2}" ;;
  *) echo "usage: $0 build [tier2]|pin [component...]|bindir|warm [tier2]" >&2; exit 2 ;;
esac
