#!/usr/bin/env bash
# Delete a throwaway namespace whose operators have already stopped (tilt ci, the image smoke test):
# their objects still hold the operator's finalizer, which nobody would remove, and the namespace would
# stay Terminating for ever. Removes finalizers only from Troupe kinds' objects in that namespace, after
# uninstalling the charts installed there.
#   tools/tilt/drop-namespace.sh <namespace>
set -euo pipefail
ns="$1"
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
eval "$(bash tools/cluster/build.sh --env | grep -E '^(HELM|KUBECTL)=')"
# The charts' cluster-wide objects (ClusterRoles of cluster-scoped kinds) do not go with the namespace.
for release in $("$HELM" list -n "$ns" -q -a 2>/dev/null); do
  "$HELM" uninstall "$release" -n "$ns" --wait=false >/dev/null 2>&1 || true
done
kinds="$("$KUBECTL" get crd -l troupe.dev/operator \
  -o jsonpath='{range .items[*]}{.spec.names.plural}.{.spec.group}{"\n"}{end}')"
for kind in $kinds; do
  for obj in $("$KUBECTL" get "$kind" -n "$ns" -o name 2>/dev/null); do
    "$KUBECTL" patch "$obj" -n "$ns" --type=merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1 || true
  done
done
"$KUBECTL" delete namespace "$ns" --wait=false >/dev/null 2>&1 || true
