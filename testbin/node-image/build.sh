#!/usr/bin/env bash
# Issue 6, Stage 2: an offline kind node image, assembled without any registry
# (docs/decisions/0010-kind-node-image-offline.md). Test infrastructure only.
#
#   bash testbin/node-image/build.sh            # build what is missing (idempotent)
#   bash testbin/node-image/build.sh probe      # + boot the node image the way kind does
#   bash testbin/node-image/build.sh cluster    # + kind create cluster with it
#
# Recipe, following kind v0.30.0's own images/base/Dockerfile and files/:
#   1. kind CLI from the Go module proxy (./kind/go.mod) -> $CACHE/../kind/$KIND_VERSION/kind
#   2. debootstrap bookworm (systemd, containerd, runc, CNI plugins from Debian)
#      -> docker import  parity-kind-base:bookworm-<packages digest>
#   3. kind's files/ (entrypoint, containerd config, kubelet units) on top
#      (parity-kind-kindbase), kubelet/kubeadm/kubectl and the control plane
#      built from ./go.mod (same pins as ../go.mod), CoreDNS from ./coredns,
#      etcd from ../build.sh, pause from kubernetes' pause.c; one image per
#      component under the name kubeadm expects (FROM scratch; kube-proxy FROM
#      a small iptables debootstrap), saved as tarballs in /kind/images and
#      imported into containerd by a oneshot unit before kubelet starts; a
#      bridge+host-local CNI config; ./files/ holds the node's own files
#      -> parity-kind-node:v1.33.13
# This machine family cannot run `docker run --privileged` (decision 0010), so
# kind is run with ./docker-shim first on PATH ("probe" and "cluster" do that).
# Everything is cached under ${XDG_CACHE_HOME:-~/.cache}/parity/testbin/node-image.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
KIND_VERSION=v0.30.0
K8S_VERSION=v1.33.13
SUITE=bookworm
CACHE=${PARITY_NODE_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/parity/testbin/node-image}
KIND_BIN=$(dirname "$CACHE")/kind/$KIND_VERSION/kind
NODE_IMAGE=parity-kind-node:$K8S_VERSION
export GOWORK=off GOFLAGS=-mod=readonly CGO_ENABLED=0
mkdir -p "$CACHE"
log() { printf '[node-image %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
timed() { local s=$SECONDS; "$@"; log "$1 took $((SECONDS - s))s"; }

# --- 1. kind CLI --------------------------------------------------------------
kind_cli() {  # the module in ./kind pins sigs.k8s.io/kind (go.sum included)
  mkdir -p "$(dirname "$KIND_BIN")"
  [[ -x $KIND_BIN ]] || (cd "$HERE/kind" && go build -trimpath -ldflags="-s -w" -o "$KIND_BIN" sigs.k8s.io/kind)
}
KIND_SRC() { (cd "$HERE/kind" && go mod download sigs.k8s.io/kind && go list -m -f '{{.Dir}}' sigs.k8s.io/kind); }

# --- 2. Debian base without a registry -----------------------------------------
PACKAGES=systemd,systemd-sysv,dbus,containerd,runc,containernetworking-plugins,iptables,nftables,iproute2,ca-certificates,conntrack,ethtool,socat,util-linux,mount,kmod,procps,libseccomp2,pigz,fuse-overlayfs,bash,jq
ROOTFS_KEY=$(printf '%s %s' "$SUITE" "$PACKAGES" | sha256sum | cut -c1-12)
ROOTFS=$CACHE/rootfs-$ROOTFS_KEY
BASE_IMAGE=parity-kind-base:$SUITE-$ROOTFS_KEY
base_image() {
  docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 && return
  if [[ ! -f $ROOTFS/.complete ]]; then
    rm -rf "$ROOTFS"
    debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOTFS" >"$CACHE/debootstrap.log" 2>&1
    touch "$ROOTFS/.complete"
  fi
  tar -C "$ROOTFS" --exclude=./.complete -c . | docker import - "$BASE_IMAGE" >/dev/null
}

# --- 3a. kind's base layer (systemd tweaks, entrypoint, containerd, units) ------
kind_base_layer() {
  local ctx="$CACHE/ctx-kindbase" src; src=$(KIND_SRC)
  rm -rf "$ctx"; mkdir -p "$ctx"; cp -r "$src/images/base/files" "$ctx/files"; chmod -R u+w "$ctx"
  # Debian's containerd lives in /usr/bin, kind's own build in /usr/local/bin
  sed -i 's#^ExecStart=/usr/local/bin/containerd#ExecStart=/usr/bin/containerd#' "$ctx/files/etc/systemd/system/containerd.service"
  # The node has no CAP_SYS_RESOURCE (decision 0010): runc cannot lower
  # oom_score_adj for the pause sandbox ("can't get final child's PID from
  # pipe: EOF"), so clamp it as kind does for rootless nodes.
  sed -i 's/restrict_oom_score_adj = false/restrict_oom_score_adj = true/' "$ctx/files/etc/containerd/config.toml"
  ctr oci spec | jq '.hooks.createContainer[.hooks.createContainer| length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' \
    | jq 'del(.process.rlimits)' >"$ctx/files/etc/containerd/cri-base.json"
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
  docker build -q -t parity-kind-kindbase:$KIND_VERSION "$ctx" >/dev/null
}

# --- 3b. binaries: kubelet/kubeadm/kubectl/kube-proxy/control plane, CoreDNS, pause
K8S_LDFLAGS=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  K8S_LDFLAGS+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=33 -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
binaries() {
  local b=$CACHE/bin; mkdir -p "$b"
  local need=0 x; for x in kubelet kubeadm kubectl kube-proxy kube-apiserver kube-controller-manager kube-scheduler; do [[ -x $b/$x ]] || need=1; done
  if ((need)); then (cd "$HERE" && go build -trimpath -ldflags="-s -w $K8S_LDFLAGS" -o "$b/" \
      k8s.io/kubernetes/cmd/{kubelet,kubeadm,kubectl,kube-proxy,kube-apiserver,kube-controller-manager,kube-scheduler}); fi
  [[ -x $b/coredns ]] || (cd "$HERE/coredns" && go build -trimpath -ldflags="-s -w" -o "$b/coredns" github.com/coredns/coredns)
  [[ -x $b/etcd ]] || { bash "$HERE/../build.sh" >&2; cp "$(bash "$HERE/../build.sh" --print-dir)/bin/etcd" "$b/etcd"; }
  if [[ ! -x $b/pause ]]; then  # kubernetes' own build/pause/linux/pause.c, static
    local src; src=$(cd "$HERE" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)
    gcc -Os -static -Wall -Werror -DVERSION=v3.10-parity -o "$b/pause" "$src/build/pause/linux/pause.c"
  fi
}

# --- 3c. the images kubeadm expects, FROM scratch around each static binary ---
ETCD_TAG=3.5.35-0   # kubeadm v1.33 asks for 3.5.24-0; the kind config patches imageTag
image_tar() { # <file> <image ref> <binary> [<base image>]
  local d=$CACHE/images; mkdir -p "$d"
  [[ -f $d/$1.tar ]] && return
  local ctx; ctx=$(mktemp -d); cp "$CACHE/bin/$3" "$ctx/"
  printf 'FROM %s\nENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nCOPY %s /usr/local/bin/%s\nENTRYPOINT ["/usr/local/bin/%s"]\n' "${4:-scratch}" "$3" "$3" "$3" >"$ctx/Dockerfile"
  docker build -q -t "$2" "$ctx" >/dev/null && docker save -o "$d/$1.tar.tmp" "$2" && mv "$d/$1.tar.tmp" "$d/$1.tar"
  docker rmi "$2" >/dev/null; rm -rf "$ctx"
}
# kube-proxy needs iptables/nft/conntrack: a second, small debootstrap (as
# upstream's distroless-iptables base), imported as parity-kind-proxybase.
PROXY_PACKAGES=iptables,nftables,conntrack,ipset,kmod
PROXY_KEY=$(printf '%s %s' "$SUITE" "$PROXY_PACKAGES" | sha256sum | cut -c1-12)
PROXY_BASE=parity-kind-proxybase:$SUITE-$PROXY_KEY
proxy_base() {
  docker image inspect "$PROXY_BASE" >/dev/null 2>&1 && return
  local r=$CACHE/proxy-rootfs-$PROXY_KEY
  if [[ ! -f $r/.complete ]]; then
    rm -rf "$r"
    debootstrap --variant=minbase --include="$PROXY_PACKAGES" "$SUITE" "$r" >"$CACHE/debootstrap-proxy.log" 2>&1
    rm -rf "$r"/var/cache/apt/archives/*.deb "$r"/var/lib/apt/lists/* "$r"/usr/share/doc "$r"/usr/share/man "$r"/usr/share/locale
    touch "$r/.complete"
  fi
  tar -C "$r" --exclude=./.complete -c . | docker import - "$PROXY_BASE" >/dev/null
}
images() {
  local c; for c in kube-apiserver kube-controller-manager kube-scheduler; do
    image_tar "$c" "registry.k8s.io/$c:$K8S_VERSION" "$c"
  done
  proxy_base
  image_tar kube-proxy "registry.k8s.io/kube-proxy:$K8S_VERSION" kube-proxy "$PROXY_BASE"
  image_tar etcd registry.k8s.io/etcd:$ETCD_TAG etcd
  image_tar coredns registry.k8s.io/coredns/coredns:v1.12.0 coredns
  image_tar pause registry.k8s.io/pause:3.10 pause
}

# --- 3d. the node image --------------------------------------------------------
node_image() {
  local ctx="$CACHE/ctx-node"
  rm -rf "$ctx"; mkdir -p "$ctx/images" "$ctx/bin"
  cp "$CACHE"/bin/{kubelet,kubeadm,kubectl} "$ctx/bin/"; cp "$CACHE"/images/*.tar "$ctx/images/"
  cp "$HERE/files/"* "$ctx/"
  cat >"$ctx/Dockerfile" <<EOF
FROM parity-kind-kindbase:$KIND_VERSION
COPY bin/ /usr/bin/
COPY images/ /kind/images/
COPY 10-parity-bridge.conflist /etc/cni/net.d/
COPY default-cni.yaml default-storage.yaml /kind/manifests/
COPY parity-import-images.service /etc/systemd/system/
COPY parity-entrypoint /usr/local/bin/
RUN chmod 0755 /usr/local/bin/parity-entrypoint \\
 && mkdir -p /opt/cni && rm -rf /opt/cni/bin && ln -s /usr/lib/cni /opt/cni/bin \\
 && echo $K8S_VERSION > /kind/version \\
 && systemctl enable kubelet.service parity-import-images.service
ENTRYPOINT ["/usr/local/bin/parity-entrypoint", "/usr/local/bin/entrypoint", "/sbin/init"]
EOF
  docker build -q -t "$NODE_IMAGE" "$ctx" >/dev/null
  rm -rf "$ctx"
}

# --- probe: boot it the way kind's provision.go runs a node -------------------
probe() { # <image>
  local name=parity-stage2-probe
  docker rm -f "$name" >/dev/null 2>&1 || true
  "$HERE/docker-shim/docker" run --name "$name" --hostname "$name" --detach --tty \
    --privileged --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
    --tmpfs /tmp --tmpfs /run --volume /var --volume /lib/modules:/lib/modules:ro \
    -e KIND_EXPERIMENTAL_CONTAINERD_SNAPSHOTTER --restart=on-failure:1 --init=false \
    --cgroupns=private "$1" >/dev/null
  local i; for i in $(seq 1 60); do
    docker logs "$name" 2>&1 | grep -Eq 'Reached target .*Multi-User System|detected cgroup v1' && break; sleep 1
  done
  sleep 3
  docker logs "$name" 2>&1 | tail -40
  docker exec "$name" systemctl is-system-running || true
  docker exec "$name" systemctl --failed --no-pager || true
  docker exec "$name" systemctl status containerd --no-pager | head -5 || true
}

# --- cluster: kind create cluster with the offline image (through the shim) ---
cluster() {
  local name=parity-stage2
  PATH="$HERE/docker-shim:$PATH" "$KIND_BIN" create cluster --name "$name" --image "$NODE_IMAGE" \
    --config "$HERE/files/kind-config.yaml" --kubeconfig /tmp/stage2.kubeconfig --retain -v 3 --wait 3m
  kubectl --kubeconfig /tmp/stage2.kubeconfig get nodes -o wide
}

case "${1:-build}" in
  build|probe|cluster) ;;
  delete) "$KIND_BIN" delete cluster --name parity-stage2; exit ;;
  *) echo "usage: $0 [build|probe|cluster|delete]" >&2; exit 2 ;;
esac
timed kind_cli
timed base_image
timed kind_base_layer
timed binaries
timed images
timed node_image
[[ ${1:-build} == probe ]] && probe "$NODE_IMAGE"
[[ ${1:-build} == cluster ]] && cluster
exit 0
