#!/usr/bin/env bash
# Make the local base image once: Debian bookworm (minbase) with python3, by debootstrap + `podman import`,
# since no registry is reachable here. Users of Docker keep python:3.12-slim (the Dockerfiles' default).
#
#   tools/images/base.sh          print the base image's name, building it first when it is missing
#   tools/images/base.sh --apt    the same Debian before trimming, apt included: the stage of an operator
#                                 image that installs Debian packages (git) to copy into the final stage
#
# The rootfs tarball is cached in ~/.cache/troupe/images/ (TROUPE_CACHE overrides ~/.cache/troupe), so a
# wiped container store re-imports it in seconds instead of bootstrapping again.
set -euo pipefail
CACHE="${TROUPE_CACHE:-$HOME/.cache/troupe}/images"
SUITE=bookworm
# -rN: bump when the recipe below changes, so a stale base is rebuilt.
NAME="localhost/troupe-base:$SUITE-python3-r2"
APT=0
if [[ "${1:-}" == "--apt" ]]; then APT=1; NAME="localhost/troupe-base:$SUITE-python3-apt-r1"; fi
# The debootstrap output, before trimming (so a change to the trimming needs no new bootstrap).
TARBALL="$CACHE/troupe-base-$SUITE-python3-r1.tar"
# What neither stage of an operator image needs, removed by their dpkg file lists: the package
# managers (apt, dpkg, perl which dpkg's scripts need) and libraries nothing else here links
# (apt's TLS and signatures, e2fsprogs, systemd's client library). python3 and pip are kept.
TRIM=(apt libapt-pkg6.0 gpgv e2fsprogs libext2fs2 libss2 logsave libgnutls30 libunistring2 libp11-kit0
      libgcrypt20 libsystemd0 libdb5.3 libsepol2 libsemanage2 libsemanage-common debconf perl-base
      libidn2-0 libhogweed6 libnettle8 libtasn1-6 libzstd1 libxxhash0 liblz4-1 libudev1
      libseccomp2 libcap-ng0 libaudit1 libaudit-common dpkg)
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
log() { printf '\033[1m[images]\033[0m %s\n' "$*" >&2; }

if podman image exists "$NAME"; then echo "$NAME"; exit 0; fi
mkdir -p "$CACHE"
root="$(mktemp -d "$CACHE/rootfs.XXXXXX")"
trap 'rm -rf "$root"' EXIT
if [[ ! -s "$TARBALL" ]]; then
  t0=$SECONDS
  log "debootstrap $SUITE into $root (once; a few minutes)"
  # python3-pip: the build stage installs uv with it; the final stage deletes it (no package managers).
  debootstrap --variant=minbase --include=python3,python3-pip,ca-certificates \
    "$SUITE" "$root" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 || {
    log "debootstrap failed; see $CACHE/debootstrap.log"; tail -5 "$CACHE/debootstrap.log" >&2; exit 1; }
  tar -C "$root" --numeric-owner -cf "$TARBALL.tmp" .
  mv "$TARBALL.tmp" "$TARBALL"
  log "rootfs bootstrapped in $((SECONDS - t0))s: $TARBALL ($(du -h "$TARBALL" | cut -f1))"
else
  tar -C "$root" --numeric-owner -xf "$TARBALL"
fi
if [[ $APT == 1 ]]; then
  # untrimmed: apt, dpkg and their databases stay (only a build stage uses this image)
  chroot "$root" apt-get --version >/dev/null || { log "no apt in $TARBALL"; exit 1; }
else
  for pkg in "${TRIM[@]}"; do
    list="$root/var/lib/dpkg/info/$pkg.list"
    [[ -f "$list" ]] || list="$root/var/lib/dpkg/info/$pkg:amd64.list"
    [[ -f "$list" ]] || { log "trim: $pkg not installed"; continue; }
    while IFS= read -r f; do  # files only: a directory (or usr-merge symlink like /lib) is shared
      if [[ ( -f "$root$f" || -L "$root$f" ) && ! -d "$root$f" ]]; then rm -f "$root$f"; fi
    done <"$list"
  done
  # What an image never needs: docs, man pages, locales, the package databases and caches.
  rm -rf "$root"/usr/share/{doc,man,info,locale,lintian,bash-completion}/* "$root"/var/lib/apt "$root"/var/cache/* \
    "$root"/var/lib/dpkg "$root"/var/log/* "$root"/etc/apt "$root"/etc/dpkg
fi
# The result must still run python3 with its C modules and pip (the build stage installs uv with it).
chroot "$root" /usr/bin/python3 -c 'import ssl, sqlite3, ctypes, zoneinfo, lzma, bz2, uuid, asyncio, pip' || {
  log "the trimmed rootfs lost something python3 needs; fix TRIM in $0"; exit 1; }
tar -C "$root" --numeric-owner -c . | podman import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  - "$NAME" >/dev/null
log "imported $NAME"
echo "$NAME"
