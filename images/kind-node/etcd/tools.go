//go:build tools

// Package etcd pins the etcd that build.sh compiles into the offline kind node
// image: the version kubeadm v1.33 deploys (constants.DefaultEtcdVersion 3.5.24-0),
// so kind's kubeadm config needs no image patch.
package etcd

import _ "go.etcd.io/etcd/server/v3"
