#!/usr/bin/env bash
# The Troupe local control plane: etcd + kube-apiserver + kube-controller-manager + kube-scheduler + kwok,
# all built from pinned Go modules (build.sh), orchestrated by `kwokctl --runtime=binary`, on loopback.
# Each component runs under a supervisor (supervise.py) that starts it again when it exits, with a
# CrashLoopBackOff-like delay (1 s doubling to 10 s), as a kubelet would for a static pod. The
# controller-manager and the scheduler run without leader election: each is the only one, and on two busy
# cores a lease renewal that misses its 10 s deadline made the controller-manager exit mid-benchmark.
#
#   tools/cluster/cluster.sh up                      start (no-op when running), wait until ready, print export line
#   tools/cluster/cluster.sh down                    stop every component and its supervisor by PID, delete the data
#   tools/cluster/cluster.sh status                  exit 0 when the cluster answers; components, restart counts
#   tools/cluster/cluster.sh status --json           the components' supervisor state (no API call)
#   tools/cluster/cluster.sh kill COMPONENT [SIGNAL] signal a component (default KILL: a crash); it comes back
#   tools/cluster/cluster.sh outage COMPONENT SECONDS stop a component, keep it down SECONDS, then start it again
#
# Env (read by `up`; the defaults hold the benchmarks' 1,000 Workshops of the default size, 1 CPU / 2Gi each):
#   TROUPE_CLUSTER_NODES         fake nodes (default 2)
#   TROUPE_CLUSTER_NODE_CPU      each node's CPU capacity (default 1000)
#   TROUPE_CLUSTER_NODE_MEMORY   each node's memory capacity (default 4Ti)
#   TROUPE_CLUSTER_NODE_PODS     each node's pod capacity (default 1000; its pod CIDR is sized to hold them)
#   TROUPE_CLUSTER_SERVICE_CIDR  kube-apiserver --service-cluster-ip-range (default 10.96.0.0/16: 65,534 Services)
#   TROUPE_CLUSTER_DIR           data (default a temp folder)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
STATE="$ROOT/.troupe"
KUBECONFIG_OUT="$STATE/kubeconfig"
STATE_ENV="$STATE/cluster.env"
# One cluster per checkout: the name carries a hash of the repo path, so worktrees don't collide.
NAME="troupe-$(printf '%s' "$ROOT" | cksum | cut -d' ' -f1)"
NODES="${TROUPE_CLUSTER_NODES:-2}"
NODE_CPU="${TROUPE_CLUSTER_NODE_CPU:-1000}"
NODE_MEMORY="${TROUPE_CLUSTER_NODE_MEMORY:-4Ti}"
NODE_PODS="${TROUPE_CLUSTER_NODE_PODS:-1000}"
SERVICE_CIDR="${TROUPE_CLUSTER_SERVICE_CIDR:-10.96.0.0/16}"
COMPONENTS=etcd,kube-apiserver,kube-controller-manager,kube-scheduler,kwok-controller

log() { printf '\033[1m[cluster]\033[0m %s\n' "$*" >&2; }

eval "$("$HERE/build.sh" --env | sed 's/^/export /')"

kc() { "$KUBECTL" --kubeconfig "$KUBECONFIG_OUT" "$@"; }

answers() { [[ -s "$KUBECONFIG_OUT" ]] && kc get --raw=/readyz --request-timeout=3s >/dev/null 2>&1; }

kwok_env() {
  # shellcheck disable=SC1090
  source "$STATE_ENV"
  WORK="$CLUSTER_DIR/clusters/$CLUSTER_NAME"  # kwokctl's folder for this cluster: pids/, logs/, supervise/
  WRAPPERS="$CLUSTER_DIR/supervised"
  export KWOK_WORKDIR="$CLUSTER_DIR"
  export KWOK_KUBE_VERSION="$KUBE_VERSION" KWOK_RUNTIME=binary
  # kwokctl runs the wrappers (write_wrappers) in place of the binaries, so each one is supervised.
  export KWOK_ETCD_BINARY="$WRAPPERS/etcd" KWOK_KUBE_APISERVER_BINARY="$WRAPPERS/kube-apiserver"
  export KWOK_KUBE_CONTROLLER_MANAGER_BINARY="$WRAPPERS/kube-controller-manager"
  export KWOK_KUBE_SCHEDULER_BINARY="$WRAPPERS/kube-scheduler" KWOK_CONTROLLER_BINARY="$WRAPPERS/kwok-controller"
  export KWOK_KUBECTL_BINARY="$KUBECTL"
  # kwokctl never needs the network here: every binary is a local path. Make a stray download fail fast.
  export HTTPS_PROXY=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9 NO_PROXY=127.0.0.1,localhost
}

# One wrapper per component: `supervise.py run` with the real binary as its child. The interpreter is
# resolved once (not a pyenv shim on every start) and is plain python3: the supervisor needs no packages.
write_wrappers() {
  local python name real
  python="$(python3 -c 'import sys; print(sys.executable)')"
  mkdir -p "$WRAPPERS"
  for name in etcd kube-apiserver kube-controller-manager kube-scheduler kwok-controller; do
    case "$name" in
      etcd) real="$ETCD" ;; kube-apiserver) real="$KUBE_APISERVER" ;;
      kube-controller-manager) real="$KUBE_CONTROLLER_MANAGER" ;; kube-scheduler) real="$KUBE_SCHEDULER" ;;
      kwok-controller) real="$KWOK" ;;
    esac
    # kwokctl first asks each binary for its version: answered by the binary itself, without a supervisor
    printf '#!/usr/bin/env bash\ncase "$*" in --version | version) exec %q "$@" ;; esac\n' "$real" >"$WRAPPERS/$name"
    printf 'exec %q %q run --name %q --workdir %q -- %q "$@"\n' \
      "$python" "$HERE/supervise.py" "$name" "$WORK" "$real" >>"$WRAPPERS/$name"
    chmod +x "$WRAPPERS/$name"
  done
}

supervise() { python3 "$HERE/supervise.py" "$1" --workdir "$WORK" "${@:2}"; }

# The smallest prefix whose block holds NODE_PODS pod IPs; kwok gives node i the i-th block from 10.128.0.0
# (outside the Service range), and hands each pod an address of its node's block.
pod_prefix() {
  local prefix=30
  while (( prefix > 8 && (1 << (32 - prefix)) - 2 < NODE_PODS )); do prefix=$((prefix - 1)); done
  echo "$prefix"
}

# Ready: every component runs under its supervisor, holds its own port and its health endpoint answers
# (supervise.py ready), the nodes are Ready and the controller-manager made the default ServiceAccount.
ready() {
  supervise ready --expect "$COMPONENTS" --quiet &&
    [[ "$(kc get nodes -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' 2>/dev/null | grep -c True)" -ge "$NODES" ]] &&
    kc get serviceaccount default -n default >/dev/null 2>&1
}

up() {
  if answers && [[ -f "$STATE_ENV" ]]; then
    kwok_env
    local j
    for j in $(seq 1 60); do ready && break; sleep 0.5; done
    if ! ready; then log "running ($NAME) but not every component is ready:"; supervise ready --expect "$COMPONENTS"; exit 1; fi
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
  write_wrappers
  log "starting $NAME (kube $KUBE_VERSION, kwok, $NODES fake nodes of $NODE_CPU CPU, $NODE_MEMORY, $NODE_PODS pods;" \
    "Services $SERVICE_CIDR) in $dir"
  if ! "$KWOKCTL" create cluster --name "$NAME" --runtime binary \
      --kubeconfig "$dir/kubeconfig.kwokctl" \
      --config "$HERE/stages.yaml" \
      --secure-port=true --kube-authorization=true --kube-admission=true \
      --extra-args "kube-apiserver=service-cluster-ip-range=$SERVICE_CIDR" \
      --extra-args "kube-controller-manager=leader-elect=false" \
      --extra-args "kube-scheduler=leader-elect=false" \
      --disable-qps-limits --quiet-pull --wait 90s >"$dir/kwokctl-create.log" 2>&1; then
    log "kwokctl create cluster failed:"; tail -40 "$dir/kwokctl-create.log" >&2
    log "component logs: $dir/clusters/$NAME/logs"; exit 1
  fi
  cp "$dir/clusters/$NAME/kubeconfig.yaml" "$KUBECONFIG_OUT"
  chmod 600 "$KUBECONFIG_OUT"
  "$KWOKCTL" scale node --name "$NAME" --replicas "$NODES" \
    --param ".allocatable.cpu = \"$NODE_CPU\"" --param ".allocatable.memory = \"$NODE_MEMORY\"" \
    --param ".allocatable.pods = \"$NODE_PODS\"" --param ".podCIDRs = [\"10.128.0.0/$(pod_prefix)\"]" \
    >>"$dir/kwokctl-create.log" 2>&1
  kc apply -f "$HERE/storageclass.yaml" >/dev/null
  # Ready twice, a second apart: a component that dies soon after its start (a port another process
  # holds) is caught by the second look if not by the first.
  local i ok=0
  for i in $(seq 1 240); do
    if ready; then ok=$((ok + 1)); [[ $ok -ge 2 ]] && break; sleep 1; else ok=0; sleep 0.25; fi
  done
  if [[ $ok -lt 2 ]]; then
    log "cluster did not become ready; logs in $dir/clusters/$NAME/logs"
    supervise ready --expect "$COMPONENTS" || true
    exit 1
  fi
  local ms=$((($(date +%s%N) - t0) / 1000000))
  log "ready in $((ms / 1000)).$((ms % 1000 / 100))s"
  echo "export KUBECONFIG=$KUBECONFIG_OUT"
}

down() {
  if [[ ! -f "$STATE_ENV" ]]; then log "not running"; rm -f "$KUBECONFIG_OUT"; return 0; fi
  kwok_env
  # First the supervisors, by the PIDs kwokctl recorded in $WORK/pids: each stops its component and starts
  # nothing again (a STOP file tells them); then kwokctl forgets the cluster.
  if [[ -d "$WORK" ]]; then supervise down --guard "$CLUSTER_DIR" || log "stopping the supervisors failed (above)"; fi
  "$KWOKCTL" delete cluster --name "$NAME" --kubeconfig "$CLUSTER_DIR/kubeconfig.kwokctl" >/dev/null 2>&1 || true
  [[ "$CLUSTER_DIR" == */troupe-cluster.* || -n "${TROUPE_CLUSTER_DIR:-}" ]] && rm -rf "$CLUSTER_DIR"
  rm -f "$STATE_ENV" "$KUBECONFIG_OUT"
  log "stopped $NAME"
}

status() {
  if [[ "${1:-}" == --json ]]; then  # the supervisors' view only, no API call (it works during an outage)
    [[ -f "$STATE_ENV" ]] || { echo '{}'; return 1; }
    kwok_env; supervise status --json; return 0
  fi
  local rc=0
  if answers; then log "running ($NAME)"; else log "not answering ($NAME)"; rc=1; fi
  if [[ -f "$STATE_ENV" ]]; then
    kwok_env; supervise status >&2
    supervise ready --expect "$COMPONENTS" || { log "not every component is ready (above)"; rc=1; }
  fi
  if [[ $rc -eq 0 ]]; then echo "export KUBECONFIG=$KUBECONFIG_OUT"; fi
  return $rc
}

# kill / outage: faults on purpose, for reliability tests (e2e/harness.py) and by hand.
fault() {
  [[ -f "$STATE_ENV" ]] || { log "not running"; exit 1; }
  kwok_env
  supervise "$@"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status "${@:2}" ;;
  kill) [[ $# -ge 2 ]] || { echo "usage: $0 kill COMPONENT [SIGNAL]" >&2; exit 2; }
    fault kill "$2" --signal "${3:-KILL}" ;;
  outage) [[ $# -eq 3 ]] || { echo "usage: $0 outage COMPONENT SECONDS" >&2; exit 2; }
    fault outage "$2" "$3" ;;
  *) echo "usage: $0 up|down|status [--json]|kill COMPONENT [SIGNAL]|outage COMPONENT SECONDS" >&2; exit 2 ;;
esac
