#!/usr/bin/env bash
# Debian packages the tests run real servers and clients from (tests/test_apps.py:
# PostgreSQL, Redis, NATS, the registry, and the Python modules the offline
# images use), and what the kind lane's offline node image is built with besides Go
# and debootstrap (gcc and libc6-dev for its static pause binary, the CA bundle).
# Idempotent; services are installed but never started by apt.
set -euo pipefail
# nodejs: the syntax check of apps/web's script. make test runs this first and its
# pytest fails (REQUIRE_ALL_TESTS=1) rather than skip a test whose package is missing.
PKGS=(postgresql-15 redis-server nats-server docker-registry python3-psycopg2 python3-redis
      python3-jwt python3-grpcio python3-cryptography python3-requests gcc libc6-dev
      ca-certificates nodejs)
if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "error: not a Debian system; the tests need: ${PKGS[*]} (Debian names; install" \
       "their equivalents, or run make test on Debian 12)" >&2
  exit 3
fi
missing=()
for p in "${PKGS[@]}"; do
  # nodejs may come from elsewhere (nodesource): a node on PATH is enough
  if [ "$p" = nodejs ] && command -v node >/dev/null 2>&1; then continue; fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "==> test packages already installed"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "error: the tests need ${missing[*]}; install them as root:" \
       "sudo bash .ci/install-test-deps.sh (or sudo apt-get install ${missing[*]})" >&2
  exit 3
fi
echo "==> installing ${missing[*]}"
created_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  created_policy=1
fi
trap '[ $created_policy = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
apt-get update -qq || true
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "==> done"
