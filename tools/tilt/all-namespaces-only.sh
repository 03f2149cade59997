#!/usr/bin/env bash
# Exit 0 when an operator's chart allows no watchNamespaces (its kinds are cluster-scoped): it runs over
# all namespaces only.  tools/tilt/all-namespaces-only.sh <operator>
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
python3 -c 'import json, sys
schema = json.load(open(f"charts/{sys.argv[1]}-operator/values.schema.json"))
sys.exit(0 if schema["properties"].get("watchNamespaces", {}).get("maxItems") == 0 else 1)' "$1"
