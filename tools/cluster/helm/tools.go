//go:build tools

// Package tools pins the helm CLI (pyhelm3 drives this binary).
package tools

import _ "helm.sh/helm/v3/cmd/helm"
