//go:build tools

// Package tools pins the reference OCI distribution registry (cmd/registry), the registry the
// catalyst e2e tests push to and ask for tags (htpasswd auth, filesystem storage, loopback).
package tools

import _ "github.com/distribution/distribution/v3/cmd/registry"
