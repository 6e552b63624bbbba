#!/usr/bin/env bash
# Builds the k8s test control plane from source through the Go module proxy
# (docs/testbin.md): kube-apiserver, kube-controller-manager, kube-scheduler
# (testbin/go.mod), etcd (testbin/etcd/go.mod) and kwok (testbin/kwok/go.mod). The
# Gateway API CRDs the tests install are the ones parity vendors
# (src/parity/schemas/gateway-api-v1.4.0/crds).
#
# Output goes to a cache directory outside the tracked tree:
#   ${PARITY_TESTBIN:-${XDG_CACHE_HOME:-$HOME/.cache}/parity/testbin/<version-key>}
# <version-key> names the pinned versions plus a digest of the module files and of
# this script, so any bump builds into a fresh directory. A complete build ends
# with the stamp file .complete; when it is present (and the binaries are), the
# build is skipped.
#
#   bash testbin/build.sh              build if missing (idempotent)
#   bash testbin/build.sh --force      rebuild even if complete
#   bash testbin/build.sh --print-dir  print the output directory, build nothing
#   bash testbin/build.sh --check      exit 0 if complete, 1 if not
#
# Needs Go (>= the go lines of the three go.mod files; GOTOOLCHAIN=local is fine)
# and the Go module proxy. No cgo, no C toolchain, no container registry.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

BINARIES=(kube-apiserver kube-controller-manager kube-scheduler etcd kwok)

# The version a module file requires for one module path ("require X vN" or a
# line of a require block).
required_version() { # <go.mod> <module path>
  awk -v m="$2" '($1 == m && $2 ~ /^v/) {print $2; exit} ($1 == "require" && $2 == m) {print $3; exit}' "$1"
}

K8S_VERSION=$(required_version "$HERE/go.mod" k8s.io/kubernetes)
ETCD_VERSION=$(required_version "$HERE/etcd/go.mod" go.etcd.io/etcd/server/v3)
KWOK_VERSION=$(required_version "$HERE/kwok/go.mod" sigs.k8s.io/kwok)
for v in K8S_VERSION ETCD_VERSION KWOK_VERSION; do
  [ -n "${!v}" ] || { echo "testbin: cannot read $v from the go.mod files" >&2; exit 2; }
done

digest=$(cd "$HERE" && cat go.mod go.sum tools.go etcd/go.mod etcd/go.sum etcd/tools.go \
  kwok/go.mod kwok/go.sum kwok/tools.go build.sh | sha256sum | cut -c1-12)
KEY="k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}_${digest}"
OUT=${PARITY_TESTBIN:-${XDG_CACHE_HOME:-$HOME/.cache}/parity/testbin/$KEY}
STAMP="$OUT/.complete"

complete() { # the stamp names this key (PARITY_TESTBIN may hold an older build)
  grep -qx "key=$KEY" "$STAMP" 2>/dev/null || return 1
  for b in "${BINARIES[@]}"; do [ -x "$OUT/bin/$b" ] || return 1; done
}

force=0
case "${1:-}" in
  --print-dir) echo "$OUT"; exit 0 ;;
  --check) complete; exit $? ;;
  --force) force=1 ;;
  "") ;;
  *) echo "usage: $0 [--force|--print-dir|--check]" >&2; exit 2 ;;
esac

if [ $force = 0 ] && complete; then
  echo "testbin: up to date in $OUT"
  exit 0
fi

command -v go >/dev/null || { echo "testbin: Go is not installed (Go >= 1.26 builds this)" >&2; exit 2; }
echo "testbin: building into $OUT"
echo "testbin: $(go version); GOPROXY=$(go env GOPROXY)"
rm -f "$STAMP"
mkdir -p "$OUT/bin"

export CGO_ENABLED=0
# readonly: a go.sum that does not match fails the build instead of being edited.
export GOFLAGS="-mod=readonly -buildvcs=false" GOWORK=off
total_start=$(date +%s)
timings=()

step() { # <name> <version> <module dir> <ldflags> <-o target: a dir ending in /, or a file> <package>...
  local name=$1 version=$2 dir=$3 ldflags=$4 target=$5; shift 5
  local t0 t1 t2
  t0=$(date +%s)
  echo "testbin: [$name $version] go mod download"
  (cd "$dir" && go mod download)
  t1=$(date +%s)
  echo "testbin: [$name $version] go build $*"
  (cd "$dir" && go build -trimpath -ldflags="-s -w $ldflags" -o "$target" "$@")
  t2=$(date +%s)
  timings+=("$name=$((t2 - t0))s(download $((t1 - t0))s)")
  echo "testbin: [$name $version] done in $((t2 - t0))s (download $((t1 - t0))s, build $((t2 - t1))s)"
}

# Kubernetes' own builds stamp the version (hack/lib/version.sh); without it the
# binaries report v0.0.0-master. buildDate is the release's module time, so the
# binaries do not change from build to build.
k8s_date=$(cd "$HERE" && go mod download -json k8s.io/kubernetes | sed -n 's/.*"Time": "\([^"]*\)".*/\1/p' | head -1)
k8s_minor=$(echo "$K8S_VERSION" | cut -d. -f2)
k8s_ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$k8s_minor"
  k8s_ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=${k8s_date:-1970-01-01T00:00:00Z}"
done

step kubernetes "$K8S_VERSION" "$HERE" "$k8s_ldflags" "$OUT/bin/" \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler
# etcd 3.5's server module is its main package (go build would name it "server").
step etcd "$ETCD_VERSION" "$HERE/etcd" "" "$OUT/bin/etcd" go.etcd.io/etcd/server/v3
step kwok "$KWOK_VERSION" "$HERE/kwok" "" "$OUT/bin/" sigs.k8s.io/kwok/cmd/kwok

total=$(( $(date +%s) - total_start ))
{
  echo "key=$KEY"
  echo "kubernetes=$K8S_VERSION"
  echo "etcd=$ETCD_VERSION"
  echo "kwok=$KWOK_VERSION"
  echo "go=$(go env GOVERSION)"
  echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "timings=${timings[*]} total=${total}s"
} > "$STAMP.tmp"
mv "$STAMP.tmp" "$STAMP"

echo "testbin: binaries:"
(cd "$OUT/bin" && ls -l "${BINARIES[@]}" | awk '{printf "  %-26s %6.1f MiB\n", $9, $5/1048576}')
echo "testbin: total disk use $(du -sh "$OUT" | cut -f1); built in ${total}s"
echo "testbin: ready in $OUT"
