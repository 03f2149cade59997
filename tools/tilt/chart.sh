#!/usr/bin/env bash
# Tilt, local mode: an operator's chart installed into one namespace, for what it gives the operator
# (CRDs, ServiceAccount, Role, peering object, settings) with its Deployment at 0 replicas: the operator
# runs from the workspace instead (tools/chart_run.py).  tools/tilt/chart.sh <operator> <namespace>
set -euo pipefail
op="$1"; ns="$2"
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
eval "$(bash tools/cluster/build.sh --env | grep -E '^(HELM|KUBECTL)=')"
chart="charts/$op-operator"
# helm installs crds/ only when absent; apply them so a changed model reaches the cluster
"$KUBECTL" apply --server-side --force-conflicts -f "$chart/crds" >/dev/null
# kubectl wait fails at once on a CRD that has no conditions yet (".status.conditions accessor error"),
# so it is asked again until the CRDs are Established or a minute has passed
for attempt in $(seq 60); do
  if "$KUBECTL" wait --for=condition=Established crd -l "troupe.dev/operator=$op" --timeout=60s >/dev/null 2>&1; then
    break
  fi
  [ "$attempt" -lt 60 ] || { echo "the $op CRDs are not Established after a minute" >&2; exit 1; }
  sleep 1
done
"$HELM" dependency build --skip-refresh "$chart" >/dev/null
# A chart whose operator can only watch all namespaces (a cluster-scoped kind) refuses watchNamespaces.
# Its operator runs standalone here: its peering object would be the cluster's one ClusterKopfPeering
# troupe-<operator>, which another installation (an e2e test, another checkout) may own already. It takes
# only the objects labelled for this namespace (tools/tilt/examples.py labels them), not theirs.
scope=(--set "watchNamespaces={$ns}")
if bash tools/tilt/all-namespaces-only.sh "$op"; then
  scope=(--set leaderElection.enabled=false --set-string "selector=troupe.dev/tilt=$ns")
fi
"$HELM" upgrade --install "tilt-$op" "$chart" -n "$ns" --create-namespace --wait --timeout 2m \
  "${scope[@]}" --set replicaCount=0
