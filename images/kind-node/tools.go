//go:build tools

// Package nodeimage pins the node-side Kubernetes commands that build.sh
// compiles into the offline kind node image (docs/decisions/0010). Same pins
// as testbin/go.mod (k8s.io/kubernetes v1.33.13, staging modules v0.33.13).
package nodeimage

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubeadm"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
