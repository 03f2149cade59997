//go:build tools

// Package tools pins the etcd server (go.etcd.io/etcd/server/v3 is itself the main package).
package tools

import _ "go.etcd.io/etcd/server/v3"
