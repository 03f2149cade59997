#!/usr/bin/env bash
# `make tilt-ci`: `tilt ci` in local mode, in a namespace of its own (deleted afterwards) and with metrics
# ports of its own, so runs of several checkouts on one cluster do not meet. Passes when every operator
# is ready (/readyz) and each of its examples shows a phase; every operator, those that watch all
# namespaces too (their objects outside the namespace are torn down by them afterwards: teardown.sh).
# Cluster: $TROUPE_E2E_KUBECONFIG, else $KUBECONFIG, else this checkout's local cluster (started if down,
# and then stopped again at the end, as the e2e tests do: nothing is left running after `make test`).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
started_cluster=0
if [[ -n "${TROUPE_E2E_KUBECONFIG:-}" ]]; then export KUBECONFIG="$TROUPE_E2E_KUBECONFIG"
elif [[ -z "${KUBECONFIG:-}" ]]; then
  bash tools/cluster/cluster.sh status >/dev/null 2>&1 || started_cluster=1
  bash tools/cluster/cluster.sh up >/dev/null; export KUBECONFIG="$ROOT/.troupe/kubeconfig"
fi
eval "$(bash tools/cluster/build.sh --env | grep -E '^KUBECTL=')"
ns="troupe-tilt-ci-$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
port=$((20000 + RANDOM % 9000))
t0=$SECONDS
operators="$(cd charts && ls -d *-operator | sed 's/-operator$//' | paste -sd,)"
# Operators of cluster-scoped kinds watch every namespace and make objects outside the run's namespace:
# their examples are deleted while they run, before the namespace goes (teardown.sh).
wide=()
for op in ${operators//,/ }; do if bash tools/tilt/all-namespaces-only.sh "$op"; then wide+=("$op"); fi; done
cleanup() {
  t1=$SECONDS
  bash tools/tilt/teardown.sh "$ns" "$((port + 100))" "${wide[@]}" || echo "tilt ci: teardown failed" >&2
  bash tools/tilt/drop-namespace.sh "$ns"  # the operators are gone: drop their finalizers
  echo "tilt ci: cleanup in $((SECONDS - t1))s"
  if [[ $started_cluster == 1 ]]; then bash tools/cluster/cluster.sh down; fi
}
trap cleanup EXIT
bash tools/tilt/tilt.sh ci --timeout "${TILT_CI_TIMEOUT:-10m}" -- --operators "$operators" --namespace "$ns" \
  --metrics-port-base "$port" "$@"
echo "tilt ci passed in $((SECONDS - t0))s (namespace $ns)"
