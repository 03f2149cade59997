#!/usr/bin/env bash
# `make dev`: the local cluster, every operator chart installed, every operator running as its chart's
# ServiceAccount, every plugin's examples applied, and their status printed as they converge.
# Ctrl-C stops the operators and leaves the cluster up (`make cluster-down` ends it).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
UV="${UV:-uv}"
DEV_NS="${TROUPE_DEV_NAMESPACE:-troupe-system}"
STATE="$ROOT/.troupe/dev"
mkdir -p "$STATE"

say() { printf '\033[1;36m[dev]\033[0m %s\n' "$*" >&2; }

bash tools/cluster/build.sh
bash tools/cluster/cluster.sh up >/dev/null
export KUBECONFIG="$ROOT/.troupe/kubeconfig"
eval "$(bash tools/cluster/build.sh --env | sed 's/^/export /')"
kc() { "$KUBECTL" "$@"; }
say "cluster up: export KUBECONFIG=$KUBECONFIG"

shopt -s nullglob
charts=(charts/*-operator)
plugins=()
for p in plugins/*/; do [[ -f "$p/pyproject.toml" ]] && plugins+=("$(basename "$p")"); done

# --- charts (CRDs, RBAC, ServiceAccount) -----------------------------------------------------------
declare -A SA_OF
if [[ ${#charts[@]} -eq 0 ]]; then
  say "no charts under charts/*-operator yet: skipping helm (operators will run as cluster-admin)"
fi
for chart in "${charts[@]}"; do
  [[ -f "$chart/Chart.yaml" ]] || { say "skip $chart (no Chart.yaml)"; continue; }
  release="$(basename "$chart")"; op="${release%-operator}"
  say "helm install $release into $DEV_NS"
  # the troupe-common library chart, vendored into $chart/charts/ (not committed)
  "$HELM" dependency build --skip-refresh "$chart" >"$STATE/helm-$release.log" 2>&1 || {
    say "helm dependency build $chart failed (see $STATE/helm-$release.log)"; continue; }
  if ! "$HELM" upgrade --install "$release" "$chart" -n "$DEV_NS" --create-namespace --wait --timeout 2m \
      --set image.pullPolicy=Never >"$STATE/helm-$release.log" 2>&1; then
    say "helm install $release failed (see $STATE/helm-$release.log):"; tail -5 "$STATE/helm-$release.log" >&2
    continue
  fi
  sa="$("$HELM" get manifest "$release" -n "$DEV_NS" | awk '
      /^kind: ServiceAccount/ {sa=1; next} /^kind:/ {sa=0}
      sa && /^  name:/ {print $2; exit}')"
  [[ -n "$sa" ]] && SA_OF[$op]="$sa" && say "  $op runs as ServiceAccount $DEV_NS/$sa"
done

if [[ ${#plugins[@]} -eq 0 ]]; then
  say "no operator plugins under plugins/ yet: nothing to run. The cluster is up; try:"
  echo "  export KUBECONFIG=$KUBECONFIG; $KUBECTL get nodes"
  exit 0
fi

# --- operators --------------------------------------------------------------------------------------
PIDS=(); NAMES=(); declare -A REPORTED
stop() {
  trap - INT TERM EXIT
  say "stopping operators (the cluster stays up; 'make cluster-down' stops it)"
  for pid in "${PIDS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  exit 0
}
trap stop INT TERM EXIT

port=18080
for op in "${plugins[@]}"; do
  kubeconfig="$KUBECONFIG"
  if [[ -n "${SA_OF[$op]:-}" ]]; then
    kubeconfig="$STATE/$op.kubeconfig"
    token="$(kc create token "${SA_OF[$op]}" -n "$DEV_NS" --duration=24h)"
    kc config view --raw --minify --flatten >"$kubeconfig"
    KUBECONFIG="$kubeconfig" kc config unset users >/dev/null
    KUBECONFIG="$kubeconfig" kc config set-credentials dev-sa --token="$token" >/dev/null
    KUBECONFIG="$kubeconfig" kc config set-context --current --user=dev-sa >/dev/null
    chmod 600 "$kubeconfig"
  else
    # no chart: install the CRDs straight from the models so the examples can be applied
    "$UV" run --frozen troupe crds "$op" 2>/dev/null | kc apply -f - >/dev/null 2>&1 \
      && say "  $op: CRDs applied from the models (no chart)" || true
  fi
  say "run $op (metrics :$port, log prefix [$op])"
  KUBECONFIG="$kubeconfig" setsid "$UV" run --frozen troupe run "$op" --all-namespaces --standalone \
    --metrics-port "$port" > >(sed -u "s/^/[$op] /") 2>&1 &
  PIDS+=($!); NAMES+=("$op")
  port=$((port + 1))
done

# --- examples -----------------------------------------------------------------------------------------
examples=(plugins/*/examples/*.yaml plugins/*/examples/*.yml)
kinds=()
if [[ ${#examples[@]} -eq 0 ]]; then say "no plugins/*/examples/*.yaml to apply"; fi
for ex in "${examples[@]}"; do
  for attempt in 1 2 3 4 5 6 7 8 9 10; do  # CRDs may still be getting established
    if out="$(kc apply -f "$ex" 2>&1)"; then say "applied $ex"; break; fi
    [[ $attempt -eq 10 ]] && say "could not apply $ex: $out"
    sleep 1
  done
  while read -r k; do [[ -n "$k" && " ${kinds[*]} " != *" $k "* ]] && kinds+=("$k"); done < <(
    awk '/^apiVersion:/ {g=$2; sub(/\/.*/, "", g); if ($2 !~ /\//) g=""} /^kind:/ {print (g == "" ? $2 : $2 "." g)}' "$ex")
done

# --- status loop --------------------------------------------------------------------------------------
say "watching ${kinds[*]:-pods} (Ctrl-C stops the operators, leaves the cluster up)"
last=""
while true; do
  for i in "${!PIDS[@]}"; do
    if [[ -z "${REPORTED[$i]:-}" ]] && ! kill -0 "${PIDS[$i]}" 2>/dev/null; then
      say "operator ${NAMES[$i]} exited; see its [${NAMES[$i]}] log above"; REPORTED[$i]=1
    fi
  done
  if [[ ${#kinds[@]} -gt 0 ]]; then
    now="$(kc get "$(IFS=,; echo "${kinds[*]}")" -A 2>&1 || true)"
  else
    now="$(kc get pods -A 2>&1 || true)"
  fi
  if [[ "$now" != "$last" ]]; then
    printf '\n\033[1m--- %s ---\033[0m\n%s\n' "$(date +%T)" "$now"
    last="$now"
  fi
  sleep 2
done
