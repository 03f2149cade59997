#!/usr/bin/env bash
# The Troupe local control plane: etcd + kube-apiserver + kube-controller-manager + kube-scheduler + kwok,
# all built from pinned Go modules (build.sh), orchestrated by `kwokctl --runtime=binary`, on loopback.
#
#   tools/cluster/cluster.sh up       start (no-op when already running), wait until ready, print export line
#   tools/cluster/cluster.sh down     stop every component by PID (kwokctl's pid files) and delete the data
#   tools/cluster/cluster.sh status   exit 0 when the cluster answers
#
# Env: TROUPE_CLUSTER_NODES (default 2 fake nodes), TROUPE_CLUSTER_DIR (data; default a temp folder).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
STATE="$ROOT/.troupe"
KUBECONFIG_OUT="$STATE/kubeconfig"
STATE_ENV="$STATE/cluster.env"
# One cluster per checkout: the name carries a hash of the repo path, so worktrees don't collide.
NAME="troupe-$(printf '%s' "$ROOT" | cksum | cut -d' ' -f1)"
NODES="${TROUPE_CLUSTER_NODES:-2}"

log() { printf '\033[1m[cluster]\033[0m %s\n' "$*" >&2; }

eval "$("$HERE/build.sh" --env | sed 's/^/export /')"

kc() { "$KUBECTL" --kubeconfig "$KUBECONFIG_OUT" "$@"; }

answers() { [[ -s "$KUBECONFIG_OUT" ]] && kc get --raw=/readyz --request-timeout=3s >/dev/null 2>&1; }

kwok_env() {
  # shellcheck disable=SC1090
  source "$STATE_ENV"
  export KWOK_WORKDIR="$CLUSTER_DIR"
  export KWOK_KUBE_VERSION="$KUBE_VERSION" KWOK_RUNTIME=binary
  export KWOK_KUBE_APISERVER_BINARY="$KUBE_APISERVER" KWOK_KUBE_CONTROLLER_MANAGER_BINARY="$KUBE_CONTROLLER_MANAGER"
  export KWOK_KUBE_SCHEDULER_BINARY="$KUBE_SCHEDULER" KWOK_CONTROLLER_BINARY="$KWOK"
  export KWOK_ETCD_BINARY="$ETCD" KWOK_KUBECTL_BINARY="$KUBECTL"
  # kwokctl never needs the network here: every binary is a local path. Make a stray download fail fast.
  export HTTPS_PROXY=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9 NO_PROXY=127.0.0.1,localhost
}

up() {
  if answers; then
    log "already running ($NAME)"
    echo "export KUBECONFIG=$KUBECONFIG_OUT"
    return 0
  fi
  if [[ -f "$STATE_ENV" ]]; then log "stale state from a previous run; cleaning it"; down >/dev/null 2>&1 || true; fi
  local t0; t0=$(date +%s%N)
  for b in "$KUBE_APISERVER" "$KUBE_CONTROLLER_MANAGER" "$KUBE_SCHEDULER" "$KUBECTL" "$ETCD" "$KWOK" "$KWOKCTL"; do
    [[ -x "$b" ]] || { log "missing $b -- run 'make cluster-binaries' (tools/cluster/build.sh)"; exit 1; }
  done
  mkdir -p "$STATE"
  local dir="${TROUPE_CLUSTER_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/troupe-cluster.XXXXXX")}"
  mkdir -p "$dir"
  printf 'CLUSTER_NAME=%s\nCLUSTER_DIR=%s\n' "$NAME" "$dir" > "$STATE_ENV"
  kwok_env
  log "starting $NAME (kube $KUBE_VERSION, kwok, $NODES fake nodes) in $dir"
  if ! "$KWOKCTL" create cluster --name "$NAME" --runtime binary \
      --kubeconfig "$dir/kubeconfig.kwokctl" \
      --config "$HERE/stages.yaml" \
      --secure-port=true --kube-authorization=true --kube-admission=true \
      --disable-qps-limits --quiet-pull --wait 90s >"$dir/kwokctl-create.log" 2>&1; then
    log "kwokctl create cluster failed:"; tail -40 "$dir/kwokctl-create.log" >&2
    log "component logs: $dir/clusters/$NAME/logs"; exit 1
  fi
  cp "$dir/clusters/$NAME/kubeconfig.yaml" "$KUBECONFIG_OUT"
  chmod 600 "$KUBECONFIG_OUT"
  "$KWOKCTL" scale node --name "$NAME" --replicas "$NODES" >>"$dir/kwokctl-create.log" 2>&1
  kc apply -f "$HERE/storageclass.yaml" >/dev/null
  # ready = API answers, nodes Ready, controller-manager created the default ServiceAccount.
  local i
  for i in $(seq 1 120); do
    if [[ "$(kc get nodes -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' 2>/dev/null | grep -c True)" -ge "$NODES" ]] \
       && kc get serviceaccount default -n default >/dev/null 2>&1; then
      break
    fi
    sleep 0.25
  done
  [[ $i -lt 120 ]] || { log "cluster did not become ready; logs in $dir/clusters/$NAME/logs"; exit 1; }
  local ms=$((($(date +%s%N) - t0) / 1000000))
  log "ready in $((ms / 1000)).$((ms % 1000 / 100))s"
  echo "export KUBECONFIG=$KUBECONFIG_OUT"
}

down() {
  if [[ ! -f "$STATE_ENV" ]]; then log "not running"; rm -f "$KUBECONFIG_OUT"; return 0; fi
  kwok_env
  # kwokctl stops each component by the PID it recorded in $CLUSTER_DIR/clusters/$NAME/pids.
  "$KWOKCTL" delete cluster --name "$NAME" --kubeconfig "$CLUSTER_DIR/kubeconfig.kwokctl" >/dev/null 2>&1 || true
  if [[ -d "$CLUSTER_DIR/clusters/$NAME/pids" ]]; then  # belt and braces: anything still alive, by PID
    for f in "$CLUSTER_DIR/clusters/$NAME/pids"/*.pid; do
      [[ -f "$f" ]] && kill "$(cat "$f")" 2>/dev/null || true
    done
  fi
  [[ "$CLUSTER_DIR" == */troupe-cluster.* || -n "${TROUPE_CLUSTER_DIR:-}" ]] && rm -rf "$CLUSTER_DIR"
  rm -f "$STATE_ENV" "$KUBECONFIG_OUT"
  log "stopped $NAME"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) answers && { log "running ($NAME)"; echo "export KUBECONFIG=$KUBECONFIG_OUT"; } ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
