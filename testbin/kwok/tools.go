//go:build tools

// Package kwok pins the kwok command that build.sh compiles for the k8s test
// fixture.
package kwok

import (
	_ "sigs.k8s.io/kwok/cmd/kwok"
)
