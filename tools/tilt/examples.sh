#!/usr/bin/env bash
# Tilt: apply an operator's examples into a namespace and wait until each of its objects shows a phase
# (the operator has reconciled it); the rule for the examples is in examples.py.
#   tools/tilt/examples.sh <operator> <namespace> [timeout seconds]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
eval "$(bash tools/cluster/build.sh --env | grep -E '^KUBECTL=')"
export KUBECTL
exec "${UV:-uv}" run --frozen python tools/tilt/examples.py "$1" "$2" --timeout "${3:-120}"
