#!/usr/bin/env bash
# Run the tilt built by `make tilt-binary` on this repository's Tiltfile:  tools/tilt/tilt.sh up|ci|down [args]
#
# That tilt is built from its Go module, which ships without the web UI's files (they come from a
# Node build tilt's releases embed), so tilt refuses to start. Here it runs with its "local web" mode
# pointed at an empty stand-in and no HTTP server (--port 0): the terminal view (`up`) and `ci` work;
# `tilt get uiresources` and the log show the state. A tilt release binary (tilt.dev) has the UI and
# needs none of this: `tilt up` in the repository root.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
eval "$(bash "$ROOT/tools/cluster/build.sh" --env | grep -E '^TILT=')"
[[ -x "$TILT" ]] || bash "$ROOT/tools/cluster/build.sh" tilt
version="$("$TILT" version | sed 's/,.*//')"
stub="${TROUPE_CACHE:-$HOME/.cache/troupe}/tilt-web-stub"
# tilt looks for web/package.json under its trimmed source path, relative to its working directory,
# and runs `yarn install` / `yarn start` there: a yarn that does nothing stands in.
mkdir -p "$stub/github.com/tilt-dev/tilt@$version/web" "$stub/bin"
echo '{}' >"$stub/github.com/tilt-dev/tilt@$version/web/package.json"
printf '#!/bin/sh\n[ "$1" = start ] && exec sleep 2147483647\nexit 0\n' >"$stub/bin/yarn"
chmod +x "$stub/bin/yarn"
# the local cluster of this checkout (`make cluster-up`) unless KUBECONFIG names another
export KUBECONFIG="${KUBECONFIG:-$ROOT/.troupe/kubeconfig}"
cmd="$1"; shift
cd "$stub"
PATH="$stub/bin:$PATH" exec "$TILT" "$cmd" -f "$ROOT/Tiltfile" --web-mode local --port 0 "$@"
