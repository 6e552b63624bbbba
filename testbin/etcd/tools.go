//go:build tools

// Package etcd pins the etcd server command (go.etcd.io/etcd/server/v3 is itself a
// main package in etcd 3.5) that build.sh compiles for the k8s test fixture.
package etcd

import (
	_ "go.etcd.io/etcd/server/v3"
)
