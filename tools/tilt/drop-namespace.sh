#!/usr/bin/env bash
# Delete a throwaway namespace whose operators have already stopped (tilt ci, the image smoke test):
# their objects still hold the operator's finalizer, which nobody would remove, and the namespace would
# stay Terminating for ever. Removes finalizers only from Troupe kinds' objects in that namespace, after
# uninstalling the charts installed there; cluster-scoped Troupe objects labelled troupe.dev/tilt=<namespace>
# (a tilt run's examples) are deleted too.
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
  -o jsonpath='{range .items[*]}{.spec.names.plural}.{.spec.group} {.spec.scope}{"\n"}{end}')"
while read -r kind scope; do
  [[ -n "$kind" ]] || continue
  if [[ "$scope" == Cluster ]]; then
    # cluster-scoped examples of a tilt run (tools/tilt/examples.py labels them) go too
    for obj in $("$KUBECTL" get "$kind" -l "troupe.dev/tilt=$ns" -o name 2>/dev/null); do
      "$KUBECTL" patch "$obj" --type=merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1 || true
      "$KUBECTL" delete "$obj" --wait=false >/dev/null 2>&1 || true
    done
    continue
  fi
  for obj in $("$KUBECTL" get "$kind" -n "$ns" -o name 2>/dev/null); do
    "$KUBECTL" patch "$obj" -n "$ns" --type=merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1 || true
  done
done <<<"$kinds"
"$KUBECTL" delete namespace "$ns" --wait=false >/dev/null 2>&1 || true
