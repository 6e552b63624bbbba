//go:build tools

// Package kind pins the kind CLI that build.sh compiles (decision 0010).
package kind

import _ "sigs.k8s.io/kind"
