#!/usr/bin/env bash
# Install what the image builds need, from Debian (no Docker here): podman and buildah (chroot isolation,
# no daemon), debootstrap for the base image, fuse-overlayfs/uidmap for the storage driver.
# Idempotent: does nothing when every tool is present; otherwise one `apt-get update` and one install.
set -euo pipefail
need=()
for pair in podman:podman buildah:buildah debootstrap:debootstrap newuidmap:uidmap fuse-overlayfs:fuse-overlayfs; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
[[ ${#need[@]} -eq 0 ]] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "tools/images/setup.sh: missing ${need[*]} and no apt-get here; install podman and buildah by hand" >&2
  exit 1
fi
SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
echo "[images] installing ${need[*]} with apt-get" >&2
# Other sessions may hold the dpkg lock for a while; wait for it instead of failing.
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends \
  "${need[@]}" containers-storage >&2
