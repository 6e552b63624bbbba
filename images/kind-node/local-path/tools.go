//go:build tools

// Package localpath pins rancher's local-path-provisioner, which build.sh
// compiles into the offline kind node image as kind's own images do: the
// provisioner behind the default StorageClass "standard".
package localpath

import _ "github.com/rancher/local-path-provisioner"
