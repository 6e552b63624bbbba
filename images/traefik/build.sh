#!/usr/bin/env bash
# Traefik, the kind lane's Gateway API controller (docs/decisions/0012), built from
# source through the Go module proxy and packed FROM scratch with the host's CA
# bundle: no container registry.
#
# parity's image builder runs this with PARITY_IMAGE, PARITY_LABELS (KEY=VALUE
# lines) and PARITY_CACHE set (build.yaml). By hand:
#   PARITY_IMAGE=parity-offline/traefik:v3.6.12 bash build.sh
#
# Traefik is built as its own main module, inside its module zip: its go.mod
# carries replace directives (containous forks) that a wrapper module would
# ignore. The zip is checked against the go.sum-style hash pinned here (the Go
# checksum database checks it too on first download); `-mod=readonly` makes every
# dependency match Traefik's own go.sum.
set -euo pipefail

MODULE=github.com/traefik/traefik/v3
VERSION=v3.6.12
SUM="h1:6pe4s7aaDTQs+AsF7KP3sM/xnq7zOVvibRQe5tw9eFo="
IMAGE=${PARITY_IMAGE:?set PARITY_IMAGE to the image to build, e.g. parity-offline/traefik:v3.6.12}
CACHE=${PARITY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/parity/traefik}
CA_BUNDLE=${PARITY_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
export GOWORK=off GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0
log() { printf '[traefik %(%H:%M:%S)T] %s\n' -1 "$*"; }
die() { echo "traefik: $*" >&2; exit 1; }
mkdir -p "$CACHE"

BIN=$CACHE/traefik-$VERSION
if [[ ! -x $BIN ]]; then
  log "go mod download $MODULE@$VERSION"
  json=$(cd / && GOFLAGS= go mod download -json "$MODULE@$VERSION")
  dir=$(sed -n 's/.*"Dir": "\([^"]*\)".*/\1/p' <<<"$json")
  sum=$(sed -n 's/.*"Sum": "\([^"]*\)".*/\1/p' <<<"$json")
  [[ $sum == "$SUM" ]] || die "$MODULE@$VERSION has sum $sum, expected $SUM"
  info=$(sed -n 's/.*"Info": "\([^"]*\)".*/\1/p' <<<"$json")
  date=$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$info" 2>/dev/null | head -1)
  log "go build ./cmd/traefik (the first build downloads ~500 MB of modules and takes minutes)"
  s=$SECONDS
  (cd "$dir" && go build -trimpath -o "$BIN.tmp" \
    -ldflags "-s -w -X $MODULE/pkg/version.Version=$VERSION -X $MODULE/pkg/version.Codename=parity -X $MODULE/pkg/version.BuildDate=${date:-unknown}" \
    ./cmd/traefik)
  mv "$BIN.tmp" "$BIN"
  log "built $(basename "$BIN") in $((SECONDS - s))s"
fi

[[ -f $CA_BUNDLE ]] || die "no CA bundle at $CA_BUNDLE (install ca-certificates, or set PARITY_CA_BUNDLE)"
ctx=$(mktemp -d "$CACHE/ctx.XXXXXX")
trap 'rm -rf "$ctx"' EXIT
cp "$BIN" "$ctx/traefik"
cp "$CA_BUNDLE" "$ctx/ca-certificates.crt"
cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM scratch
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY traefik /usr/local/bin/traefik
EXPOSE 80 443
ENTRYPOINT ["/usr/local/bin/traefik"]
DOCKERFILE
args=(--label "org.opencontainers.image.version=$VERSION"
      --label "org.opencontainers.image.source=https://$MODULE")
while IFS= read -r label; do
  [[ -n $label ]] && args+=(--label "$label")
done <<<"${PARITY_LABELS:-}"
DOCKER_BUILDKIT=0 docker build -q "${args[@]}" -t "$IMAGE" "$ctx" >/dev/null
log "built $IMAGE"
