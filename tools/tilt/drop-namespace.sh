#!/usr/bin/env bash
# Delete a throwaway namespace whose operators have already stopped (tilt ci, the image smoke test):
# their objects still hold the operator's finalizer, which nobody would remove, and the namespace would
# stay Terminating for ever. Removes finalizers only from Troupe kinds' objects in that namespace.
#   tools/tilt/drop-namespace.sh <namespace>
set -euo pipefail
ns="$1"
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
eval "$(bash tools/cluster/build.sh --env | grep -E '^KUBECTL=')"
kinds="$("$KUBECTL" get crd -l troupe.dev/operator \
  -o jsonpath='{range .items[*]}{.spec.names.plural}.{.spec.group}{"\n"}{end}')"
for kind in $kinds; do
  for obj in $("$KUBECTL" get "$kind" -n "$ns" -o name 2>/dev/null); do
    "$KUBECTL" patch "$obj" -n "$ns" --type=merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1 || true
  done
done
"$KUBECTL" delete namespace "$ns" --wait=false >/dev/null 2>&1 || true
