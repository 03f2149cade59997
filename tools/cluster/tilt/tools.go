//go:build tools

// Package tools pins the tilt CLI.
package tools

import _ "github.com/tilt-dev/tilt/cmd/tilt"
