//go:build tools

// Package testbin pins the Kubernetes control-plane commands that build.sh
// compiles for the k8s test fixture (tests/k8s). Nothing imports this package;
// the build tag keeps it out of every build except `go mod tidy`'s view.
package testbin

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
