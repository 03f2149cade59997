#!/usr/bin/env bash
# Tilt: apply an operator's examples into a namespace and wait until each of its objects shows a phase
# (the operator has reconciled it).  tools/tilt/examples.sh <operator> <namespace> [timeout seconds]
set -euo pipefail
op="$1"; ns="$2"; timeout="${3:-120}"
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
eval "$(bash tools/cluster/build.sh --env | grep -E '^KUBECTL=')"
shopt -s nullglob
files=(plugins/"$op"/examples/*.yaml)
[[ ${#files[@]} -gt 0 ]] || { echo "no plugins/$op/examples/*.yaml"; exit 0; }
objects=()
for f in "${files[@]}"; do
  while read -r obj; do objects+=("$obj"); done < <("$KUBECTL" apply -n "$ns" -f "$f" -o name)
done
deadline=$((SECONDS + timeout))
for obj in "${objects[@]}"; do
  # kinds without a status (configuration, like a DevServerFlavor) are not reconciled: nothing to wait for
  crd="${obj%%/*}"
  if [[ "$crd" == *.* ]] && [[ -z "$("$KUBECTL" get crd "$crd" -o jsonpath='{.spec.versions[0].subresources.status}' 2>/dev/null)" ]]; then
    echo "$obj: configuration, no phase"; continue
  fi
  while true; do
    phase="$("$KUBECTL" get -n "$ns" "$obj" -o jsonpath='{.status.phase}' 2>/dev/null || true)"
    if [[ -n "$phase" ]]; then echo "$obj: $phase"; break; fi
    if ((SECONDS > deadline)); then echo "$obj: no phase after ${timeout}s" >&2; exit 1; fi
    sleep 1
  done
done
