#!/usr/bin/env bash
# Build the local control plane's binaries from pinned Go modules, only what is missing.
#
#   tools/cluster/build.sh [kubernetes|etcd|kwok|helm|registry|tilt ...]   build (default: all but tilt)
#   tools/cluster/build.sh --env                                  print KEY=path lines, build nothing
#
# Binaries land in ~/.cache/troupe/bin/<tool>-<version>/ (TROUPE_CACHE overrides ~/.cache/troupe);
# the Go module and build caches in ~/.cache/troupe/go so the second run is a no-op and a rebuild is
# incremental. KUBEBUILDER_ASSETS (envtest convention: a folder holding kube-apiserver, etcd, kubectl)
# is honoured: binaries found there are used instead of building them.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$HERE/versions.env"
CACHE="${TROUPE_CACHE:-$HOME/.cache/troupe}"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
export GOMODCACHE="${GOMODCACHE_OVERRIDE:-$CACHE/go/mod}" GOCACHE="${GOCACHE_OVERRIDE:-$CACHE/go/build}"
export GOPROXY="${GOPROXY:-https://proxy.golang.org,direct}"
GO_P="${TROUPE_GO_P:-2}"

KUBE_DIR="$CACHE/bin/kubernetes-$KUBE_VERSION"
ETCD_DIR="$CACHE/bin/etcd-$ETCD_VERSION"
KWOK_DIR="$CACHE/bin/kwok-$KWOK_VERSION"
HELM_DIR="$CACHE/bin/helm-$HELM_VERSION-r2"  # -rN: the build recipe changed, rebuild
TILT_DIR="$CACHE/bin/tilt-$TILT_VERSION"
REGISTRY_DIR="$CACHE/bin/registry-$REGISTRY_VERSION"

asset() { # asset NAME DEFAULT_DIR -> path (KUBEBUILDER_ASSETS wins when it has the binary)
  if [[ -n "${KUBEBUILDER_ASSETS:-}" && -x "$KUBEBUILDER_ASSETS/$1" ]]; then echo "$KUBEBUILDER_ASSETS/$1"; else echo "$2/$1"; fi
}

print_env() {
  cat <<ENV
KUBE_VERSION=$KUBE_VERSION
KUBE_APISERVER=$(asset kube-apiserver "$KUBE_DIR")
KUBE_CONTROLLER_MANAGER=$(asset kube-controller-manager "$KUBE_DIR")
KUBE_SCHEDULER=$(asset kube-scheduler "$KUBE_DIR")
KUBECTL=$(asset kubectl "$KUBE_DIR")
ETCD=$(asset etcd "$ETCD_DIR")
KWOK=$KWOK_DIR/kwok
KWOKCTL=$KWOK_DIR/kwokctl
HELM=$HELM_DIR/helm
TILT=$TILT_DIR/tilt
REGISTRY=$REGISTRY_DIR/registry
ENV
}

log() { printf '\033[1m[cluster-binaries]\033[0m %s\n' "$*" >&2; }

# build_one MODULE_DIR OUT_PATH PACKAGE LDFLAGS
build_one() {
  local moddir="$1" out="$2" pkg="$3" ldflags="$4" t0=$SECONDS
  if [[ -x "$out" ]]; then log "ok      $(basename "$out") ($out)"; return 0; fi
  log "build   $(basename "$out") from $pkg (first build takes minutes; cached afterwards)"
  mkdir -p "$(dirname "$out")"
  (cd "$HERE/$moddir" && go build -p "$GO_P" -trimpath -ldflags "$ldflags" -o "$out.tmp" "$pkg")
  mv "$out.tmp" "$out"
  log "built   $(basename "$out") in $((SECONDS - t0))s"
}

build_kubernetes() {
  local minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}"
  local ld="-s -w" p
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ld+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  if ! grep -q "require k8s.io/kubernetes $KUBE_VERSION" "$HERE/kubernetes/go.mod"; then
    log "regenerating kubernetes/go.mod for $KUBE_VERSION"
    python3 "$HERE/gen-replaces.py" "$KUBE_VERSION"
    (cd "$HERE/kubernetes" && go mod tidy)
  fi
  for b in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    if [[ -n "${KUBEBUILDER_ASSETS:-}" && -x "$KUBEBUILDER_ASSETS/$b" ]]; then
      log "ok      $b (KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS)"; continue
    fi
    build_one kubernetes "$KUBE_DIR/$b" "k8s.io/kubernetes/cmd/$b" "$ld"
  done
}

build_etcd() {
  if [[ -n "${KUBEBUILDER_ASSETS:-}" && -x "$KUBEBUILDER_ASSETS/etcd" ]]; then
    log "ok      etcd (KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS)"; return 0
  fi
  build_one etcd "$ETCD_DIR/etcd" go.etcd.io/etcd/server/v3 \
    "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=$ETCD_VERSION"
}

build_kwok() {
  local ld="-s -w"  # kwok pkg/consts already carries its release version
  build_one kwok "$KWOK_DIR/kwok" sigs.k8s.io/kwok/cmd/kwok "$ld"
  build_one kwok "$KWOK_DIR/kwokctl" sigs.k8s.io/kwok/cmd/kwokctl "$ld"
}

build_helm() {
  # Like helm's own Makefile: the Kubernetes version `helm template` and `helm lint` assume comes from
  # the client-go minor helm is built with (else v1.20 and every kubeVersion: >=1.28 chart fails).
  local minor ld p
  minor="$(sed -n 's/^[[:space:]]*k8s.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$HERE/helm/go.mod")"
  ld="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  ld+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  for p in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    ld+=" -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=$minor"
  done
  build_one helm "$HELM_DIR/helm" helm.sh/helm/v3/cmd/helm "$ld"
}

build_registry() {
  # The reference OCI distribution registry (CNCF distribution), for the catalyst e2e tests only.
  build_one registry "$REGISTRY_DIR/registry" github.com/distribution/distribution/v3/cmd/registry \
    "-s -w -X github.com/distribution/distribution/v3/version.version=$REGISTRY_VERSION"
}

build_tilt() {
  # Tilt's Starlark language server parses with tree-sitter (cgo). Two tilt-dev pseudo-versions are
  # missing from the public checksum database; the committed go.sum pins their hashes instead.
  CGO_ENABLED=1 GONOSUMDB=github.com/tilt-dev/starlark-lsp,github.com/tilt-dev/go-get \
  build_one tilt "$TILT_DIR/tilt" github.com/tilt-dev/tilt/cmd/tilt \
    "-s -w -X main.version=${TILT_VERSION#v}"
}

if [[ "${1:-}" == "--env" ]]; then print_env; exit 0; fi
targets=("$@"); [[ ${#targets[@]} -gt 0 ]] || targets=(kubernetes etcd kwok helm registry)
t0=$SECONDS
for t in "${targets[@]}"; do "build_$t"; done
log "done in $((SECONDS - t0))s; binaries under $CACHE/bin"
