#!/usr/bin/env bash
# After `tilt ci`: delete the examples of operators that run over all namespaces while those operators
# run, so each tears down what it made outside the run's namespace (catalyst's per-Environment
# namespaces, a Workspace's namespace); drop-namespace.sh removes the rest with the namespace. The
# operators are started again from their installed charts (tools/chart_run.py) for this only.
#   tools/tilt/teardown.sh <namespace> <metrics port base> <operator>...
set -euo pipefail
ns="$1"; port="$2"; shift 2
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
eval "$(bash tools/cluster/build.sh --env | grep -E '^(HELM|KUBECTL)=')"
pids=()
stop() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done; }
trap stop EXIT
mkdir -p .troupe/run
kinds=()
ports=()
for op in "$@"; do
  "$HELM" status "tilt-$op" -n "$ns" >/dev/null 2>&1 || continue  # the run failed before installing it
  port=$((port + 1))
  "${UV:-uv}" run --frozen python tools/chart_run.py --release "tilt-$op" --namespace "$ns" --operator "$op" \
    --metrics-port "$port" >".troupe/run/teardown-$op.log" 2>&1 &
  pids+=($!); ports+=("$port")
  kinds+=($("$KUBECTL" get crd -l "troupe.dev/operator=$op" \
    -o jsonpath='{range .items[*]}{.spec.names.plural}.{.spec.group}{"\n"}{end}'))
done
for i in "${!pids[@]}"; do
  until curl -fs "http://127.0.0.1:${ports[i]}/readyz" >/dev/null; do
    kill -0 "${pids[i]}" 2>/dev/null || { echo "teardown: an operator exited, see .troupe/run/teardown-*.log"; exit 1; }
    sleep 1
  done
done
[[ ${#kinds[@]} -gt 0 ]] || exit 0
# the run's objects only: its namespace's, and cluster-scoped ones with its label (tools/tilt/examples.py)
"$KUBECTL" delete "$(IFS=,; echo "${kinds[*]}")" -A -l "troupe.dev/tilt=$ns" --wait=true --timeout=120s
