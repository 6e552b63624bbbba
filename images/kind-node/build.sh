#!/usr/bin/env bash
# parity's offline kind node image (docs/decisions/0010): a kind node built with no
# container registry at all, from Debian packages and from source through the Go
# module proxy. The offline image profile selects it (stack.kind.node in
# overlays/images/offline.yaml); `inv images --mode kind --profile offline` and
# `inv up --mode kind --profile offline` build it when its inputs changed.
#
# parity's image builder (src/parity/images.py, "script" builds; build.yaml here)
# runs this with:
#   PARITY_IMAGE   the image to produce (stack.kind.node.image)
#   PARITY_LABELS  labels the image must carry, one KEY=VALUE a line
#   PARITY_CACHE   a directory for intermediate artifacts, kept between builds
# By hand: PARITY_IMAGE=parity-kind-node:v1.33.13 bash build.sh
#
# Recipe, following kind's own images/base/ and pkg/build/nodeimage/ at the kind
# version pinned in kind/go.mod:
#   1. debootstrap bookworm (systemd, containerd, runc, CNI plugins, busybox-static)
#      -> docker import  parity-kind-base:bookworm-<packages digest>
#   2. kind's base files (entrypoint, containerd config, units) from the kind
#      module's source on top -> parity-kind-kindbase:<kind version>
#   3. kubelet/kubeadm/kubectl/kube-proxy and the control plane (./go.mod),
#      CoreDNS (coredns/), etcd (etcd/: the version kubeadm asks for),
#      local-path-provisioner (local-path/), crictl (crictl/, as kind's base image
#      carries it), pause (kubernetes' pause.c, static)
#   4. one image per component under the name kubeadm (or the storage manifest)
#      expects, FROM scratch (kube-proxy on a small iptables debootstrap, the
#      local-path helper on busybox), saved as tarballs into /kind/images and
#      imported into containerd by a oneshot unit before kubelet starts
#   5. the node image: bridge + host-local CNI config, kind's default StorageClass
#      "standard" backed by local-path-provisioner (files/default-storage.yaml)
#
# This image runs under kind's --privileged; machines whose Docker cannot run
# --privileged need decision 0010's shim on PATH to *run* it (never to build it).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
IMAGE=${PARITY_IMAGE:?set PARITY_IMAGE to the image to build, e.g. parity-kind-node:v1.33.13}
CACHE=${PARITY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/parity/kind-node}
SUITE=bookworm
MIRROR=${PARITY_DEBIAN_MIRROR:-http://deb.debian.org/debian}
export GOWORK=off GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0
mkdir -p "$CACHE"
log() { printf '[kind-node %(%H:%M:%S)T] %s\n' -1 "$*"; }
timed() { local s=$SECONDS; "$@"; log "$1 took $((SECONDS - s))s"; }
die() { echo "kind-node: $*" >&2; exit 1; }

required_version() { # <go.mod> <module path>
  awk -v m="$2" '($1 == m && $2 ~ /^v/) {print $2; exit} ($1 == "require" && $2 == m) {print $3; exit}' "$1"
}
K8S_VERSION=$(required_version "$HERE/go.mod" k8s.io/kubernetes)
KIND_VERSION=$(required_version "$HERE/kind/go.mod" sigs.k8s.io/kind)
COREDNS_VERSION=$(required_version "$HERE/coredns/go.mod" github.com/coredns/coredns)
ETCD_VERSION=$(required_version "$HERE/etcd/go.mod" go.etcd.io/etcd/server/v3)
LOCAL_PATH_VERSION=$(required_version "$HERE/local-path/go.mod" github.com/rancher/local-path-provisioner)
CRICTL_VERSION=$(required_version "$HERE/crictl/go.mod" sigs.k8s.io/cri-tools)
for v in K8S_VERSION KIND_VERSION COREDNS_VERSION ETCD_VERSION LOCAL_PATH_VERSION CRICTL_VERSION; do
  [[ -n ${!v} ]] || die "cannot read $v from the go.mod files"
done
K8S_MINOR=$(echo "$K8S_VERSION" | cut -d. -f2)
PAUSE_TAG=3.10            # kubeadm v1.33's constants.PauseVersion
PROVISIONER_IMAGE=parity.local/local-path-provisioner:$LOCAL_PATH_VERSION
HELPER_IMAGE=parity.local/local-path-helper:busybox-$SUITE
MANAGED=(--label parity.dev/managed=true)

# --- 1. Debian base without a registry -----------------------------------------
PACKAGES=systemd,systemd-sysv,dbus,containerd,runc,containernetworking-plugins,iptables,nftables,iproute2,ca-certificates,conntrack,ethtool,socat,util-linux,mount,kmod,procps,libseccomp2,pigz,fuse-overlayfs,bash,jq,busybox-static
ROOTFS_KEY=$(printf '%s %s %s' "$SUITE" "$PACKAGES" "$MIRROR" | sha256sum | cut -c1-12)
BASE_IMAGE=parity-kind-base:$SUITE-$ROOTFS_KEY
debootstrap_import() { # <image> <packages> <log name>
  docker image inspect "$1" >/dev/null 2>&1 && return
  local r; r=$(mktemp -d "$CACHE/rootfs.XXXXXX")
  if ! debootstrap --variant=minbase --include="$2" "$SUITE" "$r" "$MIRROR" >"$CACHE/$3.log" 2>&1; then
    tail -n 20 "$CACHE/$3.log" >&2; rm -rf "$r"; die "debootstrap failed (log: $CACHE/$3.log)"
  fi
  rm -rf "$r"/var/cache/apt/archives/*.deb "$r"/var/lib/apt/lists/*_* "$r"/debootstrap
  tar --numeric-owner -C "$r" -c . | docker import --change "LABEL parity.dev/managed=true" - "$1" >/dev/null
  rm -rf "$r"
}
base_image() { debootstrap_import "$BASE_IMAGE" "$PACKAGES" debootstrap; }

# --- 2. kind's base layer (systemd tweaks, entrypoint, containerd, units) ------
KINDBASE_IMAGE=parity-kind-kindbase:$KIND_VERSION-$ROOTFS_KEY
kind_base_layer() {
  docker image inspect "$KINDBASE_IMAGE" >/dev/null 2>&1 && return
  local ctx src
  src=$(cd "$HERE/kind" && go mod download sigs.k8s.io/kind && go list -m -f '{{.Dir}}' sigs.k8s.io/kind)
  ctx=$(mktemp -d "$CACHE/ctx.XXXXXX")
  cp -r "$src/images/base/files" "$ctx/files"; chmod -R u+w "$ctx"
  # Debian's containerd lives in /usr/bin, kind's own build in /usr/local/bin
  sed -i 's#^ExecStart=/usr/local/bin/containerd#ExecStart=/usr/bin/containerd#' "$ctx/files/etc/systemd/system/containerd.service"
  # Where the node lacks CAP_SYS_RESOURCE (decision 0010) runc cannot lower
  # oom_score_adj for the pause sandbox; clamp it as kind does for rootless nodes.
  sed -i 's/restrict_oom_score_adj = false/restrict_oom_score_adj = true/' "$ctx/files/etc/containerd/config.toml"
  # kind's cri-base.json is containerd's default spec plus its mount hook, made by
  # the containerd the node runs (not the host's).
  docker run --rm --network none --entrypoint /bin/sh "$BASE_IMAGE" -c \
    'ctr oci spec | jq ".hooks.createContainer[.hooks.createContainer | length] |= . + {\"path\": \"/kind/bin/mount-product-files.sh\"}" | jq "del(.process.rlimits)"' \
    >"$ctx/files/etc/containerd/cri-base.json"
  cat >"$ctx/Dockerfile" <<EOF
FROM $BASE_IMAGE
COPY files/usr/local/bin/ /usr/local/bin/
COPY files/kind/ /kind/
COPY files/etc/ /etc/
RUN chmod 0755 /usr/local/bin/* /kind/bin/* \\
 && find /lib/systemd/system/sysinit.target.wants/ -name "systemd-tmpfiles-setup.service" -delete \\
 && rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/* \\
          /lib/systemd/system/local-fs.target.wants/* /lib/systemd/system/sockets.target.wants/*udev* \\
          /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/* \\
 && echo "ReadKMsg=no" >> /etc/systemd/journald.conf \\
 && ln -sf /lib/systemd/systemd /sbin/init \\
 && systemctl enable containerd.service undo-mount-hacks.service \\
 && systemctl mask systemd-binfmt.service \\
 && mkdir -p /etc/kubernetes/manifests
ENV container=docker
STOPSIGNAL SIGRTMIN+3
ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]
EOF
  DOCKER_BUILDKIT=0 docker build -q "${MANAGED[@]}" -t "$KINDBASE_IMAGE" "$ctx" >/dev/null
  rm -rf "$ctx"
}

# --- 3. binaries ---------------------------------------------------------------
BIN=$CACHE/bin/k8s-$K8S_VERSION
K8S_LDFLAGS=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  K8S_LDFLAGS+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$K8S_MINOR -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
gobuild() { # <module dir> <-o target> <ldflags> <package>...
  local dir=$1 out=$2 ldflags=$3; shift 3
  (cd "$dir" && go build -trimpath -ldflags="-s -w $ldflags" -o "$out" "$@")
}
binaries() {
  mkdir -p "$BIN"
  local need=0 x
  for x in kubelet kubeadm kubectl kube-proxy kube-apiserver kube-controller-manager kube-scheduler; do
    [[ -x $BIN/$x ]] || need=1
  done
  if ((need)); then
    gobuild "$HERE" "$BIN/" "$K8S_LDFLAGS" \
      k8s.io/kubernetes/cmd/{kubelet,kubeadm,kubectl,kube-proxy,kube-apiserver,kube-controller-manager,kube-scheduler}
  fi
  [[ -x $BIN/coredns-$COREDNS_VERSION ]] || gobuild "$HERE/coredns" "$BIN/coredns-$COREDNS_VERSION" "" github.com/coredns/coredns
  # etcd 3.5's server module is its main package
  [[ -x $BIN/etcd-$ETCD_VERSION ]] || gobuild "$HERE/etcd" "$BIN/etcd-$ETCD_VERSION" "" go.etcd.io/etcd/server/v3
  [[ -x $BIN/crictl-$CRICTL_VERSION ]] || gobuild "$HERE/crictl" "$BIN/crictl-$CRICTL_VERSION" \
    "-X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION" sigs.k8s.io/cri-tools/cmd/crictl
  [[ -x $BIN/local-path-provisioner-$LOCAL_PATH_VERSION ]] || gobuild "$HERE/local-path" \
    "$BIN/local-path-provisioner-$LOCAL_PATH_VERSION" \
    "-X main.VERSION=${LOCAL_PATH_VERSION#v}" github.com/rancher/local-path-provisioner
  if [[ ! -x $BIN/pause ]]; then  # kubernetes' own build/pause/linux/pause.c, static
    local src; src=$(cd "$HERE" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)
    gcc -Os -static -Wall -Werror -DVERSION=v$PAUSE_TAG-parity -o "$BIN/pause.tmp" "$src/build/pause/linux/pause.c"
    mv "$BIN/pause.tmp" "$BIN/pause"
  fi
}

# --- 4. the images the node preloads, FROM scratch around each static binary ---
IMAGES=$CACHE/images/k8s-$K8S_VERSION
image_tar() { # <file> <image ref> <binary path> <name in image> [<base image>]
  mkdir -p "$IMAGES"
  [[ -f $IMAGES/$1.tar ]] && return
  local ctx; ctx=$(mktemp -d "$CACHE/ctx.XXXXXX"); cp "$3" "$ctx/$4"
  printf 'FROM %s\nENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nCOPY %s /usr/local/bin/%s\nENTRYPOINT ["/usr/local/bin/%s"]\n' \
    "${5:-scratch}" "$4" "$4" "$4" >"$ctx/Dockerfile"
  DOCKER_BUILDKIT=0 docker build -q -t "$2" "$ctx" >/dev/null
  docker save -o "$IMAGES/$1.tar.tmp" "$2" && mv "$IMAGES/$1.tar.tmp" "$IMAGES/$1.tar"
  docker rmi "$2" >/dev/null; rm -rf "$ctx"
}
# kube-proxy needs iptables/nft/conntrack: a second, small debootstrap (as
# upstream's distroless-iptables base).
PROXY_PACKAGES=iptables,nftables,conntrack,ipset,kmod
PROXY_KEY=$(printf '%s %s %s' "$SUITE" "$PROXY_PACKAGES" "$MIRROR" | sha256sum | cut -c1-12)
PROXY_BASE=parity-kind-proxybase:$SUITE-$PROXY_KEY
helper_tar() { # local-path-provisioner's helper pod runs sh, mkdir and rm: busybox
  [[ -f $IMAGES/local-path-helper.tar ]] && return
  local ctx; ctx=$(mktemp -d "$CACHE/ctx.XXXXXX")
  docker run --rm --network none --entrypoint /bin/cat "$BASE_IMAGE" /bin/busybox >"$ctx/busybox"
  chmod 0755 "$ctx/busybox"
  printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\nENV PATH=/bin\nCMD ["/bin/sh"]\n' >"$ctx/Dockerfile"
  DOCKER_BUILDKIT=0 docker build -q -t "$HELPER_IMAGE" "$ctx" >/dev/null
  docker save -o "$IMAGES/local-path-helper.tar.tmp" "$HELPER_IMAGE" \
    && mv "$IMAGES/local-path-helper.tar.tmp" "$IMAGES/local-path-helper.tar"
  docker rmi "$HELPER_IMAGE" >/dev/null; rm -rf "$ctx"
}
images() {
  local c
  for c in kube-apiserver kube-controller-manager kube-scheduler; do
    image_tar "$c" "registry.k8s.io/$c:$K8S_VERSION" "$BIN/$c" "$c"
  done
  debootstrap_import "$PROXY_BASE" "$PROXY_PACKAGES" debootstrap-proxy
  image_tar kube-proxy "registry.k8s.io/kube-proxy:$K8S_VERSION" "$BIN/kube-proxy" kube-proxy "$PROXY_BASE"
  image_tar "etcd-$ETCD_VERSION" "registry.k8s.io/etcd:${ETCD_VERSION#v}-0" "$BIN/etcd-$ETCD_VERSION" etcd
  image_tar "coredns-$COREDNS_VERSION" "registry.k8s.io/coredns/coredns:$COREDNS_VERSION" "$BIN/coredns-$COREDNS_VERSION" coredns
  image_tar pause "registry.k8s.io/pause:$PAUSE_TAG" "$BIN/pause" pause
  image_tar "local-path-provisioner-$LOCAL_PATH_VERSION" "$PROVISIONER_IMAGE" \
    "$BIN/local-path-provisioner-$LOCAL_PATH_VERSION" local-path-provisioner
  helper_tar
}

# --- 5. the node image ---------------------------------------------------------
node_image() {
  local ctx label
  ctx=$(mktemp -d "$CACHE/ctx.XXXXXX"); mkdir -p "$ctx/images" "$ctx/bin"
  cp "$BIN"/{kubelet,kubeadm,kubectl} "$ctx/bin/"
  cp "$BIN/crictl-$CRICTL_VERSION" "$ctx/crictl"
  cp "$IMAGES"/{kube-apiserver,kube-controller-manager,kube-scheduler,kube-proxy,pause,local-path-helper}.tar \
     "$IMAGES/etcd-$ETCD_VERSION.tar" "$IMAGES/coredns-$COREDNS_VERSION.tar" \
     "$IMAGES/local-path-provisioner-$LOCAL_PATH_VERSION.tar" "$ctx/images/"
  cp "$HERE/files/"* "$ctx/"
  sed -e "s#__PROVISIONER_IMAGE__#$PROVISIONER_IMAGE#g" -e "s#__HELPER_IMAGE__#$HELPER_IMAGE#g" \
    "$HERE/files/default-storage.yaml" >"$ctx/default-storage.yaml"
  cat >"$ctx/Dockerfile" <<EOF
FROM $KINDBASE_IMAGE
COPY bin/ /usr/bin/
COPY crictl /usr/local/bin/crictl
COPY images/ /kind/images/
COPY 10-parity-bridge.conflist /etc/cni/net.d/
COPY default-cni.yaml default-storage.yaml /kind/manifests/
COPY parity-import-images.service /etc/systemd/system/
COPY parity-entrypoint /usr/local/bin/
RUN chmod 0755 /usr/local/bin/parity-entrypoint \\
 && mkdir -p /opt/cni /var/local-path-provisioner && rm -rf /opt/cni/bin && ln -s /usr/lib/cni /opt/cni/bin \\
 && echo $K8S_VERSION > /kind/version \\
 && systemctl enable kubelet.service parity-import-images.service
ENTRYPOINT ["/usr/local/bin/parity-entrypoint", "/usr/local/bin/entrypoint", "/sbin/init"]
EOF
  local args=(--label parity.dev/managed=true
              --label "parity.dev/kind-node.versions=kubernetes=$K8S_VERSION kind=$KIND_VERSION etcd=$ETCD_VERSION coredns=$COREDNS_VERSION local-path-provisioner=$LOCAL_PATH_VERSION crictl=$CRICTL_VERSION")
  while IFS= read -r label; do
    [[ -n $label ]] && args+=(--label "$label")
  done <<<"${PARITY_LABELS:-}"
  DOCKER_BUILDKIT=0 docker build -q "${args[@]}" -t "$IMAGE" "$ctx" >/dev/null
  rm -rf "$ctx"
}

log "building $IMAGE: kubernetes $K8S_VERSION, kind $KIND_VERSION, etcd $ETCD_VERSION, coredns $COREDNS_VERSION, local-path-provisioner $LOCAL_PATH_VERSION, crictl $CRICTL_VERSION"
timed base_image
timed kind_base_layer
timed binaries
timed images
timed node_image
log "built $IMAGE ($(docker image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
