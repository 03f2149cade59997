#!/usr/bin/env bash
# Build operator images without Docker: podman build (chroot isolation, host network) of each
# plugins/<name>/Dockerfile, from the local base image (tools/images/base.sh).
#
#   tools/images/build.sh [name ...]     default: every plugins/<name> with a Dockerfile
#
# Tags: localhost/troupe/<name>-operator:<plugin version> and :dev. Prints one line per image:
#   <name> <image> <size MB> <seconds>
# TROUPE_IMAGE_BASE=<image> builds from another base (e.g. python:3.12-slim where a registry answers).
#
# A Dockerfile's `# image-tools: helm git` line names programs its image carries besides the operator:
#   helm  the build context `helm`: the directory of the helm binary tools/cluster/build.sh builds
#         (`COPY --from=helm helm ...`; no download site is needed)
#   kubectl  the build context `kubectl`: the directory of the kubectl tools/cluster/build.sh builds
#   git   the build arg APT_IMAGE: a Debian with apt to install git in (the local base before trimming,
#         tools/images/base.sh --apt; with TROUPE_IMAGE_BASE, that image itself or TROUPE_IMAGE_APT_BASE)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
log() { printf '\033[1m[images]\033[0m %s\n' "$*" >&2; }

bash tools/images/setup.sh
BASE="${TROUPE_IMAGE_BASE:-$(bash tools/images/base.sh)}"
ops=("$@")
if [[ ${#ops[@]} -eq 0 ]]; then
  for f in plugins/*/Dockerfile; do ops+=("$(basename "$(dirname "$f")")"); done
fi
revision="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
git diff --quiet HEAD 2>/dev/null || revision="$revision-dirty"
# pip and uv inside the build trust what this host trusts (a proxy's CA on these machines)
ca=()
[[ -f /etc/ssl/certs/ca-certificates.crt ]] && ca=(-v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro)

for op in "${ops[@]}"; do
  [[ -f "plugins/$op/Dockerfile" ]] || { log "no plugins/$op/Dockerfile"; exit 1; }
  extra=()
  for tool in $(sed -n 's/^# image-tools://p' "plugins/$op/Dockerfile"); do
    case "$tool" in
      helm)
        bash tools/cluster/build.sh helm  # a no-op when built
        helm="$(bash tools/cluster/build.sh --env | sed -n 's/^HELM=//p')"
        extra+=(--build-context "helm=$(dirname "$helm")") ;;
      kubectl)
        bash tools/cluster/build.sh kubernetes  # a no-op when built
        kubectl="$(bash tools/cluster/build.sh --env | sed -n 's/^KUBECTL=//p')"
        extra+=(--build-context "kubectl=$(dirname "$kubectl")") ;;
      git)
        apt_base="${TROUPE_IMAGE_APT_BASE:-${TROUPE_IMAGE_BASE:-$(bash tools/images/base.sh --apt)}}"
        extra+=(--build-arg "APT_IMAGE=$apt_base") ;;
      *) log "plugins/$op/Dockerfile: unknown image tool $tool (known: helm kubectl git)"; exit 1 ;;
    esac
  done
  version="$(python3 -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' \
    "plugins/$op/pyproject.toml")"
  image="localhost/troupe/$op-operator"
  t0=$SECONDS
  log "build $image:$version from $BASE"
  podman build --isolation chroot --network host "${ca[@]}" --layers \
    --build-arg "BASE_IMAGE=$BASE" --build-arg "VERSION=$version" --build-arg "REVISION=$revision" "${extra[@]}" \
    -f "plugins/$op/Dockerfile" -t "$image:$version" -t "$image:dev" . >&2
  size="$(podman image inspect --format '{{.Size}}' "$image:$version")"
  echo "$op $image:$version $((size / 1000000)) $((SECONDS - t0))"
done
