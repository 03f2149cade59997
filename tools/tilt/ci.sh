#!/usr/bin/env bash
# `make tilt-ci`: `tilt ci` in local mode, in a namespace of its own (deleted afterwards) and with metrics
# ports of its own, so runs of several checkouts on one cluster do not meet. Passes when every operator
# is ready (/readyz) and each of its examples shows a phase.
# Cluster: $TROUPE_E2E_KUBECONFIG, else $KUBECONFIG, else this checkout's local cluster (started if down).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
if [[ -n "${TROUPE_E2E_KUBECONFIG:-}" ]]; then export KUBECONFIG="$TROUPE_E2E_KUBECONFIG"
elif [[ -z "${KUBECONFIG:-}" ]]; then bash tools/cluster/cluster.sh up >/dev/null; export KUBECONFIG="$ROOT/.troupe/kubeconfig"
fi
eval "$(bash tools/cluster/build.sh --env | grep -E '^KUBECTL=')"
ns="troupe-tilt-ci-$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
port=$((20000 + RANDOM % 9000))
cleanup() { bash tools/tilt/drop-namespace.sh "$ns"; }  # the operators are gone: drop their finalizers
trap cleanup EXIT
t0=$SECONDS
# Operators of cluster-scoped kinds watch every namespace and make cluster-wide objects: not on a shared
# cluster in CI. `tilt up -- --operators workspace` runs them on a cluster of your own.
selected=()
for chart in charts/*-operator; do
  op="$(basename "$chart" -operator)"
  if bash tools/tilt/all-namespaces-only.sh "$op"; then echo "tilt ci: $op skipped (cluster-scoped: all namespaces only)"
  else selected+=("$op"); fi
done
operators="$(IFS=,; echo "${selected[*]}")"
bash tools/tilt/tilt.sh ci --timeout "${TILT_CI_TIMEOUT:-10m}" -- --operators "$operators" --namespace "$ns" \
  --metrics-port-base "$port" "$@"
echo "tilt ci passed in $((SECONDS - t0))s (namespace $ns)"
