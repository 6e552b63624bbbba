//go:build tools

// Package crictl pins crictl, the CRI client kind's own node images carry (kind's
// images/base installs it); parity's driver and checks use it on the node.
package crictl

import _ "sigs.k8s.io/cri-tools/cmd/crictl"
